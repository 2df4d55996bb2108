// Two things every projection over a system shard does at start (a protocol's catalog of topics,
// queues, offsets or producer ids): make its shard if it is not there yet, then read it from its
// start to its end in pages. Over any ShardStore.
import { isShardlineError } from '../base/index.js';
import type { JournalRecord, ShardConfig } from '../journal/index.js';
import type { ShardStore } from './shard-store.js';

/** Records a page of readWholeShard asks for: bounded memory whatever the shard's size. */
const PAGE_RECORDS = 1000;

/** Creates the shard; one that exists already is left as it is (its config is not changed). */
export async function createShardIfMissing(store: ShardStore, name: string, config?: Partial<ShardConfig>): Promise<void> {
  try {
    await store.create(name, config);
  } catch (error) {
    if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) throw error;
  }
}

/** Calls `each` for every record of the shard, from its start offset to its end as it is now, in order. */
export async function readWholeShard(store: ShardStore, name: string, each: (record: JournalRecord) => void): Promise<void> {
  await readShardFrom(store, name, 0, each);
}

/**
 * Calls `each` for every record from `from` (or the start offset, if retention or compaction
 * removed what was before it) to the shard's end as it is now, in order; returns the offset after
 * the last record read, where the next call picks up.
 */
export async function readShardFrom(store: ShardStore, name: string, from: number, each: (record: JournalRecord) => void): Promise<number> {
  let offset = Math.max(from, (await store.info(name)).startOffset);
  for (;;) {
    const records = await store.read(name, offset, { maxRecords: PAGE_RECORDS });
    if (records.length === 0) return offset;
    for (const record of records) {
      offset = record.offset + 1;
      each(record);
    }
  }
}
