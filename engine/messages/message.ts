// A published message as the engine sees it (MQTT-shaped: the broker's protocol today), and its
// form as a journal record: the record envelope (./envelope.ts, docs/journal-format.md "Record
// envelope"), with the topic as subject, the payload as value (so `shardline shard dump` shows
// payloads as sent, and a retained clear is a tombstone), the MQTT 5.0 properties every protocol
// understands as neutral headers and the rest in the envelope's MQTT namespace. The record
// timestamp is the publish time, which message expiry counts from.
import type { RecordInput, JournalRecord } from '../../journal/index.js';
import { decodeEnvelope, encodeEnvelope, NO_HEADERS, type MqttRecordProperties, type NeutralHeaders, type QoS, type RecordEnvelope, type UserProperty } from './envelope.js';

export { userPropertyList, type QoS, type UserProperty } from './envelope.js';

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

/**
 * Largest record the broker's shards (data shards, `$retained`, `$sessions` with its wills,
 * `$delayed`) are created to accept: above the default --max-packet-size with room for the
 * topic, client id and properties a record adds, and within what the journal's gRPC messages
 * carry in split topology (journal/server/journal-proto.ts: 64 MiB batches).
 */
export const MESSAGE_RECORD_MAX_BYTES = 64 * 1024 * 1024;

/** Shard settings for a shard that holds messages (the batch must hold the largest record). */
export const MESSAGE_SHARD_LIMITS = { maxRecordBytes: MESSAGE_RECORD_MAX_BYTES, maxBatchBytes: MESSAGE_RECORD_MAX_BYTES } as const;

export function hasProperties(properties: MessageProperties | undefined): properties is MessageProperties {
  if (properties === undefined) return false;
  for (const key in properties) if ((properties as Record<string, unknown>)[key] !== undefined) return true;
  return false;
}

export interface MessageRecordOptions {
  /** Write `value: null`: a retained clear in the compacted `$retained` shard. */
  tombstone?: boolean;
  /**
   * The publish key of a persistent session's keyed publish: after a crash it tells whether the
   * message of a pending key marker reached the journal (engine/sessions/publish-keys.ts).
   */
  publishKey?: number;
}

export function messageToEnvelope(message: Message, options: MessageRecordOptions = {}): RecordEnvelope {
  const mqtt: MqttRecordProperties = { qos: message.qos, retain: message.retain, publisherId: message.publisherId };
  // Kept where release 0.1.0 put it, the MQTT section's packet id header (MQTT is the only
  // front end with keys so far, and they are its 16-bit packet ids).
  if (options.publishKey !== undefined) mqtt.inboundPacketId = options.publishKey;
  let headers = NO_HEADERS;
  const properties = message.properties;
  if (properties !== undefined) {
    headers = {};
    if (properties.contentType !== undefined) headers.contentType = properties.contentType;
    if (properties.userProperties !== undefined) headers.userProperties = properties.userProperties;
    if (properties.messageExpiryInterval !== undefined) headers.timeToLiveMs = properties.messageExpiryInterval * 1000;
    if (properties.correlationData !== undefined) headers.correlation = properties.correlationData;
    if (properties.payloadFormatIndicator !== undefined) mqtt.payloadFormatIndicator = properties.payloadFormatIndicator;
    if (properties.responseTopic !== undefined) mqtt.responseTopic = properties.responseTopic;
  }
  return { subject: message.topic, value: options.tombstone === true ? null : message.payload, headers, timestamp: message.timestamp, mqtt };
}

/** The message an envelope holds, as MQTT sees it (a record without MQTT properties: QoS 0, no publisher). */
export function envelopeToMessage(envelope: RecordEnvelope): Message {
  const { headers, mqtt } = envelope;
  return {
    topic: envelope.subject,
    payload: envelope.value ?? Buffer.alloc(0),
    qos: mqtt?.qos ?? 0,
    retain: mqtt?.retain ?? false,
    publisherId: mqtt?.publisherId ?? '',
    timestamp: envelope.timestamp,
    properties: propertiesOf(headers, mqtt),
  };
}

function propertiesOf(headers: NeutralHeaders, mqtt: MqttRecordProperties | undefined): MessageProperties | undefined {
  // Most messages have none: checked before allocating.
  if (
    headers.timeToLiveMs === undefined &&
    headers.contentType === undefined &&
    headers.correlation === undefined &&
    headers.userProperties === undefined &&
    mqtt?.payloadFormatIndicator === undefined &&
    mqtt?.responseTopic === undefined
  )
    return undefined;
  const properties: MessageProperties = {};
  if (mqtt?.payloadFormatIndicator !== undefined) properties.payloadFormatIndicator = mqtt.payloadFormatIndicator;
  if (headers.timeToLiveMs !== undefined) properties.messageExpiryInterval = headers.timeToLiveMs / 1000;
  if (headers.contentType !== undefined) properties.contentType = headers.contentType;
  if (mqtt?.responseTopic !== undefined) properties.responseTopic = mqtt.responseTopic;
  if (headers.correlation !== undefined) properties.correlationData = headers.correlation;
  if (headers.userProperties !== undefined) properties.userProperties = headers.userProperties;
  return properties;
}

/** The journal record for a message. */
export function messageToRecord(message: Message, options?: MessageRecordOptions): RecordInput {
  return encodeEnvelope(messageToEnvelope(message, options));
}

/** The publisher and publish key a data record carries; undefined when it has none. */
export function publishKeyOf(record: JournalRecord): { publisherId: string; key: number } | undefined {
  const mqtt = decodeEnvelope(record)?.mqtt;
  return mqtt?.inboundPacketId === undefined ? undefined : { publisherId: mqtt.publisherId, key: mqtt.inboundPacketId };
}

/** The message a record holds; undefined for a record that is not a message (no key). */
export function recordToMessage(record: JournalRecord): Message | undefined {
  const envelope = decodeEnvelope(record);
  return envelope === undefined ? undefined : envelopeToMessage(envelope);
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
