// MQTT 5.0 properties checked strictly, over raw sockets against a real broker: identifiers
// not allowed in the packet type, properties that may appear once appearing twice, values out
// of range, a property length that overruns the packet, variable byte integers over four bytes,
// and User Properties kept in the order sent, duplicates included (MQTT-3.3.2-18), through a
// live delivery, the journal (a persistent session's read-back) and a will; mqtt.js on both
// ends too. 3.1.1 has no properties: its bytes there are the payload (n/a).
//
// Negative checks end with the close (the barrier): a refused PUBLISH must not have reached a
// subscriber that was subscribed before it, which a marker message published afterwards on the
// same topic shows (the marker arrives, the refused one did not, in topic order).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { cleanup, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';
import { hex, mqttString, rawConnect, rawPacket, rawPublish, RawMqttClient } from './support/raw-mqtt.js';
import { connectBytes, expectConnectAccepted, expectConnectRefused, expectRefusedAfterConnect, pingBarrier, props } from './support/strict-wire.js';

const M = 0x81;
const P = 0x82;

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker({ args: ['--topic-alias-maximum', '4'] });
});

after(async () => {
  closeAllClients();
  try {
    if (broker !== undefined) await stopBroker(broker);
  } finally {
    await cleanup();
  }
});

function pair(name: string, value: string): number[] {
  return [0x26, ...mqttString(name), ...mqttString(value)];
}

/**
 * The User Properties of every PUBLISH in a raw byte stream, read from the bytes in order
 * (mqtt-packet's decoder groups them by name, which is what this file must not rely on).
 */
function publishedUserProperties(stream: Buffer): Array<Array<[string, string]>> {
  const found: Array<Array<[string, string]>> = [];
  let at = 0;
  while (at < stream.length) {
    const first = stream[at] as number;
    let remaining = 0;
    let multiplier = 1;
    let position = at + 1;
    for (;;) {
      const byte = stream[position++] as number;
      remaining += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const end = position + remaining;
    if (first >> 4 === 3) {
      const topicLength = stream.readUInt16BE(position);
      position += 2 + topicLength + (((first >> 1) & 3) > 0 ? 2 : 0);
      let propertiesLength = 0;
      multiplier = 1;
      for (;;) {
        const byte = stream[position++] as number;
        propertiesLength += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) break;
      }
      const propertiesEnd = position + propertiesLength;
      const pairs: Array<[string, string]> = [];
      const text = (): string => {
        const length = stream.readUInt16BE(position);
        const value = stream.toString('utf8', position + 2, position + 2 + length);
        position += 2 + length;
        return value;
      };
      while (position < propertiesEnd) {
        const id = stream[position++] as number;
        if (id === 0x26) pairs.push([text(), text()]);
        else if (id === 0x01) position += 1;
        else if (id === 0x02) position += 4;
        else if (id === 0x23) position += 2;
        else if (id === 0x03 || id === 0x08 || id === 0x09) text();
        else if (id === 0x0b) while (((stream[position++] as number) & 0x80) !== 0);
        else throw new Error(`unexpected property 0x${id.toString(16)} in a PUBLISH to a client`);
      }
      found.push(pairs);
    }
    at = end;
  }
  return found;
}

describe('MQTT 5.0: properties refused after CONNECT', { concurrency: true }, () => {
  const cases: Array<{ name: string; bytes: Buffer; code5: number }> = [
    // Identifiers not allowed in the packet (MQTT 2.2.2.2: malformed).
    { name: 'PUBLISH with Session Expiry Interval (a CONNECT / DISCONNECT property)', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x11, 0, 0, 0, 5] }), code5: M },
    { name: 'PUBLISH with Maximum QoS (a CONNACK property)', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x24, 1] }), code5: M },
    { name: 'PUBLISH with the unknown property 0x7F', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x7f, 0] }), code5: M },
    { name: 'PUBACK with Content Type', bytes: rawPacket(0x40, [0, 1, 0, ...props([0x03, ...mqttString('text/plain')])]), code5: M },
    { name: 'UNSUBSCRIBE with a Subscription Identifier', bytes: rawPacket(0xa2, [0, 1, ...props([0x0b, 1]), ...mqttString('p/a')]), code5: M },
    { name: 'SUBSCRIBE with Reason String', bytes: rawPacket(0x82, [0, 1, ...props([0x1f, ...mqttString('why')]), ...mqttString('p/a'), 0]), code5: M },
    { name: 'DISCONNECT with Will Delay Interval', bytes: rawPacket(0xe0, [0, ...props([0x18, 0, 0, 0, 1])]), code5: M },
    // Subscription Identifier in a client PUBLISH (MQTT-3.3.4-6: protocol error).
    { name: 'PUBLISH with a Subscription Identifier', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x0b, 7] }), code5: P },
    // Once only (protocol error).
    { name: 'PUBLISH with Payload Format Indicator twice', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x01, 0, 0x01, 0] }), code5: P },
    { name: 'PUBLISH with Content Type twice', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x03, ...mqttString('a'), 0x03, ...mqttString('b')] }), code5: P },
    { name: 'PUBLISH with Topic Alias twice', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x23, 0, 1, 0x23, 0, 2] }), code5: P },
    { name: 'PUBLISH with Correlation Data twice', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x09, 0, 1, 1, 0x09, 0, 1, 2] }), code5: P },
    { name: 'PUBACK with Reason String twice', bytes: rawPacket(0x40, [0, 1, 0, ...props([0x1f, ...mqttString('a'), 0x1f, ...mqttString('b')])]), code5: P },
    { name: 'SUBSCRIBE with Subscription Identifier twice', bytes: rawPacket(0x82, [0, 1, ...props([0x0b, 1, 0x0b, 2]), ...mqttString('p/a'), 0]), code5: P },
    { name: 'DISCONNECT with Session Expiry Interval twice', bytes: rawPacket(0xe0, [0, ...props([0x11, 0, 0, 0, 0, 0x11, 0, 0, 0, 0])]), code5: P },
    // Values out of range.
    { name: 'PUBLISH with Payload Format Indicator 2', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x01, 2] }), code5: P },
    { name: 'SUBSCRIBE with Subscription Identifier 0', bytes: rawPacket(0x82, [0, 1, ...props([0x0b, 0]), ...mqttString('p/a'), 0]), code5: P },
    { name: 'PUBLISH with Topic Alias 0', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x23, 0, 0] }), code5: 0x94 },
    { name: 'PUBLISH with Topic Alias above the maximum (4)', bytes: rawPublish(5, 'p/a', { qos: 1, messageId: 1, properties: [0x23, 0, 5] }), code5: 0x94 },
    // Lengths.
    { name: 'PUBLISH whose property length runs past the packet', bytes: rawPacket(0x32, [...mqttString('p/a'), 0, 1, 40, 0x01, 0x01, 0x78]), code5: M },
    { name: 'PUBLISH whose last property runs past the property length', bytes: rawPacket(0x32, [...mqttString('p/a'), 0, 1, 3, 0x02, 0, 0, 0, 0, 0x78]), code5: M },
    { name: 'PUBLISH with a property length of five bytes', bytes: rawPacket(0x32, [...mqttString('p/a'), 0, 1, 0x80, 0x80, 0x80, 0x80, 0x00, 0x78]), code5: M },
    { name: 'SUBSCRIBE with a Subscription Identifier of five bytes', bytes: rawPacket(0x82, [0, 1, ...props([0x0b, 0x81, 0x80, 0x80, 0x80, 0x01]), ...mqttString('p/a'), 0]), code5: M },
    { name: 'PUBACK with a Reason String longer than the packet', bytes: rawPacket(0x40, [0, 1, 0, ...props([0x1f, 0, 9, 0x61])]), code5: M },
    { name: 'AUTH with Authentication Method twice', bytes: rawPacket(0xf0, [0x19, ...props([0x15, ...mqttString('A'), 0x15, ...mqttString('B')])]), code5: P },
  ];
  for (const { name, bytes, code5 } of cases) {
    it(`${name}: DISCONNECT ${hex(code5)}`, async () => {
      await expectRefusedAfterConnect(broker.port, 5, bytes, code5);
    });
  }
});

describe('MQTT 5.0: CONNECT properties refused with CONNACK', { concurrency: true }, () => {
  const cases: Array<{ name: string; fields: Parameters<typeof connectBytes>[1]; code5: number }> = [
    { name: 'Receive Maximum 0', fields: { properties: [0x21, 0, 0] }, code5: P },
    { name: 'Maximum Packet Size 0', fields: { properties: [0x27, 0, 0, 0, 0] }, code5: P },
    { name: 'Request Problem Information 2', fields: { properties: [0x17, 2] }, code5: P },
    { name: 'Request Response Information 0xFF', fields: { properties: [0x19, 0xff] }, code5: P },
    { name: 'Session Expiry Interval twice', fields: { properties: [0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1] }, code5: P },
    { name: 'Maximum QoS (a CONNACK property)', fields: { properties: [0x24, 1] }, code5: M },
    { name: 'Retain Available (a CONNACK property)', fields: { properties: [0x25, 1] }, code5: M },
    { name: 'Will Delay Interval outside the will', fields: { properties: [0x18, 0, 0, 0, 1] }, code5: M },
    { name: 'a will Payload Format Indicator of 0xED', fields: { flags: 0x06, willProperties: [0x01, 0xed] }, code5: P },
    { name: 'a will with Session Expiry Interval', fields: { flags: 0x06, willProperties: [0x11, 0, 0, 0, 1] }, code5: M },
    { name: 'a will with Content Type twice', fields: { flags: 0x06, willProperties: [0x03, ...mqttString('a'), 0x03, ...mqttString('b')] }, code5: P },
    { name: 'a property length past the packet', fields: { properties: [], tail: [] }, code5: M },
  ];
  for (const { name, fields, code5 } of cases) {
    it(`CONNECT with ${name}: CONNACK ${hex(code5)}`, async () => {
      const bytes = connectBytes(5, fields);
      // The last case: the property length (after name, level, flags, keep alive) claims 60 bytes.
      if (name === 'a property length past the packet') bytes[2 + 6 + 4] = 60;
      await expectConnectRefused(broker.port, 5, bytes, code5);
    });
  }

  it('control: every CONNECT and will property a client may send, in range, is accepted', async () => {
    const client = await expectConnectAccepted(
      broker.port,
      5,
      connectBytes(5, {
        flags: 0x06,
        properties: [0x11, 0, 0, 0, 0, 0x21, 0, 10, 0x27, 0, 1, 0, 0, 0x22, 0, 4, 0x19, 1, 0x17, 0, ...pair('k', 'v'), ...pair('k', 'w')],
        willProperties: [0x18, 0, 0, 0, 0, 0x01, 1, 0x02, 0, 0, 0, 9, 0x03, ...mqttString('text/plain'), 0x08, ...mqttString('r/t'), 0x09, 0, 1, 7, ...pair('w', '1')],
      }),
    );
    await pingBarrier(client);
    client.destroy();
  });
});

describe('MQTT 5.0: a refused PUBLISH is not delivered', () => {
  it('Payload Format Indicator 0xED: DISCONNECT 0x82, and a subscriber gets the marker after it but never the message', async () => {
    const topic = uniqueTopic('pfi');
    const { client: reader } = await rawConnect(broker.port, 5);
    reader.send(rawPacket(0x82, [0, 1, 0, ...mqttString(topic), 1]));
    await reader.nextOf('suback');
    await expectRefusedAfterConnect(broker.port, 5, rawPublish(5, topic, { qos: 1, messageId: 3, properties: [0x01, 0xed], payload: 'refused' }), P);
    const { client: marker } = await rawConnect(broker.port, 5);
    marker.send(rawPublish(5, topic, { qos: 1, messageId: 4, payload: 'marker' }));
    await marker.nextOf('puback');
    const first = (await reader.nextOf('publish')) as IPublishPacket;
    assert.equal(first.payload.toString(), 'marker', 'the first message on the topic is the marker, not the refused one');
    marker.destroy();
    reader.destroy();
  });
});

describe('MQTT 5.0: User Properties in the order sent, duplicates kept (MQTT-3.3.2-18)', () => {
  const sent: Array<[string, string]> = [
    ['k1', 'v1'],
    ['k2', 'v2'],
    ['k1', 'v3'],
  ];
  const sentBytes = sent.flatMap(([name, value]) => pair(name, value));

  it('(k1,v1), (k2,v2), (k1,v3) reach a live subscriber in that order, with other properties between them', async () => {
    const topic = uniqueTopic('order');
    const { client: reader } = await rawConnect(broker.port, 5);
    reader.send(rawPacket(0x82, [0, 1, 0, ...mqttString(topic), 1]));
    await reader.nextOf('suback');
    const { client: writer } = await rawConnect(broker.port, 5);
    writer.send(rawPublish(5, topic, { qos: 1, messageId: 1, properties: [...pair('k1', 'v1'), 0x03, ...mqttString('text/plain'), ...pair('k2', 'v2'), ...pair('k1', 'v3')] }));
    await writer.nextOf('puback');
    await reader.nextOf('publish');
    const connackLength = 2 + (reader.raw[1] as number);
    const subackLength = 2 + (reader.raw[connackLength + 1] as number);
    assert.deepEqual(publishedUserProperties(reader.raw.subarray(connackLength + subackLength)), [sent]);
    writer.destroy();
    reader.destroy();
  });

  it('the same order after the journal: a persistent session reads the message back on reconnect', async () => {
    const topic = uniqueTopic('order-offline');
    const clientId = uniqueClientId('order-offline');
    const first = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    first.send(connectBytes(5, { flags: 0x00, clientId, properties: [0x11, 0, 0, 0, 60] }));
    await first.nextOf('connack');
    first.send(rawPacket(0x82, [0, 1, 0, ...mqttString(topic), 1]));
    await first.nextOf('suback');
    first.send([0xe0, 0x00]);
    await first.waitClosed();
    const { client: writer } = await rawConnect(broker.port, 5);
    writer.send(rawPublish(5, topic, { qos: 1, messageId: 1, properties: sentBytes }));
    await writer.nextOf('puback');
    const again = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    again.send(connectBytes(5, { flags: 0x00, clientId, properties: [0x11, 0, 0, 0, 0] }));
    const connack = await again.nextOf('connack');
    assert.equal(connack.sessionPresent, true);
    await again.nextOf('publish');
    const connackLength = 2 + (again.raw[1] as number);
    assert.deepEqual(publishedUserProperties(again.raw.subarray(connackLength)), [sent]);
    writer.destroy();
    again.destroy();
  });

  it("a will's User Properties keep their order too", async () => {
    const topic = uniqueTopic('order-will');
    const { client: reader } = await rawConnect(broker.port, 5);
    reader.send(rawPacket(0x82, [0, 1, 0, ...mqttString(topic), 0]));
    await reader.nextOf('suback');
    const willing = await expectConnectAccepted(broker.port, 5, connectBytes(5, { flags: 0x06, willTopic: topic, willProperties: [...pair('b', '1'), ...pair('a', '2'), ...pair('b', '3')] }));
    willing.destroy();
    await reader.nextOf('publish');
    const connackLength = 2 + (reader.raw[1] as number);
    const subackLength = 2 + (reader.raw[connackLength + 1] as number);
    assert.deepEqual(publishedUserProperties(reader.raw.subarray(connackLength + subackLength)), [
      [
        ['b', '1'],
        ['a', '2'],
        ['b', '3'],
      ],
    ]);
    reader.destroy();
  });

  it('mqtt.js to mqtt.js: duplicates are kept, and the pairs arrive in the order mqtt.js wrote them', async () => {
    const topic = uniqueTopic('order-mqttjs');
    const reader = await connectClient(broker.url, { protocolVersion: 5 });
    await reader.client.subscribeAsync(topic, { qos: 1 });
    const { client: raw } = await rawConnect(broker.port, 5);
    raw.send(rawPacket(0x82, [0, 1, 0, ...mqttString(topic), 1]));
    await raw.nextOf('suback');
    const writer = await connectClient(broker.url, { protocolVersion: 5 });
    // mqtt.js writes an object's names in insertion order, each name's values in array order.
    await writer.client.publishAsync(topic, 'x', { qos: 1, properties: { userProperties: { zeta: ['1', '2'], alpha: '3' } } });
    const [message] = await reader.waitForMessages(1);
    // mqtt-packet decodes into an object without a prototype: compare the entries.
    assert.deepEqual(Object.entries((message?.packet as IPublishPacket).properties?.userProperties ?? {}), [
      ['zeta', ['1', '2']],
      ['alpha', '3'],
    ]);
    await raw.nextOf('publish');
    const connackLength = 2 + (raw.raw[1] as number);
    const subackLength = 2 + (raw.raw[connackLength + 1] as number);
    assert.deepEqual(publishedUserProperties(raw.raw.subarray(connackLength + subackLength)), [
      [
        ['zeta', '1'],
        ['zeta', '2'],
        ['alpha', '3'],
      ],
    ]);
    raw.destroy();
  });
});
