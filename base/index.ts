// base/: the lowest layer, what every other layer uses: the error registry, the clock, hashing,
// limits with units, and how an error travels over gRPC (a status and trailers; no sockets).
// It imports nothing from the project and does no I/O. This is the layer's public entry.
export { type Clock, sleepUnlessAborted, systemClock } from './clock.js';
export { defineError, errorRegistry, type ErrorContext, isShardlineError, ShardlineError } from './errors.js';
export { fnv1a, fnv1aBytes } from './hash.js';
export { CODE_METADATA_KEY, CONTEXT_METADATA_KEY, errorToGrpcStatus, grpcStatusFor, statusToShardlineError, type GrpcStatusTable } from './grpc-status.js';
export { defineLimits, limitDefaults, limitField, pickLimits, TIMER_DELAY_MS_MAX, withinLimit, type LimitSpec, type LimitUnit, type LimitValues } from './limits.js';
export { AMQP_SHARD_NAMESPACE, AMQP_TOPOLOGY_SHARD, amqpQueueShardName, KAFKA_OFFSETS_SHARD, KAFKA_PRODUCER_IDS_SHARD, KAFKA_SHARD_NAMESPACE, KAFKA_SHARD_PREFIX, KAFKA_TOPICS_SHARD, kafkaPartitionShardName, MQTT_DATA_SHARD_NAMESPACE, MQTT_DATA_SHARD_PREFIX, mqttDataShardName } from './shard-names.js';
export { amqpStreamShardName } from './shard-names.js';
export { TimerWheel, type WheelSlot } from './timer-wheel.js';
