// The MQTT bytes of `shardline bench mqtt` and the messages between its coordinator and worker
// processes. The hot path (PUBLISH out, PUBLISH/acks in) is framed and encoded by hand so the
// load tool spends its CPU on the broker's traffic, not on packet objects; CONNECT, SUBSCRIBE
// and their replies go through mqtt-packet. Pure: no sockets, no clocks.
import mqttPacket, { type Packet, type QoS } from 'mqtt-packet';

/**
 * Payload layout: send time (float64 ms since the epoch from wall-clock.ts, the
 * same clock in every process of one machine), publisher index (uint32), sequence number
 * (uint32), then filler up to --size.
 */
export const PAYLOAD_HEADER_BYTES = 16;
export const MAX_PACKET_ID = 0xffff;

export type ProtocolVersion = 4 | 5;
export type Role = 'idle' | 'sub' | 'pub';

/** What every worker needs to know about the run. */
export interface WorkerConfig {
  host: string;
  port: number;
  protocolVersion: ProtocolVersion;
  qos: QoS;
  size: number;
  /** Messages/s per publisher; 0 = as fast as the window or the socket allows. */
  ratePerPublisher: number;
  /** Unacknowledged QoS 1/2 publishes per publisher. */
  inflight: number;
  keepaliveSeconds: number;
  /** Publish topic template; `{i}` becomes the publisher index. */
  topic: string;
  subTopic: string;
  /** Connection handshakes one worker runs at once. */
  connectConcurrency: number;
  connectTimeoutMs: number;
  clientIdPrefix: string;
}

/** Global client indexes this worker runs. */
export interface WorkerAssignment {
  worker: number;
  publishers: number[];
  subscribers: number[];
  idle: number[];
  /** Publishers over all workers (publisher indexes run 0..publisherTotal-1). */
  publisherTotal: number;
}

/** Times on the shared wall clock (ms since the epoch, fractional). */
export interface LoadWindow {
  startAt: number;
  measureStart: number;
  measureEnd: number;
}

export type CoordinatorMessage =
  | { type: 'setup'; config: WorkerConfig; assignment: WorkerAssignment }
  | { type: 'connect'; role: Role }
  | { type: 'start'; window: LoadWindow }
  | { type: 'finish' };

export interface CpuTime {
  userUs: number;
  systemUs: number;
}

/** Cumulative counters of one worker; latencies are only the samples since the last report. */
export interface WorkerStats {
  /** Publishes written (all of the run). */
  sent: number;
  /** Publishes whose send time falls in the measured window. */
  sentMeasured: number;
  /** sentMeasured of the publishers whose topic the subscription filter matches. */
  sentMeasuredMatching: number;
  /** sent (whole run) of the publishers whose topic the subscription filter matches. */
  sentMatching: number;
  /** QoS 1/2 publishes the broker finished (PUBACK / PUBCOMP). */
  completed: number;
  /** QoS 1/2 publishes the broker refused (reason code >= 0x80, MQTT 5). */
  refused: number;
  inflight: number;
  /** True once every publisher of this worker passed the window end and has nothing in flight. */
  publishersDone: boolean;
  /** Every PUBLISH delivered to a subscriber, duplicates included. */
  delivered: number;
  /** Deliveries that arrived inside the measured window (arrival time, any send time). */
  deliveredInWindow: number;
  /** Distinct measured messages per subscriber, summed over this worker's subscribers. */
  measuredUnique: number;
  /** Measured messages a subscriber had already received. */
  duplicates: number;
  /** Deliveries whose payload is too short to carry the header (not from this run). */
  foreign: number;
  /** End-to-end latencies (ns) of measured deliveries since the previous report. */
  latenciesNs: Float64Array;
  /** CPU time of this process inside the measured window (complete once the window ended). */
  windowCpu: CpuTime;
  /**
   * Share of the measured window this process's event loop was busy (0..1). Near 1 means the
   * worker had no slack, even when its CPU share is lower because the machine is contended.
   */
  windowLoopBusy: number;
  /** The first few error messages since the previous report. */
  errors: string[];
  /** Every error of the run, counted. */
  errorCount: number;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'connected'; role: Role; count: number; ms: number }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'final'; stats: WorkerStats }
  | { type: 'fatal'; message: string };

/** `bench/{i}` → `bench/#`: the level holding `{i}` and the rest become `#`. */
export function defaultSubTopic(topic: string): string {
  const levels = topic.split('/');
  const at = levels.findIndex((level) => level.includes('{i}'));
  if (at < 0) return topic;
  return [...levels.slice(0, at), '#'].join('/');
}

export function publisherTopic(template: string, index: number): string {
  return template.replaceAll('{i}', String(index));
}

/** MQTT filter matching (`+`, `#`, `$` topics not matched by leading wildcards). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let index = 0; index < f.length; index += 1) {
    const level = f[index];
    if (level === '#') return true;
    if (index >= t.length) return false;
    if (level !== '+' && level !== t[index]) return false;
  }
  return f.length === t.length;
}

/**
 * A publisher's PUBLISH, encoded once; copies of it get the packet id and payload header
 * patched in place. `batch` is the packet repeated, so a burst is one copy of a prefix.
 */
export interface PublishTemplate {
  packetBytes: number;
  /** Offset of the packet id inside one packet; -1 for QoS 0. */
  packetIdOffset: number;
  payloadOffset: number;
  batch: Buffer;
  maxBatch: number;
}

export function publishTemplate(topic: string, qos: QoS, size: number, protocolVersion: ProtocolVersion, batchBytes = 64 * 1024): PublishTemplate {
  const payload = Buffer.alloc(size, 0x78);
  const packet: Packet = { cmd: 'publish', topic, payload, qos, dup: false, retain: false, messageId: qos > 0 ? 1 : undefined, ...(protocolVersion === 5 ? { properties: {} } : {}) };
  const one = mqttPacket.generate(packet, { protocolVersion });
  const payloadOffset = one.length - size;
  const fixedHeader = fixedHeaderLength(one);
  const packetIdOffset = qos > 0 ? fixedHeader + 2 + Buffer.byteLength(topic) : -1;
  const maxBatch = Math.max(1, Math.floor(batchBytes / one.length));
  const batch = Buffer.allocUnsafe(one.length * maxBatch);
  for (let index = 0; index < maxBatch; index += 1) one.copy(batch, index * one.length);
  return { packetBytes: one.length, packetIdOffset, payloadOffset, batch, maxBatch };
}

function fixedHeaderLength(packet: Buffer): number {
  let index = 1;
  while (((packet[index] ?? 0) & 0x80) !== 0) index += 1;
  return index + 1;
}

/**
 * Encodes `count` publishes from `template` into a new buffer: sequence numbers from `firstSeq`,
 * packet ids from `firstPacketId` (wrapping within 1..65535), one send time for all.
 */
export function encodePublishes(template: PublishTemplate, count: number, publisher: number, firstSeq: number, firstPacketId: number, sentAt: number): Buffer {
  const { packetBytes, packetIdOffset, payloadOffset } = template;
  const out = Buffer.allocUnsafe(packetBytes * count);
  template.batch.copy(out, 0, 0, packetBytes * count);
  let packetId = firstPacketId;
  for (let index = 0, base = 0; index < count; index += 1, base += packetBytes) {
    if (packetIdOffset >= 0) {
      out.writeUInt16BE(packetId, base + packetIdOffset);
      packetId = packetId === MAX_PACKET_ID ? 1 : packetId + 1;
    }
    const at = base + payloadOffset;
    out.writeDoubleBE(sentAt, at);
    out.writeUInt32BE(publisher, at + 8);
    out.writeUInt32BE((firstSeq + index) >>> 0, at + 12);
  }
  return out;
}

/** A two-byte-body ack (PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70) for each id. */
export function encodeAcks(firstByte: number, packetIds: number[], count: number): Buffer {
  const out = Buffer.allocUnsafe(4 * count);
  for (let index = 0; index < count; index += 1) {
    const at = index * 4;
    out[at] = firstByte;
    out[at + 1] = 2;
    out.writeUInt16BE(packetIds[index] ?? 0, at + 2);
  }
  return out;
}

export type FrameHandler = (firstByte: number, buffer: Buffer, frameStart: number, bodyStart: number, bodyEnd: number) => void;

/**
 * Splits a TCP byte stream into MQTT packets and hands each body to `onFrame` without copying
 * (valid only during the call); a partial packet at the end of a chunk waits for the next one.
 */
export class FrameReader {
  private rest: Buffer | null = null;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let buffer = chunk;
    if (this.rest !== null) {
      buffer = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    const length = buffer.length;
    let offset = 0;
    while (offset + 2 <= length) {
      let index = offset + 1;
      let remaining = 0;
      let multiplier = 1;
      let complete = false;
      while (index < length && index <= offset + 4) {
        const byte = buffer[index] as number;
        index += 1;
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if (byte < 0x80) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (index > offset + 4) throw new Error('malformed remaining length from the broker');
        break;
      }
      if (index + remaining > length) break;
      this.onFrame(buffer[offset] as number, buffer, offset, index, index + remaining);
      offset = index + remaining;
    }
    // A copy: the caller may reuse `chunk` for its next read.
    if (offset < length) this.rest = Buffer.from(buffer.subarray(offset));
  }
}

/** Reads an MQTT variable byte integer; returns [value, next offset]. */
export function readVarint(buffer: Buffer, offset: number): [number, number] {
  let value = 0;
  let multiplier = 1;
  let index = offset;
  for (let count = 0; count < 4; count += 1) {
    const byte = buffer[index] ?? 0;
    index += 1;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) break;
    multiplier *= 128;
  }
  return [value, index];
}

/** Decodes one complete packet with mqtt-packet (the setup replies: CONNACK, SUBACK). */
export function decodePacket(frame: Buffer, protocolVersion: ProtocolVersion): Packet {
  const parser = mqttPacket.parser({ protocolVersion });
  let decoded: Packet | null = null;
  let failure: Error | null = null;
  parser.on('packet', (packet: Packet) => (decoded = packet));
  parser.on('error', (error: Error) => (failure = error));
  parser.parse(frame);
  if (failure !== null) throw failure;
  if (decoded === null) throw new Error('incomplete packet');
  return decoded;
}

export function encodeConnect(clientId: string, keepaliveSeconds: number, protocolVersion: ProtocolVersion): Buffer {
  return mqttPacket.generate(
    {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clean: true,
      clientId,
      keepalive: keepaliveSeconds,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0, receiveMaximum: MAX_PACKET_ID } } : {}),
    },
    { protocolVersion },
  );
}

export function encodeSubscribe(filter: string, qos: QoS, protocolVersion: ProtocolVersion): Buffer {
  return mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }], ...(protocolVersion === 5 ? { properties: {} } : {}) }, { protocolVersion });
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);
