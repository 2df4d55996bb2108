// The replication controller's decisions (docs/replication.md, "Placement-driven replication"),
// pure: no sockets, files or timers. Given placement's state (nodes with their journal addresses
// and leases, shard records) and what the controller last learned from each replica
// (ReplicaStatus), it says which replicas a new shard gets, when a shard needs an election, and
// runs the election itself by the journal's rule (chooseLeader).
//
// Placement is the serialization point for epochs. An election is three steps, each gated by
// placement's state machine:
//   1. reserve: set-shard-leader {leader: null, expectedEpoch: E} — a compare-and-set that only
//      one controller can win for E; the winner owns epoch E+1, nobody else may announce it;
//   2. announce E+1 to the replica set; once a majority answered, chooseLeader picks the leader
//      (once: an epoch's leader is never chosen twice);
//   3. record: record-shard-leader {epoch: E+1, leader} — refused unless E+1 is still the shard's
//      epoch and has no leader; only then are the replicas told who leads.
// So the placement epoch of a shard is its replication epoch, and two controllers (a deposed
// placement leader still running) can never make two leaders in one epoch: the second one to
// reserve gets stale-epoch and announces nothing, and a leader is told only after placement
// recorded it.
import { chooseLeader, electionQuorum, type ElectionCandidate } from '../../journal/index.js';
import type { ClientCommand } from '../../placement/service/index.js';
import type { CommandResult, NodeRecord, ShardRecord } from '../../placement/metadata/index.js';

/** The placement setting (a number, 1-5) that gives new shards their replica count. */
export const REPLICATION_FACTOR_SETTING = 'replication.factor';
export const DEFAULT_REPLICATION_FACTOR = 3;
export const MAX_REPLICATION_FACTOR = 5;

/** What the controller learned from one replica of one shard. */
export type ReplicaObservation =
  /** lastEpoch: the epoch of the replica's last batch (0: it holds none). */
  | { readonly kind: 'status'; readonly role: string; readonly epoch: number; readonly leader: string; readonly lastEpoch: number }
  /** The shard is there but no election has reached it on this node. */
  | { readonly kind: 'unreplicated' }
  /** The node does not hold the shard. */
  | { readonly kind: 'missing' }
  /** The controller could not ask it; `since`: when it first failed to (ms, the controller's clock). */
  | { readonly kind: 'unreachable'; readonly since: number };

/** The part of placement's state the controller reads. */
export interface ControllerView {
  readonly nodes: ReadonlyMap<string, NodeRecord>;
  readonly shards: ReadonlyMap<string, ShardRecord>;
}

export function replicationFactor(setting: unknown): number {
  return typeof setting === 'number' && Number.isInteger(setting) && setting >= 1 && setting <= MAX_REPLICATION_FACTOR ? setting : DEFAULT_REPLICATION_FACTOR;
}

/** Journal nodes with an address and a lease that runs past `now`, by id. */
export function liveJournalNodes(nodes: ReadonlyMap<string, NodeRecord>, now: number): NodeRecord[] {
  return [...nodes.values()].filter((node) => node.roles.includes('journal') && node.addresses.journal !== undefined && node.leaseExpiresAt > now).sort((a, b) => compare(a.id, b.id));
}

/**
 * The replica set of a new shard: `factor` live journal nodes (fewer when fewer are live),
 * those holding the fewest replicas first, then those preferred to lead the fewest shards, then
 * by id; the first is the preferred leader. The second rule spreads leaders: when every node
 * holds every shard (3 journal nodes, factor 3) the first rule ties everywhere, and one node
 * led every shard, so one process served every append, fetch and tail while the others only
 * followed.
 */
export function assignReplicas(view: ControllerView, now: number, factor: number): string[] {
  const held = new Map<string, number>();
  const preferred = new Map<string, number>();
  for (const shard of view.shards.values()) {
    for (const node of shard.replicas) held.set(node, (held.get(node) ?? 0) + 1);
    const first = shard.replicas[0];
    if (first !== undefined) preferred.set(first, (preferred.get(first) ?? 0) + 1);
  }
  return liveJournalNodes(view.nodes, now)
    .map((node) => node.id)
    .sort((a, b) => (held.get(a) ?? 0) - (held.get(b) ?? 0) || (preferred.get(a) ?? 0) - (preferred.get(b) ?? 0) || compare(a, b))
    .slice(0, Math.max(1, factor));
}

export interface ShardDecision {
  /** Replicas that lack the shard (new, or their data directory was wiped): create it there. */
  readonly create: readonly string[];
  /** Why the shard needs an election, or null. */
  readonly elect: string | null;
  /** Replicas to bring into the recorded epoch (announce it if behind, then name the leader). */
  readonly inform: readonly string[];
}

/**
 * What one shard needs now. An election when it has no leader, when its leader's node is gone
 * or its lease ran out, or the controller has not reached it for `unreachableElectMs` (a killed
 * node's lease lasts longer than users should wait for their acknowledgements), or when the leader says it does not lead the recorded epoch and never
 * will (it restarted: a replica never leads an epoch twice) or holds a newer one. Replicas that
 * missed the recorded epoch (down during the election, or the leader's name never reached them)
 * are informed; a replica at a newer epoch than placement's also forces an election past it.
 */
export function decideShard(shard: ShardRecord, nodes: ReadonlyMap<string, NodeRecord>, now: number, observations: ReadonlyMap<string, ReplicaObservation>, unreachableElectMs = Infinity): ShardDecision {
  const create = shard.replicas.filter((id) => observations.get(id)?.kind === 'missing');
  const ahead = shard.replicas.find((id) => {
    const seen = observations.get(id);
    return seen?.kind === 'status' && seen.epoch > shard.leaderEpoch;
  });
  if (shard.leader === null) return { create, elect: 'no leader', inform: [] };
  const leaderNode = nodes.get(shard.leader);
  if (leaderNode === undefined) return { create, elect: `leader ${shard.leader} is not registered`, inform: [] };
  if (leaderNode.leaseExpiresAt <= now) return { create, elect: `leader ${shard.leader}'s lease ran out`, inform: [] };
  if (ahead !== undefined) return { create, elect: `replica ${ahead} holds an epoch newer than ${shard.leaderEpoch}`, inform: [] };
  const seen = observations.get(shard.leader);
  if (seen?.kind === 'unreachable' && now - seen.since >= unreachableElectMs) return { create, elect: `leader ${shard.leader} unreachable for ${now - seen.since} ms`, inform: [] };
  // 'starting': told to lead and writing its epoch start; electing then would fence it every pass on a slow disk.
  if (seen?.kind === 'status' && seen.epoch === shard.leaderEpoch && seen.leader === shard.leader && seen.role !== 'leader' && seen.role !== 'starting') {
    return { create, elect: `leader ${shard.leader} restarted and cannot lead epoch ${shard.leaderEpoch} again`, inform: [] };
  }
  // The leader must take its epoch from an election; one that never did cannot be informed into it.
  if (seen !== undefined && seen.kind !== 'unreachable' && (seen.kind !== 'status' || seen.epoch < shard.leaderEpoch)) {
    return { create, elect: `leader ${shard.leader} never took epoch ${shard.leaderEpoch}`, inform: [] };
  }
  const inform = shard.replicas.filter((id) => {
    const observed = observations.get(id);
    if (observed === undefined || observed.kind === 'unreachable' || observed.kind === 'missing') return false;
    if (observed.kind === 'unreplicated') return true;
    return observed.epoch < shard.leaderEpoch || (observed.epoch === shard.leaderEpoch && observed.leader !== shard.leader);
  });
  return { create, elect: null, inform };
}

/** The effects of an election step. */
export type ElectionStep =
  | { readonly kind: 'propose'; readonly command: ClientCommand }
  | { readonly kind: 'announce'; readonly epoch: number; readonly replicas: readonly string[] }
  | { readonly kind: 'lead'; readonly epoch: number; readonly leader: string; readonly replicas: readonly string[] }
  | { readonly kind: 'abort'; readonly reason: string };

/**
 * One election of one shard, as a state machine the driver feeds with placement's answers and
 * the replicas' answers. Every path either ends in `lead` (placement recorded the leader) or
 * `abort` (nothing was recorded; the next election reserves a newer epoch).
 */
export class ShardElection {
  private stage: 'start' | 'reserving' | 'announcing' | 'recording' | 'done' = 'start';
  private epoch = -1;
  private chosen: string | null = null;

  constructor(readonly shard: ShardRecord) {}

  get reservedEpoch(): number {
    return this.epoch;
  }

  /** Step 1: the compare-and-set that reserves epoch leaderEpoch + 1 for this election. */
  start(): ElectionStep {
    this.expect('start');
    this.stage = 'reserving';
    return { kind: 'propose', command: { type: 'set-shard-leader', shard: this.shard.name, leader: null, expectedEpoch: this.shard.leaderEpoch } };
  }

  onReserved(result: CommandResult): ElectionStep {
    this.expect('reserving');
    if (result.status !== 'ok' || result.leaderEpoch === undefined) return this.abort(`placement refused the reservation: ${result.status === 'refused' ? `${result.code} (${result.detail})` : 'no epoch'}`);
    this.epoch = result.leaderEpoch;
    this.stage = 'announcing';
    return { kind: 'announce', epoch: this.epoch, replicas: this.shard.replicas };
  }

  /** Step 2: the replicas that took the epoch, with their durable positions. */
  onAnswers(answers: readonly ElectionCandidate[]): ElectionStep {
    this.expect('announcing');
    const members = answers.filter((answer) => this.shard.replicas.includes(answer.node));
    const quorum = electionQuorum(this.shard.replicas.length);
    if (members.length < quorum) return this.abort(`${members.length} of ${this.shard.replicas.length} replicas took epoch ${this.epoch}, ${quorum} needed`);
    // The replica set's order breaks ties: the first is the preferred leader.
    const ordered = [...members].sort((a, b) => this.shard.replicas.indexOf(a.node) - this.shard.replicas.indexOf(b.node));
    this.chosen = (chooseLeader(ordered) as ElectionCandidate).node;
    this.stage = 'recording';
    return { kind: 'propose', command: { type: 'record-shard-leader', shard: this.shard.name, epoch: this.epoch, leader: this.chosen } };
  }

  /** Step 3: only a leader placement recorded is named to the replicas. */
  onRecorded(result: CommandResult): ElectionStep {
    this.expect('recording');
    if (result.status !== 'ok') return this.abort(`placement refused to record leader ${this.chosen} for epoch ${this.epoch}: ${result.code} (${result.detail})`);
    this.stage = 'done';
    return { kind: 'lead', epoch: this.epoch, leader: this.chosen as string, replicas: this.shard.replicas };
  }

  private abort(reason: string): ElectionStep {
    this.stage = 'done';
    return { kind: 'abort', reason };
  }

  private expect(stage: ShardElection['stage']): void {
    if (this.stage !== stage) throw new Error(`election of ${this.shard.name}: step out of order (at ${this.stage}, expected ${stage})`);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether the shard has had a leader: then a replica without replica state (its data directory
 * was wiped) must not vote until it has caught up (SL_REPL_NOT_VOTER), or an empty log could
 * make the majority that elects a replica missing acknowledged records.
 */
export function hasBeenLed(shard: ShardRecord, observations: ReadonlyMap<string, ReplicaObservation>): boolean {
  if (shard.leader !== null) return true;
  return [...observations.values()].some((seen) => seen.kind === 'status' && (seen.leader !== '' || seen.lastEpoch >= 1));
}
