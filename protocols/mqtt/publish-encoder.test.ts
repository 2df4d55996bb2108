// The hand-written PUBLISH encoder must produce exactly what mqtt-packet's generate() does.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { encodePlainPublish } from './publish-encoder.js';

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
