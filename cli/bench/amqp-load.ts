// One run of `shardline bench amqp` against one broker: a fresh durable queue, consumers with
// manual acknowledgements and a prefetch, publishers sending persistent messages (delivery-mode
// 2) with publisher confirms, each keeping at most `inflight` unconfirmed. Every body starts
// with its send time, so the run measures confirm latency (publish → basic.ack) and end-to-end
// latency (publish → delivered), besides confirmed and consumed messages per second.
//
// Bounds: publishing stops at warm-up + duration or after `count` messages, whichever comes
// first; consumers then have at most drainMs to take the rest; each setup step waits at most
// requestTimeoutMs.
import { performance } from 'node:perf_hooks';
import { amqpMethod, fieldTable } from '../../protocols/amqp/index.js';
import { ACK_FRAME_TEMPLATE, ACK_TAG_OFFSET, AmqpWireClient, publishTemplate } from './amqp-wire-client.js';
import { LatencyHistogram, percentilesMs, type Percentiles } from './latency-histogram.js';

export interface AmqpLoadOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  publishers: number;
  consumers: number;
  /** Body bytes per message, at least 8 (the send time). */
  size: number;
  /** Unconfirmed messages each publisher keeps at most. */
  inflight: number;
  /** basic.qos prefetch-count of each consumer. */
  prefetch: number;
  /** Messages over all publishers, warm-up included; 0: no limit but the duration. */
  count: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  requestTimeoutMs: number;
  onProgress?: (elapsedMs: number, totalMs: number) => void;
}


export interface AmqpLoadResult {
  queue: string;
  /** The measured window: from the end of the warm-up to the end of publishing. */
  seconds: number;
  /** Messages published in the window and confirmed (basic.ack). */
  confirmed: number;
  /** basic.nack from the broker, over the whole run. */
  nacked: number;
  /** Of the confirmed messages of the window, how many consumers got by the end of the drain. */
  consumed: number;
  /** Deliveries with redelivered set (none expected: nothing is requeued). */
  redelivered: number;
  confirmedPerSecond: number;
  consumedPerSecond: number;
  confirmLatencyMs: Percentiles;
  endToEndMs: Percentiles;
  /** The load tool's own CPU over the run, as a share of one core. */
  toolCpu: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A publisher: its own connection, a confirm channel, and a window of unconfirmed messages. */
class Publisher {
  /** Send time of each unconfirmed sequence number (brokers may confirm out of order). */
  readonly #sentAt = new Map<number, number>();
  #nextSeq = 1;
  #lowest = 1;
  #outstanding = 0;
  #stopped = false;
  #done: (() => void) | undefined;
  readonly #template: { bytes: Buffer; stampAt: number };

  constructor(
    readonly client: AmqpWireClient,
    queue: string,
    private readonly options: AmqpLoadOptions,
    private readonly window: { measureFrom: number; until: number },
    private readonly quota: () => boolean,
    private readonly stats: { confirmed: number; nacked: number; latency: LatencyHistogram },
  ) {
    this.#template = publishTemplate('', queue, options.size);
    client.handlers = { onConfirm: (tag, multiple, ok) => this.#confirmed(tag, multiple, ok) };
    client.socket.on('drain', () => this.#pump());
    // A broker that goes away ends the run; the caller reports the connection's failure.
    client.socket.on('close', () => this.#done?.());
  }

  /** Publishes until the window ends or the count is reached; resolves when all are confirmed, or fails when some are not within the request timeout after the window. */
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      const limit = setTimeout(() => {
        reject(new Error(`${this.#outstanding} publish(es) not confirmed within ${this.options.requestTimeoutMs} ms after the run`));
      }, this.window.until - performance.now() + this.options.requestTimeoutMs);
      this.#done = () => {
        clearTimeout(limit);
        resolve();
      };
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#stopped || this.client.socket.writableNeedDrain) return this.#maybeDone();
    const frames: Buffer[] = [];
    while (this.#outstanding < this.options.inflight) {
      const now = performance.now();
      if (now >= this.window.until || !this.quota()) {
        this.#stopped = true;
        break;
      }
      const message = Buffer.from(this.#template.bytes);
      message.writeDoubleLE(now, this.#template.stampAt);
      this.#sentAt.set(this.#nextSeq, now);
      this.#nextSeq += 1;
      this.#outstanding += 1;
      frames.push(message);
    }
    if (frames.length > 0) this.client.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    this.#maybeDone();
  }

  #maybeDone(): void {
    if (this.#outstanding === 0 && (this.#stopped || this.client.failure !== undefined)) this.#done?.();
  }

  #confirmed(tag: number, multiple: boolean, ok: boolean): void {
    const now = performance.now();
    const settle = (seq: number): void => {
      const sentAt = this.#sentAt.get(seq);
      if (sentAt === undefined) return;
      this.#sentAt.delete(seq);
      this.#outstanding -= 1;
      if (!ok) this.stats.nacked += 1;
      else if (sentAt >= this.window.measureFrom && sentAt < this.window.until) {
        this.stats.confirmed += 1;
        this.stats.latency.record((now - sentAt) * 1e6);
      }
    };
    if (multiple) for (let seq = this.#lowest; seq <= tag; seq += 1) settle(seq);
    else settle(tag);
    while (this.#lowest < this.#nextSeq && !this.#sentAt.has(this.#lowest)) this.#lowest += 1;
    this.#pump();
  }
}

/** A consumer: its own connection, basic.qos prefetch, and one ack per delivery, written once per chunk read. */
function attachConsumer(client: AmqpWireClient, window: { measureFrom: number; until: number }, stats: { consumed: number; redelivered: number; latency: LatencyHistogram; delivered: number }): void {
  const acks: Buffer[] = [];
  client.handlers = {
    onDeliver: (tag, stamp, redelivered) => {
      const now = performance.now();
      const ack = Buffer.from(ACK_FRAME_TEMPLATE);
      ack.writeBigUInt64BE(BigInt(tag), ACK_TAG_OFFSET);
      acks.push(ack);
      stats.delivered += 1;
      if (redelivered) stats.redelivered += 1;
      if (stamp >= window.measureFrom && stamp < window.until) {
        stats.consumed += 1;
        stats.latency.record((now - stamp) * 1e6);
      }
    },
    onChunkEnd: () => {
      if (acks.length === 0) return;
      client.socket.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
      acks.length = 0;
    },
  };
}

export async function runAmqpLoad(options: AmqpLoadOptions): Promise<AmqpLoadResult> {
  const { host, port, requestTimeoutMs: timeout } = options;
  const credentials = { user: options.user, password: options.password };
  const queue = `shardline-bench-${Date.now()}`;
  const clients: AmqpWireClient[] = [];
  const open = async (name: string): Promise<AmqpWireClient> => {
    const client = await AmqpWireClient.open(host, port, name, credentials, timeout);
    clients.push(client);
    return client;
  };
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  try {
    const admin = await open('bench-admin');
    await admin.call(1, amqpMethod('queue.declare', { ticket: 0, queue, passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: fieldTable({}) }), 'queue.declare-ok', timeout);

    const consumerStats = { consumed: 0, redelivered: 0, delivered: 0, latency: new LatencyHistogram() };
    const window = { measureFrom: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY };
    for (let index = 0; index < options.consumers; index += 1) {
      const client = await open(`bench-consumer-${index}`);
      await client.call(1, amqpMethod('basic.qos', { prefetchSize: 0, prefetchCount: options.prefetch, global: false }), 'basic.qos-ok', timeout);
      attachConsumer(client, window, consumerStats);
      await client.call(1, amqpMethod('basic.consume', { ticket: 0, queue, consumerTag: `bench-${index}`, noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: fieldTable({}) }), 'basic.consume-ok', timeout);
    }
    const publisherClients: AmqpWireClient[] = [];
    for (let index = 0; index < options.publishers; index += 1) {
      const client = await open(`bench-publisher-${index}`);
      await client.call(1, amqpMethod('confirm.select', { noWait: false }), 'confirm.select-ok', timeout);
      publisherClients.push(client);
    }

    const totalMs = options.warmupMs + options.durationMs;
    const loadStart = performance.now();
    window.measureFrom = loadStart + options.warmupMs;
    window.until = window.measureFrom + options.durationMs;
    const publisherStats = { confirmed: 0, nacked: 0, latency: new LatencyHistogram() };
    let sent = 0;
    const quota = (): boolean => {
      if (options.count > 0 && sent >= options.count) return false;
      sent += 1;
      return true;
    };
    const publishers = publisherClients.map((client) => new Publisher(client, queue, options, window, quota, publisherStats));
    const progress = options.onProgress === undefined ? undefined : setInterval(() => options.onProgress?.(Math.min(performance.now() - loadStart, totalMs), totalMs), 250);
    try {
      await Promise.all(publishers.map((publisher) => publisher.run()));
    } finally {
      if (progress !== undefined) clearInterval(progress);
    }
    const failed = clients.find((client) => client.failure !== undefined);
    if (failed !== undefined) throw failed.failure!;
    const publishedUntil = Math.min(performance.now(), window.until);
    options.onProgress?.(totalMs, totalMs);
    const drainUntil = performance.now() + options.drainMs;
    while (consumerStats.consumed < publisherStats.confirmed && performance.now() < drainUntil) await sleep(20);
    const seconds = Math.max(publishedUntil - window.measureFrom, 0) / 1000;
    const cpu = process.cpuUsage(cpuAtStart);
    return {
      queue,
      seconds,
      confirmed: publisherStats.confirmed,
      nacked: publisherStats.nacked,
      consumed: consumerStats.consumed,
      redelivered: consumerStats.redelivered,
      confirmedPerSecond: seconds === 0 ? 0 : publisherStats.confirmed / seconds,
      consumedPerSecond: seconds === 0 ? 0 : consumerStats.consumed / seconds,
      confirmLatencyMs: percentilesMs(publisherStats.latency),
      endToEndMs: percentilesMs(consumerStats.latency),
      toolCpu: (cpu.user + cpu.system) / 1000 / (performance.now() - startedAt),
    };
  } finally {
    for (const client of clients) client.close();
  }
}
