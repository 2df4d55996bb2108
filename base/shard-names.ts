// Names of the shards more than one layer must agree on: the engine writes the MQTT data shards
// and placement assigns them replicas, and neither may import the other.

/** The MQTT data shards are `mqtt.0` .. `mqtt.N-1`. */
export const MQTT_DATA_SHARD_NAMESPACE = 'mqtt';
export const MQTT_DATA_SHARD_PREFIX = `${MQTT_DATA_SHARD_NAMESPACE}.`;

export function mqttDataShardName(index: number): string {
  return `${MQTT_DATA_SHARD_PREFIX}${index}`;
}
