// One replica's shard log for the simulator, in memory, with the durable/volatile split that
// matters to replication: appended batches are volatile until a sync completes, and a crash
// drops everything past the durable end. This stands in for the real segment storage (which
// has its own power-cut simulation, journal/sim/simulated-disk.ts): the replication protocol
// only needs "what survives a crash", and an in-memory model keeps hundreds of seeds fast.
// Truncation is modelled as durable at once; the real driver must fsync the cut before it
// appends past it, or a crash could bring a divergent suffix back.
import { EpochHistory } from '../epoch-history.js';
import type { BatchExtent } from '../messages.js';
import { WriterTable } from '../writer-table.js';

export interface SimBatch extends BatchExtent {
  /** the record values; a batch is copied between replicas as is, never re-cut */
  records: readonly string[];
  /** the client's writer id and sequence (idempotent appends), stored with the batch */
  writer?: { id: number; sequence: number };
}

export class MemoryLog {
  private batches: SimBatch[] = [];
  private durable = 0;
  /** bumped by every cut, so a sync started before it cannot mark newer records durable */
  private generation = 0;
  history = new EpochHistory();
  /** the writers' sequences this log holds, kept in step with every append and cut, as ReplicaLog does */
  readonly writers = new WriterTable();

  get logEnd(): number {
    const last = this.batches.at(-1);
    return last === undefined ? 0 : last.baseOffset + last.count;
  }

  get durableEnd(): number {
    return this.durable;
  }

  /** The epoch of the last durable batch (-1 if none): what a replica reports to an election. */
  get durableLastEpoch(): number {
    for (let i = this.batches.length - 1; i >= 0; i--) {
      const batch = this.batches[i] as SimBatch;
      if (batch.baseOffset < this.durable) return batch.epoch;
    }
    return -1;
  }

  append(batch: SimBatch): void {
    if (batch.baseOffset !== this.logEnd) throw new Error(`append at ${batch.baseOffset}, log ends at ${this.logEnd}`);
    if (batch.count !== batch.records.length || batch.count <= 0) throw new Error(`batch at ${batch.baseOffset} has count ${batch.count} for ${batch.records.length} records`);
    this.history.assign(batch.epoch, batch.baseOffset);
    this.batches.push(batch);
    if (batch.writer !== undefined) this.writers.observe(batch.writer.id, batch.writer.sequence, { baseOffset: batch.baseOffset, lastOffset: batch.baseOffset + batch.count - 1 });
  }

  /** Cuts the log so it ends at `offset`, which must be a batch boundary. */
  truncate(offset: number): void {
    if (offset >= this.logEnd) return;
    const keep = this.batches.findIndex((batch) => batch.baseOffset >= offset);
    const cutAt = keep < 0 ? this.batches.length : keep;
    const previous = this.batches[cutAt - 1];
    if (previous !== undefined && previous.baseOffset + previous.count > offset) throw new Error(`truncate at ${offset} falls inside the batch at ${previous.baseOffset}`);
    this.batches = this.batches.slice(0, cutAt);
    this.history.truncateFrom(offset);
    this.writers.truncateFrom(offset);
    this.durable = Math.min(this.durable, offset);
    this.generation++;
  }

  /** Starts a sync: returns a token whose completion makes the log durable up to its end now. */
  beginSync(): { end: number; generation: number } {
    return { end: this.logEnd, generation: this.generation };
  }

  completeSync(token: { end: number; generation: number }): boolean {
    if (token.generation !== this.generation || token.end <= this.durable) return false;
    this.durable = Math.min(token.end, this.logEnd);
    return true;
  }

  /** A crash: the volatile tail is gone. */
  crash(): void {
    const durable = this.durable;
    if (durable < this.logEnd) this.truncate(durable);
    this.generation++;
  }

  batchesFrom(offset: number, maxBatches: number): SimBatch[] {
    const start = this.batches.findIndex((batch) => batch.baseOffset >= offset);
    if (start < 0) return [];
    return this.batches.slice(start, start + maxBatches);
  }

  /** The record value at `offset`, or undefined past the end. */
  valueAt(offset: number): string | undefined {
    let low = 0;
    let high = this.batches.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const batch = this.batches[middle] as SimBatch;
      if (offset < batch.baseOffset) high = middle - 1;
      else if (offset >= batch.baseOffset + batch.count) low = middle + 1;
      else return batch.records[offset - batch.baseOffset];
    }
    return undefined;
  }

  /** Every record value in log order. */
  values(): string[] {
    return this.batches.flatMap((batch) => batch.records);
  }

  /** Record values in [from, to), as [offset, value] pairs. */
  read(from: number, to: number): [number, string][] {
    const out: [number, string][] = [];
    for (let offset = from; offset < Math.min(to, this.logEnd); offset++) out.push([offset, this.valueAt(offset) as string]);
    return out;
  }
}
