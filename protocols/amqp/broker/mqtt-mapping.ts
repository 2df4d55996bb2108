// MQTT messages ↔ AMQP messages on amq.topic, the way RabbitMQ's MQTT plugin maps them. Pure.
// Names: MQTT separates levels with '/', AMQP topic keys words with '.', so the two characters
// trade places both ways (`a/b.c` ↔ `a.b/c`, as RabbitMQ's mqtt_util does); the mapping is its
// own inverse, so a name that crossed once maps back to itself. In a binding key the whole-word
// wildcards `*` and `#` are MQTT's `+` and `#`. Topics in the `$` namespace (the broker's own,
// `$SYS`, `$delayed`) and keys that map to no valid MQTT topic name stay on their own side.
import { checkTopicFilter, checkTopicName, type Message, type MessageProperties, type UserProperty } from '../../../engine/index.js';
import type { BasicProperties } from '../codec/content.js';
import type { FieldValue } from '../codec/field-table.js';

/** The exchange MQTT traffic is routed on. */
export const MQTT_EXCHANGE = 'amq.topic';

/** Headers that carry what MQTT alone knows of a message (RabbitMQ's name for the QoS). */
export const MqttHeaders = {
  qos: 'x-mqtt-publish-qos',
  retain: 'x-mqtt-retain',
  correlationData: 'x-correlation-id',
  payloadFormat: 'x-mqtt-payload-format-indicator',
} as const;

const MQTT_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(MqttHeaders));

function swapSeparators(name: string): string {
  let out = '';
  for (const char of name) out += char === '/' ? '.' : char === '.' ? '/' : char;
  return out;
}

/** The amq.topic routing key of an MQTT topic name. */
export function routingKeyOf(topic: string): string {
  return swapSeparators(topic);
}

/** The MQTT topic name an amq.topic routing key stands for; undefined when it stands for none (AMQP-only). */
export function mqttTopicOf(routingKey: string): string | undefined {
  const topic = swapSeparators(routingKey);
  if (topic.startsWith('$') || !checkTopicName(topic).ok) return undefined;
  return topic;
}

/** The MQTT topic filter an amq.topic binding key stands for; undefined when it stands for none. */
export function mqttFilterOf(bindingKey: string): string | undefined {
  const filter = bindingKey
    .split('.')
    .map((word) => (word === '*' ? '+' : word === '#' ? '#' : swapSeparators(word)))
    .join('/');
  return checkTopicFilter(filter).ok ? filter : undefined;
}

const text = (value: string): FieldValue => ({ type: 'longstr', value: Buffer.from(value) });
const SHORTSTR_MAX = 255;

function shortstr(value: string): boolean {
  return Buffer.byteLength(value) <= SHORTSTR_MAX;
}

/** An MQTT message as routed on amq.topic: routing key, properties, body. */
export function mqttToAmqp(message: Message): { routingKey: string; properties: BasicProperties; body: Buffer } {
  const headers = new Map<string, FieldValue>();
  const properties: BasicProperties = { deliveryMode: message.qos > 0 ? 2 : 1, timestamp: BigInt(Math.floor(message.timestamp / 1000)) };
  const mqtt: MessageProperties = message.properties ?? {};
  // A field table has one value per name: of repeated user properties the last one counts.
  for (const [name, value] of mqtt.userProperties ?? []) if (!MQTT_HEADER_NAMES.has(name)) headers.set(name, text(value));
  headers.set(MqttHeaders.qos, { type: 'uint8', value: message.qos });
  if (message.retain) headers.set(MqttHeaders.retain, { type: 'bool', value: true });
  if (mqtt.contentType !== undefined && shortstr(mqtt.contentType)) properties.contentType = mqtt.contentType;
  if (mqtt.responseTopic !== undefined && shortstr(mqtt.responseTopic)) properties.replyTo = routingKeyOf(mqtt.responseTopic);
  if (mqtt.correlationData !== undefined) {
    const asText = utf8(mqtt.correlationData);
    if (asText !== undefined && shortstr(asText)) properties.correlationId = asText;
    else headers.set(MqttHeaders.correlationData, { type: 'longstr', value: mqtt.correlationData });
  }
  if (mqtt.messageExpiryInterval !== undefined) properties.expiration = String(mqtt.messageExpiryInterval * 1000);
  if (mqtt.payloadFormatIndicator !== undefined) headers.set(MqttHeaders.payloadFormat, { type: 'uint8', value: mqtt.payloadFormatIndicator ? 1 : 0 });
  properties.headers = headers;
  return { routingKey: routingKeyOf(message.topic), properties, body: message.payload };
}

/**
 * The MQTT message an AMQP publish to amq.topic stands for (undefined when its key names no MQTT
 * topic): persistent (delivery-mode 2) is QoS 1, else QoS 0; never retained; headers with a
 * scalar value become user properties.
 */
export function amqpToMqtt(routingKey: string, properties: BasicProperties, body: Buffer, publisherId: string, now: number): Message | undefined {
  const topic = mqttTopicOf(routingKey);
  if (topic === undefined) return undefined;
  const mqtt: MessageProperties = {};
  const userProperties: UserProperty[] = [];
  for (const [name, value] of properties.headers ?? []) {
    if (name === MqttHeaders.correlationData && (value.type === 'longstr' || value.type === 'bytes')) {
      mqtt.correlationData = Buffer.from(value.value);
      continue;
    }
    if (MQTT_HEADER_NAMES.has(name)) continue;
    const scalar = scalarText(value);
    if (scalar !== undefined) userProperties.push([name, scalar]);
  }
  if (userProperties.length > 0) mqtt.userProperties = userProperties;
  if (properties.contentType !== undefined) mqtt.contentType = properties.contentType;
  if (properties.correlationId !== undefined) mqtt.correlationData = Buffer.from(properties.correlationId);
  if (properties.replyTo !== undefined) {
    const responseTopic = mqttTopicOf(properties.replyTo);
    if (responseTopic !== undefined) mqtt.responseTopic = responseTopic;
  }
  if (properties.expiration !== undefined && /^\d{1,15}$/.test(properties.expiration)) {
    // MQTT counts whole seconds; rounding up keeps a message from expiring before its time.
    mqtt.messageExpiryInterval = Math.min(0xffffffff, Math.ceil(Number(properties.expiration) / 1000));
  }
  const hasProperties = Object.keys(mqtt).length > 0;
  return { topic, payload: body, qos: properties.deliveryMode === 2 ? 1 : 0, retain: false, publisherId, timestamp: now, properties: hasProperties ? mqtt : undefined };
}

function scalarText(value: FieldValue): string | undefined {
  switch (value.type) {
    case 'longstr':
    case 'bytes':
      return utf8(Buffer.from(value.value));
    case 'bool':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float':
    case 'double':
    case 'timestamp':
      return String(value.value);
    default:
      return undefined;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
