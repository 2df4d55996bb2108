// Unit tests of the broker core (broker.ts with sessions/session.ts) over a MemoryShardStore.
//
// Goal: the MQTT delivery rules the engine implements hold one by one: routing and overlapping
// subscriptions, no-local, retain-as-published, retain handling, retained set/replace/clear,
// wills (abrupt vs normal close, delay, cancelled by a reconnect), session expiry, persistent
// sessions (offline QoS 1/2 kept in order, QoS 0 not), DUP and PUBREL resends, receive maximum,
// and the slow-consumer rule (QoS 0 dropped and counted, QoS 1 read back from the journal).
// The last group pins races and restarts that lost or leaked messages (read-backs overtaken by
// a disconnect or takeover, subscriptions made while a session catches up, durable state a
// restart rebuilds).
// Method: clients are recording sinks (the protocol boundary); time is a manual clock whose
// timers fire only when a test advances it. Randomised scripts are in
// property-tests/delivery-guarantees.test.ts and property-tests/broker-replay.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../shard-model/index.js';
import { JournalErrors } from '../journal/index.js';
import { Broker } from './broker.js';
import { MESSAGE_RECORD_MAX_BYTES, type Message, type QoS } from './messages/message.js';
import { SESSIONS_SHARD, SessionTable, type SubscriptionOptions, type WillMessage } from './sessions/session-events.js';
import { SendResult, type Delivery } from './delivery/delivery.js';
import type { Session } from './sessions/session.js';
import { ManualClock, settle } from '../tests/support/manual-clock.js';
import { recordingLogger } from '../tests/support/recording-logger.js';
import { RecordingSink } from '../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });


/** The client end of one connection. */
interface Setup {
  store: MemoryShardStore;
  clock: ManualClock;
  broker: Broker;
}

async function open(options: { dataShards?: number; maxQueuedBytes?: number; store?: MemoryShardStore; clock?: ManualClock } = {}): Promise<Setup> {
  const store = options.store ?? new MemoryShardStore();
  const clock = options.clock ?? new ManualClock();
  const broker = await Broker.open({ store, logger, dataShards: options.dataShards ?? 2, maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024, clock, cursorFlushMs: 1000 });
  return { store, clock, broker };
}

interface ConnectOptions {
  cleanStart?: boolean;
  expirySeconds?: number;
  will?: WillMessage;
  sink?: RecordingSink;
}

interface Client {
  session: Session;
  sink: RecordingSink;
  sessionPresent: boolean;
}

async function connect(broker: Broker, clientId: string, options: ConnectOptions = {}): Promise<Client> {
  const sink = options.sink ?? new RecordingSink();
  const { session, sessionPresent } = await broker.connect({
    clientId,
    cleanStart: options.cleanStart ?? true,
    expirySeconds: options.expirySeconds ?? 0,
    will: options.will,
    protocolVersion: 5,
    sink,
  });
  session.attach(sink);
  return { session, sink, sessionPresent };
}

function subscription(qos: QoS, extra: Partial<SubscriptionOptions> = {}): SubscriptionOptions {
  return { qos, noLocal: false, keepRetainFlag: false, sendRetained: 'always', ...extra };
}

async function subscribe(broker: Broker, client: Client, filter: string, options: SubscriptionOptions): Promise<boolean> {
  const [isNew] = await broker.subscribe(client.session, [{ filter, options }]);
  broker.deliverRetained(client.session, filter, options, isNew === true);
  return isNew === true;
}

function message(topic: string, payload: string, qos: QoS, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos, retain: false, publisherId: 'publisher', timestamp: 1_700_000_000_000, properties: undefined, ...extra };
}

/** Lets pending promise callbacks run until `condition` holds (in-memory stores: no real waiting). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 1000 && !condition(); turn += 1) await settle();
  assert.ok(condition(), 'the condition did not come true');
}

/** Acknowledges everything the sink holds unacknowledged (PUBACK, or PUBREC then PUBCOMP). */
function acknowledgeAll(client: Client, from = 0): void {
  for (const delivery of client.sink.deliveries.slice(from)) {
    if (delivery.qos === 2) client.session.hold(delivery.tag);
    if (delivery.qos > 0) client.session.ack(delivery.tag);
  }
}

/**
 * Acknowledges as deliveries arrive until nothing more comes for `quietRounds` rounds; returns
 * the payloads received.
 */
async function receiveAll(client: Client, quietRounds = 3): Promise<string[]> {
  let acknowledged = 0;
  for (let quiet = 0; quiet < quietRounds; ) {
    const before = client.sink.deliveries.length;
    acknowledgeAll(client, acknowledged);
    acknowledged = before;
    client.session.resume();
    await settle();
    quiet = client.sink.deliveries.length === before ? quiet + 1 : 0;
  }
  return client.sink.payloads();
}

const will = (topic: string, payload: string, delaySeconds = 0, retain = false): WillMessage => ({ topic, payload: Buffer.from(payload), qos: 1, retain, properties: undefined, delaySeconds });

describe('routing', () => {
  test('a subscriber receives matching publishes at min(publish, granted) QoS; publish reports whether anything matched', async () => {
    const { broker } = await open();
    const subscriber = await connect(broker, 'sub');
    await subscribe(broker, subscriber, 'sensors/+/temp', subscription(1));
    assert.deepEqual(await broker.publish(message('sensors/k/temp', 'one', 2)), { matched: true });
    assert.deepEqual(await broker.publish(message('sensors/k/humidity', 'two', 1)), { matched: false });
    assert.deepEqual(await broker.publish(message('sensors/j/temp', 'three', 0)), { matched: true });
    await settle();
    assert.deepEqual(subscriber.sink.payloads(), ['one', 'three']);
    assert.deepEqual(subscriber.sink.deliveries.map((delivery) => delivery.qos), [1, 0]);
    assert.equal(subscriber.sink.deliveries[0]?.redelivered, false);
    assert.equal(subscriber.sink.deliveries[0]?.message.topic, 'sensors/k/temp');
    await broker.close();
  });

  test('overlapping subscriptions give one delivery at the highest QoS with every subscription id', async () => {
    const { broker } = await open();
    const subscriber = await connect(broker, 'sub');
    await subscribe(broker, subscriber, 'a/#', subscription(0, { subscriptionId: 1 }));
    await subscribe(broker, subscriber, 'a/+', subscription(2, { subscriptionId: 2 }));
    await subscribe(broker, subscriber, 'a/b', subscription(1, { subscriptionId: 3 }));
    await broker.publish(message('a/b', 'x', 2));
    await settle();
    assert.equal(subscriber.sink.deliveries.length, 1);
    const delivery = subscriber.sink.deliveries[0] as Delivery;
    assert.equal(delivery.qos, 2);
    assert.deepEqual([...(delivery.subscriptionIds ?? [])].sort(), [1, 2, 3]);
    await broker.close();
  });

  test("no-local: a subscriber does not get its own publishes through a no-local subscription, others do", async () => {
    const { broker } = await open();
    const alice = await connect(broker, 'alice');
    const bob = await connect(broker, 'bob');
    await subscribe(broker, alice, 'chat', subscription(1, { noLocal: true }));
    await subscribe(broker, bob, 'chat', subscription(1, { noLocal: true }));
    await broker.publish(message('chat', 'from alice', 1, { publisherId: 'alice' }));
    await settle();
    assert.deepEqual(alice.sink.payloads(), []);
    assert.deepEqual(bob.sink.payloads(), ['from alice']);
    // An overlapping subscription without no-local still delivers it, once.
    await subscribe(broker, alice, '#', subscription(0));
    await broker.publish(message('chat', 'again', 1, { publisherId: 'alice' }));
    await settle();
    assert.deepEqual(alice.sink.payloads(), ['again']);
    assert.equal(alice.sink.deliveries[0]?.qos, 0, 'only the subscription without no-local counts for the QoS');
    await broker.close();
  });

  test('retain-as-published keeps the RETAIN flag on live deliveries; without it the flag is cleared', async () => {
    const { broker } = await open();
    const keeps = await connect(broker, 'keeps');
    const clears = await connect(broker, 'clears');
    await subscribe(broker, keeps, 't', subscription(1, { keepRetainFlag: true }));
    await subscribe(broker, clears, 't', subscription(1));
    await broker.publish(message('t', 'retained', 1, { retain: true }));
    await broker.publish(message('t', 'plain', 1));
    await settle();
    assert.deepEqual(keeps.sink.deliveries.map((delivery) => delivery.retain), [true, false]);
    assert.deepEqual(clears.sink.deliveries.map((delivery) => delivery.retain), [false, false]);
    // A retained message sent because of a subscription carries RETAIN either way (MQTT-3.3.1-9).
    const late = await connect(broker, 'late');
    await subscribe(broker, late, 't', subscription(1));
    await settle();
    assert.deepEqual(late.sink.deliveries.map((delivery) => [delivery.message.payload.toString(), delivery.retain]), [['retained', true]]);
    await broker.close();
  });
});

describe('retained messages', () => {
  test('set, replace and clear (empty payload); a new subscription gets what is retained now', async () => {
    const { broker } = await open();
    await broker.publish(message('status', 'v1', 1, { retain: true }));
    assert.equal(broker.retained.get('status')?.payload.toString(), 'v1');
    await broker.publish(message('status', 'v2', 0, { retain: true }));
    assert.equal(broker.retained.get('status')?.payload.toString(), 'v2');
    await broker.publish(message('other', 'o', 1, { retain: true }));
    const first = await connect(broker, 'first');
    await subscribe(broker, first, '#', subscription(2));
    await settle();
    assert.deepEqual(first.sink.payloads(), ['v2', 'o']);
    assert.deepEqual(first.sink.deliveries.map((delivery) => delivery.qos), [0, 1], 'retained deliveries keep the QoS they were published with');
    await broker.publish(message('status', '', 1, { retain: true }));
    assert.equal(broker.retained.get('status'), undefined);
    assert.equal(broker.retained.size, 1);
    const second = await connect(broker, 'second');
    await subscribe(broker, second, 'status', subscription(1));
    await settle();
    assert.deepEqual(second.sink.payloads(), []);
    // The clearing publish itself is delivered to current subscribers like any message.
    assert.deepEqual(first.sink.payloads().slice(2), ['']);
    await broker.close();
  });

  test('the retained policy always sends retained messages on every subscribe, if-new only on a new subscription, never never', async () => {
    const { broker } = await open();
    await broker.publish(message('r', 'kept', 1, { retain: true }));
    const counts: number[] = [];
    for (const sendRetained of ['always', 'if-new', 'never'] as const) {
      const client = await connect(broker, `rh-${sendRetained}`);
      await subscribe(broker, client, 'r', subscription(1, { sendRetained }));
      await subscribe(broker, client, 'r', subscription(1, { sendRetained }));
      await settle();
      counts.push(client.sink.deliveries.length);
    }
    assert.deepEqual(counts, [2, 1, 0]);
    await broker.close();
  });
});

describe('wills', () => {
  test('published on an abrupt disconnect, not on a normal one', async () => {
    const { broker } = await open();
    const watcher = await connect(broker, 'watcher');
    await subscribe(broker, watcher, 'wills/#', subscription(1));
    const abrupt = await connect(broker, 'abrupt', { will: will('wills/abrupt', 'gone') });
    const normal = await connect(broker, 'normal', { will: will('wills/normal', 'gone') });
    await broker.disconnect(abrupt.session, abrupt.sink, { publishWill: true });
    await broker.disconnect(normal.session, normal.sink, { publishWill: false });
    await settle();
    assert.deepEqual(watcher.sink.deliveries.map((delivery) => delivery.message.topic), ['wills/abrupt']);
    assert.equal(watcher.sink.deliveries[0]?.message.publisherId, 'abrupt');
    await broker.close();
  });

  test('a delayed will is published after its delay, and not at all when the client reconnects first', async () => {
    const { broker, clock } = await open();
    const watcher = await connect(broker, 'watcher');
    await subscribe(broker, watcher, 'wills/#', subscription(1));
    const late = await connect(broker, 'late', { expirySeconds: 600, will: will('wills/late', 'gone', 5) });
    const back = await connect(broker, 'back', { expirySeconds: 600, will: will('wills/back', 'gone', 5) });
    await broker.disconnect(late.session, late.sink, { publishWill: true });
    await broker.disconnect(back.session, back.sink, { publishWill: true });
    await clock.advance(4_000);
    assert.equal(watcher.sink.deliveries.length, 0, 'nothing before the delay');
    await connect(broker, 'back', { cleanStart: false, expirySeconds: 600 });
    await clock.advance(10_000);
    await settle();
    assert.deepEqual(watcher.sink.deliveries.map((delivery) => delivery.message.topic), ['wills/late']);
    await broker.close();
  });

  test('a will delayed past the session expiry is published when the session ends (MQTT-3.1.3-9)', async () => {
    const { broker, clock } = await open();
    const watcher = await connect(broker, 'watcher');
    await subscribe(broker, watcher, 'wills/#', subscription(1));
    const client = await connect(broker, 'c', { expirySeconds: 2, will: will('wills/c', 'gone', 60) });
    await broker.disconnect(client.session, client.sink, { publishWill: true });
    await clock.advance(1_999);
    assert.equal(watcher.sink.deliveries.length, 0);
    await clock.advance(1);
    await settle();
    assert.deepEqual(watcher.sink.deliveries.map((delivery) => delivery.message.topic), ['wills/c']);
    await broker.close();
  });
});

describe('sessions', () => {
  test('session expiry removes the session from the broker and from $sessions', async () => {
    const { broker, clock } = await open();
    const client = await connect(broker, 'c', { expirySeconds: 5 });
    await subscribe(broker, client, 't', subscription(1));
    await broker.disconnect(client.session, client.sink, { publishWill: false });
    assert.ok(broker.sessionTable.sessions.has('c'));
    await clock.advance(4_999);
    assert.ok(broker.sessionTable.sessions.has('c'), 'still there before the expiry');
    await clock.advance(1);
    await settle();
    assert.ok(!broker.sessionTable.sessions.has('c'));
    assert.deepEqual(await broker.publish(message('t', 'x', 1)), { matched: false }, 'its subscriptions are gone');
    const again = await connect(broker, 'c', { cleanStart: false, expirySeconds: 5 });
    assert.equal(again.sessionPresent, false);
    await broker.close();
  });

  test('a persistent session gets the QoS 1/2 messages published while it was offline, in order, and not the QoS 0 ones', async () => {
    const { broker } = await open();
    const client = await connect(broker, 'p', { expirySeconds: 600 });
    await subscribe(broker, client, 'q/#', subscription(2));
    await broker.disconnect(client.session, client.sink, { publishWill: false });
    const sent: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const qos = (i % 3) as QoS;
      await broker.publish(message(`q/${i % 2}`, `m${i}-qos${qos}`, qos));
      if (qos > 0) sent.push(`m${i}-qos${qos}`);
    }
    const back = await connect(broker, 'p', { cleanStart: false, expirySeconds: 600 });
    assert.equal(back.sessionPresent, true);
    const received = await receiveAll(back);
    // Topics q/0 and q/1 may sit on different shards; order is per topic.
    for (const topic of ['0', '1']) {
      const ofTopic = (payloads: string[]): string[] => payloads.filter((payload) => Number(payload.slice(1, payload.indexOf('-'))) % 2 === Number(topic));
      assert.deepEqual(ofTopic(received), ofTopic(sent));
    }
    assert.equal(received.length, sent.length);
    assert.ok(back.sink.deliveries.every((delivery) => delivery.qos === delivery.message.qos && !delivery.redelivered));
    await broker.close();
  });

  test('in-flight deliveries are re-sent with DUP and the same packet id after a reconnect; PUBREL for QoS 2 ones already received', async () => {
    const { broker } = await open();
    const client = await connect(broker, 'd', { expirySeconds: 600 });
    await subscribe(broker, client, 't', subscription(2));
    await broker.publish(message('t', 'one', 1));
    await broker.publish(message('t', 'two', 2));
    await broker.publish(message('t', 'three', 2));
    await settle();
    const [one, two, three] = client.sink.deliveries as [Delivery, Delivery, Delivery];
    assert.ok(client.session.hold(three.tag), 'PUBREC for three');
    await broker.disconnect(client.session, client.sink, { publishWill: false });
    const back = await connect(broker, 'd', { cleanStart: false, expirySeconds: 600 });
    await settle();
    assert.deepEqual(
      back.sink.deliveries.map((delivery) => [delivery.message.payload.toString(), delivery.tag, delivery.redelivered]),
      [
        ['one', one.tag, true],
        ['two', two.tag, true],
      ],
    );
    assert.deepEqual(back.sink.resumedHeld, [three.tag]);
    assert.ok(back.session.ack(one.tag));
    assert.ok(back.session.hold(two.tag));
    assert.ok(back.session.ack(two.tag));
    assert.ok(back.session.ack(three.tag));
    assert.equal(back.session.inflightCount, 0);
    await broker.close();
  });

  test('the receive maximum bounds unacknowledged QoS 1/2 deliveries; QoS 0 ones wait behind them in order', async () => {
    const { broker } = await open();
    const client = await connect(broker, 'slow', { sink: new RecordingSink(2) });
    await subscribe(broker, client, 't', subscription(2));
    for (let i = 0; i < 6; i += 1) await broker.publish(message('t', `m${i}`, i === 4 ? 0 : 1));
    await settle();
    assert.deepEqual(client.sink.payloads(), ['m0', 'm1']);
    client.session.ack((client.sink.deliveries[0] as Delivery).tag);
    await settle();
    assert.deepEqual(client.sink.payloads(), ['m0', 'm1', 'm2']);
    assert.deepEqual(await receiveAll(client), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await broker.close();
  });

  test('takeover: the older connection is closed and the session moves to the new one', async () => {
    const { broker } = await open();
    const first = await connect(broker, 'same', { expirySeconds: 60 });
    await subscribe(broker, first, 't', subscription(1));
    const second = await connect(broker, 'same', { cleanStart: false, expirySeconds: 60 });
    assert.equal(first.sink.closedBy, 'session-taken-over');
    assert.equal(second.sessionPresent, true);
    await broker.publish(message('t', 'x', 1));
    await settle();
    assert.deepEqual(first.sink.payloads(), []);
    assert.deepEqual(second.sink.payloads(), ['x']);
    // The old connection closing afterwards does not end the session that moved.
    await broker.disconnect(first.session, first.sink, { publishWill: true });
    await broker.publish(message('t', 'y', 1));
    await settle();
    assert.deepEqual(second.sink.payloads(), ['x', 'y']);
    await broker.close();
  });
});

describe('slow consumers', () => {
  test('past maxQueuedBytes QoS 0 messages are dropped and counted; QoS 1 ones all arrive later, in order, read back from the journal', async () => {
    const { broker } = await open({ dataShards: 1, maxQueuedBytes: 4000 });
    const client = await connect(broker, 'slow');
    await subscribe(broker, client, 't', subscription(1));
    // The transport is backed up from the first send: everything else queues.
    client.sink.answer = SendResult.SentFull;
    const qos1: string[] = [];
    let qos0 = 0;
    for (let i = 0; i < 60; i += 1) {
      const qos = (i % 2) as QoS;
      await broker.publish(message('t', `m${String(i).padStart(2, '0')}`, qos));
      if (qos === 1) qos1.push(`m${String(i).padStart(2, '0')}`);
      else qos0 += 1;
    }
    assert.ok(broker.stats.dropped['queue-full'] > 0, 'some QoS 0 messages were dropped');
    client.sink.answer = SendResult.Sent;
    const received = await receiveAll(client);
    const receivedQos1 = client.sink.deliveries.filter((delivery) => delivery.qos === 1).map((delivery) => delivery.message.payload.toString());
    assert.deepEqual(receivedQos1, qos1);
    assert.deepEqual([...received].sort(), received, 'one publish order across QoS');
    const receivedQos0 = received.length - receivedQos1.length;
    assert.equal(receivedQos0 + broker.stats.dropped['queue-full'], qos0, 'every QoS 0 message is delivered or counted as dropped, once');
    await broker.close();
  });
});

describe('order: the publisher is told first, subscriptions start when acknowledged', () => {
  test('stored runs once the message is durable and before any subscriber is handed it, for every message of a batch', async () => {
    // Goal: a publisher's ack never waits for the fan-out. Method: one shard, messages of one
    // append batch, a sink that records into the same event list as the stored callbacks.
    const { broker } = await open({ dataShards: 1 });
    const events: string[] = [];
    const sink = new RecordingSink();
    sink.send = (delivery: Delivery): SendResult => {
      events.push(`delivered ${delivery.message.payload.toString()}`);
      return SendResult.Sent;
    };
    const client = await connect(broker, 'sub', { sink });
    await subscribe(broker, client, 't/#', subscription(1));
    const published = ['one', 'two', 'three'].map((payload, index) =>
      broker.publish(message(`t/${index}`, payload, 1), (matched) => events.push(`stored ${payload} matched=${String(matched)}`)),
    );
    const nobody = broker.publish(message('elsewhere', 'four', 1), (matched) => events.push(`stored four matched=${String(matched)}`));
    assert.deepEqual(await Promise.all([...published, nobody]), [{ matched: true }, { matched: true }, { matched: true }, { matched: false }]);
    const firstDelivery = events.findIndex((event) => event.startsWith('delivered'));
    for (const payload of ['one', 'two', 'three']) assert.ok(events.indexOf(`stored ${payload} matched=true`) >= 0 && events.indexOf(`stored ${payload} matched=true`) < events.indexOf(`delivered ${payload}`), events.join(', '));
    assert.ok(events.indexOf('stored one matched=true') < firstDelivery, `the first message's publisher before any delivery: ${events.join(', ')}`);
    assert.ok(events.includes('stored four matched=false'));
    await broker.close();
  });

  test('a retained message: stored runs after both writes are durable', async () => {
    const { broker } = await open();
    let told = false;
    const done = broker.publish(message('r', 'kept', 1, { retain: true }), () => {
      told = true;
      assert.equal(broker.retained.get('r')?.payload.toString(), 'kept', 'the retained store holds it when the publisher is told');
    });
    await done;
    assert.equal(told, true);
    await broker.close();
  });

  test('a retained message is retained in memory once it is dispatched, before its $retained write; an older write settling later does not replace a newer one', async () => {
    /** Holds `$retained` appends until released, as a slow second write would. */
    class SlowRetainedStore extends MemoryShardStore {
      readonly held: Array<() => void> = [];
      override async append(name: string, records: Parameters<MemoryShardStore['append']>[1], options?: Parameters<MemoryShardStore['append']>[2]): ReturnType<MemoryShardStore['append']> {
        if (name === '$retained') await new Promise<void>((resolve) => this.held.push(resolve));
        return super.append(name, records, options);
      }
    }
    const store = new SlowRetainedStore();
    const { broker } = await open({ store, dataShards: 1 });
    const watcher = await connect(broker, 'watcher');
    await subscribe(broker, watcher, 'r', subscription(1));
    const first = broker.publish(message('r', 'old', 1, { retain: true }));
    await waitFor(() => watcher.sink.payloads().includes('old'));
    // Seen live while its $retained write is held: a new subscriber finds it retained.
    assert.equal(broker.retained.get('r')?.payload.toString(), 'old');
    const late = await connect(broker, 'late');
    await subscribe(broker, late, 'r', subscription(1));
    assert.deepEqual(late.sink.payloads(), ['old']);
    const second = broker.publish(message('r', 'new', 1, { retain: true }));
    await waitFor(() => watcher.sink.payloads().includes('new'));
    assert.equal(broker.retained.get('r')?.payload.toString(), 'new');
    // The older $retained write completes after the newer message was dispatched: applying it
    // would bring the old value back; it is not applied.
    (store.held.shift() as () => void)();
    await first;
    assert.equal(broker.retained.get('r')?.payload.toString(), 'new');
    await waitFor(() => store.held.length === 1);
    (store.held.shift() as () => void)();
    await second;
    assert.equal(broker.retained.get('r')?.payload.toString(), 'new');
    await broker.close();
  });

  test('subscribeAcknowledged: acknowledge runs in the routing step; nothing from before it, and nothing through it before the acknowledgement', async () => {
    const { broker, store } = await open({ dataShards: 1 });
    const events: string[] = [];
    const sink = new RecordingSink();
    sink.send = (delivery: Delivery): SendResult => {
      events.push(`delivered ${delivery.message.payload.toString()}`);
      return SendResult.Sent;
    };
    const client = await connect(broker, 'sub', { sink, expirySeconds: 600 });
    // The subscription record's write is held until the test lets it go.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const append = store.append.bind(store);
    store.append = async (...args: Parameters<MemoryShardStore['append']>) => {
      if (args[0] === SESSIONS_SHARD) await gate;
      return append(...args);
    };
    const subscribed = broker.subscribeAcknowledged(client.session, [{ filter: 't', options: subscription(1) }], (isNew) => events.push(`acknowledged ${String(isNew)}`));
    assert.deepEqual(await broker.publish(message('t', 'during', 1)), { matched: false }, 'not routed while its record is being written');
    release();
    await subscribed;
    await broker.publish(message('t', 'after', 1));
    await settle();
    assert.deepEqual(events, ['acknowledged true', 'delivered after']);
    await broker.close();
  });

  test('a session that ended while its subscription was being written gets no route and no acknowledgement', async () => {
    const { broker } = await open();
    const client = await connect(broker, 'gone', { expirySeconds: 600 });
    let acknowledged = false;
    const subscribed = broker.subscribeAcknowledged(client.session, [{ filter: 't', options: subscription(1) }], () => (acknowledged = true));
    await connect(broker, 'gone', { cleanStart: true });
    await subscribed;
    assert.equal(acknowledged, false);
    assert.deepEqual(await broker.publish(message('t', 'x', 1)), { matched: false });
    await broker.close();
  });
});

describe('regressions: races and restarts', () => {
  test('a connection lost while its session reads back offline messages loses nothing published afterwards', async () => {
    const { broker } = await open({ dataShards: 1 });
    const first = await connect(broker, 's', { expirySeconds: 600 });
    await subscribe(broker, first, 't', subscription(1));
    await broker.disconnect(first.session, first.sink, { publishWill: false });
    await broker.publish(message('t', 'while offline', 1));
    // Connect, then lose the connection before the read-back of 'while offline' returns.
    const second = await connect(broker, 's', { cleanStart: false, expirySeconds: 600 });
    await broker.disconnect(second.session, second.sink, { publishWill: false });
    await settle();
    await broker.publish(message('t', 'after the drop', 1));
    const third = await connect(broker, 's', { cleanStart: false, expirySeconds: 600 });
    assert.deepEqual(await receiveAll(third), ['while offline', 'after the drop']);
    await broker.close();
  });

  test('a takeover while a read-back is on its way loses none of the queued messages', async () => {
    const store = new MemoryShardStore();
    const read = store.read.bind(store);
    // A journal on disk or across the network answers some turns later.
    store.read = async (...args: Parameters<MemoryShardStore['read']>) => {
      const records = await read(...args);
      for (let turn = 0; turn < 5; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
      return records;
    };
    const { broker } = await open({ store, dataShards: 1, maxQueuedBytes: 1000 });
    const first = await connect(broker, 's', { expirySeconds: 600, sink: new RecordingSink(1) });
    await subscribe(broker, first, 't', subscription(1));
    const sent: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      sent.push(`m${i}`);
      await broker.publish(message('t', `m${i}`, 1));
    }
    // Acknowledging three lets the queue fall under half the bound: a read-back starts while
    // m4 is still queued.
    for (let i = 0; i < 3; i += 1) first.session.ack((first.sink.deliveries[i] as Delivery).tag);
    const second = await connect(broker, 's', { cleanStart: false, expirySeconds: 600, sink: new RecordingSink(1) });
    // Reads take 5 turns here: wait long enough for two of them in a row.
    const received = new Set([...first.sink.payloads().slice(0, 3), ...(await receiveAll(second, 10))]);
    assert.deepEqual([...received].sort(), sent);
    await broker.close();
  });

  test('a subscription made while the session catches up does not bring messages published before it', async () => {
    const { broker } = await open({ dataShards: 1 });
    const first = await connect(broker, 's', { expirySeconds: 600 });
    await subscribe(broker, first, 'a', subscription(1));
    await broker.disconnect(first.session, first.sink, { publishWill: false });
    await broker.publish(message('a', 'a while offline', 1));
    await broker.publish(message('b', 'b before the subscription', 1));
    // Clients subscribe right after CONNACK, before the read-back of offline messages is done.
    const second = await connect(broker, 's', { cleanStart: false, expirySeconds: 600 });
    await subscribe(broker, second, 'b', subscription(1));
    await broker.publish(message('b', 'b after the subscription', 1));
    assert.deepEqual(await receiveAll(second), ['a while offline', 'b after the subscription']);
    await broker.close();
  });

  test('a session that ends with its connection is not resumed by a takeover: no session present, no subscriptions, also after a restart', async () => {
    // Goal: expiry 0 (3.1.1 clean session, 5.0 Session Expiry 0) means the session ends with its
    // connection, also when the connection ends because another one takes the client id over.
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const { broker } = await open({ store, clock });
    const transient = await connect(broker, 'c', { expirySeconds: 0 });
    await subscribe(broker, transient, 't', subscription(1));
    const durable = await connect(broker, 'c', { cleanStart: false, expirySeconds: 600 });
    assert.equal(durable.sessionPresent, false);
    assert.deepEqual([...durable.session.subscriptions.keys()], []);
    assert.deepEqual(await broker.publish(message('t', 'nobody subscribes', 1)), { matched: false }, 'the old subscription is routed no more');
    await broker.close();
    const reopened = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock, cursorFlushMs: 1000 });
    const back = await connect(reopened, 'c', { cleanStart: false, expirySeconds: 600 });
    assert.equal(back.sessionPresent, true, 'the session the takeover made is persistent');
    assert.deepEqual([...back.session.subscriptions.keys()], []);
    await reopened.close();
  });

  test('a session resumed with expiry 0 ends with its connection: a restart neither revives it nor publishes its cancelled will', async () => {
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const { broker } = await open({ store, clock });
    // Retained, so a will published during the restart is still visible afterwards.
    const first = await connect(broker, 'c', { expirySeconds: 600, will: will('wills/c', 'gone', 5, true) });
    await subscribe(broker, first, 't', subscription(1));
    await broker.disconnect(first.session, first.sink, { publishWill: true });
    await clock.advance(1_000);
    // Back before the will delay (cancels the will), now with expiry 0.
    await connect(broker, 'c', { cleanStart: false, expirySeconds: 0 });
    await clock.advance(10_000);
    assert.equal(broker.retained.size, 0);
    await broker.close();
    const reopened = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock, cursorFlushMs: 1000 });
    await clock.advance(60_000);
    await settle();
    assert.equal(reopened.retained.get('wills/c'), undefined, 'the will cancelled by the reconnect stays cancelled');
    assert.ok(!reopened.sessionTable.sessions.has('c'), 'the expiry-0 session ended with the shutdown');
    await reopened.close();
  });

  test('connecting a new persistent session: the session table holds what $sessions holds', async () => {
    const { broker, store } = await open();
    await connect(broker, 'c', { expirySeconds: 600 });
    const replayed = new SessionTable();
    for (const record of await store.read(SESSIONS_SHARD, 0)) replayed.apply(record);
    assert.deepEqual(broker.sessionTable.snapshot(), replayed.snapshot());
    await broker.close();
  });
});

describe('QoS 2 released state across a restart', () => {
  test('a delivery the client PUBREC-ed, then disconnected and the broker restarted: only PUBREL again, no second PUBLISH', async () => {
    const store = new MemoryShardStore();
    const first = await open({ store, dataShards: 1 });
    const subscriber = await connect(first.broker, 'rel', { cleanStart: false, expirySeconds: 300 });
    await subscribe(first.broker, subscriber, 'q2/#', subscription(2));
    await first.broker.publish(message('q2/x', 'once', 2));
    await settle();
    assert.equal(subscriber.sink.deliveries.length, 1);
    const delivered = subscriber.sink.deliveries[0] as Delivery;
    assert.ok(subscriber.session.hold(delivered.tag));
    await first.broker.recordRelease(subscriber.session);
    await first.broker.disconnect(subscriber.session, subscriber.sink, { publishWill: false });
    await first.broker.close();

    const second = await open({ store, dataShards: 1 });
    const again = await connect(second.broker, 'rel', { cleanStart: false, expirySeconds: 300 });
    await settle();
    assert.equal(again.sessionPresent, true);
    assert.deepEqual(again.sink.resumedHeld, [delivered.tag], 'the PUBREL is resent');
    assert.deepEqual(again.sink.deliveries.map((delivery) => delivery.message.payload.toString()), [], 'the message is not sent again');
    assert.ok(again.session.ack(delivered.tag), 'PUBCOMP completes it');
    await second.broker.close();
  });

  // MQTT 4.6 orders PUBACKs among QoS 1 deliveries and PUBRECs among QoS 2 ones, not one kind
  // against the other: a client may complete a later QoS 2 delivery before it PUBACKs an earlier
  // QoS 1 one, so the session's cursor stays below an acknowledged delivery.
  for (const ending of ['a clean close', 'a crash after the cursor write'] as const) {
    test(`a QoS 2 delivery completed above an unacknowledged QoS 1 one, then ${ending}: the QoS 1 one is sent again, the QoS 2 one is not`, async () => {
      const store = new MemoryShardStore();
      const first = await open({ store, dataShards: 1 });
      const subscriber = await connect(first.broker, 'mixed', { cleanStart: false, expirySeconds: 300 });
      await subscribe(first.broker, subscriber, 'mix/#', subscription(2));
      await first.broker.publish(message('mix/a', 'qos1', 1));
      await first.broker.publish(message('mix/b', 'qos2', 2));
      await settle();
      assert.deepEqual(subscriber.sink.deliveries.map((delivery) => [delivery.message.payload.toString(), delivery.qos]), [['qos1', 1], ['qos2', 2]]);
      const [qos1, qos2] = subscriber.sink.deliveries as [Delivery, Delivery];
      assert.ok(subscriber.session.hold(qos2.tag), 'PUBREC');
      await first.broker.recordRelease(subscriber.session);
      assert.ok(subscriber.session.ack(qos2.tag), 'PUBCOMP');
      if (ending === 'a clean close') await first.broker.close();
      // The process dies after its cursors reached the journal (first is never closed).
      else await first.broker.flushCursors();

      const second = await open({ store, dataShards: 1 });
      const again = await connect(second.broker, 'mixed', { cleanStart: false, expirySeconds: 300 });
      await settle();
      assert.deepEqual(again.sink.deliveries.map((delivery) => [delivery.message.payload.toString(), delivery.redelivered, delivery.tag]), [['qos1', true, qos1.tag]], 'the QoS 1 delivery again with DUP, and no second PUBLISH of the completed QoS 2 one');
      assert.deepEqual(again.sink.resumedHeld, [], 'nor a PUBREL: its PUBCOMP came');
      acknowledgeAll(again);
      assert.deepEqual(again.session.cursors(), { acked: [2], sent: [2] }, 'with both acknowledged, the cursor is past them and keeps no offsets above it');
      await second.broker.close();
    });
  }
});

describe('introspection and operator actions', () => {
  test('clients, sessions, subscriptions and topic counts describe what is connected and stored', async () => {
    const { broker } = await open();
    const online = await connect(broker, 'online', { cleanStart: true, expirySeconds: 0 });
    await subscribe(broker, online, 'a/#', subscription(1));
    const durable = await connect(broker, 'durable', { cleanStart: true, expirySeconds: 60 });
    await subscribe(broker, durable, 'b/+', subscription(2, { subscriptionId: 7 }));
    await broker.disconnect(durable.session, durable.sink, { publishWill: false });
    await broker.publish(message('a/1', 'x', 0));
    await broker.publish(message('a/1', 'y', 0));
    await broker.publish(message('b/2', 'z', 1));
    assert.deepEqual(
      broker.clients().map((client) => [client.clientId, client.subscriptions, client.expirySeconds]),
      [['online', 1, 0]],
    );
    assert.deepEqual(
      broker.sessions().map((session) => [session.clientId, session.online, session.durable, session.subscriptions]),
      [
        ['durable', false, true, 1],
        ['online', true, false, 1],
      ],
    );
    assert.deepEqual(
      broker.subscriptions().map((entry) => [entry.clientId, entry.filter, entry.options.qos, entry.options.subscriptionId]),
      [
        ['durable', 'b/+', 2, 7],
        ['online', 'a/#', 1, undefined],
      ],
    );
    assert.deepEqual(broker.topicCounts(), [
      { topic: 'a/1', messages: 2 },
      { topic: 'b/2', messages: 1 },
    ]);
    await broker.close();
  });

  test('kick closes the connection for an administrative action; clearRetained removes a retained message without delivering', async () => {
    const { broker } = await open();
    const client = await connect(broker, 'kicked');
    assert.equal(broker.kick('kicked'), true);
    assert.equal(client.sink.closedBy, 'administrative-action');
    assert.equal(broker.kick('nobody'), false);
    await broker.publish(message('r/1', 'kept', 1, { retain: true }));
    const watcher = await connect(broker, 'watcher');
    await subscribe(broker, watcher, 'r/#', subscription(1, { sendRetained: 'never' }));
    assert.equal(broker.retained.get('r/1')?.payload.toString(), 'kept');
    assert.equal(await broker.clearRetained('r/1'), true);
    assert.equal(broker.retained.get('r/1'), undefined);
    assert.equal(await broker.clearRetained('r/1'), false);
    await settle();
    assert.deepEqual(watcher.sink.deliveries, [], 'clearing is not a publish');
    await broker.close();
  });
});

describe('shards for large messages', () => {
  test('new broker shards accept records up to MESSAGE_RECORD_MAX_BYTES; shards created before with less are named in a start-up warning', async () => {
    const fresh = new MemoryShardStore();
    const broker = await Broker.open({ store: fresh, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024 });
    const limits = (await fresh.list()).filter((info) => info.name.startsWith('mqtt.') || info.name === '$retained' || info.name === '$sessions').map((info) => [info.name, info.config.maxRecordBytes]);
    assert.deepEqual(limits, [
      ['$retained', MESSAGE_RECORD_MAX_BYTES],
      ['$sessions', MESSAGE_RECORD_MAX_BYTES],
      ['mqtt.0', MESSAGE_RECORD_MAX_BYTES],
      ['mqtt.1', MESSAGE_RECORD_MAX_BYTES],
    ]);
    // A 9 MiB payload: over the journal's default record limit (8 MiB), under the broker's.
    await broker.publish(message('big/one', 'x'.repeat(9 * 1024 * 1024), 1, { retain: true }));
    await broker.close();

    const old = new MemoryShardStore();
    await old.create('mqtt.0', { maxRecordBytes: 8 * 1024 * 1024 });
    const capture = recordingLogger('warn');
    const reopened = await Broker.open({ store: old, logger: capture.logger, dataShards: 1, maxQueuedBytes: 1024 * 1024 });
    const warning = capture.lines().find((line) => line.msg?.includes('record limit'));
    assert.deepEqual(warning?.shards, ['mqtt.0'], `a warning naming the old shard; got ${JSON.stringify(capture.lines())}`);
    await reopened.close();
  });
});

describe('a full disk', () => {
  /** A memory store whose data-shard appends fail as a journal on a full file system does. */
  class FullDiskStore extends MemoryShardStore {
    full = false;
    override async append(name: string, records: Parameters<MemoryShardStore['append']>[1], options?: Parameters<MemoryShardStore['append']>[2]): ReturnType<MemoryShardStore['append']> {
      if (this.full && name.startsWith('mqtt.')) throw JournalErrors.diskFull.create({ shard: name }, 'write', `${name}/00000000000000000000.log`, 'ENOSPC: no space left on device');
      return super.append(name, records, options);
    }
  }

  test('a publish whose append ran out of space is refused with SL_BROKER_WRITES_BLOCKED and tells the node; later ones go through once space is back', async () => {
    const store = new FullDiskStore();
    const { broker } = await open({ store });
    const subscriber = await connect(broker, 'sub');
    await subscribe(broker, subscriber, 't/#', subscription(1));
    let told = 0;
    broker.onDiskFull = () => {
      told += 1;
    };
    store.full = true;
    // A retained publish appends twice (data and $retained): the failure must not leave the other one unhandled.
    await assert.rejects(broker.publish(message('t/1', 'lost', 1, { retain: true })), (error: { code?: string; cause?: { code?: string } }) => error.code === 'SL_BROKER_WRITES_BLOCKED' && error.cause?.code === 'SL_JOURNAL_DISK_FULL');
    assert.equal(told, 1);
    store.full = false;
    await broker.publish(message('t/1', 'kept', 1));
    assert.deepEqual(await receiveAll(subscriber), ['kept']);
    await broker.close();
  });
});
