// The Kafka API handlers of this node: one decoded request in, one response body out (or none:
// Produce with acks = 0). Topics and partitions are shards (topics.ts), records are neutral
// envelopes (records.ts). No sockets: the connection (connection.ts) calls handle() and frames
// the answer. Which APIs are served, and at which versions, is SERVED_APIS: ApiVersions
// advertises exactly those, so clients try no other.
import type { Logger } from 'pino';
import { isShardlineError, kafkaPartitionShardName } from '../../../base/index.js';
import type { JournalRecord } from '../../../journal/index.js';
import type { ShardStore } from '../../../shard-model/index.js';
import {
  ApiKey,
  BatchAttributes,
  decodeRecordBatches,
  encodeRecordBatch,
  isLogAppendTime,
  KafkaErrorCode,
  SUPPORTED_APIS,
  type KafkaRecord,
  type KafkaStruct,
  type RequestHeader,
  type SupportedApi,
} from '../codec/index.js';
import { GROUP_API_KEYS, type KafkaClientInfo, type KafkaGroupService } from './groups/group-service.js';
import { fromJournalRecord, toRecordInput } from './records.js';
import type { TopicCatalog } from './topics.js';

/** The APIs this node serves now, at the codec's advertised ranges. */
const SERVED_KEYS = [ApiKey.Produce, ApiKey.Fetch, ApiKey.ListOffsets, ApiKey.Metadata, ApiKey.ApiVersions, ApiKey.CreateTopics, ...GROUP_API_KEYS];
export const SERVED_APIS: ReadonlyMap<number, SupportedApi> = new Map(SERVED_KEYS.map((key) => [key, SUPPORTED_APIS.get(key) as SupportedApi]));

export function isServed(apiKey: number, apiVersion: number): boolean {
  const api = SERVED_APIS.get(apiKey);
  return api !== undefined && apiVersion >= api.min && apiVersion <= api.max;
}

/** Largest wait a Fetch may ask for (Kafka clients ask 500 ms to a few seconds). */
const MAX_FETCH_WAIT_MS = 30_000;

export interface KafkaServiceOptions {
  store: ShardStore;
  topics: TopicCatalog;
  /** The broker id Metadata names (this node is the only broker). */
  nodeId: number;
  /** What Metadata tells clients to dial. */
  advertised: () => { host: string; port: number };
  clusterId: string;
  /** The consumer-group APIs (groups/); absent only in tests of the other handlers. */
  groups?: KafkaGroupService;
  logger: Logger;
  now?: () => number;
}

type Struct = KafkaStruct;

export class KafkaService {
  readonly #now: () => number;

  constructor(private readonly options: KafkaServiceOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** The response body; undefined: no response (Produce acks = 0). `signal` ends a long poll when the connection goes. */
  async handle(header: RequestHeader, body: Struct, signal: AbortSignal, client?: KafkaClientInfo): Promise<Struct | undefined> {
    switch (header.apiKey) {
      case ApiKey.ApiVersions:
        return this.apiVersions(body);
      case ApiKey.Metadata:
        return this.metadata(header, body);
      case ApiKey.CreateTopics:
        return this.createTopics(body);
      case ApiKey.Produce:
        return this.produce(body);
      case ApiKey.Fetch:
        return this.fetch(body, signal);
      case ApiKey.ListOffsets:
        return this.listOffsets(body);
      case ApiKey.FindCoordinator:
      case ApiKey.JoinGroup:
      case ApiKey.SyncGroup:
      case ApiKey.Heartbeat:
      case ApiKey.LeaveGroup:
      case ApiKey.OffsetCommit:
      case ApiKey.OffsetFetch:
      case ApiKey.DescribeGroups:
      case ApiKey.ListGroups:
      case ApiKey.DeleteGroups:
        if (this.options.groups === undefined) throw new Error(`API ${header.apiKey} needs the group service`);
        return this.options.groups.handle(header, body, client);
      default:
        throw new Error(`API ${header.apiKey} is not served`);
    }
  }

  apiVersions(body: Struct): Struct {
    // Kafka checks the client software name and version (KIP-511) of v3+.
    const valid = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
    const name = body.clientSoftwareName as string | undefined;
    const version = body.clientSoftwareVersion as string | undefined;
    const apiKeys = [...SERVED_APIS.values()].map((api) => ({ apiKey: api.key, minVersion: api.min, maxVersion: api.max }));
    if ((name !== undefined && name !== '' && !valid.test(name)) || (version !== undefined && version !== '' && !valid.test(version))) {
      return { errorCode: KafkaErrorCode.INVALID_REQUEST, apiKeys, throttleTimeMs: 0 };
    }
    return { errorCode: 0, apiKeys, throttleTimeMs: 0 };
  }

  metadata(header: RequestHeader, body: Struct): Struct {
    const { nodeId, clusterId } = this.options;
    const { host, port } = this.options.advertised();
    const requested = body.topics as Array<{ name: string | null }> | null;
    // v0: an empty list is every topic; v1+: null is every topic. Auto-creation is off.
    const all = requested === null || (header.apiVersion === 0 && requested.length === 0);
    const names = all ? this.options.topics.all().map((topic) => topic.name) : requested.map((topic) => topic.name ?? '');
    const topics = names.map((name) => {
      const topic = this.options.topics.get(name);
      if (topic === undefined) return { errorCode: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, isInternal: false, partitions: [] };
      const partitions = Array.from({ length: topic.partitions }, (_, partitionIndex) => ({ errorCode: 0, partitionIndex, leaderId: nodeId, leaderEpoch: 0, replicaNodes: [nodeId], isrNodes: [nodeId], offlineReplicas: [] }));
      return { errorCode: 0, name, isInternal: false, partitions };
    });
    return { throttleTimeMs: 0, brokers: [{ nodeId, host, port, rack: null }], clusterId, controllerId: nodeId, topics };
  }

  async createTopics(body: Struct): Promise<Struct> {
    const validateOnly = body.validateOnly === true;
    const topics: Struct[] = [];
    for (const topic of body.topics as Struct[]) {
      const name = topic.name as string;
      const assigned = (topic.assignments as Struct[]).length;
      const partitions = assigned > 0 ? assigned : (topic.numPartitions as number);
      const result = await this.options.topics.create(name, partitions, assigned > 0 ? 1 : (topic.replicationFactor as number), validateOnly);
      const created = this.options.topics.get(name);
      topics.push({ name, errorCode: result.errorCode, errorMessage: result.message, numPartitions: result.errorCode === 0 ? (created?.partitions ?? partitions) : -1, replicationFactor: result.errorCode === 0 ? 1 : -1, configs: [] });
    }
    return { throttleTimeMs: 0, topics };
  }

  async produce(body: Struct): Promise<Struct | undefined> {
    const acks = body.acks as number;
    const responses: Struct[] = [];
    const work: Array<Promise<void>> = [];
    for (const topicData of body.topicData as Struct[]) {
      const name = topicData.name as string;
      const partitionResponses: Struct[] = [];
      responses.push({ name, partitionResponses });
      for (const partitionData of topicData.partitionData as Struct[]) {
        const index = partitionData.index as number;
        const response: Struct = { index, errorCode: 0, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, recordErrors: [], errorMessage: null };
        partitionResponses.push(response);
        if (acks !== 0 && acks !== 1 && acks !== -1) {
          response.errorCode = KafkaErrorCode.INVALID_REQUIRED_ACKS;
          continue;
        }
        work.push(this.producePartition(name, index, partitionData.records as Buffer | null, response));
      }
    }
    await Promise.all(work);
    if (acks === 0) return undefined;
    return { responses, throttleTimeMs: 0 };
  }

  private async producePartition(topicName: string, partition: number, bytes: Buffer | null, response: Struct): Promise<void> {
    const topic = this.options.topics.get(topicName);
    if (topic === undefined || partition < 0 || partition >= topic.partitions) {
      response.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      return;
    }
    let records: KafkaRecord[];
    let timestampOf: (record: KafkaRecord) => number;
    try {
      const { batches } = decodeRecordBatches(bytes ?? Buffer.alloc(0));
      // Produce v3+ carries exactly one batch per partition.
      if (batches.length !== 1) {
        response.errorCode = KafkaErrorCode.INVALID_RECORD;
        response.errorMessage = `a partition carries ${batches.length} record batches; Produce v3+ takes exactly one`;
        return;
      }
      const batch = batches[0]!;
      if ((batch.attributes & (BatchAttributes.transactional | BatchAttributes.control)) !== 0) {
        response.errorCode = KafkaErrorCode.INVALID_RECORD;
        response.errorMessage = 'transactional and control batches are not supported';
        return;
      }
      records = batch.records;
      const now = this.#now();
      // LogAppendTime, or a record without a timestamp (-1): the time it is appended.
      timestampOf = isLogAppendTime(batch.attributes) ? () => now : (record) => {
        const timestamp = Number(batch.baseTimestamp + record.timestampDelta);
        return timestamp >= 0 ? timestamp : now;
      };
    } catch (error) {
      response.errorCode = isShardlineError(error, 'SL_KAFKA_COMPRESSION') ? KafkaErrorCode.UNSUPPORTED_COMPRESSION_TYPE : KafkaErrorCode.CORRUPT_MESSAGE;
      response.errorMessage = (error as Error).message;
      return;
    }
    if (records.length === 0) {
      response.errorCode = KafkaErrorCode.INVALID_RECORD;
      response.errorMessage = 'an empty record batch';
      return;
    }
    try {
      const appended = await this.options.store.append(
        kafkaPartitionShardName(topicName, partition),
        records.map((record) => toRecordInput(topicName, record, timestampOf(record))),
      );
      response.baseOffset = BigInt(appended.baseOffset);
    } catch (error) {
      this.options.logger.warn({ err: error, topic: topicName, partition }, 'Kafka produce: append failed');
      response.errorCode = storeErrorCode(error);
      response.errorMessage = (error as Error).message;
    }
  }

  async fetch(body: Struct, signal: AbortSignal): Promise<Struct> {
    const maxWaitMs = Math.min(Math.max(body.maxWaitMs as number, 0), MAX_FETCH_WAIT_MS);
    const minBytes = Math.max(body.minBytes as number, 0);
    const maxBytes = Math.max(body.maxBytes as number, 1);
    const wanted = (body.topics as Struct[]).map((topic) => ({ topic: topic.topic as string, partitions: (topic.partitions as Struct[]).map((p) => ({ partition: p.partition as number, fetchOffset: Number(p.fetchOffset as bigint), partitionMaxBytes: p.partitionMaxBytes as number })) }));
    const deadline = this.#now() + maxWaitMs;
    for (;;) {
      const result = await this.readFetch(wanted, maxBytes);
      const remaining = deadline - this.#now();
      if (result.bytes >= minBytes || remaining <= 0 || result.errors || signal.aborted) return result.response;
      // Nothing yet: wait for an append to any partition asked for (its tail wakes us), or the deadline.
      await this.waitForAppend(result.waitOn, remaining, signal);
      if (this.#now() >= deadline || signal.aborted) return (await this.readFetch(wanted, maxBytes)).response;
    }
  }

  private async readFetch(wanted: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: number; partitionMaxBytes: number }> }>, maxBytes: number): Promise<{ response: Struct; bytes: number; errors: boolean; waitOn: Array<{ shard: string; offset: number }> }> {
    let budget = maxBytes;
    let bytes = 0;
    let errors = false;
    const waitOn: Array<{ shard: string; offset: number }> = [];
    const responses: Struct[] = [];
    for (const { topic: name, partitions } of wanted) {
      const topic = this.options.topics.get(name);
      const out: Struct[] = [];
      responses.push({ topic: name, partitions: out });
      for (const { partition, fetchOffset, partitionMaxBytes } of partitions) {
        const entry: Struct = { partitionIndex: partition, errorCode: 0, highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: null, preferredReadReplica: -1, records: null };
        out.push(entry);
        if (topic === undefined || partition < 0 || partition >= topic.partitions) {
          entry.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          errors = true;
          continue;
        }
        const shard = kafkaPartitionShardName(name, partition);
        try {
          const [info, highWatermark] = await Promise.all([this.options.store.info(shard), this.options.store.highWatermark(shard)]);
          entry.highWatermark = BigInt(highWatermark);
          entry.lastStableOffset = BigInt(highWatermark);
          entry.logStartOffset = BigInt(info.startOffset);
          if (fetchOffset < info.startOffset || fetchOffset > highWatermark) {
            entry.errorCode = KafkaErrorCode.OFFSET_OUT_OF_RANGE;
            errors = true;
            continue;
          }
          if (fetchOffset === highWatermark || budget <= 0) {
            waitOn.push({ shard, offset: fetchOffset });
            continue;
          }
          // The first partition with data gets at least one record even past the limits (as Kafka does).
          const limit = Math.max(1, Math.min(partitionMaxBytes, budget));
          const stored = await this.options.store.read(shard, fetchOffset, { maxBytes: limit });
          const batch = encodeStored(stored, bytes === 0 ? Number.MAX_SAFE_INTEGER : limit);
          if (batch === undefined) {
            waitOn.push({ shard, offset: fetchOffset });
            continue;
          }
          entry.records = batch;
          waitOn.push({ shard, offset: stored[stored.length - 1]!.offset + 1 });
          bytes += batch.length;
          budget -= batch.length;
        } catch (error) {
          this.options.logger.warn({ err: error, topic: name, partition }, 'Kafka fetch: read failed');
          entry.errorCode = storeErrorCode(error);
          errors = true;
        }
      }
    }
    return { response: { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses }, bytes, errors, waitOn };
  }

  /** Resolves at the first append to any of the shards (their tails), at the timeout, or when aborted. */
  private async waitForAppend(shards: Array<{ shard: string; offset: number }>, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (shards.length === 0) return new Promise((resolve) => setTimeout(resolve, Math.min(timeoutMs, 100)));
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    signal.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(stop, timeoutMs);
    try {
      await Promise.race([
        new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true })),
        ...shards.map(async ({ shard, offset }) => {
          try {
            for await (const _record of this.options.store.tail(shard, offset, { signal: controller.signal })) return;
          } catch {
            // A tail ended by the abort, or a shard gone: the next read reports it.
          }
        }).map((waiting) => waiting.then(stop)),
      ]);
    } finally {
      clearTimeout(timer);
      controller.abort();
      signal.removeEventListener('abort', stop);
    }
  }

  async listOffsets(body: Struct): Promise<Struct> {
    const topics: Struct[] = [];
    for (const topicRequest of body.topics as Struct[]) {
      const name = topicRequest.name as string;
      const topic = this.options.topics.get(name);
      const partitions: Struct[] = [];
      topics.push({ name, partitions });
      for (const p of topicRequest.partitions as Struct[]) {
        const partitionIndex = p.partitionIndex as number;
        const timestamp = p.timestamp as bigint;
        const entry: Struct = { partitionIndex, errorCode: 0, timestamp: -1n, offset: -1n, leaderEpoch: 0 };
        partitions.push(entry);
        if (topic === undefined || partitionIndex < 0 || partitionIndex >= topic.partitions) {
          entry.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          continue;
        }
        const shard = kafkaPartitionShardName(name, partitionIndex);
        try {
          if (timestamp === -2n) entry.offset = BigInt((await this.options.store.info(shard)).startOffset);
          else if (timestamp === -1n) entry.offset = BigInt(await this.options.store.highWatermark(shard));
          else if (timestamp >= 0n) {
            const [found] = await this.options.store.readByTime(shard, Number(timestamp), { maxRecords: 1 });
            if (found !== undefined) {
              entry.offset = BigInt(found.offset);
              entry.timestamp = BigInt(found.timestamp);
            }
          } else entry.errorCode = KafkaErrorCode.INVALID_REQUEST;
        } catch (error) {
          entry.errorCode = storeErrorCode(error);
        }
      }
    }
    return { throttleTimeMs: 0, topics };
  }
}

/**
 * Stored records as one record batch v2 (uncompressed) with offsets = shard offsets, cut to
 * `maxBytes` (whole records; at least one). undefined when none is a Kafka record.
 */
function encodeStored(stored: readonly JournalRecord[], maxBytes: number): Buffer | undefined {
  const records = stored.map(fromJournalRecord).filter((record) => record !== undefined);
  if (records.length === 0) return undefined;
  let count = records.length;
  for (;;) {
    const chosen = records.slice(0, count);
    const first = chosen[0]!;
    const last = chosen[chosen.length - 1]!;
    const base = BigInt(first.timestamp);
    const batch = encodeRecordBatch({
      baseOffset: BigInt(first.offset),
      partitionLeaderEpoch: 0,
      attributes: 0,
      lastOffsetDelta: last.offset - first.offset,
      baseTimestamp: base,
      maxTimestamp: chosen.reduce((max, record) => (BigInt(record.timestamp) > max ? BigInt(record.timestamp) : max), base),
      producerId: -1n,
      producerEpoch: -1,
      baseSequence: -1,
      records: chosen.map((record) => ({ attributes: 0, timestampDelta: BigInt(record.timestamp) - base, offsetDelta: record.offset - first.offset, key: record.key, value: record.value, headers: record.headers })),
    });
    if (batch.length <= maxBytes || count === 1) return batch;
    count = Math.max(1, Math.floor(count / 2));
  }
}

function storeErrorCode(error: unknown): number {
  if (isShardlineError(error, 'SL_JOURNAL_OFFSET_OUT_OF_RANGE')) return KafkaErrorCode.OFFSET_OUT_OF_RANGE;
  if (isShardlineError(error, 'SL_JOURNAL_RECORD_TOO_LARGE') || isShardlineError(error, 'SL_JOURNAL_BATCH_TOO_LARGE')) return KafkaErrorCode.MESSAGE_TOO_LARGE;
  return KafkaErrorCode.KAFKA_STORAGE_ERROR;
}
