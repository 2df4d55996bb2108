// Decodes an inbound PUBLISH without mqtt-packet when it has no properties (3.1, 3.1.1, and
// 5.0 with a zero property length): the fan-in hot path. Anything else (5.0 properties, odd
// input) returns undefined and goes through mqtt-packet, which also produces its error texts.
import { isUtf8 } from 'node:buffer';
import type { IPublishPacket } from 'mqtt-packet';

export type PlainPublish = Pick<IPublishPacket, 'cmd' | 'topic' | 'payload' | 'qos' | 'retain' | 'dup' | 'messageId'>;

/** The PUBLISH in `raw` (one whole packet), or undefined to fall back to the general parser. */
export function decodePlainPublish(raw: Buffer, version: number): PlainPublish | undefined {
  const flags = (raw[0] as number) & 0x0f;
  const qos = (flags >> 1) & 3;
  if (qos === 3) return undefined;
  let at = 1;
  while (((raw[at] as number) & 0x80) !== 0) at += 1;
  at += 1;
  if (at + 2 > raw.length) return undefined;
  const topicLength = raw.readUInt16BE(at);
  at += 2;
  if (at + topicLength > raw.length) return undefined;
  const topicBytes = raw.subarray(at, at + topicLength);
  // Invalid UTF-8 is refused by the caller with its own reason code; let the slow path see it.
  if (!isUtf8(topicBytes)) return undefined;
  at += topicLength;
  let messageId: number | undefined;
  if (qos > 0) {
    if (at + 2 > raw.length) return undefined;
    messageId = raw.readUInt16BE(at);
    at += 2;
  }
  if (version === 5) {
    if (at >= raw.length || raw[at] !== 0) return undefined;
    at += 1;
  }
  return {
    cmd: 'publish',
    topic: topicBytes.toString('utf8'),
    payload: raw.subarray(at),
    qos: qos as 0 | 1 | 2,
    retain: (flags & 1) !== 0,
    dup: (flags & 8) !== 0,
    ...(messageId === undefined ? {} : { messageId }),
  };
}
