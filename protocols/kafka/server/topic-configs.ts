// Kafka topic configs that map onto the journal's per-shard settings (journal ShardConfig), and
// how DescribeConfigs and CreateTopics report them. Pure: parsing and describing, no I/O.
//
// Served: retention.ms → retentionMs, retention.bytes → retentionBytes (-1: keep, the journal's
// null), cleanup.policy delete|compact → compacted, max.message.bytes → a limit the Kafka front
// end checks on each produced record batch (the journal's maxBatchBytes measures its own
// encoding of the uncompressed records, not the Kafka batch a client sends, so it cannot carry
// Kafka's meaning). Anything else, and `compact,delete` (the journal has no shard that is both
// compacted and retention-trimmed), is INVALID_CONFIG: refused, never accepted and ignored.
import { KafkaErrorCode, type KafkaStruct } from '../codec/index.js';

export type CleanupPolicy = 'delete' | 'compact';

export interface TopicConfigs {
  retentionMs: number | null;
  retentionBytes: number | null;
  cleanupPolicy: CleanupPolicy;
  maxMessageBytes: number;
}

/** Kafka's default max.message.bytes (1 MiB + the batch overhead). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
export const DEFAULT_TOPIC_CONFIGS: TopicConfigs = { retentionMs: null, retentionBytes: null, cleanupPolicy: 'delete', maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES };

/** Config names as a client spells them → their value as set (only those a topic set explicitly are stored). */
export type ExplicitConfigs = Readonly<Record<string, string>>;

// Kafka's DescribeConfigs config types and sources.
const ConfigType = { INT: 3, LONG: 5, LIST: 7 } as const;
const ConfigSource = { DYNAMIC_TOPIC_CONFIG: 1, STATIC_BROKER_CONFIG: 4, DEFAULT_CONFIG: 5 } as const;

interface ConfigDefinition {
  type: number;
  documentation: string;
  /** undefined: not a valid value. */
  apply(value: string, configs: TopicConfigs): TopicConfigs | undefined;
  show(configs: TopicConfigs): string;
}

const integer = (value: string, min: number): number | undefined => {
  if (!/^-?\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
};

const DEFINITIONS: ReadonlyMap<string, ConfigDefinition> = new Map<string, ConfigDefinition>([
  ['cleanup.policy', {
    type: ConfigType.LIST,
    documentation: 'delete: old segments are removed by retention; compact: only the latest record per key is kept (the journal\'s compacted shard). compact,delete is not supported.',
    apply: (value, configs) => (value === 'delete' || value === 'compact' ? { ...configs, cleanupPolicy: value } : undefined),
    show: (configs) => configs.cleanupPolicy,
  }],
  ['retention.ms', {
    type: ConfigType.LONG,
    documentation: 'Sealed segments whose newest record is older than this are deleted (the shard\'s retentionMs); -1 keeps them.',
    apply: (value, configs) => {
      const n = integer(value, -1);
      return n === undefined ? undefined : { ...configs, retentionMs: n === -1 ? null : n };
    },
    show: (configs) => String(configs.retentionMs ?? -1),
  }],
  ['retention.bytes', {
    type: ConfigType.LONG,
    documentation: 'Oldest sealed segments are deleted while the partition is larger than this (the shard\'s retentionBytes); -1 keeps them.',
    apply: (value, configs) => {
      const n = integer(value, -1);
      return n === undefined ? undefined : { ...configs, retentionBytes: n === -1 ? null : n };
    },
    show: (configs) => String(configs.retentionBytes ?? -1),
  }],
  ['max.message.bytes', {
    type: ConfigType.INT,
    documentation: 'Largest record batch (as the producer sends it, compressed) a Produce may carry; larger ones get MESSAGE_TOO_LARGE.',
    apply: (value, configs) => {
      const n = integer(value, 0);
      return n === undefined || n > 2 ** 31 - 1 ? undefined : { ...configs, maxMessageBytes: n };
    },
    show: (configs) => String(configs.maxMessageBytes),
  }],
]);

export type ParsedConfigs = { ok: true; configs: TopicConfigs; explicit: ExplicitConfigs } | { ok: false; errorCode: number; message: string };

/** A topic's configs from the name/value pairs a client set (CreateTopics) or that were stored. */
export function parseTopicConfigs(pairs: ReadonlyArray<{ name: string; value: string | null }>): ParsedConfigs {
  let configs = DEFAULT_TOPIC_CONFIGS;
  const explicit: Record<string, string> = {};
  for (const { name, value } of pairs) {
    const definition = DEFINITIONS.get(name);
    if (definition === undefined) return { ok: false, errorCode: KafkaErrorCode.INVALID_CONFIG, message: `topic config ${name} is not supported (supported: ${[...DEFINITIONS.keys()].join(', ')})` };
    // A null value asks for the default.
    if (value === null) continue;
    const applied = definition.apply(value, configs);
    if (applied === undefined) return { ok: false, errorCode: KafkaErrorCode.INVALID_CONFIG, message: `invalid value ${JSON.stringify(value)} for topic config ${name}` };
    configs = applied;
    explicit[name] = value;
  }
  return { ok: true, configs, explicit };
}

/** The shard settings a topic's configs set on each of its partition shards. */
export function shardSettings(configs: TopicConfigs): { retentionMs: number | null; retentionBytes: number | null; compacted: boolean } {
  return { retentionMs: configs.retentionMs, retentionBytes: configs.retentionBytes, compacted: configs.cleanupPolicy === 'compact' };
}

/** DescribeConfigs entries of a topic (all, or the keys asked for; unknown keys are left out, as Kafka does). */
export function describeTopicConfigs(configs: TopicConfigs, explicit: ExplicitConfigs, keys: readonly string[] | null, documentation: boolean): KafkaStruct[] {
  const names = keys === null ? [...DEFINITIONS.keys()] : keys.filter((key) => DEFINITIONS.has(key));
  return names.map((name) => {
    const definition = DEFINITIONS.get(name)!;
    const set = Object.hasOwn(explicit, name);
    return {
      name, value: definition.show(configs), readOnly: false, isDefault: !set,
      configSource: set ? ConfigSource.DYNAMIC_TOPIC_CONFIG : ConfigSource.DEFAULT_CONFIG,
      isSensitive: false, synonyms: [], configType: definition.type, documentation: documentation ? definition.documentation : null,
    };
  });
}

/** DescribeConfigs entries of the broker: static, read-only facts of this node's Kafka front end. */
export function describeBrokerConfigs(nodeId: number, keys: readonly string[] | null): KafkaStruct[] {
  const entries: Array<[string, string, number]> = [
    ['broker.id', String(nodeId), ConfigType.INT],
    ['auto.create.topics.enable', 'false', 1],
    ['num.partitions', '1', ConfigType.INT],
    ['default.replication.factor', '1', 3],
    ['message.max.bytes', String(DEFAULT_MAX_MESSAGE_BYTES), ConfigType.INT],
    ['log.retention.ms', '-1', ConfigType.LONG],
    ['log.cleanup.policy', 'delete', ConfigType.LIST],
  ];
  return entries
    .filter(([name]) => keys === null || keys.includes(name))
    .map(([name, value, configType]) => ({ name, value, readOnly: true, isDefault: false, configSource: ConfigSource.STATIC_BROKER_CONFIG, isSensitive: false, synonyms: [], configType, documentation: null }));
}
