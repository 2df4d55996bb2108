// The MQTT limits the in-process connection and server tests start from: the defaults, with the
// protocol's usual values at sizes a test can reach; a test overrides what it is about.
import { mqttLimitDefaults, type MqttLimits } from '../../protocols/mqtt/index.js';

export function testMqttLimits(overrides: Partial<MqttLimits> = {}): MqttLimits {
  return {
    ...mqttLimitDefaults(),
    maxPacketSize: 1024 * 1024,
    maxTopicLength: 4096,
    maxTopicLevels: 128,
    maxInflight: 16,
    connectTimeoutMs: 5_000,
    maxSessionExpiry: 3_600,
    topicAliasMaximum: 8,
    maxKeepAlive: 65_535,
    serverKeepAlive: 0,
    maxConnections: 100,
    ...overrides,
  };
}
