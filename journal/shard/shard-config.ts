// Per-shard settings: defaults with units, validated once when a shard is created or opened.
import { JournalErrors } from '../errors.js';

export type DurabilityMode = 'fsync' | 'interval' | 'none';

export interface ShardConfig {
  /** fsync: an append resolves once its bytes are on disk (group commit); interval: fsync every fsyncIntervalMs; none: leave it to the OS. */
  durability: DurabilityMode;
  fsyncIntervalMs: number;
  /** A segment rolls when the next batch would take it past this size. */
  segmentBytes: number;
  /** A segment rolls when its first batch is older than this. */
  segmentMs: number;
  /** Sealed segments whose newest record is older than this are deleted; null keeps them. */
  retentionMs: number | null;
  /** Oldest sealed segments are deleted while the shard is larger than this; null keeps them. */
  retentionBytes: number | null;
  /** Compacted shards keep only the latest record per key. */
  compacted: boolean;
  /** How long compaction keeps a tombstone that is the latest record of its key. */
  tombstoneRetentionMs: number;
  maxRecordBytes: number;
  /** Largest batch one append may produce. */
  maxBatchBytes: number;
  indexIntervalBytes: number;
  /** Bytes of appends that may wait for the disk; beyond it appends are refused (backpressure). */
  maxQueuedAppendBytes: number;
}

export const MiB = 1024 * 1024;

export const DEFAULT_SHARD_CONFIG: ShardConfig = {
  durability: 'fsync',
  fsyncIntervalMs: 100,
  segmentBytes: 128 * MiB,
  segmentMs: 7 * 24 * 3600 * 1000,
  retentionMs: null,
  retentionBytes: null,
  compacted: false,
  tombstoneRetentionMs: 24 * 3600 * 1000,
  maxRecordBytes: 8 * MiB,
  maxBatchBytes: 64 * MiB,
  indexIntervalBytes: 4096,
  maxQueuedAppendBytes: 256 * MiB,
};

/** Readers refuse a batch that claims to be larger than this, whatever the shard's settings were. */
export const HARD_MAX_BATCH_BYTES = 1024 * MiB;
const MAX_SEGMENT_BYTES = 2 ** 31;

function integerIn(setting: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw JournalErrors.invalidConfig.create({}, setting, value, `must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function nullableIntegerIn(setting: string, value: unknown, min: number): number | null {
  if (value === null) return null;
  return integerIn(setting, value, min, Number.MAX_SAFE_INTEGER);
}

export function resolveShardConfig(partial: Partial<ShardConfig> = {}): ShardConfig {
  const known = new Set(Object.keys(DEFAULT_SHARD_CONFIG));
  for (const key of Object.keys(partial)) {
    if (!known.has(key)) throw JournalErrors.invalidConfig.create({}, key, (partial as Record<string, unknown>)[key], `unknown setting; known: ${[...known].join(', ')}`);
  }
  const merged = { ...DEFAULT_SHARD_CONFIG, ...stripUndefined(partial) };
  if (!['fsync', 'interval', 'none'].includes(merged.durability)) {
    throw JournalErrors.invalidConfig.create({}, 'durability', merged.durability, 'must be fsync, interval or none');
  }
  if (typeof merged.compacted !== 'boolean') throw JournalErrors.invalidConfig.create({}, 'compacted', merged.compacted, 'must be true or false');
  const config: ShardConfig = {
    durability: merged.durability,
    fsyncIntervalMs: integerIn('fsyncIntervalMs', merged.fsyncIntervalMs, 1, 3_600_000),
    segmentBytes: integerIn('segmentBytes', merged.segmentBytes, 1024, MAX_SEGMENT_BYTES),
    segmentMs: integerIn('segmentMs', merged.segmentMs, 1, Number.MAX_SAFE_INTEGER),
    retentionMs: nullableIntegerIn('retentionMs', merged.retentionMs, 1),
    retentionBytes: nullableIntegerIn('retentionBytes', merged.retentionBytes, 1),
    compacted: merged.compacted,
    tombstoneRetentionMs: integerIn('tombstoneRetentionMs', merged.tombstoneRetentionMs, 0, Number.MAX_SAFE_INTEGER),
    maxRecordBytes: integerIn('maxRecordBytes', merged.maxRecordBytes, 1, 256 * MiB),
    maxBatchBytes: integerIn('maxBatchBytes', merged.maxBatchBytes, 1024, 512 * MiB),
    indexIntervalBytes: integerIn('indexIntervalBytes', merged.indexIntervalBytes, 1, 64 * MiB),
    maxQueuedAppendBytes: integerIn('maxQueuedAppendBytes', merged.maxQueuedAppendBytes, 1024, 4096 * MiB),
  };
  if (config.maxRecordBytes > config.maxBatchBytes) {
    throw JournalErrors.invalidConfig.create({}, 'maxRecordBytes', config.maxRecordBytes, `must not exceed maxBatchBytes=${config.maxBatchBytes}`);
  }
  return config;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
