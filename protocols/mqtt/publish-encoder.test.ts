// The hand-written PUBLISH encoder must produce exactly what mqtt-packet's generate() does.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { encodePlainPublish, encodePublishWithProperties, SharedPlainPublish } from './publish-encoder.js';

it('encodes PUBLISH byte for byte like mqtt-packet for every version, QoS, flag and size class', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 40 }).filter((topic) => !topic.includes('\u0000')),
      fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(new Uint8Array(20_000), new Uint8Array(3_000_000))),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      fc.boolean(),
      fc.integer({ min: 1, max: 65_535 }),
      fc.constantFrom(3, 4, 5),
      (topic, payloadBytes, qos, retain, dup, packetId, version) => {
        const payload = Buffer.from(payloadBytes);
        const expected = mqttPacket.generate(
          { cmd: 'publish', topic, payload, qos: qos as 0 | 1 | 2, retain, dup, ...(qos > 0 ? { messageId: packetId } : {}), ...(version === 5 ? { properties: {} } : {}) },
          { protocolVersion: version as 3 | 4 | 5 },
        );
        assert.deepEqual(encodePlainPublish(topic, payload, qos, retain, dup, packetId, version), expected);
      },
    ),
    { numRuns: 300 },
  );
});

it('fan-out: the bytes encoded once per message and shape, patched per subscriber, equal generate() for each subscriber', () => {
  const subscriber = fc.record({
    qos: fc.constantFrom(0, 1, 2),
    retain: fc.boolean(),
    dup: fc.boolean(),
    packetId: fc.integer({ min: 1, max: 65_535 }),
    version: fc.constantFrom(3, 4, 5),
  });
  const message = fc.record({
    topic: fc.string({ minLength: 1, maxLength: 40 }).filter((topic) => !topic.includes('\u0000')),
    payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(new Uint8Array(9_000), new Uint8Array(70_000), new Uint8Array(3_000_000))).map((bytes) => Buffer.from(bytes)),
  });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: 2 }), subscriber), { minLength: 1, maxLength: 30 }), fc.array(message, { minLength: 3, maxLength: 3 }), (deliveries, messages) => {
      // One cache, as in the process; deliveries of three messages, in runs and interleaved.
      const shared = new SharedPlainPublish();
      const written = deliveries.map(([which, { qos, retain, dup, packetId, version }]) => {
        const { topic, payload } = messages[which] as { topic: string; payload: Buffer };
        const headOnly = payload.length >= 8192;
        const bytes = shared.encode(messages[which] as object, topic, payload, qos, retain, dup, packetId, version, headOnly);
        return { which, qos, retain, dup, packetId, version, bytes: headOnly ? Buffer.concat([bytes, payload]) : bytes };
      });
      // Compared after every encode has run: bytes handed out earlier were not written to since.
      for (const { which, qos, retain, dup, packetId, version, bytes } of written) {
        const { topic, payload } = messages[which] as { topic: string; payload: Buffer };
        const expected = mqttPacket.generate(
          { cmd: 'publish', topic, payload, qos: qos as 0 | 1 | 2, retain, dup, ...(qos > 0 ? { messageId: packetId } : {}), ...(version === 5 ? { properties: {} } : {}) },
          { protocolVersion: version as 3 | 4 | 5 },
        );
        assert.deepEqual(bytes, expected);
      }
    }),
    { numRuns: 200 },
  );
});

it('fan-out: a QoS 0 packet is one buffer shared by the subscribers of a message, a QoS 1 packet a copy each', () => {
  const shared = new SharedPlainPublish();
  const message = { topic: 't', payload: Buffer.from('x') };
  const first = shared.encode(message, 't', message.payload, 0, false, false, 0, 4, false);
  assert.equal(shared.encode(message, 't', message.payload, 0, false, false, 0, 4, false), first);
  const one = shared.encode(message, 't', message.payload, 1, false, false, 7, 4, false);
  assert.notEqual(shared.encode(message, 't', message.payload, 1, false, false, 8, 4, false), one);
  assert.equal(one.readUInt16BE(5), 7);
});

it('encodes PUBLISH with properties byte for byte like mqtt-packet when the user properties have distinct names', () => {
  const text = fc.string({ unit: 'binary', maxLength: 12 }).filter((value) => !value.includes('\u0000'));
  const optional = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arbitrary, { nil: undefined });
  fc.assert(
    fc.property(
      fc.string({ maxLength: 30 }).filter((topic) => !topic.includes('\u0000')),
      fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(new Uint8Array(20_000), new Uint8Array(300_000)).map((bytes) => Buffer.from(bytes))),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      fc.boolean(),
      fc.integer({ min: 1, max: 65_535 }),
      fc.record({
        payloadFormatIndicator: optional(fc.boolean()),
        messageExpiryInterval: optional(fc.integer({ min: 0, max: 4_294_967_295 })),
        topicAlias: optional(fc.integer({ min: 1, max: 65_535 })),
        responseTopic: optional(text),
        correlationData: optional(fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes))),
        userProperties: optional(fc.uniqueArray(fc.tuple(text, text), { minLength: 1, maxLength: 4, selector: ([name]) => name })),
        subscriptionIds: optional(fc.array(fc.integer({ min: 1, max: 268_435_455 }), { minLength: 1, maxLength: 3 })),
        contentType: optional(text),
      }),
      (topic, payloadBytes, qos, retain, dup, packetId, properties) => {
        const payload = Buffer.from(payloadBytes);
        // The object mqtt-packet writes, keys in the order the hand-written encoder uses.
        const { userProperties, subscriptionIds, contentType, ...rest } = properties;
        const asObject: Record<string, unknown> = {};
        for (const [key, value] of Object.entries({ ...rest, userProperties: userProperties === undefined ? undefined : Object.fromEntries(userProperties), subscriptionIdentifier: subscriptionIds, contentType })) {
          if (value !== undefined) asObject[key] = value;
        }
        const expected = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: qos as 0 | 1 | 2, retain, dup, ...(qos > 0 ? { messageId: packetId } : {}), properties: asObject }, { protocolVersion: 5 });
        const defined = Object.fromEntries(Object.entries(properties).filter(([, value]) => value !== undefined));
        assert.deepEqual(encodePublishWithProperties(topic, payload, qos, retain, dup, packetId, defined), expected);
      },
    ),
    { numRuns: 300 },
  );
});

it('writes user properties in the order listed, duplicate names kept (MQTT-3.3.2-18)', () => {
  const packet = encodePublishWithProperties('t', Buffer.from('x'), 0, false, false, 0, {
    userProperties: [
      ['k1', 'v1'],
      ['k2', 'v2'],
      ['k1', 'v3'],
    ],
  });
  const pair = (name: string, value: string): number[] => [0x26, 0, name.length, ...Buffer.from(name), 0, value.length, ...Buffer.from(value)];
  const properties = [...pair('k1', 'v1'), ...pair('k2', 'v2'), ...pair('k1', 'v3')];
  assert.deepEqual([...packet], [0x30, 2 + 1 + 1 + properties.length + 1, 0, 1, 0x74, properties.length, ...properties, 0x78]);
});
