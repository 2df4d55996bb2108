// The record types shared by the journal and every ShardStore adapter.

export interface RecordHeader {
  key: string;
  value: Buffer;
}

/** What a writer hands to append. A missing timestamp means "now" (the journal's clock). */
export interface RecordInput {
  key?: Buffer | null;
  /** null is a tombstone in a compacted shard. */
  value: Buffer | null;
  headers?: RecordHeader[];
  timestamp?: number;
}

export interface JournalRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /** Leader epoch of the batch that holds the record. */
  epoch: number;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
}
