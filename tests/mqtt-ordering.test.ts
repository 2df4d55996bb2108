// What a client sees, in order (issue 10). Goal: a connection's packets take effect in the order
// they were sent, and the packets a client receives come in the order the spec implies:
// - a PUBLISH sent before a SUBSCRIBE never comes back through that subscription (only the
//   retained-message rules apply), one sent after it does, and the SUBACK comes first;
// - a client that is its own subscriber gets the PUBACK/PUBREC of its message before the copy
//   delivered to it (the ack goes out when the message is durable, before the fan-out);
// - a message larger than the client's Maximum Packet Size is discarded for that client and
//   counted (dropped 'too-large'), and the messages after it still come: live, read back,
//   retained, and resent after a reconnect;
// - a session that ends with its connection (3.1.1 clean session, 5.0 expiry 0) is not resumed
//   by a later connection, not even one that takes the client id over while it is open;
// - MQTT 3.1's CONNACK acknowledge flags byte is always 0.
//
// Method: raw sockets (tests/support/raw-mqtt.ts) send several packets in one write and the test
// reads the packets back in the order their bytes arrived; negative checks end on a barrier (a
// PINGRESP after the packets in question, a marker message published after the one that must not
// arrive, or a 5.0 PUBACK 0x10 No matching subscribers). The last block uses mqtt.js for the
// client-visible cases. Both topologies (single node, split).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { brokerForSuite, waitForLogField, type Topology } from './support/broker-process.js';
import { closeAllClients, connectClient, subscriber, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { rawConnect, type MqttVersion, type RawMqttClient } from './support/raw-mqtt.js';

const TOPOLOGIES: Topology[] = ['single', 'split'];
const VERSIONS = [4, 5] as const;
const ADMIN_TOKEN = 'ordering-test-token-0b7d';

function label(version: MqttVersion): string {
  return version === 5 ? '5.0' : version === 4 ? '3.1.1' : '3.1';
}

/** Several packets in one write, so the broker gets them in one read. */
function together(version: MqttVersion, packets: Packet[]): Buffer {
  return Buffer.concat(packets.map((packet) => mqttPacket.generate(packet, { protocolVersion: version })));
}

/** The packet kinds received so far, with the payload of each PUBLISH. */
function transcript(client: RawMqttClient): string[] {
  return client.packets.map((packet) => (packet.cmd === 'publish' ? `publish:${String(packet.payload)}` : packet.cmd));
}

function publishes(client: RawMqttClient): IPublishPacket[] {
  return client.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
}

/** PINGREQ, then waits for its PINGRESP: everything the broker wrote before it has arrived. */
async function barrier(client: RawMqttClient): Promise<void> {
  const before = client.packets.filter((packet) => packet.cmd === 'pingresp').length;
  client.sendPacket({ cmd: 'pingreq' });
  await client.until(() => client.packets.filter((packet) => packet.cmd === 'pingresp').length > before, 5_000, 'PINGRESP');
}

async function droppedTooLarge(adminBase: string): Promise<number> {
  const response = await fetch(`${adminBase}/api/overview`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { dropped: Record<string, number> };
  return body.dropped['too-large'] as number;
}

for (const topology of TOPOLOGIES) {
  describe(`what clients see, in order (${topology})`, () => {
    const broker = brokerForSuite({ topology, args: ['--admin-token', ADMIN_TOKEN] }, closeAllClients);

    for (const version of VERSIONS) {
      describe(`${label(version)}: SUBSCRIBE after PUBLISH on one connection`, () => {
        it('a retained PUBLISH sent just before a SUBSCRIBE comes only as the retained message (5.0 retain handling 2: not at all), after the SUBACK', async () => {
          const topic = uniqueTopic('retained-before');
          const { client } = await rawConnect(broker.port, version);
          client.send(
            together(version, [
              { cmd: 'publish', topic, payload: Buffer.from('before'), qos: 1, messageId: 1, retain: true, dup: false },
              { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic, qos: 1, ...(version === 5 ? { rh: 2 } : {}) }] },
            ]),
          );
          await client.nextOf('suback');
          await barrier(client);
          // 3.1.1 has no retain handling: the retained message follows the SUBACK, once, with RETAIN=1.
          const expected = version === 5 ? ['connack', 'puback', 'suback', 'pingresp'] : ['connack', 'puback', 'suback', 'publish:before', 'pingresp'];
          assert.deepEqual(transcript(client), expected);
          if (version !== 5) assert.equal(publishes(client)[0]?.retain, true, 'sent as the retained message');
          client.destroy();
        });

        it('5.0 retain handling 0 / 3.1.1: the retained message sent just before comes once, as retained, not also through the subscription', async () => {
          const topic = uniqueTopic('retained-rh0');
          const { client } = await rawConnect(broker.port, version, {}, { autoAck: true });
          client.send(
            together(version, [
              { cmd: 'publish', topic, payload: Buffer.from('kept'), qos: 0, retain: true, dup: false },
              { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] },
            ]),
          );
          await client.nextOf('suback');
          await barrier(client);
          assert.deepEqual(transcript(client), ['connack', 'suback', 'publish:kept', 'pingresp']);
          assert.equal(publishes(client)[0]?.retain, true);
          client.destroy();
        });

        it('a PUBLISH (QoS 0 and 1, not retained) sent just before a SUBSCRIBE does not come back through it', async () => {
          const topic = uniqueTopic('plain-before');
          const { client } = await rawConnect(broker.port, version);
          client.send(
            together(version, [
              { cmd: 'publish', topic, payload: Buffer.from('q0'), qos: 0, retain: false, dup: false },
              { cmd: 'publish', topic, payload: Buffer.from('q1'), qos: 1, messageId: 7, retain: false, dup: false },
              { cmd: 'subscribe', messageId: 8, subscriptions: [{ topic, qos: 1 }] },
            ]),
          );
          await client.nextOf('suback');
          await barrier(client);
          assert.deepEqual(transcript(client), ['connack', 'puback', 'suback', 'pingresp']);
          client.destroy();
        });

        it('a PUBLISH sent right after the SUBSCRIBE comes back through it: SUBACK, then the PUBACK, then the message', async () => {
          const topic = uniqueTopic('after');
          const { client } = await rawConnect(broker.port, version, {}, { autoAck: true });
          client.send(
            together(version, [
              { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] },
              { cmd: 'publish', topic, payload: Buffer.from('after'), qos: 1, messageId: 2, retain: false, dup: false },
            ]),
          );
          await client.until(() => publishes(client).length === 1, 5_000, 'the message');
          await barrier(client);
          assert.deepEqual(transcript(client), ['connack', 'suback', 'puback', 'publish:after', 'pingresp']);
          client.destroy();
        });

        it('an UNSUBSCRIBE after a PUBLISH: the message still comes through the subscription, before the UNSUBACK', async () => {
          const topic = uniqueTopic('unsub');
          const { client } = await rawConnect(broker.port, version, {}, { autoAck: true });
          client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await client.nextOf('suback');
          client.send(
            together(version, [
              { cmd: 'publish', topic, payload: Buffer.from('last'), qos: 1, messageId: 2, retain: false, dup: false },
              { cmd: 'unsubscribe', messageId: 3, unsubscriptions: [topic] },
              { cmd: 'publish', topic, payload: Buffer.from('gone'), qos: 1, messageId: 4, retain: false, dup: false },
            ]),
          );
          await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === 2, 5_000, 'both PUBACKs');
          await barrier(client);
          assert.deepEqual(transcript(client), ['connack', 'suback', 'puback', 'publish:last', 'unsuback', 'puback', 'pingresp']);
          client.destroy();
        });
      });

      describe(`${label(version)}: the publisher's ack before its own message`, () => {
        for (const qos of [1, 2] as const) {
          it(`QoS ${qos}: each ${qos === 1 ? 'PUBACK' : 'PUBREC'} comes before the copy delivered to the publisher, across topics on several shards`, async () => {
            const base = uniqueTopic('self');
            const { client } = await rawConnect(broker.port, version);
            client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/+`, qos }] });
            await client.nextOf('suback');
            const count = 24;
            const packets: Packet[] = [];
            for (let i = 1; i <= count; i += 1) packets.push({ cmd: 'publish', topic: `${base}/${i % 8}`, payload: Buffer.from(`m${i}`), qos, messageId: 100 + i, retain: false, dup: false });
            client.send(together(version, packets));
            const ack = qos === 1 ? 'puback' : 'pubrec';
            await client.until(() => publishes(client).length === count && client.packets.filter((packet) => packet.cmd === ack).length === count, 10_000, 'every ack and every copy');
            const order = client.packets.map((packet) => (packet.cmd === ack ? `ack:${packet.messageId}` : packet.cmd === 'publish' ? `copy:${String(packet.payload)}` : packet.cmd));
            for (let i = 1; i <= count; i += 1) {
              assert.ok(order.indexOf(`ack:${100 + i}`) < order.indexOf(`copy:m${i}`), `the ack of m${i} before its copy: ${order.join(' ')}`);
            }
            const acks = order.filter((entry) => entry.startsWith('ack:'));
            assert.deepEqual(acks, packets.map((packet) => `ack:${(packet as IPublishPacket).messageId}`), 'acks in the order of the publishes (MQTT-4.6.0-2/3)');
            client.destroy();
          });
        }

        it('a retained QoS 1 message: the PUBACK comes before the copy (the ack also waits for the $retained write)', async () => {
          const topic = uniqueTopic('self-retained');
          const { client } = await rawConnect(broker.port, version, {}, { autoAck: true });
          client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await client.nextOf('suback');
          client.sendPacket({ cmd: 'publish', topic, payload: Buffer.from('r'), qos: 1, messageId: 2, retain: true, dup: false });
          await client.until(() => publishes(client).length === 1, 5_000, 'the copy');
          await barrier(client);
          assert.deepEqual(transcript(client), ['connack', 'suback', 'puback', 'publish:r', 'pingresp']);
          // Clear it, so later suites on this broker are not sent it.
          client.sendPacket({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false });
          await barrier(client);
          client.destroy();
        });
      });

      describe(`${label(version)}: a session that ends with its connection`, () => {
        const ends = version === 5 ? { clean: true, properties: { sessionExpiryInterval: 0 } } : { clean: true };
        const resumes = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };

        it('taken over while still open by a connection with clean session 0: session present 0, none of its subscriptions', async () => {
          const clientId = uniqueClientId('tko');
          const topic = uniqueTopic('tko');
          const { client: first } = await rawConnect(broker.port, version, { clientId, ...ends });
          first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await first.nextOf('suback');
          const { client: second, connack } = await rawConnect(broker.port, version, { clientId, ...resumes });
          assert.equal(connack.sessionPresent, false, 'CONNACK session present');
          await first.waitClosed();
          // A 5.0 publisher's PUBACK says whether any subscription matched: none may.
          const { client: publisher } = await rawConnect(broker.port, 5);
          publisher.sendPacket({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
          const puback = await publisher.nextOf('puback');
          assert.equal(puback.reasonCode, 0x10, 'PUBACK 0x10 No matching subscribers');
          await barrier(second);
          assert.deepEqual(publishes(second), []);
          for (const client of [second, publisher]) client.destroy();
        });

        it('after it closed: a connection with clean session 0 gets session present 0 and none of its subscriptions', async () => {
          const clientId = uniqueClientId('end');
          const topic = uniqueTopic('end');
          const { client: first } = await rawConnect(broker.port, version, { clientId, ...ends });
          first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await first.nextOf('suback');
          first.sendPacket({ cmd: 'disconnect' });
          await first.waitClosed();
          const { client: second, connack } = await rawConnect(broker.port, version, { clientId, ...resumes });
          assert.equal(connack.sessionPresent, false, 'CONNACK session present');
          const { client: publisher } = await rawConnect(broker.port, 5);
          publisher.sendPacket({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
          assert.equal((await publisher.nextOf('puback')).reasonCode, 0x10, 'PUBACK 0x10 No matching subscribers');
          for (const client of [second, publisher]) client.destroy();
        });
      });
    }

    describe('MQTT 3.1: no session present flag', () => {
      it('the CONNACK acknowledge flags byte is 0 when a persistent session is resumed (and the session is resumed)', async () => {
        const clientId = uniqueClientId('v31');
        const topic = uniqueTopic('v31');
        const { client: first, connack: firstConnack } = await rawConnect(broker.port, 3, { clientId, clean: false });
        assert.deepEqual([...first.raw.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], `first CONNACK bytes ${firstConnack.sessionPresent}`);
        first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
        await first.nextOf('suback');
        first.sendPacket({ cmd: 'disconnect' });
        await first.waitClosed();
        const { client: second } = await rawConnect(broker.port, 3, { clientId, clean: false }, { autoAck: true });
        assert.deepEqual([...second.raw.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], 'CONNACK bytes of the resumed session');
        // The session was resumed: its subscription delivers.
        second.sendPacket({ cmd: 'publish', topic, payload: Buffer.from('kept'), qos: 1, messageId: 1, retain: false, dup: false });
        await second.until(() => publishes(second).length === 1, 5_000, 'the message through the resumed subscription');
        second.sendPacket({ cmd: 'disconnect' });
        await second.waitClosed();
        // Clean up the persistent session.
        const { client: third } = await rawConnect(broker.port, 3, { clientId, clean: true });
        third.destroy();
      });
    });

    describe('5.0: messages over the client\'s Maximum Packet Size', () => {
      const LIMIT = 256;
      const big = (letter: string, size: number): Buffer => Buffer.alloc(size, letter);

      /** Publishes with a 5.0 raw publisher (QoS 1) and waits for every PUBACK. */
      async function publishAll(topic: string, payloads: Buffer[], options: { retain?: boolean; contentType?: boolean } = {}): Promise<void> {
        const { client } = await rawConnect(broker.port, 5);
        const packets: Packet[] = payloads.map((payload, index) => ({ cmd: 'publish', topic, payload, qos: 1, messageId: index + 1, retain: options.retain === true, dup: false, ...(options.contentType === true ? { properties: { contentType: 'text/plain' } } : {}) }));
        client.send(together(5, packets));
        await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === payloads.length, 5_000, 'PUBACKs');
        client.destroy();
      }

      it('live, QoS 1, Receive Maximum 1: the too-large ones are discarded and counted; the ones after them arrive', async () => {
        const admin = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
        const droppedBefore = await droppedTooLarge(admin);
        const topic = uniqueTopic('mps-live');
        const { client } = await rawConnect(broker.port, 5, { properties: { maximumPacketSize: LIMIT, receiveMaximum: 1 } }, { autoAck: true });
        client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
        await client.nextOf('suback');
        // 1000 bytes: encoded whole; 10000: header and payload written apart (large payloads).
        await publishAll(topic, [big('a', 10), big('b', 1000), big('c', 10), big('d', 10_000), big('e', 10)]);
        await publishAll(topic, [big('f', 1000), big('g', 10)], { contentType: true });
        await client.until(() => publishes(client).length === 4, 5_000, 'the small messages');
        await barrier(client);
        assert.deepEqual(publishes(client).map((packet) => String(packet.payload)[0]), ['a', 'c', 'e', 'g']);
        assert.equal(await droppedTooLarge(admin), droppedBefore + 3, "dropped['too-large']");
        client.destroy();
      });

      it('read back for an offline persistent session: the too-large one is skipped, the next arrives', async () => {
        const clientId = uniqueClientId('mps-rb');
        const topic = uniqueTopic('mps-rb');
        const session = { clientId, clean: false, properties: { maximumPacketSize: LIMIT, receiveMaximum: 1, sessionExpiryInterval: 300 } };
        const { client: first } = await rawConnect(broker.port, 5, { ...session, clean: true });
        first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
        await first.nextOf('suback');
        first.sendPacket({ cmd: 'disconnect' });
        await first.waitClosed();
        await publishAll(topic, [big('a', 10), big('b', 1000), big('c', 10)]);
        const { client: second, connack } = await rawConnect(broker.port, 5, session, { autoAck: true });
        assert.equal(connack.sessionPresent, true);
        await second.until(() => publishes(second).length === 2, 5_000, 'the small messages read back');
        await barrier(second);
        assert.deepEqual(publishes(second).map((packet) => String(packet.payload)[0]), ['a', 'c']);
        second.sendPacket({ cmd: 'disconnect', properties: { sessionExpiryInterval: 0 } });
        await second.waitClosed();
      });

      it('in flight when the client reconnects with a smaller Maximum Packet Size: not resent, and the next message arrives', async () => {
        const clientId = uniqueClientId('mps-dup');
        const topic = uniqueTopic('mps-dup');
        const { client: first } = await rawConnect(broker.port, 5, { clientId, properties: { sessionExpiryInterval: 300 } });
        first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
        await first.nextOf('suback');
        await publishAll(topic, [big('b', 1000)]);
        await first.until(() => publishes(first).length === 1, 5_000, 'the large message, not acknowledged');
        first.destroy();
        await first.waitClosed();
        const { client: second } = await rawConnect(broker.port, 5, { clientId, clean: false, properties: { sessionExpiryInterval: 300, maximumPacketSize: LIMIT, receiveMaximum: 1 } }, { autoAck: true });
        await publishAll(topic, [big('c', 10)]);
        await second.until(() => publishes(second).length === 1, 5_000, 'the next message');
        await barrier(second);
        assert.deepEqual(publishes(second).map((packet) => `${String(packet.payload)[0]}${packet.dup ? ':dup' : ''}`), ['c']);
        second.sendPacket({ cmd: 'disconnect', properties: { sessionExpiryInterval: 0 } });
        await second.waitClosed();
      });

      it('retained: a too-large retained message is skipped, the other retained messages of the filter arrive', async () => {
        const base = uniqueTopic('mps-ret');
        await publishAll(`${base}/big`, [big('b', 1000)], { retain: true });
        await publishAll(`${base}/small`, [big('s', 10)], { retain: true });
        const { client } = await rawConnect(broker.port, 5, { properties: { maximumPacketSize: LIMIT, receiveMaximum: 1 } }, { autoAck: true });
        client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/#`, qos: 1 }] });
        await client.until(() => publishes(client).length === 1, 5_000, 'the small retained message');
        await barrier(client);
        assert.deepEqual(publishes(client).map((packet) => `${packet.topic}:${String(packet.payload)[0]}`), [`${base}/small:s`]);
        for (const topic of [`${base}/big`, `${base}/small`]) client.sendPacket({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false });
        await barrier(client);
        client.destroy();
      });
    });

    describe('with mqtt.js', () => {
      it('5.0: a QoS 1 message over the Maximum Packet Size does not hold back the ones after it (Receive Maximum 1)', async () => {
        const topic = uniqueTopic('js-mps');
        const small = await subscriber(broker.url, topic, { version: 5, qos: 1, properties: { maximumPacketSize: 512, receiveMaximum: 1 } });
        const publisher = await connectClient(broker.url, { version: 5 });
        for (const payload of ['first', 'x'.repeat(2_000), 'y'.repeat(20_000), 'last']) await publisher.publish(topic, payload, { qos: 1 });
        const received = await small.waitForMessages(2);
        assert.deepEqual(received.map((message) => message.payload.toString()), ['first', 'last']);
        await publisher.end();
        await small.end();
      });

      for (const version of VERSIONS) {
        it(`${label(version)}: clean session 0 after a session that ended with its connection: sessionPresent false, the old subscription is gone`, async () => {
          const clientId = uniqueClientId('js-sp');
          const topic = uniqueTopic('js-sp');
          const first = await subscriber(broker.url, topic, { version, clientId, clean: true, qos: 1 });
          const second = await connectClient(broker.url, { version, clientId, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) });
          assert.equal(second.connack.sessionPresent, false);
          await first.waitForClose();
          const publisher = await connectClient(broker.url, { version: 5 });
          const result = await publisher.publish(topic, 'x', { qos: 1 });
          assert.equal(result.ack?.reasonCode, 0x10, 'no subscription matches');
          await publisher.end();
          await second.end();
        });
      }

      it('3.1: a resumed persistent session gets sessionPresent false (3.1 has no flag)', async () => {
        const clientId = uniqueClientId('js31');
        const first = await connectClient(broker.url, { version: 3, clientId, clean: false });
        await first.subscribe(uniqueTopic('js31'), { qos: 1 });
        await first.end();
        const second = await connectClient(broker.url, { version: 3, clientId, clean: false });
        assert.equal(second.connack.sessionPresent, false);
        await second.end();
        const cleaned = await connectClient(broker.url, { version: 3, clientId, clean: true });
        await cleaned.end();
      });
    });
  });
}
