// The placement settings an operator may change (`shardline ctl cluster settings|set`, the admin
// API's /api/cluster/settings): each with its default, what its value means, and the check a new
// value must pass before it is proposed. They live in placement's replicated state
// (`set-setting`), so every node's controller and store reads the same value; the readers
// (replicationFactor, replaceAfterMs) fall back to the default for a value they cannot use, so
// this check is what keeps an operator's typo from silently meaning the default. Pure.
import type { JsonValue } from '../../placement/metadata/index.js';
import { CREATE_GRACE_SETTING, createGraceMs, DEFAULT_CREATE_GRACE_MS, DEFAULT_REPLACE_AFTER_MS, DEFAULT_REPLICATION_FACTOR, MAX_REPLICATION_FACTOR, REPLACE_AFTER_SETTING, REPLICATION_FACTOR_SETTING, replaceAfterMs, replicationFactor } from './controller-core.js';

export interface PlacementSettingSpec {
  readonly key: string;
  readonly summary: string;
  readonly defaultValue: JsonValue;
  /** The value to store for what the operator gave, or a message saying what is wrong. */
  parse(raw: JsonValue): { value: JsonValue } | { error: string };
  /** What a stored value (absent: undefined) means, in words. */
  describe(stored: JsonValue | undefined): string;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export const PLACEMENT_SETTINGS: readonly PlacementSettingSpec[] = [
  {
    key: REPLICATION_FACTOR_SETTING,
    summary: `replicas of each new shard (1-${MAX_REPLICATION_FACTOR}); existing shards keep theirs`,
    defaultValue: DEFAULT_REPLICATION_FACTOR,
    parse(raw) {
      const factor = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof factor !== 'number' || !Number.isInteger(factor) || factor < 1 || factor > MAX_REPLICATION_FACTOR) return { error: `${REPLICATION_FACTOR_SETTING} must be an integer from 1 to ${MAX_REPLICATION_FACTOR}, got ${JSON.stringify(raw)}` };
      return { value: factor };
    },
    describe: (stored) => `${replicationFactor(stored)} replicas per new shard`,
  },
  {
    key: REPLACE_AFTER_SETTING,
    summary: 'how long a journal node may be gone (lease run out) before its replicas are moved to a spare journal node; 0 or "never" turns it off',
    defaultValue: DEFAULT_REPLACE_AFTER_MS,
    parse(raw) {
      if (raw === 'never' || raw === 0 || raw === '0') return { value: 'never' };
      const match = typeof raw === 'string' ? /^(\d+)(ms|s|m|h)?$/.exec(raw) : null;
      const ms = typeof raw === 'number' ? raw : match === null ? NaN : Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] as number);
      if (!Number.isSafeInteger(ms) || ms < 1) return { error: `${REPLACE_AFTER_SETTING} must be a positive number of milliseconds (or with a unit: 90s, 10m, 2h), 0 or "never", got ${JSON.stringify(raw)}` };
      return { value: ms };
    },
    describe(stored) {
      const ms = replaceAfterMs(stored);
      return Number.isFinite(ms) ? `a journal node gone ${formatMs(ms)} is replaced` : 'journal nodes are never replaced automatically';
    },
  },
  {
    key: CREATE_GRACE_SETTING,
    summary: 'how long a shard a replica lacks may stay missing there before the controller creates it (the creating broker gives its config first); 0 creates at once',
    defaultValue: DEFAULT_CREATE_GRACE_MS,
    parse(raw) {
      const match = typeof raw === 'string' ? /^(\d+)(ms|s|m|h)?$/.exec(raw) : null;
      const ms = typeof raw === 'number' ? raw : match === null ? NaN : Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] as number);
      if (!Number.isSafeInteger(ms) || ms < 0) return { error: `${CREATE_GRACE_SETTING} must be a number of milliseconds, 0 or more (or with a unit: 500ms, 10s), got ${JSON.stringify(raw)}` };
      return { value: ms };
    },
    describe: (stored) => `a missing replica of a shard is created after ${formatMs(createGraceMs(stored))}`,
  },
];

export function placementSetting(key: string): PlacementSettingSpec | undefined {
  return PLACEMENT_SETTINGS.find((spec) => spec.key === key);
}

function formatMs(ms: number): string {
  if (ms === 0) return '0 s';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) if (ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms} ms`;
}
