// Unit tests of time-range replay in the broker core (replays.ts through Broker.startReplay),
// over a MemoryShardStore and, for the time index on disk, a LocalShardStore.
//
// Goal: a replay delivers exactly the stored messages of its filter stamped in [from, to), in
// publish order across shards, and nothing after; a live replay then turns into a subscription
// with no message lost or doubled at the switch, also when publishes arrive while it reads and
// when they overflow its buffer; deliveries are paced by the session's queue bound and receive
// maximum; every replayed message passes mayRead; a replay ends with its connection or a cancel.
// Method: clients are recording sinks; message timestamps are set by the test; publishes during
// a replay are made while the replay waits for the client to acknowledge.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { LocalShardStore } from '../../shard-model/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import type { Message, QoS } from '../messages/message.js';
import type { SubscriptionOptions } from '../sessions/session-events.js';
import type { Delivery } from '../delivery/delivery.js';
import type { Session } from '../sessions/session.js';
import type { ReplayRequest } from './replay-request.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });
const T0 = 1_700_000_000_000;

async function open(options: { dataShards?: number; maxQueuedBytes?: number; store?: ShardStore } = {}): Promise<{ broker: Broker; clock: ManualClock }> {
  const clock = new ManualClock();
  const broker = await Broker.open({ store: options.store ?? new MemoryShardStore(), logger, dataShards: options.dataShards ?? 4, maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024, clock, cursorFlushMs: 1000 });
  return { broker, clock };
}

async function connect(broker: Broker, clientId: string, sink = new RecordingSink()): Promise<{ session: Session; sink: RecordingSink }> {
  const { session } = await broker.connect({ clientId, cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  return { session, sink };
}

function options(qos: QoS = 1): SubscriptionOptions {
  return { qos, noLocal: false, keepRetainFlag: false, sendRetained: 'always' };
}

function message(topic: string, payload: string, timestamp: number, qos: QoS = 1): Message {
  return { topic, payload: Buffer.from(payload), qos, retain: false, publisherId: 'publisher', timestamp, properties: undefined };
}

function replay(broker: Broker, session: Session, filter: string, from: number, to: number | 'live'): void {
  const request: ReplayRequest = { filter, from, to };
  assert.equal(broker.startReplay(session, `$replay/${from}/${to}/${filter}`, request, options()), 'started');
}

/** Acknowledges every QoS 1 delivery not yet acknowledged, until nothing more arrives. */
async function drain(session: Session, sink: RecordingSink, acked = { count: 0 }): Promise<void> {
  for (let round = 0; round < 10_000; round += 1) {
    await settle();
    if (acked.count === sink.deliveries.length) return;
    while (acked.count < sink.deliveries.length) {
      const delivery = sink.deliveries[acked.count] as Delivery;
      acked.count += 1;
      if (delivery.qos > 0) session.ack(delivery.tag);
    }
  }
  assert.fail('deliveries kept coming');
}

describe('time-range replay (engine)', () => {
  test('delivers the stored messages of the filter in [from, to), merged across shards by timestamp, then nothing more', async () => {
    const { broker } = await open();
    const topics = ['r/a', 'r/b', 'r/c', 'r/d', 'other/x'];
    const published: Message[] = [];
    for (let i = 0; i < 60; i += 1) {
      const m = message(topics[i % topics.length] as string, `m${i}`, T0 + i * 10);
      published.push(m);
      await broker.publish(m);
    }
    // The topics spread over more than one shard, or the merge would not be exercised.
    assert.ok(new Set(topics.map((topic) => broker.shardOf(topic))).size > 1);
    const { session, sink } = await connect(broker, 'reader');
    replay(broker, session, 'r/#', T0 + 100, T0 + 400);
    await drain(session, sink);
    const expected = published.filter((m) => m.topic.startsWith('r/') && m.timestamp >= T0 + 100 && m.timestamp < T0 + 400).map((m) => m.payload.toString());
    assert.deepEqual(sink.payloads(), expected);
    assert.ok(sink.deliveries.every((delivery) => delivery.shard === -1 && delivery.qos === 1 && !delivery.redelivered));
    assert.equal(session.subscriptions.size, 0, 'a fixed range makes no subscription');
    await broker.publish(message('r/a', 'after', T0 + 200));
    await drain(session, sink);
    assert.equal(sink.deliveries.length, expected.length);
  });

  test('equal timestamps on two shards: the lower shard first; within a shard the offset order is kept even when stamps go back', async () => {
    const { broker } = await open();
    const [a, b] = ['t/a', 't/b'].sort((x, y) => broker.shardOf(x) - broker.shardOf(y)) as [string, string];
    if (broker.shardOf(a) === broker.shardOf(b)) throw new Error('test topics must map to two shards');
    await broker.publish(message(b, 'b1', T0 + 5));
    await broker.publish(message(a, 'a1', T0 + 5));
    // The clock stepped back on the shard of `b`: still after b1 (per-topic order).
    await broker.publish(message(b, 'b2', T0 + 3));
    await broker.publish(message(a, 'a2', T0 + 6));
    const { session, sink } = await connect(broker, 'reader');
    replay(broker, session, 't/+', T0, T0 + 100);
    await drain(session, sink);
    assert.deepEqual(sink.payloads(), ['a1', 'b1', 'b2', 'a2']);
  });

  test('a range before every message, after every message, or of another topic delivers nothing', async () => {
    const { broker } = await open();
    for (let i = 0; i < 10; i += 1) await broker.publish(message('n/a', `m${i}`, T0 + i));
    const { session, sink } = await connect(broker, 'reader');
    replay(broker, session, 'n/a', T0 - 1000, T0);
    replay(broker, session, 'n/a', T0 + 10, T0 + 1000);
    replay(broker, session, 'n/b', T0, T0 + 1000);
    await drain(session, sink);
    assert.deepEqual(sink.payloads(), []);
  });

  test('live: history, then the messages published while it replays, then live ones: each once, in order', async () => {
    // A small queue bound and receive maximum: the replay stops often and waits for acks, and
    // the test publishes in those pauses.
    const { broker } = await open({ maxQueuedBytes: 8 * 1024 });
    const topics = ['l/a', 'l/b', 'l/c', 'l/d', 'l/e'];
    let sequence = 0;
    const publishOne = async (at: number): Promise<void> => {
      await broker.publish(message(topics[sequence % topics.length] as string, String(sequence), at));
      sequence += 1;
    };
    for (let i = 0; i < 300; i += 1) await publishOne(T0 + i);
    const sink = new RecordingSink(5);
    const { session } = await connect(broker, 'reader', sink);
    replay(broker, session, 'l/#', T0 + 50, 'live');
    const acked = { count: 0 };
    let time = T0 + 300;
    for (let round = 0; round < 400 && session.subscriptions.size === 0; round += 1) {
      await settle();
      await publishOne(time);
      time += 1;
      for (; acked.count < sink.deliveries.length; acked.count += 1) session.ack((sink.deliveries[acked.count] as Delivery).tag);
    }
    assert.ok(session.subscriptions.has('l/#'), 'the replay switched to live');
    for (let i = 0; i < 20; i += 1) await publishOne(time + i);
    await drain(session, sink, acked);
    const expected = Array.from({ length: sequence - 50 }, (_, i) => String(i + 50));
    assert.deepEqual(sink.payloads(), expected);
  });

  test('live: publishes that overflow the replay buffer are read from the journal instead, without gap or duplicate', async () => {
    // Buffer bound = maxQueuedBytes / 4 = 1 KiB, about 3 messages; 40 arrive during the replay.
    const { broker } = await open({ maxQueuedBytes: 4 * 1024 });
    for (let i = 0; i < 100; i += 1) await broker.publish(message(`o/${i % 7}`, String(i), T0 + i));
    const sink = new RecordingSink(2);
    const { session } = await connect(broker, 'reader', sink);
    replay(broker, session, 'o/+', T0, 'live');
    await settle();
    let next = 100;
    for (let burst = 0; burst < 4; burst += 1) {
      await Promise.all(Array.from({ length: 10 }, () => broker.publish(message(`o/${next % 7}`, String(next++), T0 + next))));
      const acked = sink.deliveries.length;
      for (const delivery of sink.deliveries.slice(0, acked)) session.ack(delivery.tag);
      await settle();
    }
    await drain(session, sink, { count: 0 });
    for (let round = 0; round < 100 && session.subscriptions.size === 0; round += 1) await drain(session, sink);
    assert.ok(session.subscriptions.has('o/+'));
    await broker.publish(message('o/1', String(next), T0 + next));
    next += 1;
    await drain(session, sink);
    const payloads = sink.payloads().map(Number);
    assert.equal(new Set(payloads).size, payloads.length, 'no duplicate');
    assert.deepEqual([...payloads].sort((x, y) => x - y), Array.from({ length: next }, (_, i) => i), 'no gap');
    // Per topic, publish order.
    for (let t = 0; t < 7; t += 1) {
      const ofTopic = payloads.filter((p) => p % 7 === t);
      assert.deepEqual(ofTopic, [...ofTopic].sort((x, y) => x - y));
    }
  });

  test('paced by the client: with receive maximum 10 and no acks, 10 in flight and the queue within its bound', async () => {
    const maxQueuedBytes = 16 * 1024;
    const { broker } = await open({ maxQueuedBytes });
    const payload = 'x'.repeat(200);
    for (let i = 0; i < 2000; i += 1) await broker.publish(message(`p/${i % 5}`, payload, T0 + i));
    const sink = new RecordingSink(10);
    const { session } = await connect(broker, 'reader', sink);
    replay(broker, session, 'p/#', T0, T0 + 5000);
    for (let i = 0; i < 5; i += 1) await settle();
    assert.equal(sink.deliveries.length, 10);
    // Queued while below half the bound, one message at a time: at most half + one message.
    assert.ok(session.queuedCount * (200 + 3 + 320) <= maxQueuedBytes / 2 + 600, `${session.queuedCount} queued`);
    await drain(session, sink);
    assert.equal(sink.deliveries.length, 2000);
  });

  test('every replayed message passes mayRead, from the journal and from the live buffer', async () => {
    const { broker } = await open();
    broker.access = { mayPublish: () => true, maySubscribe: () => true, mayRead: (_identity, topic) => !topic.endsWith('/secret') };
    for (let i = 0; i < 20; i += 1) await broker.publish(message(i % 2 === 0 ? 'a/open' : 'a/secret', String(i), T0 + i));
    const sink = new RecordingSink(1);
    const { session } = await connect(broker, 'reader', sink);
    replay(broker, session, 'a/+', T0, 'live');
    await settle();
    // Published while the replay waits for the first ack: goes through the buffer.
    await broker.publish(message('a/secret', '20', T0 + 20));
    await broker.publish(message('a/open', '21', T0 + 21));
    await drain(session, sink);
    assert.ok(session.subscriptions.has('a/+'));
    await broker.publish(message('a/secret', '22', T0 + 22));
    await broker.publish(message('a/open', '23', T0 + 23));
    await drain(session, sink);
    assert.deepEqual(sink.payloads(), ['0', '2', '4', '6', '8', '10', '12', '14', '16', '18', '21', '23']);
  });

  test('a replay ends with its connection (no subscription is made) and with cancelReplay', async () => {
    // A queue bound of two messages keeps the replays waiting for acks.
    const { broker } = await open({ maxQueuedBytes: 1024 });
    for (let i = 0; i < 50; i += 1) await broker.publish(message('e/a', String(i), T0 + i));
    const sink = new RecordingSink(3);
    const { session } = await connect(broker, 'reader', sink);
    replay(broker, session, 'e/a', T0, 'live');
    await settle();
    assert.equal(sink.deliveries.length, 3);
    await broker.disconnect(session, sink, { publishWill: false });
    await settle();
    const second = await connect(broker, 'other', new RecordingSink(3));
    replay(broker, second.session, 'e/a', T0, 'live');
    await settle();
    assert.equal(broker.cancelReplay(second.session, `$replay/${T0}/live/e/a`), true);
    assert.equal(broker.cancelReplay(second.session, `$replay/${T0}/live/e/a`), false);
    // What was queued before the cancel still goes out; nothing is read after it.
    const queued = second.session.queuedCount;
    for (let round = 0; round < 3; round += 1) {
      for (const delivery of second.sink.deliveries) second.session.ack(delivery.tag);
      await settle();
    }
    assert.equal(second.sink.deliveries.length, 3 + queued);
    assert.ok(second.sink.deliveries.length < 50);
    assert.equal(second.session.subscriptions.size, 0);
  });

  test('live, persistent session: the subscription made at the switch is durable (in $sessions across a restart)', async () => {
    const store = new MemoryShardStore();
    const { broker } = await open({ store });
    await broker.publish(message('s/a', 'h', T0));
    const sink = new RecordingSink();
    const { session } = await broker.connect({ clientId: 'durable', cleanStart: true, expirySeconds: 3600, will: undefined, protocolVersion: 5, sink });
    session.attach(sink);
    replay(broker, session, 's/+', T0, 'live');
    await drain(session, sink);
    assert.deepEqual(sink.payloads(), ['h']);
    assert.ok(broker.sessionTable.sessions.get('durable')?.subscriptions.has('s/+'));
    await broker.close();
    const reopened = await open({ store });
    assert.ok(reopened.broker.sessionTable.sessions.get('durable')?.subscriptions.has('s/+'));
    await reopened.broker.close();
  });

  test('subscription options apply to replayed deliveries: QoS downgrade, subscription identifier, no-local; expired messages are left out', async () => {
    const { broker, clock } = await open();
    const now = clock.now();
    await broker.publish({ ...message('x/a', 'mine', now), publisherId: 'reader' });
    await broker.publish(message('x/a', 'qos2', now, 2));
    await broker.publish({ ...message('x/a', 'expired', now - 10_000), properties: { messageExpiryInterval: 5 } });
    await broker.publish({ ...message('x/a', 'fresh', now), properties: { messageExpiryInterval: 60 } });
    const { session, sink } = await connect(broker, 'reader');
    const subscription: SubscriptionOptions = { qos: 1, noLocal: true, keepRetainFlag: false, sendRetained: 'always', subscriptionId: 7 };
    assert.equal(broker.startReplay(session, 'k', { filter: 'x/#', from: now - 60_000, to: now + 1 }, subscription), 'started');
    await drain(session, sink);
    assert.deepEqual(sink.payloads(), ['qos2', 'fresh']);
    assert.deepEqual(sink.deliveries.map((delivery) => [delivery.qos, delivery.subscriptionIds]), [[1, [7]], [1, [7]]]);
  });

  test('at most REPLAYS_PER_SESSION_MAX replays run per session', async () => {
    const { broker } = await open();
    for (let i = 0; i < 5; i += 1) await broker.publish(message('q/a', String(i), T0 + i));
    const { session } = await connect(broker, 'reader', new RecordingSink(1));
    const results = Array.from({ length: 9 }, (_, i) => broker.startReplay(session, `k${i}`, { filter: 'q/a', from: T0, to: 'live' }, options()));
    assert.deepEqual(results, [...Array.from({ length: 8 }, () => 'started'), 'too-many']);
  });

  test('over a LocalShardStore: the start is found through the journal time index', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-replay-'));
    const store = await LocalShardStore.open(directory);
    try {
      const { broker } = await open({ store, dataShards: 2 });
      for (let i = 0; i < 500; i += 1) await broker.publish(message(`d/${i % 3}`, String(i), T0 + i * 1000));
      const { session, sink } = await connect(broker, 'reader');
      replay(broker, session, 'd/#', T0 + 250_000, T0 + 260_000);
      // Real I/O: wait for the count, then make sure nothing more comes.
      for (let waited = 0; sink.deliveries.length < 10 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(sink.payloads(), Array.from({ length: 10 }, (_, i) => String(250 + i)));
      await broker.close();
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
