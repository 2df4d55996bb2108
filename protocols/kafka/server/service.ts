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
  compressionOf,
  decodeRecordBatches,
  DEFAULT_CODECS,
  isLogAppendTime,
  KafkaErrorCode,
  SUPPORTED_APIS,
  type DecodedBatch,
  type KafkaRecord,
  type KafkaStruct,
  type RequestHeader,
  type SupportedApi,
} from '../codec/index.js';
import { GROUP_API_KEYS, type KafkaClientInfo, type KafkaGroupService } from './groups/group-service.js';
import type { ClientIdentity } from '../../../engine/index.js';
import { kafkaIdentity, type MqttTopic } from './mqtt-topic.js';
import { toRecordInput, type StoredKafkaRecord } from './records.js';
import { crcHeaderValue, encodeStoredRecords, framePartition, KAFKA_CRC_HEADER, produceCrc } from './fetch-frames.js';
import { KafkaAdmin } from './admin.js';
import { brokersOn, leaderCandidates, partitionLeader, type KafkaBroker, type KafkaClusterMember, type KafkaClusterView, type KafkaListenerName } from './cluster.js';
import type { Idempotence } from './idempotence.js';
import type { ProducerBatch } from './producer-state.js';
import { DEFAULT_TOPIC_CONFIGS, describeTopicConfigs, type TopicConfigs } from './topic-configs.js';
import type { TopicCatalog } from './topics.js';

/** The APIs this node serves now, at the codec's advertised ranges. */
const SERVED_KEYS = [ApiKey.Produce, ApiKey.Fetch, ApiKey.ListOffsets, ApiKey.Metadata, ApiKey.ApiVersions, ApiKey.CreateTopics, ApiKey.InitProducerId, ApiKey.DeleteTopics, ApiKey.CreatePartitions, ApiKey.DescribeConfigs, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate, ...GROUP_API_KEYS];
// SaslHandshake v0 would be followed by bare SASL tokens outside Kafka's framing; v1 (tokens in SaslAuthenticate) only.
const served = (key: number): SupportedApi => {
  const api = SUPPORTED_APIS.get(key) as SupportedApi;
  return key === ApiKey.SaslHandshake ? { ...api, min: 1 } : api;
};
export const SERVED_APIS: ReadonlyMap<number, SupportedApi> = new Map(SERVED_KEYS.map((key) => [key, served(key)]));

export function isServed(apiKey: number, apiVersion: number): boolean {
  const api = SERVED_APIS.get(apiKey);
  return api !== undefined && apiVersion >= api.min && apiVersion <= api.max;
}

/** A partition with nothing to return has empty records, not null: librdkafka refuses a null record set ("invalid MessageSetSize -1"), as Kafka never sends one. */
const NO_RECORDS = Buffer.alloc(0);

/** Largest wait a Fetch may ask for (Kafka clients ask 500 ms to a few seconds). */
const MAX_FETCH_WAIT_MS = 30_000;

export interface KafkaServiceOptions {
  store: ShardStore;
  topics: TopicCatalog;
  idempotence: Idempotence;
  /** This broker's id in Metadata (in a cluster, the view's selfId). */
  nodeId: number;
  /** The address a client of `listener` is told to dial. */
  advertised: (listener: KafkaListenerName) => { host: string; port: number };
  clusterId: string;
  /** The consumer-group APIs (groups/); absent only in tests of the other handlers. */
  groups?: KafkaGroupService;
  logger: Logger;
  now?: () => number;
  /** The MQTT data shards as a Kafka topic; undefined: not shown. */
  mqttTopic?: MqttTopic | undefined;
  /** The live brokers of a cluster; undefined: this node is the only broker. */
  cluster?: KafkaClusterView | undefined;
}

/** Who sent a request: for DescribeGroups' client host and the access policy of the MQTT topic. */
export interface KafkaClient extends KafkaClientInfo {
  readonly remoteAddress: string;
  /** The SASL user once authenticated; undefined: anonymous. */
  readonly username: string | undefined;
}

/** A topic as the admin API shows it: partition i is shards[i]. */
export interface ServedTopic {
  name: string;
  /** The MQTT data shards' topic (--kafka-mqtt-topic). */
  mqtt: boolean;
  shards: string[];
}

/** A topic's partitions, whichever kind of topic it is. */
interface PartitionedTopic {
  partitions: number;
  shardOf(partition: number): string;
  /** The MQTT topic's are the defaults: it is made of the MQTT data shards, not configured. */
  configs: TopicConfigs;
  /** Set for the MQTT topic. */
  mqtt?: MqttTopic;
}

type Struct = KafkaStruct;

export class KafkaService {
  readonly #now: () => number;
  readonly #admin: KafkaAdmin;

  constructor(private readonly options: KafkaServiceOptions) {
    this.#now = options.now ?? Date.now;
    this.#admin = new KafkaAdmin(options);
  }

  /** The response body; undefined: no response (Produce acks = 0). `signal` ends a long poll when the connection goes. */
  async handle(header: RequestHeader, body: Struct, signal: AbortSignal, client?: KafkaClient): Promise<Struct | undefined> {
    if (this.options.cluster !== undefined && this.#readsCatalog(header.apiKey, body)) await this.options.topics.refresh();
    switch (header.apiKey) {
      case ApiKey.ApiVersions:
        return this.apiVersions(body);
      case ApiKey.Metadata:
        return this.metadata(header, body, client?.listener ?? 'plain');
      case ApiKey.CreateTopics:
        return this.createTopics(body);
      case ApiKey.Produce:
        return this.produce(kafkaIdentity(header.clientId, client), body);
      case ApiKey.Fetch:
        return this.fetch(kafkaIdentity(header.clientId, client), body, signal);
      case ApiKey.ListOffsets:
        return this.listOffsets(body);
      case ApiKey.InitProducerId:
        return this.options.idempotence.initProducerId(body);
      case ApiKey.DeleteTopics:
        return this.#admin.deleteTopics(header, body);
      case ApiKey.CreatePartitions:
        return this.#admin.createPartitions(body);
      case ApiKey.DescribeConfigs:
        return this.#admin.describeConfigs(body);
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

  /**
   * In a cluster another broker may have created, grown or deleted topics since this one read
   * `$kafka.topics`: Metadata and the topic admin APIs read its new records first, and so does a
   * data request naming a topic or partition this broker does not know (yet).
   */
  #readsCatalog(apiKey: number, body: Struct): boolean {
    switch (apiKey) {
      case ApiKey.Metadata:
      case ApiKey.CreateTopics:
      case ApiKey.DeleteTopics:
      case ApiKey.CreatePartitions:
      case ApiKey.DescribeConfigs:
        return true;
      case ApiKey.Produce:
        return (body.topicData as Struct[]).some((t) => (t.partitionData as Struct[]).some((p) => !this.#knows(t.name as string, p.index as number)));
      case ApiKey.Fetch:
        return (body.topics as Struct[]).some((t) => (t.partitions as Struct[]).some((p) => !this.#knows(t.topic as string, p.partition as number)));
      case ApiKey.ListOffsets:
      case ApiKey.OffsetCommit:
        return (body.topics as Struct[]).some((t) => (t.partitions as Struct[]).some((p) => !this.#knows(t.name as string, p.partitionIndex as number)));
      default:
        return false;
    }
  }

  #knows(name: string, partition: number): boolean {
    const topic = this.topic(name);
    return topic !== undefined && partition < topic.partitions;
  }

  /** This broker as clients of `listener` are told to dial it. */
  self(listener: KafkaListenerName = 'plain'): KafkaBroker {
    return { nodeId: this.options.nodeId, ...this.options.advertised(listener) };
  }

  /** A cluster's live brokers, sorted by id; undefined outside a cluster or while they are not known yet. */
  #members(): readonly KafkaClusterMember[] | undefined {
    const brokers = this.options.cluster?.brokers();
    return brokers === undefined || brokers.length === 0 ? undefined : brokers;
  }

  /**
   * The leader of a partition of a Kafka topic, from the brokers every client can dial
   * (leaderCandidates): the same whichever listener asks. Undefined while a cluster's brokers
   * are not known, or when none serves every listener in use.
   */
  #leaderOf(candidates: readonly KafkaClusterMember[] | undefined, topic: string, partition: number): number | undefined {
    if (this.options.cluster === undefined) return this.options.nodeId;
    return candidates === undefined ? undefined : partitionLeader(candidates, topic, partition)?.nodeId;
  }

  #candidates(members = this.#members()): KafkaClusterMember[] | undefined {
    return members === undefined ? undefined : leaderCandidates(members);
  }

  /**
   * In a cluster, the broker a partition's produce goes to (NOT_LEADER_OR_FOLLOWER elsewhere):
   * one writer per partition, so two brokers do not race their idempotence checks on it. When
   * leaders move, the new one reads what others appended before it checks (idempotence.ts).
   */
  #leads(topic: string, partition: number): boolean {
    const cluster = this.options.cluster;
    if (cluster === undefined || this.topic(topic)?.mqtt !== undefined) return true;
    return this.#leaderOf(this.#candidates(), topic, partition) === cluster.selfId;
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

  metadata(header: RequestHeader, body: Struct, listener: KafkaListenerName = 'plain'): Struct {
    const { nodeId, clusterId } = this.options;
    const members = this.#members();
    const candidates = this.#candidates(members);
    // A client is told only the brokers of its own listener; the leaders (candidates) are among them.
    const brokers: readonly KafkaBroker[] = members === undefined ? [this.self(listener)] : brokersOn(members, listener);
    const requested = body.topics as Array<{ name: string | null }> | null;
    // v0: an empty list is every topic; v1+: null is every topic. Auto-creation is off.
    const all = requested === null || (header.apiVersion === 0 && requested.length === 0);
    const mqttTopic = this.options.mqttTopic;
    const names = all ? [...this.options.topics.all().map((topic) => topic.name), ...(mqttTopic === undefined ? [] : [mqttTopic.name])] : requested.map((topic) => topic.name ?? '');
    const topics = names.map((name) => {
      const topic = this.topic(name);
      if (topic === undefined) return { errorCode: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, isInternal: false, partitions: [] };
      const partitions = Array.from({ length: topic.partitions }, (_, partitionIndex) => {
        // The MQTT topic is written through the MQTT broker of whichever node takes the produce: no leader to pick.
        const leaderId = topic.mqtt === undefined ? this.#leaderOf(candidates, name, partitionIndex) : nodeId;
        // Clients retry LEADER_NOT_AVAILABLE after a metadata refresh.
        if (leaderId === undefined) return { errorCode: KafkaErrorCode.LEADER_NOT_AVAILABLE, partitionIndex, leaderId: -1, leaderEpoch: -1, replicaNodes: [], isrNodes: [], offlineReplicas: [] };
        return { errorCode: 0, partitionIndex, leaderId, leaderEpoch: 0, replicaNodes: [leaderId], isrNodes: [leaderId], offlineReplicas: [] };
      });
      return { errorCode: 0, name, isInternal: false, partitions };
    });
    // Every broker serves the controller's APIs (topic admin, InitProducerId), so each names itself.
    return { throttleTimeMs: 0, brokers: brokers.map((broker) => ({ ...broker, rack: null })), clusterId, controllerId: nodeId, topics };
  }

  async createTopics(body: Struct): Promise<Struct> {
    const validateOnly = body.validateOnly === true;
    const topics: Struct[] = [];
    for (const topic of body.topics as Struct[]) {
      const name = topic.name as string;
      if (name === this.options.mqttTopic?.name) {
        topics.push({ name, errorCode: KafkaErrorCode.TOPIC_ALREADY_EXISTS, errorMessage: `topic ${name} is the MQTT traffic of this node (--kafka-mqtt-topic)`, numPartitions: -1, replicationFactor: -1, configs: [] });
        continue;
      }
      const assigned = (topic.assignments as Struct[]).length;
      const partitions = assigned > 0 ? assigned : (topic.numPartitions as number);
      const result = await this.options.topics.create(name, partitions, assigned > 0 ? 1 : (topic.replicationFactor as number), validateOnly, topic.configs as Array<{ name: string; value: string | null }>);
      const created = this.options.topics.get(name);
      const configs = result.errorCode === 0 && created !== undefined ? describeTopicConfigs(created.configs, created.explicit, null, false) : [];
      topics.push({ name, errorCode: result.errorCode, errorMessage: result.message, numPartitions: result.errorCode === 0 ? (created?.partitions ?? partitions) : -1, replicationFactor: result.errorCode === 0 ? 1 : -1, configs });
    }
    return { throttleTimeMs: 0, topics };
  }

  /** A topic by name: a Kafka topic of the catalog, or the MQTT topic. */
  private topic(name: string): PartitionedTopic | undefined {
    const mqtt = this.options.mqttTopic;
    if (mqtt !== undefined && name === mqtt.name) return { partitions: mqtt.partitions, shardOf: (partition) => mqtt.shardOf(partition), configs: DEFAULT_TOPIC_CONFIGS, mqtt };
    const topic = this.options.topics.get(name);
    return topic === undefined ? undefined : { partitions: topic.partitions, shardOf: (partition) => kafkaPartitionShardName(name, partition), configs: topic.configs };
  }

  /** Every topic, the MQTT one included, sorted by name. */
  servedTopics(): ServedTopic[] {
    const names = [...this.options.topics.all().map((topic) => topic.name), ...(this.options.mqttTopic === undefined ? [] : [this.options.mqttTopic.name])].sort();
    return names.map((name) => {
      const topic = this.topic(name) as PartitionedTopic;
      return { name, mqtt: topic.mqtt !== undefined, shards: Array.from({ length: topic.partitions }, (_, partition) => topic.shardOf(partition)) };
    });
  }

  async produce(identity: ClientIdentity, body: Struct): Promise<Struct | undefined> {
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
        work.push(this.producePartition(identity, name, index, partitionData.records as Buffer | null, response));
      }
    }
    await Promise.all(work);
    if (acks === 0) return undefined;
    return { responses, throttleTimeMs: 0 };
  }

  private async producePartition(identity: ClientIdentity, topicName: string, partition: number, bytes: Buffer | null, response: Struct): Promise<void> {
    const topic = this.topic(topicName);
    if (topic === undefined || partition < 0 || partition >= topic.partitions) {
      response.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      return;
    }
    let records: KafkaRecord[];
    let timestampOf: (record: KafkaRecord) => number;
    let producer: ProducerBatch | undefined;
    let sent: DecodedBatch;
    try {
      const { batches } = decodeRecordBatches(bytes ?? Buffer.alloc(0));
      // Produce v3+ carries exactly one batch per partition.
      if (batches.length !== 1) {
        response.errorCode = KafkaErrorCode.INVALID_RECORD;
        response.errorMessage = `a partition carries ${batches.length} record batches; Produce v3+ takes exactly one`;
        return;
      }
      const batch = batches[0]!;
      sent = batch;
      // max.message.bytes bounds the batch as the producer sent it (compressed), as Kafka's does.
      if (batch.bytes.length > topic.configs.maxMessageBytes) {
        response.errorCode = KafkaErrorCode.MESSAGE_TOO_LARGE;
        response.errorMessage = `a record batch of ${batch.bytes.length} bytes is over the topic's max.message.bytes (${topic.configs.maxMessageBytes})`;
        return;
      }
      if ((batch.attributes & (BatchAttributes.transactional | BatchAttributes.control)) !== 0) {
        response.errorCode = KafkaErrorCode.INVALID_RECORD;
        response.errorMessage = 'transactional and control batches are not supported';
        return;
      }
      records = batch.records;
      // A compacted partition keeps the latest record per key; without a key there is nothing to keep it by.
      if (topic.configs.cleanupPolicy === 'compact' && records.some((record) => record.key === null)) {
        response.errorCode = KafkaErrorCode.INVALID_RECORD;
        response.errorMessage = `topic ${topicName} is compacted: every record needs a key`;
        return;
      }
      if (batch.producerId >= 0n) producer = { producerId: batch.producerId, producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence, count: batch.lastOffsetDelta + 1 };
      const now = this.#now();
      // LogAppendTime, or a record without a timestamp (-1): the time it is appended.
      timestampOf = isLogAppendTime(batch.attributes) ? () => now : (record) => {
        const timestamp = Number(batch.baseTimestamp + record.timestampDelta);
        return timestamp >= 0 ? timestamp : now;
      };
    } catch (error) {
      response.errorCode = isUnknownCodec(bytes) ? KafkaErrorCode.UNSUPPORTED_COMPRESSION_TYPE : KafkaErrorCode.CORRUPT_MESSAGE;
      response.errorMessage = (error as Error).message;
      return;
    }
    if (records.length === 0) {
      response.errorCode = KafkaErrorCode.INVALID_RECORD;
      response.errorMessage = 'an empty record batch';
      return;
    }
    if (!this.#leads(topicName, partition)) {
      response.errorCode = KafkaErrorCode.NOT_LEADER_OR_FOLLOWER;
      response.errorMessage = `another broker leads ${topicName}-${partition}; refresh the metadata`;
      return;
    }
    if (topic.mqtt !== undefined) {
      // The records become MQTT messages, each in the data shard of its MQTT topic, whichever
      // partition the client picked: no single base offset to answer with (docs/kafka.md).
      try {
        Object.assign(response, await topic.mqtt.produce(records, identity, this.#now()));
      } catch (error) {
        this.options.logger.warn({ err: error, topic: topicName, partition }, 'Kafka produce to the MQTT topic: publish failed');
        response.errorCode = storeErrorCode(error);
        response.errorMessage = (error as Error).message;
      }
      return;
    }
    try {
      const shard = topic.shardOf(partition);
      const inputs = records.map((record) => toRecordInput(topicName, record, timestampOf(record)));
      // The Kafka CRC a fetch of this batch will send, worked out once here (fetch-frames.ts).
      const crc = produceCrc(inputs, sent);
      if (crc !== undefined) inputs[0] = { ...inputs[0]!, headers: [...(inputs[0]!.headers ?? []), { key: KAFKA_CRC_HEADER, value: crcHeaderValue(crc, inputs.length) }] };
      if (producer === undefined) {
        response.baseOffset = BigInt((await this.options.store.append(shard, inputs)).baseOffset);
        return;
      }
      const result = await this.options.idempotence.append(shard, producer, inputs);
      if (result.errorCode === 0 && 'baseOffset' in result) response.baseOffset = BigInt(result.baseOffset);
      else {
        response.errorCode = result.errorCode;
        response.errorMessage = 'message' in result ? result.message : null;
      }
    } catch (error) {
      this.options.logger.warn({ err: error, topic: topicName, partition }, 'Kafka produce: append failed');
      response.errorCode = storeErrorCode(error);
      response.errorMessage = (error as Error).message;
    }
  }

  async fetch(identity: ClientIdentity, body: Struct, signal: AbortSignal): Promise<Struct> {
    const maxWaitMs = Math.min(Math.max(body.maxWaitMs as number, 0), MAX_FETCH_WAIT_MS);
    const minBytes = Math.max(body.minBytes as number, 0);
    const maxBytes = Math.max(body.maxBytes as number, 1);
    const wanted = (body.topics as Struct[]).map((topic) => ({ topic: topic.topic as string, partitions: (topic.partitions as Struct[]).map((p) => ({ partition: p.partition as number, fetchOffset: Number(p.fetchOffset as bigint), partitionMaxBytes: p.partitionMaxBytes as number })) }));
    const deadline = this.#now() + maxWaitMs;
    for (;;) {
      const result = await this.readFetch(identity, wanted, maxBytes);
      const remaining = deadline - this.#now();
      if (result.bytes >= minBytes || remaining <= 0 || result.errors || signal.aborted) return result.response;
      // Nothing yet: wait for an append to any partition asked for (its tail wakes us), or the deadline.
      await this.waitForAppend(result.waitOn, remaining, signal);
      if (this.#now() >= deadline || signal.aborted) return (await this.readFetch(identity, wanted, maxBytes)).response;
    }
  }

  private async readFetch(identity: ClientIdentity, wanted: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: number; partitionMaxBytes: number }> }>, maxBytes: number): Promise<{ response: Struct; bytes: number; errors: boolean; waitOn: Array<{ shard: string; offset: number }> }> {
    let budget = maxBytes;
    let bytes = 0;
    let errors = false;
    const waitOn: Array<{ shard: string; offset: number }> = [];
    const responses: Struct[] = [];
    for (const { topic: name, partitions } of wanted) {
      const topic = this.topic(name);
      const mqtt = topic?.mqtt;
      const out: Struct[] = [];
      responses.push({ topic: name, partitions: out });
      for (const { partition, fetchOffset, partitionMaxBytes } of partitions) {
        const entry: Struct = { partitionIndex: partition, errorCode: 0, highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: null, preferredReadReplica: -1, records: NO_RECORDS };
        out.push(entry);
        if (topic === undefined || partition < 0 || partition >= topic.partitions) {
          entry.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          errors = true;
          continue;
        }
        const shard = topic.shardOf(partition);
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
          // The first partition with data gets at least one batch (the MQTT topic: one record) even past the limits, as Kafka does.
          const limit = Math.max(1, Math.min(partitionMaxBytes, budget));
          const found = mqtt === undefined ? await this.framedBatches(shard, fetchOffset, highWatermark, limit, bytes === 0) : await this.mqttRecords(shard, fetchOffset, limit, bytes === 0, (record) => mqtt.read(record, identity));
          if (found === undefined) {
            waitOn.push({ shard, offset: fetchOffset });
            continue;
          }
          entry.records = found.records;
          waitOn.push({ shard, offset: found.lastOffset + 1 });
          bytes += found.records.length;
          budget -= found.records.length;
        } catch (error) {
          this.options.logger.warn({ err: error, topic: name, partition }, 'Kafka fetch: read failed');
          entry.errorCode = storeErrorCode(error);
          errors = true;
        }
      }
    }
    return { response: { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses }, bytes, errors, waitOn };
  }

  /**
   * A Kafka topic's partition: whole stored batches, each framed as one Kafka batch
   * (fetch-frames.ts); the journal page read is as many bytes as asked, which the frames about fill.
   */
  private async framedBatches(shard: string, fetchOffset: number, highWatermark: number, limit: number, atLeastOne: boolean): Promise<{ records: Buffer; lastOffset: number } | undefined> {
    const { batches } = await this.options.store.readBatches(shard, fetchOffset, { maxBytes: limit });
    return framePartition(batches, fetchOffset, highWatermark, limit, atLeastOne);
  }

  /** The MQTT topic's partition: records one by one, through its access policy and mapping, in one Kafka batch. */
  private async mqttRecords(shard: string, fetchOffset: number, limit: number, atLeastOne: boolean, toKafka: (record: JournalRecord) => StoredKafkaRecord | undefined): Promise<{ records: Buffer; lastOffset: number } | undefined> {
    const stored = await this.options.store.read(shard, fetchOffset, { maxBytes: limit });
    const records = encodeStored(stored, toKafka, atLeastOne ? Number.MAX_SAFE_INTEGER : limit);
    return records === undefined ? undefined : { records, lastOffset: stored[stored.length - 1]!.offset };
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
      const topic = this.topic(name);
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
        const shard = topic.shardOf(partitionIndex);
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
function encodeStored(stored: readonly JournalRecord[], toKafka: (record: JournalRecord) => StoredKafkaRecord | undefined, maxBytes: number): Buffer | undefined {
  const records = stored.map(toKafka).filter((record) => record !== undefined);
  if (records.length === 0) return undefined;
  let count = records.length;
  for (;;) {
    const batch = encodeStoredRecords(records.slice(0, count));
    if (batch.length <= maxBytes || count === 1) return batch;
    count = Math.max(1, Math.floor(count / 2));
  }
}

/** A batch whose attributes name a codec id this build lacks (5-7): not corrupt, just unsupported. */
function isUnknownCodec(bytes: Buffer | null): boolean {
  return bytes !== null && bytes.length >= 23 && !DEFAULT_CODECS.has(compressionOf(bytes.readInt16BE(21)));
}

function storeErrorCode(error: unknown): number {
  if (isShardlineError(error, 'SL_JOURNAL_OFFSET_OUT_OF_RANGE')) return KafkaErrorCode.OFFSET_OUT_OF_RANGE;
  if (isShardlineError(error, 'SL_JOURNAL_RECORD_TOO_LARGE') || isShardlineError(error, 'SL_JOURNAL_BATCH_TOO_LARGE')) return KafkaErrorCode.MESSAGE_TOO_LARGE;
  return KafkaErrorCode.KAFKA_STORAGE_ERROR;
}
