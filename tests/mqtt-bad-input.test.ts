// Bad input on the MQTT port, sent byte by byte over raw sockets.
//
// Goal: every kind of broken or hostile client is cut off the way the spec says (the reason
// code in 5.0, a bare close in 3.x, where the spec has a code at all), and never harms anyone
// else: a healthy mqtt.js client connected before the first case and kept connected
// throughout still publishes and receives after every case, and the broker process is alive.
// Method: one broker for the file (small packet, in-flight and connect-timeout limits); each
// case opens its own raw connection (tests/support/raw-mqtt.ts), sends the bad bytes, waits
// for the close, checks what came back, then round-trips a fresh message through the healthy
// client.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import type { IConnackPacket } from 'mqtt-packet';
import { cleanup, requireShardline, startBroker, stopBroker, usingMosquitto, type BrokerProcess } from './support/broker-process.js';
import {
  connackCode,
  connectPacket,
  hex,
  mqttString,
  rawConnect,
  rawConnectBytes,
  rawPacket,
  rawPublish,
  RawMqttClient,
  waitUntil,
  type MqttVersion,
} from './support/raw-mqtt.js';

const MAX_PACKET_SIZE = 4096;
const MAX_INFLIGHT = 4;
const CONNECT_TIMEOUT_MS = 1_000;
/** How long a broker may take to close a connection it must close. */
const CLOSE_WAIT_MS = 5_000;
const VERSIONS: MqttVersion[] = [4, 5];

let broker: BrokerProcess;
let healthy: MqttClient;
const healthyReceived = new Set<string>();
let healthChecks = 0;

before(async () => {
  broker = await startBroker({
    args: ['--max-packet-size', String(MAX_PACKET_SIZE), '--max-inflight', String(MAX_INFLIGHT), '--connect-timeout-ms', String(CONNECT_TIMEOUT_MS)],
  });
  healthy = await connectAsync(broker.url, { protocolVersion: 5, clientId: `healthy-${process.pid}`, reconnectPeriod: 0, connectTimeout: 10_000 });
  healthy.on('message', (_topic, payload) => healthyReceived.add(payload.toString()));
  await healthy.subscribeAsync('healthy/#', { qos: 1 });
});

after(async () => {
  await healthy?.endAsync().catch(() => undefined);
  try {
    if (broker !== undefined) await stopBroker(broker);
  } finally {
    await cleanup();
  }
});

/** The broker process lives and the healthy client, connected all along, still round-trips a message. */
async function assertHealthy(what: string): Promise<void> {
  const child = broker.broker.child;
  assert.ok(child.exitCode === null && child.signalCode === null, `${what}: the broker process exited (code ${child.exitCode}, signal ${child.signalCode})`);
  assert.ok(healthy.connected, `${what}: the healthy client was disconnected`);
  healthChecks += 1;
  const payload = `check-${healthChecks}`;
  await healthy.publishAsync('healthy/check', payload, { qos: 1 });
  await waitUntil(() => healthyReceived.has(payload), 5_000, `${what}: the healthy client receives its own message`);
}

/**
 * A bad-input case: the body, then the health check on the rest of the broker. `shardlineOnly`
 * cases depend on a limit flag Mosquitto has no equivalent for.
 */
function badCase(name: string, body: () => Promise<void>, options: { shardlineOnly?: boolean } = {}): void {
  it(name, async (t) => {
    if (options.shardlineOnly === true && !requireShardline(t)) return;
    await body();
    await assertHealthy(name);
  });
}

/**
 * The broker closed the connection; in 5.0 it sent exactly one DISCONNECT first, with `code`;
 * in 3.x it sent no DISCONNECT (the packet does not exist server-to-client there).
 */
async function expectDisconnect(client: RawMqttClient, version: MqttVersion, code: number | number[]): Promise<void> {
  await client.waitClosed(CLOSE_WAIT_MS);
  const disconnects = client.packets.filter((packet) => packet.cmd === 'disconnect');
  if (version === 5) {
    const allowed = Array.isArray(code) ? code : [code];
    const wanted = allowed.map(hex).join(' or ');
    assert.equal(disconnects.length, 1, `one DISCONNECT ${wanted} before the close; got packets ${client.describe()}, parse errors ${client.parseErrors.join('; ')}`);
    const got = (disconnects[0] as { reasonCode?: number }).reasonCode ?? 0;
    assert.ok(allowed.includes(got), `DISCONNECT reason code: expected ${wanted}, got ${hex(got)}`);
  } else {
    assert.deepEqual(disconnects, [], '3.x: the broker closes without a DISCONNECT');
  }
}

/** The broker refused the CONNECT: in 5.0 a CONNACK with `code5`, in 3.x a CONNACK with `code3` (or no CONNACK when `code3` is null), then the close. */
async function expectConnackRefusal(client: RawMqttClient, version: MqttVersion, code5: number, code3: number | null): Promise<void> {
  await client.waitClosed(CLOSE_WAIT_MS);
  const connacks = client.packets.filter((packet): packet is IConnackPacket => packet.cmd === 'connack');
  const expected = version === 5 ? code5 : code3;
  if (expected === null) {
    assert.deepEqual(connacks.map(connackCode).filter((code) => code === 0), [], 'no successful CONNACK');
    assert.ok(connacks.length <= 1, `at most one CONNACK, got ${client.describe()}`);
    return;
  }
  assert.equal(connacks.length, 1, `one CONNACK ${hex(expected)}; got packets ${client.describe()}, raw ${client.raw.toString('hex')}`);
  assert.equal(hex(connackCode(connacks[0]!)), hex(expected), 'CONNACK code');
  assert.equal(connacks[0]!.sessionPresent, false, 'a refused CONNACK has session present 0');
  assert.equal(client.packets.length, 1, `nothing after the refusing CONNACK, got ${client.describe()}`);
}

/** A PUBLISH or SUBSCRIBE body's 5.0 properties length (empty), absent in 3.x. */
function noProperties(version: MqttVersion): number[] {
  return version === 5 ? [0] : [];
}

for (const version of VERSIONS) {
  const label = version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1';

  describe(`${label}: malformed packets after CONNECT`, () => {
    const malformed: { name: string; bytes: () => Buffer; codes?: number[] }[] = [
      { name: 'SUBSCRIBE with fixed-header flags 0 (must be 0010)', bytes: () => rawPacket(0x80, [0, 1, ...noProperties(version), ...mqttString('bad/flags'), 0]) },
      { name: 'PINGREQ with fixed-header flags 0001', bytes: () => Buffer.from([0xc1, 0x00]) },
      // The spec calls type 0 forbidden without naming a code: malformed or protocol error.
      { name: 'reserved packet type 0', bytes: () => Buffer.from([0x00, 0x00]), codes: [0x81, 0x82] },
      { name: 'PUBLISH with both QoS bits set (QoS 3)', bytes: () => rawPacket(0x36, [...mqttString('a/b'), 0, 1, ...noProperties(version), 0x78]) },
      // Text: "g" (0x67) is PUBREL with flags 0111 (must be 0010), "a" a length of 97 the
      // text covers, so a broker that checks the length first reaches the same verdict.
      { name: 'garbage bytes (text)', bytes: () => Buffer.from('garbage '.repeat(16)) },
      { name: 'remaining length of 5 continuation bytes', bytes: () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00]) },
      {
        // Remaining length 3 cuts the topic (length 3) after one byte; the rest, "/b" and
        // the payload, would start a packet of type 2 (CONNACK) with flags 1111.
        name: 'remaining length shorter than the packet (the next header is garbage)',
        bytes: () => Buffer.from([0x30, 0x03, 0x00, 0x03, 0x61, 0x2f, 0x62, ...Buffer.from('hello')]),
      },
    ];
    // Packet type 15 is AUTH in 5.0 (a protocol error without an authentication method, not a malformed packet).
    if (version === 4) malformed.push({ name: 'reserved packet type 15', bytes: () => Buffer.from([0xf0, 0x00]) });
    for (const { name, bytes, codes } of malformed) {
      badCase(`${name}: ${version === 5 ? `DISCONNECT ${(codes ?? [0x81]).map(hex).join(' or ')} malformed packet` : 'closed'}`, async () => {
        const { client } = await rawConnect(broker.port, version);
        client.send(bytes());
        await expectDisconnect(client, version, codes ?? 0x81);
      });
    }

    badCase('declared remaining length longer than the bytes sent, then the client half-closes: closed', async () => {
      const { client } = await rawConnect(broker.port, version);
      client.send([0x30, 100, ...mqttString('bad/length'), ...noProperties(version), 0x78]);
      client.socket.end();
      await client.waitClosed(CLOSE_WAIT_MS);
    });
  });

  describe(`${label}: protocol violations`, () => {
    badCase(`a second CONNECT: ${version === 5 ? 'DISCONNECT 0x82 protocol error' : 'closed'}`, async () => {
      const { client } = await rawConnect(broker.port, version);
      client.sendPacket(connectPacket(version));
      await expectDisconnect(client, version, 0x82);
    });

    for (const topic of ['wild/+', 'wild/#', '+', '#']) {
      badCase(`PUBLISH to topic name ${JSON.stringify(topic)}: ${version === 5 ? 'DISCONNECT 0x90 topic name invalid' : 'closed'}`, async () => {
        const { client } = await rawConnect(broker.port, version);
        client.send(rawPublish(version, topic, { qos: 1, messageId: 7 }));
        await expectDisconnect(client, version, 0x90);
        assert.ok(!client.packets.some((packet) => packet.cmd === 'puback'), 'the PUBLISH was not acknowledged');
      });
    }

    const badTopics: { name: string; topic: number[] }[] = [
      { name: 'invalid UTF-8 (C3 28)', topic: [0x62, 0x61, 0x64, 0x2f, 0xc3, 0x28] },
      { name: 'U+0000', topic: [0x62, 0x61, 0x64, 0x2f, 0x00, 0x61] },
      { name: 'a UTF-16 surrogate encoded in UTF-8 (ED A0 80)', topic: [0x62, 0x2f, 0xed, 0xa0, 0x80] },
    ];
    for (const { name, topic } of badTopics) {
      badCase(`PUBLISH topic with ${name}: ${version === 5 ? 'DISCONNECT 0x81 malformed packet' : 'closed'}`, async () => {
        const { client } = await rawConnect(broker.port, version);
        client.send(rawPublish(version, topic, { qos: 1, messageId: 8 }));
        await expectDisconnect(client, version, 0x81);
      });
      badCase(`SUBSCRIBE filter with ${name}: ${version === 5 ? 'DISCONNECT 0x81 malformed packet' : 'closed'}`, async () => {
        const { client } = await rawConnect(broker.port, version);
        client.send(rawPacket(0x82, [0, 9, ...noProperties(version), ...mqttString(topic), 0]));
        await expectDisconnect(client, version, 0x81);
      });
    }

    badCase(`a packet bigger than --max-packet-size ${MAX_PACKET_SIZE}: ${version === 5 ? 'DISCONNECT 0x95 packet too large' : 'closed'}`, async () => {
      const { client, connack } = await rawConnect(broker.port, version);
      if (version === 5) assert.equal(connack.properties?.maximumPacketSize, MAX_PACKET_SIZE, 'CONNACK Maximum Packet Size');
      client.send(rawPublish(version, 'big/one', { qos: 1, messageId: 3, payload: Buffer.alloc(MAX_PACKET_SIZE + 100, 0x61) }));
      await expectDisconnect(client, version, 0x95);
      assert.ok(!client.packets.some((packet) => packet.cmd === 'puback'), 'the oversized PUBLISH was not acknowledged');
    });

    badCase('a packet of exactly --max-packet-size is accepted (control)', async () => {
      const { client } = await rawConnect(broker.port, version);
      const overhead = 2 + 7 + 2 + (version === 5 ? 1 : 0) + 3; // header (2-byte length), topic, id, properties
      client.send(rawPublish(version, 'big/one', { qos: 1, messageId: 3, payload: Buffer.alloc(MAX_PACKET_SIZE - overhead, 0x61) }));
      const ack = await client.nextOf('puback');
      assert.equal(ack.messageId, 3);
      assert.equal(client.closed, false);
      client.destroy();
    });

    badCase(`PUBREL for a packet id the broker never saw: PUBCOMP${version === 5 ? ' 0x92 packet identifier not found' : ''}, connection stays open`, async () => {
      const { client } = await rawConnect(broker.port, version);
      client.send([0x62, 0x02, 0x00, 0x2a]);
      const pubcomp = await client.nextOf('pubcomp');
      assert.equal(pubcomp.messageId, 0x2a);
      if (version === 5) assert.equal(hex(pubcomp.reasonCode ?? 0), hex(0x92), 'PUBCOMP reason code');
      client.sendPacket({ cmd: 'pingreq' });
      await client.nextOf('pingresp');
      assert.equal(client.closed, false);
      client.destroy();
    });
  });
}

describe('MQTT 5.0: topic aliases and receive maximum', () => {
  for (const which of ['0', 'Topic Alias Maximum + 1'] as const) {
    badCase(`topic alias ${which}: DISCONNECT 0x94 topic alias invalid`, async () => {
      const { client, connack } = await rawConnect(broker.port, 5);
      // No Topic Alias Maximum in CONNACK means 0: any alias is above it.
      const alias = which === '0' ? 0 : (connack.properties?.topicAliasMaximum ?? 0) + 1;
      client.send(rawPublish(5, 'alias/topic', { qos: 1, messageId: 4, properties: [0x23, alias >> 8, alias & 0xff] }));
      await expectDisconnect(client, 5, 0x94);
    });
  }

  badCase('more QoS 2 PUBLISH in flight than Receive Maximum (no PUBREL ever): DISCONNECT 0x93', async () => {
    const { client, connack } = await rawConnect(broker.port, 5);
    const receiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
    if (!usingMosquitto()) assert.equal(receiveMaximum, MAX_INFLIGHT, 'CONNACK Receive Maximum = --max-inflight');
    assert.ok(receiveMaximum <= 64, `a Receive Maximum this test can exceed, got ${receiveMaximum}`);
    // QoS 2 stays in flight until PUBREL, so acknowledgement timing cannot hide the excess.
    const publishes = Array.from({ length: receiveMaximum + 1 }, (_, index) => rawPublish(5, 'inflight/q2', { qos: 2, messageId: index + 1 }));
    client.send(Buffer.concat(publishes));
    await expectDisconnect(client, 5, 0x93);
    const pubrecs = client.packets.filter((packet) => packet.cmd === 'pubrec').length;
    assert.ok(pubrecs <= receiveMaximum, `at most Receive Maximum (${receiveMaximum}) PUBREC, got ${pubrecs}`);
  });

  it('more QoS 1 PUBLISH than Receive Maximum in one write (acks wait for fsync): DISCONNECT 0x93', async (t) => {
    // Mosquitto acknowledges QoS 1 before reading the next packet, so it never sees the excess.
    if (!requireShardline(t)) return;
    const { client, connack } = await rawConnect(broker.port, 5);
    const receiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
    assert.equal(receiveMaximum, MAX_INFLIGHT, 'CONNACK Receive Maximum = --max-inflight');
    const publishes = Array.from({ length: receiveMaximum * 2 }, (_, index) => rawPublish(5, 'inflight/q1', { qos: 1, messageId: index + 1 }));
    client.send(Buffer.concat(publishes));
    await expectDisconnect(client, 5, 0x93);
    await assertHealthy('QoS 1 over Receive Maximum');
  });
});

describe('CONNECT', () => {
  const notConnect: { name: string; bytes: Buffer }[] = [
    { name: 'PINGREQ', bytes: Buffer.from([0xc0, 0x00]) },
    { name: 'PUBLISH', bytes: rawPublish(4, 'not/connected', { qos: 1 }) },
    { name: 'SUBSCRIBE', bytes: rawPacket(0x82, [0, 1, ...mqttString('#'), 0]) },
    { name: 'an HTTP request', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n') },
  ];
  for (const { name, bytes } of notConnect) {
    badCase(`first packet ${name} instead of CONNECT: closed without any reply`, async () => {
      const client = await RawMqttClient.open(broker.port);
      client.send(bytes);
      await client.waitClosed(CLOSE_WAIT_MS);
      assert.equal(client.bytesReceived, 0, `no reply, got ${client.raw.toString('hex')}`);
    });
  }

  for (const level of [0, 2, 6, 255]) {
    badCase(`protocol level ${level}: CONNACK 0x01 (3.1.1 encoding) or 0x84 (5.0 encoding), then closed`, async () => {
      const client = await RawMqttClient.open(broker.port, { protocolVersion: 4 });
      client.send(rawConnectBytes({ level, clientId: 'bad-level' }));
      await client.waitClosed(CLOSE_WAIT_MS);
      // The broker cannot know which version a client of an unknown level speaks; either
      // encoding is allowed, but the code must be the one for that encoding.
      const raw = client.raw;
      assert.ok(raw.length >= 4 && raw[0] === 0x20, `a CONNACK, got ${raw.toString('hex') || 'nothing'}`);
      const remaining = raw[1]!;
      assert.equal(raw[2], 0x00, 'session present 0');
      if (remaining === 2) assert.equal(hex(raw[3]), hex(0x01), '3.1.1-encoded CONNACK code');
      else assert.equal(hex(raw[3]), hex(0x84), '5.0-encoded CONNACK code');
      assert.equal(raw.length, 2 + remaining, `nothing after the CONNACK, got ${raw.toString('hex')}`);
    });
  }

  badCase('MQTT 3.1 client id of 23 characters is accepted (control)', async () => {
    const { client } = await rawConnect(broker.port, 3, { clientId: 'c'.repeat(23) });
    client.destroy();
  });

  badCase('MQTT 3.1 client id of 24 characters: CONNACK 0x02 identifier rejected, closed', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 3 });
    client.sendPacket(connectPacket(3, { clientId: 'c'.repeat(24) }));
    await expectConnackRefusal(client, 4, 0x02, 0x02);
  });

  badCase('MQTT 3.1.1 empty client id with clean session 1 is accepted (control)', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 4 });
    client.send(rawConnectBytes({ level: 4, flags: 0x02, clientId: '' }));
    const connack = await client.nextOf('connack');
    assert.equal(hex(connackCode(connack)), hex(0));
    client.destroy();
  });

  badCase('MQTT 3.1.1 empty client id with clean session 0: CONNACK 0x02 identifier rejected, closed', async () => {
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 4 });
    client.send(rawConnectBytes({ level: 4, flags: 0x00, clientId: '' }));
    await expectConnackRefusal(client, 4, 0x02, 0x02);
  });

  for (const version of VERSIONS) {
    for (const { name, id } of [
      { name: 'invalid UTF-8 (C3 28)', id: [0x63, 0xc3, 0x28] },
      { name: 'U+0000', id: [0x63, 0x00, 0x63] },
    ]) {
      badCase(`MQTT ${version === 5 ? '5.0' : '3.1.1'} client id with ${name}: ${version === 5 ? 'CONNACK 0x81 malformed packet' : 'closed, not accepted'}`, async () => {
        const client = await RawMqttClient.open(broker.port, { protocolVersion: version });
        client.send(rawConnectBytes({ level: version, clientId: id }));
        await expectConnackRefusal(client, version, 0x81, null);
      });
    }

    badCase(`MQTT ${version === 5 ? '5.0' : '3.1.1'} CONNECT with reserved flag bit 0 set: ${version === 5 ? 'CONNACK 0x81 malformed packet' : 'closed, not accepted'}`, async () => {
      const client = await RawMqttClient.open(broker.port, { protocolVersion: version });
      client.send(rawConnectBytes({ level: version, flags: 0x03, clientId: 'reserved-bit' }));
      await expectConnackRefusal(client, version, 0x81, null);
    });
  }

  for (const { name, bytes } of [
    { name: 'half a CONNECT', bytes: rawConnectBytes({ level: 4, clientId: 'never-finished' }).subarray(0, 9) },
    { name: 'nothing at all', bytes: Buffer.alloc(0) },
  ]) {
    badCase(`${name}: closed after --connect-timeout-ms ${CONNECT_TIMEOUT_MS}`, async () => {
      const client = await RawMqttClient.open(broker.port);
      const opened = Date.now();
      if (bytes.length > 0) client.send(bytes);
      await client.waitClosed(CONNECT_TIMEOUT_MS + CLOSE_WAIT_MS);
      const elapsed = Date.now() - opened;
      assert.ok(elapsed >= CONNECT_TIMEOUT_MS * 0.8, `not closed before the timeout (closed after ${elapsed} ms)`);
      assert.equal(client.bytesReceived, 0, `no reply, got ${client.raw.toString('hex')}`);
    }, { shardlineOnly: true });
  }
});
