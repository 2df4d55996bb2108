// The batches a replica wrote last, kept in memory so that a leader answers its followers'
// fetches without reading back from the segment files what it has just written (a read through
// the libuv thread pool per fetch, for every follower). Pure: it is told each written batch (the
// shard's write observer) and each cut, and answers a fetch only when it holds the batch that
// starts the answer; anything else (an older offset, a gap) is read from disk as before.
//
// A cut back after a failed write can leave batches here that the log no longer holds: they
// were never durable, so never below the visible end a read is bounded by, and the next batch
// written at their offsets replaces them.
import { lastOffsetOf, readBatchHeader } from '../segment/batch-format.js';

interface Entry {
  baseOffset: number;
  /** The offset after the batch's last record. */
  nextOffset: number;
  bytes: Buffer;
}

export class RecentBatches {
  #entries: Entry[] = [];
  #bytes = 0;

  /** `maxBytes`: what it keeps at most (the newest batches; one batch always). */
  constructor(readonly maxBytes: number) {}

  /** Batches just written, in offset order (sealed, as stored). */
  add(batches: readonly Buffer[]): void {
    for (const bytes of batches) {
      const header = readBatchHeader(bytes, 0);
      // A batch written at offsets held here replaces them and what follows (a cut back, then a new write).
      this.dropFrom(header.baseOffset);
      this.#entries.push({ baseOffset: header.baseOffset, nextOffset: lastOffsetOf(header) + 1, bytes });
      this.#bytes += bytes.length;
    }
    let drop = 0;
    while (this.#entries.length - drop > 1 && this.#bytes > this.maxBytes) {
      this.#bytes -= (this.#entries[drop] as Entry).bytes.length;
      drop += 1;
    }
    if (drop > 0) this.#entries = this.#entries.slice(drop);
  }

  /** Forgets the batches that start at or after `offset` (a truncation of the log). */
  dropFrom(offset: number): void {
    let keep = this.#entries.length;
    while (keep > 0 && (this.#entries[keep - 1] as Entry).baseOffset >= offset) {
      keep -= 1;
      this.#bytes -= (this.#entries[keep] as Entry).bytes.length;
    }
    if (keep < this.#entries.length) this.#entries.length = keep;
    // A batch that straddles the cut is not in the log any more either.
    const last = this.#entries.at(-1);
    if (last !== undefined && last.nextOffset > offset) {
      this.#entries.pop();
      this.#bytes -= last.bytes.length;
    }
  }

  clear(): void {
    this.#entries = [];
    this.#bytes = 0;
  }

  /**
   * What Shard.readBatches(fromOffset, { maxBytes }) answers, when every batch of it is held
   * here: the batch holding `fromOffset`, then the next ones while contiguous, below
   * `visibleEnd` and within `maxBytes` (the first always). Null when the first is not held.
   */
  read(fromOffset: number, maxBytes: number, visibleEnd: number): Buffer[] | null {
    const entries = this.#entries;
    let low = 0;
    let high = entries.length;
    // The first entry whose batch ends past fromOffset.
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((entries[middle] as Entry).nextOffset <= fromOffset) low = middle + 1;
      else high = middle;
    }
    const first = entries[low];
    if (first === undefined || first.baseOffset > fromOffset || first.nextOffset > visibleEnd) return null;
    const batches = [first.bytes];
    let bytes = first.bytes.length;
    let next = first.nextOffset;
    for (let index = low + 1; index < entries.length; index += 1) {
      const entry = entries[index] as Entry;
      if (entry.baseOffset !== next || entry.nextOffset > visibleEnd || bytes + entry.bytes.length > maxBytes) break;
      batches.push(entry.bytes);
      bytes += entry.bytes.length;
      next = entry.nextOffset;
    }
    return batches;
  }
}
