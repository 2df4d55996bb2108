// The Raft state machine of one node: steps messages and ticks, and queues what to send. It
// never touches a disk, socket, clock or random source; RawNode wraps it with the Ready/advance
// protocol. The shape follows etcd-io/raft raft.go; the rules cite the Raft paper and thesis.
//
// Decisions:
// - The leader counts its own log as replicated only up to what the driver has persisted
//   (Raft.onPersisted, called from advance), so "persist before send" also covers the leader.
// - Conf changes take effect when applied (the driver calls applyConfChange for a committed
//   conf entry), as etcd does; at most one may be unapplied at a time (pendingConfIndex).
// - A new leader appends an empty entry of its term, because entries of older terms are only
//   committed indirectly, when an entry of the current term is (Raft §5.4.2, Figure 8).
import { validateConfig, type RaftConfig } from './config.js';
import { CompactedError, ProposalDroppedError } from './errors.js';
import { RaftLog } from './log.js';
import { ProgressTracker, type Progress } from './progress.js';
import { ReadOnly, type ReadIndexStatus } from './read-only.js';
import { entrySize } from './storage.js';
import {
  NO_NODE,
  decodeConfChange,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type ReadState,
  type SoftState,
  type StateRole,
} from './types.js';

type CampaignType = 'preElection' | 'election' | 'transfer';

/** Marks the votes of a leadership transfer so that followers' leader lease does not block them. */
const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

function isTransferContext(context: Uint8Array | null): boolean {
  return context !== null && context.length === CAMPAIGN_TRANSFER.length && context.every((b, i) => b === CAMPAIGN_TRANSFER[i]);
}

function voteResponseType(type: MessageType): MessageType {
  if (type === 'vote') return 'voteResp';
  if (type === 'preVote') return 'preVoteResp';
  throw new Error(`raft: not a vote message: ${type}`);
}

export class Raft {
  readonly id: number;
  term = 0;
  vote = NO_NODE;
  lead = NO_NODE;
  role: StateRole = 'follower';
  readonly log: RaftLog;
  private tracker: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** The node a leadership transfer is handing over to, or NO_NODE. */
  leadTransferee = NO_NODE;
  /** Index of the last conf entry the leader appended; a new one waits until it is applied. */
  private pendingConfIndex = 0;
  private readOnly = new ReadOnly();
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly config: RaftConfig;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.config = config;
    this.id = config.id;
    this.log = new RaftLog(config.storage);
    this.tracker = new ProgressTracker(config.maxInflightMsgs, config.maxInflightBytes ?? 0);
    const { hardState, confState } = config.storage.initialState();
    for (const id of confState.voters) this.tracker.addVoter(id, 1);
    if (hardState.term !== 0 || hardState.vote !== NO_NODE || hardState.commit !== 0) this.loadHardState(hardState);
    if ((config.applied ?? 0) > 0) this.log.appliedTo(config.applied ?? 0);
    this.becomeFollower(this.term, NO_NODE);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /**
   * True while a leader's conf change may be unapplied (its own proposal, or any entry it
   * inherited in its log): a new one now would become a no-op. Read by the service to refuse a
   * second membership change clearly instead of dropping it.
   */
  confChangePending(): boolean {
    return this.role === 'leader' && this.pendingConfIndex > this.log.applied;
  }

  confState(): ConfState {
    return this.tracker.confState();
  }

  /** Read-only view for tests and observers: follower progress as the leader sees it. */
  progressOf(id: number): { match: number; next: number; state: string; inflight: number } | undefined {
    const pr = this.tracker.progress.get(id);
    return pr === undefined ? undefined : { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count() };
  }

  private loadHardState(hs: HardState): void {
    // A commit index past the log means entries were lost after the hard state was written (the
    // driver broke the persist order, or the disk lost data): refuse to start on such a log.
    if (hs.commit > this.log.lastIndex()) {
      throw new Error(`raft: hard state commit ${hs.commit} is past the last index ${this.log.lastIndex()}`);
    }
    // A commit below the snapshot is a crash between persisting a snapshot and the hard state;
    // the snapshot itself proves its entries committed, so keep the higher of the two.
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---- roles ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.drawElectionTimeout();
    this.leadTransferee = NO_NODE;
    this.tracker.resetVotes();
    this.tracker.resetProgress(this.log.lastIndex() + 1);
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) self.match = this.log.stableLastIndex();
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  private drawElectionTimeout(): number {
    const r = this.config.random();
    if (!(r >= 0 && r < 1)) throw new Error(`raft: random() must return a number in [0, 1), got ${r}`);
    return this.config.electionTick + Math.floor(r * this.config.electionTick);
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: losing a pre-vote must leave no trace.
    this.tracker.resetVotes();
    this.lead = NO_NODE;
    this.role = 'preCandidate';
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new Error('raft: follower cannot become leader without an election');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conservatively treat any conf entry in the log as possibly unapplied.
    this.pendingConfIndex = this.log.lastIndex();
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }]);
  }

  // ---- ticks ----

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: 'hup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.step(message({ type: 'checkQuorum', from: this.id }));
      // A transfer that has not finished within an election timeout is abandoned, so proposals flow again.
      if (this.role === 'leader' && this.leadTransferee !== NO_NODE) this.leadTransferee = NO_NODE;
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.config.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'beat', from: this.id }));
    }
  }

  /** Only a voter with no snapshot waiting to be persisted may campaign. */
  private promotable(): boolean {
    return this.tracker.voters.has(this.id) && !this.log.hasPendingSnapshot();
  }

  // ---- sending ----

  private send(m: Message): void {
    const isVoteTraffic = m.type === 'vote' || m.type === 'voteResp' || m.type === 'preVote' || m.type === 'preVoteResp';
    if (isVoteTraffic) {
      if (m.term === 0) throw new Error(`raft: ${m.type} must carry a term`);
      this.msgs.push({ ...m, from: m.from === NO_NODE ? this.id : m.from });
      return;
    }
    if (m.term !== 0) throw new Error(`raft: ${m.type} term is set by send, got ${m.term}`);
    // Proposals and read requests forwarded to the leader keep term 0: they are local to it.
    const term = m.type === 'prop' || m.type === 'readIndex' || m.type === 'transferLeader' ? 0 : this.term;
    this.msgs.push({ ...m, from: m.from === NO_NODE ? this.id : m.from, term });
  }

  private sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends an append (or a snapshot) to `to` if its progress allows; returns whether one went out. */
  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries = this.log.entries(pr.next, this.config.maxSizePerMsg);
    } catch (error) {
      if (!(error instanceof CompactedError)) throw error;
      return this.sendSnapshot(to);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(message({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed }));
    const last = entries.at(-1);
    if (last !== undefined) {
      if (pr.state === 'replicate') {
        pr.sentEntriesUpTo(last.index);
        pr.inflights.add(last.index, entries.reduce((sum, e) => sum + entrySize(e), 0));
      } else if (pr.state === 'probe') {
        pr.msgAppFlowPaused = true;
      }
    }
    return true;
  }

  /** The entries the follower needs are compacted: send the snapshot instead. */
  private sendSnapshot(to: number): boolean {
    const pr = this.tracker.progress.get(to)!;
    // Only to a follower we heard from lately: a snapshot is large, do not send it into the void.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot.metadata.index === 0) throw new Error('raft: need a snapshot but storage has none');
    this.send(message({ type: 'snap', to, snapshot }));
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  private sendHeartbeat(to: number, context: Uint8Array | null): void {
    const pr = this.tracker.progress.get(to)!;
    // Never tell a follower to commit past what it is known to have: its log may differ beyond match.
    const commit = Math.min(pr.match, this.log.committed);
    this.send(message({ type: 'heartbeat', to, commit, context }));
  }

  private bcastAppend(): void {
    for (const id of this.tracker.ids()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: Uint8Array | null): void {
    for (const id of this.tracker.ids()) if (id !== this.id) this.sendHeartbeat(id, context);
  }

  private appendEntries(entries: readonly Omit<Entry, 'term' | 'index'>[] | readonly Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ type: e.type, data: e.data, term: this.term, index: ++index }));
    this.log.append(stamped);
  }

  /** The driver persisted the log up to the stable index: the leader's own copy now counts. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined && self.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) this.onCommitAdvanced();
  }

  private maybeCommit(): boolean {
    if (this.config.unsafe?.commitOldTermByCounting === true) {
      const counted = Math.min(this.tracker.committed(), this.log.lastIndex());
      if (counted <= this.log.committed) return false;
      this.log.commitTo(counted);
      return true;
    }
    return this.log.maybeCommit(this.tracker.committed(), this.term);
  }

  private onCommitAdvanced(): void {
    this.releasePendingReadIndexMessages();
    this.bcastAppend();
  }

  // ---- stepping ----

  step(m: Message): void {
    if (m.term === 0) {
      // Local message: handled below.
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.config.checkQuorum && this.lead !== NO_NODE && this.electionElapsed < this.config.electionTick;
        // Leader lease (thesis §4.2.3): while we hear from a leader, a vote request comes from a
        // disruptive node (removed, or partitioned and rejoining), unless it is a transfer.
        if (inLease && !isTransferContext(m.context)) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote request never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // The term in a granted pre-vote is the one we will campaign in; we bump it on winning.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NO_NODE);
      }
    } else if (m.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader cut off by check-quorum or pre-vote would never hear a higher term
        // from us otherwise (we do not bump it), so tell it, and it steps down.
        this.send(message({ type: 'appResp', to: m.from }));
      } else if (m.type === 'preVote') {
        this.send(message({ type: 'preVoteResp', to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case 'hup':
        this.hup(this.config.preVote ? 'preElection' : 'election');
        return;
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        if (this.role === 'leader') this.stepLeader(m);
        else if (this.role === 'follower') this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    // We may vote again for the node we already voted for (a retransmitted request), or vote
    // when we have not voted and know no leader; a pre-vote for a later term is always open.
    const canVote = this.vote === m.from || (this.vote === NO_NODE && this.lead === NO_NODE) || (m.type === 'preVote' && m.term > this.term);
    const respType = voteResponseType(m.type);
    const upToDate = this.config.unsafe?.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    // Two followers that lose their leader at once (its connection dropped on both) start
    // pre-votes for the same term at about the same time; granting each other, both would
    // become candidates, vote for themselves and split, costing another election timeout.
    // Between two pre-candidates of the same term whose logs are equal, the higher id alone
    // gets the grant. A pre-vote changes nothing (real votes decide safety), and one with the
    // better log is granted as before, so the one that can win still does.
    const preVoteTie = m.type === 'preVote' && this.role === 'preCandidate' && m.term === this.term + 1 && m.from < this.id && m.logTerm === this.log.lastTerm() && m.index === this.log.lastIndex();
    if (canVote && upToDate && !preVoteTie) {
      this.send(message({ type: respType, to: m.from, term: m.term }));
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  private hup(type: CampaignType): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // A conf change committed but not applied may remove us or change the quorum: wait for it.
    const unapplied = this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    if (unapplied.some((e) => e.type === 'conf')) return;
    this.campaign(type);
  }

  private campaign(type: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (type === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.tracker.recordVote(this.id, true);
    const result = this.tracker.tallyVotes();
    if (result === 'won') {
      if (type === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of [...this.tracker.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      const context = type === 'transfer' ? CAMPAIGN_TRANSFER : null;
      this.send(message({ type: voteType, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context }));
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.bcastHeartbeat(this.readOnly.lastPendingContext());
        return;
      case 'checkQuorum':
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case 'prop':
        this.propose(m);
        return;
      case 'readIndex':
        this.leaderReadIndex(m);
        return;
      case 'transferLeader':
        this.startTransfer(m.from);
        return;
      default:
        break;
    }
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appResp':
        pr.recentActive = true;
        if (m.reject) {
          const hint = m.logTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        this.handleAppendAck(m, pr);
        return;
      case 'heartbeatResp':
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // The follower is alive but acks may have been lost: free one slot so the window moves.
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context !== null) this.handleReadIndexAck(m.from, m.context);
        return;
      case 'snapStatus':
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing again, rather than retrying at once.
        pr.msgAppFlowPaused = true;
        return;
      case 'unreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private handleAppendAck(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up past the snapshot (or our compaction point): replicate from the log.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) this.onCommitAdvanced();
    else if (wasPaused) this.sendAppend(m.from);
    while (this.maybeSendAppend(m.from, false)) {
      // Fill the inflight window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /**
   * Refuses a proposal, read or transfer: a local caller learns it by the exception; one
   * forwarded from a peer is dropped silently (the peer's client times out and retries), so a
   * driver need not guard step() against it.
   */
  private drop(m: Message, reason: string): void {
    if (m.from === this.id || m.from === NO_NODE) throw new ProposalDroppedError(reason);
  }

  private propose(m: Message): void {
    if (m.entries.length === 0) throw new Error('raft: empty proposal');
    if (!this.tracker.voters.has(this.id)) return this.drop(m, 'this leader was removed from the group');
    if (this.leadTransferee !== NO_NODE) return this.drop(m, `leadership is being transferred to ${this.leadTransferee}`);
    const entries = m.entries.map((e, i) => {
      if (e.type !== 'conf') return e;
      if (this.pendingConfIndex > this.log.applied) {
        // One change at a time (thesis §4.1); the slot is kept as a no-op so indexes stay as proposed.
        return { ...e, type: 'normal' as const, data: new Uint8Array(0) };
      }
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
      return e;
    });
    this.appendEntries(entries);
    this.bcastAppend();
  }

  private startTransfer(transferee: number): void {
    if (!this.tracker.voters.has(transferee)) return;
    if (this.leadTransferee === transferee) return;
    this.leadTransferee = NO_NODE;
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout, or tickHeartbeat abandons it.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    const pr = this.tracker.progress.get(transferee)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: number): void {
    this.send(message({ type: 'timeoutNow', to }));
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private leaderReadIndex(m: Message): void {
    if (m.context === null) throw new Error('raft: readIndex without context');
    // Until an entry of this term commits, our commit index may be behind the previous leader's
    // (thesis §6.4 step 1): queue the read until then.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.serveReadIndex(m);
  }

  private serveReadIndex(m: Message): void {
    if (this.tracker.voters.size === 1 && this.tracker.voters.has(this.id)) {
      this.respondToRead(m, this.log.committed);
      return;
    }
    this.readOnly.add(this.log.committed, m);
    this.handleReadIndexAck(this.id, m.context!);
    this.bcastHeartbeat(m.context);
  }

  private handleReadIndexAck(from: number, context: Uint8Array): void {
    const acks = this.readOnly.recvAck(from, context);
    if (acks === undefined) return;
    const votes = new Map([...acks].map((id) => [id, true]));
    if (this.tracker.tallyVotesOf(votes) !== 'won') return;
    for (const status of this.readOnly.advance(context)) this.respondToRead(status.request, status.index);
  }

  private respondToRead(request: ReadIndexStatus['request'], index: number): void {
    if (request.from === NO_NODE || request.from === this.id) {
      this.readStates.push({ index, context: request.context! });
    } else {
      this.send(message({ type: 'readIndexResp', to: request.from, index, context: request.context }));
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of waiting) this.serveReadIndex(m);
  }

  private stepCandidate(m: Message): void {
    const myResponse: MessageType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
      case 'readIndex':
        this.drop(m, 'no leader (election in progress)');
        return;
      case 'transferLeader':
        return;
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      default:
        break;
    }
    if (m.type !== myResponse) return;
    this.tracker.recordVote(m.from, !m.reject);
    const result = this.tracker.tallyVotes();
    if (result === 'won') {
      if (this.role === 'preCandidate') {
        this.campaign('election');
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === 'lost') {
      // A lost pre-vote leaves the term alone; a lost vote keeps the term it bumped to.
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
      case 'readIndex':
      case 'transferLeader':
        if (this.lead === NO_NODE) {
          if (m.type !== 'transferLeader') this.drop(m, 'no leader known');
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // The leader handed over to us: campaign at once, skipping pre-vote (it would be refused
        // by followers still in the old leader's lease; the transfer context gets through).
        this.hup('transfer');
        return;
      case 'readIndexResp':
        if (m.context !== null) this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'unreachable':
        // The transport lost its connection to our leader (its process died, or the link
        // between us broke). Without this, a follower would wait out the lease (electionTick)
        // and then its randomised timeout before it votes or campaigns, though it already knows
        // the leader is gone. This ends the lease: the node grants pre-votes at once and
        // campaigns after the rest of its randomised timeout (up to electionTick - 1 ticks).
        // It cannot depose a live leader: a node that alone lost its link gets no pre-votes
        // from the others (still in the lease, they ignore them), and the leader's next
        // heartbeat restores the lease here. Elections stay safe whatever starts them.
        if (m.from === this.lead) this.electionElapsed = Math.max(this.electionElapsed, this.config.electionTick);
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: 'appResp', to: m.from, index: this.log.committed }));
      return;
    }
    const lastNewIndex = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNewIndex !== undefined) {
      this.send(message({ type: 'appResp', to: m.from, index: lastNewIndex }));
      return;
    }
    // Tell the leader the last index whose term is <= the term it probed with, so it can skip
    // every entry that cannot match in one round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(message({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(message({ type: 'heartbeatResp', to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (snapshot === null) throw new Error('raft: snap message without a snapshot');
    if (this.restore(snapshot)) {
      this.send(message({ type: 'appResp', to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(message({ type: 'appResp', to: m.from, index: this.log.committed }));
    }
  }

  /** Installs a snapshot from the leader; false when it is stale or our log already has it. */
  private restore(snapshot: NonNullable<Message['snapshot']>): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.role !== 'follower') {
      // Only a follower takes a snapshot; anything else means a second leader in this term.
      throw new Error(`raft: ${this.role} ${this.id} received a snapshot in term ${this.term}`);
    }
    // A snapshot taken before this node was added does not list it; it is still a prefix of the
    // leader's log, and the entries after it add us (etcd refuses it, and a joining node whose
    // leader has only such a snapshot never catches up).
    if (this.log.matchTerm(index, term)) {
      // Our log already holds the snapshot's last entry: just commit up to it.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.tracker = new ProgressTracker(this.config.maxInflightMsgs, this.config.maxInflightBytes ?? 0);
    for (const id of confState.voters) this.tracker.addVoter(id, this.log.lastIndex() + 1);
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) self.match = index;
    return true;
  }

  // ---- membership ----

  /** Applies a committed conf change (called by the driver when it applies the entry). */
  applyConfChange(change: ConfChange): ConfState {
    if (change.type === 'addVoter') {
      this.tracker.addVoter(change.nodeId, this.log.lastIndex() + 1);
    } else {
      this.tracker.removeVoter(change.nodeId);
    }
    if (this.role !== 'leader') return this.confState();
    if (!this.tracker.voters.has(this.id)) {
      // A removed leader steps down; the others elect a leader once its heartbeats stop.
      this.becomeFollower(this.term, NO_NODE);
      return this.confState();
    }
    if (this.leadTransferee !== NO_NODE && !this.tracker.voters.has(this.leadTransferee)) this.leadTransferee = NO_NODE;
    // The quorum changed: a removal may let the commit index advance.
    if (this.maybeCommit()) this.onCommitAdvanced();
    else for (const id of this.tracker.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
    return this.confState();
  }

  /** Decodes and applies a committed conf entry. */
  applyConfEntry(entry: Entry): ConfState {
    if (entry.type !== 'conf') throw new Error(`raft: entry ${entry.index} is not a conf entry`);
    return this.applyConfChange(decodeConfChange(entry.data));
  }
}
