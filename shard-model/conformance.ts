// The ShardStore conformance suite: one set of behaviours every adapter (memory, local,
// remote) must show, with the same error codes. Each adapter's test file calls
// runShardStoreConformance with a factory for a fresh, empty store.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalRecord } from '../journal/index.js';
import type { ShardStore } from './shard-store.js';

export interface ConformanceTarget {
  name: string;
  /** A fresh, empty store; the suite closes it. */
  open(): Promise<ShardStore>;
}

const text = (value: string) => Buffer.from(value, 'utf8');

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => (typeof promise === 'function' ? await promise() : await promise), (error: unknown) => {
    assert.equal((error as { code?: string }).code, code, `expected ${code}, got ${String((error as { code?: string }).code)}: ${String(error)}`);
    return true;
  });
}

async function take(iterable: AsyncIterable<JournalRecord>, count: number): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const record of iterable) {
    out.push(record);
    if (out.length === count) break;
  }
  return out;
}

export function runShardStoreConformance(target: ConformanceTarget): void {
  describe(`ShardStore conformance: ${target.name}`, () => {
    const withStore = (title: string, body: (store: ShardStore) => Promise<void>) =>
      it(title, async () => {
        const store = await target.open();
        try {
          await body(store);
        } finally {
          await store.close();
        }
      });

    withStore('creates, lists, describes and deletes shards', async (store) => {
      const created = await store.create('orders', { durability: 'none' });
      assert.equal(created.name, 'orders');
      assert.equal(created.nextOffset, 0);
      assert.equal(created.config.durability, 'none');
      await store.create('audit');
      assert.deepEqual((await store.list()).map((info) => info.name), ['audit', 'orders']);
      await expectCode(store.create('orders'), 'SL_JOURNAL_SHARD_EXISTS');
      await store.delete('orders');
      assert.deepEqual((await store.list()).map((info) => info.name), ['audit']);
      await expectCode(store.info('orders'), 'SL_JOURNAL_SHARD_NOT_FOUND');
      await expectCode(store.delete('orders'), 'SL_JOURNAL_SHARD_NOT_FOUND');
    });

    withStore('refuses shard names that could escape the data directory', async (store) => {
      for (const name of ['../etc', 'a/b', '..', '.', '', 'a\\b', 'x'.repeat(201), 'nul\0byte']) {
        await expectCode(store.create(name), 'SL_JOURNAL_INVALID_SHARD_NAME');
      }
      await expectCode(store.append('../x', [{ value: text('v') }]), 'SL_JOURNAL_INVALID_SHARD_NAME');
    });

    withStore('refuses invalid settings', async (store) => {
      await expectCode(store.create('s', { durability: 'sometimes' as never }), 'SL_JOURNAL_INVALID_CONFIG');
      await expectCode(store.create('s', { segmentBytes: 10 }), 'SL_JOURNAL_INVALID_CONFIG');
      await expectCode(store.create('s', { nonsense: 1 } as never), 'SL_JOURNAL_INVALID_CONFIG');
    });

    withStore('appends with dense offsets and reads records back intact', async (store) => {
      await store.create('s', { durability: 'none' });
      const first = await store.append('s', [
        { key: text('k1'), value: text('v1'), headers: [{ key: 'trace-ü', value: text('abc') }], timestamp: 1000 },
        { key: null, value: null, timestamp: 1001 },
      ]);
      assert.deepEqual(first, { baseOffset: 0, lastOffset: 1 });
      const second = await store.append('s', [{ value: Buffer.alloc(0), timestamp: 1002 }]);
      assert.deepEqual(second, { baseOffset: 2, lastOffset: 2 });
      const records = await store.read('s', 0);
      assert.deepEqual(records.map((record) => record.offset), [0, 1, 2]);
      assert.equal(records[0]?.key?.toString(), 'k1');
      assert.equal(records[0]?.value?.toString(), 'v1');
      assert.equal(records[0]?.headers[0]?.key, 'trace-ü');
      assert.equal(records[0]?.headers[0]?.value.toString(), 'abc');
      assert.equal(records[0]?.timestamp, 1000);
      assert.equal(records[1]?.key, null);
      assert.equal(records[1]?.value, null);
      assert.equal(records[2]?.value?.length, 0);
      const info = await store.info('s');
      assert.equal(info.nextOffset, 3);
      assert.equal(info.startOffset, 0);
      assert.ok(info.sizeBytes > 0);
    });

    withStore('reads from an offset with record and byte limits', async (store) => {
      await store.create('s', { durability: 'none' });
      for (let i = 0; i < 20; i += 1) await store.append('s', [{ value: Buffer.alloc(100, i) }]);
      assert.deepEqual((await store.read('s', 5, { maxRecords: 3 })).map((r) => r.offset), [5, 6, 7]);
      const small = await store.read('s', 0, { maxBytes: 250 });
      assert.ok(small.length >= 1 && small.length <= 3, `maxBytes 250 returned ${small.length} records`);
      assert.deepEqual(await store.read('s', 20), []);
      await expectCode(store.read('s', 21), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
      await expectCode(store.read('s', -5), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.read('s', 0, { maxRecords: 0 }), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.read('missing', 0), 'SL_JOURNAL_SHARD_NOT_FOUND');
      await expectCode(take(store.tail('s', 25), 1), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    });

    withStore('reads by timestamp', async (store) => {
      await store.create('s', { durability: 'none' });
      for (let i = 0; i < 10; i += 1) await store.append('s', [{ value: text(`m${i}`), timestamp: 10_000 + i * 100 }]);
      assert.deepEqual((await store.readByTime('s', 10_450, { maxRecords: 2 })).map((r) => r.offset), [5, 6]);
      assert.deepEqual((await store.readByTime('s', 0, { maxRecords: 1 })).map((r) => r.offset), [0]);
      assert.deepEqual(await store.readByTime('s', 99_999), []);
      await expectCode(store.readByTime('s', -1), 'SL_JOURNAL_INVALID_ARGUMENT');
    });

    withStore('refuses bad records without writing anything', async (store) => {
      await store.create('s', { durability: 'none', maxRecordBytes: 1024 });
      await store.create('c', { durability: 'none', compacted: true });
      await expectCode(store.append('s', [{ value: Buffer.alloc(2000) }]), 'SL_JOURNAL_RECORD_TOO_LARGE');
      await expectCode(store.append('s', []), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.append('s', [{ value: 'not a buffer' as never }]), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.append('s', [{ value: text('ok'), timestamp: -1 }]), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.append('s', [{ value: text('ok'), headers: [{ key: 'bad\uD800', value: text('v') }] }]), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.append('c', [{ value: text('no key') }]), 'SL_JOURNAL_KEY_REQUIRED');
      assert.equal((await store.info('s')).nextOffset, 0);
      assert.equal((await store.info('c')).nextOffset, 0);
    });

    withStore('fences appends from a stale leader epoch', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', [{ value: text('a') }], { epoch: 3 });
      await store.append('s', [{ value: text('b') }]);
      await expectCode(store.append('s', [{ value: text('c') }], { epoch: 2 }), 'SL_JOURNAL_STALE_EPOCH');
      const records = await store.read('s', 0);
      assert.deepEqual(records.map((r) => r.epoch), [3, 3]);
      assert.equal((await store.info('s')).epoch, 3);
    });

    withStore('truncates after an offset and continues from there', async (store) => {
      await store.create('s', { durability: 'none' });
      for (let i = 0; i < 10; i += 1) await store.append('s', [{ value: text(`m${i}`) }]);
      await store.truncateAfter('s', 5);
      assert.equal((await store.info('s')).nextOffset, 6);
      assert.deepEqual((await store.read('s', 0)).map((r) => r.value?.toString()), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      const next = await store.append('s', [{ value: text('new') }]);
      assert.equal(next.baseOffset, 6);
      await expectCode(store.truncateAfter('s', 50), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
      await store.truncateAfter('s', -1);
      assert.equal((await store.info('s')).nextOffset, 0);
      assert.deepEqual(await store.read('s', 0), []);
    });

    withStore('tails existing records, then wakes on appends', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', [{ value: text('old') }]);
      const controller = new AbortController();
      const reading = take(store.tail('s', 0, { signal: controller.signal }), 3);
      setTimeout(() => {
        void store.append('s', [{ value: text('new1') }, { value: text('new2') }]);
      }, 30);
      const records = await reading;
      controller.abort();
      assert.deepEqual(records.map((r) => r.value?.toString()), ['old', 'new1', 'new2']);
    });

    withStore('serves many concurrent tailing readers', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', [{ value: text('m0') }]);
      const controller = new AbortController();
      const readers = Array.from({ length: 8 }, (_, reader) => take(store.tail('s', reader % 2, { signal: controller.signal }), 4 - (reader % 2)));
      for (let i = 1; i < 4; i += 1) await store.append('s', [{ value: text(`m${i}`) }]);
      const results = await Promise.all(readers);
      controller.abort();
      for (const [reader, records] of results.entries()) {
        const expected = ['m0', 'm1', 'm2', 'm3'].slice(reader % 2);
        assert.deepEqual(records.map((r) => r.value?.toString()), expected);
      }
    });

    withStore('ends a tail when its signal aborts', async (store) => {
      await store.create('s', { durability: 'none' });
      const controller = new AbortController();
      const reading = take(store.tail('s', 0, { signal: controller.signal }), 5);
      setTimeout(() => controller.abort(), 30);
      assert.deepEqual(await reading, []);
    });

    withStore('ends a waiting tail with SL_JOURNAL_CLOSED when its shard is deleted', async (store) => {
      await store.create('s', { durability: 'none' });
      const ended = expectCode(take(store.tail('s', 0), 1), 'SL_JOURNAL_CLOSED');
      await new Promise((resolve) => setTimeout(resolve, 30));
      await store.delete('s');
      await ended;
    });

    withStore('acknowledges fsync-mode appends from concurrent writers in order', async (store) => {
      await store.create('durable', { durability: 'fsync' });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.append('durable', [{ value: text(`w${i}`) }])));
      const offsets = results.map((result) => result.baseOffset).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: 50 }, (_, i) => i));
      const records = await store.read('durable', 0, { maxRecords: 100 });
      for (const [i, result] of results.entries()) assert.equal(records[result.baseOffset]?.value?.toString(), `w${i}`);
    });
  });
}
