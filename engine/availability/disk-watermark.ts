// The disk watermark: when a node's data directory is too full to take publishes. Pure: the
// node runtime measures the file system (statfs) on a timer and feeds the numbers in; this
// module decides, and the runtime sets or clears the write gate's 'disk-low' block.
//
// Decisions:
// - The threshold is the smaller of a share of the file system (disk-free-min-percent, 5 %)
//   and a fixed amount (disk-free-min-bytes, 2 GiB): 2 GiB on any disk over 40 GiB, where 5 %
//   would hold back far more than a burst needs; 5 % on small disks (a 8 MiB test tmpfs gets
//   about 400 KiB), where 2 GiB would be the whole disk. Either setting at 0 turns it off.
// - The space left below the threshold is what the node still needs while publishes are
//   refused: cursor and session writes to `$sessions` for the acknowledgements it keeps taking,
//   index files of rolled segments, and the appends already in flight.
// - Hysteresis: once low, the node resumes only when free space is back above the threshold
//   plus a tenth of it, so a node that sits at the edge does not flip at every check.
// - After an append failed for lack of space (ENOSPC, which a disk can reach below a small
//   threshold or when another program fills it), the node also waits for at least
//   RESUME_AFTER_FULL_MIN_BYTES free.

export interface DiskWatermarkSettings {
  freeMinPercent: number;
  freeMinBytes: number;
}

export interface FilesystemSpace {
  totalBytes: number;
  /** Bytes this process may still write (statfs bavail × bsize). */
  freeBytes: number;
}

/** One data directory as reported by metrics, the admin API and `ctl overview`. */
export interface DiskStatus {
  path: string;
  totalBytes: number;
  freeBytes: number;
  /** Bytes in use on the file system (not only by Shardline). */
  usedBytes: number;
  /** Bytes the journal's shards hold (segments), a part of usedBytes. */
  journalBytes: number;
  /** Free space below which publishes are refused; 0: the watermark is off. */
  thresholdBytes: number;
  low: boolean;
  /** Epoch ms of the measurement. */
  checkedAt: number;
}

export const RESUME_AFTER_FULL_MIN_BYTES = 1024 * 1024;

export function lowWatermarkBytes(totalBytes: number, settings: DiskWatermarkSettings): number {
  if (settings.freeMinPercent === 0 || settings.freeMinBytes === 0) return 0;
  return Math.min(Math.floor((totalBytes * settings.freeMinPercent) / 100), settings.freeMinBytes);
}

/**
 * Whether the disk counts as low after this measurement. `wasLow` is the previous answer;
 * `ranOutOfSpace` says an append failed with ENOSPC since the node was last not low.
 */
export function diskIsLow(space: FilesystemSpace, settings: DiskWatermarkSettings, wasLow: boolean, ranOutOfSpace: boolean): boolean {
  const threshold = lowWatermarkBytes(space.totalBytes, settings);
  if (!wasLow) return threshold > 0 && space.freeBytes < threshold;
  const resumeAt = Math.max(threshold + Math.ceil(threshold / 10), ranOutOfSpace ? RESUME_AFTER_FULL_MIN_BYTES : 0);
  return space.freeBytes < resumeAt;
}
