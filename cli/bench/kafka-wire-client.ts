// A Kafka connection built on the project's own codec (protocols/kafka/codec): requests encoded,
// responses decoded, several in flight and matched by correlation id (Kafka answers in order on
// a connection). What `shardline bench kafka` drives the node with, so the bench needs no Kafka
// client library (kafkajs is a test dependency only).
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { decodeResponse, encodeRequest, FrameSplitter, type KafkaStruct } from '../../protocols/kafka/index.js';

interface Waiting {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  resolve: (body: KafkaStruct) => void;
  reject: (error: Error) => void;
}

export class KafkaWireClient {
  readonly #splitter = new FrameSplitter();
  readonly #waiting: Waiting[] = [];
  #correlation = 1;
  #error: Error | undefined;
  /** Settles when the socket closes; every request still waiting is rejected then. */
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket, readonly clientId: string) {
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => {
      this.#error ??= error;
    });
    this.closed = once(socket, 'close').then(() => {
      const error = this.#error ?? new Error('the Kafka connection closed before the response');
      for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
    });
  }

  static async open(host: string, port: number, clientId: string): Promise<KafkaWireClient> {
    const socket = connect({ host, port, noDelay: true });
    await once(socket, 'connect');
    return new KafkaWireClient(socket, clientId);
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

  #receive(chunk: Buffer): void {
    const split = this.#splitter.push(chunk);
    if (!split.ok) {
      this.#fail(split.error);
      return;
    }
    for (const frame of split.frames) {
      const waiter = this.#waiting.shift();
      if (waiter === undefined) {
        this.#fail(new Error('a Kafka response nobody asked for'));
        return;
      }
      try {
        const response = decodeResponse(waiter.apiKey, waiter.apiVersion, frame);
        if (response.correlationId !== waiter.correlationId) throw new Error(`response for correlation id ${response.correlationId}, expected ${waiter.correlationId}`);
        waiter.resolve(response.body);
      } catch (error) {
        waiter.reject(error as Error);
        this.#fail(error as Error);
        return;
      }
    }
  }

  #fail(error: Error): void {
    this.#error ??= error;
    this.socket.destroy();
  }
}
