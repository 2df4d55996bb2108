// Unit tests of Projection<T> and its snapshots (engine/projection) over a MemoryShardStore.
//
// Goal: a projection opened from a snapshot plus the tail has the state a replay from offset 0
// has; a torn, corrupt, unknown-version or undecodable snapshot is passed over for an older one
// or for a replay from 0; follow() applies appends as they come; snapshots are written only
// while the state is a fold of a shard prefix (not after a gap, a divergence, or while the owner
// is not settled); old snapshots are retired, and big states are chunked.
// Method: a keyed projection (key -> value, tombstone deletes) small enough to check by hand,
// and the `$snapshots` shard written and damaged through the store like any other shard.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import pino from 'pino';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { Projection, type ProjectionCodec, type ProjectionOptions } from './projection.js';
import { decodeRecordList, encodeRecordList } from './record-list.js';
import { SNAPSHOT_CHUNK_BYTES, SNAPSHOT_DATA_SHARD, SNAPSHOTS_SHARD } from './snapshot-store.js';

const logger = pino({ level: 'silent' });
const SHARD = 'things';

type Things = Map<string, string>;

function codec(version = 1): ProjectionCodec<Things> {
  return {
    version,
    encode: (state) => Buffer.from(JSON.stringify([...state])),
    decode: (bytes) => new Map(JSON.parse(bytes.toString('utf8')) as Array<[string, string]>),
  };
}

function applyThing(state: Things, record: JournalRecord): Things {
  if (record.key === null) return state;
  if (record.value === null) state.delete(record.key.toString());
  else state.set(record.key.toString(), record.value.toString());
  return state;
}

function options(store: MemoryShardStore, extra: Partial<ProjectionOptions<Things>> = {}): ProjectionOptions<Things> {
  return { store, shard: SHARD, logger, initial: () => new Map(), apply: applyThing, codec: codec(), ...extra };
}

function put(key: string, value: string | null): RecordInput {
  return { key: Buffer.from(key), value: value === null ? null : Buffer.from(value) };
}

async function storeWith(records: RecordInput[]): Promise<MemoryShardStore> {
  const store = new MemoryShardStore();
  await store.create(SHARD, { compacted: true });
  if (records.length > 0) await store.append(SHARD, records);
  return store;
}

/** The state a replay from offset 0 gives (no snapshot used: another codec version). */
async function fullReplay(store: MemoryShardStore): Promise<Things> {
  const projection = await Projection.open(options(store, { codec: codec(999), snapshotEveryRecords: Number.MAX_SAFE_INTEGER }));
  assert.equal(projection.opening.snapshotOffset, undefined);
  return projection.state;
}

async function snapshotRecords(store: MemoryShardStore, shard = SNAPSHOTS_SHARD): Promise<JournalRecord[]> {
  const all: JournalRecord[] = [];
  for (;;) {
    const records = await store.read(shard, all.length, { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024 });
    if (records.length === 0) return all;
    all.push(...records);
  }
}

async function snapshotManifests(store: MemoryShardStore): Promise<Array<{ key: string; live: boolean }>> {
  const latest = new Map<string, boolean>();
  for (const record of await snapshotRecords(store)) {
    const key = record.key?.toString() ?? '';
    if (key.startsWith('m:')) latest.set(key, record.value !== null);
  }
  return [...latest].map(([key, live]) => ({ key, live }));
}

test('a snapshot plus the tail gives what a replay from 0 gives, reading only the tail', async () => {
  const store = await storeWith([put('a', '1'), put('b', '2'), put('a', '3')]);
  const first = await Projection.open(options(store));
  assert.equal(first.opening.snapshotOffset, undefined);
  assert.equal(first.opening.replayedRecords, 3);
  await first.close();
  await store.append(SHARD, [put('b', null), put('c', '4')]);
  const second = await Projection.open(options(store));
  assert.equal(second.opening.snapshotOffset, 3, 'the snapshot taken at close');
  assert.equal(second.opening.replayedRecords, 2, 'only the records after it are read');
  assert.deepEqual([...second.state], [...(await fullReplay(store))]);
  assert.deepEqual([...second.state], [
    ['a', '3'],
    ['c', '4'],
  ]);
  assert.equal(second.offset, 5);
});

test('a snapshot of another encoding version is ignored: replay from 0', async () => {
  const store = await storeWith([put('a', '1')]);
  await (await Projection.open(options(store))).close();
  const other = await Projection.open(options(store, { codec: codec(2) }));
  assert.equal(other.opening.snapshotOffset, undefined);
  assert.match(other.opening.skipped.join(), /encoding version 1, this build reads 2/);
  assert.deepEqual([...other.state], [['a', '1']]);
});

test('a corrupt newest snapshot falls back to the one before; a torn write (chunks, no manifest) is ignored, then removed', async () => {
  const store = await storeWith([put('a', '1')]);
  await (await Projection.open(options(store))).close();
  await store.append(SHARD, [put('b', '2')]);
  await (await Projection.open(options(store))).close();
  const manifests = await snapshotManifests(store);
  assert.equal(manifests.filter((manifest) => manifest.live).length, 2);
  // The newest manifest written again with a checksum its bytes do not have (the latest record
  // of a key wins), as if its chunks had been damaged.
  const newestKey = (manifests.at(-1) as { key: string }).key;
  const newest = (await snapshotRecords(store)).filter((record) => record.key?.toString() === newestKey).at(-1)?.value as Buffer;
  await store.append(SNAPSHOTS_SHARD, [{ key: Buffer.from(newestKey), value: Buffer.from(JSON.stringify({ ...JSON.parse(newest.toString()), sha256: '0'.repeat(64) })) }]);
  // And a write cut short: its marker and a chunk, no manifest.
  await store.append(SNAPSHOTS_SHARD, [{ key: Buffer.from(`w:${SHARD}\u0000feedfeedfeedfeed`), value: Buffer.from('{"chunks":1}') }]);
  await store.append(SNAPSHOT_DATA_SHARD, [{ key: Buffer.from(`c:${SHARD}\u0000feedfeedfeedfeed\u00000`), value: Buffer.from('[["z","z"]]') }]);
  await store.append(SHARD, [put('c', '3')]);
  const reopened = await Projection.open(options(store));
  assert.equal(reopened.opening.snapshotOffset, 1, 'the older snapshot');
  assert.match(reopened.opening.skipped.join(), /SHA-256/);
  assert.deepEqual([...reopened.state], [...(await fullReplay(store))]);
  await reopened.close();
  const torn = (await snapshotRecords(store, SNAPSHOT_DATA_SHARD)).filter((record) => record.key?.toString().includes('feedfeedfeedfeed'));
  assert.deepEqual(
    torn.map((record) => record.value === null),
    [false, true],
    'the next write removes the chunks of the one cut short',
  );
});

test('a snapshot whose chunks are gone (the data shard cut back) is passed over', async () => {
  const store = await storeWith([put('a', '1')]);
  await (await Projection.open(options(store))).close();
  await store.truncateAfter(SNAPSHOT_DATA_SHARD, -1);
  const reopened = await Projection.open(options(store));
  assert.equal(reopened.opening.snapshotOffset, undefined);
  assert.match(reopened.opening.skipped.join(), /chunk 0/);
  assert.deepEqual([...reopened.state], [['a', '1']]);
});

test('a snapshot the codec cannot decode, or outside the shard, is passed over', async () => {
  const store = await storeWith([put('a', '1')]);
  await (await Projection.open(options(store))).close();
  const failing: ProjectionCodec<Things> = {
    ...codec(),
    decode: () => {
      throw new Error('cannot read this');
    },
  };
  const refused = await Projection.open(options(store, { codec: failing }));
  assert.equal(refused.opening.snapshotOffset, undefined);
  assert.match(refused.opening.skipped.join(), /cannot read this/);
  assert.deepEqual([...refused.state], [['a', '1']]);
  // The shard cut back below the snapshot's offset (a replication divergence cut): not usable.
  await store.append(SHARD, [put('b', '2')]);
  await (await Projection.open(options(store))).close();
  await store.truncateAfter(SHARD, 0);
  const cut = await Projection.open(options(store));
  assert.ok(cut.opening.snapshotOffset === undefined || cut.opening.snapshotOffset <= 1);
  assert.deepEqual([...cut.state], [['a', '1']]);
});

test('follow() applies records as they are appended', async () => {
  const store = await storeWith([put('a', '1')]);
  const projection = await Projection.open(options(store));
  const abort = new AbortController();
  const seen: number[] = [];
  const following = projection.follow(abort.signal, (record) => seen.push(record.offset));
  await store.append(SHARD, [put('b', '2'), put('a', null)]);
  for (let i = 0; i < 200 && seen.length < 2; i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual([...projection.state], [['b', '2']]);
  assert.equal(projection.offset, 3);
  abort.abort();
  await following;
});

test('a follower waiting to retry a failed read stops at once when aborted (close must not wait on a timer)', { timeout: 10_000 }, async () => {
  // Found by tests/mqtt-journal-outage in CI: the pause ran on an unref'd timer and ignored the
  // signal, so a node shutting down after a journal outage could run out of work and exit with
  // code 13 while close() awaited the follower. The clock is mocked: only the abort can end the
  // pause here, and without it this test times out.
  const store = await storeWith([put('a', '1')]);
  const projection = await Projection.open(options(store));
  let tails = 0;
  store.tail = () => {
    tails += 1;
    throw new Error('the journal is away');
  };
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const controller = new AbortController();
    const following = projection.follow(controller.signal, () => undefined);
    while (tails === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await following;
    assert.equal(tails, 1);
  } finally {
    mock.timers.reset();
  }
});

test('snapshots come every N records and only while the state is a fold of a shard prefix', async () => {
  const store = await storeWith([]);
  const projection = await Projection.open(options(store, { snapshotEveryRecords: 3 }));
  const append = async (records: RecordInput[]): Promise<void> => {
    const { baseOffset } = await store.append(SHARD, records);
    projection.appended(baseOffset, records);
  };
  await append([put('a', '1'), put('b', '2')]);
  await projection.snapshotNow();
  assert.equal((await Projection.open(options(store))).opening.snapshotOffset, 2, 'snapshotNow');
  await append([put('c', '3'), put('d', '4'), put('e', '5')]);
  await projection.snapshotNow();
  assert.equal((await Projection.open(options(store))).opening.snapshotOffset, 5, 'due after 3 records');
  // Another writer's record comes between: this state never saw it, so no more snapshots.
  await store.append(SHARD, [put('x', 'foreign')]);
  await append([put('f', '6'), put('g', '7'), put('h', '8')]);
  await projection.close();
  const reopened = await Projection.open(options(store));
  assert.equal(reopened.opening.snapshotOffset, 5);
  assert.deepEqual([...reopened.state], [...(await fullReplay(store))]);
});

test('an owner that applies before durable: snapshots wait until settled; a divergence stops them', async () => {
  const store = await storeWith([]);
  let settled = false;
  const projection = await Projection.open(options(store, { settled: () => settled }));
  const records = [put('a', '1')];
  applyThing(projection.state, { offset: 0, timestamp: 0, key: records[0]?.key ?? null, value: records[0]?.value ?? null, headers: [], epoch: 0 });
  const { baseOffset } = await store.append(SHARD, records);
  projection.advanced(baseOffset, records);
  await projection.snapshotNow();
  assert.equal((await Projection.open(options(store))).opening.snapshotOffset, undefined, 'not settled: no snapshot');
  settled = true;
  await projection.snapshotNow();
  assert.equal((await Projection.open(options(store))).opening.snapshotOffset, 1);
  applyThing(projection.state, { offset: 1, timestamp: 0, key: Buffer.from('lost'), value: Buffer.from('x'), headers: [], epoch: 0 });
  projection.diverged('an append failed');
  await store.append(SHARD, [put('b', '2')]);
  await projection.close();
  const reopened = await Projection.open(options(store));
  assert.equal(reopened.opening.snapshotOffset, 1, 'nothing written after the divergence');
  assert.equal(reopened.state.has('lost'), false);
});

test('a big state is chunked; only the two newest snapshots stay live', async () => {
  const big = 'x'.repeat(SNAPSHOT_CHUNK_BYTES);
  const store = await storeWith([put('big1', big), put('big2', big), put('big3', big)]);
  for (let round = 0; round < 3; round += 1) {
    await store.append(SHARD, [put('round', String(round))]);
    await (await Projection.open(options(store))).close();
  }
  const manifests = await snapshotManifests(store);
  assert.equal(manifests.length, 3);
  assert.deepEqual(
    manifests.map((manifest) => manifest.live),
    [false, true, true],
    'the oldest retired',
  );
  const chunks = new Map<string, boolean>();
  for (const record of await snapshotRecords(store, SNAPSHOT_DATA_SHARD)) {
    const key = record.key?.toString() ?? '';
    if (key.startsWith('c:')) chunks.set(key, record.value !== null);
  }
  assert.equal([...chunks.values()].filter((live) => live).length, 8, 'two snapshots of 4 chunks (3 MiB and a little)');
  const reopened = await Projection.open(options(store));
  assert.equal(reopened.opening.replayedRecords, 0);
  assert.equal(reopened.state.get('big2'), big);
});

test('record lists round-trip, and a cut or padded list is refused', () => {
  const records = [
    { offset: 7, timestamp: 1_700_000_000_123, key: Buffer.from('k'), value: Buffer.from('v'), headers: [{ key: 'h', value: Buffer.from([1, 2]) }] },
    { offset: 8, timestamp: 0, key: null, value: null, headers: [] },
    { offset: 9, timestamp: 5, key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [{ key: 'é', value: Buffer.alloc(0) }] },
  ];
  const bytes = encodeRecordList(records);
  assert.deepEqual(decodeRecordList(bytes), records);
  for (let cut = 0; cut < bytes.length; cut += 1) assert.throws(() => decodeRecordList(bytes.subarray(0, cut)), /cut short|claims/, `cut at ${cut}`);
  assert.throws(() => decodeRecordList(Buffer.concat([bytes, Buffer.from([0])])), /after its last record/);
});
