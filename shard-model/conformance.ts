// The ShardStore conformance suite: one set of behaviours every adapter (memory, local,
// remote) must show, with the same error codes. Each adapter's test file calls
// runShardStoreConformance with a factory for a fresh, empty store.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBatch, decodeBatchRecords, type JournalRecord } from '../journal/index.js';
import type { ShardStore } from './shard-store.js';

export interface ConformanceTarget {
  name: string;
  /** A fresh, empty store; the suite closes it. */
  open(): Promise<ShardStore>;
  /** False for an adapter whose compact() must refuse with SL_REMOTE_UNSUPPORTED (remote). Default true. */
  compacts?: boolean;
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

/** Records in a form deepEqual compares by content (Buffers from decoding are views). */
function plain(record: JournalRecord) {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString('hex') ?? null,
    value: record.value?.toString('hex') ?? null,
    headers: record.headers.map((header) => [header.key, header.value.toString('hex')]),
    epoch: record.epoch,
  };
}

/** Decodes batches the way a follower would: each buffer must be exactly one batch that verifies. */
function decodeBatches(batches: Buffer[]): { baseOffset: number; records: JournalRecord[] }[] {
  return batches.map((batch) => {
    const check = checkBatch(batch, 0, 2 ** 31);
    if (check.kind !== 'valid') assert.fail(`batch does not verify: ${check.kind === 'invalid' ? check.reason : `incomplete, needs ${check.needBytes} bytes`}`);
    assert.equal(check.header.batchBytes, batch.length, 'a returned buffer holds exactly one whole batch');
    return { baseOffset: check.header.baseOffset, records: decodeBatchRecords(batch, 0, check.header) };
  });
}

async function readAll(store: ShardStore, name: string, fromOffset: number): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for (let next = fromOffset; ;) {
    const page = await store.read(name, next);
    if (page.length === 0) return out;
    out.push(...page);
    next = (page[page.length - 1]?.offset ?? next) + 1;
  }
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

    withStore('readBatches returns verified batches whose records equal read()', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', [
        { key: text('k1'), value: text('v1'), headers: [{ key: 'trace-ü', value: text('abc') }], timestamp: 1000 },
        { key: null, value: null, timestamp: 1001 },
      ], { epoch: 2 });
      for (let i = 0; i < 12; i += 1) {
        await store.append('s', Array.from({ length: 1 + (i % 3) }, (_, j) => ({ key: text(`k${i}.${j}`), value: Buffer.alloc(40 + i * 7, i) })));
      }
      const end = (await store.info('s')).nextOffset;
      const decoded: JournalRecord[] = [];
      let expectedBase = 0;
      for (let next = 0; next < end;) {
        const page = await store.readBatches('s', next, { maxBytes: 300 });
        assert.ok(page.batches.length >= 1, `no batch from ${next} before the end ${end}`);
        for (const batch of decodeBatches(page.batches)) {
          assert.equal(batch.baseOffset, expectedBase, 'batches follow each other without gaps or overlap');
          decoded.push(...batch.records);
          expectedBase = (batch.records[batch.records.length - 1]?.offset ?? -1) + 1;
        }
        assert.equal(page.next, expectedBase, 'next is the offset after the last batch returned');
        next = page.next;
      }
      assert.deepEqual(decoded.map(plain), (await readAll(store, 's', 0)).map(plain));
      assert.deepEqual(decoded.slice(0, 2).map((record) => record.epoch), [2, 2]);
    });

    withStore('readBatches bounds a page by maxBytes but always returns one batch', async (store) => {
      await store.create('s', { durability: 'none' });
      for (let i = 0; i < 20; i += 1) await store.append('s', [{ value: Buffer.alloc(100, i) }]);
      await store.append('s', [{ value: Buffer.alloc(2000, 7) }]);
      const page = await store.readBatches('s', 0, { maxBytes: 250 });
      const sizes = page.batches.map((batch) => batch.length);
      assert.ok(sizes.length >= 1 && sizes.slice(0, -1).reduce((sum, size) => sum + size, 0) < 250, `maxBytes 250 returned batches of ${sizes.join(', ')} bytes`);
      assert.ok(sizes.length < 20);
      const one = await store.readBatches('s', 3, { maxBytes: 1 });
      assert.equal(one.batches.length, 1);
      assert.deepEqual(decodeBatches(one.batches)[0]?.records.map((r) => r.offset), [3]);
      assert.equal(one.next, 4);
      const large = await store.readBatches('s', 20, { maxBytes: 10 });
      assert.equal(large.batches.length, 1, 'a batch larger than maxBytes still comes back whole');
      assert.equal(decodeBatches(large.batches)[0]?.records[0]?.value?.length, 2000);
      assert.equal(large.next, 21);
      await expectCode(store.readBatches('s', 0, { maxBytes: 0 }), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.readBatches('s', 0, { maxBytes: 1.5 }), 'SL_JOURNAL_INVALID_ARGUMENT');
    });

    withStore('readBatches from the middle of a batch starts with the batch that holds it', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', Array.from({ length: 5 }, (_, i) => ({ value: text(`a${i}`) })));
      await store.append('s', Array.from({ length: 3 }, (_, i) => ({ value: text(`b${i}`) })));
      const first = await store.readBatches('s', 2, { maxBytes: 1 });
      assert.deepEqual(decodeBatches(first.batches).map((batch) => batch.records.map((r) => r.offset)), [[0, 1, 2, 3, 4]]);
      assert.equal(first.next, 5);
      const rest = await store.readBatches('s', 6);
      assert.deepEqual(decodeBatches(rest.batches).map((batch) => batch.records.map((r) => r.value?.toString())), [['b0', 'b1', 'b2']]);
      assert.equal(rest.next, 8);
      // A cut inside a batch leaves a shorter batch that still verifies.
      await store.truncateAfter('s', 6);
      const cut = await store.readBatches('s', 0);
      assert.deepEqual(decodeBatches(cut.batches).map((batch) => batch.records.map((r) => r.offset)), [[0, 1, 2, 3, 4], [5, 6]]);
      assert.equal(cut.next, 7);
    });

    withStore('readBatches at the end is empty and refuses offsets out of range like read', async (store) => {
      await store.create('s', { durability: 'none' });
      assert.deepEqual(await store.readBatches('s', 0), { batches: [], next: 0 });
      for (let i = 0; i < 4; i += 1) await store.append('s', [{ value: text(`m${i}`) }]);
      assert.deepEqual(await store.readBatches('s', 4), { batches: [], next: 4 });
      await expectCode(store.readBatches('s', 5), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
      await expectCode(store.readBatches('s', -5), 'SL_JOURNAL_INVALID_ARGUMENT');
      await expectCode(store.readBatches('missing', 0), 'SL_JOURNAL_SHARD_NOT_FOUND');
    });

    withStore('the high watermark is the end after appends and truncation', async (store) => {
      await store.create('s', { durability: 'none' });
      assert.equal(await store.highWatermark('s'), 0);
      const appended = await store.append('s', [{ value: text('a') }, { value: text('b') }]);
      assert.equal(await store.highWatermark('s'), appended.lastOffset + 1);
      for (let i = 0; i < 5; i += 1) await store.append('s', [{ value: text(`m${i}`) }]);
      assert.equal(await store.highWatermark('s'), (await store.info('s')).nextOffset);
      assert.equal(await store.highWatermark('s'), 7);
      await store.truncateAfter('s', 3);
      assert.equal(await store.highWatermark('s'), 4);
      await expectCode(store.highWatermark('missing'), 'SL_JOURNAL_SHARD_NOT_FOUND');
      await expectCode(store.highWatermark('../x'), 'SL_JOURNAL_INVALID_SHARD_NAME');
    });

    withStore('the high watermark never passes the end, and nothing is readable past it', async (store) => {
      await store.create('s', { durability: 'fsync' });
      let previous = 0;
      const appends = Promise.all(Array.from({ length: 30 }, (_, i) => store.append('s', [{ value: text(`w${i}`) }])));
      let settled = false;
      void appends.finally(() => {
        settled = true;
      });
      while (!settled) {
        // Each bound is sampled after what it bounds: both only grow while appends run.
        const records = await store.read('s', 0, { maxRecords: 100 });
        const watermark = await store.highWatermark('s');
        const end = (await store.info('s')).nextOffset;
        assert.ok(watermark >= previous, `the high watermark went back from ${previous} to ${watermark}`);
        assert.ok(watermark <= end, `the high watermark ${watermark} passed the end ${end}`);
        for (const record of records) assert.ok(record.offset < watermark, `read returned offset ${record.offset} past the high watermark ${watermark}`);
        previous = watermark;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await appends;
      const end = await store.highWatermark('s');
      assert.equal(end, 30);
      assert.deepEqual(await store.read('s', end), []);
      assert.deepEqual(await store.readBatches('s', end), { batches: [], next: end });
    });

    withStore('a tailing reader never sees past the high watermark', async (store) => {
      await store.create('s', { durability: 'none' });
      await store.append('s', [{ value: text('m0') }]);
      const controller = new AbortController();
      const seen: number[] = [];
      const reading = (async () => {
        for await (const record of store.tail('s', 0, { signal: controller.signal })) {
          // The watermark only grows, so one read after receiving the record bounds it from above.
          const watermark = await store.highWatermark('s');
          assert.ok(record.offset < watermark, `tail returned offset ${record.offset} at high watermark ${watermark}`);
          seen.push(record.offset);
          if (seen.length === 10) break;
        }
      })();
      for (let i = 1; i < 10; i += 1) await store.append('s', [{ value: text(`m${i}`) }]);
      await reading;
      controller.abort();
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => i));
    });

    withStore('compaction keeps the latest record of each key at its offset, and old tombstones go', async (store) => {
      await store.create('c', { durability: 'none', compacted: true, tombstoneRetentionMs: 60_000 });
      await store.create('plain', { durability: 'none' });
      if (target.compacts === false) {
        await expectCode(store.compact('c'), 'SL_REMOTE_UNSUPPORTED');
        return;
      }
      await expectCode(store.compact('plain'), 'SL_JOURNAL_INVALID_ARGUMENT');
      // Values of 200 bytes so a journal with 1 KiB segments seals the interesting records (0-7)
      // behind the fillers: it compacts only sealed segments.
      const padded = (value: string) => text(value.padEnd(200, '.'));
      const now = Date.now();
      const script: { key: string; value: string | null; timestamp?: number }[] = [
        { key: 'a', value: 'a0' }, // 0: superseded by 4
        { key: 'b', value: 'b0' }, // 1: superseded by 7
        { key: 't', value: 't0' }, // 2: superseded by the old tombstone 5
        { key: 'u', value: 'u0' }, // 3: superseded by the recent tombstone 6
        { key: 'a', value: 'a1' }, // 4: latest of a
        { key: 't', value: null, timestamp: 1 }, // 5: latest of t, past retention: goes
        { key: 'u', value: null, timestamp: now }, // 6: latest of u, within retention: stays
        { key: 'b', value: 'b1' }, // 7: latest of b
      ];
      for (const step of script) await store.append('c', [{ key: text(step.key), value: step.value === null ? null : padded(step.value), ...(step.timestamp === undefined ? {} : { timestamp: step.timestamp }) }]);
      for (let i = 0; i < 10; i += 1) await store.append('c', [{ key: text(`f${i}`), value: padded(`f${i}`) }]);
      const before = await readAll(store, 'c', 0);
      const infoBefore = await store.info('c');
      const report = await store.compact('c');
      assert.ok(report.recordsRemoved >= 5, `removed ${report.recordsRemoved}`);
      const after = await readAll(store, 'c', 0);
      const offsets = after.map((record) => record.offset);
      for (const gone of [0, 1, 2, 3, 5]) assert.ok(!offsets.includes(gone), `offset ${gone} survived compaction: ${offsets.join(',')}`);
      // Every survivor is the very record that was there (same offset, key, value, epoch).
      const byOffset = new Map(before.map((record) => [record.offset, plain(record)]));
      for (const record of after) assert.deepEqual(plain(record), byOffset.get(record.offset));
      for (const kept of [4, 6, 7, 17]) assert.ok(offsets.includes(kept), `offset ${kept} (latest of its key) was removed`);
      const infoAfter = await store.info('c');
      assert.equal(infoAfter.startOffset, infoBefore.startOffset);
      assert.equal(infoAfter.nextOffset, infoBefore.nextOffset);
      // A read from a removed offset starts at the next survivor.
      assert.equal((await store.read('c', 1, { maxRecords: 1 }))[0]?.offset, offsets.find((offset) => offset > 1));
      // The stored batches hold exactly the surviving records, and still verify.
      const fromBatches: JournalRecord[] = [];
      for (let next = 0; next < infoAfter.nextOffset;) {
        const { batches, next: after } = await store.readBatches('c', next);
        if (batches.length === 0) break;
        for (const batch of decodeBatches(batches)) fromBatches.push(...batch.records);
        next = after;
      }
      assert.deepEqual(fromBatches.map(plain), after.map(plain));
      // Appends go on at the same next offset.
      assert.equal((await store.append('c', [{ key: text('a'), value: text('a2') }])).baseOffset, infoBefore.nextOffset);
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
