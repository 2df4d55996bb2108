// MQTT 5.0 properties and flow limits through `shardline start`, in both topologies.
//
// Goal: the application properties of a PUBLISH (user properties, response topic, correlation
// data, payload format indicator, content type) reach subscribers unchanged, live and after
// being queued; the Message Expiry Interval drops expired messages and is forwarded reduced by
// the time waited; topic aliases work inbound (a client's alias resolves; a bad alias gets
// DISCONNECT 0x94) and outbound (the broker uses aliases toward a client that allows them);
// the broker never has more unacknowledged QoS 1/2 deliveries toward a client than its
// Receive Maximum and never sends it a packet above its Maximum Packet Size; failed acks carry
// a reason string unless the client asked for no problem information.
// Method: one broker per topology; mqtt.js clients, and raw-socket clients where acks must be
// withheld or CONNECT properties set that mqtt.js would act on itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IDisconnectPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { brokerForSuite, usingMosquitto } from './support/broker-process.js';
import {
  closeAllClients,
  connectClient,
  contractOnly,
  RawClient,
  sleep,
  subscriber,
  uniqueClientId,
  uniqueTopic,
  type Received,
} from './support/mqtt-client.js';

const TOPOLOGIES = usingMosquitto() ? (['single'] as const) : (['single', 'split'] as const);

const APPLICATION_PROPERTIES = {
  payloadFormatIndicator: true,
  contentType: 'application/json; charset=utf-8',
  responseTopic: 'replies/for/me',
  correlationData: Buffer.from([0, 1, 2, 250, 255]),
  userProperties: { trace: 'abc-123', multi: ['first', 'second'], 'ünïcode': 'värde' },
};

/** PINGREQ, then PINGRESP: the broker has handled every packet this raw client sent before. */
async function pingRoundTrip(raw: RawClient): Promise<void> {
  const from = raw.packets.length;
  raw.send({ cmd: 'pingreq' });
  await raw.waitForPacket((p) => p.cmd === 'pingresp', { from, what: 'PINGRESP' });
}

/** Asserts that a delivery carries APPLICATION_PROPERTIES unchanged. */
function assertApplicationProperties(message: Received): void {
  const properties = message.packet.properties ?? {};
  assert.equal(properties.payloadFormatIndicator, true);
  assert.equal(properties.contentType, APPLICATION_PROPERTIES.contentType);
  assert.equal(properties.responseTopic, APPLICATION_PROPERTIES.responseTopic);
  assert.deepEqual(properties.correlationData, APPLICATION_PROPERTIES.correlationData);
  // mqtt-packet builds user properties on a null-prototype object.
  assert.deepEqual({ ...properties.userProperties }, APPLICATION_PROPERTIES.userProperties);
}

for (const topology of TOPOLOGIES) {
  describe(`MQTT 5.0 properties (${topology})`, () => {
    const broker = brokerForSuite({ topology }, closeAllClients);

    describe('pass-through', () => {
      for (const qos of [0, 1, 2] as const) {
        it(`QoS ${qos}: user properties, response topic, correlation data, payload format, content type`, async () => {
          const topic = uniqueTopic(`props${qos}`);
          const sub = await subscriber(broker.url, topic, { version: 5, qos: 2 });
          const pub = await connectClient(broker.url, { version: 5 });
          await pub.publish(topic, '{"v":1}', { qos, properties: APPLICATION_PROPERTIES });
          const [message] = await sub.waitForMessages(1);
          assertApplicationProperties(message!);
          await pub.end();
          await sub.end();
        });
      }

      it('properties survive the offline queue of a persistent session', async () => {
        const topic = uniqueTopic('props-queued');
        const clientId = uniqueClientId('pq');
        const session = { version: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
        const first = await subscriber(broker.url, topic, { ...session, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, '{"v":2}', { qos: 1, properties: APPLICATION_PROPERTIES });
        const back = await connectClient(broker.url, session);
        const [message] = await back.waitForMessages(1);
        assertApplicationProperties(message!);
        await back.end();
        await pub.end();
      });

      it('request/response: a responder answers on the response topic with the correlation data', async () => {
        const requests = uniqueTopic('requests');
        const responder = await subscriber(broker.url, requests, { version: 5, qos: 1 });
        responder.client.on('message', (_topic, payload, packet) => {
          const { responseTopic, correlationData } = packet.properties ?? {};
          if (responseTopic === undefined) return;
          responder.client.publish(responseTopic, `re: ${payload.toString()}`, { qos: 1, properties: { correlationData } });
        });
        const replyTopic = uniqueTopic('replies');
        const requester = await subscriber(broker.url, replyTopic, { version: 5, qos: 1 });
        await requester.publish(requests, 'ping', { qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from('req-42') } });
        const [reply] = await requester.waitForMessages(1);
        assert.equal(reply!.payload.toString(), 're: ping');
        assert.deepEqual(reply!.packet.properties?.correlationData, Buffer.from('req-42'));
        await requester.end();
        await responder.end();
      });
    });

    // Each case waits ~2 s for an expiry; they run side by side.
    describe('message expiry', { concurrency: true }, () => {
      it('an expired message is not delivered to a session that comes back later; an unexpiring one is', async () => {
        const topic = uniqueTopic('expire');
        const clientId = uniqueClientId('exp');
        const session = { version: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
        const first = await subscriber(broker.url, topic, { ...session, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'expires', { qos: 1, properties: { messageExpiryInterval: 1 } });
        await pub.publish(topic, 'stays', { qos: 1 });
        await sleep(2_100);
        const back = await connectClient(broker.url, session);
        assert.equal(back.connack.sessionPresent, true);
        const [message] = await back.waitForMessages(1);
        // Barrier: a marker on the session's topic, queued after anything the session holds.
        await back.expectNothingBeforeMarker(pub, topic, { from: 1, what: 'the expired message is dropped' });
        assert.equal(message!.payload.toString(), 'stays');
        assert.equal(message!.packet.properties?.messageExpiryInterval, undefined, 'no expiry was set on it');
        await back.end();
        await pub.end();
      });

      it('the remaining expiry interval is forwarded: less than sent after waiting in the broker', async () => {
        const topic = uniqueTopic('remaining');
        const clientId = uniqueClientId('rem');
        const session = { version: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
        const first = await subscriber(broker.url, topic, { ...session, qos: 1 });
        await first.end();
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'waited', { qos: 1, properties: { messageExpiryInterval: 60 } });
        await sleep(2_100);
        const back = await connectClient(broker.url, session);
        const [message] = await back.waitForMessages(1);
        const remaining = message!.packet.properties?.messageExpiryInterval;
        assert.ok(remaining !== undefined && remaining >= 55 && remaining <= 58, `remaining interval ${remaining} after ~2 s of 60`);
        await back.end();
        await pub.end();
      });

      it('a live delivery carries the expiry interval (at most the one sent)', async () => {
        const topic = uniqueTopic('live-expiry');
        const sub = await subscriber(broker.url, topic, { version: 5, qos: 1 });
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'fresh', { qos: 1, properties: { messageExpiryInterval: 30 } });
        const [message] = await sub.waitForMessages(1);
        const forwarded = message!.packet.properties?.messageExpiryInterval;
        assert.ok(forwarded !== undefined && forwarded <= 30 && forwarded >= 29, `forwarded ${forwarded}`);
        await pub.end();
        await sub.end();
      });

      it('an expired retained message is not sent to new subscribers', async () => {
        const topic = uniqueTopic('retained-expiry');
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'short-lived', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
        // Positive control: before expiry it is there.
        const early = await subscriber(broker.url, topic, { version: 5, qos: 1 });
        await early.waitForMessages(1);
        await early.end();
        await sleep(2_100);
        const late = await subscriber(broker.url, topic, { version: 5, qos: 1 });
        // Barrier: a live marker after the SUBACK comes after any retained message.
        await late.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'no expired retained message' });
        await late.end();
        await pub.end();
      });
    });

    describe('topic aliases', () => {
      it('inbound: a PUBLISH with only a topic alias goes to the aliased topic; an alias can be remapped', async () => {
        const topicA = uniqueTopic('alias-a');
        const topicB = uniqueTopic('alias-b');
        const sub = await subscriber(broker.url, [topicA, topicB], { version: 5, qos: 1 });
        const pub = await connectClient(broker.url, { version: 5 });
        const sent: IPublishPacket[] = [];
        pub.client.on('packetsend', (packet) => {
          if (packet.cmd === 'publish') sent.push(packet);
        });
        await pub.publish(topicA, 'set alias', { qos: 1, properties: { topicAlias: 1 } });
        await pub.publish('', 'alias only', { qos: 1, properties: { topicAlias: 1 } });
        await pub.publish(topicB, 'remap', { qos: 1, properties: { topicAlias: 1 } });
        await pub.publish('', 'alias only again', { qos: 1, properties: { topicAlias: 1 } });
        assert.deepEqual(sent.map((p) => p.topic), [topicA, '', topicB, ''], 'the client really sent alias-only packets');
        const messages = await sub.waitForMessages(4);
        assert.deepEqual(
          messages.map((m) => [m.topic, m.payload.toString()]),
          [
            [topicA, 'set alias'],
            [topicA, 'alias only'],
            [topicB, 'remap'],
            [topicB, 'alias only again'],
          ],
        );
        await pub.end();
        await sub.end();
      });

      for (const [what, alias] of [
        ['0', 0],
        ['above the Topic Alias Maximum', 65535],
      ] as const) {
        it(`inbound: topic alias ${what} gets DISCONNECT 0x94`, async (t) => {
          // Mosquitto 2.0.11 answers alias 0 with 0x81 Malformed Packet; MQTT 5.0 3.3.2.3.4 says 0x94.
          if (alias === 0 && !contractOnly(t, 'DISCONNECT 0x81 for topic alias 0')) return;
          const { raw, connack } = await RawClient.connect(broker.port, 5, { clientId: uniqueClientId('badalias') });
          const maximum = connack.properties?.topicAliasMaximum ?? 0;
          assert.ok(alias === 0 || alias > maximum, `alias ${alias} must be invalid against maximum ${maximum}`);
          raw.send({ cmd: 'publish', topic: uniqueTopic('bad-alias'), payload: Buffer.from('x'), qos: 0, dup: false, retain: false, properties: { topicAlias: alias } });
          await raw.waitForClose();
          const disconnect = raw.packets.find((p): p is IDisconnectPacket => p.cmd === 'disconnect');
          assert.equal(disconnect?.reasonCode, 0x94, `got ${JSON.stringify(raw.packets.slice(1))}`);
        });
      }

      it('outbound: a client with Topic Alias Maximum > 0 receives aliases (mqtt.js resolves them)', async (t) => {
        // Mosquitto 2.0.11 never assigns topic aliases toward clients.
        if (!contractOnly(t, 'no outbound topic aliases')) return;
        const topic = uniqueTopic('out-alias');
        const sub = await subscriber(broker.url, topic, { version: 5, qos: 1, properties: { topicAliasMaximum: 10 } });
        const pub = await connectClient(broker.url, { version: 5 });
        for (let i = 0; i < 5; i += 1) await pub.publish(topic, `m${i}`, { qos: 1 });
        const messages = await sub.waitForMessages(5);
        assert.deepEqual(messages.map((m) => [m.topic, m.payload.toString()]), Array.from({ length: 5 }, (_, i) => [topic, `m${i}`]));
        const wire = sub.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
        const aliases = wire.map((p) => p.properties?.topicAlias);
        for (const alias of aliases) assert.ok(alias === undefined || (alias >= 1 && alias <= 10), `alias ${alias} outside 1..10`);
        assert.ok(
          wire.some((p) => p.topic === '' && p.properties?.topicAlias !== undefined),
          `no alias-only PUBLISH among ${JSON.stringify(wire.map((p) => [p.topic, p.properties?.topicAlias]))}`,
        );
        await pub.end();
        await sub.end();
      });

      it('outbound: a client that allows no aliases never gets one', async () => {
        const topic = uniqueTopic('no-alias');
        const sub = await subscriber(broker.url, topic, { version: 5, qos: 1 });
        const pub = await connectClient(broker.url, { version: 5 });
        for (let i = 0; i < 5; i += 1) await pub.publish(topic, `m${i}`, { qos: 1 });
        await sub.waitForMessages(5);
        const wire = sub.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
        assert.deepEqual(wire.map((p) => [p.topic, p.properties?.topicAlias]), Array.from({ length: 5 }, () => [topic, undefined]));
        await pub.end();
        await sub.end();
      });
    });

    describe('receive maximum (toward the client)', () => {
      it('QoS 1: never more than Receive Maximum = 2 unacknowledged deliveries', async (t) => {
        // Mosquitto 2.0.11 keeps 2 in flight at first, but sends 2 more after the first PUBACK.
        if (!contractOnly(t, 'exceeds the client Receive Maximum after the first PUBACK')) return;
        const topic = uniqueTopic('rm1');
        const { raw } = await RawClient.connect(broker.port, 5, { clientId: uniqueClientId('rm1'), properties: { receiveMaximum: 2 } });
        await raw.subscribe([{ topic, qos: 1 }]);
        const pub = await connectClient(broker.url, { version: 5 });
        const total = 6;
        for (let i = 0; i < total; i += 1) await pub.publish(topic, `m${i}`, { qos: 1 });
        let acked = 0;
        while (acked < total) {
          const expectedInFlight = Math.min(2, total - acked);
          const publishes = await raw.waitForPublishes(acked + expectedInFlight);
          // Barrier: all six are stored before the loop and the PUBACK was sent before the
          // PINGREQ, so a delivery past the window would come before the PINGRESP.
          await pingRoundTrip(raw);
          const now = raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
          assert.equal(now.length - acked, expectedInFlight, `${now.length - acked} unacknowledged after ${acked} PUBACKs: ${JSON.stringify(now.map((p) => [p.messageId, String(p.payload), p.dup]))}`);
          // Acknowledge the oldest one; exactly one more may follow.
          raw.send({ cmd: 'puback', messageId: publishes[acked]!.messageId! });
          acked += 1;
        }
        const payloads = raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish').map((p) => p.payload.toString());
        assert.deepEqual(payloads, Array.from({ length: total }, (_, i) => `m${i}`));
        raw.destroy();
        await pub.end();
      });

      it('QoS 2: a delivery stays in flight until PUBCOMP, not PUBREC (Receive Maximum = 1)', async () => {
        const topic = uniqueTopic('rm2');
        const { raw } = await RawClient.connect(broker.port, 5, { clientId: uniqueClientId('rm2'), properties: { receiveMaximum: 1 } });
        await raw.subscribe([{ topic, qos: 2 }]);
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'first', { qos: 2 });
        await pub.publish(topic, 'second', { qos: 2 });
        const [first] = await raw.waitForPublishes(1);
        raw.send({ cmd: 'pubrec', messageId: first!.messageId! });
        await raw.waitForPacket((p) => p.cmd === 'pubrel' && p.messageId === first!.messageId, { what: 'PUBREL' });
        // Barrier: a broker that freed the slot on PUBREC would send "second" while handling it,
        // before answering a PINGREQ sent after it.
        await pingRoundTrip(raw);
        assert.equal(raw.packets.filter((p) => p.cmd === 'publish').length, 1, 'second PUBLISH before PUBCOMP');
        raw.send({ cmd: 'pubcomp', messageId: first!.messageId! });
        const [, second] = await raw.waitForPublishes(2);
        assert.equal(second!.payload.toString(), 'second');
        raw.destroy();
        await pub.end();
      });
    });

    describe('maximum packet size (toward the client)', () => {
      it('a message too large for the client is not sent to it; smaller ones are, and others get the large one', async () => {
        const topic = uniqueTopic('mps');
        const small = await subscriber(broker.url, topic, { version: 5, qos: 1, properties: { maximumPacketSize: 512 } });
        const unlimited = await subscriber(broker.url, topic, { version: 5, qos: 1 });
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'a'.repeat(100), { qos: 1 });
        await pub.publish(topic, 'b'.repeat(2_000), { qos: 1 });
        await pub.publish(topic, 'c'.repeat(100), { qos: 1 });
        const all = await unlimited.waitForMessages(3);
        assert.deepEqual(all.map((m) => m.payload.length), [100, 2_000, 100]);
        const received = await small.waitForMessages(2);
        await small.expectNothingBeforeMarker(pub, topic, { from: 2, what: 'the 2000-byte message is never sent to the 512-byte client' });
        assert.deepEqual(received.map((m) => m.payload.toString()[0]), ['a', 'c']);
        assert.equal(small.isClosed, false);
        await pub.end();
        await small.end();
        await unlimited.end();
      });
    });

    describe('reason strings', () => {
      it('a failed SUBACK (0x8F) carries a reason string', async (t) => {
        // Mosquitto 2.0.11 closes the connection on an invalid filter instead of refusing it.
        if (!contractOnly(t, 'closes the connection on an invalid filter')) return;
        const { raw } = await RawClient.connect(broker.port, 5, { clientId: uniqueClientId('rs') });
        const suback: ISubackPacket = await raw.subscribe([{ topic: 'bad/#/filter', qos: 1 }]);
        assert.deepEqual(suback.granted, [0x8f]);
        const reason = suback.properties?.reasonString;
        assert.ok(typeof reason === 'string' && reason.length > 0, `reason string ${JSON.stringify(reason)}`);
        raw.destroy();
      });

      it('with Request Problem Information 0 the failed SUBACK carries no reason string', async (t) => {
        if (!contractOnly(t, 'closes the connection on an invalid filter')) return;
        const { raw } = await RawClient.connect(broker.port, 5, { clientId: uniqueClientId('rpi'), properties: { requestProblemInformation: false } });
        const suback: ISubackPacket = await raw.subscribe([{ topic: 'bad/#/filter', qos: 1 }]);
        assert.deepEqual(suback.granted, [0x8f]);
        assert.equal(suback.properties?.reasonString, undefined);
        raw.destroy();
      });
    });
  });
}
