// The leader side of one shard's replication, pure: it is told what happens (a fetch arrived,
// the local log grew or became durable) and answers with decisions; the driver reads batches,
// sends messages and completes client appends.
//
// The high watermark rule (docs/replication.md, "High watermark"):
//   HW = the largest offset N such that a majority of the replica set (the leader included)
//   has every record below N durable, provided N > the start offset of the leader's current
//   epoch; the HW never goes down.
// The proviso is Raft's "commit only entries of your own term" (its Figure 8), in Kafka's
// form: a record of an older epoch that a majority holds can still be overwritten, because a
// replica whose last epoch is newer but which lacks the record may win an election against that
// majority. Once a record of the current epoch is majority-durable, every replica that could
// win an election (greatest last epoch, then greatest end) holds the whole prefix. A new leader
// therefore appends an epoch-start batch at once, so older records commit without waiting for
// a client write.
import type { EpochHistory } from './epoch-history.js';
import type { EpochEndQuery, EpochEndReply, EpochMismatch, FetchRequest, NodeId, OffsetOutOfRange } from './messages.js';

export interface LeaderOptions {
  self: NodeId;
  /** the replica set, the leader included */
  replicas: readonly NodeId[];
  /**
   * Nodes copying the shard for a replica-set change: served like followers, their progress
   * kept, never counted towards the HW (they may not hold what the replica set acknowledged).
   */
  learners?: readonly NodeId[];
  /** broken variant: count learners towards the HW as if they were replicas */
  countLearners?: boolean;
  epoch: number;
  /** the offset of the leader's first batch of `epoch` (its log end when it took over) */
  epochStartOffset: number;
  /** the high watermark the replica knew as a follower (it only ever knew committed offsets) */
  highWatermark: number;
  /** broken variant for the simulator's self-test: count fetched offsets as durable */
  countFetchedAsDurable?: boolean;
  /** broken variant: serve and count fetches whatever their epoch */
  ignoreEpochs?: boolean;
  /** broken variant: let the HW pass older epochs' records by replica count alone (Raft's Figure 8) */
  commitOldEpochByCount?: boolean;
}

export interface FollowerProgress {
  /** the follower's log end, from its last fetch */
  fetched: number;
  /** the follower's durable end, from its last fetch; what counts towards the HW */
  durable: number;
}

export type FetchDecision =
  /** answer with the stored batches from `fromOffset` (none if it is the log end) and the HW */
  | { kind: 'send'; fromOffset: number; highWatermark: number }
  | { kind: 'reply'; message: EpochMismatch | OffsetOutOfRange };

export class ReplicaLeader {
  readonly self: NodeId;
  readonly epoch: number;
  readonly epochStartOffset: number;
  private readonly replicas: readonly NodeId[];
  private readonly progress = new Map<NodeId, FollowerProgress>();
  private readonly learnerProgress = new Map<NodeId, FollowerProgress>();
  private readonly countLearners: boolean;
  private hw: number;
  private localDurable = 0;
  private localEnd = 0;
  private fencedBy: number | null = null;
  private readonly countFetched: boolean;
  private readonly ignoreEpochs: boolean;
  private readonly commitOldEpochByCount: boolean;

  constructor(options: LeaderOptions) {
    if (!options.replicas.includes(options.self)) throw new RangeError(`leader ${options.self} is not in its replica set`);
    this.self = options.self;
    this.epoch = options.epoch;
    this.epochStartOffset = options.epochStartOffset;
    this.replicas = options.replicas;
    this.hw = options.highWatermark;
    this.countFetched = options.countFetchedAsDurable === true;
    this.ignoreEpochs = options.ignoreEpochs === true;
    this.commitOldEpochByCount = options.commitOldEpochByCount === true;
    for (const replica of options.replicas) if (replica !== options.self) this.progress.set(replica, { fetched: 0, durable: 0 });
    this.countLearners = options.countLearners === true;
    this.setLearners(options.learners ?? []);
  }

  /** The learners now (a change began or ended): a new one starts with no progress, a dropped one is forgotten. */
  setLearners(learners: readonly NodeId[]): void {
    for (const node of [...this.learnerProgress.keys()]) if (!learners.includes(node)) this.learnerProgress.delete(node);
    // -1 until its first fetch: a learner not heard from has not copied even an empty prefix.
    for (const node of learners) if (!this.progress.has(node) && node !== this.self && !this.learnerProgress.has(node)) this.learnerProgress.set(node, { fetched: -1, durable: -1 });
  }

  get learners(): NodeId[] {
    return [...this.learnerProgress.keys()];
  }

  get highWatermark(): number {
    return this.hw;
  }

  /**
   * Whether the HW has passed this epoch's start: until then it may lag behind what earlier
   * epochs committed (a new leader starts from the HW it knew as a follower), so "caught up to
   * the HW" means nothing yet.
   */
  get committedOwnEpoch(): boolean {
    return this.hw > this.epochStartOffset;
  }

  /** The epoch that fenced this leader (a request carried it), or null while it may lead. */
  get fencedByEpoch(): number | null {
    return this.fencedBy;
  }

  /** Appends are refused once a newer epoch has been seen: a deposed leader must not write. */
  get acceptsAppends(): boolean {
    return this.fencedBy === null;
  }

  followerProgress(replica: NodeId): FollowerProgress | undefined {
    const progress = this.progress.get(replica) ?? this.learnerProgress.get(replica);
    return progress === undefined ? undefined : { ...progress };
  }

  /** The leader's own log grew or became durable. Returns the new HW if it moved. */
  onLocalLog(logEnd: number, durableEnd: number): number | null {
    this.localEnd = logEnd;
    this.localDurable = durableEnd;
    return this.advance();
  }

  /**
   * A follower's fetch: fences on epoch, records the follower's progress, and says what to
   * send. The HW that goes back is computed after this fetch's durable report counts.
   */
  onFetch(request: FetchRequest): { decision: FetchDecision; highWatermarkMoved: number | null } {
    const mismatch = this.checkEpoch(request.leaderEpoch);
    if (mismatch !== null) return { decision: { kind: 'reply', message: mismatch }, highWatermarkMoved: null };
    const progress = this.progress.get(request.from) ?? this.learnerProgress.get(request.from);
    if (progress === undefined) {
      // Neither a member nor a learner: its durable report must not count, and it gets nothing.
      return { decision: { kind: 'reply', message: { type: 'epoch-mismatch', from: this.self, leaderEpoch: this.epoch, requestEpoch: request.leaderEpoch } }, highWatermarkMoved: null };
    }
    if (request.fetchOffset > this.localEnd) {
      return { decision: { kind: 'reply', message: { type: 'offset-out-of-range', from: this.self, leaderEpoch: this.epoch, logEnd: this.localEnd } }, highWatermarkMoved: null };
    }
    // Reports arrive reordered and duplicated; progress only moves forward within an epoch
    // (a follower truncates only before its first fetch of an epoch, below anything it reported).
    progress.fetched = Math.max(progress.fetched, request.fetchOffset);
    const reported = this.countFetched ? request.fetchOffset : Math.min(request.durableOffset, request.fetchOffset);
    progress.durable = Math.max(progress.durable, reported);
    const moved = this.advance();
    return { decision: { kind: 'send', fromOffset: request.fetchOffset, highWatermark: Math.min(this.hw, this.localEnd) }, highWatermarkMoved: moved };
  }

  onEpochEndQuery(query: EpochEndQuery, history: EpochHistory): EpochEndReply | EpochMismatch {
    const mismatch = this.checkEpoch(query.leaderEpoch);
    if (mismatch !== null) return mismatch;
    const end = history.endOf(query.epoch, this.localEnd);
    return { type: 'epoch-end-reply', from: this.self, leaderEpoch: this.epoch, askedEpoch: query.epoch, epoch: end.epoch, endOffset: end.endOffset };
  }

  private checkEpoch(requestEpoch: number): EpochMismatch | null {
    if (this.ignoreEpochs || requestEpoch === this.epoch) return null;
    // A newer epoch in a request means placement has moved on: this leader is stale for good.
    if (requestEpoch > this.epoch) this.fencedBy = Math.max(this.fencedBy ?? requestEpoch, requestEpoch);
    return { type: 'epoch-mismatch', from: this.self, leaderEpoch: this.epoch, requestEpoch };
  }

  private advance(): number | null {
    const durable = [this.localDurable];
    for (const progress of this.progress.values()) durable.push(progress.durable);
    if (this.countLearners) for (const progress of this.learnerProgress.values()) durable.push(progress.durable);
    durable.sort((a, b) => b - a);
    // The (majority)-th largest durable end: that many replicas hold everything below it.
    const majorityDurable = Math.min(durable[Math.floor(this.replicas.length / 2)] ?? 0, this.localEnd);
    if ((majorityDurable <= this.epochStartOffset && !this.commitOldEpochByCount) || majorityDurable <= this.hw) return null;
    this.hw = majorityDurable;
    return this.hw;
  }
}
