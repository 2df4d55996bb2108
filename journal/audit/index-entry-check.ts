// Checks a trusted index's entries against the log while the log is scanned, in one pass and
// with memory for the entries only (a segment may hold millions of batches). Pure: the caller
// feeds it the scanned batches in log order.
//
// What an entry must satisfy (segment-index.ts): its position is a batch start, its relative
// offset is that batch's base offset minus the segment's, and its time entry holds the largest
// batch timestamp of all batches before that position (0 before the first batch).
import type { BatchHeader } from '../segment/batch-format.js';
import type { IndexEntry } from './index-files.js';

export interface IndexEntryFinding {
  entry: number;
  /** Which file holds the wrong value. */
  file: 'offset' | 'time';
  message: string;
}

export class IndexEntryCheck {
  private next = 0;
  private maxTimestampBefore = 0;
  private readonly findings: IndexEntryFinding[] = [];

  constructor(
    private readonly entries: readonly IndexEntry[],
    private readonly baseOffset: number,
  ) {}

  /** Largest batch timestamp seen so far, for the index summary check. */
  get maxTimestamp(): number {
    return this.maxTimestampBefore;
  }

  onBatch(position: number, header: BatchHeader): void {
    this.passEntriesBefore(position);
    const entry = this.entries[this.next];
    if (entry !== undefined && entry.position === position) {
      const named = this.baseOffset + entry.relativeOffset;
      if (named !== header.baseOffset) {
        this.findings.push({ entry: entry.entry, file: 'offset', message: `entry ${entry.entry} names offset ${named} at log position ${position}, where the batch starts at offset ${header.baseOffset}` });
      }
      if (entry.maxTimestampBefore !== this.maxTimestampBefore) {
        this.findings.push({ entry: entry.entry, file: 'time', message: `entry ${entry.entry} says the largest timestamp before log position ${position} is ${entry.maxTimestampBefore}; the log says ${this.maxTimestampBefore}` });
      }
      this.next += 1;
    }
    this.maxTimestampBefore = Math.max(this.maxTimestampBefore, header.maxTimestamp);
  }

  /**
   * Findings so far. With `wholeLogScanned`, entries past the last batch start are findings
   * too; without (the scan stopped at damage), they are unchecked rather than wrong.
   */
  finish(wholeLogScanned: boolean): IndexEntryFinding[] {
    if (wholeLogScanned) this.passEntriesBefore(Number.POSITIVE_INFINITY);
    return this.findings;
  }

  private passEntriesBefore(position: number): void {
    for (let entry = this.entries[this.next]; entry !== undefined && entry.position < position; entry = this.entries[this.next]) {
      this.findings.push({ entry: entry.entry, file: 'offset', message: `entry ${entry.entry} points at log position ${entry.position}, which is not a batch start` });
      this.next += 1;
    }
  }
}
