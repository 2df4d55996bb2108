// Two brokers with `peers` over one memory store, in one process (engine/peers, the session
// lifecycle's claims, hand-overs, heartbeats and adoption): what tests/mqtt-multi-broker.test.ts
// checks with real processes, here step by step under a manual clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/index.js';
import { Broker } from '../broker.js';
import type { Message } from '../messages/message.js';
import { metaRecord, SESSIONS_SHARD, type WillMessage } from '../sessions/session-events.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });
const TAKEOVER_WAIT_MS = 3_000;

async function openPeer(store: MemoryShardStore, clock: ManualClock, brokerId: string): Promise<Broker> {
  return Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000, peers: { brokerId, takeoverWaitMs: TAKEOVER_WAIT_MS } });
}

function message(topic: string, payload: string): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, publisherId: 'publisher', timestamp: 1_700_000_000_000, properties: undefined };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 2000 && !condition(); turn += 1) await settle();
  assert.ok(condition(), what);
}

async function connect(broker: Broker, clientId: string, options: { will?: WillMessage } = {}): Promise<{ sink: RecordingSink; sessionPresent: boolean; session: Awaited<ReturnType<Broker['connect']>>['session'] }> {
  const sink = new RecordingSink();
  const { session, sessionPresent } = await broker.connect({ clientId, cleanStart: false, expirySeconds: 600, will: options.will, protocolVersion: 5, sink });
  session.attach(sink);
  return { sink, sessionPresent, session };
}

describe('brokers sharing one store (peers)', () => {
  test('a message published at one broker reaches a subscriber at the other, once', async () => {
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const a = await openPeer(store, clock, 'a');
    const b = await openPeer(store, clock, 'b');
    const subscriber = await connect(b, 'sub');
    await b.subscribe(subscriber.session, [{ filter: 't/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
    for (const payload of ['1', '2', '3']) await a.publish(message('t/x', payload));
    await b.publish(message('t/y', '4'));
    await waitFor(() => subscriber.sink.deliveries.length >= 4, 'four deliveries at b');
    for (let i = 0; i < 20; i += 1) await settle();
    assert.deepEqual(subscriber.sink.payloads().sort(), ['1', '2', '3', '4']);
    await Promise.all([a.close(), b.close()]);
  });

  test('a connect at b takes a client held at a over: a closes it as taken over, b resumes its cursors', async () => {
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const a = await openPeer(store, clock, 'a');
    const b = await openPeer(store, clock, 'b');
    const first = await connect(a, 'mover');
    await a.subscribe(first.session, [{ filter: 'm', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
    await waitFor(() => b.sessionTable.sessions.get('mover')?.subscriptions.has('m') === true, 'b sees the subscription');
    for (const payload of ['old-1', 'old-2']) await b.publish(message('m', payload));
    await waitFor(() => first.sink.deliveries.length === 2, 'a delivers both');
    for (const delivery of first.sink.deliveries) first.session.ack(delivery.tag);
    const second = await connect(b, 'mover');
    assert.equal(first.sink.closedBy, 'session-taken-over');
    assert.equal(second.sessionPresent, true);
    assert.equal(b.sessionTable.sessions.get('mover')?.meta.broker, 'b');
    await a.publish(message('m', 'new'));
    await waitFor(() => second.sink.deliveries.length >= 1, 'b delivers the new message');
    for (let i = 0; i < 20; i += 1) await settle();
    assert.deepEqual(second.sink.payloads(), ['new'], 'nothing a\'s connection acknowledged comes again');
    assert.equal(a.onlineCount, 0);
    await Promise.all([a.close(), b.close()]);
  });

  test('a holder that never answers: the connect waits takeover-wait-ms, then takes the session; the silent broker\'s other sessions are adopted (their wills published)', async () => {
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const b = await openPeer(store, clock, 'b');
    const watcher = await connect(b, 'watcher');
    await b.subscribe(watcher.session, [{ filter: 'wills/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
    // What a broker 'ghost' that then died left in `$sessions`: two clients connected there.
    const lostWill: WillMessage = { topic: 'wills/lost', payload: Buffer.from('gone'), qos: 1, retain: false, properties: undefined, delaySeconds: 0 };
    await store.append(SESSIONS_SHARD, [metaRecord('stuck', { expirySeconds: 600, connected: true, broker: 'ghost' }), metaRecord('lost', { expirySeconds: 600, connected: true, broker: 'ghost', will: lostWill })]);
    await waitFor(() => b.sessionTable.sessions.get('lost')?.meta.broker === 'ghost', 'b applies the ghost\'s records');
    let connected = false;
    const connecting = connect(b, 'stuck').then((result) => {
      connected = true;
      return result;
    });
    for (let i = 0; i < 50; i += 1) await settle();
    assert.equal(connected, false, 'waits for the holder');
    await clock.advance(TAKEOVER_WAIT_MS + 1);
    const stuck = await connecting;
    assert.equal(stuck.sessionPresent, true);
    // The ghost was never heard of: after takeover-wait-ms it is gone and b adopts 'lost'.
    await clock.advance(TAKEOVER_WAIT_MS);
    await waitFor(() => watcher.sink.payloads().includes('gone'), 'the will of the dead broker\'s client');
    assert.equal(b.sessionTable.sessions.get('lost')?.meta.connected, false);
    assert.equal(b.sessionTable.sessions.get('lost')?.meta.broker, 'b');
    await b.close();
  });
});
