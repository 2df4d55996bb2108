// Model-based test of the Journal against an in-memory model of one shard.
//
// Goal: whatever sequence of appends, reads, time reads, tails, rolls, retention runs,
// compactions, reopens and damaged tails a shard goes through, it serves exactly the records
// the model says it holds: offsets dense and increasing on append; every acknowledged record
// identical after a reopen; retention deletes only whole sealed segments, and only those its
// limits allow; compaction keeps exactly the latest record per key in sealed segments; a torn
// or corrupt active tail is cut at the damaged batch and never served.
// Method: fast-check commands (fc.commands + fc.asyncModelRun) drive a real Journal in a temp
// directory with small segments (so rolls happen) and an injected clock. Every record carries
// an explicit timestamp (mostly increasing, sometimes a little behind). Appends run one at a
// time or several in flight (one group commit). Retention limits are drawn per run with the
// shard's settings; background retention is off and the command runs it with the clock moved.
// Damage is done on a closed journal: the active segment's .log is cut at a random byte or has
// a random byte flipped (anywhere, or on a chosen batch-header byte), then the journal is
// reopened (the same recovery path as after a crash, since the active segment is always
// re-verified on open). The model learns which batches survive from the batch boundaries
// scanned out of the file before the damage. A failure prints the seed, path and shrunk command
// list; FC_SEED and FC_PATH replay it, MODEL_RUNS sets the runs per variant.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { recordingLogger, type LogLine } from '../tests/support/recording-logger.js';
import { isShardlineError } from '../journal/index.js';
import { Journal, type JournalOptions } from '../journal/index.js';
import type { AppendResult, JournalRecord, RecordHeader, RecordInput } from '../journal/index.js';
import { lastOffsetOf } from '../journal/index.js';
import { scanBatches } from '../journal/testing.js';
import { HARD_MAX_BATCH_BYTES, type ShardConfig } from '../journal/testing.js';
import { replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const SHARD = 'model';
const KEYS = ['a', 'b', 'c', 'd', 'e'].map((key) => Buffer.from(key));
const START_TIME = 1_700_000_000_000;
/** No single await in a command may take longer than this (tails wait for appends). */
const STEP_TIMEOUT_MS = 5_000;

// ---- model ---------------------------------------------------------------------------------

interface ModelRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

interface Model {
  compacted: boolean;
  config: Partial<ShardConfig>;
  /** The records the shard must hold, in offset order. */
  records: ModelRecord[];
  nextOffset: number;
  /** The journal's clock (the journal reads it through JournalOptions.clock). */
  now: number;
}

interface Real {
  journal: Journal;
  options: JournalOptions;
  /** Log lines at level error or above; any one fails the run. */
  errors: () => LogLine[];
}

interface RecordSpec {
  key: number | null;
  /** null: a tombstone. */
  valueSize: number | null;
  valueSeed: number;
  headers: { key: string; value: Uint8Array }[];
  /** How far before the clock the record's timestamp is (timestamps may go back a little). */
  lag: number;
}

interface BatchSpec {
  advanceMs: number;
  records: RecordSpec[];
}

/** Deterministic bytes from a seed (xorshift32), so values differ and damage shows. */
function valueBytes(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  let state = (seed | 0) || 0x9e3779b9;
  for (let i = 0; i < size; i += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

function readCost(record: { key: Buffer | null; value: Buffer | null }): number {
  return (record.value?.length ?? 0) + (record.key?.length ?? 0) + 16;
}

/** What one read returns: records until maxRecords, or until the byte budget is spent (soft cap). */
function limitRead(records: ModelRecord[], maxRecords: number, maxBytes = 1024 * 1024): ModelRecord[] {
  const out: ModelRecord[] = [];
  let budgetRecords = maxRecords;
  let budgetBytes = maxBytes;
  for (const record of records) {
    out.push(record);
    budgetRecords -= 1;
    budgetBytes -= readCost(record);
    if (budgetRecords <= 0 || budgetBytes <= 0) break;
  }
  return out;
}

function describe(record: ModelRecord | JournalRecord) {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString('latin1') ?? null,
    value: record.value?.toString('hex') ?? null,
    headers: record.headers.map((header) => `${JSON.stringify(header.key)}=${header.value.toString('hex')}`),
  };
}

function assertRecords(actual: JournalRecord[], expected: ModelRecord[], what: string): void {
  assert.deepEqual(actual.map(describe), expected.map(describe), what);
  for (const record of actual) assert.equal(record.epoch, 0, `${what}: epoch of offset ${record.offset}`);
}

function pickOffset(start: number, end: number, fraction: number): number {
  return start + Math.round((fraction / 1000) * (end - start));
}

async function readAll(journal: Journal, from: number): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  const end = journal.info(SHARD).nextOffset;
  let next = from;
  for (let pages = 0; next < end && pages < 10_000; pages += 1) {
    const page = await journal.read(SHARD, next, { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024 });
    const last = page[page.length - 1];
    if (last === undefined) break;
    out.push(...page);
    next = last.offset + 1;
  }
  return out;
}

/** The shard holds exactly the model: same range and every record identical. */
async function verifyAll(m: Model, r: Real, what: string): Promise<void> {
  const info = r.journal.info(SHARD);
  assert.equal(info.nextOffset, m.nextOffset, `${what}: nextOffset`);
  const first = m.records[0]?.offset ?? m.nextOffset;
  if (m.compacted) assert.ok(info.startOffset <= first, `${what}: startOffset ${info.startOffset} is past the first record ${first}`);
  else assert.equal(info.startOffset, first, `${what}: startOffset`);
  assertRecords(await readAll(r.journal, info.startOffset), m.records, `${what}: all records`);
  assertNoErrors(r);
}

function assertNoErrors(r: Real): void {
  assert.deepEqual(r.errors(), [], 'the journal logged errors');
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function reopen(r: Real): Promise<void> {
  r.journal = await Journal.open(r.journal.directory, r.options);
}

/**
 * Advances the clock and builds one batch; the model takes its records at once (the append
 * that follows must be acknowledged with exactly these offsets).
 */
function prepareBatch(m: Model, spec: BatchSpec): { inputs: RecordInput[]; records: ModelRecord[] } {
  m.now += spec.advanceMs;
  const base = m.nextOffset;
  const records = spec.records.map((record, index) => ({
    offset: base + index,
    timestamp: m.now - record.lag,
    key: record.key === null ? null : (KEYS[record.key] ?? null),
    value: record.valueSize === null ? null : valueBytes(record.valueSize, record.valueSeed),
    headers: record.headers.map((header) => ({ key: header.key, value: Buffer.from(header.value) })),
  }));
  m.records.push(...records);
  m.nextOffset = base + records.length;
  const inputs = records.map(({ timestamp, key, value, headers }) => ({ timestamp, key, value, headers }));
  return { inputs, records };
}

/** Appends one batch and updates the model; returns the records the model expects. */
async function appendBatch(m: Model, r: Real, spec: BatchSpec): Promise<ModelRecord[]> {
  const { inputs, records } = prepareBatch(m, spec);
  const result = await r.journal.append(SHARD, inputs);
  assert.deepEqual(result, { baseOffset: records[0]?.offset, lastOffset: records[records.length - 1]?.offset }, 'append offsets are dense and increasing');
  return records;
}

// ---- commands ------------------------------------------------------------------------------

type JournalCommand = fc.AsyncCommand<Model, Real>;

class AppendCommand implements JournalCommand {
  constructor(readonly spec: BatchSpec) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const added = await appendBatch(m, r, this.spec);
    const first = added[0];
    assert.ok(first !== undefined);
    assertRecords(await r.journal.read(SHARD, first.offset, { maxRecords: added.length }), added, 'read back an acknowledged append');
    assertNoErrors(r);
  }
  toString = () => `append(${this.spec.records.map((record) => `${record.key ?? '-'}:${record.valueSize ?? 'tomb'}`).join(',')} +${this.spec.advanceMs}ms)`;
}

/** Several appends in flight at once: one group commit, offsets in call order, rolls inside. */
class ConcurrentAppendCommand implements JournalCommand {
  constructor(readonly specs: BatchSpec[]) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const expected: ModelRecord[][] = [];
    const inFlight: Promise<AppendResult>[] = [];
    for (const spec of this.specs) {
      const { inputs, records } = prepareBatch(m, spec);
      expected.push(records);
      inFlight.push(r.journal.append(SHARD, inputs));
    }
    const results = await withTimeout(Promise.all(inFlight), 'concurrent appends');
    results.forEach((result, index) => {
      const records = expected[index] ?? [];
      assert.deepEqual(result, { baseOffset: records[0]?.offset, lastOffset: records[records.length - 1]?.offset }, `concurrent append ${index} got offsets in call order`);
    });
    const all = expected.flat();
    const first = all[0];
    assert.ok(first !== undefined);
    assertRecords(await r.journal.read(SHARD, first.offset, { maxRecords: all.length }), all, 'read back concurrent appends');
    assertNoErrors(r);
  }
  toString = () => `appendConcurrently(${this.specs.map((spec) => spec.records.length).join('+')} records)`;
}

class ReadCommand implements JournalCommand {
  constructor(readonly fromFraction: number, readonly maxRecords: number, readonly maxBytes: number | undefined) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const { startOffset, nextOffset } = r.journal.info(SHARD);
    const from = pickOffset(startOffset, nextOffset, this.fromFraction);
    const expected = limitRead(m.records.filter((record) => record.offset >= from), this.maxRecords, this.maxBytes);
    const options = this.maxBytes === undefined ? { maxRecords: this.maxRecords } : { maxRecords: this.maxRecords, maxBytes: this.maxBytes };
    assertRecords(await r.journal.read(SHARD, from, options), expected, `read(${from})`);
    await assert.rejects(r.journal.read(SHARD, nextOffset + 1), (error) => isShardlineError(error, 'SL_JOURNAL_OFFSET_OUT_OF_RANGE'));
    if (startOffset > 0) await assert.rejects(r.journal.read(SHARD, startOffset - 1), (error) => isShardlineError(error, 'SL_JOURNAL_OFFSET_OUT_OF_RANGE'));
    assertNoErrors(r);
  }
  toString = () => `read(at ${this.fromFraction}/1000, max ${this.maxRecords}${this.maxBytes === undefined ? '' : `, ${this.maxBytes} B`})`;
}

class ReadByTimeCommand implements JournalCommand {
  constructor(readonly timeFraction: number, readonly maxRecords: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const timestamps = m.records.map((record) => record.timestamp);
    const low = (timestamps.length === 0 ? m.now : Math.min(...timestamps)) - 5;
    const high = (timestamps.length === 0 ? m.now : Math.max(...timestamps)) + 5;
    const time = low + Math.round((this.timeFraction / 1000) * (high - low));
    const first = m.records.find((record) => record.timestamp >= time);
    const expected = first === undefined ? [] : limitRead(m.records.filter((record) => record.offset >= first.offset), this.maxRecords);
    assertRecords(await r.journal.readByTime(SHARD, time, { maxRecords: this.maxRecords }), expected, `readByTime(${time})`);
    assertNoErrors(r);
  }
  toString = () => `readByTime(at ${this.timeFraction}/1000, max ${this.maxRecords})`;
}

class TailCommand implements JournalCommand {
  constructor(readonly fromFraction: number, readonly partial: number | null, readonly appends: BatchSpec[]) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const { startOffset, nextOffset } = r.journal.info(SHARD);
    const from = pickOffset(startOffset, nextOffset, this.fromFraction);
    const existing = m.records.filter((record) => record.offset >= from);
    // A partial tail stops among the existing records; a full one also waits for new appends.
    const wanted = this.partial === null ? existing : existing.slice(0, this.partial);
    const appends = this.partial === null ? this.appends : [];
    const controller = new AbortController();
    const tail = r.journal.tail(SHARD, from, { signal: controller.signal });
    const got: JournalRecord[] = [];
    try {
      while (got.length < wanted.length) {
        const next = await withTimeout(tail.next(), `tail(${from}) record ${got.length}`);
        if (next.done === true) assert.fail(`tail(${from}) ended early`);
        got.push(next.value);
      }
      const expected = [...wanted];
      let writer: Promise<void> = Promise.resolve();
      let expectedNew = 0;
      for (const append of appends) expectedNew += append.records.length;
      if (appends.length > 0) {
        // The tail is now waiting for appends that have not been made yet.
        writer = (async () => {
          for (const append of appends) expected.push(...(await appendBatch(m, r, append)));
        })();
      }
      while (got.length < wanted.length + expectedNew) {
        const next = await withTimeout(tail.next(), `tail(${from}) new record ${got.length - wanted.length}`);
        if (next.done === true) assert.fail(`tail(${from}) ended before the new records`);
        got.push(next.value);
      }
      await withTimeout(writer, 'appends during the tail');
      assertRecords(got, expected, `tail(${from})`);
      controller.abort();
      const after = await withTimeout(tail.next(), `tail(${from}) after abort`);
      assert.equal(after.done, true, 'an aborted tail ends');
    } finally {
      controller.abort();
    }
    assertNoErrors(r);
  }
  toString = () => `tail(at ${this.fromFraction}/1000, ${this.partial === null ? `all + ${this.appends.length} appends` : `first ${this.partial}`})`;
}

class RollCommand implements JournalCommand {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const shard = r.journal.shard(SHARD);
    const before = shard.segmentPaths();
    await shard.rollNow();
    const after = shard.segmentPaths();
    const activeWasEmpty = (before[before.length - 1]?.sizeBytes ?? 0) === 0;
    assert.equal(after.length, before.length + (activeWasEmpty ? 0 : 1), 'rollNow adds a segment unless the active one is empty');
    assert.equal(after[after.length - 1]?.baseOffset, m.nextOffset, 'the new active segment starts at nextOffset');
    assertNoErrors(r);
  }
  toString = () => 'roll';
}

class RetentionCommand implements JournalCommand {
  constructor(readonly advanceMs: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.now += this.advanceMs;
    const shard = r.journal.shard(SHARD);
    const before = shard.segmentPaths();
    const sealed = before.length - 1;
    const endOf = (i: number) => before[i + 1]?.baseOffset ?? Number.POSITIVE_INFINITY;
    const maxTimestampOf = (i: number) => Math.max(0, ...m.records.filter((record) => record.offset >= (before[i]?.baseOffset ?? 0) && record.offset < endOf(i)).map((record) => record.timestamp));
    const { retentionMs = null, retentionBytes = null } = m.config;
    const cutoff = retentionMs === null ? Number.NEGATIVE_INFINITY : m.now - retentionMs;
    // The rule: the oldest sealed segments whose newest record is older than the cutoff go;
    // then more of the oldest sealed segments go while the shard is larger than retentionBytes.
    let expectedCount = 0;
    while (retentionMs !== null && expectedCount < sealed && maxTimestampOf(expectedCount) < cutoff) expectedCount += 1;
    if (retentionBytes !== null) {
      let total = before.slice(expectedCount).reduce((sum, segment) => sum + segment.sizeBytes, 0);
      while (expectedCount < sealed && total > retentionBytes) {
        total -= before[expectedCount]?.sizeBytes ?? 0;
        expectedCount += 1;
      }
    }

    const deleted = await r.journal.enforceRetention();
    assert.equal(deleted, expectedCount, 'segments deleted by retention');
    const after = shard.segmentPaths();
    assert.deepEqual(after.map((segment) => segment.baseOffset), before.slice(expectedCount).map((segment) => segment.baseOffset), 'retention deletes whole sealed segments, oldest first');
    const startOffset = after[0]?.baseOffset ?? m.nextOffset;
    const dropped = m.records.filter((record) => record.offset < startOffset);
    if (retentionBytes === null) {
      for (const record of dropped) assert.ok(record.timestamp < cutoff, `retention dropped offset ${record.offset} (timestamp ${record.timestamp}) newer than the cutoff ${cutoff}`);
    }
    m.records = m.records.filter((record) => record.offset >= startOffset);
    await verifyAll(m, r, 'after retention');
  }
  toString = () => `retention(+${this.advanceMs}ms)`;
}

class CompactCommand implements JournalCommand {
  check = (m: Readonly<Model>) => m.compacted;
  async run(m: Model, r: Real): Promise<void> {
    const paths = r.journal.shard(SHARD).segmentPaths();
    const activeBase = paths[paths.length - 1]?.baseOffset ?? m.nextOffset;
    const latest = new Map<string, number>();
    for (const record of m.records) if (record.key !== null) latest.set(record.key.toString('latin1'), record.offset);
    const tombstoneCutoff = m.now - (m.config.tombstoneRetentionMs ?? 0);
    const isLatest = (record: ModelRecord) => record.key !== null && latest.get(record.key.toString('latin1')) === record.offset;
    const kept = m.records.filter((record) => record.offset >= activeBase || (isLatest(record) && !(record.value === null && record.timestamp < tombstoneCutoff)));

    const report = await r.journal.compact(SHARD);
    assert.equal(report.recordsRemoved, m.records.length - kept.length, 'records removed by compaction');

    const all = await readAll(r.journal, r.journal.info(SHARD).startOffset);
    const present = new Set(all.map((record) => record.offset));
    for (const record of m.records) {
      if (isLatest(record) && (record.value !== null || record.offset >= activeBase)) assert.ok(present.has(record.offset), `compaction dropped the latest record of key ${record.key?.toString('latin1')} at ${record.offset}`);
    }
    for (const record of all) {
      if (record.offset < activeBase) assert.ok(latest.get(record.key?.toString('latin1') ?? '') === record.offset, `superseded record at ${record.offset} left in a sealed segment`);
    }
    m.records = kept;
    await verifyAll(m, r, 'after compaction');
  }
  toString = () => 'compact';
}

class ReopenCommand implements JournalCommand {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.journal.close();
    await reopen(r);
    await verifyAll(m, r, 'after a clean reopen');
  }
  toString = () => 'reopen';
}

/** Where damage lands: anywhere in the log, or on a chosen byte of a batch header. */
type DamageTarget = { anywhere: number } | { batch: number; headerByte: number };

class DamageCommand implements JournalCommand {
  constructor(readonly kind: 'truncate' | 'flip', readonly target: DamageTarget, readonly mask: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const paths = r.journal.shard(SHARD).segmentPaths();
    const active = paths[paths.length - 1];
    assert.ok(active !== undefined);
    await r.journal.close();
    const bytes = await readFile(active.logPath);
    if (bytes.length > 0) {
      const scan = scanBatches(bytes, 0, active.baseOffset, 0, HARD_MAX_BATCH_BYTES);
      assert.equal(scan.stop.kind, 'end', 'a cleanly closed active segment scans to its end');
      const position = this.position(bytes.length, scan.batches.map((batch) => batch.position));
      if (this.kind === 'truncate') {
        await truncate(active.logPath, position);
      } else {
        bytes[position] = (bytes[position] ?? 0) ^ this.mask;
        await writeFile(active.logPath, bytes);
      }
      // Either way, exactly the batches that end at or before the damaged byte survive.
      const survivors = scan.batches.filter((batch) => batch.position + batch.header.batchBytes <= position);
      const last = survivors[survivors.length - 1];
      m.nextOffset = last === undefined ? active.baseOffset : lastOffsetOf(last.header) + 1;
      m.records = m.records.filter((record) => record.offset < m.nextOffset);
    }
    await reopen(r);
    await verifyAll(m, r, `after ${this.kind} damage`);
  }
  private position(logBytes: number, batchStarts: number[]): number {
    if ('anywhere' in this.target) return Math.min(logBytes - 1, Math.floor((this.target.anywhere / 10_000) * logBytes));
    const start = batchStarts[Math.min(batchStarts.length - 1, Math.floor((this.target.batch / 1000) * batchStarts.length))] ?? 0;
    return start + this.target.headerByte;
  }
  toString = () => `damage(${this.kind} at ${JSON.stringify(this.target)}${this.kind === 'flip' ? ` ^${this.mask}` : ''})`;
}

// ---- arbitraries ---------------------------------------------------------------------------

function batchArb(compacted: boolean): fc.Arbitrary<BatchSpec> {
  const record = fc.record({
    key: compacted ? fc.integer({ min: 0, max: KEYS.length - 1 }) : fc.option(fc.integer({ min: 0, max: KEYS.length - 1 }), { nil: null, freq: 5 }),
    valueSize: compacted ? fc.option(fc.integer({ min: 0, max: 300 }), { nil: null, freq: 4 }) : fc.integer({ min: 0, max: 300 }),
    valueSeed: fc.integer(),
    headers: fc.array(fc.record({ key: fc.string({ unit: 'binary', maxLength: 6 }), value: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 2 }),
    lag: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }) }),
  });
  return fc.record({ advanceMs: fc.integer({ min: 0, max: 60 }), records: fc.array(record, { minLength: 1, maxLength: 5 }) });
}

const damageTargetArb: fc.Arbitrary<DamageTarget> = fc.oneof(
  fc.record({ anywhere: fc.integer({ min: 0, max: 10_000 }) }),
  // BATCH_HEADER_BYTES is 56: magic, length, checksum, version, epoch, offsets, timestamps.
  fc.record({ batch: fc.integer({ min: 0, max: 1000 }), headerByte: fc.integer({ min: 0, max: 55 }) }),
);

function commandsArb(compacted: boolean) {
  const fraction = fc.integer({ min: 0, max: 1000 });
  const append = batchArb(compacted).map((spec) => new AppendCommand(spec));
  const list: fc.Arbitrary<JournalCommand>[] = [
    append,
    append,
    append,
    fc.array(batchArb(compacted), { minLength: 2, maxLength: 6 }).map((specs) => new ConcurrentAppendCommand(specs)),
    fc.tuple(fraction, fc.integer({ min: 1, max: 40 }), fc.option(fc.integer({ min: 1, max: 3000 }), { nil: undefined })).map(([at, max, bytes]) => new ReadCommand(at, max, bytes)),
    fc.tuple(fraction, fc.integer({ min: 1, max: 40 })).map(([at, max]) => new ReadByTimeCommand(at, max)),
    fc.tuple(fraction, fc.option(fc.integer({ min: 1, max: 10 }), { nil: null }), fc.array(batchArb(compacted), { maxLength: 2 })).map(([at, partial, appends]) => new TailCommand(at, partial, appends)),
    fc.constant(new RollCommand()),
    fc.integer({ min: 0, max: 2000 }).map((advance) => new RetentionCommand(advance)),
    fc.constant(new ReopenCommand()),
    fc.tuple(fc.constantFrom('truncate' as const, 'flip' as const), damageTargetArb, fc.integer({ min: 1, max: 255 })).map(([kind, target, mask]) => new DamageCommand(kind, target, mask)),
  ];
  if (compacted) list.push(fc.constant(new CompactCommand()), fc.constant(new CompactCommand()));
  return fc.commands(list, { maxCommands: 60, size: 'max' });
}

function configArb(compacted: boolean): fc.Arbitrary<Partial<ShardConfig>> {
  return fc.record({
    durability: fc.constantFrom('fsync' as const, 'none' as const),
    segmentBytes: fc.integer({ min: 2048, max: 8192 }),
    indexIntervalBytes: fc.integer({ min: 1, max: 512 }),
    segmentMs: fc.oneof(fc.constant(7 * 24 * 3600 * 1000), fc.integer({ min: 100, max: 1500 })),
    retentionMs: fc.option(fc.integer({ min: 200, max: 3000 }), { nil: null }),
    retentionBytes: fc.option(fc.integer({ min: 1000, max: 12_000 }), { nil: null }),
    compacted: fc.constant(compacted),
    tombstoneRetentionMs: fc.constant(0),
  });
}

async function runModel(compacted: boolean, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(configArb(compacted), commandsArb(compacted), async (config, commands) => {
      const directory = await mkdtemp(join(tmpdir(), 'shardline-model-'));
      const model: Model = { compacted, config, records: [], nextOffset: 0, now: START_TIME };
      const log = recordingLogger('error');
      const options: JournalOptions = {
        clock: () => model.now,
        retentionCheckMs: 0,
        logger: log.logger,
      };
      let real: Real | undefined;
      try {
        const opened: Real = { journal: await Journal.open(directory, options), options, errors: log.lines };
        real = opened;
        await opened.journal.createShard(SHARD, config);
        await fc.asyncModelRun(() => ({ model, real: opened }), commands);
        await verifyAll(model, opened, 'at the end');
      } finally {
        await real?.journal.close().catch(() => undefined);
        await rm(directory, { recursive: true, force: true });
      }
    }),
    { numRuns, ...replay },
  );
}

test('a plain shard agrees with the model through appends, reads, tails, rolls, retention, reopens and damage', async () => {
  await runModel(false, Number(process.env.MODEL_RUNS ?? 60));
});

test('a compacted shard agrees with the model, compaction included', async () => {
  await runModel(true, Number(process.env.MODEL_RUNS ?? 60));
});
