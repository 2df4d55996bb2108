// Content: a content-bearing method (basic.publish, deliver, return, get-ok) is followed on the
// same channel by one content header frame and then body frames until the header's body size is
// reached (spec 4.2.6). The header is class-id (short), weight (short, unused, 0), body size
// (longlong), property flags, property list. Property flags are 16-bit words: bit 15 of the first
// word is the first property, and bit 0 of each word says another flag word follows, so each
// word holds 15 properties (basic's 14 fit in one).
import { Reader, Writer } from './bytes.js';
import { AmqpCodecError } from './errors.js';
import { FRAME_END, FRAME_HEADER_SIZE, FRAME_OVERHEAD, type Frame, FrameType, encodeFrame } from './frames.js';
import { type AmqpMethod, type DomainValue, decodeMethodPayload, encodeMethodPayload, readArgument, writeArgument } from './methods.js';
import { ReplyCodes } from './reply-codes.js';
import type { CLASSES} from './spec.js';
import { CLASS_BY_ID, type ClassDef, METHOD_BY_NAME, type MethodDef } from './spec.js';

type BasicPropertyDefs = Extract<(typeof CLASSES)[number], { name: 'basic' }>['properties'];

/** The 14 basic properties; each one present is set, an absent one is left out of the flags. */
export type BasicProperties = { -readonly [P in BasicPropertyDefs[number] as P[0]]?: DomainValue[P[1]] };

export interface ContentHeader {
  readonly classId: number;
  readonly weight: number;
  readonly bodySize: bigint;
  readonly properties: BasicProperties;
}

const FLAGS_PER_WORD = 15;

export function encodeContentHeaderPayload(classId: number, bodySize: bigint, properties: BasicProperties): Buffer {
  const def = CLASS_BY_ID.get(classId);
  if (def === undefined) throw new RangeError(`unknown class ${classId}`);
  const writer = new Writer(64);
  writer.u16(classId);
  writer.u16(0);
  writer.u64(bodySize, 'body size');
  const values = properties as Record<string, unknown>;
  const present = def.properties.map(([name]) => values[name] !== undefined);
  const words = Math.max(1, Math.ceil(def.properties.length / FLAGS_PER_WORD));
  for (let word = 0; word < words; word += 1) {
    let flags = word < words - 1 ? 1 : 0;
    for (let bit = 0; bit < FLAGS_PER_WORD; bit += 1) {
      if (present[word * FLAGS_PER_WORD + bit]) flags |= 1 << (15 - bit);
    }
    writer.u16(flags);
  }
  for (const [name, domain] of def.properties) {
    const value = values[name];
    if (value === undefined) continue;
    if (domain === 'bit') throw new TypeError('bit properties are not used by any class');
    writeArgument(writer, domain, value, `property ${name}`);
  }
  return writer.finish();
}

export function decodeContentHeaderPayload(payload: Uint8Array): ContentHeader {
  const reader = new Reader(payload);
  const classId = reader.u16('content class id');
  const weight = reader.u16('content weight');
  const bodySize = reader.u64('content body size');
  const def: ClassDef | undefined = CLASS_BY_ID.get(classId);
  if (def === undefined) throw new AmqpCodecError(ReplyCodes.frameError, `content header for unknown class ${classId}`, { classId });
  const flags: number[] = [];
  for (;;) {
    const word = reader.u16('property flags');
    flags.push(word);
    if ((word & 1) === 0) break;
  }
  const properties: Record<string, unknown> = {};
  for (let word = 0; word < flags.length; word += 1) {
    for (let bit = 0; bit < FLAGS_PER_WORD; bit += 1) {
      if (((flags[word] as number) & (1 << (15 - bit))) === 0) continue;
      const index = word * FLAGS_PER_WORD + bit;
      const property = def.properties[index];
      // A flag past the class's last property names a value we cannot size: the rest is lost.
      if (property === undefined) throw new AmqpCodecError(ReplyCodes.syntaxError, `content header sets property flag ${index}; class ${def.name} has ${def.properties.length} properties`, { classId });
      const [name, domain] = property;
      if (domain === 'bit') throw new AmqpCodecError(ReplyCodes.syntaxError, 'bit property', { classId });
      properties[name] = readArgument(reader, domain, `property ${name}`);
    }
  }
  if (reader.remaining !== 0) throw new AmqpCodecError(ReplyCodes.frameError, `${reader.remaining} bytes after the content header's properties`, { classId });
  return { classId, weight, bodySize, properties: properties as BasicProperties };
}

/** A method frame. Method frames cannot be split, so one over frame-max is the caller's bug. */
export function encodeMethodFrame(channel: number, method: AmqpMethod, frameMax = 0): Buffer {
  const payload = encodeMethodPayload(method);
  if (frameMax > 0 && payload.length + FRAME_OVERHEAD > frameMax) throw new RangeError(`${method.name} is ${payload.length + FRAME_OVERHEAD} bytes framed, over frame-max ${frameMax}`);
  return encodeFrame(FrameType.method, channel, payload);
}

/**
 * A content-bearing method with its content, as frames: the method, the header, then the body
 * cut into frames of at most frameMax - 8 payload bytes (frame-max counts the 7-byte header and
 * the frame-end). An empty body has no body frames. frameMax 0: the body goes in one frame.
 */
export function encodeCommandFrames(channel: number, method: AmqpMethod, properties: BasicProperties, body: Uint8Array, frameMax: number): Buffer[] {
  const def = METHOD_BY_NAME.get(method.name) as MethodDef;
  if (!def.content) throw new TypeError(`${method.name} carries no content`);
  if (frameMax > 0 && frameMax <= FRAME_OVERHEAD) throw new RangeError(`frame-max ${frameMax} leaves no room for a payload`);
  const frames = [encodeMethodFrame(channel, method, frameMax)];
  const header = encodeContentHeaderPayload(def.classId, BigInt(body.length), properties);
  if (frameMax > 0 && header.length + FRAME_OVERHEAD > frameMax) throw new RangeError(`content header is ${header.length + FRAME_OVERHEAD} bytes framed, over frame-max ${frameMax}`);
  frames.push(encodeFrame(FrameType.header, channel, header));
  const step = frameMax > 0 ? frameMax - FRAME_OVERHEAD : Math.max(body.length, 1);
  for (let offset = 0; offset < body.length; offset += step) {
    frames.push(encodeFrame(FrameType.body, channel, body.subarray(offset, Math.min(offset + step, body.length))));
  }
  return frames;
}

/**
 * The same bytes as encodeCommandFrames joined, written into one buffer: the method and header
 * payloads are encoded once and every frame is laid down in place, so a delivery costs one
 * allocation and one copy of its body instead of a buffer per frame and a join.
 */
export function encodeCommand(channel: number, method: AmqpMethod, properties: BasicProperties, body: Uint8Array, frameMax: number): Buffer {
  const def = METHOD_BY_NAME.get(method.name) as MethodDef;
  if (!def.content) throw new TypeError(`${method.name} carries no content`);
  if (frameMax > 0 && frameMax <= FRAME_OVERHEAD) throw new RangeError(`frame-max ${frameMax} leaves no room for a payload`);
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new RangeError(`channel must be 0 to 65535, got ${channel}`);
  const methodPayload = encodeMethodPayload(method);
  if (frameMax > 0 && methodPayload.length + FRAME_OVERHEAD > frameMax) throw new RangeError(`${method.name} is ${methodPayload.length + FRAME_OVERHEAD} bytes framed, over frame-max ${frameMax}`);
  const header = encodeContentHeaderPayload(def.classId, BigInt(body.length), properties);
  if (frameMax > 0 && header.length + FRAME_OVERHEAD > frameMax) throw new RangeError(`content header is ${header.length + FRAME_OVERHEAD} bytes framed, over frame-max ${frameMax}`);
  const step = frameMax > 0 ? frameMax - FRAME_OVERHEAD : Math.max(body.length, 1);
  const bodyFrames = Math.ceil(body.length / step);
  const out = Buffer.allocUnsafe(methodPayload.length + header.length + body.length + FRAME_OVERHEAD * (2 + bodyFrames));
  let at = 0;
  const frame = (type: number, payload: Uint8Array): void => {
    out[at] = type;
    out.writeUInt16BE(channel, at + 1);
    out.writeUInt32BE(payload.length, at + 3);
    out.set(payload, at + FRAME_HEADER_SIZE);
    at += FRAME_HEADER_SIZE + payload.length;
    out[at] = FRAME_END;
    at += 1;
  };
  frame(FrameType.method, methodPayload);
  frame(FrameType.header, header);
  for (let offset = 0; offset < body.length; offset += step) frame(FrameType.body, body.subarray(offset, Math.min(offset + step, body.length)));
  return out;
}

/** A whole command: a method, and for content-bearing methods its header and body. */
export interface Command {
  readonly channel: number;
  readonly method: AmqpMethod;
  readonly content?: { readonly header: ContentHeader; readonly body: Buffer };
}

export interface AssemblerOptions {
  /**
   * The largest body the server accepts; a header announcing more is refused with 406
   * precondition-failed, as RabbitMQ does past max_message_size, before any body is buffered.
   */
  maxBodySize?: number;
}

type State =
  | { kind: 'idle' }
  | { kind: 'header'; method: AmqpMethod; def: MethodDef }
  | { kind: 'body'; method: AmqpMethod; header: ContentHeader; size: number; received: number; chunks: Buffer[] };

/**
 * One channel's state machine: method → (content header → body frames until the size) → a
 * Command. Frames out of that order are refused with 505 unexpected-frame, as the spec asks
 * ("a peer that receives a content frame it did not expect ... MUST raise a connection
 * exception"). Heartbeats belong to the connection and are not given to it.
 */
export class ChannelAssembler {
  #state: State = { kind: 'idle' };
  readonly #maxBodySize: number;

  constructor(
    readonly channel: number,
    options: AssemblerOptions = {},
  ) {
    this.#maxBodySize = options.maxBodySize ?? Number.MAX_SAFE_INTEGER;
  }

  /** Waiting for a method (no content half received). */
  get idle(): boolean {
    return this.#state.kind === 'idle';
  }

  /** Returns the command a frame completes, undefined while one is still being received. */
  push(frame: Frame): Command | undefined {
    if (frame.channel !== this.channel) throw new RangeError(`frame for channel ${frame.channel} given to channel ${this.channel}'s assembler`);
    const state = this.#state;
    switch (frame.type) {
      case FrameType.method: {
        if (state.kind !== 'idle') throw this.#unexpected(state, 'a method frame');
        const method = decodeMethodPayload(frame.payload);
        const def = METHOD_BY_NAME.get(method.name) as MethodDef;
        if (!def.content) return { channel: this.channel, method };
        this.#state = { kind: 'header', method, def };
        return undefined;
      }
      case FrameType.header: {
        if (state.kind !== 'header') throw this.#unexpected(state, 'a content header frame');
        const header = decodeContentHeaderPayload(frame.payload);
        const ids = { classId: state.def.classId, methodId: state.def.methodId };
        if (header.classId !== state.def.classId) {
          throw new AmqpCodecError(ReplyCodes.unexpectedFrame, `expected a content header for class ${state.def.classId}, got one for class ${header.classId}`, ids);
        }
        if (header.bodySize > BigInt(this.#maxBodySize)) {
          throw new AmqpCodecError(ReplyCodes.preconditionFailed, `message body of ${header.bodySize} bytes is larger than the maximum ${this.#maxBodySize}`, ids);
        }
        const size = Number(header.bodySize);
        if (size === 0) {
          this.#state = { kind: 'idle' };
          return { channel: this.channel, method: state.method, content: { header, body: Buffer.alloc(0) } };
        }
        this.#state = { kind: 'body', method: state.method, header, size, received: 0, chunks: [] };
        return undefined;
      }
      case FrameType.body: {
        if (state.kind !== 'body') throw this.#unexpected(state, 'a content body frame');
        const received = state.received + frame.payload.length;
        if (received > state.size) {
          const def = METHOD_BY_NAME.get(state.method.name) as MethodDef;
          throw new AmqpCodecError(ReplyCodes.unexpectedFrame, `content body frames carry ${received} bytes, more than the header's body size ${state.size}`, { classId: def.classId, methodId: def.methodId });
        }
        // Copied: the frame's payload is a view into the splitter's buffer.
        state.chunks.push(Buffer.from(frame.payload));
        state.received = received;
        if (received < state.size) return undefined;
        this.#state = { kind: 'idle' };
        // One frame's copy is the body already; only a body of several frames is joined.
        const body = state.chunks.length === 1 ? (state.chunks[0] as Buffer) : Buffer.concat(state.chunks, received);
        return { channel: this.channel, method: state.method, content: { header: state.header, body } };
      }
      default:
        throw new RangeError(`frame type ${frame.type} is the connection's, not a channel's`);
    }
  }

  #unexpected(state: State, got: string): AmqpCodecError {
    if (state.kind === 'idle') return new AmqpCodecError(ReplyCodes.unexpectedFrame, `expected a method frame, got ${got}`);
    const def = METHOD_BY_NAME.get(state.method.name) as MethodDef;
    const expected = state.kind === 'header' ? `a content header for ${def.name}` : `a content body frame (${state.size - state.received} of ${state.size} bytes to come)`;
    return new AmqpCodecError(ReplyCodes.unexpectedFrame, `expected ${expected}, got ${got}`, { classId: def.classId, methodId: def.methodId });
  }
}

/**
 * The close a refusal calls for: channel.close on the channel for a channel exception (the
 * channel's number is the caller's), connection.close on channel 0 otherwise, with the reply
 * code, RabbitMQ-style text and the ids of the method that failed (0 when none was known).
 */
export function closeMethodFor(error: AmqpCodecError): AmqpMethod {
  const args = { replyCode: error.replyCode, replyText: error.replyText, classId: error.classId, methodId: error.methodId };
  return error.scope === 'channel' ? { name: 'channel.close', args } : { name: 'connection.close', args };
}
