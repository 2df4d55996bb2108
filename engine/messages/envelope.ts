// The record envelope: how a message of any protocol is laid out in a journal record (data
// shards, `$retained`, `$delayed`). The journal's own record format (key, value, headers) does
// not change; the envelope is a convention over it, versioned by its `v` header. The byte-level
// contract, and how records of release 0.1.0 (no `v` header) are read, is docs/journal-format.md,
// "Record envelope". Pure: no I/O.
//
// Neutral fields are what every protocol can map: MQTT topic, AMQP routing key and Kafka topic
// are all a subject; a Kafka key is the application key. What only one protocol means lives in
// that protocol's namespace (`mqtt`, headers named `mqtt` and `mqtt.*`): a reader of another
// protocol ignores it. Fields are separate headers rather than one blob so `shardline shard
// dump` shows them and a later version can add one that older readers skip.
import type { JournalRecord, RecordHeader, RecordInput } from '../../journal/index.js';
import { EnvelopeErrors } from './envelope-errors.js';

export const ENVELOPE_VERSION = 1;

export type QoS = 0 | 1 | 2;

export type UserProperty = [name: string, value: string];

/** Headers every protocol understands. */
export interface NeutralHeaders {
  contentType?: string;
  /** Name/value pairs in the order the producer sent them, duplicates kept. */
  userProperties?: UserProperty[];
  /** Milliseconds after the record's timestamp from which it must not be delivered. */
  timeToLiveMs?: number;
  correlation?: Buffer;
}

/** What MQTT alone means by a record: its namespace of the envelope. */
export interface MqttRecordProperties {
  qos: QoS;
  retain: boolean;
  /** Client id of the publisher ('' when the broker itself publishes); used by no-local. */
  publisherId: string;
  payloadFormatIndicator?: boolean;
  responseTopic?: string;
  /** Packet id of a QoS 2 PUBLISH from a persistent session (engine/sessions/inbound-qos2.ts). */
  inboundPacketId?: number;
}

/** Who produced the record and its place in that producer's sequence (Kafka idempotence). */
export interface ProducerSequence {
  id: number;
  sequence: number;
}

export interface RecordEnvelope {
  subject: string;
  /** The application's key (a Kafka key; what a compacted shard keeps the latest of); undefined: the subject is. */
  key?: Buffer;
  /** null: a tombstone. */
  value: Buffer | null;
  headers: NeutralHeaders;
  /** Epoch ms when the record was accepted. */
  timestamp: number;
  producer?: ProducerSequence;
  mqtt?: MqttRecordProperties;
}

const VERSION = 'v';
const SUBJECT = 'subj';
const CONTENT_TYPE = 'ct';
const USER_PROPERTIES = 'up';
const TIME_TO_LIVE = 'ttl';
const CORRELATION = 'cor';
const PRODUCER = 'prod';
const MQTT = 'mqtt';
const MQTT_RESPONSE_TOPIC = 'mqtt.rt';
const MQTT_INBOUND_PACKET_ID = 'mqtt.q2';

// Release 0.1.0's headers (version 0): flags byte, publisher id, 5.0 properties as JSON, packet id.
const LEGACY_FLAGS = 'pub';
const LEGACY_PUBLISHER = 'from';
const LEGACY_PROPERTIES = 'props';
const LEGACY_INBOUND_PACKET_ID = 'q2';

/** Every record's first header, one object for all (frozen: records share it). */
const VERSION_HEADER: RecordHeader = Object.freeze({ key: VERSION, value: Buffer.from([ENVELOPE_VERSION]) });
/** The largest time to live the 6-byte `ttl` field holds (about 8,900 years). */
const TIME_TO_LIVE_MAX = 2 ** 48 - 1;

// The `mqtt` header: one flags byte, then the publisher id (UTF-8) to the end. Flags: bits 0-1
// QoS, bit 2 retain, bits 3-4 payload format indicator (0 absent, 1 false, 2 true).
const RETAIN_BIT = 4;
const FORMAT_SHIFT = 3;

function mqttFlags(mqtt: MqttRecordProperties): number {
  const format = mqtt.payloadFormatIndicator === undefined ? 0 : mqtt.payloadFormatIndicator ? 2 : 1;
  return mqtt.qos | (mqtt.retain ? RETAIN_BIT : 0) | (format << FORMAT_SHIFT);
}

/**
 * `mqtt` header values per publisher and flags, cached: a publisher sends many messages, and the
 * publish path then allocates nothing for them (bounded for many publishers).
 */
const mqttValues = new Map<string, Array<Buffer | undefined>>();
const MQTT_VALUE_CACHE_MAX = 4096;

function mqttValue(mqtt: MqttRecordProperties): Buffer {
  let byFlags = mqttValues.get(mqtt.publisherId);
  if (byFlags === undefined) {
    if (mqttValues.size >= MQTT_VALUE_CACHE_MAX) mqttValues.clear();
    byFlags = [];
    mqttValues.set(mqtt.publisherId, byFlags);
  }
  const flags = mqttFlags(mqtt);
  let value = byFlags[flags];
  if (value === undefined) {
    value = Buffer.concat([Buffer.from([flags]), Buffer.from(mqtt.publisherId)]);
    byFlags[flags] = value;
  }
  return value;
}

function encodeUserProperties(pairs: readonly UserProperty[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  (parts[0] as Buffer).writeUInt32BE(pairs.length);
  for (const [name, value] of pairs) {
    for (const text of [name, value]) {
      const bytes = Buffer.from(text);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      parts.push(length, bytes);
    }
  }
  return Buffer.concat(parts);
}

function decodeUserProperties(bytes: Buffer): UserProperty[] {
  if (bytes.length < 4) throw EnvelopeErrors.malformed.create({}, USER_PROPERTIES, 'shorter than its count');
  const count = bytes.readUInt32BE(0);
  const pairs: UserProperty[] = [];
  let at = 4;
  const text = (): string => {
    if (at + 4 > bytes.length) throw EnvelopeErrors.malformed.create({}, USER_PROPERTIES, 'a length runs past the end');
    const length = bytes.readUInt32BE(at);
    at += 4;
    if (at + length > bytes.length) throw EnvelopeErrors.malformed.create({}, USER_PROPERTIES, 'a string runs past the end');
    const value = bytes.toString('utf8', at, at + length);
    at += length;
    return value;
  };
  // Each pair takes at least 8 bytes, so a count the bytes cannot hold fails before the loop runs long.
  if (count > (bytes.length - 4) / 8) throw EnvelopeErrors.malformed.create({}, USER_PROPERTIES, `count ${count} does not fit in ${bytes.length} bytes`);
  for (let i = 0; i < count; i += 1) pairs.push([text(), text()]);
  if (at !== bytes.length) throw EnvelopeErrors.malformed.create({}, USER_PROPERTIES, 'bytes after the last pair');
  return pairs;
}

// `prod`: u64 producer id (a safe integer), u32 sequence.
function encodeProducer(producer: ProducerSequence): Buffer {
  if (!Number.isSafeInteger(producer.id) || producer.id < 0) throw EnvelopeErrors.malformed.create({}, PRODUCER, `producer id ${producer.id} is not a safe non-negative integer`);
  if (!Number.isInteger(producer.sequence) || producer.sequence < 0 || producer.sequence > 0xffffffff) throw EnvelopeErrors.malformed.create({}, PRODUCER, `sequence ${producer.sequence} is not a u32`);
  const value = Buffer.alloc(12);
  value.writeUInt32BE(Math.floor(producer.id / 2 ** 32), 0);
  value.writeUInt32BE(producer.id % 2 ** 32, 4);
  value.writeUInt32BE(producer.sequence, 8);
  return value;
}

function decodeProducer(value: Buffer): ProducerSequence {
  checkedLength(PRODUCER, value, 12);
  const id = value.readUInt32BE(0) * 2 ** 32 + value.readUInt32BE(4);
  if (!Number.isSafeInteger(id)) throw EnvelopeErrors.malformed.create({}, PRODUCER, 'producer id above 2^53');
  return { id, sequence: value.readUInt32BE(8) };
}

function checkedLength(name: string, value: Buffer, length: number): Buffer {
  if (value.length !== length) throw EnvelopeErrors.malformed.create({}, name, `${value.length} bytes, expected ${length}`);
  return value;
}

/** The journal record of an envelope. */
export function encodeEnvelope(envelope: RecordEnvelope): RecordInput {
  const headers: RecordHeader[] = [VERSION_HEADER];
  const { mqtt, headers: neutral, producer } = envelope;
  if (mqtt !== undefined) headers.push({ key: MQTT, value: mqttValue(mqtt) });
  if (envelope.key !== undefined) headers.push({ key: SUBJECT, value: Buffer.from(envelope.subject) });
  if (neutral.contentType !== undefined) headers.push({ key: CONTENT_TYPE, value: Buffer.from(neutral.contentType) });
  if (neutral.userProperties !== undefined) headers.push({ key: USER_PROPERTIES, value: encodeUserProperties(neutral.userProperties) });
  if (neutral.timeToLiveMs !== undefined) {
    const ttl = neutral.timeToLiveMs;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > TIME_TO_LIVE_MAX) throw EnvelopeErrors.malformed.create({}, TIME_TO_LIVE, `${ttl} is not an integer from 0 to ${TIME_TO_LIVE_MAX}`);
    const value = Buffer.alloc(6);
    value.writeUIntBE(ttl, 0, 6);
    headers.push({ key: TIME_TO_LIVE, value });
  }
  if (neutral.correlation !== undefined) headers.push({ key: CORRELATION, value: neutral.correlation });
  if (producer !== undefined) headers.push({ key: PRODUCER, value: encodeProducer(producer) });
  if (mqtt?.responseTopic !== undefined) headers.push({ key: MQTT_RESPONSE_TOPIC, value: Buffer.from(mqtt.responseTopic) });
  if (mqtt?.inboundPacketId !== undefined) {
    const value = Buffer.alloc(2);
    value.writeUInt16BE(mqtt.inboundPacketId);
    headers.push({ key: MQTT_INBOUND_PACKET_ID, value });
  }
  return { key: envelope.key ?? Buffer.from(envelope.subject), value: envelope.value, headers, timestamp: envelope.timestamp };
}

/** Release 0.1.0's `props` header: the MQTT 5.0 properties as JSON. */
interface LegacyProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  userProperties?: UserProperty[] | Record<string, string | string[]>;
}

/**
 * User properties as release 0.1.0 stored them: a list of pairs; records written before the
 * order was kept hold an object of name to value or values, read here as pairs grouped by name,
 * the order those records had kept.
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

/** Release 0.1.0's `props` header, as the fields of an envelope. */
function legacyProperties(raw: Buffer): { headers: NeutralHeaders; payloadFormatIndicator: boolean | undefined; responseTopic: string | undefined } {
  let stored: LegacyProperties;
  try {
    stored = JSON.parse(raw.toString('utf8')) as LegacyProperties;
  } catch (error) {
    throw EnvelopeErrors.malformed.withCause(error, {}, LEGACY_PROPERTIES, 'not JSON');
  }
  const headers: NeutralHeaders = {};
  if (stored.contentType !== undefined) headers.contentType = stored.contentType;
  if (stored.userProperties !== undefined) headers.userProperties = userPropertyList(stored.userProperties);
  if (stored.messageExpiryInterval !== undefined) headers.timeToLiveMs = stored.messageExpiryInterval * 1000;
  if (stored.correlationData !== undefined) headers.correlation = Buffer.from(stored.correlationData, 'base64');
  return { headers, payloadFormatIndicator: stored.payloadFormatIndicator, responseTopic: stored.responseTopic };
}

/** The neutral headers of a record that has none, shared (most MQTT records). */
export const NO_HEADERS: NeutralHeaders = Object.freeze({});

/**
 * The envelope a record holds; undefined for a record that is not one (no key). Reads version 1
 * and release 0.1.0's layout (version 0, no `v` header) alike; headers it does not know are
 * skipped, so a later version may add some. Optional fields it did not find are present as
 * undefined (one object shape per type keeps the hot read path fast).
 */
export function decodeEnvelope(record: JournalRecord): RecordEnvelope | undefined {
  if (record.key === null) return undefined;
  let version = 0;
  let flags = 0;
  let hasMqtt = false;
  let publisherId = '';
  let subject: string | undefined;
  let headers = NO_HEADERS;
  let producer: ProducerSequence | undefined;
  let payloadFormatIndicator: boolean | undefined;
  let responseTopic: string | undefined;
  let inboundPacketId: number | undefined;
  const all = record.headers;
  for (let i = 0; i < all.length; i += 1) {
    const { key, value } = all[i] as RecordHeader;
    switch (key) {
      case VERSION:
        version = checkedLength(VERSION, value, 1)[0] as number;
        if (version !== ENVELOPE_VERSION) throw EnvelopeErrors.unsupportedVersion.create({ offset: record.offset }, version, ENVELOPE_VERSION);
        break;
      case MQTT: {
        if (value.length < 1) throw EnvelopeErrors.malformed.create({}, MQTT, 'empty');
        hasMqtt = true;
        flags = value[0] as number;
        const format = (flags >> FORMAT_SHIFT) & 3;
        if ((flags & 3) === 3 || format === 3 || flags >> (FORMAT_SHIFT + 2) !== 0) throw EnvelopeErrors.malformed.create({}, MQTT, `flags 0x${flags.toString(16)}`);
        if (format !== 0) payloadFormatIndicator = format === 2;
        publisherId = value.toString('utf8', 1);
        break;
      }
      case SUBJECT:
        subject = value.toString('utf8');
        break;
      case CONTENT_TYPE:
        if (headers === NO_HEADERS) headers = {};
        headers.contentType = value.toString('utf8');
        break;
      case USER_PROPERTIES:
        if (headers === NO_HEADERS) headers = {};
        headers.userProperties = decodeUserProperties(value);
        break;
      case TIME_TO_LIVE:
        if (headers === NO_HEADERS) headers = {};
        headers.timeToLiveMs = checkedLength(TIME_TO_LIVE, value, 6).readUIntBE(0, 6);
        break;
      case CORRELATION:
        if (headers === NO_HEADERS) headers = {};
        headers.correlation = value;
        break;
      case PRODUCER:
        producer = decodeProducer(value);
        break;
      case MQTT_RESPONSE_TOPIC:
        responseTopic = value.toString('utf8');
        break;
      case MQTT_INBOUND_PACKET_ID:
        inboundPacketId = checkedLength(MQTT_INBOUND_PACKET_ID, value, 2).readUInt16BE(0);
        break;
      case LEGACY_FLAGS:
        // Release 0.1.0 kept only QoS and retain here.
        flags = (value[0] ?? 0) & (3 | RETAIN_BIT);
        break;
      case LEGACY_PUBLISHER:
        publisherId = value.toString('utf8');
        break;
      case LEGACY_PROPERTIES: {
        const legacy = legacyProperties(value);
        headers = legacy.headers;
        payloadFormatIndicator = legacy.payloadFormatIndicator;
        responseTopic = legacy.responseTopic;
        break;
      }
      case LEGACY_INBOUND_PACKET_ID:
        // Release 0.1.0 wrote two bytes; anything else was never its packet id.
        if (value.length === 2) inboundPacketId = value.readUInt16BE(0);
        break;
      default:
        break;
    }
  }
  // Every record of version 0 is an MQTT record; one of version 1 is when it has `mqtt`.
  const mqtt: MqttRecordProperties | undefined =
    version === 0 || hasMqtt ? { qos: (flags & 3) as QoS, retain: (flags & RETAIN_BIT) !== 0, publisherId, payloadFormatIndicator, responseTopic, inboundPacketId } : undefined;
  return {
    subject: subject ?? record.key.toString('utf8'),
    key: subject === undefined ? undefined : record.key,
    value: record.value,
    headers,
    timestamp: record.timestamp,
    producer,
    mqtt,
  };
}
