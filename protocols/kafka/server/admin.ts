// Topic administration beyond CreateTopics: DeleteTopics, CreatePartitions (grow only) and
// DescribeConfigs (topics and this broker). The catalog (topics.ts) does the work on the
// shards; this turns requests into catalog calls and answers in Kafka's shapes.
import { kafkaPartitionShardName } from '../../../base/index.js';
import { KafkaErrorCode, type KafkaStruct, type RequestHeader } from '../codec/index.js';
import type { Idempotence } from './idempotence.js';
import { DEFAULT_TOPIC_CONFIGS, describeBrokerConfigs, describeTopicConfigs } from './topic-configs.js';
import type { TopicCatalog } from './topics.js';

type Struct = KafkaStruct;

// DescribeConfigs resource types (Kafka's ConfigResource.Type).
const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
const NO_TOPIC_ID = '00000000-0000-0000-0000-000000000000';

export interface KafkaAdminOptions {
  topics: TopicCatalog;
  idempotence: Idempotence;
  nodeId: number;
  /** The MQTT data shards' topic (mqtt-topic.ts): made of the data shards, so neither deleted nor grown here. */
  mqttTopic?: { readonly name: string } | undefined;
}

export class KafkaAdmin {
  constructor(private readonly options: KafkaAdminOptions) {}

  async deleteTopics(header: RequestHeader, body: Struct): Promise<Struct> {
    // v6 names topics in structs (a name or a topic id); before, a list of names.
    const requested = header.apiVersion >= 6
      ? (body.topics as Struct[]).map((topic) => ({ name: topic.name as string | null, topicId: topic.topicId as string }))
      : (body.topicNames as string[]).map((name) => ({ name, topicId: NO_TOPIC_ID }));
    const responses: Struct[] = [];
    for (const { name, topicId } of requested) {
      if (name === null) {
        // Shardline topics have no ids (Metadata reports none), so an id names no topic.
        responses.push({ name: null, topicId, errorCode: KafkaErrorCode.UNKNOWN_TOPIC_ID, errorMessage: 'topics are named, not addressed by id, on this broker' });
        continue;
      }
      if (name === this.options.mqttTopic?.name) {
        responses.push({ name, topicId, errorCode: KafkaErrorCode.TOPIC_DELETION_DISABLED, errorMessage: `topic ${name} is this node's MQTT traffic (--kafka-mqtt-topic); its records go with MQTT retention` });
        continue;
      }
      const partitions = this.options.topics.get(name)?.partitions ?? 0;
      const result = await this.options.topics.delete(name);
      if (result.errorCode === 0) for (let partition = 0; partition < partitions; partition += 1) this.options.idempotence.forget(kafkaPartitionShardName(name, partition));
      responses.push({ name, topicId, errorCode: result.errorCode, errorMessage: result.message });
    }
    return { throttleTimeMs: 0, responses };
  }

  async createPartitions(body: Struct): Promise<Struct> {
    const validateOnly = body.validateOnly === true;
    const results: Struct[] = [];
    for (const topic of body.topics as Struct[]) {
      const name = topic.name as string;
      const count = topic.count as number;
      const assignments = topic.assignments as Struct[] | null;
      if (name === this.options.mqttTopic?.name) {
        results.push({ name, errorCode: KafkaErrorCode.INVALID_PARTITIONS, errorMessage: `topic ${name}'s partitions are the MQTT data shards, fixed when the data directory was first used (--data-shards)` });
        continue;
      }
      const current = this.options.topics.get(name)?.partitions;
      // Replica assignments, if given, name one list per new partition, each this broker only.
      if (assignments !== null && current !== undefined && (assignments.length !== count - current || assignments.some((a) => (a.brokerIds as number[]).some((id) => id !== this.options.nodeId)))) {
        results.push({ name, errorCode: KafkaErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: `one assignment per new partition, naming broker ${this.options.nodeId} only` });
        continue;
      }
      const result = await this.options.topics.grow(name, count, validateOnly);
      results.push({ name, errorCode: result.errorCode, errorMessage: result.message });
    }
    return { throttleTimeMs: 0, results };
  }

  describeConfigs(body: Struct): Struct {
    const documentation = body.includeDocumentation === true;
    const results = (body.resources as Struct[]).map((resource): Struct => {
      const resourceType = resource.resourceType as number;
      const resourceName = resource.resourceName as string;
      const keys = resource.configurationKeys as string[] | null;
      const answer = (errorCode: number, errorMessage: string | null, configs: Struct[] = []): Struct => ({ errorCode, errorMessage, resourceType, resourceName, configs });
      if (resourceType === RESOURCE_TOPIC) {
        if (resourceName === this.options.mqttTopic?.name) return answer(0, null, describeTopicConfigs(DEFAULT_TOPIC_CONFIGS, {}, keys, documentation));
        const topic = this.options.topics.get(resourceName);
        if (topic === undefined) return answer(KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${resourceName} does not exist`);
        return answer(0, null, describeTopicConfigs(topic.configs, topic.explicit, keys, documentation));
      }
      if (resourceType === RESOURCE_BROKER) {
        // "" is the cluster default; otherwise this broker's id.
        if (resourceName !== '' && resourceName !== String(this.options.nodeId)) return answer(KafkaErrorCode.INVALID_REQUEST, `this node is broker ${this.options.nodeId}`);
        return answer(0, null, describeBrokerConfigs(this.options.nodeId, keys));
      }
      return answer(KafkaErrorCode.INVALID_REQUEST, `config resource type ${resourceType} is not served (topics: 2, brokers: 4)`);
    });
    return { throttleTimeMs: 0, results };
  }
}
