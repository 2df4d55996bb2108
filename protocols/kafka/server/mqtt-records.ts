// MQTT messages ↔ Kafka records, for the Kafka topic that shows the MQTT data shards (mqtt-topic.ts).
// Pure. A record's key is the MQTT topic and its value the payload; what MQTT alone knows of a
// message travels in headers named `mqtt.*` (values as text, correlation data as bytes), and
// each MQTT 5.0 user property is one header of its own name. Reading and producing use the
// same names, so a record read from the topic and produced back is the same MQTT message.
import type { JournalRecord } from '../../../journal/index.js';
import { checkTopicName, recordToMessage, type Message, type MessageProperties, type UserProperty } from '../../../engine/index.js';
import type { KafkaRecord, RecordHeader } from '../codec/index.js';
import type { StoredKafkaRecord } from './records.js';

/** The headers that carry MQTT's own fields; any other header is a user property. */
export const MqttHeader = {
  qos: 'mqtt.qos',
  retain: 'mqtt.retain',
  publisher: 'mqtt.publisher',
  contentType: 'mqtt.content-type',
  responseTopic: 'mqtt.response-topic',
  correlationData: 'mqtt.correlation-data',
  messageExpiryInterval: 'mqtt.message-expiry-interval',
  payloadFormatIndicator: 'mqtt.payload-format-indicator',
} as const;

/** QoS of a produced record without an `mqtt.qos` header: a Kafka record is produced to be kept. */
export const DEFAULT_PRODUCED_QOS = 1;

/** The stored MQTT message a data-shard record holds, as a Kafka record; undefined for a record that is not a message. */
export function mqttRecordToKafka(record: JournalRecord): { topic: string; record: StoredKafkaRecord } | undefined {
  const message = recordToMessage(record);
  if (message === undefined) return undefined;
  const text = (key: string, value: string): RecordHeader => ({ key, value: Buffer.from(value) });
  const headers: RecordHeader[] = [text(MqttHeader.qos, String(message.qos))];
  if (message.retain) headers.push(text(MqttHeader.retain, 'true'));
  if (message.publisherId !== '') headers.push(text(MqttHeader.publisher, message.publisherId));
  const properties = message.properties;
  if (properties !== undefined) {
    if (properties.contentType !== undefined) headers.push(text(MqttHeader.contentType, properties.contentType));
    if (properties.responseTopic !== undefined) headers.push(text(MqttHeader.responseTopic, properties.responseTopic));
    if (properties.correlationData !== undefined) headers.push({ key: MqttHeader.correlationData, value: properties.correlationData });
    if (properties.messageExpiryInterval !== undefined) headers.push(text(MqttHeader.messageExpiryInterval, String(properties.messageExpiryInterval)));
    if (properties.payloadFormatIndicator !== undefined) headers.push(text(MqttHeader.payloadFormatIndicator, properties.payloadFormatIndicator ? '1' : '0'));
    for (const [name, value] of properties.userProperties ?? []) headers.push(text(name, value));
  }
  return { topic: message.topic, record: { offset: record.offset, timestamp: record.timestamp, key: Buffer.from(message.topic), value: message.payload, headers } };
}

export type ProducedMessage = { ok: true; message: Message } | { ok: false; reason: string };

/**
 * The MQTT message a record produced to the MQTT topic stands for, published by `publisherId`
 * at `timestamp`; a reason when it cannot be one (no key, a key that is no MQTT topic name, a
 * malformed `mqtt.*` header).
 */
export function kafkaRecordToMqtt(record: KafkaRecord, publisherId: string, timestamp: number): ProducedMessage {
  if (record.key === null) return { ok: false, reason: 'a record produced to the MQTT topic needs a key: the MQTT topic to publish to' };
  const topic = utf8(record.key);
  if (topic === undefined) return { ok: false, reason: 'the record key is not valid UTF-8, so it is no MQTT topic name' };
  const check = checkTopicName(topic);
  if (!check.ok) return { ok: false, reason: check.detail };
  if (topic.startsWith('$')) return { ok: false, reason: `topic ${JSON.stringify(topic)} starts with '$': topics in the $ namespace are the broker's own` };
  let qos: 0 | 1 | 2 = DEFAULT_PRODUCED_QOS;
  let retain = false;
  const properties: MessageProperties = {};
  const userProperties: UserProperty[] = [];
  const seen = new Set<string>();
  for (const header of record.headers) {
    const known = Object.values(MqttHeader).includes(header.key as (typeof MqttHeader)[keyof typeof MqttHeader]);
    // A second header of an MQTT field's name cannot be the field again: it is kept as a user property.
    if (!known || seen.has(header.key)) {
      userProperties.push([header.key, header.value === null ? '' : (utf8(header.value) ?? header.value.toString('latin1'))]);
      continue;
    }
    seen.add(header.key);
    if (header.key === MqttHeader.correlationData) {
      if (header.value !== null) properties.correlationData = header.value;
      continue;
    }
    const value = header.value === null ? '' : utf8(header.value);
    if (value === undefined) return { ok: false, reason: `header ${header.key} is not valid UTF-8` };
    switch (header.key) {
      case MqttHeader.qos:
        if (value !== '0' && value !== '1' && value !== '2') return { ok: false, reason: `header ${MqttHeader.qos} is ${JSON.stringify(value)}; it must be 0, 1 or 2` };
        qos = Number(value) as 0 | 1 | 2;
        break;
      case MqttHeader.retain:
        if (!['true', 'false', '1', '0'].includes(value)) return { ok: false, reason: `header ${MqttHeader.retain} is ${JSON.stringify(value)}; it must be true or false` };
        retain = value === 'true' || value === '1';
        break;
      case MqttHeader.contentType:
        properties.contentType = value;
        break;
      case MqttHeader.responseTopic: {
        const responseCheck = checkTopicName(value);
        if (!responseCheck.ok) return { ok: false, reason: `header ${MqttHeader.responseTopic}: ${responseCheck.detail}` };
        properties.responseTopic = value;
        break;
      }
      case MqttHeader.messageExpiryInterval: {
        const seconds = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
        if (!(seconds <= 0xffffffff)) return { ok: false, reason: `header ${MqttHeader.messageExpiryInterval} is ${JSON.stringify(value)}; it must be whole seconds, 0 to 4294967295` };
        properties.messageExpiryInterval = seconds;
        break;
      }
      case MqttHeader.payloadFormatIndicator:
        if (value !== '0' && value !== '1') return { ok: false, reason: `header ${MqttHeader.payloadFormatIndicator} is ${JSON.stringify(value)}; it must be 0 or 1` };
        properties.payloadFormatIndicator = value === '1';
        break;
      // mqtt.publisher is who published a message read from the topic: a producer cannot claim it.
    }
  }
  const payload = record.value ?? Buffer.alloc(0);
  if (properties.payloadFormatIndicator === true && utf8(payload) === undefined) return { ok: false, reason: `header ${MqttHeader.payloadFormatIndicator} says UTF-8, and the value is not valid UTF-8` };
  if (userProperties.length > 0) properties.userProperties = userProperties;
  const hasProperties = Object.keys(properties).length > 0;
  return { ok: true, message: { topic, payload, qos, retain, publisherId, timestamp, properties: hasProperties ? properties : undefined } };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
