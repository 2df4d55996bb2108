// Frames (spec 4.2.3): type (octet), channel (short), size (long), payload of `size` bytes, and
// the frame-end octet 0xCE. The splitter cuts a byte stream into frames and checks each one's
// 7-byte header before it buffers the payload: a declared size over the negotiated frame-max is
// refused as soon as the header arrives, so a peer cannot make the server hold (or allocate)
// more than one frame-max of bytes per connection. Pure: bytes in, frames or a refusal out.
import { AmqpCodecError } from './errors.js';
import { ReplyCodes } from './reply-codes.js';

export const FrameType = { method: 1, header: 2, body: 3, heartbeat: 8 } as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_END = 0xce;
/** Type, channel and size. */
export const FRAME_HEADER_SIZE = 7;
/** Header plus frame-end: what a frame costs beyond its payload. */
export const FRAME_OVERHEAD = 8;
/**
 * The smallest frame-max a peer may negotiate, and the limit until connection.tune-ok: "until
 * the frame-max has been negotiated, both peers MUST accept frames of up to frame-min-size
 * octets" (spec, connection.tune).
 */
export const FRAME_MIN_SIZE = 4096;
/**
 * The limit the splitter starts with, before tune-ok: 8192, as RabbitMQ 4.1 does (its
 * initial_frame_max, rabbitmq-server#13541). The spec's 4096 refuses a connection.start-ok
 * whose SASL response carries a JWT of a few kilobytes, which OAuth 2 clients send; RabbitMQ
 * raised the limit for them and clients now expect it (amqplib proposes 131072 after tune).
 */
export const INITIAL_FRAME_MAX = 8192;

export interface Frame {
  readonly type: FrameTypeCode;
  readonly channel: number;
  /** A view into the bytes the splitter was given; copy it to keep it past the next push. */
  readonly payload: Buffer;
}

export function encodeFrame(type: FrameTypeCode, channel: number, payload: Uint8Array): Buffer {
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new RangeError(`channel must be 0 to 65535, got ${channel}`);
  const frame = Buffer.allocUnsafe(payload.length + FRAME_OVERHEAD);
  frame.writeUInt8(type, 0);
  frame.writeUInt16BE(channel, 1);
  frame.writeUInt32BE(payload.length, 3);
  frame.set(payload, FRAME_HEADER_SIZE);
  frame.writeUInt8(FRAME_END, payload.length + FRAME_HEADER_SIZE);
  return frame;
}

/** The heartbeat frame: type 8, channel 0, no payload. */
export const HEARTBEAT_FRAME: Buffer = encodeFrame(FrameType.heartbeat, 0, new Uint8Array(0));

export type SplitResult = { frames: Frame[]; error?: AmqpCodecError };

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export class FrameSplitter {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Total size of the frame at the head once its header is known; 0 while unknown. */
  #needed = 0;
  #failed: AmqpCodecError | undefined;

  /** frameMax: the largest whole frame, header and frame-end included; 0 means no limit. */
  constructor(private frameMax: number = INITIAL_FRAME_MAX) {}

  /** After tune-ok: the negotiated frame-max (0: no limit, which RabbitMQ does not allow). */
  setFrameMax(frameMax: number): void {
    this.frameMax = frameMax;
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes and returns the whole frames they complete. A refusal comes with the frames
   * before it (a connection.close just ahead of garbage is still seen); after one the splitter
   * returns the same refusal for every push, since the stream has lost its framing.
   */
  push(chunk: Uint8Array): SplitResult {
    if (this.#failed !== undefined) return { frames: [], error: this.#failed };
    const frames: Frame[] = [];
    if (chunk.length === 0) return { frames };
    this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.length;
    // Waiting for the rest of a frame whose size is known: do not concatenate yet.
    if (this.#needed > 0 && this.#buffered < this.#needed) return { frames };
    const buffer = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#buffered);
    let position = 0;
    this.#needed = 0;
    try {
      for (;;) {
        const available = buffer.length - position;
        if (available < FRAME_HEADER_SIZE) break;
        const total = this.#checkHeader(buffer, position);
        if (available < total) {
          this.#needed = total;
          break;
        }
        const end = position + total - 1;
        if (buffer[end] !== FRAME_END) {
          throw new AmqpCodecError(ReplyCodes.frameError, `frame end octet is 0x${(buffer[end] ?? 0).toString(16).padStart(2, '0')}, not 0xce`);
        }
        frames.push({ type: buffer[position] as FrameTypeCode, channel: buffer.readUInt16BE(position + 1), payload: buffer.subarray(position + FRAME_HEADER_SIZE, end) });
        position += total;
      }
    } catch (error) {
      this.#failed = error as AmqpCodecError;
      this.#chunks = [];
      this.#buffered = 0;
      return { frames, error: this.#failed };
    }
    const rest = buffer.subarray(position);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return { frames };
  }

  /** The whole frame's size, or a refusal, from its 7-byte header alone. */
  #checkHeader(buffer: Buffer, position: number): number {
    const type = buffer[position] as number;
    const channel = buffer.readUInt16BE(position + 1);
    const size = buffer.readUInt32BE(position + 3);
    if (!KNOWN_TYPES.has(type)) throw new AmqpCodecError(ReplyCodes.frameError, `unknown frame type ${type}`);
    if (this.frameMax > 0 && size + FRAME_OVERHEAD > this.frameMax) {
      throw new AmqpCodecError(ReplyCodes.frameError, `frame of ${size + FRAME_OVERHEAD} bytes (payload ${size}) on channel ${channel} exceeds frame-max ${this.frameMax}`);
    }
    if (type === FrameType.heartbeat) {
      // Spec 4.2.7: heartbeats are on channel 0 and carry nothing; anything else is a frame error.
      if (channel !== 0) throw new AmqpCodecError(ReplyCodes.frameError, `heartbeat frame on channel ${channel}; heartbeats use channel 0`);
      if (size !== 0) throw new AmqpCodecError(ReplyCodes.frameError, `heartbeat frame with a ${size}-byte payload; heartbeats are empty`);
    }
    return size + FRAME_OVERHEAD;
  }
}
