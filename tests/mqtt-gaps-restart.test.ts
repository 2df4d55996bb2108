// What a broker restart does to clients, for the rows of docs/mqtt.md that had no end-to-end
// test: wills after a crash, packet ids of resends after a crash, a QoS 2 delivery between
// PUBREC and PUBCOMP across a crash, and the clean SIGTERM shutdown (DISCONNECT 0x8B, no wills).
//
// Goal: after `kill -9` and a restart, (1) the will of every persistent-session client that was
// connected at the crash is published; (2) an unacknowledged delivery is resent with DUP and
// the packet id it had before the crash, and a QoS 2 delivery already PUBRECed gets PUBREL with
// its id and no second PUBLISH; (3) a subscriber that went offline between PUBREC and PUBCOMP
// gets only the PUBREL when it comes back after the restart. On SIGTERM, 5.0 clients get
// DISCONNECT 0x8B before the close, 3.1.1 clients a bare close, the process exits 0, and no
// will is published, neither at the shutdown nor when the broker starts again.
// Method: single-node brokers on scratch data directories; raw-socket clients (they answer
// nothing unless told, so the test decides what is acknowledged); restartBroker() SIGKILLs the
// node and starts it again on the same data directory and MQTT port. Wills are published
// retained, so "was any will published" is one SUBSCRIBE after the restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt-packet';
import { cleanup, restartBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { hex, rawConnect, type MqttVersion, type RawMqttClient } from './support/raw-mqtt.js';

/** How long to watch for something that must not arrive. */
const QUIET_MS = 700;
const SESSION_EXPIRY_S = 600;

const raws = new Set<RawMqttClient>();

function persistent(version: MqttVersion): { clean: false; properties?: { sessionExpiryInterval: number } } {
  return version === 5 ? { clean: false, properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : { clean: false };
}

async function connectRaw(port: number, version: MqttVersion, fields: Parameters<typeof rawConnect>[2] = {}): Promise<{ client: RawMqttClient; connack: IConnackPacket }> {
  const opened = await rawConnect(port, version, fields);
  raws.add(opened.client);
  return opened;
}

function publishes(client: RawMqttClient): IPublishPacket[] {
  return client.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
}

function releases(client: RawMqttClient): number[] {
  return client.packets.filter((packet) => packet.cmd === 'pubrel').map((packet) => (packet as Packet & { messageId: number }).messageId);
}

/** The retained messages under `filter`, as `topic=payload`, collected for QUIET_MS after the SUBACK. */
async function retainedUnder(port: number, filter: string): Promise<string[]> {
  const { client } = await connectRaw(port, 4);
  client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] });
  await client.nextOf('suback');
  await sleep(QUIET_MS);
  const found = publishes(client).map((packet) => `${packet.topic}=${packet.payload.toString()}`);
  client.destroy();
  return found.sort();
}

after(async () => {
  for (const client of raws) client.destroy();
  closeAllClients();
  await cleanup();
});

describe('kill -9 and restart (single node)', () => {
  let broker: BrokerProcess;
  before(async () => {
    broker = await startBroker();
  });
  after(async () => {
    if (broker !== undefined) await stopBroker(broker);
  });

  it('the wills of persistent-session clients connected at the crash are published after the restart (3.1.1 clean session 0, 5.0 expiry > 0)', async () => {
    const base = uniqueTopic('crash-will');
    for (const version of [4, 5] as const) {
      await connectRaw(broker.port, version, {
        clientId: uniqueClientId(`cw${version}`),
        ...persistent(version),
        will: { topic: `${base}/v${version}`, payload: Buffer.from(`will-v${version}`), qos: 1, retain: true },
      });
    }
    assert.deepEqual(await retainedUnder(broker.port, `${base}/#`), [], 'no will while the clients are connected');
    broker = await restartBroker(broker);
    assert.deepEqual(await retainedUnder(broker.port, `${base}/#`), [`${base}/v4=will-v4`, `${base}/v5=will-v5`]);
  });

  it('resends after the crash keep the packet ids: unacknowledged QoS 1 and QoS 2 PUBLISH again with DUP and the same id; PUBRECed QoS 2 deliveries get PUBREL with their id, not a PUBLISH', async () => {
    const topic = uniqueTopic('crash-ids');
    const clientId = uniqueClientId('ids');
    const { client: before } = await connectRaw(broker.port, 4, { clientId, clean: false });
    before.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${topic}/q1`, qos: 1 }, { topic: `${topic}/q2`, qos: 2 }] });
    await before.nextOf('suback');
    const publisher = await connectClient(broker.url, { version: 5 });
    for (let seq = 0; seq < 5; seq += 1) {
      await publisher.publish(`${topic}/q1`, `q1:${seq}`, { qos: 1 });
      await publisher.publish(`${topic}/q2`, `q2:${seq}`, { qos: 2 });
    }
    publisher.destroy();
    await before.until(() => before.publishesReceived >= 10, 5_000, '10 deliveries before the crash');
    const idOf = new Map(publishes(before).map((packet) => [packet.payload.toString(), packet.messageId as number]));
    assert.equal(new Set(idOf.values()).size, 10, `ten distinct packet ids: ${JSON.stringify([...idOf])}`);
    // The first two QoS 2 deliveries go on to PUBREC; the PUBREL says their release is recorded.
    const recorded = ['q2:0', 'q2:1'].map((payload) => idOf.get(payload) as number);
    for (const id of recorded) before.sendPacket({ cmd: 'pubrec', messageId: id });
    await before.until(() => releases(before).length >= 2, 5_000, 'PUBREL for the PUBRECed deliveries');
    assert.deepEqual(releases(before).sort(), [...recorded].sort());

    broker = await restartBroker(broker);
    const { client: again, connack } = await connectRaw(broker.port, 4, { clientId, clean: false });
    assert.equal(connack.sessionPresent, true);
    await again.until(() => again.publishesReceived >= 8 && releases(again).length >= 2, 10_000, '8 PUBLISH and 2 PUBREL resent');
    await sleep(QUIET_MS);
    const resent = publishes(again);
    assert.deepEqual(
      resent.map((packet) => `${packet.payload.toString()}#${packet.messageId}${packet.dup ? '+dup' : ''}`).sort(),
      [...idOf].filter(([payload]) => payload !== 'q2:0' && payload !== 'q2:1').map(([payload, id]) => `${payload}#${id}+dup`).sort(),
      'every unacknowledged delivery resent once, with DUP and its packet id from before the crash',
    );
    assert.deepEqual(releases(again).sort(), [...recorded].sort(), 'PUBREL again, with the same ids, for the PUBRECed deliveries');
  });

  it('QoS 2: a subscriber offline between PUBREC and PUBCOMP across a crash gets the PUBREL again and not the message', async () => {
    const topic = uniqueTopic('crash-released');
    const clientId = uniqueClientId('rel');
    const { client: first } = await connectRaw(broker.port, 5, { clientId, ...persistent(5) });
    first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
    await first.nextOf('suback');
    const publisher = await connectClient(broker.url, { version: 4 });
    await publisher.publish(topic, 'once', { qos: 2 });
    publisher.destroy();
    const delivery = await first.nextOf('publish');
    const id = delivery.messageId as number;
    first.sendPacket({ cmd: 'pubrec', messageId: id });
    assert.equal((await first.nextOf('pubrel')).messageId, id);
    first.destroy();
    // The disconnect is recorded before the crash.
    await sleep(300);

    broker = await restartBroker(broker);
    const { client: again, connack } = await connectRaw(broker.port, 5, { clientId, ...persistent(5) });
    assert.equal(connack.sessionPresent, true);
    const pubrel = await again.nextOf('pubrel');
    assert.equal(pubrel.messageId, id, 'PUBREL with the id from before the crash');
    again.sendPacket({ cmd: 'pubcomp', messageId: id });
    await sleep(QUIET_MS);
    assert.deepEqual(
      publishes(again).map((packet) => `${packet.payload.toString()}#${packet.messageId}`),
      [],
      'the message is not sent again',
    );
  });
});

describe('SIGTERM shutdown (single node)', () => {
  let broker: BrokerProcess;
  const willBase = uniqueTopic('sigterm-will');
  const watcherId = uniqueClientId('watch');
  const clients: Array<{ version: MqttVersion; client: RawMqttClient }> = [];

  before(async () => {
    broker = await startBroker();
    // A persistent watcher of the will topics, back after the restart to see what was published.
    const { client: watcher } = await connectRaw(broker.port, 4, { clientId: watcherId, clean: false });
    watcher.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${willBase}/#`, qos: 1 }] });
    await watcher.nextOf('suback');
    clients.push({ version: 4, client: watcher });
    const withWills: Array<{ version: MqttVersion; session: 'persistent' | 'clean' }> = [
      { version: 4, session: 'persistent' },
      { version: 4, session: 'clean' },
      { version: 5, session: 'persistent' },
      { version: 5, session: 'clean' },
    ];
    for (const { version, session } of withWills) {
      const name = `v${version}-${session}`;
      const { client } = await connectRaw(broker.port, version, {
        clientId: uniqueClientId(name),
        ...(session === 'persistent' ? persistent(version) : { clean: true }),
        will: { topic: `${willBase}/${name}`, payload: Buffer.from(name), qos: 1, retain: true },
      });
      clients.push({ version, client });
    }
  });

  it('5.0 clients get DISCONNECT 0x8B server shutting down before the close, 3.1.1 clients a close without DISCONNECT; the process exits 0', async () => {
    await stopBroker(broker);
    for (const { version, client } of clients) {
      await client.waitClosed(5_000);
      const disconnects = client.packets.filter((packet) => packet.cmd === 'disconnect').map((packet) => hex((packet as { reasonCode?: number }).reasonCode ?? 0));
      assert.deepEqual(disconnects, version === 5 ? [hex(0x8b)] : [], `${version === 5 ? '5.0' : '3.1.1'} client: ${client.describe()}`);
    }
  });

  it('no will is published on a SIGTERM shutdown, nor when the broker starts again', async () => {
    broker = await startBroker({ dataDir: broker.dataDir, mqttPort: broker.port });
    const { client: watcher, connack } = await connectRaw(broker.port, 4, { clientId: watcherId, clean: false });
    assert.equal(connack.sessionPresent, true, 'the watcher session survived the shutdown');
    assert.deepEqual(await retainedUnder(broker.port, `${willBase}/#`), [], 'no will stored as retained');
    assert.deepEqual(
      publishes(watcher).map((packet) => packet.topic),
      [],
      'no will queued for the persistent watcher',
    );
    await stopBroker(broker);
  });
});
