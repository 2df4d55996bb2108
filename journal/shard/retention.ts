// Retention planning: which whole segments may go. Pure; the shard deletes what it returns.
// Only a prefix of sealed segments is ever deleted (never the active one), so the shard stays a
// contiguous log that starts at the first kept segment.

export interface RetentionCandidate {
  sizeBytes: number;
  maxTimestamp: number;
}

export interface RetentionLimits {
  retentionMs: number | null;
  retentionBytes: number | null;
}

/** Returns how many of the oldest segments to delete. `segments` is oldest first, the last is active. */
export function segmentsToDelete(segments: readonly RetentionCandidate[], limits: RetentionLimits, nowMs: number): number {
  const sealedCount = Math.max(0, segments.length - 1);
  let count = 0;
  if (limits.retentionMs !== null) {
    const cutoff = nowMs - limits.retentionMs;
    while (count < sealedCount && (segments[count]?.maxTimestamp ?? Infinity) < cutoff) count += 1;
  }
  if (limits.retentionBytes !== null) {
    let total = 0;
    for (const segment of segments) total += segment.sizeBytes;
    for (let i = 0; i < count; i += 1) total -= segments[i]?.sizeBytes ?? 0;
    while (count < sealedCount && total > limits.retentionBytes) {
      total -= segments[count]?.sizeBytes ?? 0;
      count += 1;
    }
  }
  return count;
}

/**
 * Returns how many of the oldest segments hold only offsets below `offset`: a segment may go
 * when the next segment starts at or below `offset`. Never the active (last) segment. This is
 * the prefix deletion of a log that keeps its own checkpoint (the placement voter's Raft log):
 * the owner has written everything it still needs at or after `offset`.
 */
export function segmentsBelow(segments: readonly { baseOffset: number }[], offset: number): number {
  let count = 0;
  while (count < segments.length - 1 && (segments[count + 1]?.baseOffset ?? Infinity) <= offset) count += 1;
  return count;
}
