// Workloads of `shardline bench journal`: append throughput and latency per durability mode,
// record size, appender count and records per append, and sequential read throughput. The
// bench uses the journal only through journal/index.ts, like any other client.
//
// Scenario names are specs, so a filter can also name a scenario that is not in the default
// list:
//   append-<size>-<durability>-c<appenders>-b<records per append>   e.g. append-100B-fsync-c16-b100
//   read-<size>-b<records per append of the fill>                  e.g. read-1KiB-b100
//   rate-<size>-<durability>-r<appends/s>-c<appenders>[-w<window>]  e.g. rate-1KiB-fsync-r5000-c1
// <size> is the value size of each record (no key, no headers): <n>B or <n>KiB.
//
// Bounds: every scenario stops at its duration, at maxBytes of log written and when the
// signal aborts, whichever comes first; a read pass is bounded by the bytes written before it.
// Each scenario works in its own shard, deleted afterwards so the disk does not fill up.
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import xxhash from 'xxhash-wasm';
import { encodedRecordBytes, type DurabilityMode, type Journal, type RecordInput } from '../../journal/index.js';
import { LatencyHistogram } from './latency-histogram.js';

export type Scenario =
  | { kind: 'append'; name: string; valueBytes: number; durability: DurabilityMode; appenders: number; recordsPerAppend: number }
  | { kind: 'rate'; name: string; valueBytes: number; durability: DurabilityMode; appenders: number; rate: number; window: number }
  | { kind: 'read'; name: string; valueBytes: number; recordsPerAppend: number };

export interface ScenarioDefaults {
  /** Records per append of the size × durability × appenders matrix (1: per-record latency). */
  recordsPerAppend: number;
  /** Records per append of the batched-append scenarios (durability none, one appender). */
  batchRecords: number;
  /** Records per append of the group-commit scenarios (durability fsync, 16 appenders). */
  groupCommitRecords: number;
  /** Records per append when filling a shard for a read scenario: sets the batch size read. */
  readBatchRecords: number;
}

export const DEFAULT_SCENARIO_SETTINGS: ScenarioDefaults = { recordsPerAppend: 1, batchRecords: 1000, groupCommitRecords: 100, readBatchRecords: 100 };
const VALUE_SIZES = [100, 1024];
const DURABILITY_MODES: DurabilityMode[] = ['fsync', 'interval', 'none'];
const APPENDER_COUNTS = [1, 16];
/** Group commit is measured with as many appenders as the matrix's concurrent case. */
const GROUP_COMMIT_APPENDERS = 16;
const MAX_APPENDERS = 1024;
/** Appends/s a rate scenario may ask for; above this the pacer, not the journal, is measured. */
export const MAX_RATE = 1_000_000;
/** Largest in-flight window per client of a rate scenario. */
export const MAX_WINDOW = 65_535;
/** Size of each write of the raw write + fdatasync probe beside a rate scenario. */
const PROBE_WRITE_BYTES = 4096;
/** Largest batch the bench builds; the shard's default maxBatchBytes is 64 MiB. */
const MAX_APPEND_BYTES = 32 * 1024 * 1024;
/** Journal.read limits of the read scenarios: what a consumer paging through a shard asks for. */
const READ_MAX_RECORDS = 100_000;
const READ_MAX_BYTES = 4 * 1024 * 1024;
/** A follower or fetch asks for more at a time than a record reader; 16 MiB lets reads overlap verification. */
const BATCH_READ_MAX_BYTES = 16 * 1024 * 1024;
/** Chunk of the raw file reads that bound what Journal.read could reach. */
const RAW_READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** A read scenario fills at most this much (and at most maxBytes), so a pass stays short. */
const READ_FILL_MAX_BYTES = 256 * 1024 * 1024;
const EMPTY_RECORD_BYTES = encodedRecordBytes({ key: null, value: null, headers: [] });

export function formatSize(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024}KiB` : `${bytes}B`;
}

export function parseSize(text: string): number | null {
  const match = /^(\d+)(B|KiB)$/.exec(text);
  if (match === null) return null;
  const bytes = Number(match[1]) * (match[2] === 'KiB' ? 1024 : 1);
  return Number.isSafeInteger(bytes) && bytes >= 1 && bytes <= 8 * 1024 * 1024 ? bytes : null;
}

export function appendScenario(valueBytes: number, durability: DurabilityMode, appenders: number, recordsPerAppend: number): Scenario {
  const name = `append-${formatSize(valueBytes)}-${durability}-c${appenders}-b${recordsPerAppend}`;
  return { kind: 'append', name, valueBytes, durability, appenders, recordsPerAppend };
}

/**
 * A paced load: `appenders` clients take turns appending one record on a fixed schedule
 * (together `rate` appends/s). With `window` 0 a client never waits for its acknowledgements
 * (open loop; then the number of clients makes no difference to the journal); with a window,
 * a client with that many appends unacknowledged waits for one before its next, as an MQTT
 * publisher with an in-flight limit does (`-c16-w1`: 16 clients, one publish in flight each).
 */
export function rateScenario(valueBytes: number, durability: DurabilityMode, rate: number, appenders: number, window = 0): Scenario {
  const name = `rate-${formatSize(valueBytes)}-${durability}-r${rate}-c${appenders}${window > 0 ? `-w${window}` : ''}`;
  return { kind: 'rate', name, valueBytes, durability, appenders, rate, window };
}

export function readScenario(valueBytes: number, recordsPerAppend: number): Scenario {
  return { kind: 'read', name: `read-${formatSize(valueBytes)}-b${recordsPerAppend}`, valueBytes, recordsPerAppend };
}

function batchFits(valueBytes: number, records: number): boolean {
  return records >= 1 && records * (EMPTY_RECORD_BYTES + valueBytes) <= MAX_APPEND_BYTES;
}

/** The scenario a name describes, or null when it is not a valid spec. */
export function parseScenario(name: string): Scenario | null {
  const read = /^read-(\w+)-b(\d+)$/.exec(name);
  if (read !== null) {
    const size = parseSize(read[1] ?? '');
    const records = Number(read[2]);
    return size === null || !batchFits(size, records) ? null : readScenario(size, records);
  }
  const rate = /^rate-(\w+)-(fsync|interval|none)-r(\d+)-c(\d+)(?:-w(\d+))?$/.exec(name);
  if (rate !== null) {
    const [, sizeText = '', durability, rateText = '', appendersText = '', windowText] = rate;
    const size = parseSize(sizeText);
    const perSecond = Number(rateText);
    const appenders = Number(appendersText);
    const window = windowText === undefined ? 0 : Number(windowText);
    if (size === null || appenders < 1 || appenders > MAX_APPENDERS || perSecond < 1 || perSecond > MAX_RATE || (windowText !== undefined && window < 1) || window > MAX_WINDOW || !batchFits(size, 1)) return null;
    return rateScenario(size, durability as DurabilityMode, perSecond, appenders, window);
  }
  const append = /^append-(\w+)-(fsync|interval|none)-c(\d+)-b(\d+)$/.exec(name);
  if (append === null) return null;
  const [, sizeText = '', durability, appendersText = '', recordsText = ''] = append;
  const size = parseSize(sizeText);
  const appenders = Number(appendersText);
  const records = Number(recordsText);
  if (size === null || appenders < 1 || appenders > MAX_APPENDERS || !batchFits(size, records)) return null;
  return appendScenario(size, durability as DurabilityMode, appenders, records);
}

export function defaultScenarios(settings: ScenarioDefaults = DEFAULT_SCENARIO_SETTINGS): Scenario[] {
  const scenarios: Scenario[] = [];
  for (const size of VALUE_SIZES) {
    for (const durability of DURABILITY_MODES) {
      for (const appenders of APPENDER_COUNTS) scenarios.push(appendScenario(size, durability, appenders, settings.recordsPerAppend));
    }
  }
  for (const size of VALUE_SIZES) scenarios.push(appendScenario(size, 'none', 1, settings.batchRecords));
  for (const size of VALUE_SIZES) scenarios.push(appendScenario(size, 'fsync', GROUP_COMMIT_APPENDERS, settings.groupCommitRecords));
  for (const size of VALUE_SIZES) scenarios.push(readScenario(size, settings.readBatchRecords));
  return dedupe(scenarios);
}

function dedupe(scenarios: Scenario[]): Scenario[] {
  const seen = new Set<string>();
  return scenarios.filter((scenario) => !seen.has(scenario.name) && seen.add(scenario.name) !== undefined);
}

/**
 * Scenarios matching any pattern: a pattern that is a full spec selects exactly that scenario
 * (in the default list or not); otherwise `*` matches any run of characters, and a pattern
 * without `*` matches names containing it. Returns the unmatched patterns too.
 */
export function selectScenarios(all: Scenario[], patterns: string[]): { selected: Scenario[]; unmatched: string[] } {
  if (patterns.length === 0) return { selected: all, unmatched: [] };
  const selected: Scenario[] = [];
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    const spec = parseScenario(pattern);
    const matcher = pattern.includes('*') ? globMatcher(pattern) : (name: string) => name.includes(pattern);
    const matches = spec !== null ? [spec] : all.filter((scenario) => matcher(scenario.name));
    if (matches.length === 0) unmatched.push(pattern);
    selected.push(...matches);
  }
  return { selected: dedupe(selected), unmatched };
}

function globMatcher(pattern: string): (name: string) => boolean {
  const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}

export interface BenchLimits {
  /** Measured time per scenario, in ms. */
  durationMs: number;
  /** Unmeasured warm-up before each append scenario (JIT, first segment), in ms. */
  warmupMs: number;
  /** Log bytes the warm-up and the measured phase may each write (append), or the fill before a read. */
  maxBytes: number;
}

export interface BenchContext {
  journal: Journal;
  limits: BenchLimits;
  /** Monotonic clock in ms (performance.now), passed in so the workload never reads one itself. */
  now: () => number;
  signal: AbortSignal;
  /** Unique per scenario run; the shard is created under this name and deleted afterwards. */
  shardName: string;
  /** Where a rate scenario's raw fdatasync probe puts its scratch file (the journal's disk). */
  probeDirectory?: string;
  /** Told the fraction of a long (rate) scenario done, for a progress bar. */
  onProgress?: (fraction: number) => void;
}

/** Medians across runs are taken per metric, so every metric is a plain number. */
export type Metrics = Record<string, number>;

export async function runScenario(scenario: Scenario, context: BenchContext): Promise<Metrics> {
  const durability = scenario.kind === 'read' ? 'none' : scenario.durability;
  await context.journal.createShard(context.shardName, { durability });
  try {
    if (scenario.kind === 'rate') return await runRate(scenario, context);
    return scenario.kind === 'append' ? await runAppend(scenario, context) : await runRead(scenario, context);
  } finally {
    await context.journal.deleteShard(context.shardName);
  }
}

function makeRecords(valueBytes: number, count: number): RecordInput[] {
  const value = Buffer.alloc(valueBytes);
  for (let i = 0; i < valueBytes; i += 1) value[i] = (i * 31 + 7) & 0xff;
  return Array.from({ length: count }, () => ({ value }));
}

/** Log bytes of one append's batch, for the maxBytes bound; the batch header is 56 bytes. */
function batchLogBytes(records: RecordInput[]): number {
  let bytes = 56;
  for (const record of records) bytes += encodedRecordBytes({ key: record.key ?? null, value: record.value, headers: record.headers ?? [] });
  return bytes;
}

interface AppendLoad {
  records: RecordInput[];
  appenders: number;
  untilMs: number;
  maxAppends: number;
  histogram: LatencyHistogram | null;
}

/** Runs `appenders` loops of append-and-wait; returns the acknowledged appends. */
async function driveAppenders(context: BenchContext, load: AppendLoad): Promise<number> {
  const { journal, now, signal, shardName } = context;
  let started = 0;
  let acknowledged = 0;
  const appender = async (): Promise<void> => {
    while (!signal.aborted && started < load.maxAppends && now() < load.untilMs) {
      started += 1;
      const start = now();
      await journal.append(shardName, load.records);
      load.histogram?.record((now() - start) * 1e6);
      acknowledged += 1;
    }
  };
  await Promise.all(Array.from({ length: load.appenders }, appender));
  return acknowledged;
}

async function runAppend(scenario: Extract<Scenario, { kind: 'append' }>, context: BenchContext): Promise<Metrics> {
  const { journal, limits, now, shardName } = context;
  const records = makeRecords(scenario.valueBytes, scenario.recordsPerAppend);
  const bytesPerAppend = batchLogBytes(records);
  const maxAppends = Math.max(1, Math.floor(limits.maxBytes / bytesPerAppend));
  await driveAppenders(context, { records, appenders: scenario.appenders, untilMs: now() + limits.warmupMs, maxAppends, histogram: null });
  const sizeBefore = journal.info(shardName).sizeBytes;
  const histogram = new LatencyHistogram();
  const start = now();
  const appends = await driveAppenders(context, { records, appenders: scenario.appenders, untilMs: start + limits.durationMs, maxAppends, histogram });
  const seconds = (now() - start) / 1000;
  const logBytes = journal.info(shardName).sizeBytes - sizeBefore;
  const recordCount = appends * scenario.recordsPerAppend;
  return {
    seconds,
    appends,
    records: recordCount,
    recordsPerSecond: recordCount / seconds,
    appendsPerSecond: appends / seconds,
    payloadMBps: (recordCount * scenario.valueBytes) / seconds / 1e6,
    logMBps: logBytes / seconds / 1e6,
    p50Us: histogram.quantileNs(0.5) / 1000,
    p99Us: histogram.quantileNs(0.99) / 1000,
    p999Us: histogram.quantileNs(0.999) / 1000,
    maxUs: histogram.quantileNs(1) / 1000,
  };
}

/**
 * Appends one record per slot of a fixed schedule (rate/s across all appenders): an append is
 * issued when its slot comes, unless its client's window is full (see rateScenario). The pacer
 * spins on setImmediate between slots (timers have 1 ms granularity, slots are 0.2 ms apart at
 * 5,000/s), so it costs one core but lets the journal's I/O callbacks run between sends.
 * Latency is from the append call to its acknowledgement; `lagP99Us` says how late the pacer
 * issued appends behind their slots (a loaded machine), and `fromSlotP99Us` counts that lag in.
 * The run stops at its duration, at maxBytes, or on abort; then the raw disk probe runs.
 */
async function runRate(scenario: Extract<Scenario, { kind: 'rate' }>, context: BenchContext): Promise<Metrics> {
  const { journal, limits, now, signal, shardName } = context;
  const records = makeRecords(scenario.valueBytes, 1);
  const maxAppends = Math.max(1, Math.floor(limits.maxBytes / batchLogBytes(records)));
  const pace = async (durationMs: number, measure: boolean): Promise<{ appends: number; seconds: number; histogram: LatencyHistogram; fromSlot: LatencyHistogram; lag: LatencyHistogram }> => {
    const histogram = new LatencyHistogram();
    const fromSlot = new LatencyHistogram();
    const lag = new LatencyHistogram();
    const intervalMs = 1000 / scenario.rate;
    const start = now();
    // The epsilon keeps --count exact where durationMs was computed as count / rate.
    const slots = Math.min(maxAppends, Math.max(1, Math.floor(durationMs / intervalMs + 1e-6)));
    let issued = 0;
    let acknowledged = 0;
    let failure: unknown = null;
    const inFlight = new Set<Promise<void>>();
    /** Per client: its appends in flight, and who waits for one of them to be acknowledged. */
    const clients = Array.from({ length: scenario.appenders }, () => ({ inFlight: 0, waiting: null as (() => void) | null }));
    let reported = 0;
    while (issued < slots && !signal.aborted && failure === null) {
      const slotAt = start + issued * intervalMs;
      const t = now();
      if (t < slotAt) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      // Clients take slots in turn; a client whose window is full sends this slot's append
      // late, once one of its own is acknowledged (the pacer waits with it, as one thread would).
      const client = clients[issued % clients.length] ?? { inFlight: 0, waiting: null };
      if (scenario.window > 0 && client.inFlight >= scenario.window) {
        await new Promise<void>((resolve) => {
          client.waiting = resolve;
        });
        continue;
      }
      issued += 1;
      client.inFlight += 1;
      const sent = now();
      const append = journal.append(shardName, records).then(
        () => {
          const acked = now();
          if (measure) {
            histogram.record((acked - sent) * 1e6);
            fromSlot.record((acked - slotAt) * 1e6);
            lag.record((sent - slotAt) * 1e6);
          }
          acknowledged += 1;
        },
        (error: unknown) => {
          failure ??= error;
        },
      ).finally(() => {
        client.inFlight -= 1;
        const waiting = client.waiting;
        client.waiting = null;
        waiting?.();
      });
      inFlight.add(append);
      void append.finally(() => inFlight.delete(append));
      if (measure && context.onProgress !== undefined && issued - reported >= scenario.rate / 10) {
        reported = issued;
        context.onProgress(issued / slots);
      }
    }
    await Promise.all(inFlight);
    if (failure !== null) throw failure instanceof Error ? failure : new Error(String(failure));
    return { appends: acknowledged, seconds: (now() - start) / 1000, histogram, fromSlot, lag };
  };
  if (limits.warmupMs > 0) await pace(limits.warmupMs, false);
  const run = await pace(limits.durationMs, true);
  const probe = await probeDataSync(context.probeDirectory, Math.min(1000, Math.max(200, Math.round(run.appends / 10))), signal);
  return {
    seconds: run.seconds,
    appends: run.appends,
    records: run.appends,
    recordsPerSecond: run.appends / run.seconds,
    appendsPerSecond: run.appends / run.seconds,
    payloadMBps: (run.appends * scenario.valueBytes) / run.seconds / 1e6,
    p50Us: run.histogram.quantileNs(0.5) / 1000,
    p99Us: run.histogram.quantileNs(0.99) / 1000,
    p999Us: run.histogram.quantileNs(0.999) / 1000,
    maxUs: run.histogram.quantileNs(1) / 1000,
    fromSlotP99Us: run.fromSlot.quantileNs(0.99) / 1000,
    lagP99Us: run.lag.quantileNs(0.99) / 1000,
    ...probe,
  };
}

/**
 * The disk's own write + fdatasync latency, measured right after a rate scenario in the same
 * place: `count` appends of 4 KiB to a scratch file, each followed by fdatasync, with
 * synchronous calls on the main thread (no thread-pool hop): the floor an acknowledgement
 * in fsync mode cannot beat. The first 10% are a warm-up (the file's first blocks).
 */
async function probeDataSync(directory: string | undefined, count: number, signal: AbortSignal): Promise<Metrics> {
  if (directory === undefined) return {};
  const path = join(directory, `fdatasync-probe-${process.pid}`);
  const histogram = new LatencyHistogram();
  const block = Buffer.alloc(PROBE_WRITE_BYTES, 0x5a);
  const fd = openSync(path, 'w');
  try {
    const warmup = Math.ceil(count / 10);
    for (let i = 0; i < warmup + count && !signal.aborted; i += 1) {
      const start = process.hrtime.bigint();
      writeSync(fd, block, 0, block.length, i * block.length);
      fdatasyncSync(fd);
      if (i >= warmup) histogram.record(Number(process.hrtime.bigint() - start));
      // Lets a SIGINT's handler run during a long probe.
      if (i % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    closeSync(fd);
    await rm(path, { force: true });
  }
  return {
    diskSyncs: histogram.count,
    diskSyncP50Us: histogram.quantileNs(0.5) / 1000,
    diskSyncP99Us: histogram.quantileNs(0.99) / 1000,
    diskSyncP999Us: histogram.quantileNs(0.999) / 1000,
  };
}

/**
 * Fills the shard (durability none, so the fill is quick and stays in the page cache), then
 * reads it front to back: through Journal.read (checked, decoded records), and as raw file
 * bytes with and without an xxhash64 pass, which bound what Journal.read could reach. With a
 * warm-up, unmeasured Journal.read passes run for that long first (at least one): the decode
 * path needs a few passes before the JIT and the young generation settle.
 */
async function runRead(scenario: Extract<Scenario, { kind: 'read' }>, context: BenchContext): Promise<Metrics> {
  const { journal, limits, now, signal, shardName } = context;
  const records = makeRecords(scenario.valueBytes, scenario.recordsPerAppend);
  const maxAppends = Math.max(1, Math.floor(Math.min(limits.maxBytes, READ_FILL_MAX_BYTES) / batchLogBytes(records)));
  await driveAppenders(context, { records, appenders: 1, untilMs: Number.POSITIVE_INFINITY, maxAppends, histogram: null });
  const info = journal.info(shardName);
  const logBytes = info.sizeBytes;
  const readAll = () => readAllRecords(journal, shardName, info.startOffset, info.nextOffset);
  if (limits.warmupMs > 0) await timePasses(now, signal, limits.warmupMs, readAll);
  const decoded = await timePasses(now, signal, limits.durationMs, readAll);
  const readBatches = () => readAllBatches(journal, shardName, info.startOffset, info.nextOffset);
  if (limits.warmupMs > 0) await timePasses(now, signal, limits.warmupMs / 4, readBatches);
  const verifiedBatches = await timePasses(now, signal, limits.durationMs / 2, readBatches);
  const paths = journal.shard(shardName).segmentPaths().map((segment) => segment.logPath);
  const raw = await timePasses(now, signal, limits.durationMs / 4, () => readFiles(paths, null));
  const hasher = await xxhash();
  const hashed = await timePasses(now, signal, limits.durationMs / 4, () => readFiles(paths, (chunk) => hasher.h64Raw(chunk, 0n)));
  const recordCount = info.nextOffset - info.startOffset;
  return {
    seconds: decoded.seconds,
    passes: decoded.passes,
    records: recordCount,
    logBytes,
    recordsPerSecond: (recordCount * decoded.passes) / decoded.seconds,
    payloadMBps: (recordCount * scenario.valueBytes * decoded.passes) / decoded.seconds / 1e6,
    logMBps: (logBytes * decoded.passes) / decoded.seconds / 1e6,
    batchMBps: (logBytes * verifiedBatches.passes) / verifiedBatches.seconds / 1e6,
    rawReadMBps: (logBytes * raw.passes) / raw.seconds / 1e6,
    rawChecksumMBps: (logBytes * hashed.passes) / hashed.seconds / 1e6,
  };
}

/** Repeats `pass` until `durationMs` has passed (at least once); returns passes and seconds. */
async function timePasses(now: () => number, signal: AbortSignal, durationMs: number, pass: () => Promise<void>): Promise<{ passes: number; seconds: number }> {
  const start = now();
  let passes = 0;
  do {
    await pass();
    passes += 1;
  } while (!signal.aborted && now() - start < durationMs);
  return { passes, seconds: (now() - start) / 1000 };
}

async function readAllRecords(journal: Journal, shardName: string, from: number, end: number): Promise<void> {
  let next = from;
  let valueBytes = 0;
  while (next < end) {
    const records = await journal.read(shardName, next, { maxRecords: READ_MAX_RECORDS, maxBytes: READ_MAX_BYTES });
    const last = records[records.length - 1];
    if (last === undefined) throw new Error(`read of shard ${shardName} at offset ${next} returned nothing before offset ${end}`);
    for (const record of records) valueBytes += record.value?.length ?? 0;
    next = last.offset + 1;
  }
  if (valueBytes === 0) throw new Error(`read of shard ${shardName} returned no value bytes`);
}

/** Reads the shard as verified batches (Journal.readBatches: checksums checked, no decoding). */
async function readAllBatches(journal: Journal, shardName: string, from: number, end: number): Promise<void> {
  let next = from;
  while (next < end) {
    const { batches, next: after } = await journal.readBatches(shardName, next, { maxBytes: BATCH_READ_MAX_BYTES });
    if (batches.length === 0) throw new Error(`batch read of shard ${shardName} at offset ${next} returned nothing before offset ${end}`);
    next = after;
  }
}

async function readFiles(paths: string[], onChunk: ((chunk: Uint8Array) => unknown) | null): Promise<void> {
  const buffer = Buffer.allocUnsafe(RAW_READ_CHUNK_BYTES);
  for (const path of paths) {
    const handle = await open(path, 'r');
    try {
      let position = 0;
      while (true) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        onChunk?.(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The per-metric median of several runs' metrics. */
export function medianMetrics(runs: Metrics[]): Metrics {
  const result: Metrics = {};
  for (const key of Object.keys(runs[0] ?? {})) result[key] = median(runs.map((run) => run[key] ?? Number.NaN));
  return result;
}
