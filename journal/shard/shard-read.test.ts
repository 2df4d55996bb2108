// Goal: Journal.read pages exactly like a naive model, whatever the batch sizes, segment sizes,
// index density and read budgets, and across a reopen; reads racing appends only ever see
// acknowledged records. Method: append seeded random batches, then compare reads from many
// start offsets and budgets with the model (records in offset order, cut by maxRecords and by
// the soft maxBytes of readCost).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal, readCost, type JournalRecord } from '../index.js';
import { seededRandom as random } from '../../tests/support/seeded-random.js';


function valueFor(offset: number, bytes: number): Buffer {
  const value = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 1) value[i] = (offset * 7 + i) & 0xff;
  return value;
}

/** What a read from `from` must return: model records cut by maxRecords and the soft maxBytes. */
function expectedRead(model: Buffer[], from: number, maxRecords: number, maxBytes: number): number[] {
  const offsets: number[] = [];
  let bytes = maxBytes;
  for (let offset = from; offset < model.length && offsets.length < maxRecords && bytes > 0; offset += 1) {
    offsets.push(offset);
    bytes -= readCost({ offset, timestamp: 0, key: null, value: model[offset] ?? null, headers: [], epoch: 0 });
  }
  return offsets;
}

function assertRead(records: JournalRecord[], model: Buffer[], from: number, maxRecords: number, maxBytes: number): void {
  const expected = expectedRead(model, from, maxRecords, maxBytes);
  assert.deepEqual(records.map((record) => record.offset), expected, `read from ${from}, maxRecords ${maxRecords}, maxBytes ${maxBytes}`);
  for (const record of records) assert.ok(record.value?.equals(model[record.offset] ?? Buffer.alloc(0)), `value of offset ${record.offset}`);
}

async function fill(journal: Journal, shard: string, model: Buffer[], next: () => number, batches: number): Promise<void> {
  for (let batch = 0; batch < batches; batch += 1) {
    const count = 1 + Math.floor(next() * 40);
    const sizeLimit = next() < 0.2 ? 20_000 : 600;
    const values = Array.from({ length: count }, (_, i) => valueFor(model.length + i, Math.floor(next() * sizeLimit)));
    const result = await journal.append(shard, values.map((value) => ({ value })));
    assert.equal(result.baseOffset, model.length);
    model.push(...values);
  }
}

async function checkReads(journal: Journal, shard: string, model: Buffer[], next: () => number, reads: number): Promise<void> {
  for (let i = 0; i < reads; i += 1) {
    const from = Math.floor(next() * model.length);
    const maxRecords = 1 + Math.floor(next() * (next() < 0.5 ? 50 : 5000));
    const maxBytes = 1 + Math.floor(next() * (next() < 0.5 ? 50_000 : 8_000_000));
    assertRead(await journal.read(shard, from, { maxRecords, maxBytes }), model, from, maxRecords, maxBytes);
  }
}

for (const indexIntervalBytes of [1, 4096, 1_000_000]) {
  test(`reads page like the model (indexIntervalBytes ${indexIntervalBytes}), before and after a reopen`, async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-read-test-'));
    const next = random(indexIntervalBytes);
    const model: Buffer[] = [];
    try {
      let journal = await Journal.open(directory, { retentionCheckMs: 0 });
      await journal.createShard('s', { durability: 'none', segmentBytes: 256 * 1024, indexIntervalBytes });
      await fill(journal, 's', model, next, 300);
      await checkReads(journal, 's', model, next, 300);
      await journal.close();
      journal = await Journal.open(directory, { retentionCheckMs: 0 });
      await checkReads(journal, 's', model, next, 150);
      await fill(journal, 's', model, next, 50);
      await checkReads(journal, 's', model, next, 150);
      await journal.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
}

test('reads racing fsync-mode appends see only acknowledged records, in order', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-read-test-'));
  const next = random(99);
  const model: Buffer[] = [];
  try {
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('s', { durability: 'fsync', segmentBytes: 128 * 1024 });
    const writers = Array.from({ length: 4 }, async (_, writer) => {
      for (let i = 0; i < 40; i += 1) {
        const values = Array.from({ length: 1 + ((writer + i) % 5) }, () => Buffer.alloc(Math.floor(next() * 3000), writer));
        const result = await journal.append('s', values.map((value) => ({ value })));
        values.forEach((value, index) => (model[result.baseOffset + index] = value));
      }
    });
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const records = await journal.read('s', 0, { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024 });
        records.forEach((record, index) => {
          assert.equal(record.offset, index);
          assert.ok(model[record.offset] !== undefined, `offset ${record.offset} was read before its append was acknowledged`);
          assert.ok(record.value?.equals(model[record.offset] ?? Buffer.alloc(0)), `value of offset ${record.offset}`);
        });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.all(writers);
    reading = false;
    await reader;
    assertRead(await journal.read('s', 0, { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024 }), model, 0, 100_000, 64 * 1024 * 1024);
    await journal.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
