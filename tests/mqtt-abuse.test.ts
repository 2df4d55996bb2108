// Limits against abusive clients, end to end (real `shardline start` processes, loopback only).
//
// Goal: each abuse limit holds where it is set, with the spec's answer (5.0 CONNACK 0x97 / 0x9F,
// DISCONNECT 0x96, PUBACK 0x97, SUBACK 0x97; 3.1.1 CONNACK 0x03, close, SUBACK 0x80); the
// client under the limit is unaffected; a refusal never lets a message through; a flood of
// refusals does not flood the log; a client that sends its CONNECT a byte at a time too slowly
// is dropped at the connect timeout.
// Method: one broker per describe, started with the limit under test (every client comes from
// 127.0.0.1, so per-address and global limits are tested on separate brokers). Raw clients
// (tests/support/raw-mqtt.ts) see exactly what the broker answers. Every loop is bounded.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connectAsync } from 'mqtt';
import type { IConnackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { brokerForSuite, cleanup, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { connackCode, connectPacket, hex, rawConnect, RawMqttClient, waitUntil, type MqttVersion } from './support/raw-mqtt.js';

after(cleanup);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const versionName = (version: MqttVersion): string => (version === 5 ? '5.0' : '3.1.1');
let sequence = 0;
const uniqueId = (prefix: string): string => `${prefix}-${process.pid}-${(sequence += 1)}`;

/** Opens a socket, sends CONNECT and returns the CONNACK code, or 'closed' if the broker closed without one. */
async function connectCode(port: number, version: MqttVersion, clientId: string): Promise<{ code: number | 'closed'; client: RawMqttClient }> {
  const client = await RawMqttClient.open(port, { protocolVersion: version });
  client.sendPacket(connectPacket(version, { clientId }));
  await client.until(() => client.closed || client.packets.some((packet) => packet.cmd === 'connack'), 5_000, 'CONNACK or close');
  const connack = client.packets.find((packet): packet is IConnackPacket => packet.cmd === 'connack');
  return { code: connack === undefined ? 'closed' : connackCode(connack), client };
}

/**
 * Opens `count` sockets at once (so the broker accepts them within a few ms), then sends each a
 * CONNECT; returns how many got which answer, and the refill the elapsed time allowed.
 */
async function burst(port: number, version: MqttVersion, count: number, opened: RawMqttClient[]): Promise<{ admitted: number; refused: Map<number, number>; closed: number; elapsedMs: number }> {
  const started = Date.now();
  const clients = await Promise.all(Array.from({ length: count }, () => RawMqttClient.open(port, { protocolVersion: version })));
  const elapsedMs = Date.now() - started;
  opened.push(...clients);
  for (const client of clients) client.sendPacket(connectPacket(version, { clientId: uniqueId('burst') }));
  await Promise.all(clients.map((client) => client.until(() => client.closed || client.packets.some((packet) => packet.cmd === 'connack'), 5_000, 'CONNACK or close')));
  let admitted = 0;
  let closed = 0;
  const refused = new Map<number, number>();
  for (const client of clients) {
    const connack = client.packets.find((packet): packet is IConnackPacket => packet.cmd === 'connack');
    if (connack === undefined) closed += 1;
    else if (connackCode(connack) === 0) admitted += 1;
    else refused.set(connackCode(connack), (refused.get(connackCode(connack)) ?? 0) + 1);
  }
  return { admitted, refused, closed, elapsedMs };
}

/** The broker's warn lines about `limit` (the LogLimiter's kind), and its "suppressed" summaries. */
function limitLines(broker: BrokerProcess, limit: string): { lines: number; suppressed: number } {
  let lines = 0;
  let suppressed = 0;
  for (const line of broker.broker.lines) {
    if (!line.includes(`"limit":"${limit}"`)) continue;
    const entry = JSON.parse(line) as { suppressed?: number };
    if (entry.suppressed !== undefined) suppressed += entry.suppressed;
    else lines += 1;
  }
  return { lines, suppressed };
}

describe('--max-connections-per-ip 4', () => {
  const LIMIT = 4;
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--max-connections-per-ip', String(LIMIT), '--connect-timeout-ms', '3000'] }, () => opened.forEach((client) => client.destroy()));

  for (const version of [5, 4] as MqttVersion[]) {
    it(`MQTT ${versionName(version)}: the 5th connection from one address gets CONNACK ${version === 5 ? '0x97 quota exceeded' : '0x03 server unavailable'}; the 4 others stay served; a freed slot is reusable`, async () => {
      const admitted: RawMqttClient[] = [];
      for (let index = 0; index < LIMIT; index += 1) admitted.push((await rawConnect(broker.port, version, { clientId: uniqueId('per-ip') })).client);
      opened.push(...admitted);
      const refused = await connectCode(broker.port, version, uniqueId('per-ip-extra'));
      opened.push(refused.client);
      assert.equal(refused.code === 'closed' ? 'closed' : hex(refused.code), hex(version === 5 ? 0x97 : 0x03), 'CONNACK of the connection over the per-address limit');
      await refused.client.waitClosed(2_000);

      // The admitted ones still work.
      const first = admitted[0] as RawMqttClient;
      first.sendPacket({ cmd: 'pingreq' });
      await first.nextOf('pingresp', 2_000);

      // Freed: one closes, a new one is admitted (the count follows the sockets).
      first.destroy();
      await waitUntil(() => first.closed, 2_000, 'closed');
      let again: Awaited<ReturnType<typeof connectCode>> | undefined;
      // The broker learns of the close a moment later.
      for (let attempt = 0; attempt < 50; attempt += 1) {
        again = await connectCode(broker.port, version, uniqueId('per-ip-again'));
        opened.push(again.client);
        if (again.code === 0) break;
        again.client.destroy();
        await sleep(20);
      }
      assert.equal(again?.code, 0, 'a slot freed by a close is given to the next connection');
      for (const client of [...admitted, again?.client]) client?.destroy();
      await sleep(100);
    });
  }

  it('far over the limit (4 + 10 sockets open, no CONNECT), more sockets are closed at accept without a reply', async () => {
    const sockets: RawMqttClient[] = [];
    for (let index = 0; index < LIMIT + 10; index += 1) sockets.push(await RawMqttClient.open(broker.port));
    opened.push(...sockets);
    const extra = await RawMqttClient.open(broker.port);
    opened.push(extra);
    assert.equal(await extra.closesWithin(1_000), true, 'a socket past the headroom is closed at once, well before the 3 s connect timeout');
    assert.equal(extra.bytesReceived, 0, 'no reply to a socket closed at accept');
    assert.equal(sockets.filter((socket) => socket.closed).length, 0, 'the sockets within the headroom are still open');
    for (const socket of sockets) socket.destroy();
    await sleep(100);
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('after-flood') });
    client.destroy();
  });
});

describe('--max-connect-rate-per-ip 5', () => {
  const RATE = 5;
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--max-connect-rate-per-ip', String(RATE)] }, () => opened.forEach((client) => client.destroy()));

  it('MQTT 5.0: past 5 new connections in a burst from one address, CONNACK 0x9F connection rate exceeded; a second later connections are admitted again', async () => {
    (await rawConnect(broker.port, 5, { clientId: uniqueId('warm') })).client.destroy();
    await sleep(1_100);
    const result = await burst(broker.port, 5, RATE + 3, opened);
    const refill = Math.floor((result.elapsedMs / 1000) * RATE);
    const seen = JSON.stringify({ ...result, refused: [...result.refused] });
    assert.ok(result.admitted >= RATE && result.admitted <= RATE + refill, `${RATE} admitted (+${refill} refilled while the sockets opened): ${seen}`);
    assert.equal(result.refused.get(0x9f), RATE + 3 - result.admitted, `the rest get CONNACK 0x9F: ${seen}`);
    await sleep(1_100);
    const later = await connectCode(broker.port, 5, uniqueId('rate-ip-later'));
    opened.push(later.client);
    assert.equal(later.code, 0, 'admitted once the rate allows again');
  });

  it('MQTT 3.1.1: past the rate, CONNACK 0x03 server unavailable', async () => {
    await sleep(1_100);
    const result = await burst(broker.port, 4, RATE + 2, opened);
    assert.ok((result.refused.get(0x03) ?? 0) >= 1 && result.refused.size === 1, `refused with CONNACK 0x03: ${JSON.stringify({ ...result, refused: [...result.refused] })}`);
  });

  it('a flood of refused connections is logged at most 10 times per 10 s per kind, the rest counted', async () => {
    await sleep(1_100);
    const before = limitLines(broker, 'connect-rate');
    // RATE admitted + RATE refused with CONNACK per second; the rest dropped at accept.
    const flood: Promise<unknown>[] = [];
    for (let index = 0; index < 60; index += 1) {
      flood.push(
        RawMqttClient.open(broker.port, { protocolVersion: 5 }).then((client) => {
          opened.push(client);
          client.sendPacket(connectPacket(5, { clientId: uniqueId('flood') }));
          return client.closesWithin(2_000);
        }),
      );
    }
    await Promise.all(flood);
    await sleep(200);
    const afterFlood = limitLines(broker, 'connect-rate');
    const dropped = limitLines(broker, 'connect-dropped');
    assert.ok(afterFlood.lines - before.lines <= 10, `at most 10 lines about refusals in the window, got ${afterFlood.lines - before.lines}`);
    assert.ok(dropped.lines <= 10, `at most 10 lines about dropped sockets in the window, got ${dropped.lines}`);
    assert.ok(dropped.lines >= 1, 'sockets far over the rate were dropped at accept, and that was logged');
  });
});

describe('--max-connect-rate 5 (all addresses)', () => {
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--max-connect-rate', '5'] }, () => opened.forEach((client) => client.destroy()));

  it('MQTT 5.0: the 6th new connection within a second gets CONNACK 0x9F; past twice the rate sockets are closed at accept', async () => {
    // A first connection warms the broker up: compiling its connection code on the first accept
    // can take long enough for the bucket to refill during the burst.
    (await rawConnect(broker.port, 5, { clientId: uniqueId('warm') })).client.destroy();
    await sleep(1_100);
    const result = await burst(broker.port, 5, 14, opened);
    const refill = Math.floor((result.elapsedMs / 1000) * 5);
    const seen = JSON.stringify({ ...result, refused: [...result.refused] });
    assert.ok(result.admitted >= 5 && result.admitted <= 5 + refill, `5 admitted (+${refill} refilled): ${seen}`);
    assert.ok((result.refused.get(0x9f) ?? 0) >= 5 && result.refused.size === 1, `5 (or a refill more) refused with CONNACK 0x9F: ${seen}`);
    assert.ok(result.closed >= 4 - 2 * refill, `the rest closed at accept without a CONNACK: ${seen}`);
  });
});

describe('per-client limits: --max-publish-rate 20, --max-publish-bytes-rate 2000, --max-subscriptions-per-client 3', () => {
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--max-publish-rate', '20', '--max-publish-bytes-rate', '2000', '--max-subscriptions-per-client', '3'] }, () => opened.forEach((client) => client.destroy()));

  async function subscriber(topic: string): Promise<RawMqttClient> {
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('sub') }, { autoAck: true });
    opened.push(client);
    client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await client.nextOf('suback');
    return client;
  }

  it('MQTT 5.0: 40 PUBLISH in one burst: DISCONNECT 0x96 message rate too high after the first 20', async () => {
    const topic = uniqueId('rate/t');
    const watcher = await subscriber(topic);
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('burst') });
    opened.push(client);
    for (let index = 0; index < 40; index += 1) client.sendPacket({ cmd: 'publish', topic, payload: Buffer.from(String(index)), qos: 1, messageId: index + 1, retain: false, dup: false });
    await client.waitClosed(5_000);
    const disconnect = client.packets.find((packet) => packet.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    assert.equal(hex(disconnect?.reasonCode), hex(0x96), `DISCONNECT reason (packets ${client.describe()})`);
    const acked = client.packets.filter((packet) => packet.cmd === 'puback' && (packet.reasonCode ?? 0) < 0x80).map((packet) => packet.messageId as number);
    assert.ok(acked.length <= 20, `at most the burst of 20 was accepted, got ${acked.length} acks`);
    // Nothing acknowledged is lost: every acked message reaches the subscriber.
    await watcher.until(() => watcher.publishesReceived >= acked.length, 5_000, 'acked messages delivered');
    const delivered = new Set(watcher.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish').map((packet) => Number(packet.payload.toString())));
    for (const id of acked) assert.ok(delivered.has(id - 1), `acknowledged message ${id - 1} was delivered`);
  });

  it('MQTT 3.1.1: a burst over the message rate closes the connection', async () => {
    const { client } = await rawConnect(broker.port, 4, { clientId: uniqueId('burst-311') });
    opened.push(client);
    for (let index = 0; index < 40; index += 1) client.sendPacket({ cmd: 'publish', topic: 'rate/311', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    await client.waitClosed(5_000);
  });

  it('a client publishing under the rate (10 per second for 2 s) is never disconnected', async () => {
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('steady') });
    opened.push(client);
    for (let index = 0; index < 20; index += 1) {
      client.sendPacket({ cmd: 'publish', topic: 'rate/steady', payload: Buffer.from('x'), qos: 1, messageId: index + 1, retain: false, dup: false });
      await sleep(100);
    }
    await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === 20 || client.closed, 5_000, '20 PUBACKs');
    assert.equal(client.closed, false, `not disconnected (packets ${client.describe()})`);
    assert.ok(client.packets.filter((packet) => packet.cmd === 'puback').every((packet) => (packet.reasonCode ?? 0) < 0x80), 'every PUBACK a success');
    client.destroy();
  });

  it('MQTT 5.0: over 2000 payload bytes per second, QoS 1 PUBLISH gets PUBACK 0x97 and is not delivered; the connection stays; a second later publishes pass again', async () => {
    const topic = uniqueId('bytes/t');
    const watcher = await subscriber(topic);
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('bytes') });
    opened.push(client);
    const payload = (index: number): Buffer => Buffer.concat([Buffer.from(`${index}:`), Buffer.alloc(600, 0x61)]);
    for (let index = 1; index <= 5; index += 1) client.sendPacket({ cmd: 'publish', topic, payload: payload(index), qos: 1, messageId: index, retain: false, dup: false });
    await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === 5, 5_000, '5 PUBACKs');
    const codes = client.packets.filter((packet) => packet.cmd === 'puback').map((packet) => (packet.reasonCode ?? 0) < 0x80 ? 'ok' : hex(packet.reasonCode));
    assert.deepEqual(codes, ['ok', 'ok', 'ok', '0x97', '0x97'], 'three 602-byte payloads fit 2000 bytes, the next two are over quota');
    await sleep(1_100);
    client.sendPacket({ cmd: 'publish', topic, payload: payload(6), qos: 1, messageId: 6, retain: false, dup: false });
    await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === 6, 5_000, '6th PUBACK');
    const sixth = client.packets.filter((packet) => packet.cmd === 'puback')[5];
    assert.ok((sixth?.reasonCode ?? 0) < 0x80, `the 6th, a second later, is accepted (${hex(sixth?.reasonCode)})`);
    assert.equal(client.closed, false, 'the connection stays');
    await watcher.until(() => watcher.publishesReceived >= 4, 5_000, '4 accepted messages delivered');
    await sleep(200);
    const delivered = watcher.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish').map((packet) => packet.payload.toString().split(':')[0]);
    assert.deepEqual(delivered, ['1', '2', '3', '6'], 'exactly the accepted messages were delivered');
  });

  it('MQTT 3.1.1: over the byte rate the connection is closed (3.1.1 cannot refuse one publish)', async () => {
    const { client } = await rawConnect(broker.port, 4, { clientId: uniqueId('bytes-311') });
    opened.push(client);
    for (let index = 1; index <= 5; index += 1) client.sendPacket({ cmd: 'publish', topic: 'bytes/311', payload: Buffer.alloc(600), qos: 1, messageId: index, retain: false, dup: false });
    await client.waitClosed(5_000);
    assert.ok(client.packets.filter((packet) => packet.cmd === 'puback').length <= 3, 'no PUBACK for what was over the limit');
  });

  for (const version of [5, 4] as MqttVersion[]) {
    it(`MQTT ${versionName(version)}: a 4th subscription gets SUBACK ${version === 5 ? '0x97' : '0x80'}; re-subscribing an existing filter and subscribing after an UNSUBSCRIBE are fine`, async () => {
      const { client } = await rawConnect(broker.port, version, { clientId: uniqueId('subs') });
      opened.push(client);
      client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: ['s/1', 's/2', 's/3', 's/4', 's/2'].map((topic) => ({ topic, qos: 1 })) });
      const first = (await client.nextOf('suback')) as ISubackPacket;
      const refusal = version === 5 ? 0x97 : 0x80;
      assert.deepEqual(first.granted, [1, 1, 1, refusal, 1], 'three granted, the 4th refused, the repeated s/2 replaces and is granted');
      client.sendPacket({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 's/5', qos: 0 }, { topic: 's/1', qos: 0 }] });
      const second = (await client.nextOf('suback')) as ISubackPacket;
      assert.deepEqual(second.granted, [refusal, 0], 'still at 3: a new filter refused, an existing one re-granted');
      client.sendPacket({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['s/3'] });
      await client.nextOf('unsuback');
      client.sendPacket({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 's/5', qos: 0 }] });
      const third = (await client.nextOf('suback')) as ISubackPacket;
      assert.deepEqual(third.granted, [0], 'a slot freed by UNSUBSCRIBE is reusable');
      assert.equal(client.closed, false);
      client.destroy();
    });
  }

  it('a persistent session counts the subscriptions it had before a reconnect', async () => {
    const clientId = uniqueId('persist');
    const mqttClient = await connectAsync(broker.url, { clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 60 }, reconnectPeriod: 0 });
    try {
      await mqttClient.subscribeAsync(['p/1', 'p/2', 'p/3'], { qos: 1 });
      await mqttClient.endAsync();
      const { client } = await rawConnect(broker.port, 5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      opened.push(client);
      client.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'p/4', qos: 1 }] });
      const suback = (await client.nextOf('suback')) as ISubackPacket;
      assert.deepEqual(suback.granted, [0x97], 'the restored three count');
      client.destroy();
    } finally {
      mqttClient.end(true);
    }
  });
});

describe('slow CONNECT (--connect-timeout-ms 1000)', () => {
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--connect-timeout-ms', '1000'] }, () => opened.forEach((client) => client.destroy()));

  it('a CONNECT sent a byte every 100 ms is not finished in time: closed at the connect timeout, without a CONNACK', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    opened.push(client);
    const bytes = (await import('mqtt-packet')).default.generate(connectPacket(5, { clientId: uniqueId('dribble-slow-client-with-a-long-id') }), { protocolVersion: 5 });
    const started = Date.now();
    let sent = 0;
    while (!client.closed && sent < bytes.length && Date.now() - started < 5_000) {
      client.send(bytes.subarray(sent, sent + 1));
      sent += 1;
      await sleep(100);
    }
    await client.waitClosed(3_000);
    const elapsed = Date.now() - started;
    assert.ok(sent < bytes.length, `the CONNECT was not complete when the broker closed (${sent} of ${bytes.length} bytes)`);
    assert.ok(elapsed >= 900 && elapsed < 2_500, `closed at the connect timeout (after ${elapsed} ms)`);
    assert.equal(client.packets.length, 0, 'no CONNACK');
  });

  it('a CONNECT sent a byte at a time but finished within the timeout is accepted', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 4 });
    opened.push(client);
    const bytes = (await import('mqtt-packet')).default.generate(connectPacket(4, { clientId: 'dribble-fast' }), { protocolVersion: 4 });
    for (const byte of bytes) {
      client.send([byte]);
      await sleep(5);
    }
    const connack = await client.nextOf('connack', 2_000);
    assert.equal(connackCode(connack), 0);
    client.destroy();
  });
});

describe('the abuse limits are live settings (PATCH /api/config)', () => {
  const TOKEN = 'abuse-live-token';
  const opened: RawMqttClient[] = [];
  const broker = brokerForSuite({ args: ['--admin-token', TOKEN] }, () => opened.forEach((client) => client.destroy()));

  async function patch(changes: Record<string, unknown>): Promise<void> {
    const base = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
    const response = await fetch(`${base}/api/config`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(changes),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200, await response.text());
  }

  it('turned on while a client is connected, the publish rate applies to its next PUBLISH; turned off, it no longer does', async () => {
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('live-pub') });
    opened.push(client);
    for (let index = 1; index <= 30; index += 1) client.sendPacket({ cmd: 'publish', topic: 'live/t', payload: Buffer.from('x'), qos: 1, messageId: index, retain: false, dup: false });
    await client.until(() => client.packets.filter((packet) => packet.cmd === 'puback').length === 30, 5_000, '30 PUBACKs with no limit');
    await patch({ 'max-publish-rate': 5 });
    for (let index = 31; index <= 45; index += 1) client.sendPacket({ cmd: 'publish', topic: 'live/t', payload: Buffer.from('x'), qos: 1, messageId: index, retain: false, dup: false });
    await client.waitClosed(5_000);
    const disconnect = client.packets.find((packet) => packet.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    assert.equal(hex(disconnect?.reasonCode), hex(0x96), 'the connected client is held to the new rate');

    await patch({ 'max-publish-rate': 0 });
    const { client: again } = await rawConnect(broker.port, 5, { clientId: uniqueId('live-pub-off') });
    opened.push(again);
    for (let index = 1; index <= 30; index += 1) again.sendPacket({ cmd: 'publish', topic: 'live/t', payload: Buffer.from('x'), qos: 1, messageId: index, retain: false, dup: false });
    await again.until(() => again.packets.filter((packet) => packet.cmd === 'puback').length === 30 || again.closed, 5_000, '30 PUBACKs once off again');
    assert.equal(again.closed, false);
    again.destroy();
  });

  it('max-connections-per-ip turned on applies to the next socket', async () => {
    await patch({ 'max-connections-per-ip': 1 });
    const { client } = await rawConnect(broker.port, 5, { clientId: uniqueId('live-ip') });
    opened.push(client);
    const refused = await connectCode(broker.port, 5, uniqueId('live-ip-2'));
    opened.push(refused.client);
    assert.equal(refused.code === 'closed' ? 'closed' : hex(refused.code), hex(0x97));
    await patch({ 'max-connections-per-ip': 0 });
    const admitted = await connectCode(broker.port, 5, uniqueId('live-ip-3'));
    opened.push(admitted.client);
    assert.equal(admitted.code, 0, 'admitted once the limit is off');
  });
});
