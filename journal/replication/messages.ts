// The replication protocol's messages between a shard's leader and its followers. A batch is
// opaque here (the real one is the stored, checksummed bytes that readBatches returns), so the
// cores are generic over it: they move offsets and epochs, never record contents.

/** What the cores need to know about a stored batch. */
export interface BatchExtent {
  baseOffset: number;
  /** records in the batch (> 0) */
  count: number;
  /** the leader epoch the batch was written in */
  epoch: number;
}

export type NodeId = string;

/**
 * A follower's fetch. `leaderEpoch` is the epoch under which the follower follows; the leader
 * fences on it both ways. `fetchOffset` is the follower's log end (what it wants next);
 * `durableOffset` is its fsynced end: every record before it survives a crash of the follower,
 * and only that counts towards the high watermark.
 */
export interface FetchRequest {
  type: 'fetch';
  from: NodeId;
  leaderEpoch: number;
  fetchOffset: number;
  durableOffset: number;
}

export interface FetchResponse<B extends BatchExtent> {
  type: 'fetch-response';
  from: NodeId;
  leaderEpoch: number;
  fetchOffset: number;
  /** as stored, starting exactly at fetchOffset; empty when the follower is caught up */
  batches: B[];
  highWatermark: number;
}

/** Sent instead of data when the request's epoch does not match the leader's. */
export interface EpochMismatch {
  type: 'epoch-mismatch';
  from: NodeId;
  /** the epoch the responder holds; > the request's: the follower is behind, < it: the responder is a stale leader */
  leaderEpoch: number;
  requestEpoch: number;
}

/** The fetch offset is past the leader's log end: the follower must run truncation again. */
export interface OffsetOutOfRange {
  type: 'offset-out-of-range';
  from: NodeId;
  leaderEpoch: number;
  logEnd: number;
}

/** "Where does `epoch` end in your log?" (Kafka's OffsetsForLeaderEpoch). */
export interface EpochEndQuery {
  type: 'epoch-end-query';
  from: NodeId;
  leaderEpoch: number;
  epoch: number;
}

export interface EpochEndReply {
  type: 'epoch-end-reply';
  from: NodeId;
  leaderEpoch: number;
  /** the epoch asked about */
  askedEpoch: number;
  /** the largest epoch <= askedEpoch in the leader's history (-1: none) and where it ends */
  epoch: number;
  endOffset: number;
}

export type ToLeader = FetchRequest | EpochEndQuery;
export type ToFollower<B extends BatchExtent> = FetchResponse<B> | EpochMismatch | OffsetOutOfRange | EpochEndReply;
