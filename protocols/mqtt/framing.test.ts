// Unit tests of the MQTT byte-stream framer (framing.ts, PacketFramer).
//
// Goal: however TCP cuts the stream (one byte at a time, at any boundary, many packets per
// chunk), the framer returns the same packets, byte for byte, in order; a remaining length
// longer than four bytes is malformed (MQTT-1.5.5); a packet over the maximum size is refused
// from its fixed header alone, before its body is buffered.
// Method: real packets encoded with mqtt-packet (remaining lengths of 1, 2 and 3 bytes), cut at
// every boundary, byte by byte, and at random points (fast-check; set FC_SEED and FC_PATH to
// replay a failure); hand-made headers for the refusals.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { PacketFramer, type FrameResult } from './framing.js';
import { replay } from '../../tests/support/fast-check.js';

const MAX = 1024 * 1024;

const PACKETS: Buffer[] = [
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'framer', keepalive: 30 } as mqttPacket.IConnectPacket),
  mqttPacket.generate({ cmd: 'pingreq' }),
  mqttPacket.generate({ cmd: 'publish', topic: 'small', payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as mqttPacket.IPublishPacket),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'a/+', qos: 1 }] } as mqttPacket.ISubscribePacket),
  mqttPacket.generate({ cmd: 'publish', topic: 'medium', payload: Buffer.alloc(300, 1), qos: 1, messageId: 9, retain: false, dup: false } as mqttPacket.IPublishPacket),
  mqttPacket.generate({ cmd: 'publish', topic: 'large', payload: Buffer.alloc(20_000, 2), qos: 2, messageId: 10, retain: true, dup: false } as mqttPacket.IPublishPacket),
  mqttPacket.generate({ cmd: 'disconnect' }),
];
const STREAM = Buffer.concat(PACKETS);

/** Feeds the chunks in order; every push must succeed. Returns the packets. */
function frame(chunks: Buffer[], framer = new PacketFramer(MAX)): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const result = framer.push(chunk);
    if (result.kind !== 'packets') assert.fail(`refused: ${JSON.stringify(result)}`);
    out.push(...result.packets);
  }
  assert.equal(framer.bufferedBytes, 0, 'nothing left over after whole packets');
  return out;
}

/** Byte-for-byte equality without printing 20 kB packets on success. */
function assertPackets(actual: Buffer[], expected: Buffer[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: packet count`);
  actual.forEach((packet, i) => assert.ok(packet.equals(expected[i] as Buffer), `${what}: packet ${i} differs`));
}

/** Splits a buffer at the given sorted cut points. */
function cut(buffer: Buffer, points: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, buffer.length]) {
    chunks.push(Buffer.from(buffer.subarray(start, point)));
    start = point;
  }
  return chunks;
}

describe('PacketFramer', () => {
  test('the packets have 1-, 2- and 3-byte remaining lengths', () => {
    assert.ok(PACKETS.some((packet) => packet.length < 128));
    assert.ok(PACKETS.some((packet) => packet.length > 128 && packet.length < 16_384));
    assert.ok(PACKETS.some((packet) => packet.length > 16_384));
  });

  test('a whole stream in one chunk gives every packet, in order (many packets per chunk)', () => {
    assertPackets(frame([STREAM]), PACKETS, 'one chunk');
  });

  test('a split at every byte boundary gives the same packets', () => {
    for (let point = 0; point <= STREAM.length; point += 1) {
      assertPackets(frame(cut(STREAM, [point])), PACKETS, `split at ${point}`);
    }
  });

  test('one byte at a time gives the same packets, each as soon as its last byte arrives', () => {
    const framer = new PacketFramer(MAX);
    const ends = new Set<number>();
    let end = 0;
    for (const packet of PACKETS) ends.add((end += packet.length));
    const out: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i += 1) {
      const result = framer.push(STREAM.subarray(i, i + 1));
      assert.equal(result.kind, 'packets');
      if (result.kind !== 'packets') return;
      assert.equal(result.packets.length, ends.has(i + 1) ? 1 : 0, `after byte ${i}`);
      out.push(...result.packets);
    }
    assertPackets(out, PACKETS, 'byte by byte');
  });

  test('random cuts give the same packets', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 40 }), (points) => {
        const sorted = [...points].sort((a, b) => a - b);
        assertPackets(frame(cut(STREAM, sorted)), PACKETS, `cuts at ${sorted.join(',')}`);
      }),
      { numRuns: 300, ...replay },
    );
  });

  test('a partial packet stays buffered until the rest arrives', () => {
    const framer = new PacketFramer(MAX);
    const large = PACKETS[5] as Buffer;
    assert.deepEqual(framer.push(large.subarray(0, 100)), { kind: 'packets', packets: [] });
    assert.equal(framer.bufferedBytes, 100);
    const result = framer.push(large.subarray(100));
    assert.equal(result.kind, 'packets');
    if (result.kind === 'packets') assertPackets(result.packets, [large], 'rest');
    assert.equal(framer.bufferedBytes, 0);
  });

  test('a remaining length of five bytes is malformed', () => {
    const result = new PacketFramer(Number.MAX_SAFE_INTEGER).push(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    assert.equal(result.kind, 'malformed');
  });

  test('the malformed length is seen at the fourth length byte, before a fifth arrives', () => {
    const framer = new PacketFramer(Number.MAX_SAFE_INTEGER);
    const header = [0x30, 0xff, 0xff, 0xff];
    for (const byte of header) assert.deepEqual(framer.push(Buffer.from([byte])), { kind: 'packets', packets: [] });
    assert.equal(framer.push(Buffer.from([0xff])).kind, 'malformed');
  });

  test('the largest four-byte remaining length is not malformed', () => {
    // 0xff 0xff 0xff 0x7f = 268,435,455, the protocol maximum.
    const result = new PacketFramer(Number.MAX_SAFE_INTEGER).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    assert.deepEqual(result, { kind: 'packets', packets: [] });
  });

  test('a packet over the maximum size is refused from its fixed header alone, before the body', () => {
    const framer = new PacketFramer(1000);
    // Remaining length 998 (0xe6 0x07): 1 + 2 + 998 = 1001 bytes in all.
    assert.deepEqual(framer.push(Buffer.from([0x30])), { kind: 'packets', packets: [] });
    assert.deepEqual(framer.push(Buffer.from([0xe6])), { kind: 'packets', packets: [] });
    const result: FrameResult = framer.push(Buffer.from([0x07]));
    assert.deepEqual(result, { kind: 'too-large', size: 1001 });
  });

  test('a packet of exactly the maximum size is accepted', () => {
    const framer = new PacketFramer(1000);
    // Remaining length 997: 1 + 2 + 997 = 1000.
    const packet = Buffer.concat([Buffer.from([0x30, 0xe5, 0x07]), Buffer.alloc(997, 3)]);
    assertPackets(frame([packet.subarray(0, 3), packet.subarray(3)], framer), [packet], 'at the limit');
  });

  test('a too-large packet after good ones in the same chunk is still refused', () => {
    const framer = new PacketFramer(1000);
    const result = framer.push(Buffer.concat([PACKETS[1] as Buffer, Buffer.from([0x30, 0xe6, 0x07])]));
    assert.equal(result.kind, 'too-large');
  });

  test('setMaxPacketSize applies to the packets that follow', () => {
    const framer = new PacketFramer(MAX);
    const medium = PACKETS[4] as Buffer;
    assertPackets(frame([medium], framer), [medium], 'under the old limit');
    framer.setMaxPacketSize(medium.length - 1);
    assert.deepEqual(framer.push(medium), { kind: 'too-large', size: medium.length });
  });

  test('partialPacketBytes: the size of the packet being received once its header is in, 0 otherwise (what the inbound budget reserves)', () => {
    const framer = new PacketFramer(MAX);
    const large = PACKETS[5] as Buffer;
    assert.equal(framer.partialPacketBytes, 0);
    framer.push(large.subarray(0, 1));
    assert.equal(framer.partialPacketBytes, 0, 'first byte only: the size is not known yet');
    framer.push(large.subarray(1, 100));
    assert.equal(framer.partialPacketBytes, large.length);
    framer.push(large.subarray(100, 200));
    assert.equal(framer.partialPacketBytes, large.length, 'unchanged while the body arrives');
    const [next] = PACKETS;
    const result = framer.push(Buffer.concat([large.subarray(200), (next as Buffer).subarray(0, 4)]));
    assert.equal(result.kind === 'packets' ? result.packets.length : -1, 1);
    assert.equal(framer.partialPacketBytes, (next as Buffer).length, 'the next packet, begun in the same chunk');
  });
});
