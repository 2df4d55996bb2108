// A whole placement cluster in one process, driven from one seed in simulated time (issue 12,
// "Deterministic simulation"): 3 or 5 voters running the Raft core over simulated disks, a
// simulated network with faults and partition shapes, crashes and restarts, clock drift, and
// clients doing key-value writes, compare-and-sets and ReadIndex reads.
//
// A run has three phases. Faults (faultTicks): the nemesis rotates partitions, crashes and
// restarts nodes (sometimes all at once, sometimes in the middle of a Ready before its fsync),
// takes snapshots, transfers leadership and, in some seeds, removes and re-adds a voter; the
// Figure 8 profile cuts leaders off at the moments that expose commit rules. Heal: every node restarts, the
// network stops losing messages, and a probe client must get a new write acknowledged within
// LIVENESS_BOUND_TICKS. Drain: clients finish what they started. Checkers watch every step
// (election safety, log matching, leader completeness, state-machine safety) and the end (no
// acknowledged write lost, linearizability of the client history).
//
// Nothing reads a clock or Math.random: all choices come from forks of the seed's Random, so a
// seed replays exactly. The last TRACE_EVENTS events are kept for the report of a failing seed.
import {
  ProposalDroppedError,
  RawNode,
  bootstrapEntries,
  bootstrapHardState,
  decodeConfChange,
  type ConfChange,
  type Entry,
  type Message,
  type Ready,
  type UnsafeSwitches,
} from '../raft/index.js';
import { checkLinearizability, describeOperation, type KvOperation } from './linearizability.js';
import { SimulatedNetwork, formatNetworkEvent, type NetworkEvent, type Partition } from './network.js';
import { bridge, flapping, isolate, minorityMajority, ring } from './partitions.js';
import { createRandom, type Random } from './random.js';
import { RaftDisk } from './raft-disk.js';
import { KvStateMachine, commandId, decodeCommand, encodeCommand, type KvCommand, type KvResult } from './kv-state-machine.js';
import { ElectionSafety, LeaderCompleteness, LogMatching, NoLostAcknowledgedWrite, StateMachineSafety, type LogEntry, type Violation } from './safety.js';
import { TraceRing } from './trace.js';

/** Deliberately broken clusters, for the self-tests: each must be caught within a few seeds. */
export const BROKEN_VARIANTS = ['vote-without-log-check', 'commit-old-term-by-counting', 'apply-before-persist'] as const;
export type BrokenVariant = (typeof BROKEN_VARIANTS)[number];

export interface ClusterRunOptions {
  variant?: BrokenVariant;
  /** Ticks of the fault phase (default 400). */
  faultTicks?: number;
  /** Events kept for the report (default 400); more when debugging a schedule. */
  traceEvents?: number;
}

export interface ClusterRunResult {
  failure: string | null;
  /** The last events of the run, one per line. */
  trace: string;
  stats: { ticks: number; operations: number; acknowledged: number; crashes: number; elections: number; lastIndex: number };
}

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 2;
/** After the heal, a new write must be acknowledged within this many ticks. */
export const LIVENESS_BOUND_TICKS = 400;
const DRAIN_TICKS = 200;
const CLIENT_TIMEOUT_TICKS = 25;
const TRACE_EVENTS = 400;
const KEYS = ['x', 'y', 'z'];
const FIRST_CLIENT_ID = 101;
/** Only the apply-before-persist variant: how often its lazy fsync runs. */
const LAZY_SYNC_TICKS = 20;

type ClientOp = { op: 'read'; key: string } | { op: 'write'; key: string; value: string } | { op: 'cas'; key: string; expected: string | null; value: string };
type ClientRequest = { kind: 'request'; client: number; seq: number } & ClientOp;
type ClientResponse = { kind: 'response'; client: number; seq: number; outcome: 'ok' | 'redirect' | 'dropped'; lead: number; value: string | null; result: KvResult };
type SimMessage = { kind: 'raft'; message: Message } | ClientRequest | ClientResponse;

interface SimNode {
  readonly id: number;
  /** Drift: this node ticks `rate[0]` times every `rate[1]` global ticks. */
  readonly rate: readonly [number, number];
  readonly disk: RaftDisk;
  raft: RawNode | null;
  incarnation: number;
  kv: KvStateMachine;
  applied: number;
  voters: readonly number[];
  term: number;
  commit: number;
  /** Commands this node proposed for a client, answered when applied here. */
  waiting: Map<string, number>;
  /** ReadIndex contexts → the read they serve. */
  reads: Map<string, ClientRequest>;
  /** Confirmed reads waiting for the state machine to reach their index. */
  confirmedReads: { index: number; request: ClientRequest }[];
}

interface SimClient {
  readonly id: number;
  seq: number;
  current: { request: ClientRequest; operation: KvOperation; retryAt: number; redirected: boolean } | null;
  leaderGuess: number;
  nextStartAt: number;
  /** The last value this client read or wrote per key, to make compare-and-sets that can succeed. */
  lastSeen: Map<string, string | null>;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function digestOf(entry: Entry): string {
  if (entry.data.byteLength === 0) return entry.type === 'conf' ? 'conf:?' : 'empty';
  return `${entry.type === 'conf' ? 'conf:' : ''}${decoder.decode(entry.data)}`;
}

function describeMessage(m: SimMessage): string {
  if (m.kind === 'raft') {
    const r = m.message;
    const entries = r.entries.length === 0 ? '' : ` entries ${r.entries[0]!.index}..${r.entries.at(-1)!.index}`;
    return `${r.type} term ${r.term} index ${r.index} logTerm ${r.logTerm} commit ${r.commit}${entries}${r.reject ? ' reject' : ''}${r.snapshot === null ? '' : ` snapshot@${r.snapshot.metadata.index}`}`;
  }
  if (m.kind === 'request') return `client request c${m.client}#${m.seq} ${m.op} ${m.key}`;
  return `client response c${m.client}#${m.seq} ${m.outcome}${m.outcome === 'redirect' ? ` lead ${m.lead}` : ''}`;
}

/** Clients are outside the cluster: a partition cuts links between nodes only. */
function nodesOnly(inner: Partition<number>): Partition<number> {
  return { description: inner.description, connects: (from, to, now) => from >= FIRST_CLIENT_ID || to >= FIRST_CLIENT_ID || inner.connects(from, to, now) };
}

class ViolationFound extends Error {}

export class ClusterSimulation {
  readonly trace: TraceRing;
  private now = 0;
  /** Strictly increasing instants for the client history (several events may share a tick). */
  private instant = 0;
  private readonly random: Random;
  private readonly faultRandom: Random;
  private readonly clientRandom: Random;
  private readonly diskRandom: Random;
  private readonly operatorRandom: Random;
  private readonly network: SimulatedNetwork<SimMessage, number>;
  private readonly nodes = new Map<number, SimNode>();
  private readonly clients: SimClient[] = [];
  private readonly history: KvOperation[] = [];
  private readonly pendingSnapshotReports: { from: number; to: number; failed: boolean; incarnation: number }[] = [];
  private readonly unsafe: UnsafeSwitches;
  private readonly lazySync: boolean;
  private readonly config: { profile: 'chaos' | 'figure8'; voters: number; preVote: boolean; checkQuorum: boolean; maxSizePerMsg: number; leaderChurn: number; oldTermCut: number; commitCut: number; crashInReady: number; forwarding: boolean; membership: boolean; snapshots: boolean };
  private readonly checkers = {
    election: new ElectionSafety(),
    logMatching: new LogMatching(),
    completeness: new LeaderCompleteness(),
    stateMachine: new StateMachineSafety(),
    lostWrite: new NoLostAcknowledgedWrite(),
  };
  private readonly stats = { ticks: 0, operations: 0, acknowledged: 0, crashes: 0, elections: 0, lastIndex: 0 };
  private readonly faultTicks: number;
  private restartAt = new Map<number, number>();
  private membership: { phase: 'remove' | 'add' | 'done'; nodeId: number; nextTryAt: number } | null = null;
  private probe: SimClient | null = null;
  private readContexts = 0;

  constructor(
    readonly seed: number,
    options: ClusterRunOptions = {},
  ) {
    this.random = createRandom(seed);
    this.trace = new TraceRing(options.traceEvents ?? TRACE_EVENTS);
    this.faultRandom = this.random.fork('faults');
    this.clientRandom = this.random.fork('clients');
    this.diskRandom = this.random.fork('disks');
    this.operatorRandom = this.random.fork('operator');
    const setup = this.random.fork('setup');
    this.faultTicks = options.faultTicks ?? 400;
    this.unsafe = {
      voteWithoutLogCheck: options.variant === 'vote-without-log-check',
      commitOldTermByCounting: options.variant === 'commit-old-term-by-counting',
    };
    this.lazySync = options.variant === 'apply-before-persist';
    // About a third of the seeds run the Figure 8 profile: three voters, one entry per append,
    // leaders cut off as soon as they are elected or start finishing a predecessor's entries.
    // Random chaos alone almost never lines up that schedule (the core's author saw the same).
    const figure8 = setup.chance(0.35);
    const membership = !figure8 && setup.chance(0.3);
    this.config = {
      profile: figure8 ? 'figure8' : 'chaos',
      voters: figure8 || setup.chance(0.6) ? 3 : 5,
      // A removed voter that missed its removal campaigns forever; without pre-vote its higher
      // terms depose every leader and the re-add never commits (thesis §4.2.3). Placement runs
      // membership changes only with pre-vote on.
      preVote: membership || setup.chance(0.5),
      checkQuorum: setup.chance(0.5),
      // One entry per append: a new leader then sends old-term entries alone, which is when
      // counting replicas of an old term's entry can commit it.
      maxSizePerMsg: figure8 || setup.chance(0.5) ? 1 : 4096,
      leaderChurn: figure8 ? 0.6 : setup.pick([0, 0.3, 0.7]),
      oldTermCut: figure8 ? 0.9 : setup.pick([0, 0.5, 0.9]),
      commitCut: figure8 ? 0.7 : 0,
      crashInReady: setup.pick([0, 0.002, 0.01]),
      forwarding: setup.chance(0.5),
      membership,
      snapshots: setup.chance(0.5),
    };
    const link = setup.chance(0.5) ? { latencyMinTicks: 1, latencyMaxTicks: 3, dropProbability: 0.02, duplicateProbability: 0.02 } : { latencyMinTicks: 1, latencyMaxTicks: 6, dropProbability: 0.1, duplicateProbability: 0.05 };
    this.network = new SimulatedNetwork<SimMessage, number>({ random: this.random.fork('network'), link, trace: (event) => this.onNetworkEvent(event) });
    const ids = Array.from({ length: this.config.voters }, (_, i) => i + 1);
    const rates: readonly (readonly [number, number])[] = [[1, 1], [1, 1], [2, 3], [3, 4], [4, 5]];
    for (const id of ids) {
      const disk = new RaftDisk();
      disk.bootstrap(bootstrapEntries(ids), bootstrapHardState(ids));
      const node: SimNode = { id, rate: setup.pick(rates), disk, raft: null, incarnation: 0, kv: new KvStateMachine(), applied: 0, voters: [], term: 0, commit: 0, waiting: new Map(), reads: new Map(), confirmedReads: [] };
      this.nodes.set(id, node);
      this.start(node);
    }
    const clientCount = setup.intBetween(3, 5);
    for (let i = 0; i < clientCount; i++) this.clients.push(this.newClient(FIRST_CLIENT_ID + i, 0));
    if (this.config.membership) this.membership = { phase: 'remove', nodeId: setup.pick(ids), nextTryAt: setup.intBetween(50, Math.max(51, this.faultTicks / 2)) };
    this.trace.header = `setup seed ${seed}${options.variant === undefined ? '' : ` variant ${options.variant}`}: ${JSON.stringify(this.config)} link ${JSON.stringify(link)} rates ${ids.map((id) => this.nodes.get(id)!.rate.join('/')).join(' ')}`;
  }

  run(): ClusterRunResult {
    let failure: string | null = null;
    try {
      failure = this.runPhases();
    } catch (error) {
      if (error instanceof ViolationFound) failure = error.message;
      else if (error instanceof Error && error.message.startsWith('raft:')) failure = `the Raft core stopped on a broken invariant: ${error.stack ?? error.message}`;
      else failure = `the simulator threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    if (failure !== null) this.event(() => `FAIL ${failure}`);
    return { failure, trace: this.trace.render(), stats: { ...this.stats } };
  }

  private runPhases(): string | null {
    while (this.now < this.faultTicks) {
      this.nemesis();
      this.step(true);
    }
    this.heal();
    const healedAt = this.now;
    this.probe = this.newClient(FIRST_CLIENT_ID + this.clients.length, healedAt);
    this.clients.push(this.probe);
    while (this.probe.seq === 0 || this.probe.current !== null) {
      if (this.now - healedAt > LIVENESS_BOUND_TICKS) {
        return `liveness: no write acknowledged within ${LIVENESS_BOUND_TICKS} ticks after the heal at t=${healedAt} (leaders: ${this.describeLeaders()})`;
      }
      this.step(false);
    }
    const took = this.now - healedAt;
    this.event(() => `liveness probe acknowledged ${took} ticks after the heal`);
    const drainEnd = this.now + DRAIN_TICKS;
    while (this.now < drainEnd && this.clients.some((client) => client.current !== null)) this.step(false);
    return this.finalChecks();
  }

  // ---- the global step ----

  private step(workload: boolean): void {
    this.now++;
    this.stats.ticks = this.now;
    for (const report of this.pendingSnapshotReports.splice(0)) {
      const node = this.nodes.get(report.from);
      if (node?.raft != null && node.incarnation === report.incarnation) node.raft.reportSnapshot(report.to, report.failed);
    }
    for (const client of this.clients) this.driveClient(client, workload);
    for (const envelope of this.network.deliverDue(this.now)) this.deliver(envelope.to, envelope.from, envelope.message);
    for (const node of this.nodes.values()) {
      if (node.raft === null) continue;
      // Drift: a node with rate a/b ticks a times in every b global ticks.
      const [a, b] = node.rate;
      const ticks = Math.floor((this.now * a) / b) - Math.floor(((this.now - 1) * a) / b);
      for (let i = 0; i < ticks; i++) node.raft.tick();
      if (this.lazySync && this.now % LAZY_SYNC_TICKS === node.id % LAZY_SYNC_TICKS) node.disk.sync();
    }
    for (const node of this.nodes.values()) this.processReadies(node);
    this.driveMembership();
    if (this.now % 25 === 0) this.checkLogs();
  }

  private deliver(to: number, from: number, message: SimMessage): void {
    if (message.kind === 'response') {
      const client = this.clients.find((c) => c.id === to);
      if (client !== undefined) this.onResponse(client, message);
      return;
    }
    const node = this.nodes.get(to);
    if (node?.raft == null) return;
    if (message.kind === 'raft') node.raft.step(message.message);
    else this.onRequest(node, message);
  }

  private onNetworkEvent(event: NetworkEvent<SimMessage, number>): void {
    this.trace.add(() => formatNetworkEvent(event, describeMessage));
    // The core needs to hear how each snapshot transfer ended; reported at the next tick, outside
    // the sender's Ready, since a send-time drop happens while that Ready is being handled.
    const message = event.kind === 'deliver' || event.kind === 'discard' ? event.envelope.message : event.kind === 'drop' || event.kind === 'block' ? event.message : null;
    if (message?.kind !== 'raft' || message.message.type !== 'snap') return;
    const from = message.message.from;
    const sender = this.nodes.get(from);
    if (sender === undefined) return;
    this.pendingSnapshotReports.push({ from, to: message.message.to, failed: event.kind !== 'deliver', incarnation: sender.incarnation });
  }

  private event(render: () => string): void {
    const at = this.now;
    this.trace.add(() => `t=${at} ${render()}`);
  }

  private fail(violations: readonly Violation[]): void {
    if (violations.length === 0) return;
    throw new ViolationFound(violations.map((v) => `${v.checker}: ${v.message}`).join('; '));
  }

  // ---- nodes: start, crash, the Ready loop ----

  private start(node: SimNode): void {
    const storage = node.disk.recover();
    const snapshot = node.disk.durableSnapshot();
    node.kv = new KvStateMachine(snapshot?.data);
    node.applied = snapshot?.metadata.index ?? 0;
    node.voters = snapshot?.metadata.confState.voters ?? [];
    node.term = storage.initialState().hardState.term;
    node.commit = storage.initialState().hardState.commit;
    node.incarnation++;
    node.raft = new RawNode({
      id: node.id,
      storage,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      random: this.random.fork(`raft-${node.id}-${node.incarnation}`).next,
      maxSizePerMsg: this.config.maxSizePerMsg,
      maxInflightMsgs: 8,
      preVote: this.config.preVote,
      checkQuorum: this.config.checkQuorum,
      applied: node.applied,
      unsafe: this.unsafe,
    });
    this.checkers.stateMachine.recordRestored(node.id, node.applied);
  }

  private crash(node: SimNode, where: string): void {
    if (node.raft === null) return;
    node.raft = null;
    node.waiting.clear();
    node.reads.clear();
    node.confirmedReads = [];
    const { kept, lost, torn } = node.disk.crash(this.diskRandom);
    this.network.discardPendingTo(node.id, this.now);
    this.stats.crashes++;
    this.event(() => `crash node ${node.id} ${where}: ${kept} unsynced writes reached the disk, ${lost} lost${torn ? ', the last torn' : ''}`);
  }

  private restart(node: SimNode): void {
    if (node.raft !== null) return;
    this.start(node);
    const { term, applied } = node;
    const lastIndex = node.disk.cache.lastIndex();
    this.event(() => `restart node ${node.id} from disk: term ${term}, snapshot at ${applied}, last index ${lastIndex}`);
  }

  private processReadies(node: SimNode): void {
    while (node.raft?.hasReady() === true) this.processReady(node, node.raft);
  }

  /** One turn of the Ready loop, in the order the core documents (types.ts, Ready). */
  private processReady(node: SimNode, raft: RawNode): void {
    const rd = raft.ready();
    const status = raft.status();
    node.term = status.term;
    if (rd.snapshot !== null) node.disk.applySnapshot(rd.snapshot);
    node.disk.append(rd.entries);
    if (rd.hardState !== null) node.disk.setHardState(rd.hardState);
    if (rd.softState?.role === 'leader') this.onLeader(node, status.term);
    if (this.crashesInReady()) {
      this.crash(node, 'before the fsync of a Ready');
      return;
    }
    // The broken variant acknowledges and applies with the writes still in the page cache.
    if (!this.lazySync) node.disk.sync();
    for (const m of rd.messages) this.network.send(node.id, m.to, { kind: 'raft', message: m }, this.now);
    this.maybeCutOldTermReplication(node, rd.messages);
    if (rd.hardState !== null && rd.hardState.commit > node.commit) {
      node.commit = rd.hardState.commit;
      const commit = node.commit;
      const commitTerm = node.disk.cache.term(commit);
      this.event(() => `node ${node.id} (${status.role}, term ${status.term}) commit ${commit}, term ${commitTerm} there`);
      // Cutting a leader off the moment its commit index moves strands whatever it sent next
      // (the network checks partitions at delivery too): followers keep the entries it counted
      // as committed but not what it appended after them.
      if (status.role === 'leader' && this.now < this.faultTicks && this.faultRandom.chance(this.config.commitCut)) this.schedulePartition(nodesOnly(isolate(node.id)), this.now);
    }
    if (this.crashesInReady()) {
      this.crash(node, 'after sending a Ready, before applying it');
      return;
    }
    if (rd.snapshot !== null) this.installSnapshot(node, rd);
    for (const entry of rd.committedEntries) this.applyEntry(node, raft, entry);
    for (const readState of rd.readStates) {
      const request = node.reads.get(decoder.decode(readState.context));
      if (request !== undefined) node.confirmedReads.push({ index: readState.index, request });
    }
    this.serveReads(node);
    raft.advance(rd);
    if (this.config.snapshots && this.now < this.faultTicks && this.faultRandom.chance(0.02)) this.takeSnapshot(node);
  }

  private crashesInReady(): boolean {
    return this.config.crashInReady > 0 && this.now < this.faultTicks && this.faultRandom.chance(this.config.crashInReady);
  }

  private onLeader(node: SimNode, term: number): void {
    this.stats.elections++;
    this.event(() => `node ${node.id} becomes leader of term ${term}`);
    this.fail(this.checkers.election.recordLeader(term, node.id));
    const storage = node.disk.cache;
    this.fail(this.checkers.completeness.recordLeader(term, node.id, this.logOf(node), storage.firstIndex() - 1));
    // Targeted faults: a leader that dies or is cut off right after taking office leaves entries
    // of its term on a minority, the raw material of Figure 8 and of lost-vote bugs.
    if (this.now < this.faultTicks && this.faultRandom.chance(this.config.leaderChurn)) {
      // An isolation at once catches the leader's first append (its own empty entry) in the
      // Ready being handled: the entry stays on this node alone.
      if (this.faultRandom.chance(this.config.profile === 'figure8' ? 0.2 : 0.5)) this.scheduleCrash(node.id, this.now + this.faultRandom.intBetween(1, 12), 'right after its election');
      else this.schedulePartition(nodesOnly(isolate(node.id)), this.now + (this.config.profile === 'figure8' ? 0 : this.faultRandom.intBetween(0, 4)));
    }
  }

  /**
   * Targeted fault: a leader sending entries of an earlier term is finishing a predecessor's
   * work, and cutting it off now, before an entry of its own term follows, is the moment of
   * Raft's Figure 8 (a leader that committed the old entry by counting replicas loses it).
   */
  private maybeCutOldTermReplication(node: SimNode, messages: readonly Message[]): void {
    if (this.now >= this.faultTicks || this.config.oldTermCut === 0) return;
    const old = messages.some((m) => m.type === 'app' && m.entries.some((e) => e.term < node.term));
    if (!old || !this.faultRandom.chance(this.config.oldTermCut)) return;
    const at = this.now + this.faultRandom.intBetween(2, 10);
    // Mostly an isolation: it also loses what is in flight, while a crashed node's last
    // messages still arrive.
    if (this.faultRandom.chance(0.2)) this.scheduleCrash(node.id, at, 'while replicating entries of an earlier term');
    else this.schedulePartition(nodesOnly(isolate(node.id)), at);
  }

  private installSnapshot(node: SimNode, rd: Ready): void {
    const snapshot = rd.snapshot!;
    node.kv = new KvStateMachine(snapshot.data);
    node.applied = snapshot.metadata.index;
    node.voters = snapshot.metadata.confState.voters;
    this.checkers.stateMachine.recordRestored(node.id, node.applied);
    this.event(() => `node ${node.id} installs snapshot at ${snapshot.metadata.index}`);
  }

  private applyEntry(node: SimNode, raft: RawNode, entry: Entry): void {
    const digest = digestOf(entry);
    this.fail(this.checkers.stateMachine.recordApplied(node.id, entry.index, digest));
    this.fail(this.checkers.completeness.recordCommitted({ index: entry.index, term: entry.term, digest }, node.term));
    node.applied = entry.index;
    this.stats.lastIndex = Math.max(this.stats.lastIndex, entry.index);
    if (entry.type === 'conf') {
      const change = decodeConfChange(entry.data);
      const voters = raft.applyConfChange(change).voters;
      node.voters = voters;
      this.event(() => `node ${node.id} applies ${change.type} ${change.nodeId} at ${entry.index}: voters ${voters.join(',')}`);
      return;
    }
    if (entry.data.byteLength === 0) return;
    const command = decodeCommand(entry.data);
    const result = node.kv.apply(command);
    const id = commandId(command.client, command.seq);
    const client = node.waiting.get(id);
    if (client === undefined) return;
    node.waiting.delete(id);
    this.respond(node, { kind: 'response', client, seq: command.seq, outcome: 'ok', lead: 0, value: null, result });
  }

  private serveReads(node: SimNode): void {
    if (node.confirmedReads.length === 0) return;
    const ready = node.confirmedReads.filter((read) => read.index <= node.applied);
    node.confirmedReads = node.confirmedReads.filter((read) => read.index > node.applied);
    for (const { request } of ready) {
      this.respond(node, { kind: 'response', client: request.client, seq: request.seq, outcome: 'ok', lead: 0, value: node.kv.read(request.key), result: null });
    }
  }

  private takeSnapshot(node: SimNode): void {
    const storage = node.disk.cache;
    const snapshotIndex = storage.firstIndex() - 1;
    if (node.applied < snapshotIndex + 5 || node.applied > storage.lastIndex()) return;
    const compactIndex = Math.max(snapshotIndex + 1, node.applied - this.faultRandom.int(4));
    node.disk.snapshotAndCompact(node.applied, node.voters, node.kv.snapshot(), compactIndex);
    if (!this.lazySync) node.disk.sync();
    const applied = node.applied;
    this.event(() => `node ${node.id} snapshots at ${applied}, compacts to ${compactIndex}`);
  }

  private logOf(node: SimNode): LogEntry[] {
    const storage = node.disk.cache;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    if (last < first) return [];
    return storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER).map((entry) => ({ index: entry.index, term: entry.term, digest: digestOf(entry) }));
  }

  private checkLogs(): void {
    const logs: [number, LogEntry[]][] = [];
    for (const node of this.nodes.values()) if (node.raft !== null) logs.push([node.id, this.logOf(node)]);
    this.fail(this.checkers.logMatching.check(logs));
  }

  // ---- server side of the client protocol ----

  private respond(node: SimNode, response: ClientResponse): void {
    this.network.send(node.id, response.client, response, this.now);
  }

  private onRequest(node: SimNode, request: ClientRequest): void {
    const raft = node.raft!;
    const status = raft.status();
    // With forwarding, a follower that knows a leader hands the read or the proposal to it
    // through the core (etcd's forwarding) and answers the client itself once applied.
    if (status.role !== 'leader' && !(this.config.forwarding && status.lead !== 0)) {
      this.respond(node, { kind: 'response', client: request.client, seq: request.seq, outcome: 'redirect', lead: status.lead, value: null, result: null });
      return;
    }
    try {
      if (request.op === 'read') {
        // Unique per call: a duplicated request delivered twice in one tick is two reads.
        const context = `r${request.client}#${request.seq}/${++this.readContexts}`;
        node.reads.set(context, request);
        raft.readIndex(encoder.encode(context));
      } else {
        const base = { client: request.client, seq: request.seq, key: request.key, value: request.value };
        const command: KvCommand = request.op === 'write' ? { ...base, op: 'write' } : { ...base, op: 'cas', expected: request.expected };
        node.waiting.set(commandId(request.client, request.seq), request.client);
        raft.propose(encodeCommand(command));
      }
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      this.respond(node, { kind: 'response', client: request.client, seq: request.seq, outcome: 'dropped', lead: status.lead, value: null, result: null });
    }
  }

  // ---- clients ----

  private newClient(id: number, startAt: number): SimClient {
    return { id, seq: 0, current: null, leaderGuess: this.clientRandom.intBetween(1, this.config.voters), nextStartAt: startAt, lastSeen: new Map() };
  }

  private driveClient(client: SimClient, workload: boolean): void {
    const isProbe = client === this.probe;
    if (client.current === null) {
      const mayStart = isProbe ? client.seq === 0 : workload;
      if (mayStart && this.now >= client.nextStartAt) this.invoke(client, isProbe);
      return;
    }
    if (this.now >= client.current.retryAt) {
      // A timeout says nothing about who leads: try another node. A redirect named one.
      if (!client.current.redirected) client.leaderGuess = this.clientRandom.intBetween(1, this.config.voters);
      this.send(client);
    }
  }

  private invoke(client: SimClient, isProbe: boolean): void {
    client.seq++;
    const key = isProbe ? 'probe' : this.clientRandom.pick(KEYS);
    const value = `${client.id}-${client.seq}`;
    const roll = isProbe ? 0.5 : this.clientRandom.next();
    let op: ClientOp;
    if (roll < 0.4) op = { op: 'read', key };
    else if (roll < 0.75) op = { op: 'write', key, value };
    else op = { op: 'cas', key, expected: client.lastSeen.get(key) ?? null, value };
    const request: ClientRequest = { kind: 'request', client: client.id, seq: client.seq, ...op };
    const operation = { client: client.id, invokedAt: ++this.instant, completedAt: Infinity, op: op.op, input: op.op === 'read' ? { key } : op.op === 'write' ? { key, value } : { key, expected: op.expected, value } } as KvOperation;
    this.history.push(operation);
    this.stats.operations++;
    client.current = { request, operation, retryAt: 0, redirected: false };
    const invoked = { ...operation };
    this.event(() => `client ${client.id} invokes ${describeOperation(invoked)}`);
    this.send(client);
  }

  private send(client: SimClient): void {
    const current = client.current!;
    current.retryAt = this.now + CLIENT_TIMEOUT_TICKS;
    current.redirected = false;
    this.network.send(client.id, client.leaderGuess, current.request, this.now);
  }

  private onResponse(client: SimClient, response: ClientResponse): void {
    const current = client.current;
    if (current === null || response.seq !== current.request.seq) return;
    if (response.outcome !== 'ok') {
      // Redirected or refused: try the named leader, or another node, after the next tick.
      client.leaderGuess = response.lead !== 0 ? response.lead : this.clientRandom.intBetween(1, this.config.voters);
      current.retryAt = this.now + this.clientRandom.intBetween(1, 3);
      current.redirected = true;
      return;
    }
    const operation = current.operation as { completedAt: number; output?: unknown };
    operation.completedAt = ++this.instant;
    const request = current.request;
    if (request.op === 'read') {
      operation.output = response.value;
      client.lastSeen.set(request.key, response.value);
    } else {
      operation.output = request.op === 'write' ? 'ok' : response.result;
      if (request.op === 'write' || response.result === true) client.lastSeen.set(request.key, request.value);
      this.checkers.lostWrite.recordAcknowledged(commandId(client.id, request.seq));
      this.stats.acknowledged++;
    }
    client.current = null;
    client.nextStartAt = this.now + this.clientRandom.int(4);
    this.event(() => `client ${client.id} completes ${describeOperation(current.operation)}`);
  }

  // ---- the nemesis ----

  private readonly scheduled: { at: number; action: () => void }[] = [];

  private scheduleCrash(id: number, at: number, why: string): void {
    this.scheduled.push({ at, action: () => this.crash(this.nodes.get(id)!, why) });
  }

  /**
   * Puts `partition` in force at tick `at` (now, if `at` is not later). In the Figure 8 profile
   * a targeted isolation lasts only 10 to 25 ticks, so that the next leaders come and go fast.
   */
  private schedulePartition(partition: Partition<number>, at: number): void {
    const action = (): void => {
      this.network.partition(partition, this.now);
      if (this.config.profile !== 'figure8') return;
      const until = this.now + this.faultRandom.intBetween(10, 25);
      this.scheduled.push({ at: until, action: () => this.network.currentPartition === partition && this.network.heal(this.now) });
    };
    if (at <= this.now) action();
    else this.scheduled.push({ at, action });
  }

  private nemesis(): void {
    const r = this.faultRandom;
    const ids = [...this.nodes.keys()];
    for (const item of this.scheduled.filter((s) => s.at <= this.now)) item.action();
    this.scheduled.splice(0, this.scheduled.length, ...this.scheduled.filter((s) => s.at > this.now));
    for (const [id, at] of this.restartAt) {
      if (at <= this.now) {
        this.restartAt.delete(id);
        this.restart(this.nodes.get(id)!);
      }
    }
    if (this.now % 40 === 0) this.rotatePartition(ids);
    if (r.chance(0.015)) {
      const victim = this.nodes.get(r.pick(ids))!;
      this.crash(victim, 'at random');
      this.restartAt.set(victim.id, this.now + r.intBetween(3, 40));
    }
    if (r.chance(0.002)) {
      for (const node of this.nodes.values()) this.crash(node, 'in a power cut of the whole cluster');
      for (const id of ids) this.restartAt.set(id, this.now + r.intBetween(2, 15));
    }
    if (this.operatorRandom.chance(0.01)) this.transferLeadership(ids);
    for (const node of this.nodes.values()) {
      if (node.raft === null && !this.restartAt.has(node.id)) this.restartAt.set(node.id, this.now + r.intBetween(3, 40));
    }
  }

  /** An operator moves leadership to another voter; faults may strike mid-transfer. */
  private transferLeadership(ids: number[]): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const target = this.operatorRandom.pick(ids.filter((id) => id !== leader));
    this.nodes.get(leader)!.raft!.transferLeader(target);
    this.event(() => `admin transfers leadership from ${leader} to ${target}`);
  }

  private rotatePartition(ids: number[]): void {
    const r = this.faultRandom;
    // The Figure 8 profile mostly leaves partitions to its targeted isolations.
    const shape = this.config.profile === 'figure8' && r.chance(0.7) ? 6 : r.int(7);
    let partition: Partition<number> | null;
    switch (shape) {
      case 0:
        partition = isolate(this.currentLeader() ?? r.pick(ids));
        break;
      case 1:
        partition = minorityMajority(ids, r);
        break;
      case 2:
        partition = bridge(ids, r.pick(ids), r);
        break;
      case 3:
        partition = ring(r.shuffle(ids));
        break;
      case 4:
        partition = flapping(minorityMajority(ids, r), r.intBetween(3, 15), this.now);
        break;
      default:
        partition = null;
    }
    if (partition === null) this.network.heal(this.now);
    else this.network.partition(nodesOnly(partition), this.now);
  }

  private driveMembership(): void {
    const change = this.membership;
    if (change === null || change.phase === 'done' || this.now < change.nextTryAt) return;
    change.nextTryAt = this.now + 15;
    const leader = this.currentLeader();
    if (leader === null) return;
    const raft = this.nodes.get(leader)!.raft!;
    const voters = raft.status().voters;
    const target = change.nodeId;
    if (change.phase === 'remove' && !voters.includes(target)) {
      change.phase = 'add';
      change.nextTryAt = this.now + 30;
      return;
    }
    if (change.phase === 'add' && voters.includes(target)) {
      change.phase = 'done';
      return;
    }
    // Removing the leader itself is allowed (it steps down when it applies its removal).
    const proposal: ConfChange = change.phase === 'remove' ? { type: 'removeVoter', nodeId: target } : { type: 'addVoter', nodeId: target };
    try {
      raft.proposeConfChange(proposal);
      this.event(() => `admin proposes ${proposal.type} ${target} at leader ${leader}`);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  }

  private currentLeader(): number | null {
    let best: SimNode | null = null;
    for (const node of this.nodes.values()) {
      if (node.raft?.status().role === 'leader' && (best === null || node.term > best.term)) best = node;
    }
    return best?.id ?? null;
  }

  private describeLeaders(): string {
    return [...this.nodes.values()].map((n) => (n.raft === null ? `${n.id}:down` : `${n.id}:${n.raft.status().role}@${n.raft.status().term}`)).join(' ');
  }

  private heal(): void {
    this.scheduled.length = 0;
    this.network.heal(this.now);
    const ids = [...this.nodes.keys()];
    const everyone = [...ids, ...Array.from({ length: this.clients.length + 1 }, (_, i) => FIRST_CLIENT_ID + i)];
    for (const from of everyone) for (const to of everyone) if (from !== to) this.network.setLink(from, to, { dropProbability: 0, duplicateProbability: 0 });
    for (const node of this.nodes.values()) this.restart(node);
    this.restartAt.clear();
    // The re-add must finish for the group to be whole again; it keeps being retried.
    if (this.membership !== null && this.membership.phase === 'remove') this.membership.phase = 'add';
    this.event(() => 'heal: every node up, no more drops, duplicates or partitions');
  }

  private finalChecks(): string | null {
    for (const node of this.nodes.values()) this.processReadies(node);
    this.checkLogs();
    const healthy = [...this.nodes.values()].filter((n) => n.raft !== null).sort((a, b) => b.applied - a.applied)[0]!;
    this.fail(this.checkers.lostWrite.check(healthy.kv.executed));
    const result = checkLinearizability(this.history);
    if (!result.ok) {
      const verdict = result.verdict === 'unknown' ? 'linearizability check ran out of budget' : 'client history is not linearizable';
      return `${verdict} (key ${result.key}): ${result.explanation}`;
    }
    return null;
  }
}

export function runCluster(seed: number, options: ClusterRunOptions = {}): ClusterRunResult {
  return new ClusterSimulation(seed, options).run();
}
