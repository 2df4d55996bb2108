// Unit tests of the packet ids an MQTT connection gives its QoS 1/2 deliveries (packet-ids.ts).
//
// Goal: a delivery from a shard position gets the same id from any connection (the resend after
// a restart carries the id the client saw: QoS 2 exactly once across kill -9), the id release
// 0.1.0 gave it; an id in use is never given; ids stay in 1..65,535. Method: examples.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery } from '../../engine/index.js';
import { OutboundPacketIds } from './packet-ids.js';

function at(shard: number, offset: number): Delivery {
  return { tag: 0, message: { topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, publisherId: 'p', timestamp: 0, properties: undefined }, qos: 1, retain: false, redelivered: false, subscriptionIds: undefined, shard, offset };
}

const none = (): boolean => false;

test('a shard position gives the same id on every connection: (offset × shards + shard) mod 65,535 + 1', () => {
  assert.equal(new OutboundPacketIds(3).assign(at(2, 10), none), 33);
  assert.equal(new OutboundPacketIds(3).assign(at(2, 10), none), 33);
  assert.equal(new OutboundPacketIds(1).assign(at(0, 65_535), none), 1, 'wraps within 1..65,535');
});

test('an id in use is passed over for the next free one, which the allocator then moves past', () => {
  const ids = new OutboundPacketIds(1);
  const inUse = new Set([1, 2]);
  assert.equal(ids.assign(at(0, 0), (id) => inUse.has(id)), 3);
  assert.equal(ids.assign(at(-1, -1), (id) => inUse.has(id)), 4, 'a delivery without a position takes the next in turn');
  assert.equal(ids.assign(at(-1, -1), none), 5);
});

test('the turn wraps from 65,535 to 1 and never gives 0', () => {
  const ids = new OutboundPacketIds(1);
  const given = new Set<number>();
  for (let i = 0; i < 65_536; i += 1) given.add(ids.assign(at(-1, -1), none));
  assert.equal(given.size, 65_535);
  assert.ok(!given.has(0) && given.has(65_535) && given.has(1));
});
