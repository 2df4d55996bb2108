// Inbound QoS 2 across a broker kill -9 (engine/sessions/inbound-qos2.ts): a publisher with a
// persistent session that resends its QoS 2 PUBLISH with DUP after the crash gets it stored once.
//
// Goal: for a kill at each point of the publisher's QoS 2 flow (right after the PUBLISH is
// written, before its PUBREC can have gone out; after the PUBREC; right after the PUBREL), the
// restarted broker takes the publisher's resend (PUBLISH with DUP and the same packet id, or
// PUBREL) as MQTT 4.3.3 method B says, and a subscriber receives every message exactly once.
// Method: real `shardline start` processes, single node and split (in the split topology only
// the broker process is killed, the journal server keeps running); the publisher is a raw
// socket, so the test decides what is resent and when. The subscriber has a persistent session,
// subscribes, then stays offline until the end, and reads everything back in one go; a last
// message published after all the resends is the barrier that says nothing more is coming (same
// topic, so it is read back last). The kill right after a write lands at a point of the
// broker's work the test does not control (before the PUBLISH is read, between the marker and
// the message, after the message): every one of them must end with one copy.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { cleanup, killBroker, startBroker, type BrokerProcess, type Topology } from './support/broker-process.js';
import { uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { rawConnect, type MqttVersion, type RawMqttClient } from './support/raw-mqtt.js';

const TOPOLOGIES: Topology[] = ['single', 'split'];
const SESSION_EXPIRY_S = 600;
/** Where the kill lands in the publisher's flow of one message. */
type KillPoint = 'after-publish-written' | 'after-pubrec' | 'after-pubrel-written';
const ROUNDS: ReadonlyArray<{ point: KillPoint; version: MqttVersion }> = [
  { point: 'after-publish-written', version: 5 },
  { point: 'after-pubrec', version: 5 },
  { point: 'after-publish-written', version: 4 },
  { point: 'after-pubrel-written', version: 5 },
  { point: 'after-publish-written', version: 4 },
];

const raws = new Set<RawMqttClient>();

after(async () => {
  for (const client of raws) client.destroy();
  await cleanup();
});

function persistent(version: MqttVersion): { clean: false; properties?: { sessionExpiryInterval: number } } {
  return version === 5 ? { clean: false, properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : { clean: false };
}

async function connectRaw(port: number, version: MqttVersion, clientId: string, options: { autoAck?: boolean } = {}): Promise<{ client: RawMqttClient; sessionPresent: boolean }> {
  const { client, connack } = await rawConnect(port, version, { clientId, ...persistent(version) }, options);
  raws.add(client);
  return { client, sessionPresent: connack.sessionPresent };
}

function publishPacket(topic: string, messageId: number, payload: string, dup: boolean): Packet {
  return { cmd: 'publish', topic, messageId, qos: 2, dup, retain: false, payload: Buffer.from(payload) };
}

/** A full QoS 2 publish on an open connection: PUBREC, PUBREL, PUBCOMP. */
async function publishQos2(client: RawMqttClient, topic: string, messageId: number, payload: string, dup = false): Promise<{ pubrecCode: number; pubcompCode: number }> {
  client.sendPacket(publishPacket(topic, messageId, payload, dup));
  const pubrec = await client.nextOf('pubrec', 10_000);
  assert.equal(pubrec.messageId, messageId);
  client.sendPacket({ cmd: 'pubrel', messageId });
  const pubcomp = await client.nextOf('pubcomp', 10_000);
  assert.equal(pubcomp.messageId, messageId);
  return { pubrecCode: pubrec.reasonCode ?? 0, pubcompCode: pubcomp.reasonCode ?? 0 };
}

/** SIGKILL and a start right away on the same data (and journal server), same MQTT port. */
async function crashAndRestart(broker: BrokerProcess): Promise<BrokerProcess> {
  await killBroker(broker);
  const journal = broker.journal !== undefined && broker.journalAddress !== undefined ? { process: broker.journal, address: broker.journalAddress } : undefined;
  return startBroker({ topology: broker.topology, dataDir: broker.dataDir, journal, mqttPort: broker.port });
}

for (const topology of TOPOLOGIES) {
  describe(`inbound QoS 2 across kill -9 (${topology})`, () => {
    it('a publisher that resends its QoS 2 PUBLISH with DUP (or its PUBREL) after the crash gets each message stored once, wherever the kill landed', async (t) => {
      let broker = await startBroker({ topology });
      try {
        const topic = uniqueTopic(`q2in-${topology}`);
        const subscriberId = uniqueClientId('q2sub');
        const { client: subscriber } = await connectRaw(broker.port, 5, subscriberId);
        subscriber.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
        await subscriber.nextOf('suback');
        subscriber.destroy();

        const expected: string[] = [];
        for (const [round, { point, version }] of ROUNDS.entries()) {
          const publisherId = uniqueClientId(`q2pub${round}`);
          const messageId = 100 + round;
          const payload = `m${round}-${point}-v${version}`;
          expected.push(payload);
          const { client: before } = await connectRaw(broker.port, version, publisherId);
          before.sendPacket(publishPacket(topic, messageId, payload, false));
          if (point === 'after-pubrec' || point === 'after-pubrel-written') {
            assert.equal((await before.nextOf('pubrec', 10_000)).messageId, messageId);
            if (point === 'after-pubrel-written') before.sendPacket({ cmd: 'pubrel', messageId });
          }
          // No wait between the write and the kill: the broker is somewhere in its work.
          broker = await crashAndRestart(broker);
          const settled = broker.broker.lines.find((line) => line.includes('publish key markers (MQTT: inbound QoS 2 packet ids) left pending'));
          t.diagnostic(`round ${round} (${point}, v${version}): ${settled === undefined ? 'no pending marker at start' : settled}`);

          const { client: again, sessionPresent } = await connectRaw(broker.port, version, publisherId);
          assert.equal(sessionPresent, true, 'the publisher session survived');
          if (point === 'after-pubrel-written') {
            // MQTT 4.3.3: after PUBREC the sender resends PUBREL, never the PUBLISH.
            again.sendPacket({ cmd: 'pubrel', messageId });
            const pubcomp = await again.nextOf('pubcomp', 10_000);
            assert.equal(pubcomp.messageId, messageId);
          } else {
            const codes = await publishQos2(again, topic, messageId, payload, true);
            assert.ok(codes.pubrecCode < 0x80, `PUBREC for the resend: 0x${codes.pubrecCode.toString(16)}`);
            assert.equal(codes.pubcompCode, 0, 'PUBREL finds the packet id (0x92 would mean the broker had forgotten it)');
          }
          again.destroy();
        }

        const { client: last } = await connectRaw(broker.port, 5, uniqueClientId('q2end'));
        await publishQos2(last, topic, 1, 'end');
        last.destroy();
        const { client: reader } = await connectRaw(broker.port, 5, subscriberId, { autoAck: true });
        await reader.until(() => reader.packets.some((packet) => packet.cmd === 'publish' && packet.payload.toString() === 'end'), 15_000, 'the barrier message');
        const received = reader.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish').map((packet) => packet.payload.toString());
        assert.deepEqual(received, [...expected, 'end'], 'each message exactly once, in order');
      } finally {
        await killBroker(broker);
      }
    });
  });
}
