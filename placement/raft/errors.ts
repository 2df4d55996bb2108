// Errors a driver is expected to handle. Broken invariants (programmer errors) throw plain
// Errors whose message starts with "raft:" instead, and should crash the node.

/** The requested index is below the first index kept in storage (compacted into a snapshot). */
export class CompactedError extends Error {
  constructor(index: number) {
    super(`raft: index ${index} is compacted`);
    this.name = 'CompactedError';
  }
}

/** The requested index is above the last index in storage. */
export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft: index ${index} is unavailable`);
    this.name = 'UnavailableError';
  }
}

/** A snapshot older than the one storage already has. */
export class SnapshotOutOfDateError extends Error {
  constructor(index: number, current: number) {
    super(`raft: snapshot at ${index} is older than the stored one at ${current}`);
    this.name = 'SnapshotOutOfDateError';
  }
}

/**
 * A proposal, read or transfer that this node cannot take now (no known leader, a transfer in
 * progress, removed from the group). The caller may retry later, possibly on another node.
 */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft: proposal dropped: ${reason}`);
    this.name = 'ProposalDroppedError';
  }
}
