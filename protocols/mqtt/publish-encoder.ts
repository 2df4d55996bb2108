// Encodes outbound PUBLISH packets without building a packet object when there are no
// properties to send, which is the common case and the hot path of fan-out: one subscriber
// write per message per subscriber. SharedPlainPublish encodes such a packet once per message
// and shape and hands each subscriber the same bytes (QoS 0) or a copy with its packet id and
// DUP patched. mqtt-packet's generate() covers every other packet (and PUBLISH with
// properties); they must produce the same bytes, which property tests check.

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

interface Template {
  bytes: Buffer;
  /** Where the packet id goes (QoS 1/2). */
  idAt: number;
}

/**
 * Property-less PUBLISH packets of one message, encoded once per shape (QoS, retain, protocol
 * level, head only or whole) while the fan-out of that message runs: the deliveries of one
 * message to its subscribers are encoded one after the other, so one message is kept (the
 * last one asked for) and the next message replaces it. Bytes handed out are never written to
 * again: a QoS 0 packet is shared by every subscriber, a QoS 1/2 one is a copy with its own
 * packet id and DUP.
 */
export class SharedPlainPublish {
  #message: object | undefined;
  readonly #templates = new Map<number, Template>();

  /**
   * The packet for one subscriber: `message` is the identity the bytes are kept under (the same
   * object means the same topic and payload). With `headOnly` the payload is not included
   * (written after the head by the caller, as encodePlainPublishHead).
   */
  encode(message: object, topic: string, payload: Buffer, qos: number, retain: boolean, dup: boolean, packetId: number, version: number, headOnly: boolean): Buffer {
    if (this.#message !== message) {
      this.#message = message;
      this.#templates.clear();
    }
    const shape = qos | (retain ? 4 : 0) | (version << 3) | (headOnly ? 64 : 0);
    let template = this.#templates.get(shape);
    if (template === undefined) {
      const bytes = headOnly ? encodePlainPublishHead(topic, payload.length, qos, retain, false, 0, version) : encodePlainPublish(topic, payload, qos, retain, false, 0, version);
      const topicLength = topicBytes(topic).length;
      const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (version === 5 ? 1 : 0) + payload.length;
      template = { bytes, idAt: 1 + varintLength(remaining) + 2 + topicLength };
      this.#templates.set(shape, template);
    }
    if (qos === 0 && !dup) return template.bytes;
    const copy = Buffer.allocUnsafe(template.bytes.length);
    template.bytes.copy(copy);
    if (dup) copy[0] = (copy[0] as number) | 0x08;
    if (qos > 0) copy.writeUInt16BE(packetId, template.idAt);
    return copy;
  }
}

/** What a 5.0 PUBLISH toward a client may carry; user properties as ordered pairs. */
export interface OutboundPublishProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  topicAlias?: number;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: ReadonlyArray<readonly [string, string]>;
  subscriptionIds?: readonly number[];
  contentType?: string;
}

function varintLength(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}

function writeVarint(packet: Buffer, at: number, value: number): number {
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    packet[at++] = byte;
  } while (rest > 0);
  return at;
}

function writeBytes(packet: Buffer, at: number, bytes: Buffer): number {
  packet.writeUInt16BE(bytes.length, at);
  bytes.copy(packet, at + 2);
  return at + 2 + bytes.length;
}

/**
 * A 5.0 PUBLISH with properties. mqtt-packet takes User Properties as an object, which groups
 * them by name; MQTT-3.3.2-18 wants them in the order the publisher sent them, so this encoder
 * writes the pairs as listed. Property order otherwise follows mqtt-packet's (tests compare
 * the bytes with generate() for inputs an object can represent).
 */
export function encodePublishWithProperties(topic: string, payload: Buffer, qos: number, retain: boolean, dup: boolean, packetId: number, properties: OutboundPublishProperties): Buffer {
  const topicBuffer = topicBytes(topic);
  const responseTopic = properties.responseTopic === undefined ? undefined : Buffer.from(properties.responseTopic, 'utf8');
  const contentType = properties.contentType === undefined ? undefined : Buffer.from(properties.contentType, 'utf8');
  const pairs = properties.userProperties?.map(([name, value]) => [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')] as const);
  let propertiesLength = 0;
  if (properties.payloadFormatIndicator !== undefined) propertiesLength += 2;
  if (properties.messageExpiryInterval !== undefined) propertiesLength += 5;
  if (properties.topicAlias !== undefined) propertiesLength += 3;
  if (responseTopic !== undefined) propertiesLength += 3 + responseTopic.length;
  if (properties.correlationData !== undefined) propertiesLength += 3 + properties.correlationData.length;
  for (const [name, value] of pairs ?? []) propertiesLength += 5 + name.length + value.length;
  for (const id of properties.subscriptionIds ?? []) propertiesLength += 1 + varintLength(id);
  if (contentType !== undefined) propertiesLength += 3 + contentType.length;
  const remaining = 2 + topicBuffer.length + (qos > 0 ? 2 : 0) + varintLength(propertiesLength) + propertiesLength + payload.length;
  const packet = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  packet[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  let at = writeVarint(packet, 1, remaining);
  at = writeBytes(packet, at, topicBuffer);
  if (qos > 0) {
    packet.writeUInt16BE(packetId, at);
    at += 2;
  }
  at = writeVarint(packet, at, propertiesLength);
  if (properties.payloadFormatIndicator !== undefined) {
    packet[at++] = 0x01;
    packet[at++] = properties.payloadFormatIndicator ? 1 : 0;
  }
  if (properties.messageExpiryInterval !== undefined) {
    packet[at++] = 0x02;
    packet.writeUInt32BE(properties.messageExpiryInterval, at);
    at += 4;
  }
  if (properties.topicAlias !== undefined) {
    packet[at++] = 0x23;
    packet.writeUInt16BE(properties.topicAlias, at);
    at += 2;
  }
  if (responseTopic !== undefined) {
    packet[at++] = 0x08;
    at = writeBytes(packet, at, responseTopic);
  }
  if (properties.correlationData !== undefined) {
    packet[at++] = 0x09;
    at = writeBytes(packet, at, properties.correlationData);
  }
  for (const [name, value] of pairs ?? []) {
    packet[at++] = 0x26;
    at = writeBytes(packet, at, name);
    at = writeBytes(packet, at, value);
  }
  for (const id of properties.subscriptionIds ?? []) {
    packet[at++] = 0x0b;
    at = writeVarint(packet, at, id);
  }
  if (contentType !== undefined) {
    packet[at++] = 0x03;
    at = writeBytes(packet, at, contentType);
  }
  payload.copy(packet, at);
  return packet;
}
