// Topic administration over an in-memory ShardStore: CreateTopics configs (mapped onto the
// partition shards' settings, unknown or invalid ones INVALID_CONFIG), DescribeConfigs of
// topics and the broker, CreatePartitions (grow only), DeleteTopics (shards and record gone, a
// reopen agrees, the name reusable with an empty log), and the produce-side limits the configs
// set (max.message.bytes → MESSAGE_TOO_LARGE, a compacted topic refuses null keys).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { ApiKey, encodeRecordBatch, KafkaErrorCode, type KafkaStruct, type RequestHeader } from '../codec/index.js';
import { Idempotence } from './idempotence.js';
import { KafkaService } from './service.js';
import { TopicCatalog } from './topics.js';

const logger = pino({ level: 'silent' });
const signal = new AbortController().signal;
const header = (apiKey: number, apiVersion: number): RequestHeader => ({ apiKey, apiVersion, correlationId: 1, clientId: 't', headerVersion: 1 });

async function service(store: MemoryShardStore): Promise<KafkaService> {
  const topics = await TopicCatalog.open(store);
  const idempotence = await Idempotence.open(store);
  return new KafkaService({ store, topics, idempotence, nodeId: 3, clusterId: 'c', advertised: () => ({ host: '127.0.0.1', port: 9092 }), logger });
}

async function call(kafka: KafkaService, apiKey: number, version: number, body: KafkaStruct): Promise<KafkaStruct> {
  return (await kafka.handle(header(apiKey, version), body, signal))!;
}

const createBody = (name: string, configs: Array<[string, string | null]>, numPartitions = 2, validateOnly = false): KafkaStruct => ({
  topics: [{ name, numPartitions, replicationFactor: -1, assignments: [], configs: configs.map(([n, value]) => ({ name: n, value })) }], timeoutMs: 1000, validateOnly,
});

function batch(values: Array<[string | null, string]>): Buffer {
  return encodeRecordBatch({
    baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: values.length - 1, baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n, producerId: -1n, producerEpoch: -1, baseSequence: -1,
    records: values.map(([key, value], offsetDelta) => ({ attributes: 0, timestampDelta: 0n, offsetDelta, key: key === null ? null : Buffer.from(key), value: Buffer.from(value), headers: [] })),
  });
}

async function produceCode(kafka: KafkaService, topic: string, records: Buffer): Promise<number> {
  const body = await call(kafka, ApiKey.Produce, 7, { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return ((body.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!.errorCode as number;
}

test('CreateTopics configs: mapped onto every partition shard; unknown, invalid and compact,delete refused with INVALID_CONFIG', async () => {
  const store = new MemoryShardStore();
  const kafka = await service(store);
  const created = await call(kafka, ApiKey.CreateTopics, 5, createBody('kept', [['retention.ms', '3600000'], ['retention.bytes', '1048576'], ['max.message.bytes', '2000']]));
  const topic = (created.topics as KafkaStruct[])[0]!;
  assert.equal(topic.errorCode, 0);
  assert.deepEqual(Object.fromEntries((topic.configs as KafkaStruct[]).map((c) => [c.name, c.value])), { 'cleanup.policy': 'delete', 'retention.ms': '3600000', 'retention.bytes': '1048576', 'max.message.bytes': '2000' });
  for (const partition of [0, 1]) {
    const { config } = await store.info(`kafka.kept.${partition}`);
    assert.deepEqual([config.retentionMs, config.retentionBytes, config.compacted], [3_600_000, 1_048_576, false]);
  }
  await call(kafka, ApiKey.CreateTopics, 5, createBody('table', [['cleanup.policy', 'compact'], ['retention.ms', '-1']], 1));
  assert.deepEqual([(await store.info('kafka.table.0')).config.compacted, (await store.info('kafka.table.0')).config.retentionMs], [true, null]);

  for (const [name, value] of [['segment.bytes', '1000'], ['retention.ms', 'soon'], ['retention.ms', '-2'], ['retention.bytes', '1.5'], ['cleanup.policy', 'compact,delete'], ['max.message.bytes', '-1'], ['max.message.bytes', '99999999999']] as const) {
    const refused = (await call(kafka, ApiKey.CreateTopics, 5, createBody('bad', [[name, value]]))).topics as KafkaStruct[];
    assert.equal(refused[0]!.errorCode, KafkaErrorCode.INVALID_CONFIG, `${name}=${value}`);
    assert.match(refused[0]!.errorMessage as string, new RegExp(name.replace('.', '\\.')));
  }
  await assert.rejects(store.info('kafka.bad.0'), 'a refused topic made no shard');
  // validateOnly checks the configs too and creates nothing.
  assert.equal(((await call(kafka, ApiKey.CreateTopics, 5, createBody('dry', [['cleanup.policy', 'nope']], 1, true))).topics as KafkaStruct[])[0]!.errorCode, KafkaErrorCode.INVALID_CONFIG);
});

test('DescribeConfigs: a topic\'s configs (set and default), a key filter, the broker, unknown topics and resource types', async () => {
  const kafka = await service(new MemoryShardStore());
  await call(kafka, ApiKey.CreateTopics, 5, createBody('t', [['retention.ms', '60000']]));
  const body = await call(kafka, ApiKey.DescribeConfigs, 3, {
    resources: [
      { resourceType: 2, resourceName: 't', configurationKeys: null },
      { resourceType: 2, resourceName: 't', configurationKeys: ['retention.ms', 'no.such.key'] },
      { resourceType: 4, resourceName: '3', configurationKeys: null },
      { resourceType: 4, resourceName: '7', configurationKeys: null },
      { resourceType: 2, resourceName: 'missing', configurationKeys: null },
      { resourceType: 8, resourceName: '3', configurationKeys: null },
    ],
    includeSynonyms: false, includeDocumentation: true,
  });
  const [all, filtered, broker, otherBroker, missing, logger8] = body.results as KafkaStruct[];
  const entries = (r: KafkaStruct) => Object.fromEntries((r.configs as KafkaStruct[]).map((c) => [c.name, [c.value, c.configSource]]));
  assert.deepEqual(entries(all!), { 'cleanup.policy': ['delete', 5], 'retention.ms': ['60000', 1], 'retention.bytes': ['-1', 5], 'max.message.bytes': ['1048588', 5] });
  assert.ok((all!.configs as KafkaStruct[]).every((c) => typeof c.documentation === 'string'));
  assert.deepEqual(entries(filtered!), { 'retention.ms': ['60000', 1] });
  assert.equal(entries(broker!)['broker.id']![0], '3');
  assert.equal(entries(broker!)['auto.create.topics.enable']![0], 'false');
  assert.equal(otherBroker!.errorCode, KafkaErrorCode.INVALID_REQUEST);
  assert.equal(missing!.errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(logger8!.errorCode, KafkaErrorCode.INVALID_REQUEST);
});

test('CreatePartitions grows only; the new partitions take the topic\'s shard settings', async () => {
  const store = new MemoryShardStore();
  const kafka = await service(store);
  await call(kafka, ApiKey.CreateTopics, 5, createBody('g', [['cleanup.policy', 'compact']]));
  const grow = async (name: string, count: number, validateOnly = false, assignments: KafkaStruct[] | null = null) =>
    ((await call(kafka, ApiKey.CreatePartitions, 1, { topics: [{ name, count, assignments }], timeoutMs: 1000, validateOnly })).results as KafkaStruct[])[0]!.errorCode;
  assert.equal(await grow('g', 4, true), 0);
  await assert.rejects(store.info('kafka.g.2'), 'validateOnly creates nothing');
  assert.equal(await grow('g', 4), 0);
  assert.equal((await store.info('kafka.g.3')).config.compacted, true);
  assert.equal(await grow('g', 4), KafkaErrorCode.INVALID_PARTITIONS, 'the same count');
  assert.equal(await grow('g', 2), KafkaErrorCode.INVALID_PARTITIONS, 'fewer');
  assert.equal(await grow('g', 1001), KafkaErrorCode.INVALID_PARTITIONS, 'past the maximum');
  assert.equal(await grow('nope', 3), KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(await grow('g', 6, false, [{ brokerIds: [3] }]), KafkaErrorCode.INVALID_REPLICA_ASSIGNMENT, 'one assignment for two new partitions');
  assert.equal(await grow('g', 5, false, [{ brokerIds: [9] }]), KafkaErrorCode.INVALID_REPLICA_ASSIGNMENT, 'another broker');
  assert.equal(await grow('g', 5, false, [{ brokerIds: [3] }]), 0);
  const metadata = await call(kafka, ApiKey.Metadata, 9, { topics: [{ name: 'g' }], allowAutoTopicCreation: false });
  assert.equal(((metadata.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).length, 5);
  // A reopen over the same store sees 5 partitions and the config.
  const reopened = await TopicCatalog.open(store);
  assert.deepEqual([reopened.get('g')?.partitions, reopened.get('g')?.configs.cleanupPolicy], [5, 'compact']);
});

test('DeleteTopics: shards and record gone (v5 names, v6 structs), unknown names and ids refused, the name reusable', async () => {
  const store = new MemoryShardStore();
  const kafka = await service(store);
  await call(kafka, ApiKey.CreateTopics, 5, createBody('d', [], 3));
  await call(kafka, ApiKey.CreateTopics, 5, createBody('e', [], 1));
  assert.equal(await produceCode(kafka, 'd', batch([[null, 'old']])), 0);
  const v5 = await call(kafka, ApiKey.DeleteTopics, 5, { topicNames: ['d', 'nope'], timeoutMs: 1000 });
  assert.deepEqual((v5.responses as KafkaStruct[]).map((r) => [r.name, r.errorCode]), [['d', 0], ['nope', KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
  for (const partition of [0, 1, 2]) await assert.rejects(store.info(`kafka.d.${partition}`));
  assert.equal(await produceCode(kafka, 'd', batch([[null, 'x']])), KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const v6 = await call(kafka, ApiKey.DeleteTopics, 6, { topics: [{ name: 'e', topicId: '00000000-0000-0000-0000-000000000000' }, { name: null, topicId: '11111111-2222-3333-4444-555555555555' }], timeoutMs: 1000 });
  assert.deepEqual((v6.responses as KafkaStruct[]).map((r) => r.errorCode), [0, KafkaErrorCode.UNKNOWN_TOPIC_ID]);
  assert.deepEqual((await TopicCatalog.open(store)).all(), [], 'a reopen agrees: no topics');
  // The same name again: a new, empty log.
  await call(kafka, ApiKey.CreateTopics, 5, createBody('d', [], 1));
  assert.equal(await store.highWatermark('kafka.d.0'), 0);
});

test('Produce under topic configs: over max.message.bytes is MESSAGE_TOO_LARGE; a compacted topic refuses null keys', async () => {
  const kafka = await service(new MemoryShardStore());
  await call(kafka, ApiKey.CreateTopics, 5, createBody('small', [['max.message.bytes', '200']], 1));
  assert.equal(await produceCode(kafka, 'small', batch([['k', 'fits']])), 0);
  assert.equal(await produceCode(kafka, 'small', batch([['k', 'x'.repeat(300)]])), KafkaErrorCode.MESSAGE_TOO_LARGE);
  await call(kafka, ApiKey.CreateTopics, 5, createBody('plain', [], 1));
  assert.equal(await produceCode(kafka, 'plain', batch([['k', 'x'.repeat(1_100_000)]])), KafkaErrorCode.MESSAGE_TOO_LARGE, 'the default is Kafka\'s 1048588');
  await call(kafka, ApiKey.CreateTopics, 5, createBody('table', [['cleanup.policy', 'compact']], 1));
  assert.equal(await produceCode(kafka, 'table', batch([['k', 'v']])), 0);
  assert.equal(await produceCode(kafka, 'table', batch([['k', 'v'], [null, 'v']])), KafkaErrorCode.INVALID_RECORD);
});
