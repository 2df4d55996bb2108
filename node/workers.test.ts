// A worker's settings: a broker over the primary's journal that shares it as broker-peers
// brokers do, MQTT only, its own $SYS name (node/workers.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeSettings } from './settings.js';
import { workerSettings } from './workers.js';

test('a worker is a broker-peers broker over the primary\'s journal, with no Kafka or AMQP listener', () => {
  const primary = { roles: undefined, workers: 3, brokerPeers: false, journal: undefined, clusterToken: undefined, nodeName: 'edge', kafkaPort: 9092, kafkasPort: 9093, amqpPort: 5672, amqpsPort: 5671, placement: undefined, mqttPort: 1883, maxInflight: 7 } as unknown as NodeSettings;
  const worker = workerSettings(primary, { type: 'assignment', index: 2, journal: '127.0.0.1:1771', clusterToken: 'run-token', brokerId: 'node-1-w2' });
  assert.deepEqual(worker.roles, ['broker']);
  assert.equal(worker.journal, '127.0.0.1:1771');
  assert.equal(worker.clusterToken, 'run-token');
  assert.equal(worker.brokerPeers, true);
  assert.equal(worker.workers, 1, 'a worker forks none of its own');
  assert.equal(worker.nodeName, 'edge-w2');
  assert.deepEqual([worker.kafkaPort, worker.kafkasPort, worker.amqpPort, worker.amqpsPort], [undefined, undefined, undefined, undefined]);
  // Everything else as the primary has it: the MQTT port and limits are shared.
  assert.equal(worker.mqttPort, 1883);
  assert.equal(worker.maxInflight, 7);
  assert.equal(primary.roles, undefined, 'the primary\'s settings are left alone');
});
