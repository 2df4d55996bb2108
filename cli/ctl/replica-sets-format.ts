// `shardline ctl replica sets` as text: GET /api/replication/sets, a table row per replica under
// a line per shard, with a bar for each replica behind the leader measured as the dashboard's
// Replication page and `ctl replica status --watch` measure it (its fetched end within the
// leader's log), learners of a replica-set change included (marked +). Pure: the answer in,
// lines out.
import { formatTable } from '../table.js';

export interface ReplicaSetsAnswer {
  origin: string;
  total: number;
  items: Array<{
    shard: string;
    epoch: number;
    leader: string | null;
    leaderLogStart: number | null;
    leaderLogEnd: number | null;
    highWatermark: number | null;
    replicas: Array<{
      node: string;
      recordedLeader: boolean;
      learner: boolean;
      reachable: boolean;
      error: string | null;
      role: string | null;
      epoch: number | null;
      logEnd: number | null;
      durable: number | null;
      highWatermark: number | null;
      fetched: number | null;
      recordsBehind: number | null;
    }>;
  }>;
}

const BAR_WIDTH = 20;

type Item = ReplicaSetsAnswer['items'][number];
type Replica = Item['replicas'][number];

/** `[#####...............]  5/20 (25%)` for a replica behind the leader; words otherwise. */
export function catchUpBar(item: Item, replica: Replica): string {
  if (replica.recordsBehind === null || item.leaderLogEnd === null || item.leaderLogStart === null) return '-';
  if (replica.recordsBehind === 0) return 'caught up';
  const total = item.leaderLogEnd - item.leaderLogStart;
  // No fetched end with a lag: a learner that has not fetched yet, at the start of the leader's log.
  const done = Math.min(total, Math.max(0, (replica.fetched ?? item.leaderLogStart) - item.leaderLogStart));
  const filled = total === 0 ? BAR_WIDTH : Math.floor((done / total) * BAR_WIDTH);
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total} (${percent}%)`;
}

const dash = (value: number | string | null): string => (value === null ? '-' : String(value));

export function formatReplicaSets(answer: ReplicaSetsAnswer): string {
  if (answer.items.length === 0) return 'no replicated shards';
  const rows = answer.items.flatMap((item) => item.replicas.map((replica, index) => [
    index === 0 ? item.shard : '',
    index === 0 ? `${item.epoch}` : '',
    `${replica.node}${replica.recordedLeader ? ' *' : ''}${replica.learner ? ' +' : ''}`,
    replica.learner ? `learner${replica.role === null || replica.role === 'follower' ? '' : ` (${replica.role})`}` : dash(replica.role),
    dash(replica.logEnd),
    dash(replica.durable),
    dash(replica.highWatermark),
    dash(replica.recordsBehind),
    catchUpBar(item, replica),
    replica.reachable ? 'ok' : `not answering: ${replica.error ?? 'no answer'}`,
  ]));
  const table = formatTable([
    { title: 'shard' }, { title: 'epoch', align: 'right' }, { title: 'replica' }, { title: 'role' }, { title: 'end', align: 'right' },
    { title: 'durable', align: 'right' }, { title: 'hw', align: 'right' }, { title: 'lag', align: 'right' }, { title: 'catch-up' }, { title: 'state' },
  ], rows);
  const shown = answer.items.length < answer.total ? `\n${answer.items.length} of ${answer.total} shards shown (--limit)` : '';
  const learners = answer.items.some((item) => item.replicas.some((replica) => replica.learner)) ? '\n+ a learner of a replica-set change: copying the shard from the leader, counted for nothing until placement switches the set' : '';
  return `${table}\n* the leader placement records; durable and lag as the leader last heard them${learners}${shown}`;
}
