// RawNode: the Ready/advance protocol around the Raft state machine. Inputs (step, tick,
// propose, ...) change the state; ready() gathers what the driver must persist, send and apply;
// advance() tells the core the driver did it. Not safe for concurrent use (the core is plain
// synchronous code; a driver serialises calls).
import type { RaftConfig } from './config.js';
import { Raft } from './raft.js';
import {
  encodeConfChange,
  isEmptyHardState,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Ready,
  type SoftState,
} from './types.js';

const LOCAL_TYPES = new Set<Message['type']>(['hup', 'beat', 'checkQuorum', 'unreachable', 'snapStatus']);
/** Messages that travel between nodes with term 0: requests forwarded to the leader. */
const FORWARDED_TYPES = new Set<Message['type']>(['prop', 'readIndex', 'transferLeader']);
const RESPONSE_TYPES = new Set<Message['type']>(['appResp', 'voteResp', 'preVoteResp', 'heartbeatResp', 'unreachable', 'snapStatus']);

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.role === b.role;
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** The Ready handed out and not yet advanced; a second ready() before advance() is a bug. */
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  get id(): number {
    return this.raft.id;
  }

  /** Advances logical time by one tick (elections and heartbeats are counted in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.step(message({ type: 'hup', from: this.raft.id }));
  }

  /** Proposes data for the log. Throws ProposalDroppedError when no leader can take it. */
  propose(data: Uint8Array): void {
    this.raft.step(message({ type: 'prop', from: this.raft.id, entries: [{ term: 0, index: 0, type: 'normal', data }] }));
  }

  /** Proposes a membership change; it takes effect when the driver applies the committed entry. */
  proposeConfChange(change: ConfChange): void {
    this.raft.step(message({ type: 'prop', from: this.raft.id, entries: [{ term: 0, index: 0, type: 'conf', data: encodeConfChange(change) }] }));
  }

  /**
   * Steps a message received from a peer. Local message types are refused (use tick, campaign),
   * as is a message addressed to another node (a misrouting driver). A forwarded proposal or
   * read this node cannot take is dropped silently; the peer's client retries.
   */
  step(m: Message): void {
    if (LOCAL_TYPES.has(m.type)) throw new Error(`raft: cannot step local message ${m.type}`);
    if (m.to !== this.raft.id) throw new Error(`raft: node ${this.raft.id} stepped a message for ${m.to}`);
    if (m.term === 0 && !FORWARDED_TYPES.has(m.type)) throw new Error(`raft: ${m.type} from ${m.from} carries no term`);
    // A response from a node that is not (or no longer) in the group carries nothing for us.
    if (RESPONSE_TYPES.has(m.type) && this.raft.progressOf(m.from) === undefined && this.raft.role === 'leader') return;
    this.raft.step(m);
  }

  /**
   * Asks for a linearizable read. Once confirmed, a ReadState with this context appears in a
   * Ready: serve the read after applying up to its index. The context must be unique per read.
   */
  readIndex(requestContext: Uint8Array): void {
    this.raft.step(message({ type: 'readIndex', from: this.raft.id, context: requestContext }));
  }

  /** Asks the leader to hand leadership to `target` once its log is caught up. */
  transferLeader(target: number): void {
    this.raft.step(message({ type: 'transferLeader', from: target, to: this.raft.id }));
  }

  /** The transport could not deliver to `id`, or lost its connection: a leader stops streaming to it optimistically; a follower whose leader it is ends that leader's lease. */
  reportUnreachable(id: number): void {
    this.raft.step(message({ type: 'unreachable', from: id }));
  }

  /**
   * The transport finished (or failed) sending a snapshot to `id`. Required after every 'snap'
   * message: the leader pauses that follower until it hears this (or an append response).
   */
  reportSnapshot(id: number, failed: boolean): void {
    this.raft.step(message({ type: 'snapStatus', from: id, reject: failed }));
  }

  /** Applies a committed conf change; call it when applying its entry. Returns the new voter set. */
  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  /** Observer view: role, leader, term, commit, applied, voters, and one follower's progress. */
  status(): { id: number; term: number; vote: number; lead: number; role: SoftState['role']; commit: number; applied: number; lastIndex: number; voters: readonly number[]; leadTransferee: number } {
    return {
      id: this.raft.id,
      term: this.raft.term,
      vote: this.raft.vote,
      lead: this.raft.lead,
      role: this.raft.role,
      commit: this.raft.log.committed,
      applied: this.raft.log.applied,
      lastIndex: this.raft.log.lastIndex(),
      voters: this.raft.confState().voters,
      leadTransferee: this.raft.leadTransferee,
    };
  }

  /** On a leader: a conf change is proposed or inherited and not applied yet (one change at a time). */
  confChangePending(): boolean {
    return this.raft.confChangePending();
  }

  progressOf(id: number): ReturnType<Raft['progressOf']> {
    return this.raft.progressOf(id);
  }

  hasReady(): boolean {
    const r = this.raft;
    if (!sameSoftState(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHardState(hs, this.prevHardState)) return true;
    if (r.log.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.log.unstable.entries.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEntries();
  }

  /**
   * The next batch of work; see Ready for the driver's obligations. Messages and read states
   * are handed over now (they are not in the next Ready); call advance(ready) when done.
   */
  ready(): Ready {
    if (this.outstanding !== null) throw new Error('raft: ready() called again before advance()');
    const r = this.raft;
    const soft = r.softState();
    const hard = r.hardState();
    const hardChanged = !sameHardState(hard, this.prevHardState);
    const entries: Entry[] = r.log.unstableEntries();
    const rd: Ready = {
      softState: sameSoftState(soft, this.prevSoftState) ? null : soft,
      hardState: hardChanged && !isEmptyHardState(hard) ? hard : null,
      entries,
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  /** The driver persisted, sent and applied `ready` (see Ready). */
  advance(ready: Ready): void {
    if (ready !== this.outstanding) throw new Error('raft: advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    const r = this.raft;
    if (ready.softState !== null) this.prevSoftState = ready.softState;
    if (ready.hardState !== null) this.prevHardState = ready.hardState;
    if (ready.snapshot !== null) r.log.stableSnapTo(ready.snapshot.metadata.index);
    const lastEntry = ready.entries.at(-1);
    if (lastEntry !== undefined) r.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries.at(-1)?.index ?? 0;
    const applied = Math.max(lastApplied, ready.snapshot?.metadata.index ?? 0);
    if (applied > r.log.applied) r.log.appliedTo(applied);
    r.onPersisted();
  }
}

