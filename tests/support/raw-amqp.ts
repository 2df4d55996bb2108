// Raw AMQP 0-9-1 peers for tests: what a well-behaved client never sends, and the node's AMQP
// address from its listening line.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectSocket, type Socket } from 'node:net';
import { decodeMethodPayload, encodeMethodFrame, FrameSplitter, FrameType, PROTOCOL_HEADER, type AmqpMethod, type Frame } from '../../protocols/amqp/index.js';
import type { BrokerProcess } from './broker-process.js';

/** The AMQP address (or with 'amqps' the AMQP over TLS one) from the node's listening line. */
export function amqpAddress(broker: BrokerProcess, listener: 'amqp' | 'amqps' = 'amqp'): { host: string; port: number } {
  for (const line of broker.broker.lines) {
    try {
      const address = (JSON.parse(line) as Record<string, unknown>)[listener];
      if (typeof address === 'string') {
        const at = address.lastIndexOf(':');
        return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
      }
    } catch {
      // not a JSON line
    }
  }
  throw new Error(`no ${listener}= in the listening line`);
}

const encoder = new TextEncoder();

/** A raw AMQP peer: sends bytes, reads frames (or the bytes before the first frame). */
export class RawAmqp {
  readonly frames: Frame[] = [];
  raw = Buffer.alloc(0);
  readonly #splitter = new FrameSplitter(1 << 20);
  #waiters: Array<() => void> = [];
  readonly closed: Promise<void>;
  #headerSent = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.raw = Buffer.concat([this.raw, chunk]);
      if (this.#headerSent) {
        const { frames } = this.#splitter.push(chunk);
        for (const frame of frames) this.frames.push({ type: frame.type, channel: frame.channel, payload: Buffer.from(frame.payload) });
      }
      for (const waiter of this.#waiters.splice(0)) waiter();
    });
    socket.on('error', () => undefined);
    this.closed = once(socket, 'close').then(() => undefined);
    void this.closed.then(() => {
      for (const waiter of this.#waiters.splice(0)) waiter();
    });
  }

  static async open(address: { host: string; port: number }): Promise<RawAmqp> {
    const socket = connectSocket(address.port, address.host);
    await once(socket, 'connect');
    return new RawAmqp(socket);
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  sendHeader(): void {
    this.#headerSent = true;
    this.send(PROTOCOL_HEADER);
  }

  sendMethod(channel: number, method: AmqpMethod): void {
    this.send(encodeMethodFrame(channel, method));
  }

  /** Waits for the next method frame (heartbeats skipped) and returns it decoded. */
  async method(timeoutMs = 5000): Promise<{ channel: number; method: AmqpMethod }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex((frame) => frame.type === FrameType.method);
      if (index >= 0) {
        const [frame] = this.frames.splice(0, index + 1).slice(-1) as [Frame];
        return { channel: frame.channel, method: decodeMethodPayload(frame.payload) };
      }
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error('socket closed before a method frame came');
      if (Date.now() > deadline) throw new Error('no method frame in time');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** The handshake up to open-ok, with these tune-ok values. */
  async handshake(tune: { channelMax?: number; frameMax?: number; heartbeat?: number } = {}, virtualHost = '/'): Promise<AmqpMethod> {
    this.sendHeader();
    assert.equal((await this.method()).method.name, 'connection.start');
    this.sendMethod(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0guest\0guest'), locale: 'en_US' } });
    const tuneMethod = (await this.method()).method;
    assert.equal(tuneMethod.name, 'connection.tune');
    this.sendMethod(0, { name: 'connection.tune-ok', args: { channelMax: tune.channelMax ?? 0, frameMax: tune.frameMax ?? 131072, heartbeat: tune.heartbeat ?? 0 } });
    this.sendMethod(0, { name: 'connection.open', args: { virtualHost, capabilities: '', insist: false } });
    return (await this.method()).method;
  }

  /** Expects connection.close with `code`, answers close-ok and waits for the socket to close. */
  async expectConnectionClose(code: number): Promise<Extract<AmqpMethod, { name: 'connection.close' }>['args']> {
    const { channel, method } = await this.method();
    assert.equal(channel, 0);
    assert.equal(method.name, 'connection.close', `expected connection.close, got ${method.name}`);
    const args = (method as Extract<AmqpMethod, { name: 'connection.close' }>).args;
    assert.equal(args.replyCode, code, args.replyText);
    this.sendMethod(0, { name: 'connection.close-ok', args: {} });
    await this.closed;
    return args;
  }
}
