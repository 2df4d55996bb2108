// A Kafka connection built on the project's own codec (protocols/kafka/codec): requests encoded,
// responses decoded, several in flight and matched by correlation id (Kafka answers in order on
// a connection). What `shardline bench kafka` drives the node with, so the bench needs no Kafka
// client library (kafkajs is a test dependency only).
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { decodeResponse, DEFAULT_MAX_FRAME_BYTES, encodeRequest, type KafkaStruct } from '../../protocols/kafka/index.js';

interface Waiting {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  resolve: (body: KafkaStruct) => void;
  reject: (error: Error) => void;
}

/** The socket reads into one buffer of this size, reused (no allocation per chunk received). */
const READ_BUFFER_BYTES = 1024 * 1024;

export class KafkaWireClient {
  /** The response being received: its 4-byte size first, then its bytes, copied once from the read buffer. */
  readonly #size = Buffer.alloc(4);
  #sizeFilled = 0;
  #frame: Buffer | undefined;
  #frameFilled = 0;
  readonly #waiting: Waiting[] = [];
  #correlation = 1;
  #error: Error | undefined;
  /** Settles when the socket closes; every request still waiting is rejected then. */
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket, readonly clientId: string) {
    socket.on('error', (error) => {
      this.#error ??= error;
    });
    this.closed = once(socket, 'close').then(() => {
      const error = this.#error ?? new Error('the Kafka connection closed before the response');
      for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
    });
  }

  static async open(host: string, port: number, clientId: string): Promise<KafkaWireClient> {
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const opened: { client?: KafkaWireClient } = {};
    const socket = connect({
      host, port, noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (bytes) => {
          opened.client?.receive(readBuffer.subarray(0, bytes));
          return true;
        },
      },
    });
    const client = new KafkaWireClient(socket, clientId);
    opened.client = client;
    await once(socket, 'connect');
    return client;
  }

  /** Sends one request; resolves with the response body (never for Produce with acks 0: use send). */
  call(apiKey: number, apiVersion: number, body: KafkaStruct): Promise<KafkaStruct> {
    const correlationId = this.#correlation++;
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(this.#error ?? new Error('the Kafka connection is closed'));
        return;
      }
      this.#waiting.push({ apiKey, apiVersion, correlationId, resolve, reject });
      this.socket.write(encodeRequest(apiKey, apiVersion, correlationId, this.clientId, body));
    });
  }

  /** Sends a request that gets no response (Produce with acks 0). */
  send(apiKey: number, apiVersion: number, body: KafkaStruct): void {
    this.socket.write(encodeRequest(apiKey, apiVersion, this.#correlation++, this.clientId, body));
  }

  close(): void {
    this.socket.destroy();
  }

  /** `chunk` is a view of the reused read buffer: what is kept is copied out before returning. */
  private receive(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === undefined) {
        const n = Math.min(4 - this.#sizeFilled, chunk.length - at);
        chunk.copy(this.#size, this.#sizeFilled, at, at + n);
        this.#sizeFilled += n;
        at += n;
        if (this.#sizeFilled < 4) return;
        const size = this.#size.readInt32BE(0);
        if (size < 0 || size > DEFAULT_MAX_FRAME_BYTES) {
          this.#fail(new Error(`a Kafka response of ${size} bytes`));
          return;
        }
        this.#frame = Buffer.allocUnsafe(size);
        this.#frameFilled = 0;
      }
      const frame: Buffer = this.#frame;
      const n = Math.min(frame.length - this.#frameFilled, chunk.length - at);
      chunk.copy(frame, this.#frameFilled, at, at + n);
      this.#frameFilled += n;
      at += n;
      if (this.#frameFilled < frame.length) return;
      this.#frame = undefined;
      this.#sizeFilled = 0;
      if (!this.#answer(frame)) return;
    }
  }

  /** Hands a whole response to its request; false when the connection failed. */
  #answer(frame: Buffer): boolean {
    const waiter = this.#waiting.shift();
    if (waiter === undefined) {
      this.#fail(new Error('a Kafka response nobody asked for'));
      return false;
    }
    try {
      const response = decodeResponse(waiter.apiKey, waiter.apiVersion, frame);
      if (response.correlationId !== waiter.correlationId) throw new Error(`response for correlation id ${response.correlationId}, expected ${waiter.correlationId}`);
      waiter.resolve(response.body);
      return true;
    } catch (error) {
      waiter.reject(error as Error);
      this.#fail(error as Error);
      return false;
    }
  }

  #fail(error: Error): void {
    this.#error ??= error;
    this.socket.destroy();
  }
}
