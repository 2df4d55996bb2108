// The AMQP 0-9-1 client of `shardline bench amqp`: one connection, one channel (1), written over
// the project's codec (protocols/amqp) so the load tool stays cheap and needs no client package.
// The handshake and the synchronous methods go through the codec's generic encoder and decoder;
// the frames a run repeats millions of times (publish, ack; confirms and deliveries coming back)
// are read and written by hand, from templates the codec encoded once, because the generic path
// would make the tool, not the broker, the bottleneck.
import { connect, type Socket } from 'node:net';
import {
  amqpMethod,
  decodeMethodPayload,
  encodeContentHeaderPayload,
  encodeFrame,
  encodeMethodFrame,
  fieldTable,
  FrameSplitter,
  FrameType,
  methodIds,
  PROTOCOL_HEADER,
  type AmqpMethod,
  type Frame,
} from '../../protocols/amqp/index.js';

/** The channel every bench connection uses. */
const CHANNEL = 1;
const FRAME_MAX = 131_072;

const ACK = methodIds('basic.ack');
const NACK = methodIds('basic.nack');
const DELIVER = methodIds('basic.deliver');

export interface WireHandlers {
  /** A publisher confirm: basic.ack (ok) or basic.nack from the broker. */
  onConfirm?(tag: number, multiple: boolean, ok: boolean): void;
  /** A delivery: its tag and the first 8 bytes of its body as a float64 (the send time). */
  onDeliver?(tag: number, stamp: number, redelivered: boolean): void;
  /** The end of a chunk of input: acknowledgements gathered during it can go out as one write. */
  onChunkEnd?(): void;
}

type Waiter = { resolve: (method: AmqpMethod) => void; reject: (error: Error) => void };

export class AmqpWireClient {
  readonly #splitter = new FrameSplitter(FRAME_MAX);
  readonly #waiters: Waiter[] = [];
  #failure: Error | undefined;
  /** Inside a delivery: the tag whose header and body frames come next. */
  #deliveryTag = 0;
  #redelivered = false;
  #awaitingBody = false;
  handlers: WireHandlers = {};

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('the broker closed the connection')));
  }

  /** Connects, authenticates (PLAIN), tunes (no heartbeats) and opens channel 1. */
  static async open(host: string, port: number, name: string, credentials: { user: string; password: string }, timeoutMs: number): Promise<AmqpWireClient> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connecting to ${host}:${port}: no answer within ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const client = new AmqpWireClient(socket);
    try {
      socket.write(PROTOCOL_HEADER);
      const start = await client.#next(timeoutMs);
      if (start.name !== 'connection.start') throw new Error(`expected connection.start, got ${start.name}`);
      const response = Buffer.from(`\0${credentials.user}\0${credentials.password}`);
      const clientProperties = fieldTable({
        product: { type: 'longstr', value: Buffer.from('shardline bench amqp') },
        connection_name: { type: 'longstr', value: Buffer.from(name) },
        capabilities: { type: 'table', value: fieldTable({ publisher_confirms: { type: 'bool', value: true }, 'basic.nack': { type: 'bool', value: true } }) },
      });
      client.#send(0, amqpMethod('connection.start-ok', { clientProperties, mechanism: 'PLAIN', response, locale: 'en_US' }));
      const tune = await client.#next(timeoutMs);
      if (tune.name !== 'connection.tune') throw new Error(`expected connection.tune, got ${tune.name}`);
      const frameMax = tune.args.frameMax === 0 ? FRAME_MAX : Math.min(tune.args.frameMax, FRAME_MAX);
      client.#send(0, amqpMethod('connection.tune-ok', { channelMax: 1, frameMax, heartbeat: 0 }));
      await client.call(0, amqpMethod('connection.open', { virtualHost: '/', capabilities: '', insist: false }), 'connection.open-ok', timeoutMs);
      await client.call(CHANNEL, amqpMethod('channel.open', { outOfBand: '' }), 'channel.open-ok', timeoutMs);
      return client;
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  /** Sends a synchronous method on `channel` and waits for its reply. */
  async call(channel: number, method: AmqpMethod, expected: string, timeoutMs: number): Promise<AmqpMethod> {
    this.#send(channel, method);
    const reply = await this.#next(timeoutMs);
    if (reply.name !== expected) throw new Error(`${method.name}: expected ${expected}, got ${reply.name}`);
    return reply;
  }

  /** Sends a method on channel 1 that has no reply (basic.qos is answered, basic.ack is not). */
  sendMethod(method: AmqpMethod): void {
    this.#send(CHANNEL, method);
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  close(): void {
    this.#failure ??= new Error('closed');
    this.socket.destroy();
  }

  #send(channel: number, method: AmqpMethod): void {
    this.socket.write(encodeMethodFrame(channel, method));
  }

  #next(timeoutMs: number): Promise<AmqpMethod> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the broker within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({
        resolve: (method) => {
          clearTimeout(timer);
          resolve(method);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  }

  #onData(chunk: Buffer): void {
    const { frames, error } = this.#splitter.push(chunk);
    for (const frame of frames) this.#onFrame(frame);
    this.handlers.onChunkEnd?.();
    if (error !== undefined) {
      this.#fail(new Error(`bad frame from the broker: ${error.message}`));
      this.socket.destroy();
    }
  }

  #onFrame(frame: Frame): void {
    const { payload } = frame;
    if (frame.type === FrameType.heartbeat) return;
    if (frame.type === FrameType.header) {
      if (payload.readBigUInt64BE(4) === 0n) this.#delivered(Number.NaN);
      else this.#awaitingBody = true;
      return;
    }
    if (frame.type === FrameType.body) {
      // The stamp is in the first body frame; later ones of a large body are skipped.
      if (this.#awaitingBody) this.#delivered(payload.length >= 8 ? payload.readDoubleLE(0) : Number.NaN);
      return;
    }
    const classId = payload.readUInt16BE(0);
    const methodId = payload.readUInt16BE(2);
    if (classId === ACK.classId && (methodId === ACK.methodId || methodId === NACK.methodId)) {
      this.handlers.onConfirm?.(Number(payload.readBigUInt64BE(4)), (payload[12]! & 1) === 1, methodId === ACK.methodId);
      return;
    }
    if (classId === DELIVER.classId && methodId === DELIVER.methodId) {
      // consumer-tag (shortstr), delivery-tag (longlong), redelivered (bit), ...
      const tagAt = 5 + payload[4]!;
      this.#deliveryTag = Number(payload.readBigUInt64BE(tagAt));
      this.#redelivered = (payload[tagAt + 8]! & 1) === 1;
      return;
    }
    const method = decodeMethodPayload(payload);
    if (method.name === 'connection.close' || method.name === 'channel.close') {
      this.#fail(new Error(`the broker closed the ${method.name === 'connection.close' ? 'connection' : 'channel'}: ${method.args.replyCode} ${method.args.replyText}`));
      this.socket.destroy();
      return;
    }
    this.#waiters.shift()?.resolve(method);
  }

  #delivered(stamp: number): void {
    this.#awaitingBody = false;
    this.handlers.onDeliver?.(this.#deliveryTag, stamp, this.#redelivered);
  }
}

/**
 * One persistent message's frames (basic.publish, content header with delivery-mode 2, body) as
 * one buffer; `stampAt` is where the body's first 8 bytes are, for the send time.
 */
export function publishTemplate(exchange: string, routingKey: string, size: number): { bytes: Buffer; stampAt: number } {
  if (size + 8 > FRAME_MAX) throw new RangeError(`a bench message is one body frame: at most ${FRAME_MAX - 8} bytes`);
  const method = encodeMethodFrame(CHANNEL, amqpMethod('basic.publish', { ticket: 0, exchange, routingKey, mandatory: false, immediate: false }));
  const header = encodeFrame(FrameType.header, CHANNEL, encodeContentHeaderPayload(methodIds('basic.publish').classId, BigInt(size), { deliveryMode: 2 }));
  const body = encodeFrame(FrameType.body, CHANNEL, Buffer.alloc(size));
  return { bytes: Buffer.concat([method, header, body]), stampAt: method.length + header.length + 7 };
}

/** basic.ack (not multiple) of delivery tag 0 on channel 1: copy it and write the tag at ACK_TAG_OFFSET. */
export const ACK_FRAME_TEMPLATE = encodeMethodFrame(CHANNEL, amqpMethod('basic.ack', { deliveryTag: 0n, multiple: false }));
/** Where the delivery tag is in ACK_FRAME_TEMPLATE: frame header (7), class and method (4). */
export const ACK_TAG_OFFSET = 11;
