// `shardline ctl shard move|reassign`: change a shard's replica set by hand, over the placement
// leader's admin API (POST /api/cluster/shards/:name/reassign). Placement records the change;
// the replication controller carries it out (learners copy the shard, then the set switches in a
// new epoch: docs/replication.md, "Changing a replica set"). The command waits until the switch,
// drawing the learners' catch-up, unless --no-wait.
import { UsageError, type Command } from '../command.js';
import { ctlCommand, type CtlContext, type FlagValues } from '../ctl/ctl-command.js';
import { createProgressGroup } from '../progress.js';

interface ShardPlacement {
  name: string;
  replicas: string[];
  leader: string | null;
  leaderEpoch: number;
  state: string;
  target: string[] | null;
  learners: { node: string; durable: number }[];
  highWatermark: number | null;
}

/** How often the wait asks again, and for how long at most (a learner copying a large shard takes a while). */
const POLL_MS = 500;
const WAIT_LIMIT_MS = 30 * 60_000;

const WAIT_FLAGS = `  --no-wait        return once placement took the change, without waiting for the switch`;

const COMMON_NOTE = `Placement takes the change only from its leader's admin API (elsewhere: exit 1,
SL_ADMIN_NOT_LEADER naming the leader), only for journal nodes registered with placement
(SL_ADMIN_BAD_REQUEST names an unknown one or one without the journal role), not to the set the
shard already has, and not while another change of the shard is in progress
(SL_ADMIN_CHANGE_IN_PROGRESS). A change moves one replica at a time: placement refuses one that
keeps fewer replicas than a majority of the new set and more than half of the old one.
While the learners copy, the command draws their progress against the leader's high watermark
(a bar on a terminal, a line per change otherwise); it returns when the shard has the new set
and a leader, at most ${WAIT_LIMIT_MS / 60_000} minutes.`;

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

function shardPath(name: string): string {
  return `/api/cluster/shards/${encodeURIComponent(name)}`;
}

async function reassign(context: CtlContext, values: FlagValues, name: string, replicas: string[]): Promise<string> {
  const begun = await context.client.post<ShardPlacement>(`${shardPath(name)}/reassign`, { replicas });
  if (values['no-wait'] === true) return context.json ? json(begun) : `shard ${name} is moving from ${begun.replicas.join(',')} to ${replicas.join(',')}`;
  const wanted = replicas.join(',');
  const group = process.stderr.isTTY ? createProgressGroup(process.stderr) : null;
  const bars = new Map<string, ReturnType<NonNullable<typeof group>['bar']>>();
  let last = '';
  const deadline = Date.now() + WAIT_LIMIT_MS;
  try {
    for (;;) {
      const now = await context.client.get<ShardPlacement>(shardPath(name));
      if (now.target === null && now.replicas.join(',') === wanted && now.leader !== null) return context.json ? json(now) : `shard ${name} has the replicas ${wanted}; ${now.leader} leads epoch ${now.leaderEpoch}`;
      if (now.target === null && now.replicas.join(',') !== wanted) throw new Error(`shard ${name}'s change was given up (a learner's node is gone?); it has the replicas ${now.replicas.join(',')}`);
      for (const learner of now.learners) {
        const total = Math.max(1, now.highWatermark ?? 1);
        if (group !== null) {
          let bar = bars.get(learner.node);
          if (bar === undefined) {
            bar = group.bar(`learner ${learner.node}`, 'offsets');
            bars.set(learner.node, bar);
          }
          bar.set(Math.max(0, Math.min(learner.durable, total)), total);
        }
      }
      const line = now.target === null ? 'electing' : now.learners.map((learner) => `learner ${learner.node}: ${Math.max(0, learner.durable)} of ${now.highWatermark ?? '?'}`).join(', ');
      if (group === null && line !== last) process.stderr.write(`${name}: ${line || 'switching'}\n`);
      last = line;
      if (Date.now() > deadline) throw new Error(`shard ${name} did not switch to ${wanted} within ${WAIT_LIMIT_MS / 60_000} minutes; GET ${shardPath(name)} shows where it is`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    group?.stop();
  }
}

function nodeList(raw: unknown, flag: string): string[] {
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${flag} takes NODE,NODE,... (journal node ids)`);
  const nodes = raw.split(',').map((node) => node.trim());
  if (nodes.some((node) => node === '')) throw new UsageError(`${flag} has an empty node id: ${JSON.stringify(raw)}`);
  return nodes;
}

function oneNode(raw: unknown, flag: string): string {
  if (typeof raw !== 'string' || raw.trim() === '' || raw.includes(',')) throw new UsageError(`${flag} takes one journal node id`);
  return raw.trim();
}

const reassignCommand = ctlCommand({
  words: ['shard', 'reassign'],
  summary: "Move a shard's replica set to the given journal nodes",
  args: 'SHARD',
  positionals: 1,
  options: { replicas: { type: 'string' }, 'no-wait': { type: 'boolean' } },
  flags: `  --replicas N,N,...  the new replica set, journal node ids, the preferred leader first (required)
${WAIT_FLAGS}`,
  description: `
Asks placement to move SHARD to the replica set --replicas. The nodes not in the set yet copy the
shard as learners while appends go on; once they hold the leader's high watermark, the set
switches in a new epoch and a leader is elected among it (docs/replication.md).

${COMMON_NOTE}`,
  details: '--json prints the shard as GET /api/cluster/shards/SHARD shows it: {name, replicas, leader, leaderEpoch, state, target, learners, highWatermark}.',
  async run(context, values, [shard]) {
    return reassign(context, values, shard as string, nodeList(values.replicas, '--replicas'));
  },
});

const moveCommand = ctlCommand({
  words: ['shard', 'move'],
  summary: 'Move one replica of a shard from one journal node to another',
  args: 'SHARD',
  positionals: 1,
  options: { from: { type: 'string' }, to: { type: 'string' }, 'no-wait': { type: 'boolean' } },
  flags: `  --from NODE      the replica to move away (required)
  --to NODE        the journal node to move it to (required)
${WAIT_FLAGS}`,
  description: `
Moves SHARD's replica on --from to --to, keeping its place in the set: the same as reassign
with --from replaced by --to. --from must hold a replica and --to must not.

${COMMON_NOTE}`,
  details: '--json prints the shard as GET /api/cluster/shards/SHARD shows it.',
  async run(context, values, [shard]) {
    const name = shard as string;
    const from = oneNode(values.from, '--from');
    const to = oneNode(values.to, '--to');
    const now = await context.client.get<ShardPlacement>(shardPath(name));
    if (!now.replicas.includes(from)) throw new UsageError(`node ${from} holds no replica of ${name} (replicas: ${now.replicas.join(',')})`);
    if (now.replicas.includes(to as string)) throw new UsageError(`node ${to} already holds a replica of ${name}`);
    return reassign(context, values, name, now.replicas.map((id) => (id === from ? to : id)));
  },
});

export const shardCtlCommands: Command[] = [moveCommand, reassignCommand];
