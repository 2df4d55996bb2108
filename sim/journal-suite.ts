// The journal power-cut suite: a seeded random workload over a Journal on a SimulatedDisk,
// with power cut at random points (some in the middle of group commits), reopened, and checked
// against a model of what was acknowledged.
//
// Properties checked after every reopen:
// - every append acknowledged by an fsync shard is there, intact, at its offsets, unless
//   retention (whole segments below startOffset), compaction (a later record of the same key
//   is there) or a completed truncateAfter removed it;
// - every record served decodes and is exactly what some append of this run wrote for that
//   shard, at the offset it was acknowledged at if it was acknowledged;
// - offsets of non-compacted shards are dense from startOffset to nextOffset;
// - an offset acknowledged by an fsync shard is never acknowledged again to another append
//   (unless truncateAfter gave it back).
// interval and none shards are checked for integrity only: they promise nothing on a power cut.
// The 'faults' variant adds random EIO/ENOSPC: a failed append must reject with a coded error,
// the shard must refuse the next append until RECOVERY_BACKOFF_MS passed on the journal clock,
// and nothing acknowledged may be lost. The unsafe variants turn durability off on purpose so
// the self-tests can show the checks catch it.
//
// Everything random comes from mulberry32(seed); the clock is manual and no real timer runs
// (interval shards get an hour-long interval), so a seed replays exactly.
import pino from 'pino';
import { isShardlineError } from '../journal/index.js';
import { Journal, type JournalOptions } from '../journal/index.js';
import type { JournalRecord, RecordInput } from '../journal/index.js';
import type { DurabilityMode } from '../journal/index.js';
import { RECOVERY_BACKOFF_MS } from '../journal/testing.js';
import { mulberry32, type Random } from '../journal/testing.js';
import { SimulatedDisk, type DiskOperation } from '../journal/testing.js';
import { NO_LOCK_PROBE } from '../journal/testing.js';
import type { SimFailure, SimSuite } from './suite.js';

const DIRECTORY = '/data/journal';
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
const FAULT_OPERATIONS: DiskOperation[] = ['open', 'writev', 'write', 'datasync', 'sync', 'truncate', 'syncDirectory', 'rename', 'unlink', 'writeFile', 'handleWriteFile'];
/** A wedged promise is a bug too; generous, because a whole seed takes milliseconds. */
const HANG_MS = 20_000;

/** One append this run issued: what it wrote, and where it was acknowledged (if it was). */
interface Attempt {
  id: number;
  shard: string;
  records: { key: Buffer | null; value: Buffer }[];
  ackedAt: number | null;
}

interface ShardModel {
  name: string;
  durability: DurabilityMode;
  compacted: boolean;
  /** offset → the attempt and record index acknowledged there, while it may still be read. */
  acked: Map<number, { attempt: Attempt; index: number; optional: boolean }>;
  compactedOnce: boolean;
}

class CheckFailed extends Error {}

interface Options {
  variant?: string;
}

const VARIANTS = ['faults', 'skip-data-sync', 'skip-roll-directory-sync'];

export const journalSuite: SimSuite = {
  name: 'journal',
  summary: 'random appends, rolls, retention, compaction and truncation over a simulated disk, with power cuts; acknowledged fsync appends must survive intact',
  defaultSeeds: 1000,
  variants: VARIANTS,
  runSeed: async (seed, options) => {
    if (options.variant !== undefined && !VARIANTS.includes(options.variant)) throw new Error(`unknown variant ${options.variant} (known: ${VARIANTS.join(', ')})`);
    const run = new JournalRun(seed, options);
    try {
      await withHangGuard(run.run());
      return null;
    } catch (error) {
      const message = error instanceof CheckFailed ? error.message : `unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
      return { seed, message, detail: `${run.log.slice(-40).join('\n')}\n--- disk ---\n${run.disk.describe()}` } satisfies SimFailure;
    }
  },
};

async function withHangGuard<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`the run did not finish within ${HANG_MS} ms: some journal promise never settled`)), HANG_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

class JournalRun {
  readonly disk: SimulatedDisk;
  readonly log: string[] = [];
  private readonly random: Random;
  private readonly faults: boolean;
  private readonly unsafe: JournalOptions['unsafe'];
  private now = 1_700_000_000_000;
  private journal!: Journal;
  private readonly shards: ShardModel[] = [];
  private readonly attempts = new Map<number, Attempt>();
  private nextAttempt = 1;
  private cuts = 0;

  constructor(readonly seed: number, options: Options) {
    this.random = mulberry32(seed);
    // Its own stream, so the disk's draws do not shift the workload's when the journal changes.
    this.disk = new SimulatedDisk({ seed: (seed ^ 0x5bd1e995) >>> 0 });
    this.faults = options.variant === 'faults';
    this.unsafe = options.variant === 'skip-data-sync' ? { skipDataSync: true } : options.variant === 'skip-roll-directory-sync' ? { skipRollDirectorySync: true } : undefined;
  }

  private chance(p: number): boolean {
    return this.random.next() < p;
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.random.int(items.length)] as T;
  }

  async run(): Promise<void> {
    // The operator's part: a data directory that exists durably before the journal starts.
    const fs = this.disk.mount();
    await fs.mkdir(DIRECTORY, { recursive: true });
    await fs.syncDirectory('/');
    await fs.syncDirectory('/data');
    await this.open();
    const shardCount = 1 + this.random.int(3);
    for (let i = 0; i < shardCount; i++) {
      // The first shard is always fsync, so every seed checks durability.
      const durability: DurabilityMode = i === 0 ? 'fsync' : this.pick<DurabilityMode>(['fsync', 'fsync', 'fsync', 'interval', 'none']);
      const compacted = durability === 'fsync' && this.chance(0.3);
      const name = `s${i}`;
      const config = {
        durability,
        fsyncIntervalMs: 3_600_000,
        segmentBytes: 1024 + this.random.int(2048),
        compacted,
        retentionBytes: this.chance(0.3) ? 3000 + this.random.int(6000) : null,
        retentionMs: this.chance(0.3) ? 2000 + this.random.int(8000) : null,
      };
      await this.journal.createShard(name, config);
      this.shards.push({ name, durability, compacted, acked: new Map(), compactedOnce: false });
      this.note(`create ${name} ${JSON.stringify(config)}`);
    }
    this.faultsArmed = this.faults;
    this.armFaults();
    const cuts = 1 + this.random.int(3);
    for (let round = 0; round < cuts; round++) {
      const steps = 3 + this.random.int(8);
      for (let step = 0; step < steps; step++) await this.step();
      await this.cut();
      await this.open();
      await this.check();
    }
  }

  private note(line: string): void {
    this.log.push(`[cut ${this.cuts} ops ${this.disk.operationCount}] ${line}`);
  }

  private async open(): Promise<void> {
    // Faults while opening are not what this suite is about (the opening code has its own
    // tests); they would only end the seed early.
    this.disk.setRandomFaults(null);
    const clock = (): number => this.now;
    this.journal = await Journal.open(DIRECTORY, {
      fileSystem: this.disk.mount(),
      clock,
      logger: pino({ level: process.env.SIM_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
      retentionCheckMs: 0,
      lockProbe: NO_LOCK_PROBE,
      ...(this.unsafe === undefined ? {} : { unsafe: this.unsafe }),
    });
    this.note('open');
    this.armFaults();
  }

  /** Faults hit the workload only: shards are created and the journal opened without them. */
  private faultsArmed = false;

  private armFaults(): void {
    if (this.faultsArmed) this.disk.setRandomFaults({ probability: 0.03, codes: ['EIO', 'ENOSPC'], operations: FAULT_OPERATIONS });
  }

  private async step(): Promise<void> {
    const roll = this.random.int(100);
    if (roll < 55) await this.appendBurst();
    else if (roll < 65) await this.rollNow();
    else if (roll < 75) {
      this.now += this.random.int(3000);
      await this.settle('enforceRetention', this.journal.enforceRetention());
    } else if (roll < 83) await this.compact();
    else if (roll < 90) await this.truncate();
    else this.now += this.random.int(1500);
  }

  private attemptFor(shard: ShardModel): Attempt {
    const id = this.nextAttempt++;
    const count = 1 + this.random.int(3);
    const records: Attempt['records'] = [];
    for (let i = 0; i < count; i++) {
      const key = shard.compacted || this.chance(0.3) ? Buffer.from(this.pick(KEYS)) : null;
      // The id in front names the attempt; the filler makes batch sizes vary so rolls land anywhere.
      const filler = String.fromCharCode(97 + this.random.int(26)).repeat(this.random.int(300));
      records.push({ key, value: Buffer.from(`${shard.name}/${id}/${i}/${filler}`) });
    }
    const attempt: Attempt = { id, shard: shard.name, records, ackedAt: null };
    this.attempts.set(id, attempt);
    return attempt;
  }

  /** Starts concurrent appends (they form group commits); resolves when all have settled. */
  private startBurst(): Promise<void>[] {
    const count = 1 + this.random.int(6);
    const started: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const shard = this.pick(this.shards);
      const attempt = this.attemptFor(shard);
      const inputs: RecordInput[] = attempt.records.map((record) => ({ key: record.key, value: record.value }));
      started.push(
        this.journal.append(shard.name, inputs).then(
          (result) => this.acknowledge(shard, attempt, result.baseOffset, result.lastOffset),
          (error: unknown) => this.appendFailed(shard, attempt, error),
        ),
      );
    }
    return started;
  }

  private async appendBurst(): Promise<void> {
    const started = this.startBurst();
    await Promise.all(started);
    await this.checkRefusals();
  }

  private readonly failedShards = new Map<string, string>();

  private acknowledge(shard: ShardModel, attempt: Attempt, baseOffset: number, lastOffset: number): void {
    if (lastOffset - baseOffset + 1 !== attempt.records.length) throw new CheckFailed(`append #${attempt.id} on ${shard.name} was acknowledged with ${lastOffset - baseOffset + 1} offsets for ${attempt.records.length} records`);
    this.note(`ack #${attempt.id} ${shard.name} ${baseOffset}..${lastOffset}`);
    attempt.ackedAt = baseOffset;
    for (let index = 0; index < attempt.records.length; index++) {
      const offset = baseOffset + index;
      const previous = shard.acked.get(offset);
      if (previous !== undefined && previous.attempt !== attempt && shard.durability === 'fsync' && !previous.optional) {
        throw new CheckFailed(`offset ${offset} of fsync shard ${shard.name} was handed out twice: to append #${previous.attempt.id} and then to append #${attempt.id} (${this.cuts} cuts so far)`);
      }
      shard.acked.set(offset, { attempt, index, optional: false });
    }
  }

  private appendFailed(shard: ShardModel, attempt: Attempt, error: unknown): void {
    const code = isShardlineError(error) ? error.code : undefined;
    this.note(`append #${attempt.id} ${shard.name} failed: ${code ?? String(error)}`);
    if (code === undefined || !code.startsWith('SL_JOURNAL_')) {
      throw new CheckFailed(`append #${attempt.id} on ${shard.name} failed without a coded error: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (this.disk.powerIsOn) this.failedShards.set(shard.name, code);
  }

  /**
   * After a failed append (power still on) the shard must refuse appends with the same code
   * until RECOVERY_BACKOFF_MS passed; then an append may go through again.
   */
  private async checkRefusals(): Promise<void> {
    const failed = [...this.failedShards];
    this.failedShards.clear();
    if (!this.faults || !this.disk.powerIsOn) return;
    for (const [name, code] of failed) {
      const shard = this.shards.find((candidate) => candidate.name === name) as ShardModel;
      const attempt = this.attemptFor(shard);
      try {
        const result = await this.journal.append(name, attempt.records.map((record) => ({ key: record.key, value: record.value })));
        throw new CheckFailed(`shard ${name} failed with ${code} but took append #${attempt.id} (offset ${result.baseOffset}) within RECOVERY_BACKOFF_MS`);
      } catch (error) {
        if (error instanceof CheckFailed) throw error;
        const refused = isShardlineError(error) ? error.code : String(error);
        if (refused !== code) throw new CheckFailed(`shard ${name} failed with ${code} but refused the next append with ${refused}`);
        this.note(`refused #${attempt.id} ${name}: ${refused}`);
      }
    }
    if (failed.length > 0) {
      this.now += RECOVERY_BACKOFF_MS + this.random.int(500);
      this.failedShards.clear();
      await Promise.all(this.startBurst());
      this.failedShards.clear();
    }
  }

  private async rollNow(): Promise<void> {
    const shard = this.pick(this.shards);
    await this.settle(`roll ${shard.name}`, this.journal.shard(shard.name).rollNow());
  }

  private async compact(): Promise<void> {
    const shard = this.shards.find((candidate) => candidate.compacted);
    if (shard === undefined) return;
    shard.compactedOnce = true;
    await this.settle(`compact ${shard.name}`, this.journal.compact(shard.name));
  }

  private async truncate(): Promise<void> {
    // Compacted shards too: seeds 7 and 43 once showed truncateAfter there handing offsets out
    // again (nextOffset taken from what compaction had left).
    const shard = this.pick(this.shards);
    const info = this.journal.info(shard.name);
    if (info.nextOffset === info.startOffset) return;
    const offset = info.startOffset - 1 + this.random.int(info.nextOffset - info.startOffset + 1);
    // Until it completes, what lies above the cut may or may not be there after a power cut.
    for (const [at, entry] of shard.acked) if (at > offset) entry.optional = true;
    if (shard.compacted) {
      // Compaction treats every record as final: a value it dropped because a later record of
      // the key superseded it does not come back when truncation removes that later record
      // (the journal-format contract; replication will compact only below its commit point).
      // Also when the truncation fails: it may have taken effect on disk before failing.
      // The later records include unacknowledged ones a failed append left on disk (present
      // after a power cut): compaction counts them as superseding too (seed 1568902054).
      const cutKeys = [...shard.acked].filter(([at]) => at > offset).map(([, entry]) => entry.attempt.records[entry.index]?.key ?? null);
      const above = await this.journal.read(shard.name, offset + 1, { maxRecords: 100_000 }).catch(() => null);
      if (above === null) cutKeys.push(...[...shard.acked.values()].map((entry) => entry.attempt.records[entry.index]?.key ?? null));
      else cutKeys.push(...above.map((record) => record.key));
      for (const [at, entry] of shard.acked) {
        const key = entry.attempt.records[entry.index]?.key ?? null;
        if (at <= offset && key !== null && cutKeys.some((cut) => cut !== null && cut.equals(key))) entry.optional = true;
      }
    }
    if (await this.settle(`truncateAfter ${shard.name} ${offset}`, this.journal.truncateAfter(shard.name, offset))) {
      for (const at of [...shard.acked.keys()]) if (at > offset) shard.acked.delete(at);
    }
  }

  /** Awaits a housekeeping call; with faults or a cut it may fail. Returns whether it succeeded. */
  private async settle(what: string, promise: Promise<unknown>): Promise<boolean> {
    try {
      await promise;
      this.note(what);
      return true;
    } catch (error) {
      this.note(`${what} failed: ${isShardlineError(error) ? error.code : String(error)}`);
      if (!this.faults && this.disk.powerIsOn) throw new CheckFailed(`${what} failed without faults or a power cut: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }

  private async cut(): Promise<void> {
    this.cuts += 1;
    if (this.chance(0.6)) {
      // Somewhere inside the next burst: a group commit, a roll or a sync is cut halfway.
      const after = 1 + this.random.int(25);
      this.disk.powerCutAfterOperations(after);
      this.note(`power cut scheduled after ${after} operations`);
      const work = this.startBurst();
      if (this.chance(0.3)) work.push(this.rollNow());
      await Promise.all(work);
      this.failedShards.clear();
    }
    this.disk.powerCut();
    this.note('power cut');
  }

  /** Reads a whole shard; a read that fails means a record is served corrupt (or not at all). */
  private async readAll(shard: ShardModel, start: number, next: number): Promise<JournalRecord[]> {
    const records: JournalRecord[] = [];
    let from = start;
    while (from < next) {
      let batch: JournalRecord[];
      try {
        batch = await this.journal.read(shard.name, from, { maxRecords: 1000 });
      } catch (error) {
        throw new CheckFailed(`reading ${shard.name} from offset ${from} after cut ${this.cuts} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (batch.length === 0) break;
      records.push(...batch);
      from = (batch[batch.length - 1] as JournalRecord).offset + 1;
    }
    return records;
  }

  private async check(): Promise<void> {
    for (const shard of this.shards) {
      const info = this.journal.info(shard.name);
      const records = await this.readAll(shard, info.startOffset, info.nextOffset);
      const present = new Map<number, JournalRecord>();
      let expected = info.startOffset;
      for (const record of records) {
        if (record.offset < expected) throw new CheckFailed(`${shard.name} served offset ${record.offset} after ${expected - 1} (out of order or twice)`);
        if (!shard.compacted && record.offset !== expected) throw new CheckFailed(`${shard.name} has a gap: offsets ${expected}..${record.offset - 1} missing between startOffset ${info.startOffset} and nextOffset ${info.nextOffset} after cut ${this.cuts}`);
        expected = record.offset + 1;
        this.checkRecord(shard, record);
        present.set(record.offset, record);
      }
      if (!shard.compacted && expected !== info.nextOffset) throw new CheckFailed(`${shard.name} reads end at ${expected} but nextOffset is ${info.nextOffset}`);

      for (const [offset, entry] of [...shard.acked]) {
        if (present.has(offset)) {
          entry.optional = false;
          continue;
        }
        const durable = shard.durability === 'fsync' && !entry.optional && offset >= info.startOffset;
        if (durable && !(shard.compacted && shard.compactedOnce && supersededIn(present, offset, entry.attempt.records[entry.index]?.key ?? null))) {
          throw new CheckFailed(
            `acknowledged record lost: ${shard.name} offset ${offset} (append #${entry.attempt.id}, record ${entry.index}, fsync mode) is gone after power cut ${this.cuts}; shard now holds ${info.startOffset}..${info.nextOffset - 1}`,
          );
        }
        // Lost legitimately (retention, compaction, an unfinished truncation, a non-fsync
        // shard): the offset may be handed out again.
        shard.acked.delete(offset);
      }
      this.note(`checked ${shard.name} ${info.startOffset}..${info.nextOffset - 1} (${records.length} records)`);
    }
  }

  private checkRecord(shard: ShardModel, record: JournalRecord): void {
    const where = `${shard.name} offset ${record.offset} after cut ${this.cuts}`;
    const value = record.value;
    if (value === null) throw new CheckFailed(`${where}: a tombstone nobody wrote`);
    const match = /^([^/]+)\/(\d+)\/(\d+)\//.exec(value.subarray(0, 40).toString('latin1'));
    const attempt = match === null ? undefined : this.attempts.get(Number(match[2]));
    const index = match === null ? -1 : Number(match[3]);
    const written = attempt?.records[index];
    if (attempt === undefined || written === undefined || attempt.shard !== shard.name) {
      throw new CheckFailed(`${where}: corrupt or foreign record served: ${JSON.stringify(value.subarray(0, 40).toString('latin1'))}`);
    }
    if (!written.value.equals(value) || !sameKey(written.key, record.key)) throw new CheckFailed(`${where}: record ${index} of append #${attempt.id} served with different content`);
    if (attempt.ackedAt !== null && attempt.ackedAt + index !== record.offset) {
      // An acknowledged append that a non-fsync shard lost may be written again by nobody, so
      // finding it elsewhere is always wrong.
      throw new CheckFailed(`${where}: record ${index} of append #${attempt.id} was acknowledged at offset ${attempt.ackedAt + index}`);
    }
  }
}

function sameKey(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

/** Compaction may drop a record only when a later one of its key is still there. */
function supersededIn(present: Map<number, JournalRecord>, offset: number, key: Buffer | null): boolean {
  if (key === null) return false;
  for (const [at, record] of present) if (at > offset && record.key !== null && record.key.equals(key)) return true;
  return false;
}
