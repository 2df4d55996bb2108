// Progress over the segment logs an audit reads, reported as (bytesDone, totalBytes). The
// total is taken when the directory is listed; a live journal may append meanwhile, so done is
// capped at the total rather than running past 100%.

export interface ByteProgress {
  /** Bytes done inside the segment being read. */
  within(segmentBytes: number): void;
  /** The segment is finished (also when damage stopped the read early). */
  complete(segmentSizeBytes: number): void;
}

export function byteProgress(totalBytes: number, onProgress?: (bytesDone: number, totalBytes: number) => void): ByteProgress {
  let completed = 0;
  const report = (done: number) => onProgress?.(Math.min(done, totalBytes), totalBytes);
  return {
    within: (segmentBytes) => report(completed + segmentBytes),
    complete: (segmentSizeBytes) => {
      completed += segmentSizeBytes;
      report(completed);
    },
  };
}
