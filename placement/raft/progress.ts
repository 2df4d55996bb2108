// What the leader knows about each follower's log, and how fast it may send to it.
//
// States (etcd's design, raft/design.md in etcd-io/raft):
// - probe: we do not know where the follower's log matches ours; send one append per heartbeat
//   interval (or per response) and back up on rejects.
// - replicate: the follower is in step; stream appends optimistically, at most
//   maxInflightMsgs messages (and maxInflightBytes) unacknowledged.
// - snapshot: the follower needs a snapshot; send nothing until it reports back.
import { committedIndex, majority, voteResult, type VoteResult } from './quorum.js';
import type { ConfState } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A ring of the last index (and bytes) of each append sent but not yet acknowledged. */
export class Inflights {
  private readonly sent: { index: number; bytes: number }[] = [];
  private bytes = 0;

  constructor(
    readonly maxMessages: number,
    /** 0 means no byte limit. */
    readonly maxBytes: number,
  ) {}

  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('raft: inflights add while full');
    const last = this.sent.at(-1);
    if (last !== undefined && index <= last.index) throw new Error(`raft: inflight ${index} not after ${last.index}`);
    this.sent.push({ index, bytes });
    this.bytes += bytes;
  }

  /** Frees every append whose last index is <= index (acknowledgements are cumulative). */
  freeLE(index: number): void {
    let count = 0;
    while (count < this.sent.length && this.sent[count]!.index <= index) {
      this.bytes -= this.sent[count]!.bytes;
      count++;
    }
    this.sent.splice(0, count);
  }

  /** Frees the oldest slot: a heartbeat answer shows the follower is alive though acks were lost. */
  freeFirstOne(): void {
    const first = this.sent.shift();
    if (first !== undefined) this.bytes -= first.bytes;
  }

  full(): boolean {
    return this.sent.length >= this.maxMessages || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.sent.length;
  }

  reset(): void {
    this.sent.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In snapshot state, the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round; also gates sending snapshots. */
  recentActive = false;
  /** In probe state: an append is out, wait for its answer or the next heartbeat. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    // After a snapshot the follower has at least the snapshot's entries, so probe just past it.
    const floor = this.state === 'snapshot' ? this.pendingSnapshot + 1 : 0;
    this.resetState('probe');
    this.next = Math.max(this.match + 1, floor);
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** A follower acknowledged up to n; false when that is old news (reordered or duplicated). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** In replicate state the leader assumes its appends arrive and moves next past them at once. */
  sentEntriesUpTo(lastIndex: number): void {
    this.next = lastIndex + 1;
  }

  /**
   * A follower rejected an append after `rejected`; `matchHint` is where it suggests retrying.
   * Returns false for a stale rejection (one not about the append we are waiting on).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }
}

/** The leader's (and candidates') view of the group: voters, their progress, and votes. */
export class ProgressTracker {
  readonly voters = new Set<number>();
  readonly progress = new Map<number, Progress>();
  readonly votes = new Map<number, boolean>();

  constructor(
    readonly maxInflightMsgs: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b) };
  }

  /** Sorted ids, so message order (and so a simulation) is deterministic. */
  ids(): number[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  addVoter(id: number, next: number): void {
    this.voters.add(id);
    if (!this.progress.has(id)) {
      const pr = new Progress(next, this.maxInflightMsgs, this.maxInflightBytes);
      // A new member counts as active so check-quorum gives it a full election timeout to answer.
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
  }

  removeVoter(id: number): void {
    this.voters.delete(id);
    this.progress.delete(id);
    this.votes.delete(id);
  }

  resetProgress(next: number): void {
    for (const id of this.voters) this.progress.set(id, new Progress(next, this.maxInflightMsgs, this.maxInflightBytes));
  }

  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match);
  }

  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    return voteResult(this.voters, this.votes);
  }

  /** The outcome of an arbitrary set of yes votes (used for ReadIndex heartbeat acks). */
  tallyVotesOf(votes: ReadonlyMap<number, boolean>): VoteResult {
    return voteResult(this.voters, votes);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Whether a majority of voters were heard from recently (self counts as active). */
  quorumActive(self: number): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= majority(this.voters.size);
  }
}
