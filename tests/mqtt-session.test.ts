// Persistent and clean sessions through `shardline start`, in both topologies.
//
// Goal: a 3.1.1 session with clean session 0 (a 5.0 session with Clean Start 0 and a Session
// Expiry Interval) keeps its subscriptions while the client is away and queues the QoS 1 and
// QoS 2 messages (not QoS 0) published meanwhile, delivered in publish order on reconnect with
// Session Present 1; a clean session / Clean Start 1 discards it; a 5.0 session ends at
// disconnect with expiry 0 and after its expiry interval otherwise; QoS 1/2 deliveries left
// unacknowledged are sent again with DUP=1 and the same packet id, and an unanswered PUBREL
// is sent again.
// Method: one broker per topology; mqtt.js clients for the session flows; raw-socket
// subscribers (they never acknowledge unless told to) for the resend cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IPublishPacket, QoS } from 'mqtt-packet';
import { brokerForSuite, usingMosquitto } from './support/broker-process.js';
import {
  closeAllClients,
  connectClient,
  RawClient,
  sleep,
  subscriber,
  uniqueClientId,
  uniqueTopic,
  type ConnectOptions,
  type ProtocolVersion,
} from './support/mqtt-client.js';

const TOPOLOGIES = usingMosquitto() ? (['single'] as const) : (['single', 'split'] as const);

/** PINGREQ, then PINGRESP: the broker has handled every packet this raw client sent before. */
async function pingRoundTrip(raw: RawClient): Promise<void> {
  const from = raw.packets.length;
  raw.send({ cmd: 'pingreq' });
  await raw.waitForPacket((p) => p.cmd === 'pingresp', { from, what: 'PINGRESP' });
}

function label(version: ProtocolVersion): string {
  return version === 4 ? '3.1.1' : '5.0';
}

/** Connect options for a session that outlives the connection. */
function persistent(version: 4 | 5, clientId: string): ConnectOptions {
  return version === 5 ? { version, clientId, clean: false, properties: { sessionExpiryInterval: 60 } } : { version, clientId, clean: false };
}

for (const topology of TOPOLOGIES) {
  describe(`MQTT sessions (${topology})`, () => {
    const broker = brokerForSuite({ topology }, closeAllClients);

    for (const version of [4, 5] as const) {
      // Independent topics and client ids: the cases run side by side to keep the file short.
      describe(label(version), { concurrency: true }, () => {
        it('a persistent session keeps its subscriptions and queues QoS 1/2 (not QoS 0) in order while offline', async () => {
          const clientId = uniqueClientId('queue');
          const topic = uniqueTopic('offline');
          const first = await subscriber(broker.url, topic, { ...persistent(version, clientId), qos: 2 });
          assert.equal(first.connack.sessionPresent, false, 'a new session');
          await first.end();
          const pub = await connectClient(broker.url, { version });
          const sent: [string, QoS][] = [];
          // 13 messages, so the last one is QoS 1: its PUBACK means the broker has routed every
          // earlier one (one connection's packets are handled in order) before the reconnect.
          for (let i = 0; i < 13; i += 1) {
            const qos = ([1, 2, 0] as const)[i % 3]!;
            sent.push([`m${i}`, qos]);
            await pub.publish(topic, `m${i}`, { qos });
          }
          const back = await connectClient(broker.url, persistent(version, clientId));
          assert.equal(back.connack.sessionPresent, true);
          const expected = sent.filter(([, qos]) => qos > 0);
          await back.waitForMessages(expected.length);
          // Barrier: a marker on the session's topic comes after everything the session kept.
          await back.expectNothingBeforeMarker(pub, topic, { from: expected.length, what: 'no QoS 0 message kept for an offline session' });
          // Wire order: mqtt.js emits a QoS 2 message only at PUBREL, after later QoS 1 ones.
          assert.deepEqual(
            back.packets.filter((p): p is IPublishPacket => p.cmd === 'publish' && !p.payload.toString().startsWith('marker ')).map((p) => [p.payload.toString(), p.qos]),
            expected,
          );
          // The subscription is still there for live traffic, without a new SUBSCRIBE.
          await pub.publish(topic, 'live', { qos: 1 });
          const all = await back.waitForMessages(expected.length + 2);
          assert.equal(all.at(-1)!.payload.toString(), 'live', 'after the queued ones and the marker');
          await back.end();
          await pub.end();
        });

        it('queued messages are delivered at the subscription QoS', async () => {
          const clientId = uniqueClientId('qdown');
          const topic = uniqueTopic('qdown');
          const first = await subscriber(broker.url, topic, { ...persistent(version, clientId), qos: 1 });
          await first.end();
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'two', { qos: 2 });
          await pub.publish(topic, 'one', { qos: 1 });
          const back = await connectClient(broker.url, persistent(version, clientId));
          const messages = await back.waitForMessages(2);
          assert.deepEqual(messages.map((m) => [m.payload.toString(), m.packet.qos]), [['two', 1], ['one', 1]]);
          await back.end();
          await pub.end();
        });

        it(`${version === 4 ? 'clean session' : 'Clean Start'} 1 discards the previous session and its queue`, async () => {
          const clientId = uniqueClientId('clean');
          const topic = uniqueTopic('clean');
          const first = await subscriber(broker.url, topic, { ...persistent(version, clientId), qos: 1 });
          await first.end();
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'queued for the old session', { qos: 1 });
          const fresh = await connectClient(broker.url, { version, clientId, clean: true });
          assert.equal(fresh.connack.sessionPresent, false);
          // Neither the queue nor the subscription survived.
          await pub.publish(topic, 'after the clean start', { qos: 1 });
          // Barrier: subscribe now and wait for a marker; a kept queue would have come first.
          await fresh.subscribe(topic, { qos: 1 });
          await fresh.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'nothing: the session was discarded' });
          await fresh.end();
          // 3.1.1: a clean session also ends with its connection; 5.0: expiry 0 by default.
          const again = await connectClient(broker.url, persistent(version, clientId));
          assert.equal(again.connack.sessionPresent, false);
          await again.end();
          await pub.end();
        });

        it('a clean session does not queue anything for the next connection', async () => {
          const clientId = uniqueClientId('cleanq');
          const topic = uniqueTopic('cleanq');
          const first = await subscriber(broker.url, topic, { version, clientId, clean: true, qos: 1 });
          await first.end();
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'nobody home', { qos: 1 });
          const back = await connectClient(broker.url, persistent(version, clientId));
          assert.equal(back.connack.sessionPresent, false);
          await back.subscribe(topic, { qos: 1 });
          await back.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'nothing queued' });
          await back.end();
          await pub.end();
        });

        for (const qos of [1, 2] as const) {
          it(`an unacknowledged QoS ${qos} delivery is sent again with DUP=1 and the same packet id on reconnect`, async () => {
            const clientId = uniqueClientId(`dup${qos}`);
            const topic = uniqueTopic(`dup${qos}`);
            const sessionFields = { clientId, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) };
            const { raw: first } = await RawClient.connect(broker.port, version, sessionFields);
            const suback = await first.subscribe([{ topic, qos }]);
            assert.deepEqual(suback.granted, [qos]);
            const pub = await connectClient(broker.url, { version });
            await pub.publish(topic, 'ack me', { qos });
            const [original] = await first.waitForPublishes(1);
            assert.equal(original!.dup, false);
            assert.equal(original!.qos, qos);
            // No PUBACK/PUBREC: the connection goes away with the delivery in flight.
            first.destroy();
            await first.closed;
            const { raw: second, connack } = await RawClient.connect(broker.port, version, sessionFields);
            assert.equal(connack.sessionPresent, true);
            const [resent] = await second.waitForPublishes(1);
            assert.equal(resent!.payload.toString(), 'ack me');
            assert.equal(resent!.dup, true, 'DUP set on the resend');
            assert.equal(resent!.qos, qos);
            assert.equal(resent!.messageId, original!.messageId, 'same packet id');
            // Acknowledge it this time; then it is not sent a third time.
            if (qos === 1) second.send({ cmd: 'puback', messageId: resent!.messageId! });
            else {
              second.send({ cmd: 'pubrec', messageId: resent!.messageId! });
              await second.waitForPacket((p) => p.cmd === 'pubrel' && p.messageId === resent!.messageId, { what: 'PUBREL' });
              second.send({ cmd: 'pubcomp', messageId: resent!.messageId! });
            }
            // Barrier: PINGRESP comes after the broker handled the acknowledgement before it.
            await pingRoundTrip(second);
            second.destroy();
            await second.closed;
            const { raw: third } = await RawClient.connect(broker.port, version, sessionFields);
            // Barrier: a resend is queued on the session at CONNACK, before a marker published now.
            await pub.publish(topic, 'marker', { qos });
            const publishes = await third.waitForPublishes(1);
            assert.deepEqual(
              third.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel').map((p) => (p.cmd === 'publish' ? `publish(${String(p.payload)})` : p.cmd)),
              ['publish(marker)'],
              'acknowledged: nothing resent',
            );
            assert.equal(publishes[0]!.dup, false);
            third.destroy();
            await pub.end();
          });
        }

        it('an unanswered PUBREL is sent again on reconnect, and the PUBLISH is not', async () => {
          const clientId = uniqueClientId('pubrel');
          const topic = uniqueTopic('pubrel');
          const sessionFields = { clientId, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) };
          const { raw: first } = await RawClient.connect(broker.port, version, sessionFields);
          await first.subscribe([{ topic, qos: 2 }]);
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'exactly once', { qos: 2 });
          const [publish] = await first.waitForPublishes(1);
          first.send({ cmd: 'pubrec', messageId: publish!.messageId! });
          await first.waitForPacket((p) => p.cmd === 'pubrel', { what: 'PUBREL' });
          // No PUBCOMP.
          first.destroy();
          await first.closed;
          const { raw: second } = await RawClient.connect(broker.port, version, sessionFields);
          const pubrel = await second.waitForPacket((p) => p.cmd === 'pubrel', { what: 'PUBREL again' });
          assert.equal(pubrel.messageId, publish!.messageId);
          // Barrier: a resent PUBLISH is queued on the session at CONNACK, before a marker published now.
          await pub.publish(topic, 'marker', { qos: 2 });
          await second.waitForPublishes(1);
          assert.deepEqual(
            second.packets.filter((p): p is IPublishPacket => p.cmd === 'publish').map((p) => String(p.payload)),
            ['marker'],
            'PUBREC was received: the message is not sent again',
          );
          second.send({ cmd: 'pubcomp', messageId: publish!.messageId! });
          second.destroy();
          await pub.end();
        });
      });
    }

    describe('5.0 session expiry', { concurrency: true }, () => {
      it('Session Expiry Interval 0 (the default): the session ends with the connection', async () => {
        const clientId = uniqueClientId('exp0');
        const topic = uniqueTopic('exp0');
        const first = await subscriber(broker.url, topic, { version: 5, clientId, clean: false, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'too late', { qos: 1 });
        const back = await connectClient(broker.url, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
        assert.equal(back.connack.sessionPresent, false);
        await back.subscribe(topic, { qos: 1 });
        await back.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'nothing: no session' });
        await back.end();
        await pub.end();
      });

      it('a session with expiry 2 s is gone 3 s after the disconnect', async () => {
        const clientId = uniqueClientId('exp2');
        const topic = uniqueTopic('exp2');
        const first = await subscriber(broker.url, topic, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 2 }, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'for an expiring session', { qos: 1 });
        // The expiry is the subject: past it, the session must be gone.
        await sleep(3_000);
        const back = await connectClient(broker.url, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
        assert.equal(back.connack.sessionPresent, false);
        await back.subscribe(topic, { qos: 1 });
        await back.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'nothing: the session expired' });
        await back.end();
        await pub.end();
      });

      it('a session with expiry 5 s is still there 1 s after the disconnect', async () => {
        const clientId = uniqueClientId('exp5');
        const topic = uniqueTopic('exp5');
        const first = await subscriber(broker.url, topic, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 5 }, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'kept', { qos: 1 });
        await sleep(1_000);
        const back = await connectClient(broker.url, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 5 } });
        assert.equal(back.connack.sessionPresent, true);
        const [message] = await back.waitForMessages(1);
        assert.equal(message!.payload.toString(), 'kept');
        await back.end();
        await pub.end();
      });

      it('DISCONNECT with Session Expiry Interval 0 ends a session that was to outlive the connection', async () => {
        const clientId = uniqueClientId('expdis');
        const topic = uniqueTopic('expdis');
        const first = await subscriber(broker.url, topic, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 }, qos: 1 });
        await first.end(0, { sessionExpiryInterval: 0 });
        const back = await connectClient(broker.url, { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
        assert.equal(back.connack.sessionPresent, false);
        await back.end();
      });
    });
  });
}
