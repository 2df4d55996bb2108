// The hand-written ack encoder must produce exactly what mqtt-packet's generate() does.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { encodePlainAck } from './ack-encoder.js';

it('encodes PUBACK, PUBREC, PUBREL and PUBCOMP byte for byte like mqtt-packet for every version and reason code', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('puback', 'pubrec', 'pubrel', 'pubcomp'),
      fc.integer({ min: 1, max: 65_535 }),
      fc.constantFrom(3, 4, 5),
      fc.oneof(fc.constant(0), fc.constantFrom(0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x92, 0x97, 0x99), fc.integer({ min: 0, max: 255 })),
      (cmd, messageId, version, reasonCode) => {
        const packet = { cmd, messageId, ...(version === 5 ? { reasonCode } : {}) } as Packet;
        const expected = mqttPacket.generate(packet, { protocolVersion: version as 3 | 4 | 5 });
        assert.deepEqual(encodePlainAck(packet as { cmd: string }, version), expected);
      },
    ),
    { numRuns: 500 },
  );
});

it('leaves acks with properties, a DUP PUBREL and other packets to generate()', () => {
  assert.equal(encodePlainAck({ cmd: 'puback', messageId: 1, reasonCode: 0x80, properties: { reasonString: 'no' } }, 5), undefined);
  assert.equal(encodePlainAck({ cmd: 'pubrel', messageId: 1, dup: true }, 4), undefined);
  assert.equal(encodePlainAck({ cmd: 'suback', messageId: 1 }, 4), undefined);
  assert.equal(encodePlainAck({ cmd: 'puback', messageId: 1 }, 5), undefined, '5.0 without a reason code: generate() has its own rule');
});
