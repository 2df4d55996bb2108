// Broker.observeDispatch: what another protocol's bridge (AMQP's amq.topic) is told of.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../shard-model/index.js';
import { Broker } from './broker.js';
import type { Message } from './messages/message.js';

const message = (topic: string): Message => ({ topic, payload: Buffer.from(topic), qos: 1, retain: false, publisherId: 'p', timestamp: 1, properties: undefined });

describe('Broker.observeDispatch', () => {
  test('tells each durable message once, the very object published, whether or not a subscription matched, until stopped', async () => {
    const broker = await Broker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), dataShards: 2, maxQueuedBytes: 1 << 20 });
    const seen: Message[] = [];
    let storedFirst = false;
    const stop = broker.observeDispatch((dispatched) => {
      if (seen.length === 0) assert.ok(storedFirst, 'told after the publisher learnt it is durable');
      seen.push(dispatched);
    });
    const first = message('a/b');
    await broker.publish(first, () => {
      storedFirst = true;
    });
    await broker.publish(message('c/d'));
    assert.equal(seen.length, 2);
    assert.equal(seen[0], first);
    stop();
    await broker.publish(message('e/f'));
    assert.equal(seen.length, 2, 'no longer told once stopped');
    await broker.close();
  });
});
