// The audit tools on real files: a journal is written with the Journal API and closed, then its
// files are damaged the way disks and crashes do (a flipped byte, a cut tail, a lost index) or
// the way writer bugs would (misordered batches, wrong index entries), and verify must name the
// right code, file and byte; dump must return exactly the requested range and stop at damage.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checksum64 } from '../checksum.js';
import { indexChecksum } from '../segment/segment-index.js';
import { Journal } from '../journal.js';
import type { JournalRecord } from '../record.js';
import { encodeBatch, sealBatch } from '../segment/batch-format.js';
import { scanBatches, type ScannedBatch } from '../segment/log-scan.js';
import { HARD_MAX_BATCH_BYTES } from '../shard/shard-config.js';
import { AUDIT_PROBLEMS, type AuditProblem } from './audit-problems.js';
import { listShardsOnDisk } from './list-shards.js';
import { readRecordsOnDisk, type ReadOnDiskOptions } from './read-records.js';
import { hasErrors, verifyJournal } from './verify-journal.js';
import { seededRandom } from '../../tests/support/seeded-random.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const SHARD = 'orders';
const RECORDS = 120;
const BASE_TIME = 1_000_000;
const timeOf = (offset: number) => BASE_TIME + offset * 10;

/**
 * A closed journal with shard `orders`: 60 appends of 2 records (offsets 2i, 2i+1, timestamp
 * BASE_TIME + offset * 10) over several 1 KiB segments, plus a small shard `events`.
 */
async function writeJournal(epoch = 0): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-audit-'));
  directories.push(directory);
  // The clock sits just after the records' timestamps: segments roll by size, not by age.
  const clock = () => timeOf(RECORDS);
  const journal = await Journal.open(directory, { clock, retentionCheckMs: 0, shardDefaults: { segmentBytes: 1024, indexIntervalBytes: 200, durability: 'none' } });
  await journal.createShard(SHARD);
  for (let offset = 0; offset < RECORDS; offset += 2) {
    await journal.append(SHARD, [recordInput(offset), recordInput(offset + 1)], { epoch });
  }
  await journal.createShard('events');
  await journal.append('events', [{ value: null, key: Buffer.from('gone'), timestamp: 5 }]);
  await journal.close();
  return directory;
}

function recordInput(offset: number) {
  return { key: Buffer.from(`key-${offset % 7}`), value: Buffer.from(`value-${offset}`.padEnd(24, '.')), timestamp: timeOf(offset), headers: [{ key: 'n', value: Buffer.from(String(offset)) }] };
}

function shardPath(directory: string, file = ''): string {
  return join(directory, 'shards', SHARD, file);
}

async function logNames(directory: string): Promise<string[]> {
  return (await readdir(shardPath(directory))).filter((name) => name.endsWith('.log')).sort();
}

async function batchesOf(directory: string, logName: string): Promise<ScannedBatch[]> {
  return scanBatches(await readFile(shardPath(directory, logName)), 0, 0, 0, HARD_MAX_BATCH_BYTES).batches;
}

async function dump(directory: string, options: ReadOnDiskOptions = {}, shard = SHARD): Promise<JournalRecord[]> {
  const records: JournalRecord[] = [];
  for await (const record of readRecordsOnDisk(directory, shard, options)) records.push(record);
  return records;
}

function codesOf(problems: AuditProblem[]): string[] {
  return problems.map((found) => `${found.severity} ${found.code} ${found.segment}`).sort();
}

async function expectCode(work: () => Promise<unknown>, code: string): Promise<{ context: Record<string, unknown> }> {
  let caught: { code?: string; context: Record<string, unknown> } | null = null;
  await assert.rejects(work, (error: { code?: string; context: Record<string, unknown> }) => {
    caught = error;
    assert.equal(error.code, code);
    return true;
  });
  return caught as unknown as { context: Record<string, unknown> };
}

async function fingerprint(directory: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (path: string): Promise<void> => {
    for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const child = join(path, entry.name);
      hash.update(child);
      if (entry.isDirectory()) await walk(child);
      else hash.update(await readFile(child));
    }
  };
  await walk(directory);
  return hash.digest('hex');
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

describe('verifyJournal', () => {
  it('defines each problem code once, with a meaning and a fix', () => {
    const definitions = Object.values(AUDIT_PROBLEMS);
    assert.equal(new Set(definitions.map((definition) => definition.code)).size, definitions.length);
    for (const definition of definitions) {
      assert.match(definition.code, /^SL_AUDIT_[A-Z_]+$/);
      assert.ok(definition.meaning.length > 0 && definition.fix.length > 0, definition.code);
    }
  });

  it('finds nothing wrong in a cleanly closed journal and counts what it checked', async () => {
    const directory = await writeJournal();
    const progress: [number, number][] = [];
    const report = await verifyJournal(directory, { onProgress: (done, total) => progress.push([done, total]) });
    assert.deepEqual(report.problems, []);
    assert.equal(report.shards, 2);
    assert.equal(report.records, RECORDS + 1);
    assert.equal(report.batches, RECORDS / 2 + 1);
    assert.equal(report.segments, (await logNames(directory)).length + 1);
    const last = progress[progress.length - 1];
    assert.ok(last !== undefined && last[0] === last[1] && last[1] === report.bytesChecked, 'progress ends at the total');
  });

  it('reports a flipped byte in a sealed segment at the damaged batch, as an error', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[1] ?? assert.fail('need a second segment');
    const batch = (await batchesOf(directory, sealed))[1] ?? assert.fail('need a second batch');
    const bytes = await readFile(shardPath(directory, sealed));
    bytes.writeUInt8((bytes[batch.position + 70] ?? 0) ^ 0xff, batch.position + 70);
    await writeFile(shardPath(directory, sealed), bytes);

    const report = await verifyJournal(directory);
    assert.deepEqual(codesOf(report.problems), [`error SL_AUDIT_BATCH_CORRUPT ${sealed}`]);
    assert.equal(report.problems[0]?.position, batch.position);
    assert.equal(report.problems[0]?.shard, SHARD);
    assert.equal(hasErrors(report), true);
  });

  it('calls a torn tail on the active segment a warning, and its now stale index too', async () => {
    const directory = await writeJournal();
    const active = (await logNames(directory)).at(-1) ?? assert.fail('no segment');
    const batches = await batchesOf(directory, active);
    const lastBatch = batches[batches.length - 1] ?? assert.fail('empty active segment');
    await truncate(shardPath(directory, active), lastBatch.position + lastBatch.header.batchBytes - 5);

    const report = await verifyJournal(directory, { shard: SHARD });
    const stem = active.replace('.log', '');
    assert.deepEqual(codesOf(report.problems), [
      `warning SL_AUDIT_INDEX_STALE ${stem}.index`,
      `warning SL_AUDIT_INDEX_STALE ${stem}.timeindex`,
      `warning SL_AUDIT_TORN_TAIL ${active}`,
    ]);
    assert.equal(report.problems.find((found) => found.code === 'SL_AUDIT_TORN_TAIL')?.position, lastBatch.position);
    assert.equal(hasErrors(report), false);
    assert.equal(report.shards, 1);
  });

  it('calls a torn sealed segment an error', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[0] ?? assert.fail('no segment');
    const batches = await batchesOf(directory, sealed);
    const lastBatch = batches[batches.length - 1] ?? assert.fail('empty segment');
    await truncate(shardPath(directory, sealed), lastBatch.position + 10);
    const report = await verifyJournal(directory, { shard: SHARD });
    const torn = report.problems.find((found) => found.code === 'SL_AUDIT_TORN_TAIL');
    assert.equal(torn?.severity, 'error');
    assert.equal(torn?.segment, sealed);
    assert.equal(torn?.position, lastBatch.position);
  });

  it('warns about a missing index of a sealed segment', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[1] ?? assert.fail('need a second segment');
    const indexName = sealed.replace('.log', '.index');
    await unlink(shardPath(directory, indexName));
    const report = await verifyJournal(directory);
    assert.deepEqual(codesOf(report.problems), [`warning SL_AUDIT_INDEX_MISSING ${indexName}`]);
  });

  it('finds a wrong entry in an index whose checksum is valid, in the file and at the entry', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[0] ?? assert.fail('no segment');
    const offsetIndex = shardPath(directory, sealed.replace('.log', '.index'));
    const timeIndex = shardPath(directory, sealed.replace('.log', '.timeindex'));
    const bytes = await readFile(offsetIndex);
    assert.ok(bytes.readUInt32LE(32) >= 2, 'the index needs two entries');
    bytes.writeUInt32LE(bytes.readUInt32LE(48 + 8) + 1, 48 + 8);
    bytes.writeBigUInt64LE(indexChecksum(bytes), 40);
    await writeFile(offsetIndex, bytes);
    const times = await readFile(timeIndex);
    times.writeUInt32LE(times.readUInt32LE(48 + 12) + 3, 48 + 12);
    times.writeBigUInt64LE(indexChecksum(times), 40);
    await writeFile(timeIndex, times);

    const report = await verifyJournal(directory);
    assert.deepEqual(report.problems.map((found) => [found.severity, found.code, found.segment, found.position]), [
      ['error', 'SL_AUDIT_INDEX_ENTRY', sealed.replace('.log', '.index'), 48 + 8],
      ['error', 'SL_AUDIT_INDEX_ENTRY', sealed.replace('.log', '.timeindex'), 48 + 12],
    ]);
  });

  it('reports a duplicated batch as an offset order error and checks the batches after it', async () => {
    const directory = await writeJournal();
    const active = (await logNames(directory)).at(-1) ?? assert.fail('no segment');
    const path = shardPath(directory, active);
    const original = await readFile(path);
    const first = (await batchesOf(directory, active))[0] ?? assert.fail('empty active segment');
    await appendFile(path, original.subarray(first.position, first.position + first.header.batchBytes));
    const flipped = Buffer.from(original.subarray(first.position, first.position + first.header.batchBytes));
    flipped.writeUInt8((flipped[80] ?? 0) ^ 1, 80);
    await appendFile(path, flipped);

    const report = await verifyJournal(directory, { shard: SHARD });
    const errors = report.problems.filter((found) => found.severity === 'error');
    assert.deepEqual(errors.map((found) => [found.code, found.position]), [
      ['SL_AUDIT_OFFSET_ORDER', original.length],
      ['SL_AUDIT_BATCH_CORRUPT', original.length + first.header.batchBytes],
    ]);
  });

  it('reports a batch with a lower leader epoch, and a batch whose header disagrees with its records', async () => {
    const directory = await writeJournal(4);
    const active = (await logNames(directory)).at(-1) ?? assert.fail('no segment');
    const path = shardPath(directory, active);
    const size = (await readFile(path)).length;
    const lowEpoch = encodeBatch([{ offsetDelta: 0, timestamp: timeOf(RECORDS), key: null, value: Buffer.from('x'), headers: [] }]);
    sealBatch(lowEpoch, RECORDS, 2);
    const lying = encodeBatch([{ offsetDelta: 0, timestamp: timeOf(RECORDS + 1), key: null, value: Buffer.from('y'), headers: [] }]);
    lying.writeUInt32LE(7, 48);
    sealBatch(lying, RECORDS + 1, 4);
    await appendFile(path, Buffer.concat([lowEpoch, lying]));

    const report = await verifyJournal(directory, { shard: SHARD });
    const errors = report.problems.filter((found) => found.severity === 'error');
    assert.deepEqual(errors.map((found) => [found.code, found.position]), [
      ['SL_AUDIT_EPOCH_ORDER', size],
      ['SL_AUDIT_RECORD_STRUCTURE', size + lowEpoch.length],
    ]);
  });

  it('reports a batch of an unknown format version', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[0] ?? assert.fail('no segment');
    const bytes = await readFile(shardPath(directory, sealed));
    // A batch a future writer produced: version 9 under a valid checksum.
    bytes.writeUInt8(9, 16);
    bytes.writeBigUInt64LE(checksum64(bytes.subarray(16, bytes.readUInt32LE(4))), 8);
    await writeFile(shardPath(directory, sealed), bytes);
    const report = await verifyJournal(directory);
    assert.deepEqual(codesOf(report.problems), [`error SL_AUDIT_BATCH_VERSION ${sealed}`]);
    assert.equal(report.problems[0]?.position, 0);
  });

  it('reports overlapping segments, orphan index files, a broken shard.json, leftovers and foreign directories', async () => {
    const directory = await writeJournal();
    const names = await logNames(directory);
    const active = names.at(-1) ?? assert.fail('no segment');
    const previousBase = Number((names.at(-2) ?? assert.fail('need two segments')).slice(0, 20));
    const moved = `${String(previousBase + 1).padStart(20, '0')}.log`;
    await rename(shardPath(directory, active), shardPath(directory, moved));
    await writeFile(shardPath(directory, 'shard.json'), '{');
    await writeFile(shardPath(directory, `${names[0]}.compacting`), 'partial');
    await mkdir(join(directory, 'shards', '.creating-x'));
    await mkdir(join(directory, 'shards', 'not a shard'));

    const report = await verifyJournal(directory);
    const stem = active.replace('.log', '');
    const movedStem = moved.replace('.log', '');
    assert.deepEqual(codesOf(report.problems), [
      'error SL_AUDIT_FOREIGN_DIRECTORY ',
      'error SL_AUDIT_SEGMENT_OVERLAP ' + moved,
      'error SL_AUDIT_SHARD_CONFIG shard.json',
      `warning SL_AUDIT_INDEX_MISSING ${movedStem}.index`,
      `warning SL_AUDIT_INDEX_MISSING ${movedStem}.timeindex`,
      'warning SL_AUDIT_LEFTOVER_FILE ',
      `warning SL_AUDIT_LEFTOVER_FILE ${names[0]}.compacting`,
      `warning SL_AUDIT_LEFTOVER_FILE ${stem}.index`,
      `warning SL_AUDIT_LEFTOVER_FILE ${stem}.timeindex`,
    ].sort());
  });

  it('reports a missing segment file as a gap in the offsets', async () => {
    const directory = await writeJournal();
    const names = await logNames(directory);
    const lost = names[2] ?? assert.fail('need a third segment');
    for (const suffix of ['.log', '.index', '.timeindex']) await unlink(shardPath(directory, lost.replace('.log', suffix)));
    const report = await verifyJournal(directory, { shard: SHARD });
    assert.deepEqual(codesOf(report.problems), [`error SL_AUDIT_SEGMENT_GAP ${names[3]}`]);
  });

  it('accepts the gaps and the emptied first segment that compaction leaves', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-audit-'));
    directories.push(directory);
    const journal = await Journal.open(directory, { retentionCheckMs: 0, clock: () => timeOf(RECORDS) });
    await journal.createShard('kv', { compacted: true, segmentBytes: 1024, durability: 'none', tombstoneRetentionMs: 0 });
    for (let offset = 0; offset < RECORDS; offset += 1) {
      await journal.append('kv', [{ key: Buffer.from(`key-${offset % 4}`), value: offset >= RECORDS - 4 ? null : Buffer.from(`v${offset}`), timestamp: timeOf(offset) }]);
    }
    const compaction = await journal.compact('kv');
    assert.ok(compaction.recordsRemoved > 0, 'compaction removed records');
    await journal.close();
    assert.deepEqual((await verifyJournal(directory)).problems, []);
  });

  it('raises the journal\'s typed errors for a directory that is not a journal, an unknown format or shard', async () => {
    const directory = await writeJournal();
    await expectCode(() => verifyJournal(join(directory, 'missing')), 'SL_JOURNAL_NOT_A_JOURNAL');
    await expectCode(() => verifyJournal(join(directory, 'shardline-journal.json')), 'SL_JOURNAL_NOT_A_JOURNAL');
    await expectCode(() => verifyJournal(join(directory, 'shards')), 'SL_JOURNAL_NOT_A_JOURNAL');
    await expectCode(() => verifyJournal(directory, { shard: 'nope' }), 'SL_JOURNAL_SHARD_NOT_FOUND');
    await expectCode(() => verifyJournal(directory, { shard: '../x' }), 'SL_JOURNAL_INVALID_SHARD_NAME');
    await expectCode(() => dump(directory, {}, 'nope'), 'SL_JOURNAL_SHARD_NOT_FOUND');
    await writeFile(join(directory, 'shardline-journal.json'), JSON.stringify({ format: 99 }));
    await expectCode(() => verifyJournal(directory), 'SL_JOURNAL_UNSUPPORTED_FORMAT');
    await expectCode(() => listShardsOnDisk(directory), 'SL_JOURNAL_UNSUPPORTED_FORMAT');
    await expectCode(() => dump(directory), 'SL_JOURNAL_UNSUPPORTED_FORMAT');
  });

  it('runs beside a live journal without its lock and without changing a byte', async () => {
    const directory = await writeJournal();
    const journal = await Journal.open(directory, { retentionCheckMs: 0, clock: () => timeOf(RECORDS) });
    try {
      await journal.append(SHARD, [recordInput(RECORDS)]);
      const before = await fingerprint(directory);
      const report = await verifyJournal(directory);
      assert.equal(hasErrors(report), false);
      assert.equal((await listShardsOnDisk(directory)).find((shard) => shard.name === SHARD)?.nextOffset, RECORDS + 1);
      assert.equal((await dump(directory)).length, RECORDS + 1);
      assert.equal(await fingerprint(directory), before);
      await journal.append(SHARD, [recordInput(RECORDS + 1)]);
    } finally {
      await journal.close();
    }
  });
});

describe('listShardsOnDisk', () => {
  it('agrees with what the journal reports for each shard', async () => {
    const directory = await writeJournal();
    const journal = await Journal.open(directory, { retentionCheckMs: 0, clock: () => timeOf(RECORDS) });
    const expected = journal.listShards();
    await journal.close();
    const listed = await listShardsOnDisk(directory);
    assert.deepEqual(listed.map((shard) => shard.name), expected.map((shard) => shard.name));
    for (const [index, shard] of listed.entries()) {
      const info = expected[index] ?? assert.fail('missing shard');
      assert.deepEqual(
        [shard.startOffset, shard.nextOffset, shard.segmentCount, shard.sizeBytes, shard.epoch, shard.maxTimestamp, shard.config],
        [info.startOffset, info.nextOffset, info.segmentCount, info.sizeBytes, info.epoch, info.maxTimestamp, info.config],
      );
    }
    const orders = listed.find((shard) => shard.name === SHARD);
    assert.equal(orders?.recordCount, RECORDS);
    assert.equal(orders?.firstTimestamp, BASE_TIME);
    assert.ok((orders?.segmentCount ?? 0) >= 4, 'the fixture spans several segments');
  });
});

describe('readRecordsOnDisk', () => {
  it('returns the same records as the journal', async () => {
    const directory = await writeJournal();
    const journal = await Journal.open(directory, { retentionCheckMs: 0, clock: () => timeOf(RECORDS) });
    const expected = await journal.read(SHARD, 0, { maxRecords: 1000 });
    await journal.close();
    assert.deepEqual(await dump(directory), expected);
  });

  it('returns exactly [fromOffset, toOffset) and [fromTime, toTime), across segments', async () => {
    const directory = await writeJournal();
    const offsets = async (options: ReadOnDiskOptions) => (await dump(directory, options)).map((record) => record.offset);
    for (const [from, to] of [[0, 1], [1, 2], [3, 4], [5, 77], [37, 38], [0, RECORDS], [59, 200], [RECORDS, 200], [50, 50], [60, 40]] as const) {
      assert.deepEqual(await offsets({ fromOffset: from, toOffset: to }), range(from, Math.min(to, RECORDS)), `offsets ${from}..${to}`);
    }
    assert.deepEqual(await offsets({ fromOffset: 101 }), range(101, RECORDS));
    assert.deepEqual(await offsets({ toOffset: 9 }), range(0, 9));
    assert.deepEqual(await offsets({ fromTime: timeOf(35) }), range(35, RECORDS));
    assert.deepEqual(await offsets({ fromTime: timeOf(35) + 1 }), range(36, RECORDS));
    assert.deepEqual(await offsets({ fromTime: timeOf(10), toTime: timeOf(90) }), range(10, 90));
    assert.deepEqual(await offsets({ fromTime: timeOf(10), toTime: timeOf(90), fromOffset: 20, toOffset: 95 }), range(20, 90));
    assert.deepEqual(await offsets({ fromTime: timeOf(RECORDS) }), []);
    await expectCode(() => dump(directory, { fromOffset: -1 }), 'SL_JOURNAL_INVALID_ARGUMENT');
  });

  it('stops with SL_JOURNAL_CORRUPT_BATCH at damage, after every record before it and none of the batch', async () => {
    const directory = await writeJournal();
    const sealed = (await logNames(directory))[2] ?? assert.fail('need a third segment');
    const batch = (await batchesOf(directory, sealed))[1] ?? assert.fail('need a second batch');
    const bytes = await readFile(shardPath(directory, sealed));
    bytes.writeUInt8((bytes[batch.position + 60] ?? 0) ^ 1, batch.position + 60);
    await writeFile(shardPath(directory, sealed), bytes);

    const seen: number[] = [];
    const error = await expectCode(async () => {
      for await (const record of readRecordsOnDisk(directory, SHARD)) seen.push(record.offset);
    }, 'SL_JOURNAL_CORRUPT_BATCH');
    assert.deepEqual(error.context, { shard: SHARD, segment: sealed, position: batch.position });
    assert.deepEqual(seen, range(0, batch.header.baseOffset));
    // A range after the damaged segment does not touch it.
    const after = await dump(directory, { fromOffset: RECORDS - 4 });
    assert.deepEqual(after.map((record) => record.offset), range(RECORDS - 4, RECORDS));
  });

  it('ends quietly at a torn tail of the active segment', async () => {
    const directory = await writeJournal();
    const active = (await logNames(directory)).at(-1) ?? assert.fail('no segment');
    const batches = await batchesOf(directory, active);
    const lastBatch = batches[batches.length - 1] ?? assert.fail('empty active segment');
    await truncate(shardPath(directory, active), lastBatch.position + 30);
    assert.deepEqual((await dump(directory)).map((record) => record.offset), range(0, lastBatch.header.baseOffset));
  });

  it('reads a segment without its index files', async () => {
    const directory = await writeJournal();
    for (const name of await logNames(directory)) {
      await unlink(shardPath(directory, name.replace('.log', '.index')));
    }
    assert.deepEqual((await dump(directory, { fromOffset: 33, toOffset: 71 })).map((record) => record.offset), range(33, 71));
  });
});

describe('random damage', () => {
  // Goal: whatever a disk does to one file, the audit tools report it and never crash, and dump
  // never returns a record that differs from what was written. Method: copies of one journal,
  // each with one file of `orders` flipped, cut or deleted at a random place drawn from a
  // printed seed (AUDIT_SEED=<seed> replays a run).
  it('is reported by verify, and dump yields only the records as written', async () => {
    const seed = Number(process.env.AUDIT_SEED ?? 20261122);
    const random = seededRandom(seed);
    const pristine = await writeJournal();
    const journal = await Journal.open(pristine, { retentionCheckMs: 0, clock: () => timeOf(RECORDS) });
    const originals = await journal.read(SHARD, 0, { maxRecords: 1000 });
    await journal.close();
    const files = (await readdir(shardPath(pristine))).filter((name) => /\.(log|index|timeindex)$/.test(name)).sort();
    for (let round = 0; round < 40; round += 1) {
      const directory = await mkdtemp(join(tmpdir(), 'shardline-audit-random-'));
      directories.push(directory);
      await cp(pristine, directory, { recursive: true });
      const file = files[Math.floor(random() * files.length)] ?? assert.fail('no files');
      const damage = await damageFile(shardPath(directory, file), random);
      const context = `seed ${seed} round ${round}: ${damage} ${file}`;

      const report = await verifyJournal(directory);
      assert.ok(report.problems.length > 0, `${context}: nothing reported`);
      await listShardsOnDisk(directory);
      try {
        for await (const record of readRecordsOnDisk(directory, SHARD)) assert.deepEqual(record, originals[record.offset], context);
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'SL_JOURNAL_CORRUPT_BATCH', `${context}: ${String(error)}`);
      }
    }
  });
});


async function damageFile(path: string, random: () => number): Promise<string> {
  const bytes = await readFile(path);
  const choice = random();
  if (choice < 0.6 && bytes.length > 0) {
    const at = Math.floor(random() * bytes.length);
    bytes.writeUInt8((bytes[at] ?? 0) ^ (1 + Math.floor(random() * 255)), at);
    await writeFile(path, bytes);
    return `flipped byte ${at} of`;
  }
  if (choice < 0.9 && bytes.length > 0) {
    const length = Math.floor(random() * bytes.length);
    await truncate(path, length);
    return `cut to ${length} bytes`;
  }
  await unlink(path);
  return 'deleted';
}
