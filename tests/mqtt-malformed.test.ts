// Strict framing rules over raw sockets against a real broker: reserved fixed-header flags in
// every packet type, packet identifier 0, bytes after the last field, SUBSCRIBE options and
// empty SUBSCRIBE / UNSUBSCRIBE, CONNECT flags, the first packet judged on its first byte (TCP
// and WebSocket), a second CONNECT, and AUTH outside an enhanced-authentication exchange.
//
// Each bad packet must end the connection with the spec's verdict (5.0: DISCONNECT 0x81 or
// 0x82, or CONNACK with it before the CONNECT is accepted; 3.1 and 3.1.1: a bare close) and must not be
// answered as if it were valid (no PUBACK, SUBACK, ... before the close). Controls next to the
// cases show the same packet with the right bits is served.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { cleanup, requireShardline, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { hex, mqttString, rawConnect, rawPacket, rawPublish, RawMqttClient, type MqttVersion } from './support/raw-mqtt.js';
import { CLOSE_WAIT_MS, connectBytes, expectConnectAccepted, expectConnectRefused, expectRefusedAfterConnect, label, pingBarrier, props, propsFor } from './support/strict-wire.js';

/** Long, so that a close "at once" cannot be the connect timeout. */
const CONNECT_TIMEOUT_MS = 30_000;
const VERSIONS: MqttVersion[] = [3, 4, 5];
const M = 0x81;
const P = 0x82;

let broker: BrokerProcess;
let wsUrl: string;

before(async () => {
  broker = await startBroker({ args: ['--connect-timeout-ms', String(CONNECT_TIMEOUT_MS), '--ws-port', '0'] });
  const line = await waitForLogField(broker.broker, 'mqttPort');
  wsUrl = `ws://${String(line.ws)}/mqtt`;
});

after(async () => {
  try {
    if (broker !== undefined) await stopBroker(broker);
  } finally {
    await cleanup();
  }
});

interface BadPacket {
  name: string;
  bytes: Buffer;
  code5: number;
}

function refusedAfterConnect(version: MqttVersion, cases: BadPacket[]): void {
  for (const { name, bytes, code5 } of cases) {
    it(`${name}: ${version === 5 ? `DISCONNECT ${hex(code5)}` : 'closed'}`, async () => {
      await expectRefusedAfterConnect(broker.port, version, bytes, code5);
    });
  }
}

for (const version of VERSIONS) {
  const v5 = version === 5;
  const none = propsFor(version);

  describe(`${label(version)}: reserved fixed-header flags (MQTT-2.1.3-1)`, { concurrency: true }, () => {
    const cases: BadPacket[] = [
      { name: 'PUBLISH with QoS 3', bytes: rawPacket(0x36, [...mqttString('a/b'), 0, 1, ...none, 0x78]), code5: M },
      { name: 'PUBLISH with QoS 3 and properties', bytes: rawPacket(0x37, [...mqttString('a/b'), 0, 1, ...propsFor(version, [0x01, 0x01]), 0x78]), code5: M },
      { name: 'PUBACK with flags 0001', bytes: Buffer.from([0x41, 2, 0, 1]), code5: M },
      { name: 'PUBACK with flags 1000', bytes: Buffer.from([0x48, 2, 0, 1]), code5: M },
      { name: 'PUBREC with flags 0010', bytes: Buffer.from([0x52, 2, 0, 1]), code5: M },
      { name: 'PUBREL with flags 0000', bytes: Buffer.from([0x60, 2, 0, 1]), code5: M },
      { name: 'PUBREL with flags 0011', bytes: Buffer.from([0x63, 2, 0, 1]), code5: M },
      { name: 'PUBCOMP with flags 1111', bytes: Buffer.from([0x7f, 2, 0, 1]), code5: M },
      { name: 'SUBSCRIBE with flags 0000', bytes: rawPacket(0x80, [0, 1, ...none, ...mqttString('a/b'), 0]), code5: M },
      { name: 'SUBSCRIBE with flags 0011', bytes: rawPacket(0x83, [0, 1, ...none, ...mqttString('a/b'), 0]), code5: M },
      { name: 'UNSUBSCRIBE with flags 0000', bytes: rawPacket(0xa0, [0, 1, ...none, ...mqttString('a/b')]), code5: M },
      { name: 'UNSUBSCRIBE with flags 1010', bytes: rawPacket(0xaa, [0, 1, ...none, ...mqttString('a/b')]), code5: M },
      { name: 'PINGREQ with flags 0100', bytes: Buffer.from([0xc4, 0]), code5: M },
      { name: 'DISCONNECT with flags 0010', bytes: Buffer.from([0xe2, 0]), code5: M },
      { name: 'a second CONNECT with flags 0010', bytes: Buffer.from([0x12, ...connectBytes(version).subarray(1)]), code5: M },
      // 3.1.1 has no AUTH: type 15 is reserved there whatever its flags.
      { name: 'AUTH with flags 0001', bytes: Buffer.from([0xf1, 0]), code5: M },
    ];
    refusedAfterConnect(version, cases);

    it('controls: PUBREL 0010, SUBSCRIBE 0010 and UNSUBSCRIBE 0010 are answered', async () => {
      const { client } = await rawConnect(broker.port, version);
      client.send([0x62, 2, 0, 5]);
      assert.equal((await client.nextOf('pubcomp')).messageId, 5);
      client.send(rawPacket(0x82, [0, 6, ...none, ...mqttString('strict/flags'), 1]));
      assert.equal((await client.nextOf('suback')).messageId, 6);
      client.send(rawPacket(0xa2, [0, 7, ...none, ...mqttString('strict/flags')]));
      assert.equal((await client.nextOf('unsuback')).messageId, 7);
      await pingBarrier(client);
      client.destroy();
    });
  });

  describe(`${label(version)}: packet identifier 0 (MQTT-2.2.1-3)`, { concurrency: true }, () => {
    const cases: BadPacket[] = [
      { name: 'SUBSCRIBE with packet id 0', bytes: rawPacket(0x82, [0, 0, ...none, ...mqttString('a/b'), 0]), code5: P },
      { name: 'UNSUBSCRIBE with packet id 0', bytes: rawPacket(0xa2, [0, 0, ...none, ...mqttString('a/b')]), code5: P },
      { name: 'QoS 1 PUBLISH with packet id 0', bytes: rawPublish(version, 'a/b', { qos: 1, messageId: 0 }), code5: P },
      { name: 'QoS 2 PUBLISH with packet id 0', bytes: rawPublish(version, 'a/b', { qos: 2, messageId: 0 }), code5: P },
      { name: 'PUBACK with packet id 0', bytes: Buffer.from([0x40, 2, 0, 0]), code5: P },
      { name: 'PUBREC with packet id 0', bytes: Buffer.from([0x50, 2, 0, 0]), code5: P },
      { name: 'PUBREL with packet id 0', bytes: Buffer.from([0x62, 2, 0, 0]), code5: P },
      { name: 'PUBCOMP with packet id 0', bytes: Buffer.from([0x70, 2, 0, 0]), code5: P },
    ];
    if (v5) {
      cases.push(
        { name: 'QoS 1 PUBLISH with a property and packet id 0', bytes: rawPublish(5, 'a/b', { qos: 1, messageId: 0, properties: [0x01, 0x01] }), code5: P },
        { name: 'PUBCOMP with a reason code and packet id 0', bytes: Buffer.from([0x70, 3, 0, 0, 0x92]), code5: P },
      );
    }
    refusedAfterConnect(version, cases);
  });

  describe(`${label(version)}: bytes after the last field`, { concurrency: true }, () => {
    const cases: BadPacket[] = [
      { name: 'PINGREQ with a one-byte body', bytes: Buffer.from([0xc0, 1, 0]), code5: M },
      { name: 'UNSUBSCRIBE with a stray byte after its filter', bytes: rawPacket(0xa2, [0, 1, ...none, ...mqttString('a/b'), 0]), code5: M },
      { name: 'SUBSCRIBE with a filter and no options byte', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b')]), code5: M },
    ];
    if (v5) {
      cases.push(
        { name: 'DISCONNECT with a byte after its properties', bytes: Buffer.from([0xe0, 3, 0, 0, 0]), code5: M },
        { name: 'PUBACK with a byte after its properties', bytes: Buffer.from([0x40, 5, 0, 1, 0, 0, 9]), code5: M },
        { name: 'PUBREL with a property length past the packet', bytes: Buffer.from([0x62, 4, 0, 1, 0, 9]), code5: M },
      );
    } else {
      cases.push(
        { name: 'DISCONNECT with a body', bytes: Buffer.from([0xe0, 1, 0]), code5: M },
        { name: 'PUBACK with a third byte', bytes: Buffer.from([0x40, 3, 0, 1, 0]), code5: M },
        { name: 'PUBREL with a third byte', bytes: Buffer.from([0x62, 3, 0, 1, 0]), code5: M },
      );
    }
    refusedAfterConnect(version, cases);

    it(`CONNECT with two bytes after its last field: ${v5 ? 'CONNACK 0x81' : 'closed without CONNACK'}`, async () => {
      await expectConnectRefused(broker.port, version, connectBytes(version, { flags: 0xc2, tail: [1, 2] }), M);
    });
  });

  describe(`${label(version)}: SUBSCRIBE and UNSUBSCRIBE payloads`, { concurrency: true }, () => {
    const cases: BadPacket[] = [
      { name: 'SUBSCRIBE with no topic filter', bytes: rawPacket(0x82, [0, 1, ...none]), code5: P },
      { name: 'UNSUBSCRIBE with no topic filter', bytes: rawPacket(0xa2, [0, 1, ...none]), code5: P },
      { name: 'SUBSCRIBE with options 0x80 (reserved bit 7)', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b'), 0x80]), code5: M },
      { name: 'SUBSCRIBE with options 0x41 (reserved bit 6)', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b'), 0x41]), code5: M },
    ];
    if (v5) {
      cases.push(
        { name: 'SUBSCRIBE with retain handling 3', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b'), 0x30]), code5: P },
        { name: 'SUBSCRIBE with maximum QoS 3', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b'), 0x03]), code5: P },
        { name: 'SUBSCRIBE whose second filter has retain handling 3', bytes: rawPacket(0x82, [0, 1, ...none, ...mqttString('a/b'), 0x01, ...mqttString('a/c'), 0x31]), code5: P },
      );
    } else {
      cases.push(
        { name: 'SUBSCRIBE with requested QoS 3', bytes: rawPacket(0x82, [0, 1, ...mqttString('a/b'), 0x03]), code5: M },
        { name: 'SUBSCRIBE with requested QoS byte 0x04 (No Local is 5.0 only)', bytes: rawPacket(0x82, [0, 1, ...mqttString('a/b'), 0x04]), code5: M },
        { name: 'SUBSCRIBE whose second filter has requested QoS byte 0x21', bytes: rawPacket(0x82, [0, 1, ...mqttString('a/b'), 0x01, ...mqttString('a/c'), 0x21]), code5: M },
      );
    }
    refusedAfterConnect(version, cases);

    if (v5) {
      it('control: SUBSCRIBE with No Local, Retain As Published, retain handling 2 and QoS 2 is granted QoS 2', async () => {
        const { client } = await rawConnect(broker.port, 5);
        client.send(rawPacket(0x82, [0, 3, 0, ...mqttString('strict/options'), 0x2e]));
        const suback = await client.nextOf('suback');
        assert.deepEqual(suback.granted, [2]);
        client.destroy();
      });
    }
  });

  describe(`${label(version)}: CONNECT flags`, { concurrency: true }, () => {
    const cases: Array<{ name: string; bytes: Buffer }> = [
      { name: 'reserved bit 0 set (MQTT-3.1.2-3)', bytes: connectBytes(version, { flags: 0x03 }) },
      { name: 'will QoS 3 (MQTT-3.1.2-12)', bytes: connectBytes(version, { flags: 0x1e }) },
      { name: 'will QoS 1 without the will flag (MQTT-3.1.2-11)', bytes: connectBytes(version, { flags: 0x0a }) },
      { name: 'will retain without the will flag (MQTT-3.1.2-13)', bytes: connectBytes(version, { flags: 0x22 }) },
    ];
    if (!v5) cases.push({ name: 'a password without a user name (MQTT-3.1.2-22)', bytes: connectBytes(version, { flags: 0x42 }) });
    for (const { name, bytes } of cases) {
      it(`${name}: ${v5 ? 'CONNACK 0x81' : 'closed without CONNACK'}`, async () => {
        await expectConnectRefused(broker.port, version, bytes, M);
      });
    }

    it('controls: a will with QoS 2 and retain, and a user name with a password, are accepted', async () => {
      const client = await expectConnectAccepted(broker.port, version, connectBytes(version, { flags: 0x36 | 0xc0 }));
      client.destroy();
    });

    if (v5) {
      it('5.0: a password without a user name is accepted (3.1.2.9 allows it)', async () => {
        const client = await expectConnectAccepted(broker.port, 5, connectBytes(5, { flags: 0x42 }));
        client.destroy();
      });
    }
  });

  describe(`${label(version)}: second CONNECT and AUTH`, { concurrency: true }, () => {
    it(`a second, well-formed CONNECT: ${v5 ? 'DISCONNECT 0x82' : 'closed'}`, async () => {
      await expectRefusedAfterConnect(broker.port, version, connectBytes(version), P);
    });

    if (v5) {
      it('AUTH without an Authentication Method (reason 0x19, a Reason String only): DISCONNECT 0x82', async () => {
        await expectRefusedAfterConnect(broker.port, 5, rawPacket(0xf0, [0x19, ...props([0x1f, ...mqttString('again')])]), P);
      });
      it('AUTH in its short form (no Authentication Method): DISCONNECT 0x82', async () => {
        await expectRefusedAfterConnect(broker.port, 5, Buffer.from([0xf0, 0x00]), P);
      });
      it('AUTH with an Authentication Method after a CONNECT without one: DISCONNECT 0x8C', async () => {
        // Read from the raw bytes: mqtt-packet 9 does not know 0x8C as a DISCONNECT code.
        const { client } = await rawConnect(broker.port, 5);
        client.send(rawPacket(0xf0, [0x19, ...props([0x15, ...mqttString('SCRAM-SHA-256')])]));
        await client.waitClosed(CLOSE_WAIT_MS);
        const connackLength = 2 + (client.raw[1] as number);
        const disconnect = client.raw.subarray(connackLength);
        assert.equal(disconnect[0], 0xe0, `a DISCONNECT after the CONNACK, raw ${client.raw.toString('hex')}`);
        // Remaining length below 128 (one byte): the reason code is the third byte.
        assert.equal(hex(disconnect[2]), hex(0x8c), `raw ${client.raw.toString('hex')}`);
      });
    } else {
      it('AUTH (a reserved packet type before 5.0): closed', async () => {
        await expectRefusedAfterConnect(broker.port, 4, Buffer.from([0xf0, 0x00]), M);
      });
    }
  });
}

describe('first packet not CONNECT: closed at once, judged on the first byte (MQTT-3.1.0-1)', { concurrency: true }, () => {
  const starts: Array<{ name: string; bytes: Buffer }> = [
    { name: 'an HTTP request', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n') },
    { name: 'a lone "G" (the first byte of an HTTP request, nothing more)', bytes: Buffer.from('G') },
    { name: 'a TLS ClientHello header on the plain port', bytes: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]) },
    { name: 'a PINGREQ', bytes: Buffer.from([0xc0, 0x00]) },
    { name: 'a CONNECT type with flags 0001', bytes: Buffer.from([0x11]) },
  ];
  for (const { name, bytes } of starts) {
    it(`TCP, ${name}: closed without a reply, long before --connect-timeout-ms`, async () => {
      const client = await RawMqttClient.open(broker.port);
      client.send(bytes);
      await client.waitClosed(CLOSE_WAIT_MS);
      assert.equal(client.bytesReceived, 0, `no reply, got ${client.raw.toString('hex')}`);
    });
  }

  it('control: a CONNECT sent one byte at a time is accepted', async (t) => {
    if (!requireShardline(t)) return;
    const client = await RawMqttClient.open(broker.port, { protocolVersion: 4 });
    for (const byte of connectBytes(4)) {
      client.send([byte]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const connack = await client.nextOf('connack');
    assert.equal(connack.returnCode, 0);
    client.destroy();
  });

  it('WebSocket, an HTTP request in the first binary message: closed, long before --connect-timeout-ms', async () => {
    const socket = new WebSocket(wsUrl, ['mqtt']);
    socket.on('error', () => undefined);
    const received: Buffer[] = [];
    socket.on('message', (data: Buffer) => received.push(data));
    const closed = once(socket, 'close');
    await once(socket, 'open');
    socket.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'), { binary: true });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS, 'still open')))]);
    clearTimeout(timer);
    if (outcome !== 'closed') socket.terminate();
    assert.equal(outcome, 'closed');
    assert.deepEqual(received, [], 'no MQTT reply');
  });
});
