// The replicated journal's deterministic simulator: one shard, a replica set of 3 or 5, the
// leader and follower cores (../leader.ts, ../follower.ts) driven over a seeded network that
// delays, drops, duplicates and reorders, partitions of random shapes, replicas that crash at
// any step and lose their unsynced tail, a client appending with acks=quorum and reading up to
// the HW, resending every unanswered append under its writer id and sequence until it is
// answered (idempotent appends, ../writer-table.ts), and a stand-in for placement that elects
// leaders with ../election.ts. One seed is one
// whole run; the checkers run as it goes and at the end, and a failure carries the event trace.
//
// Placement here is a single process reached over the same network (so it can be cut off from
// a leader that its followers still reach); its own state does not fail: it is a Raft group in
// the real system, checked by its own simulator.
import { chooseLeader, electionQuorum, learnersCaughtUp, type ElectionCandidate } from '../election.js';
import { ReplicaFollower, type FollowerAction, type FollowerLogView } from '../follower.js';
import { ReplicaLeader } from '../leader.js';
import type { EpochEndQuery, FetchRequest, ToFollower } from '../messages.js';
import type { SequenceDecision, WriterStamp } from '../writer-table.js';
import { MemoryLog, type SimBatch } from './memory-log.js';
import { createSimRandom, type SimRandom } from './sim-random.js';

export const REPLICATION_BROKEN_VARIANTS = ['hw-counts-fetched', 'no-truncation', 'election-without-rule', 'no-fencing', 'acks-leader-only', 'no-dedup'] as const;
export type ReplicationBrokenVariant = (typeof REPLICATION_BROKEN_VARIANTS)[number];
/** Deliberate bugs in replica-set changes (runs with `reassign`), for the reassign suite's self-tests. */
export const REASSIGN_BROKEN_VARIANTS = ['learner-counts', 'learner-votes'] as const;
export type ReassignBrokenVariant = (typeof REASSIGN_BROKEN_VARIANTS)[number];

/**
 * Placement's side of an election. The default is the stand-in (the next epoch, chooseLeader);
 * sim/replication-controller-suite.ts plugs in the replication controller's core
 * (shard-model/controller) over the real placement metadata state machine.
 */
export interface SimElector {
  /** Reserves the epoch after `current` for an election; null when placement refuses it. */
  reserve(current: number): number | null;
  /** The leader of `epoch` chosen from a majority's answers, recorded in placement; null when refused. */
  record(epoch: number, answers: readonly ElectionCandidate[]): string | null;
  /** Begins moving the replica set to `target` at epoch `current` (learners copy first); false when refused. */
  begin?(current: number, target: readonly string[]): boolean;
  /** Reserves the epoch after `current` with the target as its replica set; null when refused. */
  switchSet?(current: number): number | null;
}

const STAND_IN_ELECTOR: SimElector = {
  reserve: (current) => current + 1,
  record: (_epoch, answers) => chooseLeader(answers)?.node ?? null,
};

export interface ReplicationRunOptions {
  variant?: ReplicationBrokenVariant | ReassignBrokenVariant;
  /**
   * Replica-set changes during the faults: spare nodes beside the set, and placement moves one
   * replica at a time to a spare (the elector must implement begin and switchSet).
   */
  reassign?: boolean;
  /** Placement's elections over the run's replica set and every node (spares too); the stand-in when unset. */
  electorFor?: (replicas: readonly string[], nodes: readonly string[]) => SimElector;
  /** keep the whole trace instead of the last events (for --seed replays) */
  traceCapacity?: number;
}

export interface ReplicationRunResult {
  failure: string | null;
  trace: string;
  stats: Record<string, number>;
}

const PLACEMENT = 'P';
const CLIENT = 'C';
/** faults stop here; from then on the network is perfect and every replica is up */
const HEAL_AT = 1500;
/** after the heal, an append must be acknowledged within this long (liveness) */
const LIVENESS_BOUND = 500;
const END_AT = HEAL_AT + 800;
const TICK = 10;
const PLACEMENT_TICK = 20;
const LEADER_TIMEOUT = 120;
const ELECTION_TIMEOUT = 100;
const APPEND_TIMEOUT = 150;
const FETCH_RETRY = 40;
/** the client's writer id (one writer; its sequences start at 0) */
const WRITER_ID = 7;
/** appends the client keeps unanswered at most (within the table's recentPerWriter) */
const CLIENT_IN_FLIGHT = 8;

type PlacementMessage =
  | { type: 'new-epoch'; epoch: number }
  | { type: 'leadership'; epoch: number; leader: string; replicas: string[]; learners: string[] };
type ToPlacement =
  /** voter false: the replica took the epoch but may not be counted (SL_REPL_NOT_VOTER) */
  | { type: 'epoch-ack'; from: string; epoch: number; lastEpoch: number; durableEnd: number; voter: boolean }
  /** learnerDurable: each learner's reported durable end, for placement's switch decision */
  | { type: 'leader-alive'; from: string; epoch: number; highWatermark: number; learnerDurable: [string, number][] };
type ClientMessage =
  | { type: 'append'; id: number; values: string[]; writer: WriterStamp }
  | { type: 'read'; id: number; from: number };
type ToClient =
  | { type: 'append-ack'; from: string; id: number; baseOffset: number; epoch: number; values: string[] }
  | { type: 'not-leader'; from: string; id: number }
  | { type: 'out-of-sequence'; from: string; id: number; expected: number }
  | { type: 'read-reply'; from: string; id: number; records: [number, string][] };
type Message = ToFollower<SimBatch> | FetchRequest | EpochEndQuery | PlacementMessage | ToPlacement | ClientMessage | ToClient;

class CheckFailure extends Error {}

type Role =
  | { kind: 'none' }
  | {
      kind: 'leader';
      core: ReplicaLeader;
      pending: Map<number, { id: number; baseOffset: number; count: number; values: string[] }>;
      /** appends that arrived before an earlier one of their writer, by sequence (the real driver parks them too) */
      parked: Map<number, Extract<ClientMessage, { type: 'append' }>>;
    }
  | { kind: 'follower'; core: ReplicaFollower<SimBatch> };

interface Replica {
  id: string;
  up: boolean;
  /** bumped on every restart, so timers of a dead incarnation do nothing */
  incarnation: number;
  log: MemoryLog;
  /** durable: the newest epoch this replica has heard of; it never goes down */
  knownEpoch: number;
  /** durable: epochs this replica has led; it never leads one again after a restart */
  ledEpochs: Set<number>;
  role: Role;
  /** volatile: the HW last known while not following or leading */
  idleHighWatermark: number;
  syncing: boolean;
  /**
   * durable: whether its election answers count. False from when it became a learner until it
   * holds, as a member, a batch of its leader's epoch (replica.json's voter flag).
   */
  voter: boolean;
  /** durable: the replica set of the epoch it follows (its last leadership message) */
  members: string[];
}

interface QueuedEvent {
  at: number;
  seq: number;
  run: () => void;
}

/** A binary min-heap on (at, seq): equal times run in the order they were scheduled. */
class EventQueue {
  private readonly heap: QueuedEvent[] = [];
  private seq = 0;
  push(at: number, run: () => void): void {
    const event = { at, seq: this.seq++, run };
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent] as QueuedEvent)) break;
      heap[i] = heap[parent] as QueuedEvent;
      i = parent;
    }
    heap[i] = event;
  }
  pop(): QueuedEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right] as QueuedEvent, heap[left] as QueuedEvent) ? right : left;
      if (!before(heap[child] as QueuedEvent, last)) break;
      heap[i] = heap[child] as QueuedEvent;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
const before = (a: QueuedEvent, b: QueuedEvent): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

class Trace {
  private readonly lines: string[] = [];
  private dropped = 0;
  constructor(private readonly capacity: number) {}
  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) {
      this.lines.shift();
      this.dropped++;
    }
  }
  render(header: string): string {
    return [header, ...(this.dropped > 0 ? [`... ${this.dropped} earlier events not kept`] : []), ...this.lines].join('\n');
  }
}

export function runReplicationCluster(seed: number, options: ReplicationRunOptions = {}): ReplicationRunResult {
  return new ReplicationCluster(seed, options).run();
}

class ReplicationCluster {
  private readonly random: SimRandom;
  private readonly faults: SimRandom;
  private readonly network: SimRandom;
  private readonly workload: SimRandom;
  private readonly variant: ReplicationBrokenVariant | ReassignBrokenVariant | undefined;
  private readonly reassign: boolean;
  private readonly elector: SimElector;
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly header: string;
  private now = 0;
  private readonly replicas: Replica[];
  /** every node, spares included */
  private readonly ids: string[];
  /** the replica set (placement's), and the target of a change in progress */
  private members: string[];
  private target: string[] | null = null;
  private changeBegunAt = 0;
  private readonly factor: number;
  /** groups of nodes that reach each other; null: no partition. The client reaches everyone. */
  private partition: { groups: string[][]; bridges: string[] } | null = null;
  private dropRate: number;
  private duplicateRate: number;
  private maxDelay: number;
  private crashRate: number;
  /** small during the faults (a follower then holds an old-epoch record without the leader's newer ones), 32 after the heal so repair keeps up */
  private maxBatchesPerFetch: number;
  private healed = false;

  // placement's state
  private placementEpoch = 0;
  private placementLeader: string | null = null;
  private electing: { epoch: number; answers: Map<string, ElectionCandidate>; startedAt: number } | null = null;
  private lastAlive = 0;

  // the client's state and the checkers' knowledge
  private nextId = 1;
  private clientLeader: string | null = null;
  /** unanswered appends by sequence, oldest first; each is resent until answered */
  private readonly outstanding = new Map<number, { sentAt: number; values: string[]; resend: boolean }>();
  private nextSequence = 0;
  /** offset -> value of every acknowledged record */
  private readonly acked = new Map<number, string>();
  /** offset -> value of every record a reader was given */
  private readonly observed = new Map<number, string>();
  private firstAckAfterHeal: number | null = null;
  private firstSequenceAfterHeal = Number.POSITIVE_INFINITY;
  private maxEpochSeen = 0;
  private readonly stats = { appendsSent: 0, appendsResent: 0, duplicatesAnswered: 0, outOfSequence: 0, recordsAcked: 0, reads: 0, recordsRead: 0, elections: 0, crashes: 0, partitions: 0, truncations: 0, fencedReplies: 0, messages: 0, changesBegun: 0, switches: 0 };

  constructor(private readonly seed: number, options: ReplicationRunOptions) {
    this.random = createSimRandom(seed);
    this.faults = this.random.fork('faults');
    this.network = this.random.fork('network');
    this.workload = this.random.fork('workload');
    this.variant = options.variant;
    this.reassign = options.reassign === true;
    this.trace = new Trace(options.traceCapacity ?? 300);
    const size = this.random.chance(0.5) ? 3 : 5;
    this.factor = size;
    // Spares are drawn only with reassign, so the other suites' seeds replay as before.
    const spares = this.reassign ? 1 + this.random.int(2) : 0;
    this.ids = Array.from({ length: size + spares }, (_, i) => `r${i + 1}`);
    this.members = this.ids.slice(0, size);
    this.elector = options.electorFor?.(this.members, this.ids) ?? STAND_IN_ELECTOR;
    if (this.reassign && (this.elector.begin === undefined || this.elector.switchSet === undefined)) throw new Error('reassign needs an elector with begin and switchSet');
    this.replicas = this.ids.map((id) => ({ id, up: true, incarnation: 0, log: new MemoryLog(), knownEpoch: 0, ledEpochs: new Set(), role: { kind: 'none' }, idleHighWatermark: 0, syncing: false, voter: true, members: [] }));
    this.dropRate = this.random.pick([0, 0.02, 0.1]);
    this.duplicateRate = this.random.pick([0, 0.03, 0.1]);
    this.maxDelay = this.random.pick([5, 15, 40]);
    this.crashRate = this.random.pick([0.002, 0.01, 0.03]);
    this.maxBatchesPerFetch = this.random.pick([1, 2, 32]);
    this.header = `seed ${seed}: ${size} replicas${spares > 0 ? ` and ${spares} spare(s)` : ''}, drop ${this.dropRate}, duplicate ${this.duplicateRate}, delay <= ${this.maxDelay} ms, crash rate ${this.crashRate}/tick, ${this.maxBatchesPerFetch} batches per fetch, variant ${this.variant ?? 'none'}`;
  }

  run(): ReplicationRunResult {
    let failure: string | null = null;
    try {
      for (const replica of this.replicas) this.scheduleTick(replica, this.random.int(TICK));
      this.queue.push(0, () => this.placementTick());
      this.queue.push(5, () => this.clientTick());
      this.queue.push(TICK, () => this.faultTick());
      this.queue.push(HEAL_AT, () => this.heal());
      this.queue.push(25, () => this.checkTick());
      for (;;) {
        const event = this.queue.pop();
        if (event === undefined || event.at > END_AT) break;
        this.now = event.at;
        event.run();
      }
      this.now = END_AT;
      this.finalChecks();
    } catch (error) {
      if (!(error instanceof CheckFailure)) {
        failure = `the simulator or a core threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
      } else {
        failure = error.message;
      }
      this.note(`FAILED: ${failure.split('\n')[0]}`);
    }
    return { failure, trace: this.trace.render(this.header), stats: { ...this.stats } };
  }

  private note(line: string): void {
    this.trace.add(`t=${this.now} ${line}`);
  }

  private fail(message: string): never {
    throw new CheckFailure(message);
  }

  // ---- network ----

  private connects(from: string, to: string): boolean {
    if (this.partition === null || from === to || from === CLIENT || to === CLIENT) return true;
    if (this.partition.bridges.includes(from) || this.partition.bridges.includes(to)) return true;
    return this.partition.groups.some((group) => group.includes(from) && group.includes(to));
  }

  private send(from: string, to: string, message: Message): void {
    this.stats.messages++;
    if (!this.connects(from, to)) return;
    if (this.network.chance(this.dropRate)) return;
    const copies = this.network.chance(this.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = 1 + this.network.int(this.maxDelay);
      this.queue.push(this.now + delay, () => this.deliver(from, to, message));
    }
  }

  private deliver(from: string, to: string, message: Message): void {
    // A partition cuts what is in flight too: a message arriving across it is lost.
    if (!this.connects(from, to)) return;
    if (to === PLACEMENT) return this.placementReceive(message as ToPlacement);
    if (to === CLIENT) return this.clientReceive(message as ToClient);
    const replica = this.replica(to);
    if (!replica.up) return;
    this.replicaReceive(replica, message);
  }

  private replica(id: string): Replica {
    const replica = this.replicas.find((candidate) => candidate.id === id);
    if (replica === undefined) throw new Error(`no replica ${id}`);
    return replica;
  }

  // ---- faults ----

  private faultTick(): void {
    if (this.healed) return;
    for (const replica of this.replicas) {
      if (replica.up && this.faults.chance(this.crashRate)) this.crash(replica);
    }
    if (this.faults.chance(0.01)) {
      const nodes = this.faults.shuffle([...this.ids, PLACEMENT]);
      const shape = this.faults.int(3);
      if (shape === 0) {
        this.partition = { groups: [[nodes[0] as string], nodes.slice(1)], bridges: [] };
      } else if (shape === 1) {
        const cut = 1 + this.faults.int(nodes.length - 1);
        this.partition = { groups: [nodes.slice(0, cut), nodes.slice(cut)], bridges: [] };
      } else {
        // A bridge reaches both sides, which do not reach each other: placement can lose a
        // leader that its followers still reach.
        const bridges = nodes.slice(0, 1 + this.faults.int(nodes.length - 2));
        const rest = nodes.slice(bridges.length);
        const cut = 1 + this.faults.int(Math.max(1, rest.length - 1));
        this.partition = { groups: [rest.slice(0, cut), rest.slice(cut)], bridges };
      }
      this.stats.partitions++;
      this.note(`partition ${this.partition.groups.map((group) => `{${group.slice().sort().join(',')}}`).join(' ')}${this.partition.bridges.length > 0 ? ` bridged by ${this.partition.bridges.slice().sort().join(',')}` : ''}`);
    } else if (this.partition !== null && this.faults.chance(0.03)) {
      this.partition = null;
      this.note('partition healed');
    }
    this.queue.push(this.now + TICK, () => this.faultTick());
  }

  private crash(replica: Replica): void {
    this.stats.crashes++;
    replica.up = false;
    replica.log.crash();
    replica.role = { kind: 'none' };
    replica.idleHighWatermark = 0;
    replica.syncing = false;
    replica.incarnation++;
    this.note(`${replica.id} crashed; durable log ends at ${replica.log.logEnd} (epoch history ${JSON.stringify(replica.log.history.list())})`);
    const downFor = 20 + this.faults.int(200);
    this.queue.push(Math.min(this.now + downFor, HEAL_AT), () => this.restart(replica));
  }

  private restart(replica: Replica): void {
    if (replica.up) return;
    replica.up = true;
    replica.incarnation++;
    this.note(`${replica.id} restarted`);
    this.scheduleTick(replica, TICK);
  }

  private heal(): void {
    this.healed = true;
    this.firstSequenceAfterHeal = this.nextSequence;
    this.partition = null;
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.maxBatchesPerFetch = 32;
    for (const replica of this.replicas) this.restart(replica);
    this.note('faults healed: every replica up, no partition, no loss');
  }

  // ---- placement (the stand-in) ----

  private placementTick(): void {
    const now = this.now;
    if (this.electing !== null) {
      if (now - this.electing.startedAt > ELECTION_TIMEOUT) this.startElection('election timed out');
    } else if (this.placementLeader === null) {
      this.startElection('no leader');
    } else if (now - this.lastAlive > LEADER_TIMEOUT) {
      this.startElection(`leader ${this.placementLeader} silent`);
    } else if (!this.healed && this.faults.chance(0.03)) {
      // Placement also moves leadership while the old leader is alive (rebalancing, a lease
      // it judged lost): the deposed leader keeps running, which is what fencing is for.
      this.startElection(`leadership moved away from ${this.placementLeader}`);
    } else {
      if (this.reassign && this.target === null && !this.healed && this.faults.chance(0.1)) this.beginChange();
      const leadership: PlacementMessage = { type: 'leadership', epoch: this.placementEpoch, leader: this.placementLeader, replicas: this.members, learners: this.learners() };
      for (const id of this.told()) this.send(PLACEMENT, id, leadership);
    }
    this.queue.push(now + PLACEMENT_TICK, () => this.placementTick());
  }

  /** The learners of the change in progress: the target's nodes outside the replica set. */
  private learners(): string[] {
    return (this.target ?? []).filter((id) => !this.members.includes(id));
  }

  /** Who placement tells the epoch and its leader: the replica set and the learners. */
  private told(): string[] {
    return [...this.members, ...this.learners()];
  }

  /**
   * Whether the replicas the change keeps all vote (placement asks them, as the controller reads
   * ReplicaStatus): the new set's first elections count only them, so a switch while one of
   * them still catches up from an earlier change could leave the new set without a majority of
   * voters, for good.
   */
  private keptVote(): boolean {
    const kept = this.members.filter((id) => this.target?.includes(id) === true);
    return kept.every((id) => this.replica(id).voter);
  }

  /** Moves one replica (any, the leader or a crashed one included) to a spare node. */
  private beginChange(): void {
    const spares = this.ids.filter((id) => !this.members.includes(id));
    const removed = this.faults.pick(this.members);
    const added = this.faults.pick(spares);
    const target = this.members.map((id) => (id === removed ? added : id));
    if (!(this.elector.begin?.(this.placementEpoch, target) ?? false)) {
      this.note(`placement: the change to ${target.join(',')} was refused`);
      return;
    }
    this.target = target;
    this.changeBegunAt = this.now;
    this.stats.changesBegun++;
    this.note(`placement: moving ${removed} -> ${added}: learner ${added} copies the shard (target ${target.join(',')})`);
  }

  private startElection(reason: string, switching = false): void {
    const before = this.members;
    const epoch = switching ? (this.elector.switchSet?.(this.placementEpoch) ?? null) : this.elector.reserve(this.placementEpoch);
    if (epoch === null) {
      this.note(`placement: ${reason}; the reservation of epoch ${this.placementEpoch + 1} was refused`);
      return;
    }
    if (switching && this.target !== null) {
      this.members = this.target;
      this.target = null;
      this.stats.switches++;
    }
    this.placementEpoch = epoch;
    this.placementLeader = null;
    this.electing = { epoch: this.placementEpoch, answers: new Map(), startedAt: this.now };
    this.stats.elections++;
    this.note(`placement: ${reason}; announcing epoch ${this.placementEpoch}${switching ? ` with the replica set ${this.members.join(',')}` : ''}`);
    // A switch fences the removed replicas too: they take the epoch, their answers do not count.
    const announced = new Set([...before, ...this.told()]);
    for (const id of announced) this.send(PLACEMENT, id, { type: 'new-epoch', epoch: this.placementEpoch });
  }

  private placementReceive(message: ToPlacement): void {
    if (message.type === 'leader-alive') {
      if (message.epoch !== this.placementEpoch || message.from !== this.placementLeader) return;
      this.lastAlive = this.now;
      const learners = this.learners();
      if (this.target !== null && this.electing === null && learnersCaughtUp(learners, message.highWatermark, new Map(message.learnerDurable)) && this.keptVote()) {
        this.startElection(`learners ${learners.join(',')} caught up to the HW ${message.highWatermark}`, true);
      }
      return;
    }
    const election = this.electing;
    if (election === null || message.epoch !== election.epoch) return;
    // Only the epoch's replica set counts, and of it only voters (SL_REPL_NOT_VOTER).
    if (!message.voter || !this.members.includes(message.from)) return;
    election.answers.set(message.from, { node: message.from, lastEpoch: message.lastEpoch, durableEnd: message.durableEnd });
    if (election.answers.size < electionQuorum(this.members.length)) return;
    const answers = [...election.answers.values()];
    const chosen = this.variant === 'election-without-rule' ? this.faults.pick(answers).node : this.elector.record(election.epoch, answers);
    this.electing = null;
    if (chosen === null) {
      // Placement refused to record it: the next tick starts a new election.
      this.note(`placement: epoch ${election.epoch}'s leader was not recorded`);
      return;
    }
    this.placementLeader = chosen;
    this.lastAlive = this.now;
    this.note(`placement: epoch ${election.epoch} leader ${chosen} from answers ${answers.map((answer) => `${answer.node}(e${answer.lastEpoch},${answer.durableEnd})`).join(' ')}`);
    const leadership: PlacementMessage = { type: 'leadership', epoch: election.epoch, leader: chosen, replicas: this.members, learners: this.learners() };
    for (const id of this.told()) this.send(PLACEMENT, id, leadership);
  }

  // ---- replicas ----

  private scheduleTick(replica: Replica, delay: number): void {
    const incarnation = replica.incarnation;
    this.queue.push(this.now + delay, () => {
      if (!replica.up || replica.incarnation !== incarnation) return;
      this.replicaTick(replica);
      this.scheduleTick(replica, TICK);
    });
  }

  private replicaTick(replica: Replica): void {
    this.maybeSync(replica);
    if (replica.role.kind === 'follower') this.applyFollower(replica, replica.role.core.onTick(this.view(replica), this.now));
  }

  private view(replica: Replica): FollowerLogView {
    return { logEnd: replica.log.logEnd, durableEnd: replica.log.durableEnd, history: replica.log.history };
  }

  private setEpoch(replica: Replica, epoch: number): void {
    if (epoch < replica.knownEpoch) this.fail(`epochs only grow: ${replica.id} went from epoch ${replica.knownEpoch} to ${epoch}`);
    replica.knownEpoch = epoch;
    this.maxEpochSeen = Math.max(this.maxEpochSeen, epoch);
  }

  private highWatermarkOf(replica: Replica): number {
    const role = replica.role;
    if (role.kind === 'leader') return role.core.highWatermark;
    if (role.kind === 'follower') return role.core.highWatermark;
    return replica.idleHighWatermark;
  }

  private stepDown(replica: Replica): void {
    replica.idleHighWatermark = this.highWatermarkOf(replica);
    replica.role = { kind: 'none' };
  }

  private replicaReceive(replica: Replica, message: Message): void {
    switch (message.type) {
      case 'new-epoch': {
        if (message.epoch < replica.knownEpoch) return;
        if (message.epoch > replica.knownEpoch) {
          this.setEpoch(replica, message.epoch);
          // Taking the new epoch fences this replica against the old leader: it stops
          // following (and leading), so nothing it does from now counts for the old epoch.
          if (this.variant !== 'no-fencing') this.stepDown(replica);
        }
        this.send(replica.id, PLACEMENT, { type: 'epoch-ack', from: replica.id, epoch: message.epoch, lastEpoch: replica.log.durableLastEpoch, durableEnd: replica.log.durableEnd, voter: replica.voter });
        return;
      }
      case 'leadership':
        return this.onLeadership(replica, message);
      case 'fetch':
      case 'epoch-end-query':
        return this.leaderReceive(replica, message);
      case 'append':
        return this.onClientAppend(replica, message);
      case 'read': {
        const hw = Math.min(this.highWatermarkOf(replica), replica.log.logEnd);
        const records = replica.log.read(message.from, Math.min(hw, message.from + 20));
        this.checkServedRead(replica, records);
        this.send(replica.id, CLIENT, { type: 'read-reply', from: replica.id, id: message.id, records });
        return;
      }
      case 'fetch-response':
      case 'epoch-mismatch':
      case 'offset-out-of-range':
      case 'epoch-end-reply': {
        if (message.type === 'epoch-mismatch') this.stats.fencedReplies++;
        if (replica.role.kind !== 'follower') return;
        this.applyFollower(replica, replica.role.core.onMessage(message, this.view(replica), this.now));
        return;
      }
      default:
        throw new Error(`replica ${replica.id} got ${message.type}`);
    }
  }

  private onLeadership(replica: Replica, message: Extract<PlacementMessage, { type: 'leadership' }>): void {
    if (message.epoch < replica.knownEpoch) return;
    const role = replica.role;
    if (message.epoch === replica.knownEpoch) {
      if (role.kind === 'leader' && role.core.epoch === message.epoch) {
        role.core.setLearners(message.learners);
        if (role.core.acceptsAppends) this.reportAlive(replica);
        return;
      }
      if (role.kind === 'follower' && role.core.epoch === message.epoch && role.core.leader === message.leader) return;
    }
    if (!message.replicas.includes(replica.id) && !message.learners.includes(replica.id)) return;
    this.setEpoch(replica, message.epoch);
    replica.members = message.replicas;
    if (!message.replicas.includes(replica.id) && replica.voter) {
      // A learner: whatever it held before (it may have been a replica long ago), its answers
      // do not count until it has copied the shard as a member of the set.
      replica.voter = false;
      this.note(`${replica.id} becomes a learner of epoch ${message.epoch} (does not vote)`);
    }
    if (message.leader === replica.id) {
      // A leader that restarted lost its volatile tail, which followers may already hold at
      // this epoch: leading the same epoch again would write different records under an
      // (epoch, offset) that means something else elsewhere. It waits for a new epoch.
      if (replica.ledEpochs.has(message.epoch)) return;
      replica.ledEpochs.add(message.epoch);
      const hw = this.highWatermarkOf(replica);
      const start = replica.log.logEnd;
      replica.log.append({ baseOffset: start, count: 1, epoch: message.epoch, records: [`epoch-start:${message.epoch}`] });
      const core = new ReplicaLeader({
        self: replica.id,
        replicas: message.replicas,
        learners: message.learners,
        countLearners: this.variant === 'learner-counts',
        epoch: message.epoch,
        epochStartOffset: start,
        highWatermark: hw,
        countFetchedAsDurable: this.variant === 'hw-counts-fetched',
        ignoreEpochs: this.variant === 'no-fencing',
      });
      replica.role = { kind: 'leader', core, pending: new Map(), parked: new Map() };
      core.onLocalLog(replica.log.logEnd, replica.log.durableEnd);
      this.note(`${replica.id} leads epoch ${message.epoch} from offset ${start} (hw ${hw}, history ${JSON.stringify(replica.log.history.list())})`);
      this.checkLeaderHoldsCommitted(replica, `new leader ${replica.id} of epoch ${message.epoch}`);
      this.reportAlive(replica);
      this.maybeSync(replica);
      return;
    }
    const core = new ReplicaFollower<SimBatch>(
      { self: replica.id, leader: message.leader, epoch: message.epoch, retryAfter: FETCH_RETRY, skipTruncation: this.variant === 'no-truncation', ignoreEpochs: this.variant === 'no-fencing' },
      this.highWatermarkOf(replica),
    );
    replica.role = { kind: 'follower', core };
    this.applyFollower(replica, core.start(this.view(replica), this.now));
  }

  /** The leader's answer to placement: alive, its HW, and how far each learner has copied. */
  private reportAlive(replica: Replica): void {
    const role = replica.role;
    if (role.kind !== 'leader') return;
    const learnerDurable = role.core.learners.map((id): [string, number] => [id, role.core.followerProgress(id)?.durable ?? -1]);
    const highWatermark = role.core.committedOwnEpoch ? role.core.highWatermark : Number.POSITIVE_INFINITY;
    this.send(replica.id, PLACEMENT, { type: 'leader-alive', from: replica.id, epoch: role.core.epoch, highWatermark, learnerDurable });
  }

  /**
   * A non-voter votes again once it holds durably a batch of its leader's epoch as a member of
   * that epoch's set: it then holds the leader's log below that epoch's start, so every record
   * committed before. A learner holding such a batch has not caught up with the set's
   * acknowledgements (the variant learner-votes lets it vote anyway).
   */
  private maybeVote(replica: Replica): void {
    const role = replica.role;
    if (replica.voter || role.kind !== 'follower' || replica.log.durableLastEpoch !== role.core.epoch) return;
    if (!replica.members.includes(replica.id) && this.variant !== 'learner-votes') return;
    replica.voter = true;
    this.note(`${replica.id} holds a batch of epoch ${role.core.epoch} durably; votes again`);
  }

  private applyFollower(replica: Replica, actions: FollowerAction<SimBatch>[]): void {
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          this.send(replica.id, action.to, action.message);
          break;
        case 'truncate':
          this.stats.truncations++;
          this.note(`${replica.id} truncates ${replica.log.logEnd} -> ${action.offset}`);
          replica.log.truncate(action.offset);
          break;
        case 'append':
          for (const batch of action.batches) {
            // The variant that skips truncation can be handed batches that do not fit its log.
            if (batch.baseOffset !== replica.log.logEnd) break;
            replica.log.append(batch);
          }
          this.maybeSync(replica);
          break;
      }
    }
  }

  private leaderReceive(replica: Replica, message: FetchRequest | EpochEndQuery): void {
    const role = replica.role;
    if (role.kind !== 'leader') {
      // Not leading: tell the follower which epoch this replica is at, so it can see why.
      this.send(replica.id, message.from, { type: 'epoch-mismatch', from: replica.id, leaderEpoch: replica.knownEpoch, requestEpoch: message.leaderEpoch });
      return;
    }
    if (message.type === 'epoch-end-query') {
      this.send(replica.id, message.from, role.core.onEpochEndQuery(message, replica.log.history));
      this.afterLeaderStep(replica);
      return;
    }
    const { decision } = role.core.onFetch(message);
    if (decision.kind === 'reply') {
      this.send(replica.id, message.from, decision.message);
    } else {
      const batches = replica.log.batchesFrom(decision.fromOffset, this.maxBatchesPerFetch);
      this.send(replica.id, message.from, { type: 'fetch-response', from: replica.id, leaderEpoch: role.core.epoch, fetchOffset: decision.fromOffset, batches, highWatermark: decision.highWatermark });
    }
    this.afterLeaderStep(replica);
  }

  /** Acknowledges the appends the HW (or, for acks=leader, the local disk) now covers. */
  private afterLeaderStep(replica: Replica): void {
    const role = replica.role;
    if (role.kind !== 'leader') return;
    if (role.core.fencedByEpoch !== null) {
      this.note(`${replica.id} fenced by epoch ${role.core.fencedByEpoch}; stops leading epoch ${role.core.epoch}`);
      this.stepDown(replica);
      return;
    }
    const covered = this.variant === 'acks-leader-only' ? replica.log.durableEnd : role.core.highWatermark;
    for (const [baseOffset, append] of role.pending) {
      if (baseOffset + append.count > covered) continue;
      role.pending.delete(baseOffset);
      this.send(replica.id, CLIENT, { type: 'append-ack', from: replica.id, id: append.id, baseOffset, epoch: role.core.epoch, values: append.values });
    }
  }

  private onClientAppend(replica: Replica, message: Extract<ClientMessage, { type: 'append' }>): void {
    const role = replica.role;
    if (role.kind !== 'leader' || !role.core.acceptsAppends) {
      this.send(replica.id, CLIENT, { type: 'not-leader', from: replica.id, id: message.id });
      return;
    }
    const decision: SequenceDecision = this.variant === 'no-dedup' ? { kind: 'append' } : replica.log.writers.decide(message.writer);
    if (decision.kind === 'out-of-sequence' && message.writer.sequence > decision.expected && message.writer.sequence - decision.expected < CLIENT_IN_FLIGHT) {
      // An earlier append of the writer is still on its way (the network reorders): wait for it
      // rather than send the writer round again; the client resends it if it never comes.
      role.parked.set(message.writer.sequence, message);
      return;
    }
    if (decision.kind === 'out-of-sequence' || decision.kind === 'in-progress') {
      this.stats.outOfSequence++;
      this.send(replica.id, CLIENT, { type: 'out-of-sequence', from: replica.id, id: message.id, expected: decision.kind === 'out-of-sequence' ? decision.expected : message.writer.sequence });
      return;
    }
    if (decision.kind === 'duplicate') {
      // Stored already (by this leader or an earlier one): answered with its offsets once the
      // HW passes it, never written again.
      const { baseOffset, lastOffset } = decision.extent;
      this.stats.duplicatesAnswered++;
      this.note(`${replica.id} answers resent sequence ${message.writer.sequence} with the batch at ${baseOffset}`);
      if (!role.pending.has(baseOffset)) role.pending.set(baseOffset, { id: message.id, baseOffset, count: lastOffset - baseOffset + 1, values: replica.log.read(baseOffset, lastOffset + 1).map(([, value]) => value) });
      this.afterLeaderStep(replica);
      return;
    }
    const baseOffset = replica.log.logEnd;
    replica.log.append({ baseOffset, count: message.values.length, epoch: role.core.epoch, records: message.values, writer: { id: message.writer.id, sequence: message.writer.sequence } });
    role.pending.set(baseOffset, { id: message.id, baseOffset, count: message.values.length, values: message.values });
    role.core.onLocalLog(replica.log.logEnd, replica.log.durableEnd);
    this.afterLeaderStep(replica);
    this.maybeSync(replica);
    const next = role.parked.get(message.writer.sequence + 1);
    if (next !== undefined && replica.role === role) {
      role.parked.delete(message.writer.sequence + 1);
      this.onClientAppend(replica, next);
    }
  }

  private maybeSync(replica: Replica): void {
    if (replica.syncing || !replica.up || replica.log.durableEnd >= replica.log.logEnd) return;
    replica.syncing = true;
    const token = replica.log.beginSync();
    const incarnation = replica.incarnation;
    this.queue.push(this.now + 1 + this.faults.int(8), () => {
      if (!replica.up || replica.incarnation !== incarnation) return;
      replica.syncing = false;
      if (replica.log.completeSync(token)) {
        const role = replica.role;
        if (role.kind === 'leader') {
          role.core.onLocalLog(replica.log.logEnd, replica.log.durableEnd);
          this.afterLeaderStep(replica);
        } else if (role.kind === 'follower') {
          this.maybeVote(replica);
          this.applyFollower(replica, role.core.onDurable(this.view(replica), this.now));
        }
      }
      this.maybeSync(replica);
    });
  }

  // ---- the client ----

  private clientTick(): void {
    const now = this.now;
    for (const append of this.outstanding.values()) {
      if (append.resend || now - append.sentAt <= APPEND_TIMEOUT) continue;
      append.resend = true;
      this.clientLeader = null;
    }
    // The client asks placement for the leader only when it has none or its leader failed it,
    // so it keeps writing to a deposed leader until that leader's answers send it away.
    this.clientLeader ??= this.placementLeader;
    const leader = this.clientLeader;
    if (leader !== null) {
      // Unanswered appends go again, oldest first, with the same sequence: their first try may
      // be stored already (the answer was lost, or the leader died waiting for the quorum).
      for (const [sequence, append] of this.outstanding) {
        if (!append.resend) continue;
        append.resend = false;
        append.sentAt = now;
        this.stats.appendsResent++;
        this.send(CLIENT, leader, { type: 'append', id: sequence, values: append.values, writer: this.stamp(sequence) });
      }
    }
    if (leader !== null && this.outstanding.size < CLIENT_IN_FLIGHT) {
      const sequence = this.nextSequence++;
      const count = this.workload.chance(0.3) ? 1 + this.workload.int(3) : 1;
      const values = Array.from({ length: count }, (_, i) => `v${sequence}.${i}`);
      this.outstanding.set(sequence, { sentAt: now, values, resend: false });
      this.stats.appendsSent++;
      this.send(CLIENT, leader, { type: 'append', id: sequence, values, writer: this.stamp(sequence) });
    }
    if (this.workload.chance(0.4)) {
      const target = this.workload.pick(this.ids);
      const known = Math.max(0, ...this.acked.keys(), ...this.observed.keys());
      this.stats.reads++;
      this.send(CLIENT, target, { type: 'read', id: this.nextId++, from: this.workload.int(known + 2) });
    }
    this.queue.push(now + 3 + this.workload.int(10), () => this.clientTick());
  }

  /** The append's writer stamp: ackedBelow is the oldest sequence still unanswered. */
  private stamp(sequence: number): WriterStamp {
    const oldest = this.outstanding.keys().next();
    return { id: WRITER_ID, sequence, ackedBelow: oldest.done === true ? this.nextSequence : oldest.value };
  }

  private clientReceive(message: ToClient): void {
    if (message.type === 'not-leader' || message.type === 'out-of-sequence') {
      const append = this.outstanding.get(message.id);
      if (append !== undefined) append.resend = true;
      if (message.type === 'not-leader' && this.clientLeader === message.from) this.clientLeader = null;
      return;
    }
    if (message.type === 'read-reply') {
      for (const [offset, value] of message.records) {
        const known = this.observed.get(offset) ?? this.acked.get(offset);
        if (known !== undefined && known !== value) this.fail(`a reader saw ${value} at offset ${offset} from ${message.from}, but ${known} was acknowledged or read there before`);
        this.observed.set(offset, value);
        this.stats.recordsRead++;
      }
      return;
    }
    const lastSentAt = this.outstanding.get(message.id)?.sentAt ?? Number.NEGATIVE_INFINITY;
    this.outstanding.delete(message.id);
    for (let i = 0; i < message.values.length; i++) {
      const offset = message.baseOffset + i;
      const value = message.values[i] as string;
      const known = this.acked.get(offset) ?? this.observed.get(offset);
      if (known !== undefined && known !== value) this.fail(`acknowledged append lost: ${known} was acknowledged or read at offset ${offset}, and now ${message.from} (epoch ${message.epoch}) acknowledges ${value} there`);
      if (!this.acked.has(offset)) this.stats.recordsAcked++;
      this.acked.set(offset, value);
    }
    // Liveness counts an append sent after the heal, or sent again after it: one whose last try
    // was before could have been acknowledged by luck. Resends count because the client's window
    // may be full of appends from before the heal, and a new append waits for them.
    if ((message.id >= this.firstSequenceAfterHeal || lastSentAt >= HEAL_AT) && this.firstAckAfterHeal === null) this.firstAckAfterHeal = this.now;
    this.note(`client: ${message.from} (epoch ${message.epoch}) acknowledged ${message.values.join(',')} at ${message.baseOffset}`);
    // An ack from a deposed leader is only harmless if the newest leader holds the record.
    for (const replica of this.replicas) {
      if (replica.role.kind === 'leader' && replica.role.core.epoch > message.epoch) this.checkLeaderHoldsCommitted(replica, `ack from ${message.from} at epoch ${message.epoch}, with ${replica.id} leading epoch ${replica.role.core.epoch}`);
    }
  }

  // ---- checkers ----

  /** Every acknowledged or read record is in this leader's log at its offset. */
  private checkLeaderHoldsCommitted(leader: Replica, when: string): void {
    for (const [kind, records] of [['acknowledged', this.acked], ['read', this.observed]] as const) {
      for (const [offset, value] of records) {
        const held = leader.log.valueAt(offset);
        if (held !== value) this.fail(`${kind === 'acknowledged' ? 'acknowledged append lost' : 'a record a reader saw disappeared'}: ${when}: offset ${offset} held ${held ?? 'nothing'}, expected ${value}`);
      }
    }
  }

  /**
   * What a replica serves below its HW must be committed: durable, with the same value, on a
   * majority of the replica set (a crash cannot take it back, and no election can pass it by).
   */
  private checkServedRead(replica: Replica, records: [number, string][]): void {
    // Holders are counted on every node: a replica a change removed still holds what it held.
    const majority = electionQuorum(this.members.length);
    for (const [offset, value] of records) {
      let holders = 0;
      for (const other of this.replicas) if (offset < other.log.durableEnd && other.log.valueAt(offset) === value) holders++;
      if (holders < majority) this.fail(`a reader was served a record above the high watermark: ${replica.id} served ${value} at ${offset} (its hw ${this.highWatermarkOf(replica)}), durable on ${holders} nodes, the replica set has ${this.members.length}`);
    }
  }

  /**
   * No record stored twice, and the client's appends in the order it made them: along every
   * replica's log, each value appears once and the sequences of the client's batches grow.
   */
  private checkNoDuplicates(): void {
    for (const replica of this.replicas) {
      const seen = new Set<string>();
      let lastSequence = -1;
      for (const value of replica.log.values()) {
        if (!value.startsWith('v')) continue;
        if (seen.has(value)) this.fail(`a record stored twice: ${value} appears twice in ${replica.id}'s log`);
        seen.add(value);
        const sequence = Number(value.slice(1, value.indexOf('.')));
        if (sequence < lastSequence) this.fail(`appends out of order: ${replica.id}'s log holds sequence ${sequence} after ${lastSequence}`);
        lastSequence = sequence;
      }
    }
  }

  /** Log matching: two replicas agree on every offset below both their high watermarks. */
  private checkLogMatching(): void {
    const limits = this.replicas.map((replica) => Math.min(this.highWatermarkOf(replica), replica.log.logEnd));
    for (let i = 0; i < this.replicas.length; i++) {
      for (let j = i + 1; j < this.replicas.length; j++) {
        const a = this.replicas[i] as Replica;
        const b = this.replicas[j] as Replica;
        const limit = Math.min(limits[i] as number, limits[j] as number);
        for (let offset = 0; offset < limit; offset++) {
          if (a.log.valueAt(offset) !== b.log.valueAt(offset)) this.fail(`log matching broken below the high watermark: offset ${offset} is ${a.log.valueAt(offset)} on ${a.id} and ${b.log.valueAt(offset)} on ${b.id} (both hw >= ${limit})`);
        }
      }
    }
  }

  private finalChecks(): void {
    this.checkLogMatching();
    this.checkNoDuplicates();
    if (this.firstAckAfterHeal === null || this.firstAckAfterHeal > HEAL_AT + LIVENESS_BOUND) {
      this.fail(`no liveness after heal: faults healed at t=${HEAL_AT}, ${this.firstAckAfterHeal === null ? 'no append acknowledged by the end' : `first append acknowledged at t=${this.firstAckAfterHeal}`} (bound ${LIVENESS_BOUND} ms)`);
    }
    const leader = this.replicas.find((replica) => replica.role.kind === 'leader' && replica.id === this.placementLeader);
    if (leader === undefined) this.fail(`no liveness after heal: no leader at the end (placement says ${this.placementLeader ?? 'none'})`);
    this.checkLeaderHoldsCommitted(leader, 'end of run');
    // Repair: every replica was up for the last 800 ms with a perfect network; each must hold
    // the committed prefix as of a while ago.
    const committed = leader.role.kind === 'leader' ? leader.role.core.highWatermark : 0;
    if (this.members.length !== this.factor) this.fail(`the replica set ${this.members.join(',')} is not the factor ${this.factor}`);
    // A change begun during the faults must finish after the heal: its learner catches up, the set switches.
    if (this.target !== null && this.changeBegunAt < HEAL_AT) this.fail(`no liveness after heal: the change to ${this.target.join(',')} begun at t=${this.changeBegunAt} never switched`);
    for (const replica of this.replicas.filter((one) => this.members.includes(one.id))) {
      if (replica.log.durableEnd < Math.min(committed, this.committedAt300msAgo)) this.fail(`repair: ${replica.id} holds ${replica.log.durableEnd} durable records at the end, the leader's hw was ${this.committedAt300msAgo} 300 ms before`);
      for (let offset = 0; offset < Math.min(committed, replica.log.logEnd); offset++) {
        if (replica.log.valueAt(offset) !== leader.log.valueAt(offset)) this.fail(`log matching broken at the end: offset ${offset} is ${replica.log.valueAt(offset)} on ${replica.id}, ${leader.log.valueAt(offset)} on leader ${leader.id}`);
      }
    }
  }

  private committedAt300msAgo = 0;

  /** Periodic checks, cheap enough to run every few ticks. */
  checkTick(): void {
    this.checkLogMatching();
    this.checkNoDuplicates();
    if (this.now <= END_AT - 300) {
      const leader = this.replicas.find((replica) => replica.role.kind === 'leader' && replica.id === this.placementLeader);
      if (leader?.role.kind === 'leader') this.committedAt300msAgo = leader.role.core.highWatermark;
    }
    this.queue.push(this.now + 25, () => this.checkTick());
  }
}
