// One replicated shard's replica set as the dashboard's Replication page shows it: what placement
// records (replicas, leader, epoch, the learners of a change in progress) joined with what each replica answered about itself (role,
// epoch, HW, log end) and what the leader reports of each follower (fetched and durable ends,
// how far behind). Pure: the answers are gathered by the route (replica-set-routes.ts).
//
// Whose figures: a replica's end offset and HW are its own answer. Its durable offset and lag
// are the leader's view of it (the leader is the one that counts them toward the HW), taken from
// the replica that answers as leader in the newest epoch, as `ctl replica status` does; the
// leader's own durable offset is its log end (replicated shards run in fsync mode, where the log
// end is the durable end: journal/replica/replica-log.ts). Without an answering leader these
// figures are null, never a guess.
import type { journalWire } from '../journal/index.js';

/** A shard's replica set as recorded: placement's shard record, or a journal node's own view without placement. */
export interface ReplicaSetRecord {
  readonly name: string;
  /** Node ids; the first is the preferred leader. */
  readonly replicas: readonly string[];
  readonly leader: string | null;
  readonly epoch: number;
  /**
   * The learners of a replica-set change in progress: nodes of its target outside `replicas`,
   * copying the shard from the leader until placement switches the set (none without one).
   */
  readonly learners?: readonly string[];
}

/** One replica's answer to ReplicaStatus, or why there is none. */
export type ReplicaAnswer = { readonly node: string; readonly address: string | null } & ({ readonly status: journalWire.ReplicaStatusResponse } | { readonly error: string });

export interface ReplicaRow {
  node: string;
  address: string | null;
  /** Whether placement records this node as the shard's leader. */
  recordedLeader: boolean;
  /** A learner of a replica-set change: copying the shard, counted for nothing until the switch. */
  learner: boolean;
  /** false: the replica did not answer (`error` says why). */
  reachable: boolean;
  error: string | null;
  role: string | null;
  epoch: number | null;
  /** The leader this replica knows ('' none). */
  leader: string | null;
  highWatermark: number | null;
  logStart: number | null;
  logEnd: number | null;
  lastEpoch: number | null;
  voter: boolean | null;
  /** The log end the leader last heard from this replica (its own log end on the leader; null for a learner that has not fetched yet). */
  fetched: number | null;
  durable: number | null;
  /** Offsets between `fetched` and the leader's log end (0 on the leader). */
  recordsBehind: number | null;
  bytesBehind: number | null;
}

export interface ReplicaSetItem {
  shard: string;
  /** The recorded epoch and leader (null: none recorded). */
  epoch: number;
  leader: string | null;
  /** The replica answering as leader in the newest epoch, whose view the progress figures are ('' none). */
  answeringLeader: string;
  /** That leader's log start, log end and HW: what a catching-up replica's progress is measured against. */
  leaderLogStart: number | null;
  leaderLogEnd: number | null;
  highWatermark: number | null;
  /** The recorded replicas' rows in the recorded order, then the learners'. */
  replicas: ReplicaRow[];
}

function leaderAnswer(answers: readonly ReplicaAnswer[]): journalWire.ReplicaStatusResponse | undefined {
  let found: journalWire.ReplicaStatusResponse | undefined;
  for (const answer of answers) {
    if (!('status' in answer) || answer.status.role !== 'leader') continue;
    if (found === undefined || answer.status.epoch > found.epoch) found = answer.status;
  }
  return found;
}

/** The leader's view of one replica's progress; a learner that has not fetched yet (the leader reports -1) has copied nothing of the leader's log. */
function progressOf(node: string, leader: journalWire.ReplicaStatusResponse | undefined): Pick<ReplicaRow, 'fetched' | 'durable' | 'recordsBehind' | 'bytesBehind'> {
  if (leader !== undefined && leader.node === node) return { fetched: leader.logEnd, durable: leader.logEnd, recordsBehind: 0, bytesBehind: 0 };
  const progress = leader?.followers.find((follower) => follower.node === node);
  if (leader === undefined || progress === undefined) return { fetched: null, durable: null, recordsBehind: null, bytesBehind: null };
  if (progress.fetched < 0) return { fetched: null, durable: null, recordsBehind: leader.logEnd - leader.logStart, bytesBehind: progress.bytesBehind };
  return { fetched: progress.fetched, durable: progress.durable, recordsBehind: progress.recordsBehind, bytesBehind: progress.bytesBehind };
}

function rowOf(answer: ReplicaAnswer, record: ReplicaSetRecord, leader: journalWire.ReplicaStatusResponse | undefined, learner: boolean): ReplicaRow {
  const base = { node: answer.node, address: answer.address, recordedLeader: record.leader === answer.node, learner };
  const seen = progressOf(answer.node, leader);
  if (!('status' in answer)) {
    return { ...base, reachable: false, error: answer.error, role: null, epoch: null, leader: null, highWatermark: null, logStart: null, logEnd: null, lastEpoch: null, voter: null, ...seen };
  }
  const { status } = answer;
  return { ...base, reachable: true, error: null, role: status.role, epoch: status.epoch, leader: status.leader, highWatermark: status.highWatermark, logStart: status.logStart, logEnd: status.logEnd, lastEpoch: status.lastEpoch, voter: status.voter, ...seen };
}

/** The replica set of one shard: a row per recorded replica, in the recorded order, then one per learner. */
export function replicaSetView(record: ReplicaSetRecord, answers: readonly ReplicaAnswer[]): ReplicaSetItem {
  const leader = leaderAnswer(answers);
  const byNode = new Map(answers.map((answer) => [answer.node, answer]));
  const row = (node: string, learner: boolean): ReplicaRow => rowOf(byNode.get(node) ?? { node, address: null, error: 'no answer asked (no address known)' }, record, leader, learner);
  const replicas = [...record.replicas.map((node) => row(node, false)), ...(record.learners ?? []).map((node) => row(node, true))];
  return {
    shard: record.name,
    epoch: record.epoch,
    leader: record.leader,
    answeringLeader: leader?.node ?? '',
    leaderLogStart: leader?.logStart ?? null,
    leaderLogEnd: leader?.logEnd ?? null,
    highWatermark: leader?.highWatermark ?? null,
    replicas,
  };
}
