// A minimal Kafka client for tests: one socket, the project's codec, requests answered in
// order; for exact bytes and raw refusals that a real client library would never send. And a
// Fetch that returns every record of a partition.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { decodeRecordBatches, decodeResponse, encodeRequest, FrameSplitter, ApiKey, type KafkaStruct } from '../../protocols/kafka/index.js';

/** A minimal Kafka client: one socket, requests answered in order. */
export class RawClient {
  readonly #splitter = new FrameSplitter();
  readonly #waiting: Array<{ resolve: (frame: Buffer) => void; reject: (error: Error) => void }> = [];
  readonly #frames: Buffer[] = [];
  #correlation = 1;
  closed: Promise<void>;

  private constructor(readonly socket: Socket, readonly clientId: string) {
    socket.on('data', (chunk: Buffer) => {
      const split = this.#splitter.push(chunk);
      if (!split.ok) throw split.error;
      for (const frame of split.frames) {
        const waiter = this.#waiting.shift();
        if (waiter === undefined) this.#frames.push(frame);
        else waiter.resolve(frame);
      }
    });
    socket.on('error', () => undefined);
    this.closed = once(socket, 'close').then(() => {
      for (const waiter of this.#waiting.splice(0)) waiter.reject(new Error('the connection closed before the response'));
    });
  }

  static async open(port: number, clientId = 'raw-test'): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawClient(socket, clientId);
  }

  /** The same over TLS, with node:tls options (the CA to trust, a client certificate). */
  static async openTls(port: number, tls: ConnectionOptions, clientId = 'raw-test'): Promise<RawClient> {
    const socket = connectTls({ ...tls, port, host: '127.0.0.1' });
    await once(socket, 'secureConnect');
    return new RawClient(socket, clientId);
  }

  nextFrame(): Promise<Buffer> {
    const ready = this.#frames.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  async call(apiKey: number, apiVersion: number, body: KafkaStruct): Promise<KafkaStruct> {
    const correlationId = this.#correlation++;
    this.socket.write(encodeRequest(apiKey, apiVersion, correlationId, this.clientId, body));
    const frame = await this.nextFrame();
    const response = decodeResponse(apiKey, apiVersion, frame);
    assert.equal(response.correlationId, correlationId);
    return response.body;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface Fetched {
  offset: bigint;
  key: string | null;
  value: string | null;
  headers: Array<[string, string | null]>;
  timestamp: bigint;
}

export async function fetchAll(client: RawClient, topic: string, partition: number, fromOffset = 0n, maxBytes = 1_048_576): Promise<{ records: Fetched[]; highWatermark: bigint; errorCode: number }> {
  const body = await client.call(ApiKey.Fetch, 11, {
    replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: fromOffset, logStartOffset: -1n, partitionMaxBytes: maxBytes }] }],
    forgottenTopicsData: [], rackId: '',
  });
  const entry = ((body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!;
  const records: Fetched[] = [];
  const bytes = entry.records as Buffer | null;
  if (bytes !== null && bytes.length > 0) {
    for (const batch of decodeRecordBatches(bytes, { allowPartialTail: true }).batches) {
      for (const record of batch.records) {
        records.push({
          offset: batch.baseOffset + BigInt(record.offsetDelta),
          key: record.key === null ? null : record.key.toString(),
          value: record.value === null ? null : record.value.toString(),
          headers: record.headers.map((header) => [header.key, header.value === null ? null : header.value.toString()]),
          timestamp: batch.baseTimestamp + record.timestampDelta,
        });
      }
    }
  }
  return { records, highWatermark: entry.highWatermark as bigint, errorCode: entry.errorCode as number };
}
