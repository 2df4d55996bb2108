// The API handlers over an in-memory ShardStore: the Kafka error codes of CreateTopics, Produce,
// Fetch and ListOffsets, and the topic catalog surviving a reopen over the same store.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { ApiKey, BatchAttributes, CompressionType, crc32c, encodeRecordBatch, KafkaErrorCode, type KafkaStruct, type RecordBatch, type RequestHeader } from '../codec/index.js';
import { Idempotence } from './idempotence.js';
import { KafkaService } from './service.js';
import { TopicCatalog } from './topics.js';

const logger = pino({ level: 'silent' });

async function service(store = new MemoryShardStore()): Promise<{ kafka: KafkaService; store: MemoryShardStore }> {
  const topics = await TopicCatalog.open(store);
  const idempotence = await Idempotence.open(store);
  return { kafka: new KafkaService({ store, topics, idempotence, nodeId: 0, clusterId: 'c', advertised: () => ({ host: '127.0.0.1', port: 9092 }), logger, now: () => 1_700_000_000_000 }), store };
}

const header = (apiKey: number, apiVersion: number): RequestHeader => ({ apiKey, apiVersion, correlationId: 1, clientId: 't', headerVersion: 1 });
const signal = new AbortController().signal;

function batch(values: string[], attributes = 0): Buffer {
  const spec: RecordBatch = {
    baseOffset: 0n, partitionLeaderEpoch: -1, attributes, lastOffsetDelta: values.length - 1, baseTimestamp: 1_690_000_000_000n, maxTimestamp: 1_690_000_000_000n,
    producerId: -1n, producerEpoch: -1, baseSequence: -1,
    records: values.map((value, offsetDelta) => ({ attributes: 0, timestampDelta: 0n, offsetDelta, key: null, value: Buffer.from(value), headers: [] })),
  };
  return encodeRecordBatch(spec);
}

async function create(kafka: KafkaService, topics: KafkaStruct[]): Promise<Array<[string, number]>> {
  const body = await kafka.handle(header(ApiKey.CreateTopics, 5), { topics: topics.map((t) => ({ assignments: [], configs: [], replicationFactor: -1, numPartitions: 1, ...t })), timeoutMs: 1000, validateOnly: false }, signal);
  return (body!.topics as KafkaStruct[]).map((t) => [t.name as string, t.errorCode as number]);
}

async function produce(kafka: KafkaService, topic: string, partition: number, records: Buffer | null, acks = -1): Promise<KafkaStruct | undefined> {
  const body = await kafka.handle(header(ApiKey.Produce, 7), { transactionalId: null, acks, timeoutMs: 1000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] }, signal);
  return body === undefined ? undefined : ((body.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0];
}

test('CreateTopics: created, already exists, bad names, partitions and replication factors', async () => {
  const { kafka } = await service();
  assert.deepEqual(await create(kafka, [
    { name: 'a', numPartitions: 2 },
    { name: 'a' },
    { name: 'bad/name' },
    { name: '..' },
    { name: 'x'.repeat(181) },
    { name: 'zero', numPartitions: 0 },
    { name: 'many', numPartitions: 1001 },
    { name: 'rf3', replicationFactor: 3 },
    { name: 'default', numPartitions: -1 },
  ]), [
    ['a', 0],
    ['a', KafkaErrorCode.TOPIC_ALREADY_EXISTS],
    ['bad/name', KafkaErrorCode.INVALID_TOPIC_EXCEPTION],
    ['..', KafkaErrorCode.INVALID_TOPIC_EXCEPTION],
    ['x'.repeat(181), KafkaErrorCode.INVALID_TOPIC_EXCEPTION],
    ['zero', KafkaErrorCode.INVALID_PARTITIONS],
    ['many', KafkaErrorCode.INVALID_PARTITIONS],
    ['rf3', KafkaErrorCode.INVALID_REPLICATION_FACTOR],
    ['default', 0],
  ]);
  const metadata = await kafka.handle(header(ApiKey.Metadata, 9), { topics: [{ name: 'a' }, { name: 'default' }, { name: 'nope' }], allowAutoTopicCreation: true }, signal);
  assert.deepEqual((metadata!.topics as KafkaStruct[]).map((t) => [t.name, t.errorCode, (t.partitions as KafkaStruct[]).length]), [['a', 0, 2], ['default', 0, 1], ['nope', KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0]]);
});

test('Produce: offsets per partition, acks 0 answers nothing, and the refusals', async () => {
  const { kafka, store } = await service();
  await create(kafka, [{ name: 't', numPartitions: 2 }]);
  assert.equal((await produce(kafka, 't', 0, batch(['a', 'b'])))!.baseOffset, 0n);
  assert.equal((await produce(kafka, 't', 0, batch(['c'])))!.baseOffset, 2n);
  assert.equal((await produce(kafka, 't', 1, batch(['d'])))!.baseOffset, 0n);
  assert.equal(await produce(kafka, 't', 1, batch(['e']), 0), undefined);
  assert.equal(await store.highWatermark('kafka.t.1'), 2, 'acks 0 still appends');
  assert.equal((await produce(kafka, 't', 2, batch(['x'])))!.errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal((await produce(kafka, 'nope', 0, batch(['x'])))!.errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal((await produce(kafka, 't', 0, batch(['x']), 2))!.errorCode, KafkaErrorCode.INVALID_REQUIRED_ACKS);
  assert.equal((await produce(kafka, 't', 0, Buffer.alloc(70, 1)))!.errorCode, KafkaErrorCode.CORRUPT_MESSAGE);
  assert.equal((await produce(kafka, 't', 0, null))!.errorCode, KafkaErrorCode.INVALID_RECORD);
  assert.equal((await produce(kafka, 't', 0, Buffer.concat([batch(['x']), batch(['y'])])))!.errorCode, KafkaErrorCode.INVALID_RECORD);
  assert.equal((await produce(kafka, 't', 0, batch(['x'], BatchAttributes.transactional)))!.errorCode, KafkaErrorCode.INVALID_RECORD);
  // Codec id 5 (none of Kafka's): unsupported; snappy attributes over uncompressed records: corrupt.
  const unknownCodec = Buffer.from(batch(['x']));
  unknownCodec.writeInt16BE(5, 21);
  unknownCodec.writeUInt32BE(crc32c(unknownCodec.subarray(21)), 17);
  assert.equal((await produce(kafka, 't', 0, unknownCodec))!.errorCode, KafkaErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
  const notSnappy = Buffer.from(batch(['x']));
  notSnappy.writeInt16BE(CompressionType.snappy, 21);
  notSnappy.writeUInt32BE(crc32c(notSnappy.subarray(21)), 17);
  assert.equal((await produce(kafka, 't', 0, notSnappy))!.errorCode, KafkaErrorCode.CORRUPT_MESSAGE);
  assert.equal(await store.highWatermark('kafka.t.0'), 3, 'no refused batch was stored');
});

test('Fetch and ListOffsets: out of range, unknown, earliest, latest, by timestamp; topics survive a reopen', async () => {
  const store = new MemoryShardStore();
  const { kafka } = await service(store);
  await create(kafka, [{ name: 't', numPartitions: 1 }]);
  await produce(kafka, 't', 0, batch(['a', 'b', 'c']));
  const fetch = (offset: bigint, topic = 't') => kafka.handle(header(ApiKey.Fetch, 11), { replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }], forgottenTopicsData: [], rackId: '' }, signal).then((body) => ((body!.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!);
  assert.equal((await fetch(1n)).errorCode, 0);
  assert.equal((await fetch(4n)).errorCode, KafkaErrorCode.OFFSET_OUT_OF_RANGE);
  assert.equal((await fetch(0n, 'nope')).errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const list = async (timestamp: bigint): Promise<[number, bigint]> => {
    const body = await kafka.handle(header(ApiKey.ListOffsets, 5), { replicaId: -1, isolationLevel: 0, topics: [{ name: 't', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }] }, signal);
    const entry = ((body!.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!;
    return [entry.errorCode as number, entry.offset as bigint];
  };
  assert.deepEqual(await list(-2n), [0, 0n]);
  assert.deepEqual(await list(-1n), [0, 3n]);
  assert.deepEqual(await list(1_690_000_000_000n), [0, 0n]);
  assert.deepEqual(await list(1_800_000_000_000n), [0, -1n]);
  assert.deepEqual(await list(-3n), [KafkaErrorCode.INVALID_REQUEST, -1n]);

  const reopened = await TopicCatalog.open(store);
  assert.deepEqual(reopened.all().map(({ name, partitions }) => ({ name, partitions })), [{ name: 't', partitions: 1 }]);
});
