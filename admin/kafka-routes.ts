// The Kafka front end's admin routes (/api/kafka/*): its topics with each partition's shard and
// offsets, and its consumer groups with their members and lag per partition. A route plugin
// (route-kit.ts) registered on every node; without the Kafka listener (--kafka-port unset, or no
// broker role) they answer 503, as /api/mqtt does without the broker.
import type { FastifyInstance } from 'fastify';
import type { GroupDetail, KafkaServer, ServedTopic } from '../protocols/kafka/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { AdminErrors } from './admin-errors.js';
import { errors, secured, type AdminRoutePlugin } from './route-kit.js';

const topicItem = {
  type: 'object',
  required: ['name', 'mqtt', 'partitions'],
  properties: {
    name: { type: 'string' },
    mqtt: { type: 'boolean', description: 'the MQTT data shards shown as a Kafka topic (--kafka-mqtt-topic)' },
    partitions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['partition', 'shard', 'startOffset', 'endOffset', 'sizeBytes'],
        properties: {
          partition: { type: 'integer' },
          shard: { type: 'string' },
          startOffset: { type: 'integer', description: 'log start offset (ListOffsets earliest)' },
          endOffset: { type: 'integer', description: 'high watermark: the next offset (ListOffsets latest)' },
          sizeBytes: { type: 'integer' },
        },
      },
    },
  },
} as const;

const groupSummaryProperties = {
  groupId: { type: 'string' },
  state: { type: 'string', enum: ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable'] },
  protocolType: { type: 'string', description: '"consumer" for Kafka consumers; "" before the first join' },
  protocolName: { type: 'string', description: 'the assignor chosen at the last completed join ("" before one)' },
  generation: { type: 'integer' },
  memberCount: { type: 'integer' },
} as const;

const groupItem = {
  type: 'object',
  required: [...Object.keys(groupSummaryProperties), 'totalLag'],
  properties: { ...groupSummaryProperties, totalLag: { type: 'integer', description: 'sum of the lags of the partitions it committed' } },
} as const;

const nullableInteger = { type: ['integer', 'null'] } as const;

const groupDetailItem = {
  type: 'object',
  required: [...Object.keys(groupSummaryProperties), 'members', 'partitions', 'totalLag'],
  properties: {
    ...groupSummaryProperties,
    members: {
      type: 'array',
      items: {
        type: 'object',
        required: ['memberId', 'groupInstanceId', 'clientId', 'clientHost', 'assignment'],
        properties: {
          memberId: { type: 'string' },
          groupInstanceId: { type: ['string', 'null'] },
          clientId: { type: 'string' },
          clientHost: { type: 'string' },
          assignment: {
            type: 'array',
            description: 'partitions assigned by the leader (consumer protocol; empty until the group is Stable)',
            items: { type: 'object', required: ['topic', 'partitions'], properties: { topic: { type: 'string' }, partitions: { type: 'array', items: { type: 'integer' } } } },
          },
        },
      },
    },
    partitions: {
      type: 'array',
      description: 'every partition the group committed or is assigned, by topic then partition',
      items: {
        type: 'object',
        required: ['topic', 'partition', 'committedOffset', 'logEndOffset', 'lag', 'memberId'],
        properties: {
          topic: { type: 'string' },
          partition: { type: 'integer' },
          committedOffset: { ...nullableInteger, description: 'null: nothing committed' },
          logEndOffset: { ...nullableInteger, description: 'the high watermark; null when the topic is gone' },
          lag: { ...nullableInteger, description: 'logEndOffset − committedOffset (at least 0); null when either is null' },
          memberId: { type: ['string', 'null'], description: 'the member assigned the partition now' },
        },
      },
    },
    totalLag: { type: 'integer', description: 'sum of the partitions\' lags' },
  },
} as const;

type KafkaView = Pick<KafkaServer, 'topics' | 'consumerGroupDetails' | 'consumerGroup'>;

function groupView(group: Omit<GroupDetail, 'members' | 'partitions'>): Record<string, unknown> {
  const { groupState, ...rest } = group;
  return { ...rest, state: groupState };
}

export function kafkaAdminRoutes(kafka: KafkaView | undefined, store: ShardStore | undefined): AdminRoutePlugin {
  const running = (): { kafka: KafkaView; store: ShardStore } => {
    if (kafka === undefined || store === undefined) throw AdminErrors.notAvailable.create({}, 'the Kafka listener (--kafka-port)');
    return { kafka, store };
  };
  const view = async (shards: ShardStore, topic: ServedTopic): Promise<Record<string, unknown>> => ({
    name: topic.name,
    mqtt: topic.mqtt,
    partitions: await Promise.all(topic.shards.map(async (shard, partition) => {
      const [info, endOffset] = await Promise.all([shards.info(shard), shards.highWatermark(shard)]);
      return { partition, shard, startOffset: info.startOffset, endOffset, sizeBytes: info.sizeBytes };
    })),
  });
  return (app: FastifyInstance) => {
    app.get('/api/kafka/topics', {
      schema: { tags: ['kafka'], summary: 'Kafka topics (the MQTT one included) with their partitions\' offsets, sorted by name', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: topicItem } } }, ...errors(401, 503) } },
    }, async () => {
      const { kafka: server, store: shards } = running();
      return { items: await Promise.all(server.topics().map((topic) => view(shards, topic))) };
    });
    app.get<{ Params: { name: string } }>('/api/kafka/topics/:name', {
      schema: { tags: ['kafka'], summary: 'One Kafka topic', ...secured, params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, response: { 200: topicItem, ...errors(401, 404, 503) } },
    }, async (request) => {
      const { kafka: server, store: shards } = running();
      const topic = server.topics().find((candidate) => candidate.name === request.params.name);
      if (topic === undefined) throw AdminErrors.notFound.create({ topic: request.params.name }, `Kafka topic ${JSON.stringify(request.params.name)}`);
      return view(shards, topic);
    });
    registerGroupRoutes(app, () => running().kafka);
  };
}

function registerGroupRoutes(app: FastifyInstance, kafka: () => KafkaView): void {
  app.get('/api/kafka/groups', {
    schema: { tags: ['kafka'], summary: 'Kafka consumer groups (those with members or committed offsets), sorted by id', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: groupItem } } }, ...errors(401, 503) } },
  }, async () => ({
    items: (await kafka().consumerGroupDetails()).map(({ members: _members, partitions: _partitions, ...rest }) => groupView(rest)),
  }));
  app.get<{ Params: { name: string } }>('/api/kafka/groups/:name', {
    schema: { tags: ['kafka'], summary: 'One Kafka consumer group: members, and per partition the committed offset, log end offset and lag', ...secured, params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, response: { 200: groupDetailItem, ...errors(401, 404, 503) } },
  }, async (request) => {
    const group = await kafka().consumerGroup(request.params.name);
    if (group === undefined) throw AdminErrors.notFound.create({ group: request.params.name }, `Kafka consumer group ${JSON.stringify(request.params.name)}`);
    return groupView(group);
  });
}
