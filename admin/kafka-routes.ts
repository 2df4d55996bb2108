// The Kafka front end's admin routes (/api/kafka/*): its topics with each partition's shard and
// offsets. A route plugin (route-kit.ts) registered on every node; without the Kafka listener
// (--kafka-port unset, or no broker role) they answer 503, as /api/mqtt does without the broker.
import type { FastifyInstance } from 'fastify';
import type { KafkaServer, ServedTopic } from '../protocols/kafka/index.js';
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

export function kafkaAdminRoutes(kafka: Pick<KafkaServer, 'topics'> | undefined, store: ShardStore | undefined): AdminRoutePlugin {
  const running = (): { kafka: Pick<KafkaServer, 'topics'>; store: ShardStore } => {
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
  };
}
