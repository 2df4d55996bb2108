// shard-model/: shard names and subject-to-shard maps, the ShardStore interface and its adapters. This is the layer's public entry.
export type { BatchRead, BatchReadOptions, ShardStore, TailOptions } from './shard-store.js';
export { LocalShardStore } from './adapters/local-shard-store.js';
export { MemoryShardStore, type MemoryShardStoreOptions } from './adapters/memory-shard-store.js';
export { RemoteShardStore, DEFAULT_REMOTE_CALL_TIMEOUT_MS, DEFAULT_REMOTE_CONNECT_TIMEOUT_MS, DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS, type RemoteShardStoreOptions } from './adapters/remote-shard-store.js';
export { ShardModelErrors, isStoreUnreachable } from './errors.js';
export { formatShardName, MQTT_NAMESPACE, MQTT_SHARD_PREFIX, MqttShardMap, mqttShardCount, parseShardName, type ShardMap, type ShardName } from './shard-map.js';
export { createShardIfMissing, readShardFrom, readWholeShard } from './shard-helpers.js';
export { PlacedShardStore, DEFAULT_PLACED_RETRY_DEADLINE_MS, type PlacedShardStoreOptions } from './adapters/placed-shard-store.js';
export { PlacementView, type PlacementViewOptions } from './controller/placement-view.js';
export { ReplicationController, type ReplicationControllerOptions } from './controller/replication-controller.js';
export { RemovedReplicas, removedFromSet, type RemovedReplicasOptions } from './controller/removed-replicas.js';
export { PLACEMENT_SETTINGS, placementSetting, type PlacementSettingSpec } from './controller/placement-settings.js';
export { assignReplicas, decideShard, liveJournalNodes, replicationFactor, ShardElection, DEFAULT_REPLICATION_FACTOR, REPLICATION_FACTOR_SETTING, REPLACE_AFTER_SETTING, CREATE_GRACE_SETTING, type ReplicaObservation, type ShardDecision, type ElectionStep } from './controller/controller-core.js';
