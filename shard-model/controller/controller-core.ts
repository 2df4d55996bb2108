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
import { chooseLeader, electionQuorum, learnersCaughtUp, type ElectionCandidate } from '../../journal/index.js';
import type { ClientCommand } from '../../placement/service/index.js';
import type { CommandResult, NodeRecord, ShardRecord } from '../../placement/metadata/index.js';

/** The placement setting (a number, 1-5) that gives new shards their replica count. */
export const REPLICATION_FACTOR_SETTING = 'replication.factor';
export const DEFAULT_REPLICATION_FACTOR = 3;
export const MAX_REPLICATION_FACTOR = 5;

/** What the controller learned from one replica of one shard. */
export type ReplicaObservation =
  /** lastEpoch: the epoch of the replica's last batch (0: it holds none). */
  | {
      readonly kind: 'status';
      readonly role: string;
      readonly epoch: number;
      readonly leader: string;
      readonly lastEpoch: number;
      /** Whether its election answers count (false while it catches up after joining or a wipe). */
      readonly voter?: boolean;
      /** On a leader: its HW, its epoch-start offset, and each follower's and learner's reported durable end. */
      readonly highWatermark?: number;
      readonly epochStartOffset?: number;
      readonly progress?: ReadonlyMap<string, number>;
    }
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

/**
 * The placement setting (ms, or "never") after which a journal node whose lease ran out is
 * replaced on every shard it held; 0 or "never" turns it off.
 */
export const REPLACE_AFTER_SETTING = 'replication.replace-after-ms';
export const DEFAULT_REPLACE_AFTER_MS = 600_000;

/** The replace-after setting in ms; Infinity when replacement is off. */
export function replaceAfterMs(setting: unknown): number {
  if (setting === 'never' || setting === 0) return Infinity;
  return typeof setting === 'number' && Number.isSafeInteger(setting) && setting > 0 ? setting : DEFAULT_REPLACE_AFTER_MS;
}

/**
 * The placement setting (ms) for how long a replica must lack a shard before the controller
 * creates it there. The wait lets the broker that creates a new shard give it its config first
 * (the controller would create it with the defaults); a replica that lost its data directory gets
 * the leader's config, so the wait only delays its repair. Tests of a running cluster lower it.
 */
export const CREATE_GRACE_SETTING = 'replication.create-grace-ms';
export const DEFAULT_CREATE_GRACE_MS = 10_000;

/** The create-grace setting in ms: a whole number of 0 or more, else the default. */
export function createGraceMs(setting: unknown): number {
  return typeof setting === 'number' && Number.isSafeInteger(setting) && setting >= 0 ? setting : DEFAULT_CREATE_GRACE_MS;
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

/**
 * The replica set a shard should move to because one of its replicas' nodes is gone for good
 * (not registered, or its lease ran out `replaceAfter` ms ago or more), or null. One replica at
 * a time (a change keeps a majority of the old set), replaced in its place in the order by the
 * live journal node outside the set that holds the fewest replicas, then by id (assignReplicas'
 * rule); null while no such node exists or a change is already in progress.
 */
export function planReplacement(shard: ShardRecord, view: ControllerView, now: number, replaceAfter: number): string[] | null {
  if (shard.target !== undefined || !Number.isFinite(replaceAfter)) return null;
  const gone = shard.replicas.find((id) => {
    const node = view.nodes.get(id);
    return node === undefined || node.leaseExpiresAt + replaceAfter <= now;
  });
  if (gone === undefined) return null;
  const held = new Map<string, number>();
  for (const other of view.shards.values()) for (const node of [...other.replicas, ...(other.target ?? [])]) held.set(node, (held.get(node) ?? 0) + 1);
  const spare = liveJournalNodes(view.nodes, now)
    .map((node) => node.id)
    .filter((id) => !shard.replicas.includes(id))
    .sort((a, b) => (held.get(a) ?? 0) - (held.get(b) ?? 0) || compare(a, b))[0];
  if (spare === undefined) return null;
  return shard.replicas.map((id) => (id === gone ? spare : id));
}

/** What a shard with a replica-set change in progress needs (docs/replication.md, "Changing a replica set"). */
export interface ChangeDecision {
  /** Give the change up (a learner's node is gone), or null. */
  readonly cancel: string | null;
  /** Learners that lack the shard: create it there with the leader's config. */
  readonly create: readonly string[];
  /** Replicas to tell the epoch, its leader and the learners: learners not yet copying, and a leader that does not list them. */
  readonly inform: readonly string[];
  /** Every learner has reported the leader's HW durable: switch to the target (switch-replicas, then an election). */
  readonly switchNow: boolean;
}

/** The learners of a change: the target's nodes outside the replica set. */
export function learnersOf(shard: ShardRecord): string[] {
  return (shard.target ?? []).filter((id) => !shard.replicas.includes(id));
}

export function decideChange(shard: ShardRecord, nodes: ReadonlyMap<string, NodeRecord>, now: number, observations: ReadonlyMap<string, ReplicaObservation>): ChangeDecision | null {
  if (shard.target === undefined) return null;
  const learners = learnersOf(shard);
  const lost = learners.find((id) => (nodes.get(id)?.leaseExpiresAt ?? 0) <= now);
  if (lost !== undefined) return { cancel: `learner ${lost} is not live`, create: [], inform: [], switchNow: false };
  const create = learners.filter((id) => observations.get(id)?.kind === 'missing');
  const leader = shard.leader;
  const led = leader === null ? undefined : observations.get(leader);
  if (leader === null || led?.kind !== 'status' || led.role !== 'leader' || led.epoch !== shard.leaderEpoch) return { cancel: null, create, inform: [], switchNow: false };
  const progress = led.progress ?? new Map<string, number>();
  const inform = learners.filter((id) => {
    const seen = observations.get(id);
    if (seen?.kind === 'unreplicated') return true;
    return seen?.kind === 'status' && (seen.epoch < shard.leaderEpoch || seen.leader !== leader);
  });
  if (learners.some((id) => !progress.has(id))) inform.push(leader);
  // Until the HW passes the leader's epoch start it may lag behind what earlier epochs committed.
  const highWatermark = led.highWatermark !== undefined && led.highWatermark > (led.epochStartOffset ?? 0) ? led.highWatermark : Infinity;
  // The new set's first elections count only the replicas it keeps: each must vote (none still
  // catching up from an earlier change or a wipe), or the set could be left without a majority.
  const keptVote = shard.replicas.filter((id) => shard.target?.includes(id) === true).every((id) => {
    const seen = observations.get(id);
    return seen?.kind === 'status' && seen.voter !== false;
  });
  const switchNow = inform.length === 0 && create.length === 0 && keptVote && learnersCaughtUp(learners, highWatermark, progress);
  return { cancel: null, create, inform, switchNow };
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
  /** Announce `epoch` to `replicas` (the epoch's set) and to `alsoFence` (replicas a switch removed: fenced, not counted). */
  | { readonly kind: 'announce'; readonly epoch: number; readonly replicas: readonly string[]; readonly alsoFence: readonly string[] }
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
  /** The replica set of the epoch being elected: the shard's, or the target a switch makes it. */
  readonly members: readonly string[];
  private readonly switching: boolean;

  /**
   * `switching`: the election that ends a replica-set change. Its reservation is switch-replicas
   * (the target becomes the replica set in the new epoch); the epoch is announced to the old
   * replicas too, so a removed one that still runs is fenced, but only the new set's answers
   * count, and its new members answer SL_REPL_NOT_VOTER until they have copied the shard in it.
   */
  constructor(readonly shard: ShardRecord, options: { switching?: boolean } = {}) {
    this.switching = options.switching === true && shard.target !== undefined;
    this.members = this.switching ? (shard.target as readonly string[]) : shard.replicas;
  }

  get reservedEpoch(): number {
    return this.epoch;
  }

  /** Step 1: the compare-and-set that reserves epoch leaderEpoch + 1 for this election. */
  start(): ElectionStep {
    this.expect('start');
    this.stage = 'reserving';
    if (this.switching) return { kind: 'propose', command: { type: 'switch-replicas', shard: this.shard.name, expectedEpoch: this.shard.leaderEpoch } };
    return { kind: 'propose', command: { type: 'set-shard-leader', shard: this.shard.name, leader: null, expectedEpoch: this.shard.leaderEpoch } };
  }

  onReserved(result: CommandResult): ElectionStep {
    this.expect('reserving');
    if (result.status !== 'ok' || result.leaderEpoch === undefined) return this.abort(`placement refused the reservation: ${result.status === 'refused' ? `${result.code} (${result.detail})` : 'no epoch'}`);
    this.epoch = result.leaderEpoch;
    this.stage = 'announcing';
    const removed = this.shard.replicas.filter((id) => !this.members.includes(id));
    return { kind: 'announce', epoch: this.epoch, replicas: this.members, alsoFence: removed };
  }

  /** Step 2: the replicas that took the epoch, with their durable positions. */
  onAnswers(answers: readonly ElectionCandidate[]): ElectionStep {
    this.expect('announcing');
    const members = answers.filter((answer) => this.members.includes(answer.node));
    const quorum = electionQuorum(this.members.length);
    if (members.length < quorum) return this.abort(`${members.length} of ${this.members.length} replicas took epoch ${this.epoch} as voters, ${quorum} needed`);
    // The replica set's order breaks ties: the first is the preferred leader.
    const ordered = [...members].sort((a, b) => this.members.indexOf(a.node) - this.members.indexOf(b.node));
    this.chosen = (chooseLeader(ordered) as ElectionCandidate).node;
    this.stage = 'recording';
    return { kind: 'propose', command: { type: 'record-shard-leader', shard: this.shard.name, epoch: this.epoch, leader: this.chosen } };
  }

  /** Step 3: only a leader placement recorded is named to the replicas. */
  onRecorded(result: CommandResult): ElectionStep {
    this.expect('recording');
    if (result.status !== 'ok') return this.abort(`placement refused to record leader ${this.chosen} for epoch ${this.epoch}: ${result.code} (${result.detail})`);
    this.stage = 'done';
    return { kind: 'lead', epoch: this.epoch, leader: this.chosen as string, replicas: this.members };
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
