// The workload of `shardline bench kafka`: producers send record batches to a fresh topic over
// the Kafka protocol (the project's codec, kafka-wire-client.ts), a consumer long-polls every
// partition, and every record carries its send time, so the report has produce throughput, the
// produce request's latency (request → answer, which with acks -1 waits for the durable append)
// and end-to-end latency (send → fetched by the consumer). One process: the load tool's CPU is
// reported beside the figures so a saturated tool is seen.
//
// Bounds: producing stops at warm-up + duration; the consumer then waits at most drainMs for
// the rest; every request waits at most requestTimeoutMs.
import { performance } from 'node:perf_hooks';
import { ApiKey, crc32c, encodeRecordBatch, kafkaErrorName, Reader, type KafkaStruct } from '../../protocols/kafka/index.js';
import { KafkaWireClient } from './kafka-wire-client.js';
import { LatencyHistogram, percentilesMs, type Percentiles } from './latency-histogram.js';

const PRODUCE_VERSION = 8;
const FETCH_VERSION = 11;
const FETCH_MAX_WAIT_MS = 500;
const FETCH_MAX_BYTES = 16 * 1024 * 1024;
/** Bytes at the start of each value: the send time (performance.now(), float64). */
const STAMP_BYTES = 8;
/** Record batch v2 layout: the CRC, the attributes it starts at, the timestamps, the records. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const BASE_TIMESTAMP_AT = 27;
const BATCH_HEADER_BYTES = 61;

export interface KafkaBenchOptions {
  host: string;
  port: number;
  /** Topic to use; undefined: a fresh one, `shardline-bench-<time>`. */
  topic?: string | undefined;
  partitions: number;
  producers: number;
  /** Records per produce request (one batch, one partition). */
  batchRecords: number;
  valueBytes: number;
  acks: -1 | 0 | 1;
  /** Records/s over all producers; 0: as fast as the in-flight window allows. */
  rate: number;
  /** Produce requests each producer keeps unanswered (ignored with acks 0). */
  inflight: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  requestTimeoutMs: number;
  onProgress?: (elapsedMs: number, totalMs: number) => void;
}


export interface KafkaBenchResult {
  topic: string;
  seconds: number;
  /** Records sent in the measured window (after the warm-up) and acknowledged (acks 0: sent). */
  produced: number;
  producedBytes: number;
  recordsPerSecond: number;
  megabytesPerSecond: number;
  /** Per produce request, ms; undefined with acks 0 (no answer). */
  produceLatencyMs: Percentiles | undefined;
  /** Per record sent in the measured window and fetched, ms. */
  endToEndMs: Percentiles;
  /** Of the records sent in the measured window, how many the consumer fetched by the end of the drain. */
  consumed: number;
  /** Produce answers with an error, by Kafka error name. */
  errors: Record<string, number>;
  /** Afterwards, everything produced in the run read again from the first offset as fast as Fetch allows (page cache). */
  catchUp: { records: number; seconds: number; megabytesPerSecond: number };
  /** The load tool's own CPU over the run, as a share of one core. */
  toolCpu: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * Record batches of `count` records of `valueBytes` each, stamped with the send time: encoded
 * once, then per request copied, stamped and given a new CRC (the codec's encoder would cost the
 * tool more than the broker's produce path).
 */
class StampedBatches {
  readonly #template: Buffer;
  /** Where each record's value starts in the template. */
  readonly #valueAt: number[] = [];

  constructor(count: number, valueBytes: number) {
    const records = Array.from({ length: count }, (_, i) => ({ attributes: 0, timestampDelta: 0n, offsetDelta: i, key: null, value: Buffer.alloc(valueBytes), headers: [] }));
    this.#template = encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: count - 1, baseTimestamp: 0n, maxTimestamp: 0n, producerId: -1n, producerEpoch: -1, baseSequence: -1, records });
    const r = new Reader(this.#template, BATCH_HEADER_BYTES);
    for (let i = 0; i < count; i += 1) {
      const length = r.varint();
      const end = r.offset + length;
      r.int8();
      r.varlong();
      r.varint();
      r.varint(); // key: null
      r.varint();
      this.#valueAt.push(r.offset);
      r.raw(end - r.offset);
    }
  }

  next(sentAt: number): Buffer {
    const batch = Buffer.from(this.#template);
    const now = BigInt(Date.now());
    batch.writeBigInt64BE(now, BASE_TIMESTAMP_AT);
    batch.writeBigInt64BE(now, BASE_TIMESTAMP_AT + 8);
    for (const at of this.#valueAt) batch.writeDoubleLE(sentAt, at);
    batch.writeUInt32BE(crc32c(batch, ATTRIBUTES_AT), CRC_AT);
    return batch;
  }
}

/**
 * The batches of a Fetch's records, walked by their headers alone (the tool counts records and
 * reads the send time of each batch's first record; it does not check CRCs: the tests do). A
 * batch the broker cut at the end is left out, as consumers do.
 */
function* fetchedBatches(records: Buffer): Generator<{ baseOffset: bigint; lastOffset: bigint; sentAt: number }> {
  let at = 0;
  while (at + BATCH_HEADER_BYTES <= records.length) {
    const end = at + 12 + records.readInt32BE(at + 8);
    if (end > records.length) return;
    const baseOffset = records.readBigInt64BE(at);
    const r = new Reader(records, at + BATCH_HEADER_BYTES, end);
    r.varint();
    r.int8();
    r.varlong();
    r.varint();
    const keyLength = r.varint();
    if (keyLength > 0) r.raw(keyLength);
    const valueLength = r.varint();
    const sentAt = valueLength >= STAMP_BYTES ? records.readDoubleLE(r.offset) : Number.NaN;
    yield { baseOffset, lastOffset: baseOffset + BigInt(records.readInt32BE(at + 23)), sentAt };
    at = end;
  }
}

async function createTopic(client: KafkaWireClient, topic: string, partitions: number, timeoutMs: number, mayExist: boolean): Promise<void> {
  const answer = await withTimeout(client.call(ApiKey.CreateTopics, 5, { topics: [{ name: topic, numPartitions: partitions, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs, validateOnly: false }), timeoutMs, 'CreateTopics');
  const result = (answer.topics as KafkaStruct[])[0]!;
  const code = result.errorCode as number;
  if (code === 0 || (mayExist && kafkaErrorName(code) === 'TOPIC_ALREADY_EXISTS')) return;
  throw new Error(`cannot create topic ${topic}: ${kafkaErrorName(code)}${result.errorMessage === null || result.errorMessage === undefined ? '' : ` (${String(result.errorMessage)})`}`);
}

async function partitionCount(client: KafkaWireClient, topic: string, timeoutMs: number): Promise<number> {
  const answer = await withTimeout(client.call(ApiKey.Metadata, 9, { topics: [{ name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }), timeoutMs, 'Metadata');
  const found = (answer.topics as KafkaStruct[])[0]!;
  if (found.errorCode !== 0) throw new Error(`topic ${topic}: ${kafkaErrorName(found.errorCode as number)}`);
  return (found.partitions as KafkaStruct[]).length;
}

async function latestOffsets(client: KafkaWireClient, topic: string, partitions: number, timeoutMs: number): Promise<bigint[]> {
  const answer = await withTimeout(client.call(ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp: -1n })) }] }), timeoutMs, 'ListOffsets');
  const offsets = new Array<bigint>(partitions).fill(0n);
  for (const entry of (answer.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]) offsets[entry.partitionIndex as number] = entry.offset as bigint;
  return offsets;
}

export async function runKafkaBench(options: KafkaBenchOptions): Promise<KafkaBenchResult> {
  const { host, port, requestTimeoutMs } = options;
  const topic = options.topic ?? `shardline-bench-${Date.now()}`;
  const admin = await KafkaWireClient.open(host, port, 'shardline-bench-admin');
  const clients: KafkaWireClient[] = [admin];
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  try {
    await createTopic(admin, topic, options.partitions, requestTimeoutMs, options.topic !== undefined);
    const partitions = await partitionCount(admin, topic, requestTimeoutMs);
    const fetchFrom = await latestOffsets(admin, topic, partitions, requestTimeoutMs);
    const firstOffsets = [...fetchFrom];

    const produceLatency = new LatencyHistogram();
    const endToEnd = new LatencyHistogram();
    const errors: Record<string, number> = {};
    const totalMs = options.warmupMs + options.durationMs;
    const measureFrom = performance.now() + options.warmupMs;
    const produceUntil = measureFrom + options.durationMs;
    let produced = 0;
    let consumed = 0;
    let stopConsumer = false;

    // The consumer: one long-poll Fetch over every partition at a time.
    const consumer = await KafkaWireClient.open(host, port, 'shardline-bench-consumer');
    clients.push(consumer);
    const consuming = (async () => {
      for (;;) {
        const body = await consumer.call(ApiKey.Fetch, FETCH_VERSION, {
          replicaId: -1, maxWaitMs: FETCH_MAX_WAIT_MS, minBytes: 1, maxBytes: FETCH_MAX_BYTES, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
          topics: [{ topic, partitions: fetchFrom.map((fetchOffset, partition) => ({ partition, currentLeaderEpoch: -1, fetchOffset, logStartOffset: -1n, partitionMaxBytes: FETCH_MAX_BYTES })) }],
          forgottenTopicsData: [], rackId: '',
        });
        const fetchedAt = performance.now();
        for (const entry of (body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[]) {
          const records = entry.records as Buffer | null;
          if (entry.errorCode !== 0) throw new Error(`Fetch of partition ${String(entry.partitionIndex)}: ${kafkaErrorName(entry.errorCode as number)}`);
          if (records === null || records.length === 0) continue;
          // Offsets are dense (a fresh topic, no compaction) and a batch's records share its send time.
          const partition = entry.partitionIndex as number;
          for (const { baseOffset, lastOffset, sentAt } of fetchedBatches(records)) {
            const from = baseOffset > fetchFrom[partition]! ? baseOffset : fetchFrom[partition]!;
            if (lastOffset < from) continue;
            const count = Number(lastOffset - from) + 1;
            fetchFrom[partition] = lastOffset + 1n;
            if (sentAt >= measureFrom && sentAt < produceUntil) {
              consumed += count;
              const ns = (fetchedAt - sentAt) * 1e6;
              for (let i = 0; i < count; i += 1) endToEnd.record(ns);
            }
          }
        }
        if (stopConsumer) return;
      }
    })();

    // Producers: each its own connection, partitions taken in turn, paced to the rate if one is set.
    const perProducerInterval = options.rate > 0 ? (1000 * options.batchRecords * options.producers) / options.rate : 0;
    const producing = Array.from({ length: options.producers }, async (_, index) => {
      const client = await KafkaWireClient.open(host, port, `shardline-bench-producer-${index}`);
      clients.push(client);
      let partition = index % partitions;
      const stamped = new StampedBatches(options.batchRecords, options.valueBytes);
      let next = performance.now();
      const inFlight = new Set<Promise<void>>();
      while (performance.now() < produceUntil) {
        if (perProducerInterval > 0) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          next += perProducerInterval;
        }
        const sentAt = performance.now();
        if (sentAt >= produceUntil) break;
        const records = stamped.next(sentAt);
        const request = { transactionalId: null, acks: options.acks, timeoutMs: requestTimeoutMs, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] };
        partition = (partition + 1) % partitions;
        const measured = sentAt >= measureFrom;
        if (options.acks === 0) {
          client.send(ApiKey.Produce, PRODUCE_VERSION, request);
          if (measured) produced += options.batchRecords;
          if (client.socket.writableNeedDrain) await new Promise((resolve) => client.socket.once('drain', resolve));
          continue;
        }
        const answered = withTimeout(client.call(ApiKey.Produce, PRODUCE_VERSION, request), requestTimeoutMs, 'Produce').then((body) => {
          const result = ((body.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!;
          const code = result.errorCode as number;
          if (code !== 0) {
            const name = kafkaErrorName(code);
            errors[name] = (errors[name] ?? 0) + 1;
          } else if (measured) {
            produced += options.batchRecords;
            produceLatency.record((performance.now() - sentAt) * 1e6);
          }
        });
        const tracked: Promise<void> = answered.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= options.inflight) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    });
    const progress = options.onProgress === undefined ? undefined : setInterval(() => options.onProgress?.(Math.min(performance.now() - startedAt, totalMs), totalMs), 250);
    try {
      await Promise.all(producing);
    } finally {
      if (progress !== undefined) clearInterval(progress);
    }
    options.onProgress?.(totalMs, totalMs);
    // Drain: wait until the consumer has every measured record, or the drain time is up.
    const drainUntil = performance.now() + options.drainMs;
    while (consumed < produced && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 50));
    stopConsumer = true;
    // The consumer's poll in flight ends within its max wait; a closed socket ends it at once.
    consumer.close();
    await consuming.catch(() => undefined);
    const catchUp = await readBack(host, port, topic, firstOffsets, options.valueBytes, requestTimeoutMs);
    clients.push(catchUp.client);
    const seconds = options.durationMs / 1000;
    const cpu = process.cpuUsage(cpuAtStart);
    return {
      topic,
      seconds,
      produced,
      producedBytes: produced * options.valueBytes,
      recordsPerSecond: produced / seconds,
      megabytesPerSecond: (produced * options.valueBytes) / seconds / 1e6,
      produceLatencyMs: options.acks === 0 ? undefined : percentilesMs(produceLatency),
      endToEndMs: percentilesMs(endToEnd),
      consumed,
      errors,
      catchUp: catchUp.result,
      toolCpu: (cpu.user + cpu.system) / 1000 / (performance.now() - startedAt),
    };
  } finally {
    for (const client of clients) client.close();
  }
}

/** Longest the read-back after a run may take. */
const READ_BACK_MAX_MS = 60_000;

/** Reads every partition from `from` to its end as it is now, as a consumer catching up would: Fetch with 16 MiB per partition, no waiting. */
async function readBack(host: string, port: number, topic: string, from: readonly bigint[], valueBytes: number, timeoutMs: number): Promise<{ client: KafkaWireClient; result: KafkaBenchResult['catchUp'] }> {
  const client = await KafkaWireClient.open(host, port, 'shardline-bench-catch-up');
  const ends = await latestOffsets(client, topic, from.length, timeoutMs);
  const next = [...from];
  let records = 0;
  const started = performance.now();
  while (next.some((offset, partition) => offset < ends[partition]!) && performance.now() - started < READ_BACK_MAX_MS) {
    const body = await withTimeout(client.call(ApiKey.Fetch, FETCH_VERSION, {
      replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: FETCH_MAX_BYTES * from.length, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic, partitions: next.map((fetchOffset, partition) => ({ partition, currentLeaderEpoch: -1, fetchOffset, logStartOffset: -1n, partitionMaxBytes: FETCH_MAX_BYTES })) }],
      forgottenTopicsData: [], rackId: '',
    }), timeoutMs, 'Fetch');
    for (const entry of (body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[]) {
      const bytes = entry.records as Buffer | null;
      if (bytes === null || bytes.length === 0) continue;
      const partition = entry.partitionIndex as number;
      for (const { baseOffset, lastOffset } of fetchedBatches(bytes)) {
        const from = baseOffset > next[partition]! ? baseOffset : next[partition]!;
        const last = lastOffset < ends[partition]! ? lastOffset : ends[partition]! - 1n;
        if (last < from) continue;
        records += Number(last - from) + 1;
        next[partition] = last + 1n;
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return { client, result: { records, seconds, megabytesPerSecond: seconds === 0 ? 0 : (records * valueBytes) / seconds / 1e6 } };
}
