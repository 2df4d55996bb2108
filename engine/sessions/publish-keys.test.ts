// Publish keys (MQTT inbound QoS 2) across a crash (publish-keys.ts, Broker.publishOnce and
// releasePublishKey).
//
// Goal: for every crash window of a persistent session's QoS 2 PUBLISH (marker durable but not
// the message; message durable but not its stored marker; release recorded or not), the broker
// that starts over the same journal knows exactly the packet ids whose message is stored and not
// released, so a resend is stored once; and PUBCOMP's precondition (the release is durable)
// holds.
// Method: a MemoryShardStore behind a gate that holds chosen appends forever (the crash point);
// the first broker is abandoned without close(), as a kill -9 leaves it, and a second broker
// opens the same store. Clients are recording sinks; the clock is manual.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { AppendOptions, AppendResult, RecordInput } from '../../journal/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import type { Message, QoS } from '../messages/message.js';
import { SESSIONS_SHARD, SessionTable } from './session-events.js';
import type { Session } from './session.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });

/** Appends the test holds back: they never reach the store, as if the process died before. */
type Hold = (shard: string, records: readonly RecordInput[]) => boolean;

function gatedStore(store: MemoryShardStore): { store: ShardStore; hold(predicate: Hold | undefined): void; held(): number } {
  let predicate: Hold | undefined;
  let held = 0;
  const gated = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'append') {
        return (shard: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> => {
          if (predicate?.(shard, records) === true) {
            held += 1;
            return new Promise<AppendResult>(() => undefined);
          }
          return target.append(shard, records, options);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: gated, hold: (next) => (predicate = next), held: () => held };
}

const isData = (shard: string): boolean => shard.startsWith('mqtt.');
const storedMarker = (shard: string, records: readonly RecordInput[]): boolean =>
  shard === SESSIONS_SHARD && records.some((record) => record.key?.toString().startsWith('q:') === true && record.value?.toString() === '{}');
const releaseMarker = (shard: string, records: readonly RecordInput[]): boolean => shard === SESSIONS_SHARD && records.some((record) => record.key?.toString().startsWith('q:') === true && record.value === null);

async function openBroker(store: ShardStore, clock = new ManualClock()): Promise<Broker> {
  return Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock, cursorFlushMs: 1000 });
}

async function connect(broker: Broker, clientId: string): Promise<{ session: Session; sink: RecordingSink; sessionPresent: boolean }> {
  const sink = new RecordingSink(100);
  const { session, sessionPresent } = await broker.connect({ clientId, cleanStart: false, expirySeconds: 300, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  return { session, sink, sessionPresent };
}

function message(payload: string, timestamp: number, qos: QoS = 2): Message {
  return { topic: 'in/q2', payload: Buffer.from(payload), qos, retain: false, publisherId: 'pub', timestamp, properties: undefined };
}

async function replayedMarkers(store: ShardStore, clientId: string): Promise<Record<string, unknown>> {
  const table = new SessionTable();
  for (let offset = 0; ; ) {
    const records = await store.read(SESSIONS_SHARD, offset, { maxRecords: 1000 });
    if (records.length === 0) break;
    for (const record of records) table.apply(record);
    offset = (records[records.length - 1] as (typeof records)[number]).offset + 1;
  }
  return Object.fromEntries(table.sessions.get(clientId)?.publishKeys ?? []);
}

/** A subscriber with a persistent session on the topic, offline, so it reads everything back. */
async function offlineSubscriber(broker: Broker): Promise<void> {
  const subscriber = await connect(broker, 'sub');
  await broker.subscribe(subscriber.session, [{ filter: 'in/#', options: { qos: 2, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  await broker.disconnect(subscriber.session, subscriber.sink, { publishWill: false });
}

/** What the subscriber receives after a restart (it acknowledges as it goes). */
async function received(broker: Broker): Promise<string[]> {
  const subscriber = await connect(broker, 'sub');
  for (let round = 0; round < 5; round += 1) {
    await settle();
    for (const delivery of subscriber.sink.deliveries) {
      subscriber.session.hold(delivery.tag);
      subscriber.session.ack(delivery.tag);
    }
  }
  return subscriber.sink.deliveries.map((delivery) => delivery.message.payload.toString());
}

describe('inbound QoS 2 across a crash', () => {
  test('killed after the marker, before the message reached the journal: the marker is dropped at start and the resend is stored once', async () => {
    const memory = new MemoryShardStore();
    const gate = gatedStore(memory);
    const first = await openBroker(gate.store);
    await offlineSubscriber(first);
    const publisher = await connect(first, 'pub');
    gate.hold(isData);
    void first.publishOnce(publisher.session, 7, message('m1', 1000)).catch(() => undefined);
    await settle();
    assert.equal(gate.held(), 1, 'the data append was reached after the marker');
    assert.deepEqual(await replayedMarkers(memory, 'pub'), { 7: { pending: { shard: first.shardOf('in/q2'), from: 0, timestamp: 1000 } } }, 'the pending marker is durable first');

    const second = await openBroker(memory);
    assert.deepEqual(await replayedMarkers(memory, 'pub'), {}, 'no record of the message: the marker is gone');
    const again = await connect(second, 'pub');
    assert.equal(again.session.publishKeys.has(7), false);
    await second.publishOnce(again.session, 7, message('m1', 2000));
    assert.deepEqual(await received(second), ['m1']);
  });

  test('killed after the message, before its stored marker: the marker is kept at start, so the resend is not stored again', async () => {
    const memory = new MemoryShardStore();
    const gate = gatedStore(memory);
    const first = await openBroker(gate.store);
    await offlineSubscriber(first);
    const publisher = await connect(first, 'pub');
    gate.hold(storedMarker);
    await first.publishOnce(publisher.session, 9, message('m1', 1000));
    await settle();
    assert.equal(gate.held(), 1, 'the stored marker was held back');

    const second = await openBroker(memory);
    assert.deepEqual(await replayedMarkers(memory, 'pub'), { 9: {} }, 'the record was found: the marker now says stored');
    const again = await connect(second, 'pub');
    assert.equal(again.session.publishKeys.get(9), true, 'the resent PUBLISH finds its packet id received');
    assert.deepEqual(await received(second), ['m1']);
  });

  test('a pending marker is not settled by an older message that had the same packet id', async () => {
    const memory = new MemoryShardStore();
    const gate = gatedStore(memory);
    const first = await openBroker(gate.store);
    await offlineSubscriber(first);
    const publisher = await connect(first, 'pub');
    await first.publishOnce(publisher.session, 5, message('old', 1000));
    await first.releasePublishKey(publisher.session, 5);
    gate.hold(isData);
    void first.publishOnce(publisher.session, 5, message('new', 1001)).catch(() => undefined);
    await settle();

    const second = await openBroker(memory);
    assert.deepEqual(await replayedMarkers(memory, 'pub'), {}, 'the new message never reached the journal');
    const again = await connect(second, 'pub');
    await second.publishOnce(again.session, 5, message('new', 2000));
    assert.deepEqual(await received(second), ['old', 'new']);
  });

  test('PUBREL: the release resolves only once its tombstone is durable; a released id is gone after a restart, an unreleased one stays', async () => {
    const memory = new MemoryShardStore();
    const gate = gatedStore(memory);
    const first = await openBroker(gate.store);
    const publisher = await connect(first, 'pub');
    await first.publishOnce(publisher.session, 1, message('a', 1000));
    await first.publishOnce(publisher.session, 2, message('b', 1001));
    await first.releasePublishKey(publisher.session, 1);
    gate.hold(releaseMarker);
    let released = false;
    void first.releasePublishKey(publisher.session, 2).then(() => (released = true));
    await settle();
    assert.equal(gate.held(), 1);
    assert.equal(released, false, 'no PUBCOMP while the release is not durable');

    const second = await openBroker(memory);
    assert.deepEqual(await replayedMarkers(memory, 'pub'), { 2: {} });
    const again = await connect(second, 'pub');
    assert.deepEqual([...again.session.publishKeys.keys()], [2]);
  });

  test('a session that ends takes its markers with it; a session with expiry 0 writes none', async () => {
    const memory = new MemoryShardStore();
    const broker = await openBroker(memory);
    const publisher = await connect(broker, 'pub');
    await broker.publishOnce(publisher.session, 3, message('a', 1000));
    await broker.disconnect(publisher.session, publisher.sink, { publishWill: false, expirySeconds: 0 });
    const sink = new RecordingSink(100);
    const { session } = await broker.connect({ clientId: 'pub', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
    await broker.publishOnce(session, 4, message('b', 1001));
    await settle();
    const table = new SessionTable();
    for (const record of await memory.read(SESSIONS_SHARD, 0, { maxRecords: 1000 })) table.apply(record);
    assert.equal(table.sessions.has('pub'), false, 'no session, and no marker bringing one back');
    assert.deepEqual(broker.sessionTable.snapshot(), table.snapshot());
  });
});
