// Checks and conversions of packet fields that the connection applies on top of the strict
// validation (packet-validation.ts) and mqtt-packet's decoding: pure functions of bytes and
// decoded values, no connection state.
import type { MessageProperties } from '../../engine/index.js';
import type { UserProperty } from './packet-validation.js';

/** The protocol name and level of a raw CONNECT, or undefined when the name is unknown. */
export function connectLevel(raw: Buffer): { name: string; level: number } | undefined {
  let position = 1;
  while (position < raw.length && ((raw[position] as number) & 0x80) !== 0) position += 1;
  position += 1;
  if (position + 2 > raw.length) return undefined;
  const nameLength = raw.readUInt16BE(position);
  const name = raw.toString('latin1', position + 2, position + 2 + nameLength);
  const levelAt = position + 2 + nameLength;
  if ((name !== 'MQTT' && name !== 'MQIsdp') || levelAt >= raw.length) return undefined;
  // Bit 7 marks a bridge in some brokers' dialects; the level is the low bits.
  return { name, level: (raw[levelAt] as number) & 0x7f };
}

/**
 * MQTT-1.5.4-2: no U+0000. The bytes were checked as well-formed UTF-8 before decoding
 * (packet-validation.ts, or the plain PUBLISH decoder), so a U+FFFD here is one the client sent.
 */
export function isCleanString(value: string): boolean {
  return !value.includes('\u0000');
}

/**
 * The application properties of a 5.0 PUBLISH or will, without the transport ones (alias, ...).
 * `userProperties` are the pairs read from the packet's bytes in order (mqtt-packet's object
 * form groups them by name, MQTT-3.3.2-18 wants them as sent).
 */
export function messageProperties(source: Omit<MessageProperties, 'userProperties'>, userProperties: UserProperty[] | undefined): MessageProperties | undefined {
  const out: MessageProperties = {};
  if (source.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = source.payloadFormatIndicator;
  if (source.messageExpiryInterval !== undefined) out.messageExpiryInterval = source.messageExpiryInterval;
  if (source.contentType !== undefined) out.contentType = source.contentType;
  if (source.responseTopic !== undefined) out.responseTopic = source.responseTopic;
  if (source.correlationData !== undefined) out.correlationData = source.correlationData;
  if (userProperties !== undefined) out.userProperties = userProperties;
  return Object.keys(out).length === 0 ? undefined : out;
}
