// Unit tests of delayed publish (engine/delayed/) over a Broker on a MemoryShardStore.
//
// Goal: a `$delayed/{s}/{topic}` publish reaches {topic} after s seconds and not before, in due
// order (ties in acceptance order); the bounds and the form are enforced with coded errors; the
// schedule is a projection of `$delayed`: a broker reopened over the same store (what a restart
// after kill -9 sees) publishes what was pending, a message whose time passed while it was down
// is published at once, and a published one is not published again.
// Method: a manual clock moves time; the "restart" opens a new Broker and DelayedPublisher over
// the same store (the integration test in tests/mqtt-extras.test.ts kills a real process).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import type { Message, QoS } from '../messages/message.js';
import type { Delivery } from '../delivery/delivery.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';
import { DELAYED_SHARD, DelayedPublisher } from './delayed-publisher.js';
import { parseDelayedTopic } from './delayed-topic.js';
import { DueQueue } from './due-queue.js';

const logger = pino({ level: 'silent' });

/** Deliveries as topic=payload, since these tests schedule onto several topics. */
class Sink extends RecordingSink {
  override payloads(): string[] {
    return this.deliveries.map((delivery) => `${delivery.message.topic}=${delivery.message.payload.toString()}`);
  }
}

interface Setup {
  broker: Broker;
  delayed: DelayedPublisher;
  sink: Sink;
}

async function open(store: MemoryShardStore, clock: ManualClock, limits: { maxDelaySeconds?: number; maxMessages?: number; mayPublish?: (publisherId: string, topic: string) => boolean } = {}): Promise<Setup> {
  const broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
  const delayed = await DelayedPublisher.open({
    store,
    clock,
    logger,
    host: { publish: (message) => broker.publish(message), mayPublish: limits.mayPublish ?? (() => true) },
    maxDelaySeconds: limits.maxDelaySeconds ?? 3600,
    maxMessages: limits.maxMessages ?? 1000,
  });
  broker.extras.delayed = delayed;
  const sink = new Sink();
  const { session } = await broker.connect({ clientId: 'watcher', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  await broker.subscribe(session, [{ filter: 'out/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  return { broker, delayed, sink };
}

function message(topic: string, payload: string, qos: QoS = 1, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos, retain: false, publisherId: 'publisher', timestamp: 0, properties: undefined, ...extra };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('delayed topic form', () => {
  test('parses seconds and target; refuses the malformed', () => {
    assert.deepEqual(parseDelayedTopic('$delayed/10/a/b'), { ok: true, delaySeconds: 10, topic: 'a/b' });
    assert.deepEqual(parseDelayedTopic('$delayed/0/x'), { ok: true, delaySeconds: 0, topic: 'x' });
    for (const bad of ['$delayed/', '$delayed/10', '$delayed/10/', '$delayed/x/a', '$delayed/-1/a', '$delayed/1e3/a', '$delayed/ 5/a', '$delayed/5/$delayed/5/a']) {
      assert.equal(parseDelayedTopic(bad).ok, false, bad);
    }
  });
});

describe('delayed publish', () => {
  test('is delivered to the target topic after the delay, not before, with its payload, QoS and properties', async () => {
    const clock = new ManualClock();
    const { broker, sink } = await open(new MemoryShardStore(), clock);
    const result = await broker.publish(message('$delayed/5/out/a', 'hello', 1, { properties: { contentType: 'text/plain', userProperties: [['k', 'v']] } }));
    assert.deepEqual(result, { matched: true });
    await clock.advance(4999);
    assert.deepEqual(sink.payloads(), []);
    await clock.advance(1);
    assert.deepEqual(sink.payloads(), ['out/a=hello']);
    const delivered = sink.deliveries[0] as Delivery;
    assert.equal(delivered.qos, 1);
    assert.equal(delivered.message.publisherId, 'publisher');
    assert.deepEqual(delivered.message.properties, { contentType: 'text/plain', userProperties: [['k', 'v']] });
    assert.equal(delivered.message.timestamp, clock.now(), 'the target publish happens at the due time');
    await broker.close();
  });

  test('checked again when due: a publish right revoked while it waited drops it, and it is not held any more', async () => {
    const clock = new ManualClock();
    let allowed = true;
    const { broker, delayed, sink } = await open(new MemoryShardStore(), clock, { mayPublish: () => allowed });
    await broker.publish(message('$delayed/5/out/a', 'revoked'));
    await broker.publish(message('$delayed/9/out/b', 'kept'));
    assert.equal(delayed.size, 2);
    allowed = false;
    await clock.advance(5000);
    allowed = true;
    await clock.advance(4000);
    assert.deepEqual(sink.payloads(), ['out/b=kept']);
    assert.equal(delayed.size, 0);
    await broker.close();
  });

  test('messages go out in due order; equal due times in the order they were accepted', async () => {
    const clock = new ManualClock();
    const { broker, sink } = await open(new MemoryShardStore(), clock);
    await broker.publish(message('$delayed/3/out/a', 'third'));
    await broker.publish(message('$delayed/1/out/a', 'first'));
    await broker.publish(message('$delayed/2/out/a', 'second-a'));
    await broker.publish(message('$delayed/2/out/a', 'second-b'));
    await clock.advance(10_000);
    assert.deepEqual(sink.payloads(), ['out/a=first', 'out/a=second-a', 'out/a=second-b', 'out/a=third']);
    await broker.close();
  });

  test('bounds and form are refused with coded errors; a full schedule frees up once messages are published', async () => {
    const clock = new ManualClock();
    const { broker, delayed, sink } = await open(new MemoryShardStore(), clock, { maxDelaySeconds: 60, maxMessages: 2, mayPublish: (_id, topic) => topic !== 'out/secret' });
    assert.equal(await codeOf(broker.publish(message('$delayed/61/out/a', 'x'))), 'SL_DELAYED_TOO_LONG');
    assert.equal(await codeOf(broker.publish(message('$delayed/soon/out/a', 'x'))), 'SL_DELAYED_INVALID_TOPIC');
    assert.equal(await codeOf(broker.publish(message('$delayed/1/out/secret', 'x'))), 'SL_DELAYED_NOT_AUTHORIZED');
    await broker.publish(message('$delayed/1/out/a', 'one'));
    await broker.publish(message('$delayed/60/out/a', 'two'));
    assert.equal(await codeOf(broker.publish(message('$delayed/1/out/a', 'three'))), 'SL_DELAYED_FULL');
    assert.equal(delayed.size, 2);
    await clock.advance(1000);
    assert.deepEqual(sink.payloads(), ['out/a=one']);
    assert.equal(delayed.size, 1);
    assert.equal(await codeOf(broker.publish(message('$delayed/1/out/a', 'four'))), undefined);
    await broker.close();
  });

  test('an empty payload is a message, not a tombstone', async () => {
    const clock = new ManualClock();
    const store = new MemoryShardStore();
    const first = await open(store, clock);
    await first.broker.publish(message('$delayed/5/out/empty', ''));
    await first.broker.close();
    const second = await open(store, clock);
    await clock.advance(5000);
    assert.deepEqual(second.sink.payloads(), ['out/empty=']);
    await second.broker.close();
  });

  test('the schedule is rebuilt from $delayed: pending messages survive, overdue ones go at once, published ones not again', async () => {
    const clock = new ManualClock();
    const store = new MemoryShardStore();
    const first = await open(store, clock);
    await first.broker.publish(message('$delayed/1/out/a', 'early'));
    await first.broker.publish(message('$delayed/10/out/a', 'overdue'));
    await first.broker.publish(message('$delayed/100/out/a', 'later'));
    await clock.advance(1000);
    assert.deepEqual(first.sink.payloads(), ['out/a=early']);
    // No close() and a new clock: a crash leaves the store as it is (every accepted record is
    // in it) and the first broker's timers never fire again.
    const later = new ManualClock();
    await later.advance(clock.now() + 20_000 - later.now());
    const second = await open(store, later);
    await later.advance(0);
    assert.deepEqual(second.sink.payloads(), ['out/a=overdue'], 'the overdue message goes out right after the start, the early one not again');
    assert.equal(second.delayed.size, 1);
    await later.advance(80_000);
    assert.deepEqual(second.sink.payloads(), ['out/a=overdue', 'out/a=later']);
    assert.equal(second.delayed.size, 0);
    const records = await store.read(DELAYED_SHARD, 0, { maxRecords: 100 });
    assert.equal(records.filter((record) => record.value === null).length, 3, 'each published message has its tombstone');
    await second.broker.close();
  });
});

describe('due queue', () => {
  test('pops in (due, sequence) order whatever the push order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 200 }), (pairs) => {
        const queue = new DueQueue<{ due: number; sequence: number }>();
        const unique = [...new Map(pairs.map(([due, sequence]) => [sequence, { due, sequence }])).values()];
        for (const entry of unique) queue.push(entry);
        const popped: Array<{ due: number; sequence: number }> = [];
        for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) popped.push(entry);
        const expected = [...unique].sort((a, b) => a.due - b.due || a.sequence - b.sequence);
        assert.deepEqual(popped, expected);
      }),
    );
  });
});
