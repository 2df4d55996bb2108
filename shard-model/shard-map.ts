// Shard names and the maps from a protocol's subjects onto its shards. Each protocol owns a
// namespace of shards named `NAMESPACE.REST`: MQTT's data shards today (`mqtt.0` ..
// `mqtt.N-1`); a Kafka topic-partition and an AMQP queue are to be shards of their own
// namespaces, with their own rule from subject to shard (a ShardName variant and a ShardMap
// each). System shards (`$sessions`, `$retained`, ...) belong to no namespace.
//
// A map must give the same shard for a subject in every version and process: the shard is
// where the subject's history lives, so a changed rule would look for it in the wrong place.
import { fnv1a, MQTT_DATA_SHARD_NAMESPACE, MQTT_DATA_SHARD_PREFIX, mqttDataShardName } from '../base/index.js';
import { ShardModelErrors } from './errors.js';

// The MQTT names live in base/ (shard-names.ts): placement assigns these shards and sits below
// shard-model, so both take them from there.
export const MQTT_NAMESPACE = MQTT_DATA_SHARD_NAMESPACE;
/** Prefix of the MQTT data shards' names. */
export const MQTT_SHARD_PREFIX = MQTT_DATA_SHARD_PREFIX;

/** A shard of a protocol namespace, by its parts. */
export type ShardName = { namespace: typeof MQTT_NAMESPACE; index: number };

/** The journal name of a namespace shard. */
export function formatShardName(name: ShardName): string {
  return mqttDataShardName(name.index);
}

const MQTT_INDEX = /^(?:0|[1-9][0-9]{0,8})$/;

/** The parts of a namespace shard's name; undefined for any other name (system shards, others). */
export function parseShardName(name: string): ShardName | undefined {
  if (!name.startsWith(MQTT_SHARD_PREFIX)) return undefined;
  const index = name.slice(MQTT_SHARD_PREFIX.length);
  return MQTT_INDEX.test(index) ? { namespace: MQTT_NAMESPACE, index: Number(index) } : undefined;
}

/** The subjects of one namespace onto its shards. */
export interface ShardMap {
  readonly namespace: string;
  /** The namespace's shards, in index order. */
  readonly names: readonly string[];
  /** The index in `names` of the shard that holds `subject`. */
  shardOf(subject: string): number;
}

/**
 * MQTT: a topic lives in data shard FNV-1a(topic) mod N, so one topic's messages are in one
 * shard, in publish order. N is fixed once a journal has data shards (see mqttShardCount).
 */
export class MqttShardMap implements ShardMap {
  readonly namespace = MQTT_NAMESPACE;
  readonly names: readonly string[];

  constructor(count: number) {
    if (!Number.isInteger(count) || count < 1) throw ShardModelErrors.invalidShardCount.create({}, MQTT_NAMESPACE, count);
    this.names = Array.from({ length: count }, (_, index) => formatShardName({ namespace: MQTT_NAMESPACE, index }));
  }

  shardOf(topic: string): number {
    return fnv1a(topic) % this.names.length;
  }
}

/** How many MQTT data shards a journal with these shards has (0: none yet). */
export function mqttShardCount(names: Iterable<string>): number {
  let count = 0;
  for (const name of names) if (parseShardName(name)?.namespace === MQTT_NAMESPACE) count += 1;
  return count;
}
