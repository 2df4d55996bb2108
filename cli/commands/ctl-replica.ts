// `shardline ctl replica elect|status`: who leads a replicated shard, set by hand (journal nodes
// replicating without placement; docs/replication.md), and each replica's state: it talks to the journal nodes' gRPC
// ports directly with the cluster token (and mutual TLS with --journal-tls), not to an admin API.
import { isShardlineError, readJournalTls, runElection, ReplicaClient, type JournalCredentials } from '../../journal/index.js';
import { stringFlag, UsageError, type Command } from '../command.js';

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
replica holds every acknowledged record. The old leader, if it still runs, is fenced: its appends
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
        for (const answer of result.answers) console.log(`  ${answer.node}: last epoch ${answer.lastEpoch}, durable end ${answer.durableEnd}`);
        for (const entry of result.missing) console.log(`  ${entry.node}: did not take the epoch: ${entry.error}`);
      }
      return 0;
    } catch (error) {
      console.error(`shardline ctl replica elect: ${(error as Error).message}`);
      return 1;
    }
  },
};

const statusCommand: Command = {
  path: ['ctl', 'replica', 'status'],
  summary: "Each replica's view of a replicated shard: role, epoch, leader, HW, log end",
  usage: `Usage: shardline ctl replica status --shard NAME --journals ID@HOST:PORT,... [--json]

Asks every replica in --journals for its replication state of the shard: its role (leader,
follower, or idle: holds an epoch, leads and follows nobody), the epoch it holds, the leader it
knows, the high watermark it serves readers up to, its log end and the epoch of its last batch.
A replica that does not answer is shown with the error. Exit 1 when none answers.

${COMMON_FLAGS}`,
  options,
  async run(values) {
    const shard = stringFlag(values, 'shard');
    const replicas = parseJournals(stringFlag(values, 'journals'));
    const access = await credentials(values);
    const rows = await Promise.all([...replicas].map(async ([node, address]) => {
      const client = new ReplicaClient(address, access);
      try {
        return { address, ...(await client.call('replicaStatus', { shard }, 3_000)) };
      } catch (error) {
        return { node, address, error: isShardlineError(error) ? `${error.code}: ${error.message}` : (error as Error).message };
      } finally {
        client.close();
      }
    }));
    if (values.json === true) console.log(JSON.stringify(rows, null, 2));
    else {
      for (const row of rows) {
        if ('error' in row) console.log(`${row.node} ${row.address}: ${row.error}`);
        else console.log(`${row.node} ${row.address}: ${row.role}, epoch ${row.epoch}, leader ${row.leader === '' ? 'none' : row.leader}, hw ${row.highWatermark}, log end ${row.logEnd}, last epoch ${row.lastEpoch}`);
      }
    }
    return rows.some((row) => !('error' in row)) ? 0 : 1;
  },
};

export const replicaCtlCommands: Command[] = [electCommand, statusCommand];
