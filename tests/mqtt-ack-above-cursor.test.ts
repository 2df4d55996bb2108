// Acknowledgements above a cursor across a kill -9 of the node: a delivery acknowledged while an
// earlier one was still unacknowledged must not be sent again after the restart.
//
// Goal: (1) a persistent session that completed a QoS 2 delivery (PUBREC, PUBCOMP) while an
// earlier QoS 1 one on the same topic was not PUBACKed (MQTT 4.6 orders each QoS on its own)
// gets the QoS 1 one again with DUP after the restart, and neither a second PUBLISH of the QoS 2
// one (which its client would take as a new message) nor a PUBREL; (2) in a shared group, when
// one member acknowledged the second message while another member held the first, the first is
// sent again once and the second not at all. Both failed before the cursor records kept the
// offsets acknowledged above them (docs/mqtt.md, shared subscriptions).
// Method: a single node on a scratch data directory; raw-socket clients (they acknowledge only
// what the test tells them to); the acknowledgements are given time to reach the journal (the
// cursor write interval is 100 ms), then restartBroker() SIGKILLs the node and starts it again
// on the same data directory and port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { cleanup, restartBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { rawConnect, waitUntil, type RawMqttClient } from './support/raw-mqtt.js';

/** How long to watch for something that must not arrive. */
const QUIET_MS = 700;
/** Past the cursor write interval (100 ms), so the acknowledgements are in the journal at the kill. */
const CURSOR_WRITTEN_MS = 400;
const PERSISTENT = { clean: false, properties: { sessionExpiryInterval: 600 } } as const;

const raws = new Set<RawMqttClient>();

async function connectRaw(port: number, clientId: string, autoAck = false): Promise<{ client: RawMqttClient; sessionPresent: boolean }> {
  const { client, connack } = await rawConnect(port, 5, { clientId, ...PERSISTENT }, { autoAck });
  raws.add(client);
  return { client, sessionPresent: connack.sessionPresent };
}

function publishes(client: RawMqttClient): IPublishPacket[] {
  return client.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
}

function releases(client: RawMqttClient): number[] {
  return client.packets.filter((packet) => packet.cmd === 'pubrel').map((packet) => (packet as Packet & { messageId: number }).messageId);
}

after(async () => {
  for (const client of raws) client.destroy();
  closeAllClients();
  await cleanup();
});

describe('acknowledged above the cursor, across kill -9 (single node)', () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBroker();
  });
  after(async () => {
    if (broker !== undefined) await stopBroker(broker);
  });

  it('persistent session: a QoS 2 delivery completed while an earlier QoS 1 one is unacknowledged is not sent again; the QoS 1 one is, with DUP', async () => {
    const topic = uniqueTopic('above-session');
    const clientId = uniqueClientId('above');
    const { client: first } = await connectRaw(broker.port, clientId);
    first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
    await first.nextOf('suback');
    // One topic: one data shard, so both deliveries are under one cursor.
    const publisher = await connectClient(broker.url, { version: 5 });
    await publisher.publish(topic, 'qos1', { qos: 1 });
    await publisher.publish(topic, 'qos2', { qos: 2 });
    publisher.destroy();
    await first.until(() => first.publishesReceived >= 2, 5_000, 'both deliveries');
    const [qos1, qos2] = publishes(first) as [IPublishPacket, IPublishPacket];
    assert.deepEqual([qos1.payload.toString(), qos1.qos, qos2.payload.toString(), qos2.qos], ['qos1', 1, 'qos2', 2]);
    first.sendPacket({ cmd: 'pubrec', messageId: qos2.messageId as number });
    assert.equal((await first.nextOf('pubrel')).messageId, qos2.messageId);
    first.sendPacket({ cmd: 'pubcomp', messageId: qos2.messageId as number });
    await sleep(CURSOR_WRITTEN_MS);

    broker = await restartBroker(broker);
    const { client: again, sessionPresent } = await connectRaw(broker.port, clientId);
    assert.equal(sessionPresent, true);
    await again.until(() => again.publishesReceived >= 1, 10_000, 'the QoS 1 delivery again');
    await sleep(QUIET_MS);
    assert.deepEqual(
      publishes(again).map((packet) => `${packet.payload.toString()}#${packet.messageId}${packet.dup ? '+dup' : ''}`),
      [`qos1#${qos1.messageId}+dup`],
      'the unacknowledged QoS 1 delivery once, with DUP and its id; no second PUBLISH of the completed QoS 2 one',
    );
    assert.deepEqual(releases(again), [], 'no PUBREL either: its PUBCOMP came before the crash');
  });

  it('shared group: a message one member acknowledged above the group\'s cursor is not sent again; the one another member held is, once', async () => {
    const topic = uniqueTopic('above-group');
    const ids = [uniqueClientId('ga'), uniqueClientId('gb')];
    const members = await Promise.all(ids.map(async (clientId) => (await connectRaw(broker.port, clientId)).client));
    for (const member of members) {
      member.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${topic}`, qos: 1 }] });
      await member.nextOf('suback');
    }
    const publisher = await connectClient(broker.url, { version: 5 });
    await publisher.publish(topic, 'm1', { qos: 1 });
    await publisher.publish(topic, 'm2', { qos: 1 });
    publisher.destroy();
    // Round-robin: one message to each member.
    for (const member of members) await member.until(() => member.publishesReceived >= 1, 5_000, 'a delivery to each member');
    const holder = members.find((member) => publishes(member)[0]?.payload.toString() === 'm2');
    assert.ok(holder !== undefined, `m2 reached a member: ${members.map((member) => member.describe()).join(' ')}`);
    // The member with m2 acknowledges it; the one with m1 does not, so the group's cursor stays at m1.
    holder.sendPacket({ cmd: 'puback', messageId: publishes(holder)[0]?.messageId as number });
    await sleep(CURSOR_WRITTEN_MS);

    broker = await restartBroker(broker);
    const back = await Promise.all(ids.map(async (clientId) => (await connectRaw(broker.port, clientId, true)).client));
    for (const member of back) assert.ok(member.packets.some((packet) => packet.cmd === 'connack' && packet.sessionPresent));
    const marker = await connectClient(broker.url, { version: 5 });
    await marker.publish(topic, 'marker', { qos: 1 });
    marker.destroy();
    // Polled: the marker may reach either member, and until() wakes on its own client's bytes only.
    await waitUntil(() => back.some((member) => publishes(member).some((packet) => packet.payload.toString() === 'marker')), 10_000, 'the marker');
    await sleep(QUIET_MS);
    const received = back.flatMap((member) => publishes(member).map((packet) => packet.payload.toString())).sort();
    assert.deepEqual(received, ['m1', 'marker'], 'm1 once (its member never acknowledged it), m2 not again');
  });
});
