// Which registered nodes are Kafka brokers: broker nodes with a `kafka` (plain) or `kafkas` (TLS)
// endpoint that parses, under the broker id every broker computes the same way from the node id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeRecord } from '../placement/metadata/index.js';
import { kafkaBrokersOf } from './kafka-peers.js';

const node = (id: string, roles: NodeRecord['roles'], endpoints?: Record<string, string>): NodeRecord => ({ id, roles, addresses: {}, registeredAt: 0, leaseExpiresAt: 1, ...(endpoints === undefined ? {} : { endpoints }) });

test('broker nodes with a dialable kafka or kafkas endpoint, by broker id, with each listener; others left out', () => {
  const brokers = kafkaBrokersOf([
    node('21', ['broker'], { kafka: 'b21.example:9092' }),
    node('22', ['broker', 'journal'], { kafka: '[2001:db8::2]:9093' }),
    node('host-x/127.0.0.1:1883', ['broker'], { kafka: '127.0.0.1:9094' }),
    node('23', ['broker']),
    node('24', ['broker'], { amqp: 'b24:5672' }),
    node('25', ['broker'], { kafka: '0.0.0.0:9092' }),
    node('11', ['journal'], { kafka: 'j:9092' }),
    node('26', ['broker'], { kafka: 'b26:9092', kafkas: 'b26.example:9093' }),
    node('27', ['broker'], { kafkas: 'b27.example:9093' }),
    node('28', ['broker'], { kafka: 'b28:9092', kafkas: 'b28:0' }),
  ]);
  assert.deepEqual(brokers.slice(0, 2), [{ nodeId: 21, listeners: { plain: { host: 'b21.example', port: 9092 } } }, { nodeId: 22, listeners: { plain: { host: '2001:db8::2', port: 9093 } } }]);
  assert.equal(brokers.length, 6);
  assert.ok(brokers[2]!.nodeId >= 0 && brokers[2]!.nodeId <= 0x7fffffff && brokers[2]!.listeners.plain?.port === 9094, 'a non-numeric node id is hashed to an int32');
  assert.deepEqual(brokers.slice(3), [
    { nodeId: 26, listeners: { plain: { host: 'b26', port: 9092 }, tls: { host: 'b26.example', port: 9093 } } },
    { nodeId: 27, listeners: { tls: { host: 'b27.example', port: 9093 } } },
    { nodeId: 28, listeners: { plain: { host: 'b28', port: 9092 } } },
  ], 'TLS beside plain, TLS alone; a kafkas endpoint that does not parse is left out');
});
