// The engine over a journal that goes away and comes back.
//
// Goal: nothing the broker starts during an outage ends in an unhandled rejection, a publish
// is refused with SL_BROKER_WRITES_BLOCKED once the gate is closed (whether it found the store
// down itself or was refused up front), and the writes nobody can resend (session records,
// cursors, wills) wait out the outage and land, in order, when the journal is back.
// Method: a MemoryShardStore whose appends fail with SL_REMOTE_UNAVAILABLE while `down` is
// set, and that closes the broker's write gate on such a failure the way the node runtime's
// JournalWatch does; a manual clock drives the retry timers. A process-wide
// 'unhandledRejection' listener fails the test if anything floats.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { AppendOptions, AppendResult, RecordInput } from '../../journal/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ShardModelErrors } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import type { Message } from '../messages/message.js';
import { SESSIONS_SHARD, SessionTable } from '../sessions/session-events.js';
import { ShardAppender } from '../shard-appender.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });

class FlakyStore extends MemoryShardStore {
  down = false;
  onUnreachable: () => void = () => undefined;

  override async append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    if (this.down) {
      this.onUnreachable();
      throw ShardModelErrors.remoteUnavailable.create({ address: 'test' }, 'test', 'journal stopped');
    }
    return super.append(name, records, options);
  }
}

function message(topic: string, payload: string, retain = false): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain, publisherId: 'p', timestamp: 1, properties: undefined };
}

const floating: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  floating.push(reason);
};
before(() => process.on('unhandledRejection', onUnhandled));
after(() => process.off('unhandledRejection', onUnhandled));

async function open(): Promise<{ store: FlakyStore; clock: ManualClock; broker: Broker }> {
  const store = new FlakyStore();
  const clock = new ManualClock();
  const broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock });
  store.onUnreachable = () => broker.writeGate.block('journal-unavailable', 'test: journal stopped', clock.now());
  return { store, clock, broker };
}

describe('a journal outage under the engine', () => {
  test('a retained publish that finds the journal down is refused, with nothing left floating', async () => {
    const { store, broker } = await open();
    store.down = true;
    await assert.rejects(broker.publish(message('a/b', 'x', true)), { code: 'SL_BROKER_WRITES_BLOCKED' });
    // Refused up front now that the gate is closed.
    await assert.rejects(broker.publish(message('a/b', 'y', true)), { code: 'SL_BROKER_WRITES_BLOCKED' });
    assert.equal(broker.stats.refused, 2);
    await settle();
    assert.deepEqual(floating, []);
    store.down = false;
    broker.writeGate.unblock('journal-unavailable');
    assert.deepEqual(await broker.publish(message('a/b', 'z', true)), { matched: false });
    assert.equal(broker.retained.get('a/b')?.payload.toString(), 'z');
    await broker.close();
  });

  test('a disconnect and its cursors made during the outage are written, in order, once it ends', async () => {
    const { store, clock, broker } = await open();
    const sink = new RecordingSink();
    const { session } = await broker.connect({ clientId: 'durable', cleanStart: true, expirySeconds: 3600, will: undefined, protocolVersion: 5, sink });
    session.attach(sink);
    store.down = true;
    const disconnected = broker.disconnect(session, sink, { publishWill: false });
    let settled = false;
    void disconnected.then(() => (settled = true));
    await clock.advance(5_000);
    assert.equal(settled, false, 'the disconnect waits for the journal, it is not dropped');
    store.down = false;
    broker.writeGate.unblock('journal-unavailable');
    await clock.advance(2_000);
    await disconnected;
    const table = new SessionTable();
    for (const record of await store.read(SESSIONS_SHARD, 0)) table.apply(record);
    assert.equal(table.sessions.get('durable')?.meta.connected, false);
    assert.deepEqual(floating, []);
    await broker.close();
  });

  test('a will due during the outage is published when writes resume', async () => {
    const { store, clock, broker } = await open();
    const watcherSink = new RecordingSink();
    const watcher = await broker.connect({ clientId: 'watcher', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink: watcherSink });
    watcher.session.attach(watcherSink);
    await broker.subscribe(watcher.session, [{ filter: 'wills/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
    const sink = new RecordingSink();
    const will = { topic: 'wills/gone', payload: Buffer.from('bye'), qos: 1 as const, retain: false, delaySeconds: 0, properties: undefined };
    const { session } = await broker.connect({ clientId: 'mortal', cleanStart: true, expirySeconds: 0, will, protocolVersion: 5, sink });
    session.attach(sink);
    store.down = true;
    broker.writeGate.block('journal-unavailable', 'test', clock.now());
    await broker.disconnect(session, sink, { publishWill: true });
    await settle();
    assert.equal(watcherSink.deliveries.length, 0);
    store.down = false;
    broker.writeGate.unblock('journal-unavailable');
    await settle();
    assert.deepEqual(watcherSink.deliveries.map((delivery) => delivery.message.payload.toString()), ['bye']);
    assert.deepEqual(floating, []);
    await clock.advance(1_000);
    await broker.close();
  });

  test('persist() keeps order across failures; add() callers still hear theirs', async () => {
    const store = new FlakyStore();
    await store.create('s', {});
    const clock = new ManualClock();
    const appender = new ShardAppender<null, void>(store, 's', () => undefined, undefined, clock);
    store.down = true;
    const first = appender.persist([{ value: Buffer.from('1') }], null);
    const refused = appender.add({ value: Buffer.from('2') }, null).then(
      () => 'written',
      (error: { code?: string }) => error.code,
    );
    const second = appender.persist([{ value: Buffer.from('3') }], null);
    await settle();
    await clock.advance(1_000);
    assert.equal(await refused, 'SL_REMOTE_UNAVAILABLE');
    store.down = false;
    await clock.advance(2_000);
    await Promise.all([first, second]);
    assert.deepEqual((await store.read('s', 0)).map((record) => record.value?.toString()), ['1', '3']);
    // After stopRetrying (shutdown) a failure rejects at once.
    store.down = true;
    appender.stopRetrying();
    await assert.rejects(appender.persist([{ value: Buffer.from('4') }], null), { code: 'SL_REMOTE_UNAVAILABLE' });
  });
});
