// Large packets and long topics with the default limits, and the node-wide inbound budget.
//
// Goal: what the spec and other brokers accept passes with the defaults: a 16 MiB QoS 1 payload
// (which the old 1 MiB default refused, a dropped connection for 3.1.1 clients) reaches a QoS 1
// subscriber intact through every layer, in one process and in split topology (journal record
// limit, gRPC message size); a 65,535-byte topic name and a 60,000-byte filter work end to end.
// And the memory those large packets may take is bounded node-wide: 40 clients that each send
// a 12 MiB PUBLISH at once, against a 32 MiB --max-inbound-bytes, all get their PUBACK (nobody
// deadlocks), the budget never goes over its limit, backpressure was used (packets waited), and
// the broker's peak RSS grows by less than the budget plus copies, far below the 480 MiB the
// packets add up to.
// Method: real `shardline start` processes (single and split), mqtt.js for the end-to-end
// cases, raw sockets for the 40 publishers (one shared payload Buffer written to each socket, so
// the test process holds one copy). The broker's peak RSS is VmHWM from /proc/PID/status, reset
// through /proc/PID/clear_refs just before the load, so the peak is measured, not sampled. The
// budget's own figures come from /metrics. Every wait is bounded.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { once } from 'node:events';
import mqttPacket, { type Packet } from 'mqtt-packet';
import WebSocket from 'ws';
import { brokerForSuite, cleanup, waitForLogField, type Topology } from './support/broker-process.js';
import { closeAllClients, connectClient, subscriber, type ProtocolVersion } from './support/mqtt-client.js';
import { connectPacket, RawMqttClient, varint, type MqttVersion } from './support/raw-mqtt.js';

after(cleanup);

const MiB = 1024 * 1024;
const TOKEN = 'large-packets-test-token';

function versionName(version: ProtocolVersion): string {
  return version === 5 ? '5.0' : '3.1.1';
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match !== null, `${field} of pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Prometheus text: the value of an unlabelled series (node label aside). */
function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text);
  assert.ok(match !== null, `${name} in /metrics`);
  return Number(match[1]);
}

/** The fixed header, topic and packet id of a QoS 1 PUBLISH; the payload is written after it. */
function publishHead(version: MqttVersion, topic: string, messageId: number, payloadBytes: number): Buffer {
  const topicBytes = Buffer.from(topic);
  const variable = Buffer.concat([Buffer.from([topicBytes.length >> 8, topicBytes.length & 0xff]), topicBytes, Buffer.from([messageId >> 8, messageId & 0xff]), Buffer.from(version === 5 ? [0] : [])]);
  return Buffer.concat([Buffer.from([0x32, ...varint(variable.length + payloadBytes)]), variable]);
}

for (const topology of ['single', 'split'] as Topology[]) {
  describe(`default limits, ${topology} topology: a 16 MiB payload passes end to end`, () => {
    const broker = brokerForSuite({ topology }, closeAllClients);

    for (const version of [4, 5] as ProtocolVersion[]) {
      it(`MQTT ${versionName(version)}: a 16 MiB QoS 1 publish is acknowledged and a QoS 1 subscriber receives it intact`, { timeout: 120_000 }, async () => {
        const topic = `large/${topology}/${version}`;
        const payload = randomBytes(16 * MiB);
        const receiver = await subscriber(broker.url, topic, { version, qos: 1 });
        const publisher = await connectClient(broker.url, { version });
        const result = await publisher.publish(topic, payload, { qos: 1 });
        assert.equal(result.ack?.cmd, 'puback', 'PUBACK for the 16 MiB publish');
        if (version === 5) assert.equal(result.ack?.reasonCode ?? 0, 0, `PUBACK reason code: ${JSON.stringify(result.ack?.properties)}`);
        const [message] = await receiver.waitForMessages(1, { topic, timeoutMs: 60_000 });
        assert.equal(message?.payload.length, payload.length, 'payload length');
        assert.equal(sha256(message.payload), sha256(payload), 'payload bytes');
        assert.equal(message.packet.qos, 1);
        assert.deepEqual([publisher.isClosed, receiver.isClosed], [false, false], 'both connections stay open');
      });
    }
  });
}

describe('default limits: topic names and filters as long as the protocol allows', () => {
  const broker = brokerForSuite({}, closeAllClients);

  for (const version of [4, 5] as ProtocolVersion[]) {
    it(`MQTT ${versionName(version)}: a 65,535-byte topic name: subscribed to exactly, published to, delivered`, async () => {
      const prefix = `long/${version}/`;
      const topic = prefix + 'n'.repeat(65_535 - prefix.length);
      assert.equal(Buffer.byteLength(topic), 65_535);
      const receiver = await subscriber(broker.url, topic, { version, qos: 1 });
      const publisher = await connectClient(broker.url, { version });
      const result = await publisher.publish(topic, 'to the longest topic', { qos: 1 });
      assert.equal(result.ack?.cmd, 'puback');
      if (version === 5) assert.equal(result.ack?.reasonCode ?? 0, 0);
      const [message] = await receiver.waitForMessages(1, { topic });
      assert.equal(message?.topic, topic);
      assert.equal(message.payload.toString(), 'to the longest topic');
    });

    it(`MQTT ${versionName(version)}: a 60,000-byte filter with a wildcard is granted and matches`, async () => {
      const head = `wide/${version}/`;
      const filter = head + 'f'.repeat(60_000 - head.length - 2) + '/#';
      assert.equal(Buffer.byteLength(filter), 60_000);
      const receiver = await subscriber(broker.url, filter, { version, qos: 1 });
      const topic = `${filter.slice(0, -2)}/leaf/of/it`;
      const publisher = await connectClient(broker.url, { version });
      await publisher.publish(topic, 'matched', { qos: 1 });
      const [message] = await receiver.waitForMessages(1, { topic });
      assert.equal(message?.payload.toString(), 'matched');
    });
  }
});

describe('--max-inbound-bytes 32 MiB: 40 clients each send a 12 MiB PUBLISH at once', () => {
  const LIMIT = 32 * MiB;
  const CLIENTS = 40;
  const PAYLOAD_BYTES = 12 * MiB;
  /**
   * What the broker may hold beyond the budget: the journal's encoded copy of the batches being
   * written, socket reads of the waiting connections (64 KiB each), garbage the GC has not
   * taken back yet, and allocator slack. Without the budget the packets alone are 480 MiB.
   */
  const OVERHEAD = 224 * MiB;
  const broker = brokerForSuite({ args: ['--max-inbound-bytes', String(LIMIT), '--admin-token', TOKEN] });
  const sockets: RawMqttClient[] = [];
  after(() => {
    for (const client of sockets) client.destroy();
  });

  it('every PUBLISH is acknowledged, the budget is never exceeded and was waited for, and the peak RSS stays within the budget plus overhead', { timeout: 300_000 }, async () => {
    const pid = broker.broker.child.pid as number;
    const admin = String((await waitForLogField(broker.broker, 'admin')).admin);
    const metrics = async (): Promise<string> => {
      const reply = await fetch(`http://${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(reply.status, 200);
      return reply.text();
    };
    for (let index = 0; index < CLIENTS; index += 1) {
      const version: MqttVersion = index % 2 === 0 ? 5 : 4;
      const client = await RawMqttClient.open(broker.port, { protocolVersion: version });
      sockets.push(client);
      client.sendPacket(connectPacket(version, { clientId: `inbound-${index}` }));
      await client.nextOf('connack');
    }
    const payload = randomBytes(PAYLOAD_BYTES);
    // The peak from here on: start-up and the connects above are not the load under test.
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const rssBefore = procStatusBytes(pid, 'VmRSS');
    sockets.forEach((client, index) => {
      client.send(publishHead(client.protocolVersion, `inbound/${index}`, 1, payload.length));
      client.send(payload);
    });
    await Promise.all(
      sockets.map(async (client, index) => {
        const ack = await client.nextOf('puback', 240_000);
        assert.equal(ack.messageId, 1, `client ${index}: PUBACK for its PUBLISH`);
        // 0x10: stored, no matching subscribers (nobody subscribes here: fan-out is not under test).
        if (client.protocolVersion === 5) assert.equal(ack.reasonCode ?? 0, 0x10, `client ${index}: PUBACK reason code`);
      }),
    );
    const peak = procStatusBytes(pid, 'VmHWM');
    const text = await metrics();
    const figures = {
      rssBeforeMiB: Math.round(rssBefore / MiB),
      peakRssMiB: Math.round(peak / MiB),
      growthMiB: Math.round((peak - rssBefore) / MiB),
      budgetPeakMiB: metricValue(text, 'shardline_mqtt_inbound_bytes_peak') / MiB,
      waited: metricValue(text, 'shardline_mqtt_inbound_waits_total'),
    };
    // Reported so a run's figures can be read off the test output.
    console.log(`inbound budget figures: ${JSON.stringify(figures)}`);
    assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes_limit'), LIMIT);
    assert.ok(metricValue(text, 'shardline_mqtt_inbound_bytes_peak') <= LIMIT, `the budget was never exceeded: ${JSON.stringify(figures)}`);
    assert.ok(metricValue(text, 'shardline_mqtt_inbound_bytes_peak') >= PAYLOAD_BYTES, 'the large packets were counted');
    assert.ok(figures.waited > 0, `some packets waited for budget (backpressure was used): ${JSON.stringify(figures)}`);
    assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes'), 0, 'everything reserved was given back');
    assert.equal(metricValue(text, 'shardline_mqtt_inbound_waiting'), 0, 'nobody is left waiting');
    assert.ok(peak - rssBefore < LIMIT + OVERHEAD, `peak RSS grew by ${figures.growthMiB} MiB, over ${(LIMIT + OVERHEAD) / MiB} MiB: ${JSON.stringify(figures)}`);
    // Still a working broker: a small publish right after is acknowledged.
    const probe = sockets[1] as RawMqttClient;
    probe.send(mqttPacket.generate({ cmd: 'publish', topic: 'inbound/after', payload: Buffer.from('small'), qos: 1, messageId: 2, retain: false, dup: false }, { protocolVersion: 4 }));
    assert.equal((await probe.nextOf('puback')).messageId, 2);
  });

  it('max-inbound-bytes is a live setting; a packet larger than the whole budget still passes, alone', { timeout: 120_000 }, async () => {
    const admin = String((await waitForLogField(broker.broker, 'admin')).admin);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const patched = await fetch(`http://${admin}/api/config`, { method: 'PATCH', headers, body: JSON.stringify({ 'max-inbound-bytes': 65_536 }) });
    assert.equal(patched.status, 200, await patched.text());
    const text = await (await fetch(`http://${admin}/metrics`, { headers })).text();
    assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes_limit'), 65_536);
    const client = sockets[2] as RawMqttClient;
    const payload = randomBytes(2 * MiB);
    client.send(publishHead(client.protocolVersion, 'inbound/over-budget', 3, payload.length));
    client.send(payload);
    const ack = await client.nextOf('puback', 60_000);
    assert.equal(ack.messageId, 3, 'a 2 MiB packet over a 64 KiB budget is granted when nothing else is reserved');
  });
});

describe('--max-inbound-bytes over WebSocket: ws assembles whole messages, so a large one reserves the largest message size', () => {
  const LIMIT = 32 * MiB;
  const CLIENTS = 10;
  const PAYLOAD_BYTES = 12 * MiB;
  // 13 MiB packets: the largest WebSocket message is 13 MiB + 64 KiB, so two fit in the budget.
  const MAX_PACKET = 13 * MiB;
  const broker = brokerForSuite({ args: ['--ws-port', '0', '--max-packet-size', String(MAX_PACKET), '--max-inbound-bytes', String(LIMIT), '--admin-token', TOKEN] }, closeAllClients);

  it(`${CLIENTS} WebSocket clients each send a 12 MiB PUBLISH in one message at once: each message reserves the largest message size, two at a time, all acknowledged`, { timeout: 300_000 }, async () => {
    const line = await waitForLogField(broker.broker, 'mqttPort');
    const url = `ws://${String(line.ws)}/mqtt`;
    const payload = randomBytes(PAYLOAD_BYTES);
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, index) => {
        const socket = new WebSocket(url, ['mqtt']);
        socket.on('error', () => undefined);
        const packets: Packet[] = [];
        const parser = mqttPacket.parser({ protocolVersion: 5 });
        parser.on('packet', (packet: Packet) => packets.push(packet));
        socket.on('message', (data: Buffer) => parser.parse(data));
        await once(socket, 'open');
        socket.send(mqttPacket.generate(connectPacket(5, { clientId: `ws-message-${index}` }), { protocolVersion: 5 }));
        return { socket, packets };
      }),
    );
    try {
      // One binary message per PUBLISH (as browser clients send them): ws assembles it whole.
      for (const [index, client] of clients.entries()) {
        client.socket.send(Buffer.concat([publishHead(5, `ws-message/${index}`, 1, payload.length), payload]));
      }
      const deadline = Date.now() + 240_000;
      while (clients.some((client) => !client.packets.some((packet) => packet.cmd === 'puback')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      clients.forEach((client, index) => assert.ok(client.packets.some((packet) => packet.cmd === 'puback'), `client ${index}: PUBACK; got ${client.packets.map((packet) => packet.cmd).join(', ')}`));
      const reply = await fetch(`http://${String(line.admin)}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await reply.text();
      // FIFO grants of MAX_PACKET + 64 KiB each: two fit in 32 MiB, a third does not.
      assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes_peak'), 2 * (MAX_PACKET + 64 * 1024), 'peak: two largest-message reservations');
      assert.ok(metricValue(text, 'shardline_mqtt_inbound_waits_total') >= CLIENTS - 2, 'the others waited');
      assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes'), 0, 'everything reserved was given back');
    } finally {
      for (const client of clients) client.socket.terminate();
    }
  });

  it(`${CLIENTS} mqtt.js WebSocket clients each publish a 12 MiB QoS 1 message at once: all acknowledged, the budget never exceeded and waited for`, { timeout: 300_000 }, async () => {
    const line = await waitForLogField(broker.broker, 'mqttPort');
    const url = `ws://${String(line.ws)}/mqtt`;
    const payload = randomBytes(PAYLOAD_BYTES);
    const publishers = await Promise.all(Array.from({ length: CLIENTS }, (_, index) => connectClient(url, { version: index % 2 === 0 ? 5 : 4 })));
    const results = await Promise.all(publishers.map((client, index) => client.publish(`ws-inbound/${index}`, payload, { qos: 1 })));
    results.forEach((result, index) => assert.equal(result.ack?.cmd, 'puback', `client ${index}: PUBACK`));
    const reply = await fetch(`http://${String(line.admin)}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await reply.text();
    const figures = { budgetPeakMiB: metricValue(text, 'shardline_mqtt_inbound_bytes_peak') / MiB, waited: metricValue(text, 'shardline_mqtt_inbound_waits_total') };
    assert.ok(metricValue(text, 'shardline_mqtt_inbound_bytes_peak') <= LIMIT, `never over the budget: ${JSON.stringify(figures)}`);
    assert.ok(metricValue(text, 'shardline_mqtt_inbound_bytes_peak') >= MAX_PACKET, `a message reserved the largest message size: ${JSON.stringify(figures)}`);
    assert.ok(figures.waited > 0, `some messages waited for budget: ${JSON.stringify(figures)}`);
    assert.equal(metricValue(text, 'shardline_mqtt_inbound_bytes'), 0, 'everything reserved was given back');
    assert.deepEqual(
      publishers.map((client) => client.isClosed),
      publishers.map(() => false),
      'every connection stays open',
    );
  });
});
