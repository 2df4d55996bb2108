// Which registered nodes are Kafka brokers: broker nodes with a `kafka` endpoint that parses,
// under the broker id every broker computes the same way from the node id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeRecord } from '../placement/metadata/index.js';
import { kafkaBrokersOf } from './kafka-peers.js';

const node = (id: string, roles: NodeRecord['roles'], endpoints?: Record<string, string>): NodeRecord => ({ id, roles, addresses: {}, registeredAt: 0, leaseExpiresAt: 1, ...(endpoints === undefined ? {} : { endpoints }) });

test('broker nodes with a dialable kafka endpoint, by broker id; others left out', () => {
  const brokers = kafkaBrokersOf([
    node('21', ['broker'], { kafka: 'b21.example:9092' }),
    node('22', ['broker', 'journal'], { kafka: '[2001:db8::2]:9093' }),
    node('host-x/127.0.0.1:1883', ['broker'], { kafka: '127.0.0.1:9094' }),
    node('23', ['broker']),
    node('24', ['broker'], { amqp: 'b24:5672' }),
    node('25', ['broker'], { kafka: '0.0.0.0:9092' }),
    node('11', ['journal'], { kafka: 'j:9092' }),
  ]);
  assert.deepEqual(brokers.slice(0, 2), [{ nodeId: 21, host: 'b21.example', port: 9092 }, { nodeId: 22, host: '2001:db8::2', port: 9093 }]);
  assert.equal(brokers.length, 3);
  assert.ok(brokers[2]!.nodeId >= 0 && brokers[2]!.nodeId <= 0x7fffffff && brokers[2]!.port === 9094, 'a non-numeric node id is hashed to an int32');
});
