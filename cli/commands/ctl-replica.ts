// `shardline ctl replica elect|status`: who leads a replicated shard, set by hand (journal nodes
// replicating without placement; docs/replication.md), and each replica's state: it talks to the journal nodes' gRPC
// ports directly with the cluster token (and mutual TLS with --journal-tls), not to an admin API.
// `ctl replica sets` is the exception: every replicated shard at once, over a node's admin API
// (GET /api/replication/sets, what the dashboard's Replication page shows).
import { isShardlineError, readJournalTls, runElection, ReplicaClient, type JournalCredentials, type journalWire } from '../../journal/index.js';
import { integerFlag, stringFlag, UsageError, type Command } from '../command.js';
import { ctlCommand } from '../ctl/ctl-command.js';
import { formatReplicaSets, type ReplicaSetsAnswer } from '../ctl/replica-sets-format.js';
import { createProgressGroup, type ProgressGroup } from '../progress.js';

const TOKEN_VARIABLE = 'SHARDLINE_CLUSTER_TOKEN';

/** ID=HOST:PORT,... → node id → address, in the order given. */
function parseJournals(raw: string): Map<string, string> {
  const journals = new Map<string, string>();
  for (const entry of raw.split(',')) {
    const match = /^([^=@\s]+)[=@](\S+:\d+)$/.exec(entry.trim());
    if (match === null) throw new UsageError(`--journals takes ID@HOST:PORT,... (every replica of the shard), got ${JSON.stringify(entry)}`);
    journals.set(match[1] as string, match[2] as string);
  }
  return journals;
}

function clusterToken(values: Record<string, unknown>): string {
  const token = typeof values['cluster-token'] === 'string' ? values['cluster-token'] : process.env[TOKEN_VARIABLE];
  if (token === undefined || token === '') throw new UsageError(`the journal nodes' cluster token is needed: set ${TOKEN_VARIABLE} (or --cluster-token, which ps shows)`);
  return token;
}

/**
 * A TLS file: the flag, else the variables `shardline start` reads it from (journal-tls-*, then
 * tls-*), so ctl run beside a node finds the node's files.
 */
function tlsFile(values: Record<string, unknown>, key: 'tls-cert' | 'tls-key' | 'tls-ca'): string {
  const variables = [`SHARDLINE_JOURNAL_${key.toUpperCase().replace('-', '_')}`, `SHARDLINE_${key.toUpperCase().replace('-', '_')}`];
  const file = typeof values[key] === 'string' ? values[key] : variables.map((name) => process.env[name]).find((value) => value !== undefined && value !== '');
  if (file === undefined || file === '') throw new UsageError(`--journal-tls needs --${key} FILE (or ${variables.join(' or ')})`);
  return file;
}

/** The token and, with --journal-tls (or SHARDLINE_JOURNAL_TLS=true), the certificate this command dials the journal nodes with. */
async function credentials(values: Record<string, unknown>): Promise<JournalCredentials> {
  const token = clusterToken(values);
  const tls = values['journal-tls'] === true || (values['journal-tls'] === undefined && process.env.SHARDLINE_JOURNAL_TLS === 'true');
  if (!tls) {
    for (const key of ['tls-cert', 'tls-key', 'tls-ca'] as const) if (values[key] !== undefined) throw new UsageError(`--${key} is for --journal-tls, which is not set`);
    return { clusterToken: token };
  }
  const files = { cert: tlsFile(values, 'tls-cert'), key: tlsFile(values, 'tls-key'), ca: tlsFile(values, 'tls-ca') };
  return { clusterToken: token, tls: await readJournalTls(files) };
}

const options = {
  shard: { type: 'string' },
  journals: { type: 'string' },
  'cluster-token': { type: 'string' },
  'journal-tls': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const statusOptions = { ...options, watch: { type: 'boolean' } } as const;

/** How often --watch asks again. */
const WATCH_INTERVAL_MS = 1_000;

const COMMON_FLAGS = `  --shard NAME              the replicated shard (created on every replica, durability fsync)
  --journals ID@HOST:PORT,...  every replica of the shard: node id (--node-id) @ journal gRPC address
  --cluster-token TOKEN     the nodes' cluster token; prefer ${TOKEN_VARIABLE}, the flag shows in ps
  --journal-tls             dial with mutual TLS, for nodes started with journal-tls
                            (default: on when SHARDLINE_JOURNAL_TLS=true)
  --tls-cert FILE           with --journal-tls: the certificate presented
                            (default $SHARDLINE_JOURNAL_TLS_CERT, else $SHARDLINE_TLS_CERT)
  --tls-key FILE            its key (default $SHARDLINE_JOURNAL_TLS_KEY, else $SHARDLINE_TLS_KEY)
  --tls-ca FILE             the CA the nodes' certificates chain to
                            (default $SHARDLINE_JOURNAL_TLS_CA, else $SHARDLINE_TLS_CA)
  --json                    print JSON`;

const electCommand: Command = {
  path: ['ctl', 'replica', 'elect'],
  summary: 'Elect the leader of a replicated shard (interim, by hand)',
  usage: `Usage: shardline ctl replica elect --shard NAME --journals ID@HOST:PORT,... [--json]

Runs one election of the shard's leader among the replicas in --journals, the rule placement will
apply (docs/replication.md): picks an epoch newer than any replica holds, announces it (each
replica that takes it stops leading and following and answers its durable position), and once a
majority has answered makes the one with the greatest (last epoch, durable end) the leader. That
replica holds every acknowledged record. A replica that answers without the shard (its data
directory was lost) gets it created, empty, with the settings of one that has it; such a replica,
and any without replica state for a shard that has been led, takes the epoch without a vote and
catches up from the leader. The old leader, if it still runs, is fenced: its appends
fail with SL_REPL_NOT_LEADER. Replicas that did not answer learn the leader at the next election.

For journal nodes replicating without placement (--replica-peers): run this to start replication
of a new shard and after a leader fails. In a placement cluster the placement leader elects by
itself; an election run here moves the replicas to an epoch placement does not know, and the
controller then elects past it. Exit 1 when fewer than a majority took the epoch.

${COMMON_FLAGS}`,
  options,
  async run(values) {
    const shard = stringFlag(values, 'shard');
    const replicas = parseJournals(stringFlag(values, 'journals'));
    const access = await credentials(values);
    try {
      const result = await runElection({ shard, replicas, credentials: access });
      if (values.json === true) console.log(JSON.stringify(result, null, 2));
      else {
        console.log(`shard ${shard}: epoch ${result.epoch}, leader ${result.leader} (${replicas.get(result.leader) ?? ''})`);
        for (const node of result.recreated) console.log(`  ${node}: had no such shard; created it empty with the other replicas' settings`);
        for (const answer of result.answers) console.log(`  ${answer.node}: last epoch ${answer.lastEpoch}, durable end ${answer.durableEnd}`);
        for (const entry of result.missing) {
          if (result.nonVoters.includes(entry.node)) console.log(`  ${entry.node}: took the epoch without a vote (it rejoined without its replica state; it catches up from the leader)`);
          else console.log(`  ${entry.node}: did not take the epoch: ${entry.error}`);
        }
      }
      return 0;
    } catch (error) {
      console.error(`shardline ctl replica elect: ${(error as Error).message}`);
      return 1;
    }
  },
};

type StatusRow = { node: string; address: string; error: string } | ({ address: string } & journalWire.ReplicaStatusResponse);

async function askStatuses(shard: string, replicas: Map<string, string>, access: JournalCredentials): Promise<StatusRow[]> {
  return Promise.all([...replicas].map(async ([node, address]) => {
    const client = new ReplicaClient(address, access);
    try {
      return { address, ...(await client.call('replicaStatus', { shard }, 3_000)) };
    } catch (error) {
      return { node, address, error: isShardlineError(error) ? `${error.code}: ${error.message}` : (error as Error).message };
    } finally {
      client.close();
    }
  }));
}

/** The leader's answer: the one whose role is leader in the newest epoch among the answers. */
function leaderOf(rows: StatusRow[]): (journalWire.ReplicaStatusResponse & { address: string }) | undefined {
  let found: (journalWire.ReplicaStatusResponse & { address: string }) | undefined;
  for (const row of rows) if (!('error' in row) && row.role === 'leader' && (found === undefined || row.epoch > found.epoch)) found = row;
  return found;
}

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KiB`;
}

function printStatus(rows: StatusRow[]): void {
  for (const row of rows) {
    if ('error' in row) {
      console.log(`${row.node} ${row.address}: ${row.error}`);
      continue;
    }
    const vote = row.voter ? '' : ', no vote (rejoining)';
    console.log(`${row.node} ${row.address}: ${row.role}, epoch ${row.epoch}, leader ${row.leader === '' ? 'none' : row.leader}, hw ${row.highWatermark}, log ${row.logStart}..${row.logEnd}, last epoch ${row.lastEpoch}${vote}`);
    for (const follower of row.followers) {
      const where = `log end ${follower.fetched} of ${row.logEnd} (hw ${row.highWatermark})`;
      console.log(`  follower ${follower.node}: ${where}, ${follower.recordsBehind === 0 ? 'caught up' : `${follower.recordsBehind} offsets / about ${kib(follower.bytesBehind)} behind`}`);
    }
  }
}

/** Whether every follower of the leader has reached its log end (false when no leader answered). */
function caughtUp(rows: StatusRow[]): boolean {
  const leader = leaderOf(rows);
  return leader !== undefined && leader.followers.every((follower) => follower.recordsBehind === 0);
}

function drawBars(group: ProgressGroup, rows: StatusRow[]): void {
  const leader = leaderOf(rows);
  if (leader === undefined) return;
  for (const follower of leader.followers) {
    group.bar(`follower ${follower.node}`, 'offsets').set(follower.fetched - leader.logStart, leader.logEnd - leader.logStart);
  }
}

const statusCommand: Command = {
  path: ['ctl', 'replica', 'status'],
  summary: "Each replica's view of a replicated shard, and each follower's catch-up progress",
  usage: `Usage: shardline ctl replica status --shard NAME --journals ID@HOST:PORT,... [--watch] [--json]

Asks every replica in --journals for its replication state of the shard: its role (leader,
follower, or idle: holds an epoch, leads and follows nobody), the epoch it holds, the leader it
knows, the high watermark it serves readers up to, its log start and end, the epoch of its last
batch, and whether it votes (a replica that rejoined without its data does not, until it has
caught up). Under the leader, each follower's progress as the leader sees it: the log end it
last reported against the leader's log end and HW, and how many offsets and about how many
bytes it is behind. A replica that does not answer is shown with the error. Exit 1 when none
answers.

  --watch                   ask again every second until every follower has caught up with the
                            leader's log end, with a progress bar per follower when stdout is a
                            terminal (a line per change otherwise); Ctrl-C stops it
${COMMON_FLAGS}`,
  options: statusOptions,
  async run(values) {
    const shard = stringFlag(values, 'shard');
    const replicas = parseJournals(stringFlag(values, 'journals'));
    const access = await credentials(values);
    let rows = await askStatuses(shard, replicas, access);
    if (values.watch !== true) {
      if (values.json === true) console.log(JSON.stringify(rows, null, 2));
      else printStatus(rows);
      return rows.some((row) => !('error' in row)) ? 0 : 1;
    }
    const tty = process.stdout.isTTY === true && values.json !== true;
    const group = tty ? createProgressGroup(process.stdout) : null;
    let last = '';
    try {
      for (;;) {
        if (group !== null) drawBars(group, rows);
        else {
          const text = JSON.stringify(rows);
          if (text !== last) {
            if (values.json === true) console.log(text);
            else printStatus(rows);
            last = text;
          }
        }
        if (caughtUp(rows)) break;
        await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
        rows = await askStatuses(shard, replicas, access);
      }
    } finally {
      group?.stop();
    }
    if (group !== null) printStatus(rows);
    return 0;
  },
};

/** Shards one answer may hold (the route's bound). */
const SETS_LIMIT_MAX = 500;

const setsCommand = ctlCommand({
  words: ['replica', 'sets'],
  summary: "Every replicated shard's replicas, leader, HW, lag and catch-up, over the admin API",
  description: `
Asks a node of a cluster (any: broker, journal or placement node) for every replicated shard:
its epoch, and per replica its role, end offset, durable offset, HW and lag behind the leader,
with a bar for each replica behind (its log end within the leader's log). During a replica-set
change (ctl shard move|reassign, or a dead journal node's replacement) the learners copying the
shard follow the replicas, marked + and with their bars (an empty one before their first fetch);
they count for nothing until placement switches the set. The replica sets and
leaders are placement's as that node sees them; each replica's figures are asked from its
journal node; durable offsets and lags are what the leader last heard. A single node (in no
placement group) exits 1 with the API's answer (503). The dashboard's Replication page shows
the same; \`ctl replica status --watch\` follows one shard's catch-up over the journal ports.`,
  flags: `  --prefix PREFIX  only shards whose name starts with PREFIX
  --limit N        show at most N shards, 1..${SETS_LIMIT_MAX} (default 100)`,
  details: `--json prints GET /api/replication/sets: {origin, total, items: [{shard, epoch, leader,
answeringLeader, leaderLogStart, leaderLogEnd, highWatermark, replicas: [{node, address,
recordedLeader, learner, reachable, error, role, epoch, leader, highWatermark, logStart, logEnd,
lastEpoch, voter, fetched, durable, recordsBehind, bytesBehind}]}]}.`,
  options: { prefix: { type: 'string' }, limit: { type: 'string' } },
  async run(context, values) {
    const limit = integerFlag(values, 'limit', 100, 1);
    if (limit > SETS_LIMIT_MAX) throw new UsageError(`--limit must be at most ${SETS_LIMIT_MAX}, got ${limit}`);
    const prefix = typeof values.prefix === 'string' ? values.prefix : '';
    const answer = await context.client.get<ReplicaSetsAnswer>('/api/replication/sets', { limit, prefix });
    return context.json ? JSON.stringify(answer, null, 2) : formatReplicaSets(answer);
  },
});

export const replicaCtlCommands: Command[] = [electCommand, statusCommand, setsCommand];
