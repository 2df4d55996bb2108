// PlacementReplica: one placement voter, the Raft core (RawNode) wired to the metadata state
// machine (placement/metadata). Pure and synchronous: it owns no socket, file, timer or random
// source; the clock and randomness are injected, and the I/O wrapper above it does the work
// each Ready asks for, in this order (Ready in placement/raft/types.ts says why):
//
//   const rd = replica.ready();                  // null when there is nothing to do
//   await raftPersistence.save(rd.logUpdate);    // 1. durable before anything leaves
//   send(rd.messages);                           // 2. then the messages
//   const { update } = replica.apply(rd);        // 3. apply committed entries (answers proposals)
//   if (update) await appliedPersistence.saveApplied(update);   // may lag: the log replays it
//   const { compaction } = replica.advance(rd);  // 4. serve reads, advance the core
//   if (compaction) await raftPersistence.compact(compaction.snapshot, compaction.compactIndex);
//   deliver(replica.takeAnswers());              // after every input and every cycle
//
// The compaction waits for the applied state at its index to be durable (persistence.ts says why).
//
// Requests and their answers (answers.ts): propose(command), read(), addVoter/removeVoter and
// transferLeadership. Only the leader takes them; a follower answers not-leader with the
// leader it knows. A proposal is answered when its own entry (same index, same term) is
// applied; if leadership or the term changes before its entry is committed, or a snapshot
// replaces the log under it, it is answered dropped (it may still commit: the client retries
// with the same id and sequence, applied once). Reads go through ReadIndex and are answered
// once the state has applied up to the read index; an unconfirmed read is dropped on a
// leadership change.
//
// Restart: the core restarts from the Raft snapshot (its `applied` is the snapshot's index) and
// hands back every committed entry after it; entries at or below the applied state's index are
// already in the state and are skipped (their conf changes still go to the core, which needs
// them to know the voters). If the Raft snapshot is newer than the applied state (a crash
// between installing a received snapshot and saving the state), the state comes from it.
//
// Leader duties: every leaseCheckTicks ticks the leader proposes expire-node (client id
// `placement-<id>`) for the nodes whose lease ran out by its clock; a follower never does.
import {
  ProposalDroppedError,
  RawNode,
  decodeConfChange,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
  type Snapshot,
  type StateRole,
  type Storage,
} from '../raft/index.js';
import {
  MalformedCommandError,
  apply as applyCommand,
  decodeCommand,
  encodeCommand,
  expiredNodes,
  restore,
  snapshot as snapshotState,
  type Change,
  type CommandResult,
  type PlacementCommand,
  type PlacementState,
} from '../metadata/index.js';
import type { Dropped, MembershipOutcome, NotLeader, ProposalOutcome, ReadOutcome, ReplicaAnswer } from './answers.js';
import type { AppliedState, AppliedUpdate, RaftLogUpdate } from './persistence.js';
import { WatchHistory, type WatchAnswer } from './watch-history.js';

type WithoutAt<C> = C extends unknown ? Omit<C, 'at'> : never;
/** A command as a client gives it: the replica stamps `at` from its clock where the type has one. */
export type ProposedCommand = WithoutAt<PlacementCommand>;

const STAMPED_TYPES = new Set<PlacementCommand['type']>(['register-node', 'heartbeat', 'expire-node']);

export interface PlacementReplicaOptions {
  /** This voter's Raft id. */
  readonly id: number;
  /** RaftPersistence.storage: what the core reads. */
  readonly storage: Storage;
  /** AppliedStatePersistence.load(). */
  readonly applied: AppliedState;
  /** Milliseconds; stamps `at` on proposals and decides which leases ran out. */
  readonly clock: () => number;
  /** [0, 1), for the core's election timeouts. */
  readonly random: () => number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  /** Snapshot the state and compact the log after this many entries applied since the last snapshot. */
  readonly snapshotEntries: number;
  /** Entries kept behind a snapshot, so a follower a little behind catches up from the log. */
  readonly snapshotKeepEntries: number;
  /** Changes kept for watchers; a watcher further behind gets revision-compacted. */
  readonly watchHistoryChanges: number;
  /** Ticks between the leader's looks for expired leases. */
  readonly leaseCheckTicks: number;
  /**
   * Proposals and reads waiting for an answer at once; past it a new one is answered dropped
   * at once (retry later), so a flood of clients cannot grow the replica's memory without end.
   */
  readonly maxPendingRequests: number;
  /** Deliberate bugs for the simulator's self-tests only; never set elsewhere. */
  readonly unsafe?: ReplicaUnsafeSwitches;
}

export interface ReplicaUnsafeSwitches {
  /** Answer a proposal as soon as the leader appends it, with the result it would have now. */
  readonly answerBeforeCommit?: boolean;
  /** Run the leader duties on every replica (a follower's proposals go to the leader through the core). */
  readonly dutiesOnFollowers?: boolean;
  /** Keep the watch history across a restart or a snapshot install, as if nothing were missing. */
  readonly watchHistoryWithoutFloor?: boolean;
}

/** One Ready for the wrapper: persist `logUpdate`, then send `messages`, then apply(this). */
export interface ReplicaReady {
  readonly logUpdate: RaftLogUpdate;
  readonly messages: readonly Message[];
  /** The core's Ready; the wrapper passes this object back to apply and advance untouched. */
  readonly raft: Ready;
}

/** What one committed entry did here, for tracing and checkers. */
export type AppliedEntry =
  | { readonly index: number; readonly term: number; readonly kind: 'command'; readonly command: PlacementCommand; readonly result: CommandResult; readonly changes: readonly Change[]; readonly duplicate: boolean }
  | { readonly index: number; readonly term: number; readonly kind: 'conf'; readonly voters: readonly number[] }
  /** An empty entry (a new leader's first), or an entry the applied state already held (restart). */
  | { readonly index: number; readonly term: number; readonly kind: 'empty' | 'skipped' };

export interface ApplyOutcome {
  /** For AppliedStatePersistence.saveApplied; null when nothing new was applied. */
  readonly update: AppliedUpdate | null;
  /** A snapshot installed in this step (the state was replaced), or null. */
  readonly installed: Snapshot | null;
  readonly entries: readonly AppliedEntry[];
}

export interface Compaction {
  readonly snapshot: Snapshot;
  readonly compactIndex: number;
}

export interface ReplicaStatus {
  readonly id: number;
  readonly role: StateRole;
  readonly term: number;
  /** 0 when no leader is known. */
  readonly leader: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly voters: readonly number[];
}

interface PendingProposal {
  readonly id: number;
  readonly term: number;
  readonly index: number;
  readonly kind: 'proposal' | 'membership';
  /** Leader duties are answered to the replica itself, not to takeAnswers(). */
  readonly duty: string | null;
}

export const DUTY_CLIENT_PREFIX = 'placement-';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class PlacementReplica {
  private readonly raft: RawNode;
  private readonly options: PlacementReplicaOptions;
  private state: PlacementState;
  private appliedIndex: number;
  private appliedTerm: number;
  private confState: ConfState;
  private readonly history: WatchHistory;
  /** The index of the latest snapshot, ours or installed: the next one is due snapshotEntries later. */
  private snapshotIndex: number;
  private nextRequestId = 1;
  private readonly pending = new Map<number, PendingProposal>();
  /** ReadIndex context → read id, until the leader confirms the read. */
  private readonly unconfirmedReads = new Map<string, number>();
  private confirmedReads: { id: number; index: number }[] = [];
  private answers: ReplicaAnswer[] = [];
  private leadership = { role: 'follower' as StateRole, term: 0 };
  private ticksSinceLeaseCheck = 0;
  private dutySequence = 0;
  /** Node ids with an expire-node in flight, so one lease check does not stack duplicates. */
  private readonly dutiesInFlight = new Set<string>();
  private changesSinceSave: Change[] = [];
  private sessionsSinceSave = new Set<string>();
  private replacedSinceSave = false;

  constructor(options: PlacementReplicaOptions) {
    this.options = options;
    const raftSnapshot = options.storage.snapshot();
    let applied = options.applied;
    if (raftSnapshot.metadata.index > applied.appliedIndex) {
      applied = { appliedIndex: raftSnapshot.metadata.index, appliedTerm: raftSnapshot.metadata.term, confState: raftSnapshot.metadata.confState, state: restore(raftSnapshot.data) };
      this.replacedSinceSave = true;
    }
    this.state = applied.state;
    this.appliedIndex = applied.appliedIndex;
    this.appliedTerm = applied.appliedTerm;
    this.confState = applied.confState;
    this.snapshotIndex = raftSnapshot.metadata.index;
    this.history = new WatchHistory(options.watchHistoryChanges, options.unsafe?.watchHistoryWithoutFloor === true ? 0 : this.state.revision);
    this.raft = new RawNode({
      id: options.id,
      storage: options.storage,
      electionTick: options.electionTick,
      heartbeatTick: options.heartbeatTick,
      random: options.random,
      maxSizePerMsg: options.maxSizePerMsg,
      maxInflightMsgs: options.maxInflightMsgs,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      applied: raftSnapshot.metadata.index,
    });
  }

  get id(): number {
    return this.options.id;
  }

  /** The applied state (immutable); not linearizable: use read() for that. */
  get currentState(): PlacementState {
    return this.state;
  }

  status(): ReplicaStatus {
    const s = this.raft.status();
    return { id: s.id, role: s.role, term: s.term, leader: s.lead, commitIndex: s.commit, appliedIndex: this.appliedIndex, revision: this.state.revision, voters: s.voters };
  }

  /** On the leader: a membership change is not applied yet, so another would be turned into a no-op. */
  membershipChangePending(): boolean {
    return this.raft.confChangePending();
  }

  // ---- inputs ----

  tick(): void {
    this.raft.tick();
    this.ticksSinceLeaseCheck++;
    if (this.ticksSinceLeaseCheck < this.options.leaseCheckTicks) return;
    this.ticksSinceLeaseCheck = 0;
    if (this.raft.status().role === 'leader' || this.options.unsafe?.dutiesOnFollowers === true) this.proposeExpiries();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  /**
   * The transport finished (or failed) sending a snapshot to `to`; required after every 'snap'
   * message, which pauses that follower until then (see RawNode.reportSnapshot).
   */
  reportSnapshot(to: number, failed: boolean): void {
    this.raft.reportSnapshot(to, failed);
  }

  /** The transport could not reach `to`, or lost its connection to it (see RawNode.reportUnreachable). */
  reportUnreachable(to: number): void {
    this.raft.reportUnreachable(to);
  }

  /** Starts an election now (tests and operators; elections otherwise start on ticks). */
  campaign(): void {
    this.raft.campaign();
  }

  propose(command: ProposedCommand): number {
    const id = this.nextRequestId++;
    const outcome = this.refuseUnlessLeader() ?? this.busy() ?? this.proposeEntry(id, command, null);
    if (outcome !== null) this.answers.push({ kind: 'proposal', id, outcome });
    return id;
  }

  read(): number {
    const id = this.nextRequestId++;
    const refusal = this.refuseUnlessLeader() ?? this.busy();
    if (refusal !== null) {
      this.answers.push({ kind: 'read', id, outcome: refusal });
      return id;
    }
    // Unique within this core's life, which is this object's: request ids never repeat here.
    const context = `read/${id}`;
    try {
      this.raft.readIndex(encoder.encode(context));
      this.unconfirmedReads.set(context, id);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      this.answers.push({ kind: 'read', id, outcome: { status: 'dropped', reason: error.message } });
    }
    return id;
  }

  /** Changes from `fromRevision` on, as this replica has applied them (not linearizable). */
  watch(fromRevision: number): WatchAnswer {
    return this.history.since(fromRevision);
  }

  addVoter(nodeId: number): number {
    return this.proposeMembership({ type: 'addVoter', nodeId });
  }

  removeVoter(nodeId: number): number {
    return this.proposeMembership({ type: 'removeVoter', nodeId });
  }

  /** Asks the leader to hand over to `target`; the outcome shows in status(). */
  transferLeadership(target: number): NotLeader | null {
    const refusal = this.refuseUnlessLeader();
    if (refusal !== null) return refusal;
    this.raft.transferLeader(target);
    return null;
  }

  /** Every answer produced since the last call, in order. */
  takeAnswers(): ReplicaAnswer[] {
    const answers = this.answers;
    this.answers = [];
    return answers;
  }

  // ---- the Ready cycle ----

  ready(): ReplicaReady | null {
    if (!this.raft.hasReady()) return null;
    const rd = this.raft.ready();
    this.onLeadership();
    return { logUpdate: { snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, mustSync: rd.mustSync }, messages: rd.messages, raft: rd };
  }

  /** Step 3, once `ready.logUpdate` is durable and the messages are sent. */
  apply(ready: ReplicaReady): ApplyOutcome {
    const rd = ready.raft;
    const before = this.appliedIndex;
    const installed = rd.snapshot !== null && rd.snapshot.metadata.index > this.appliedIndex ? rd.snapshot : null;
    if (installed !== null) this.install(installed);
    const entries = rd.committedEntries.map((entry) => this.applyEntry(entry));
    for (const readState of rd.readStates) {
      const context = decoder.decode(readState.context);
      const id = this.unconfirmedReads.get(context);
      if (id === undefined) continue;
      this.unconfirmedReads.delete(context);
      this.confirmedReads.push({ id, index: readState.index });
    }
    if (this.appliedIndex === before && installed === null) return { update: null, installed, entries };
    return { update: this.takeUpdate(), installed, entries };
  }

  /** Steps 4 and 5: serve reads the state has caught up with, advance the core; maybe a compaction is due. */
  advance(ready: ReplicaReady): { compaction: Compaction | null } {
    this.serveReads();
    this.raft.advance(ready.raft);
    return { compaction: this.compactionDue() };
  }

  // ---- internals ----

  private busy(): Dropped | null {
    const waiting = this.pending.size + this.unconfirmedReads.size + this.confirmedReads.length;
    if (waiting < this.options.maxPendingRequests) return null;
    return { status: 'dropped', reason: `${waiting} requests are waiting, limit ${this.options.maxPendingRequests} (maxPendingRequests)` };
  }

  private refuseUnlessLeader(): NotLeader | null {
    const s = this.raft.status();
    if (s.role === 'leader') return null;
    return { status: 'not-leader', leader: s.lead === 0 ? null : s.lead };
  }

  /** Proposes one command; returns its answer when it has one at once, else null. */
  private proposeEntry(id: number, command: ProposedCommand, duty: string | null): ProposalOutcome | null {
    const forwardDuty = duty !== null && this.options.unsafe?.dutiesOnFollowers === true;
    const refusal = forwardDuty ? null : this.refuseUnlessLeader();
    if (refusal !== null) return refusal;
    const stamped = (STAMPED_TYPES.has(command.type) ? { ...command, at: this.options.clock() } : command) as PlacementCommand;
    let data: Uint8Array;
    try {
      data = encodeCommand(stamped);
    } catch (error) {
      if (error instanceof MalformedCommandError) return { status: 'malformed', detail: error.message };
      throw error;
    }
    try {
      this.raft.propose(data);
    } catch (error) {
      if (error instanceof ProposalDroppedError) return { status: 'dropped', reason: error.message };
      throw error;
    }
    const s = this.raft.status();
    this.pending.set(s.lastIndex, { id, term: s.term, index: s.lastIndex, kind: 'proposal', duty });
    if (this.options.unsafe?.answerBeforeCommit === true && duty === null) {
      this.pending.delete(s.lastIndex);
      return { status: 'applied', index: s.lastIndex, result: applyCommand(this.state, stamped).result };
    }
    return null;
  }

  private proposeMembership(change: Parameters<RawNode['proposeConfChange']>[0]): number {
    const id = this.nextRequestId++;
    const answer = (outcome: MembershipOutcome): void => void this.answers.push({ kind: 'membership', id, outcome });
    const refusal = this.refuseUnlessLeader();
    if (refusal !== null) {
      answer(refusal);
      return id;
    }
    try {
      this.raft.proposeConfChange(change);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      answer({ status: 'dropped', reason: error.message });
      return id;
    }
    const s = this.raft.status();
    this.pending.set(s.lastIndex, { id, term: s.term, index: s.lastIndex, kind: 'membership', duty: null });
    return id;
  }

  private proposeExpiries(): void {
    const clientId = `${DUTY_CLIENT_PREFIX}${this.options.id}`;
    const known = this.state.sessions.get(clientId)?.sequence ?? 0;
    for (const nodeId of expiredNodes(this.state, this.options.clock())) {
      if (this.dutiesInFlight.has(nodeId)) continue;
      // A restarted leader's counter starts below its committed commands: start above the
      // session. A sequence reused by accident only returns an older duty's answer, and the
      // next lease check proposes again.
      this.dutySequence = Math.max(this.dutySequence, known) + 1;
      const outcome = this.proposeEntry(this.nextRequestId++, { type: 'expire-node', clientId, sequence: this.dutySequence, nodeId }, nodeId);
      if (outcome === null) this.dutiesInFlight.add(nodeId);
    }
  }

  /** A leadership change drops what was waiting on the old leadership and is not committed. */
  private onLeadership(): void {
    const s = this.raft.status();
    if (s.role === this.leadership.role && s.term === this.leadership.term) return;
    this.leadership = { role: s.role, term: s.term };
    for (const proposal of [...this.pending.values()]) {
      if (proposal.index > s.commit && (s.role !== 'leader' || proposal.term !== s.term)) this.finish(proposal, { status: 'dropped', reason: `leadership changed (now ${s.role} in term ${s.term}) before index ${proposal.index} was committed` });
    }
    for (const id of this.unconfirmedReads.values()) this.answers.push({ kind: 'read', id, outcome: { status: 'dropped', reason: `leadership changed (now ${s.role} in term ${s.term}) before the read was confirmed` } });
    this.unconfirmedReads.clear();
  }

  private finish(proposal: PendingProposal, outcome: ProposalOutcome | MembershipOutcome): void {
    this.pending.delete(proposal.index);
    if (proposal.duty !== null) {
      this.dutiesInFlight.delete(proposal.duty);
      return;
    }
    if (proposal.kind === 'membership') this.answers.push({ kind: 'membership', id: proposal.id, outcome: outcome as MembershipOutcome });
    else this.answers.push({ kind: 'proposal', id: proposal.id, outcome: outcome as ProposalOutcome });
  }

  private install(snapshot: Snapshot): void {
    this.state = restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.appliedTerm = snapshot.metadata.term;
    this.confState = snapshot.metadata.confState;
    this.snapshotIndex = snapshot.metadata.index;
    if (this.options.unsafe?.watchHistoryWithoutFloor !== true) this.history.reset(this.state.revision);
    this.replacedSinceSave = true;
    this.changesSinceSave = [];
    this.sessionsSinceSave.clear();
    for (const proposal of [...this.pending.values()]) {
      if (proposal.index <= snapshot.metadata.index) this.finish(proposal, { status: 'dropped', reason: `a snapshot at ${snapshot.metadata.index} replaced the log` });
    }
  }

  private applyEntry(entry: Entry): AppliedEntry {
    const { index, term } = entry;
    if (index <= this.appliedIndex) {
      // Already in the applied state (a restart replays from the Raft snapshot); the core still
      // needs the conf changes to know the voters.
      if (entry.type === 'conf') this.raft.applyConfChange(decodeConfChange(entry.data));
      return { index, term, kind: 'skipped' };
    }
    if (index !== this.appliedIndex + 1) throw new Error(`placement: applying index ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    this.appliedTerm = term;
    const proposal = this.pending.get(index);
    const ours = proposal !== undefined && proposal.term === term;
    if (proposal !== undefined && !ours) this.finish(proposal, { status: 'dropped', reason: `index ${index} holds another leader's entry` });
    if (entry.type === 'conf') {
      this.confState = this.raft.applyConfChange(decodeConfChange(entry.data));
      if (ours) this.finish(proposal, { status: 'applied', index, voters: this.confState.voters });
      return { index, term, kind: 'conf', voters: this.confState.voters };
    }
    if (entry.data.byteLength === 0) {
      if (ours) this.finish(proposal, { status: 'dropped', reason: `index ${index} became a no-op (a conf change was pending)` });
      return { index, term, kind: 'empty' };
    }
    // Entries are written by encodeCommand, which checks them: a decode failure is a broken log.
    const command = decodeCommand(entry.data);
    const output = applyCommand(this.state, command);
    this.state = output.state;
    this.history.record(output.changes, this.state.revision);
    this.changesSinceSave.push(...output.changes);
    if (!output.duplicate) this.sessionsSinceSave.add(command.clientId);
    if (ours) this.finish(proposal, { status: 'applied', index, result: output.result });
    return { index, term, kind: 'command', command, result: output.result, changes: output.changes, duplicate: output.duplicate };
  }

  private serveReads(): void {
    if (this.confirmedReads.length === 0) return;
    const due = this.confirmedReads.filter((read) => read.index <= this.appliedIndex);
    this.confirmedReads = this.confirmedReads.filter((read) => read.index > this.appliedIndex);
    for (const read of due) {
      const outcome: ReadOutcome = { status: 'ok', appliedIndex: this.appliedIndex, state: this.state };
      this.answers.push({ kind: 'read', id: read.id, outcome });
    }
  }

  private takeUpdate(): AppliedUpdate {
    const update: AppliedUpdate = {
      appliedIndex: this.appliedIndex,
      appliedTerm: this.appliedTerm,
      confState: this.confState,
      state: this.state,
      replaced: this.replacedSinceSave,
      changes: this.changesSinceSave,
      sessions: [...this.sessionsSinceSave].sort(),
    };
    this.replacedSinceSave = false;
    this.changesSinceSave = [];
    this.sessionsSinceSave = new Set();
    return update;
  }

  private compactionDue(): Compaction | null {
    if (this.appliedIndex - this.snapshotIndex < this.options.snapshotEntries) return null;
    const storage = this.options.storage;
    if (this.appliedIndex > storage.lastIndex() || this.appliedIndex <= storage.firstIndex() - 1) return null;
    this.snapshotIndex = this.appliedIndex;
    const snapshot: Snapshot = { metadata: { index: this.appliedIndex, term: this.appliedTerm, confState: this.confState }, data: snapshotState(this.state) };
    return { snapshot, compactIndex: Math.max(0, this.appliedIndex - this.options.snapshotKeepEntries) };
  }
}
