// Several brokers over one journal act as one MQTT service (docs/deployment.md, "Scaling
// brokers"; engine/peers): a journal node and two broker-only nodes started with --broker-peers,
// real `shardline start` processes, mqtt.js and raw MQTT clients on 127.0.0.1.
//
// - delivery across brokers at QoS 0, 1 and 2, both ways, in each publisher's order, each
//   message exactly once;
// - a retained message set at one broker is served by the other, and cleared there when the
//   first broker's admin API clears it;
// - a persistent session moved from A to B by connecting at B while connected at A: A's client
//   is told the session was taken over (5.0 DISCONNECT 0x8E), B's gets the session present and
//   every later message, and nothing A's client already completed at QoS 2 comes again;
// - kill -9 of A with a persistent session holding unacknowledged QoS 1 messages: the client
//   connects at B, which takes the session over after --takeover-wait-ms from its last durable
//   state, and every acknowledged publish arrives; the will of A's client that never comes back
//   is published by B once it finds A gone (no heartbeat for --takeover-wait-ms);
// - a user and an ACL rule added through A's admin API apply at B;
// - a subscriber at B that stops reading while A's publisher floods: B holds at most about
//   --max-queued-bytes for it (the rest is read back from the journal), and every message
//   arrives, in order, once it reads again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { cleanup, killBroker, scratchDirectory, startBroker, startJournalServer, waitForLogField, type BrokerProcess, type CliProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { rawConnect, type RawMqttClient } from './support/raw-mqtt.js';

const TOKEN = 'multi-broker-admin-token-0123456789';
const TAKEOVER_WAIT_MS = 1_500;
const MAX_QUEUED_BYTES = 64 * 1024;
const PEER_ARGS = ['--broker-peers', 'true', '--takeover-wait-ms', String(TAKEOVER_WAIT_MS), '--admin-token', TOKEN, '--max-queued-bytes', String(MAX_QUEUED_BYTES)];

const raws = new Set<RawMqttClient>();
let journal: { process: CliProcess; address: string };
let brokerA: BrokerProcess;
let brokerB: BrokerProcess;

before(async () => {
  journal = await startJournalServer(await scratchDirectory());
  // One after the other: the first start on a new journal creates the shards (docs/deployment.md).
  brokerA = await startPeer();
  brokerB = await startPeer();
});

after(async () => {
  closeAllClients();
  for (const client of raws) client.destroy();
  await cleanup();
});

function startPeer(): Promise<BrokerProcess> {
  return startBroker({ topology: 'split', journal, args: PEER_ARGS });
}

function payloads(label: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${label}-${index}`);
}

function persistent(clientId: string): { version: 5; clientId: string; clean: false; properties: { sessionExpiryInterval: number } } {
  return { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 600 } };
}

async function raw(broker: BrokerProcess, clientId: string, autoAck: boolean, receiveMaximum = 100): Promise<{ client: RawMqttClient; sessionPresent: boolean }> {
  const { client, connack } = await rawConnect(broker.port, 5, { clientId, clean: false, properties: { sessionExpiryInterval: 600, receiveMaximum } }, { autoAck });
  raws.add(client);
  return { client, sessionPresent: connack.sessionPresent };
}

async function adminCall(broker: BrokerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const address = String((await waitForLogField(broker.broker, 'admin')).admin);
  const base = address.startsWith('http') ? address : `http://${address}`;
  const response = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, json: await response.json().catch(() => undefined) };
}

/** Tries `attempt` until it returns true, a bounded number of times (B applies A's change once it has read it). */
async function eventually(attempt: () => Promise<boolean>, what: string): Promise<void> {
  for (let tries = 0; tries < 50; tries += 1) {
    if (await attempt()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`never: ${what}`);
}

function publishesOf(client: RawMqttClient, topic: string): IPublishPacket[] {
  return client.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish' && packet.topic === topic);
}

describe('brokers sharing one journal (--broker-peers)', () => {
  for (const qos of [0, 1, 2] as const) {
    it(`delivers QoS ${qos} across brokers both ways, in publisher order, exactly once`, async () => {
      const topic = uniqueTopic(`peers/q${qos}`);
      const atB = await connectClient(brokerB.url, { version: 5 });
      const atA = await connectClient(brokerA.url, { version: 5 });
      await atB.subscribe(topic, { qos });
      await atA.subscribe(topic, { qos });
      const fromA = await connectClient(brokerA.url, { version: 5 });
      const fromB = await connectClient(brokerB.url, { version: 5 });
      const sentA = payloads(`a${qos}`, 40);
      const sentB = payloads(`b${qos}`, 40);
      const results = await Promise.all([fromA.publishMany(topic, sentA, { qos }), fromB.publishMany(topic, sentB, { qos })]);
      if (qos > 0) for (const result of results.flat()) assert.ok((result.ack as { reasonCode?: number }).reasonCode === undefined || (result.ack as { reasonCode: number }).reasonCode < 0x80, 'every publish acknowledged');
      for (const subscriber of [atA, atB]) {
        const received = (await subscriber.waitForMessages(sentA.length + sentB.length, { topic, timeoutMs: 20_000 })).map((message) => message.payload.toString());
        // Each publisher's messages in its order, whichever broker it used; nothing twice.
        assert.deepEqual(received.filter((payload) => payload.startsWith(`a${qos}-`)), sentA);
        assert.deepEqual(received.filter((payload) => payload.startsWith(`b${qos}-`)), sentB);
      }
      // Nothing more comes: a marker through A arrives at B after everything, and nothing else before it.
      await atB.expectNothingBeforeMarker(fromA, topic, { from: sentA.length + sentB.length, what: 'no message twice' });
      for (const client of [atA, atB, fromA, fromB]) await client.end();
    });
  }

  it('serves a retained message set at A to a new subscriber at B, and drops it when A\'s admin API clears it', async () => {
    const topic = uniqueTopic('peers/retained');
    const publisher = await connectClient(brokerA.url, { version: 5 });
    // A live subscriber at B first: the retained message has reached B once it arrives there.
    const live = await connectClient(brokerB.url, { version: 5 });
    await live.subscribe(topic, { qos: 1 });
    await publisher.publish(topic, 'kept at A', { qos: 1, retain: true });
    await live.waitForMessages(1, { topic });
    const late = await connectClient(brokerB.url, { version: 5 });
    await late.subscribe(topic, { qos: 1 });
    const [message] = await late.waitForMessages(1, { topic });
    assert.equal(message?.payload.toString(), 'kept at A');
    assert.equal(message?.packet.retain, true, 'sent as retained');
    // Cleared through A's admin API (a `$retained` tombstone, nothing published): gone at B too.
    const path = `/api/mqtt/retained/${encodeURIComponent(topic)}`;
    assert.equal((await adminCall(brokerB, 'GET', path)).status, 200);
    assert.equal((await adminCall(brokerA, 'DELETE', path)).status, 204);
    await eventually(async () => (await adminCall(brokerB, 'GET', path)).status === 404, 'B no longer holds the retained message cleared at A');
    for (const client of [publisher, live, late]) await client.end();
  });

  it('moves a persistent session from A to B: A\'s client is told 0x8E, nothing lost, nothing completed at QoS 2 comes again', async () => {
    const topic = uniqueTopic('peers/move');
    const clientId = uniqueClientId('mover');
    const first = await connectClient(brokerA.url, persistent(clientId));
    await first.subscribe(topic, { qos: 2 });
    const publisher = await connectClient(brokerB.url, { version: 5 });
    const before = payloads('before', 10);
    await publisher.publishMany(topic, before, { qos: 2 });
    assert.deepEqual((await first.waitForMessages(before.length, { topic, timeoutMs: 20_000 })).map((message) => message.payload.toString()), before);
    // Every PUBCOMP of the first connection is handled at A before the move (packets are handled in order).
    await first.roundTrip();

    const second = await connectClient(brokerB.url, persistent(clientId));
    assert.equal(second.connack.sessionPresent, true, 'B resumed the session A held');
    await first.waitForClose(10_000);
    assert.equal(first.serverDisconnect?.reasonCode, 0x8e, 'A told its client the session was taken over');
    const afterMove = payloads('after', 10);
    const fromA = await connectClient(brokerA.url, { version: 5 });
    await fromA.publishMany(topic, afterMove, { qos: 2 });
    const received = (await second.waitForMessages(afterMove.length, { topic, timeoutMs: 20_000 })).map((message) => message.payload.toString());
    assert.deepEqual(received, afterMove, 'the subscription moved with the session; no message of the first connection again');
    await second.expectNothingBeforeMarker(fromA, topic, { from: afterMove.length, what: 'no duplicate at QoS 2' });
    for (const client of [second, publisher, fromA]) await client.end();
  });

  it('kill -9 of A: the client connects at B, which takes the session over after the wait, every acknowledged QoS 1 publish arrives, and B publishes the will of a client that never comes back', async () => {
    const topic = uniqueTopic('peers/crash');
    const clientId = uniqueClientId('survivor');
    // Its own broker A2 (killed here), beside B.
    const doomed = await startPeer();
    // A client of the doomed broker that never comes back: its will is B's to publish once B finds the broker gone.
    const willTopic = uniqueTopic('peers/will');
    const willWatcher = await connectClient(brokerB.url, { version: 5 });
    await willWatcher.subscribe(willTopic, { qos: 1 });
    const lost = await connectClient(doomed.url, { ...persistent(uniqueClientId('lost')), will: { topic: willTopic, payload: Buffer.from('gone with its broker'), qos: 1, retain: false } });
    const { client: first } = await raw(doomed, clientId, false);
    first.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }], properties: {} } as never);
    await first.nextOf('suback');
    const publisher = await connectClient(brokerB.url, { version: 5 });
    const sent = payloads('crash', 20);
    const results = await publisher.publishMany(topic, sent, { qos: 1 });
    assert.equal(results.filter((result) => result.ack?.cmd === 'puback').length, sent.length, 'every publish acknowledged');
    // Delivered at A2 and never acknowledged.
    await first.until(() => publishesOf(first, topic).length === sent.length, 20_000, 'the publishes at the doomed broker');
    await killBroker(doomed);
    first.destroy();
    lost.destroy();

    const { client: second, sessionPresent } = await raw(brokerB, clientId, true);
    assert.equal(sessionPresent, true, 'B resumed the dead broker\'s session');
    await second.until(() => new Set(publishesOf(second, topic).map((packet) => packet.payload.toString())).size === sent.length, 20_000, 'every acknowledged publish at B');
    const payloadsAtB = publishesOf(second, topic).map((packet) => packet.payload.toString());
    assert.deepEqual([...new Set(payloadsAtB)], sent, 'in order, none missing');
    const [will] = await willWatcher.waitForMessages(1, { topic: willTopic, timeoutMs: 20_000 });
    assert.equal(will?.payload.toString(), 'gone with its broker', 'B published the will of the dead broker\'s client');
    await willWatcher.expectNothingBeforeMarker(publisher, willTopic, { from: 1, what: 'the will once' });
    second.destroy();
    await Promise.all([publisher.end(), willWatcher.end()]);
  });

  it('applies a user and an ACL rule added through A\'s admin API at B', async () => {
    const username = uniqueClientId('user');
    const password = 'a long enough password 1';
    assert.equal((await adminCall(brokerA, 'POST', '/api/users', { username, password })).status, 201);
    // B knows the user once a wrong password is refused there (with no users it would take the name unverified).
    await eventually(async () => {
      try {
        const client = await connectClient(brokerB.url, { version: 5, username, password: 'not the password' });
        await client.end();
        return false;
      } catch {
        return true;
      }
    }, 'B refuses a wrong password for the user added at A');
    const client = await connectClient(brokerB.url, { version: 5, username, password });
    const denied = uniqueTopic('peers/denied');
    const rule = await adminCall(brokerA, 'POST', '/api/acl', { permission: 'deny', action: 'publish', topic: `${denied}/#` });
    assert.equal(rule.status, 201);
    await eventually(async () => {
      const result = await client.publish(`${denied}/x`, 'refused?', { qos: 1 });
      return (result.ack as { reasonCode?: number } | undefined)?.reasonCode === 0x87;
    }, 'B refuses a publish the rule added at A denies (PUBACK 0x87)');
    await client.end();
    assert.equal((await adminCall(brokerA, 'DELETE', `/api/acl/${(rule.json as { id: string }).id}`)).status, 204);
    assert.equal((await adminCall(brokerA, 'DELETE', `/api/users/${username}`)).status, 204);
  });

  it('bounds what B holds for a subscriber that stops reading, and delivers everything once it reads again', async () => {
    const topic = uniqueTopic('peers/slow');
    const slowId = uniqueClientId('slow');
    const receiveMaximum = 16;
    const { client: slow } = await raw(brokerB, slowId, true, receiveMaximum);
    slow.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }], properties: {} } as never);
    await slow.nextOf('suback');
    slow.pauseReading();
    const publisher = await connectClient(brokerA.url, { version: 5 });
    const body = 'x'.repeat(4096);
    const sent = payloads('slow', 400).map((label) => `${label}:${body}`);
    await publisher.publishMany(topic, sent, { qos: 1 });
    // What B queues for it, from its admin API: about --max-queued-bytes, not 1.6 MB.
    const clients = (await adminCall(brokerB, 'GET', '/api/mqtt/clients?limit=1000')).json as { items: Array<{ clientId: string; queued: number; inflight: number }> };
    const entry = clients.items.find((item) => item.clientId === slowId);
    assert.ok(entry !== undefined, 'the slow client is listed');
    // In flight: at most the client's Receive Maximum; queued: at most --max-queued-bytes (plus the one that crossed it).
    assert.ok(entry.inflight <= receiveMaximum, `B has ${entry.inflight} in flight for the slow client`);
    assert.ok(entry.queued * body.length <= MAX_QUEUED_BYTES + body.length, `B queues ${entry.queued} messages of ${body.length} bytes for the slow client`);
    slow.resumeReading();
    await slow.until(() => publishesOf(slow, topic).length >= sent.length, 30_000, 'every message once the client reads again');
    assert.deepEqual(publishesOf(slow, topic).map((packet) => packet.payload.toString()), sent, 'in order, each once');
    slow.destroy();
    await publisher.end();
  });
});
