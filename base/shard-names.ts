// Names of the shards more than one layer must agree on: the engine writes the MQTT data shards
// and placement assigns them replicas, and neither may import the other.

/** The MQTT data shards are `mqtt.0` .. `mqtt.N-1`. */
export const MQTT_DATA_SHARD_NAMESPACE = 'mqtt';
export const MQTT_DATA_SHARD_PREFIX = `${MQTT_DATA_SHARD_NAMESPACE}.`;

export function mqttDataShardName(index: number): string {
  return `${MQTT_DATA_SHARD_PREFIX}${index}`;
}

/**
 * Kafka topic-partitions are shards `kafka.<topic>.<partition>` (a topic may hold dots: the
 * partition is after the last one); the topic list is the compacted system shard `$kafka.topics`,
 * consumer groups' committed offsets the compacted system shard `$kafka.offsets`.
 */
export const KAFKA_SHARD_NAMESPACE = 'kafka';
export const KAFKA_SHARD_PREFIX = `${KAFKA_SHARD_NAMESPACE}.`;
export const KAFKA_TOPICS_SHARD = '$kafka.topics';
/** The idempotent producers' id counter (compacted, one record). */
export const KAFKA_PRODUCER_IDS_SHARD = '$kafka.producer-ids';
/** Consumer groups' committed offsets (compacted, one record per group, topic and partition). */
export const KAFKA_OFFSETS_SHARD = '$kafka.offsets';

export function kafkaPartitionShardName(topic: string, partition: number): string {
  return `${KAFKA_SHARD_PREFIX}${topic}.${partition}`;
}

/**
 * AMQP 0-9-1: exchanges, durable queues and their bindings are the compacted system shard
 * `$amqp.topology`; each durable queue's persistent messages are a compacted shard
 * `amqp.q.<id>`, the id fixed when the queue is declared (queue names may hold any character,
 * shard names may not; the topology record names the queue's shard).
 */
export const AMQP_SHARD_NAMESPACE = 'amqp';
export const AMQP_TOPOLOGY_SHARD = '$amqp.topology';

export function amqpQueueShardName(id: string): string {
  return `${AMQP_SHARD_NAMESPACE}.q.${id}`;
}

/** A stream queue's shard (x-queue-type=stream): not compacted, every message kept until retention removes it. */
export function amqpStreamShardName(id: string): string {
  return `${AMQP_SHARD_NAMESPACE}.s.${id}`;
}
