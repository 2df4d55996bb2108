// A published message as the engine sees it, and its form as a journal record.
//
// Record layout (data shards and the compacted `$retained` shard alike): key = topic name
// (UTF-8), value = the payload untouched (so `shardline shard dump` shows payloads as sent, and
// a retained clear is a tombstone), headers carry the rest. The `pub` header is what the
// publish QoS and retain flag were; `props` holds the MQTT 5.0 application properties as JSON
// (only when there are any, so the common record stays small). The record timestamp is the
// publish time, which message expiry counts from. `q2` (u16 big-endian) is the packet id of a
// QoS 2 PUBLISH from a persistent session: after a crash it tells whether the message of an
// inbound QoS 2 marker reached the journal (engine/sessions/inbound-qos2.ts).
import type { RecordHeader, RecordInput, JournalRecord } from '../../journal/index.js';

export type QoS = 0 | 1 | 2;

/** The properties a publisher sets that travel with the message to every subscriber. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  /** Seconds from the publish time; counted down on delivery. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** Name/value pairs in the order the publisher sent them, duplicates kept (MQTT-3.3.2-18). */
  userProperties?: UserProperty[];
}

export type UserProperty = [name: string, value: string];

export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Client id of the publisher ('' when the broker itself publishes); used by no-local. */
  publisherId: string;
  /** Epoch ms when the broker accepted it. */
  timestamp: number;
  properties: MessageProperties | undefined;
}

const PUBLISH_HEADER = 'pub';
const PROPS_HEADER = 'props';
const FROM_HEADER = 'from';
const INBOUND_QOS2_HEADER = 'q2';

interface StoredProperties extends Omit<MessageProperties, 'correlationData' | 'userProperties'> {
  correlationData?: string;
  userProperties?: UserProperty[] | Record<string, string | string[]>;
}

function encodeProperties(properties: MessageProperties): Buffer {
  const stored: StoredProperties = { ...properties, correlationData: properties.correlationData?.toString('base64') };
  if (stored.correlationData === undefined) delete stored.correlationData;
  return Buffer.from(JSON.stringify(stored));
}

function decodeProperties(raw: Buffer): MessageProperties {
  const stored = JSON.parse(raw.toString('utf8')) as StoredProperties;
  const { correlationData, userProperties, ...rest } = stored;
  const properties: MessageProperties = userProperties === undefined ? rest : { ...rest, userProperties: userPropertyList(userProperties) };
  return correlationData === undefined ? properties : { ...properties, correlationData: Buffer.from(correlationData, 'base64') };
}

/**
 * User properties as stored: a list of pairs since the order is kept; records written before
 * that (on users' disks) hold an object of name to value or values, read here as pairs grouped
 * by name, the order those records had kept.
 */
export function userPropertyList(stored: UserProperty[] | Record<string, string | string[]>): UserProperty[] {
  if (Array.isArray(stored)) return stored;
  const pairs: UserProperty[] = [];
  for (const [name, value] of Object.entries(stored)) {
    if (Array.isArray(value)) for (const item of value) pairs.push([name, item]);
    else pairs.push([name, value]);
  }
  return pairs;
}

export function hasProperties(properties: MessageProperties | undefined): properties is MessageProperties {
  if (properties === undefined) return false;
  for (const key in properties) if ((properties as Record<string, unknown>)[key] !== undefined) return true;
  return false;
}

/** The journal record for a message; `value: null` (a tombstone) when `tombstone` is set. */
/** The `pub` header values, one per QoS/retain combination (records never change them). */
const FLAG_VALUES = Array.from({ length: 8 }, (_, flags) => Buffer.from([flags]));
/** Publisher id bytes, cached: a publisher sends many messages (bounded for many publishers). */
const publisherBytes = new Map<string, Buffer>();
const PUBLISHER_CACHE_MAX = 4096;

function publisherIdBytes(publisherId: string): Buffer {
  let bytes = publisherBytes.get(publisherId);
  if (bytes === undefined) {
    if (publisherBytes.size >= PUBLISHER_CACHE_MAX) publisherBytes.clear();
    bytes = Buffer.from(publisherId);
    publisherBytes.set(publisherId, bytes);
  }
  return bytes;
}

/**
 * Largest record the broker's shards (data shards, `$retained`, `$sessions` with its wills,
 * `$delayed`) are created to accept: above the default --max-packet-size with room for the
 * topic, client id and properties a record adds, and within what the journal's gRPC messages
 * carry in split topology (journal/server/journal-proto.ts: 64 MiB batches).
 */
export const MESSAGE_RECORD_MAX_BYTES = 64 * 1024 * 1024;

/** Shard settings for a shard that holds messages (the batch must hold the largest record). */
export const MESSAGE_SHARD_LIMITS = { maxRecordBytes: MESSAGE_RECORD_MAX_BYTES, maxBatchBytes: MESSAGE_RECORD_MAX_BYTES } as const;

export function messageToRecord(message: Message, tombstone = false): RecordInput {
  const headers: RecordHeader[] = [
    { key: PUBLISH_HEADER, value: FLAG_VALUES[message.qos | (message.retain ? 4 : 0)] as Buffer },
    { key: FROM_HEADER, value: publisherIdBytes(message.publisherId) },
  ];
  if (hasProperties(message.properties)) headers.push({ key: PROPS_HEADER, value: encodeProperties(message.properties) });
  return { key: Buffer.from(message.topic), value: tombstone ? null : message.payload, headers, timestamp: message.timestamp };
}

/** Marks the record of a client's QoS 2 PUBLISH with its packet id (see the header comment). */
export function withInboundPacketId(record: RecordInput, packetId: number): RecordInput {
  const value = Buffer.alloc(2);
  value.writeUInt16BE(packetId);
  return { ...record, headers: [...(record.headers ?? []), { key: INBOUND_QOS2_HEADER, value }] };
}

/** The publisher and inbound QoS 2 packet id a data record carries; undefined when it has none. */
export function inboundPacketIdOf(record: JournalRecord): { publisherId: string; packetId: number } | undefined {
  let publisherId: string | undefined;
  let packetId: number | undefined;
  for (const header of record.headers) {
    if (header.key === FROM_HEADER) publisherId = header.value.toString('utf8');
    else if (header.key === INBOUND_QOS2_HEADER && header.value.length === 2) packetId = header.value.readUInt16BE(0);
  }
  return publisherId === undefined || packetId === undefined ? undefined : { publisherId, packetId };
}

/** The message a record holds; undefined for a record that is not a message (no key). */
export function recordToMessage(record: JournalRecord): Message | undefined {
  if (record.key === null) return undefined;
  let flags = 0;
  let publisherId = '';
  let properties: MessageProperties | undefined;
  for (const header of record.headers) {
    if (header.key === PUBLISH_HEADER) flags = header.value[0] ?? 0;
    else if (header.key === FROM_HEADER) publisherId = header.value.toString('utf8');
    else if (header.key === PROPS_HEADER) properties = decodeProperties(header.value);
  }
  return {
    topic: record.key.toString('utf8'),
    payload: record.value ?? Buffer.alloc(0),
    qos: (flags & 3) as QoS,
    retain: (flags & 4) !== 0,
    publisherId,
    timestamp: record.timestamp,
    properties,
  };
}

/** Epoch ms after which the message must not be delivered; Infinity when it never expires. */
export function expiresAt(message: Message): number {
  const interval = message.properties?.messageExpiryInterval;
  return interval === undefined ? Number.POSITIVE_INFINITY : message.timestamp + interval * 1000;
}

/** The properties to deliver at `now`: message expiry counted down (MQTT-3.3.2-6). */
export function propertiesAt(message: Message, now: number): MessageProperties | undefined {
  const properties = message.properties;
  if (properties?.messageExpiryInterval === undefined) return properties;
  const remaining = Math.max(0, Math.ceil((expiresAt(message) - now) / 1000));
  return { ...properties, messageExpiryInterval: remaining };
}

/** Approximate bytes a queued delivery holds, for the per-client queue bound. */
export function messageSize(message: Message): number {
  // Payload and topic plus what a queued delivery costs besides: message, delivery, record objects.
  return message.payload.length + message.topic.length + 320;
}
