// The PUBLISH fast path must read exactly what mqtt-packet's parser reads, or step aside.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { decodePlainPublish } from './publish-decoder.js';

function parseWithMqttPacket(raw: Buffer, version: number): mqttPacket.Packet {
  const parser = mqttPacket.parser({ protocolVersion: version as 3 | 4 | 5 });
  const packets: mqttPacket.Packet[] = [];
  parser.on('packet', (packet: mqttPacket.Packet) => packets.push(packet));
  parser.on('error', (error: Error) => assert.fail(error));
  parser.parse(raw);
  assert.equal(packets.length, 1);
  return packets[0] as mqttPacket.Packet;
}

it('decodes property-less PUBLISH packets like mqtt-packet', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 40 }).filter((topic) => !topic.includes('\u0000')),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      fc.boolean(),
      fc.integer({ min: 1, max: 65_535 }),
      fc.constantFrom(3, 4, 5),
      (topic, payloadBytes, qos, retain, dup, messageId, version) => {
        const raw = mqttPacket.generate(
          { cmd: 'publish', topic, payload: Buffer.from(payloadBytes), qos: qos as 0 | 1 | 2, retain, dup, ...(qos > 0 ? { messageId } : {}), ...(version === 5 ? { properties: {} } : {}) },
          { protocolVersion: version as 3 | 4 | 5 },
        );
        const fast = decodePlainPublish(raw, version);
        assert.ok(fast !== undefined);
        const slow = parseWithMqttPacket(raw, version) as mqttPacket.IPublishPacket;
        assert.equal(fast.topic, slow.topic);
        assert.deepEqual(Buffer.from(fast.payload as Buffer), Buffer.from(slow.payload as Buffer));
        assert.equal(fast.qos, slow.qos);
        assert.equal(fast.retain, slow.retain);
        assert.equal(fast.dup, slow.dup);
        assert.equal(fast.messageId, qos > 0 ? slow.messageId : undefined);
      },
    ),
    { numRuns: 300 },
  );
});

it('steps aside for 5.0 properties, invalid UTF-8 topics and truncated packets', () => {
  const withProperties = mqttPacket.generate({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { contentType: 'text/plain' } }, { protocolVersion: 5 });
  assert.equal(decodePlainPublish(withProperties, 5), undefined);
  const badTopic = Buffer.from([0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 0x78]);
  assert.equal(decodePlainPublish(badTopic, 4), undefined);
  const truncated = Buffer.from([0x32, 0x04, 0x00, 0x05, 0x61, 0x62]);
  assert.equal(decodePlainPublish(truncated, 4), undefined);
  const qos3 = Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]);
  assert.equal(decodePlainPublish(qos3, 4), undefined);
});
