// Encodes outbound PUBLISH packets without building a packet object when there are no
// properties to send, which is the common case and the hot path of fan-out: one subscriber
// write per message per subscriber. mqtt-packet's generate() covers every other packet (and
// PUBLISH with properties); the two must produce the same bytes, which framing tests check.

/** Topic bytes per topic string, bounded so a stream of unique topics cannot grow it forever. */
const topicCache = new Map<string, Buffer>();
const TOPIC_CACHE_MAX = 4096;

function topicBytes(topic: string): Buffer {
  let bytes = topicCache.get(topic);
  if (bytes === undefined) {
    bytes = Buffer.from(topic, 'utf8');
    if (topicCache.size >= TOPIC_CACHE_MAX) topicCache.clear();
    topicCache.set(topic, bytes);
  }
  return bytes;
}

/**
 * A PUBLISH with no properties (5.0: a zero property length). `version` is the protocol level
 * (3, 4 or 5); `packetId` is ignored for QoS 0.
 */
export function encodePlainPublish(topic: string, payload: Buffer, qos: number, retain: boolean, dup: boolean, packetId: number, version: number): Buffer {
  const head = encodePlainPublishHead(topic, payload.length, qos, retain, dup, packetId, version, payload.length);
  payload.copy(head, head.length - payload.length);
  return head;
}

/**
 * Everything of a property-less PUBLISH before the payload, so a large payload can be written
 * after it as is instead of being copied into one packet buffer per subscriber.
 */
export function encodePlainPublishHead(topic: string, payloadLength: number, qos: number, retain: boolean, dup: boolean, packetId: number, version: number, room = 0): Buffer {
  const topicBuffer = topicBytes(topic);
  const remaining = 2 + topicBuffer.length + (qos > 0 ? 2 : 0) + (version === 5 ? 1 : 0) + payloadLength;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const packet = Buffer.allocUnsafe(1 + lengthBytes + remaining - payloadLength + room);
  packet[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  let at = 1;
  let value = remaining;
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    packet[at++] = byte;
  } while (value > 0);
  packet.writeUInt16BE(topicBuffer.length, at);
  at += 2;
  topicBuffer.copy(packet, at);
  at += topicBuffer.length;
  if (qos > 0) {
    packet.writeUInt16BE(packetId, at);
    at += 2;
  }
  if (version === 5) packet[at] = 0;
  return packet;
}
