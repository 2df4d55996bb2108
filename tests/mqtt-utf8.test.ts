// UTF-8 strings over raw sockets against a real broker (MQTT-1.5.4-1/2): every string field a
// client sends (client id, user name, will topic, topic names on both PUBLISH decoders, topic
// filters, 5.0 property strings and User Property pairs) is refused when it holds ill-formed
// UTF-8, an overlong form, an encoded surrogate (U+D800..U+DFFF), a code point above U+10FFFF
// or U+0000: 5.0 DISCONNECT 0x81 (CONNACK 0x81 for CONNECT fields), 3.1 and 3.1.1 a close
// without an answer. The control characters U+0001..U+001F and U+007F..U+009F, which the spec says a
// sender SHOULD NOT use, are accepted and delivered as sent (docs/mqtt.md, "Behaviour where the
// spec leaves room"), and so is a well-formed U+FFFD.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { cleanup, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { mqttString, rawConnect, rawPacket, rawPublish, type MqttVersion } from './support/raw-mqtt.js';
import { connectBytes, expectConnectAccepted, expectConnectRefused, expectRefusedAfterConnect, label, pingBarrier, props, propsFor } from './support/strict-wire.js';

const VERSIONS: MqttVersion[] = [3, 4, 5];
const M = 0x81;

/** Bad sequences, each inside otherwise plain text ("a" before, "b" after). */
const BAD: Array<{ name: string; bytes: number[] }> = [
  { name: 'ill-formed UTF-8 (C3 28)', bytes: [0xc3, 0x28] },
  { name: 'a lone continuation byte (80)', bytes: [0x80] },
  { name: 'an overlong "/" (C0 AF)', bytes: [0xc0, 0xaf] },
  { name: 'an encoded surrogate U+D800 (ED A0 80)', bytes: [0xed, 0xa0, 0x80] },
  { name: 'an encoded surrogate U+DFFF (ED BF BF)', bytes: [0xed, 0xbf, 0xbf] },
  { name: 'a code point above U+10FFFF (F4 90 80 80)', bytes: [0xf4, 0x90, 0x80, 0x80] },
  { name: 'U+0000', bytes: [0x00] },
];

function wrap(bytes: number[]): number[] {
  return [0x61, ...bytes, 0x62];
}

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  try {
    if (broker !== undefined) await stopBroker(broker);
  } finally {
    await cleanup();
  }
});

for (const version of VERSIONS) {
  const v5 = version === 5;
  const none = propsFor(version);

  describe(`${label(version)}: CONNECT strings`, { concurrency: true }, () => {
    const fields: Array<{ field: string; build: (bad: number[]) => Buffer }> = [
      { field: 'client id', build: (bad) => connectBytes(version, { clientId: wrap(bad) }) },
      { field: 'user name', build: (bad) => connectBytes(version, { flags: 0x82, username: wrap(bad) }) },
      { field: 'will topic', build: (bad) => connectBytes(version, { flags: 0x06, willTopic: wrap(bad) }) },
    ];
    if (v5) {
      fields.push(
        { field: 'User Property name', build: (bad) => connectBytes(5, { properties: [0x26, ...mqttString(wrap(bad)), ...mqttString('v')] }) },
        { field: 'Authentication Method', build: (bad) => connectBytes(5, { properties: [0x15, ...mqttString(wrap(bad))] }) },
        { field: 'will Content Type', build: (bad) => connectBytes(5, { flags: 0x06, willProperties: [0x03, ...mqttString(wrap(bad))] }) },
        { field: 'will User Property value', build: (bad) => connectBytes(5, { flags: 0x06, willProperties: [0x26, ...mqttString('k'), ...mqttString(wrap(bad))] }) },
      );
    }
    for (const { field, build } of fields) {
      for (const { name, bytes } of BAD) {
        it(`${field} with ${name}: ${v5 ? 'CONNACK 0x81' : 'closed without CONNACK'}`, async () => {
          await expectConnectRefused(broker.port, version, build(bytes), M);
        });
      }
    }

    it('control: a client id, user name and will topic with U+0001, U+001F, U+007F, U+009F and U+FFFD are accepted', async () => {
      const text = 'c\u0001\u001f\u007f\u009f\ufffd';
      const client = await expectConnectAccepted(broker.port, version, connectBytes(version, { flags: 0x86, clientId: text, username: text, willTopic: `will/${text}` }));
      await pingBarrier(client);
      client.destroy();
    });
  });

  describe(`${label(version)}: strings after CONNECT`, { concurrency: true }, () => {
    const places: Array<{ place: string; build: (bad: number[]) => Buffer }> = [
      // A property-less PUBLISH takes the plain decoder (the hot path), one with a property the general one.
      { place: 'QoS 0 PUBLISH topic', build: (bad) => rawPublish(version, wrap(bad)) },
      { place: 'QoS 1 PUBLISH topic', build: (bad) => rawPublish(version, wrap(bad), { qos: 1, messageId: 2 }) },
      { place: 'SUBSCRIBE filter', build: (bad) => rawPacket(0x82, [0, 1, ...none, ...mqttString(wrap(bad)), 0]) },
      { place: 'UNSUBSCRIBE filter', build: (bad) => rawPacket(0xa2, [0, 1, ...none, ...mqttString('ok/one'), ...mqttString(wrap(bad))]) },
    ];
    if (v5) {
      places.push(
        { place: 'PUBLISH topic with a property', build: (bad) => rawPublish(5, wrap(bad), { qos: 1, messageId: 2, properties: [0x01, 0x01] }) },
        { place: 'PUBLISH Content Type', build: (bad) => rawPublish(5, 'u/t', { qos: 1, messageId: 2, properties: [0x03, ...mqttString(wrap(bad))] }) },
        { place: 'PUBLISH Response Topic', build: (bad) => rawPublish(5, 'u/t', { qos: 1, messageId: 2, properties: [0x08, ...mqttString(wrap(bad))] }) },
        { place: 'PUBLISH User Property name', build: (bad) => rawPublish(5, 'u/t', { qos: 1, messageId: 2, properties: [0x26, ...mqttString(wrap(bad)), ...mqttString('v')] }) },
        { place: 'PUBLISH User Property value', build: (bad) => rawPublish(5, 'u/t', { qos: 1, messageId: 2, properties: [0x26, ...mqttString('k'), ...mqttString(wrap(bad))] }) },
        { place: 'SUBSCRIBE User Property value', build: (bad) => rawPacket(0x82, [0, 1, ...props([0x26, ...mqttString('k'), ...mqttString(wrap(bad))]), ...mqttString('u/t'), 0]) },
        { place: 'PUBACK Reason String', build: (bad) => rawPacket(0x40, [0, 1, 0x10, ...props([0x1f, ...mqttString(wrap(bad))])]) },
        { place: 'DISCONNECT Reason String', build: (bad) => rawPacket(0xe0, [0, ...props([0x1f, ...mqttString(wrap(bad))])]) },
      );
    }
    for (const { place, build } of places) {
      for (const { name, bytes } of BAD) {
        it(`${place} with ${name}: ${v5 ? 'DISCONNECT 0x81' : 'closed'}`, async () => {
          await expectRefusedAfterConnect(broker.port, version, build(bytes), M);
        });
      }
    }

    it('control: a topic and a filter with U+0001, U+001F, U+007F, U+009F and U+FFFD round-trip', async () => {
      const topic = `u/\u0001\u001f\u007f\u009f\ufffd/${version}`;
      const { client } = await rawConnect(broker.port, version);
      client.send(rawPacket(0x82, [0, 1, ...none, ...mqttString(topic), 1]));
      await client.nextOf('suback');
      const userProperty = v5 ? [0x26, ...mqttString('k\u0001'), ...mqttString('v\u009f')] : [];
      client.send(rawPublish(version, topic, { qos: 1, messageId: 2, payload: 'control', ...(v5 ? { properties: userProperty } : {}) }));
      const delivered = (await client.nextOf('publish')) as IPublishPacket;
      assert.equal(delivered.topic, topic);
      assert.equal(delivered.payload.toString(), 'control');
      if (v5) assert.deepEqual(Object.entries(delivered.properties?.userProperties ?? {}), [['k\u0001', 'v\u009f']]);
      client.destroy();
    });
  });
}
