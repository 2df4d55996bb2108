// The follower side of one shard's replication, pure. Under a new leader and epoch it first
// finds where its log and the leader's part (the epoch-end query, repeated until the leader
// answers for the very epoch asked), cuts its divergent suffix, then fetches batches and
// appends them as stored. Each fetch carries its durable end: that, not what it has fetched,
// is what the leader may count.
//
// Why one query may not be enough (Kafka's KIP-279): if the leader never had the follower's
// last epoch E, it answers with its largest epoch E' < E. Cutting at the start of the
// follower's first epoch after E' removes every record the leader cannot have, but the
// follower's own records of E' (or of an older epoch, if it never had E') may run past the
// leader's; asking again with the follower's new last epoch settles it, and the epochs asked
// strictly decrease, so it ends.
import type { EpochHistory } from './epoch-history.js';
import type { BatchExtent, EpochEndQuery, FetchRequest, NodeId, ToFollower } from './messages.js';

/** What the follower's log looks like now; the driver passes it in with each event. */
export interface FollowerLogView {
  logEnd: number;
  durableEnd: number;
  history: EpochHistory;
}

export type FollowerAction<B extends BatchExtent> =
  | { kind: 'send'; to: NodeId; message: FetchRequest | EpochEndQuery }
  /** cut the log so it ends at `offset` (and make that durable before anything else is appended) */
  | { kind: 'truncate'; offset: number }
  /** append these batches, as received, at the log end */
  | { kind: 'append'; batches: B[] };

export interface FollowerOptions {
  self: NodeId;
  leader: NodeId;
  epoch: number;
  /** after this long without an answer the outstanding request is sent again (lost messages) */
  retryAfter: number;
  /** broken variant for the simulator's self-test: fetch at once, never truncate */
  skipTruncation?: boolean;
  /** broken variant: accept answers whatever their epoch */
  ignoreEpochs?: boolean;
}

type Phase = 'truncating' | 'fetching';

export class ReplicaFollower<B extends BatchExtent> {
  readonly self: NodeId;
  readonly leader: NodeId;
  readonly epoch: number;
  private phase: Phase = 'truncating';
  private hw = 0;
  private outstanding: FetchRequest | EpochEndQuery | null = null;
  private sentAt = 0;
  private readonly retryAfter: number;
  private readonly skipTruncation: boolean;
  private readonly ignoreEpochs: boolean;

  constructor(options: FollowerOptions, initialHighWatermark: number) {
    this.self = options.self;
    this.leader = options.leader;
    this.epoch = options.epoch;
    this.retryAfter = options.retryAfter;
    this.skipTruncation = options.skipTruncation === true;
    this.ignoreEpochs = options.ignoreEpochs === true;
    this.hw = initialHighWatermark;
  }

  /** The HW learned from the leader, never past this replica's own log end. */
  get highWatermark(): number {
    return this.hw;
  }

  get truncating(): boolean {
    return this.phase === 'truncating';
  }

  /** The first step under the new leader. */
  start(log: FollowerLogView, now: number): FollowerAction<B>[] {
    if (this.skipTruncation || log.history.latestEpoch < 0) return this.fetch(log, now);
    return this.query(log.history.latestEpoch, now);
  }

  /** Called by the driver's clock: resends a request that got no answer. */
  onTick(log: FollowerLogView, now: number): FollowerAction<B>[] {
    if (this.outstanding !== null && now - this.sentAt < this.retryAfter) return [];
    if (this.phase === 'fetching') return this.fetch(log, now);
    return this.query(log.history.latestEpoch, now);
  }

  /** The follower's log became more durable: report it without waiting for the next round. */
  onDurable(log: FollowerLogView, now: number): FollowerAction<B>[] {
    return this.phase === 'fetching' ? this.fetch(log, now) : [];
  }

  onMessage(message: ToFollower<B>, log: FollowerLogView, now: number): FollowerAction<B>[] {
    if (message.from !== this.leader && !this.ignoreEpochs) return [];
    switch (message.type) {
      case 'epoch-mismatch':
        // Either side is behind; placement's next word settles who leads. Nothing to do here.
        return [];
      case 'offset-out-of-range':
        if (message.leaderEpoch !== this.epoch && !this.ignoreEpochs) return [];
        if (this.skipTruncation) return [];
        this.phase = 'truncating';
        return this.query(log.history.latestEpoch, now);
      case 'epoch-end-reply':
        return this.onEpochEnd(message, log, now);
      case 'fetch-response': {
        if (message.leaderEpoch !== this.epoch && !this.ignoreEpochs) return [];
        // A duplicate or reordered answer to an older fetch: its batches are not at our end.
        if (this.phase !== 'fetching' || message.fetchOffset !== log.logEnd) return [];
        const actions: FollowerAction<B>[] = [];
        let end = log.logEnd;
        if (message.batches.length > 0) {
          actions.push({ kind: 'append', batches: message.batches });
          const last = message.batches.at(-1) as B;
          end = last.baseOffset + last.count;
        }
        this.hw = Math.max(this.hw, Math.min(message.highWatermark, end));
        this.outstanding = null;
        // Caught up: wait for the tick instead of spinning on empty answers (a real leader
        // would hold the fetch open until it has data).
        if (message.batches.length > 0) actions.push(...this.fetch({ ...log, logEnd: end }, now));
        return actions;
      }
    }
  }

  private onEpochEnd(reply: { leaderEpoch: number; askedEpoch: number; epoch: number; endOffset: number }, log: FollowerLogView, now: number): FollowerAction<B>[] {
    if (reply.leaderEpoch !== this.epoch || this.phase !== 'truncating') return [];
    const latest = log.history.latestEpoch;
    if (reply.askedEpoch !== latest) return []; // an answer to an earlier question
    if (reply.epoch === reply.askedEpoch) {
      const cut = Math.min(reply.endOffset, log.logEnd);
      const actions: FollowerAction<B>[] = cut < log.logEnd ? [{ kind: 'truncate', offset: cut }] : [];
      return [...actions, ...this.fetch({ ...log, logEnd: cut }, now)];
    }
    // The leader never had our last epoch: drop everything from our first epoch after its
    // answer, then ask again about what is left.
    const entries = log.history.list();
    const firstNewer = entries.find((entry) => entry.epoch > reply.epoch);
    const cut = Math.min(firstNewer?.startOffset ?? log.logEnd, log.logEnd);
    const actions: FollowerAction<B>[] = cut < log.logEnd ? [{ kind: 'truncate', offset: cut }] : [];
    const remaining = entries.filter((entry) => entry.startOffset < cut);
    const nextEpoch = remaining.at(-1)?.epoch ?? -1;
    if (nextEpoch < 0) return [...actions, ...this.fetch({ ...log, logEnd: cut }, now)];
    return [...actions, ...this.query(nextEpoch, now)];
  }

  private query(epoch: number, now: number): FollowerAction<B>[] {
    this.phase = 'truncating';
    const message: EpochEndQuery = { type: 'epoch-end-query', from: this.self, leaderEpoch: this.epoch, epoch };
    this.outstanding = message;
    this.sentAt = now;
    return [{ kind: 'send', to: this.leader, message }];
  }

  private fetch(log: { logEnd: number; durableEnd: number }, now: number): FollowerAction<B>[] {
    this.phase = 'fetching';
    const message: FetchRequest = { type: 'fetch', from: this.self, leaderEpoch: this.epoch, fetchOffset: log.logEnd, durableOffset: Math.min(log.durableEnd, log.logEnd) };
    this.outstanding = message;
    this.sentAt = now;
    return [{ kind: 'send', to: this.leader, message }];
  }
}
