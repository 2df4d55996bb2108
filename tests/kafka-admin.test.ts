// Kafka topic administration end to end with kafkajs's admin client against a real
// `shardline start --kafka-port` process: createTopics with topic configs (an unknown one
// refused with INVALID_CONFIG), describeConfigs of topics and the broker, createPartitions (grow
// only; the producer then reaches the new partitions), deleteTopics (gone from the topic list,
// produce refused, the name reusable with an empty log), a produce over max.message.bytes
// refused with MESSAGE_TOO_LARGE, and all of it as it was after a restart on the same data.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { KafkaErrorCode } from '../protocols/kafka/index.js';
import { cleanup, freePort, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { fetchAll, RawClient } from './support/kafka-raw-client.js';

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs;

interface KafkajsError extends Error { type?: string; errors?: KafkajsError[]; cause?: KafkajsError }
/** kafkajs reports a Kafka error code by name, directly or inside an aggregate (createTopics) or a retry wrapper. */
const kafkaError = (type: string) => (error: KafkajsError): boolean =>
  error.type === type || (error.errors ?? []).some(kafkaError(type)) || (error.cause !== undefined && kafkaError(type)(error.cause));

describe('Kafka admin: configs, partitions, deletion with kafkajs', { timeout: 180_000 }, () => {
  let node: BrokerProcess | undefined;
  let port = 0;
  const client = () => new Kafka({ clientId: 'admin-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 1 } });
  before(async () => {
    port = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(port)] });
  });
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  const describeTopic = async (admin: ReturnType<ReturnType<typeof client>['admin']>, topic: string): Promise<Record<string, string>> => {
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
    assert.equal(resources[0]!.errorCode, 0);
    return Object.fromEntries(resources[0]!.configEntries.map((entry) => [entry.configName, entry.configValue]));
  };

  test('createTopics with configs, describeConfigs, an unknown config refused, MESSAGE_TOO_LARGE over max.message.bytes', async () => {
    const admin = client().admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: 'logs', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '86400000' }, { name: 'max.message.bytes', value: '4096' }] }] }), true);
      assert.equal(await admin.createTopics({ topics: [{ topic: 'state', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] }), true);
      await assert.rejects(admin.createTopics({ topics: [{ topic: 'odd', configEntries: [{ name: 'min.insync.replicas', value: '2' }] }] }), kafkaError('INVALID_CONFIG'));
      assert.ok(!(await admin.listTopics()).includes('odd'));
      assert.deepEqual(await describeTopic(admin, 'logs'), { 'cleanup.policy': 'delete', 'retention.ms': '86400000', 'retention.bytes': '-1', 'max.message.bytes': '4096' });
      assert.equal((await describeTopic(admin, 'state'))['cleanup.policy'], 'compact');
      const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.BROKER, name: '0', configNames: ['auto.create.topics.enable'] }] });
      assert.deepEqual(resources[0]!.configEntries.map((e) => [e.configName, e.configValue, e.readOnly]), [['auto.create.topics.enable', 'false', true]]);
    } finally {
      await admin.disconnect();
    }
    const producer = client().producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic: 'logs', acks: -1, messages: [{ partition: 0, value: 'small' }] });
      await assert.rejects(producer.send({ topic: 'logs', acks: -1, messages: [{ partition: 0, value: 'x'.repeat(8000) }] }), kafkaError('MESSAGE_TOO_LARGE'));
      await producer.send({ topic: 'state', acks: -1, messages: [{ key: 'k', value: 'v' }] });
    } finally {
      await producer.disconnect();
    }
  });

  test('createPartitions grows a topic (the producer reaches the new partition); shrinking is INVALID_PARTITIONS', async () => {
    const admin = client().admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic: 'logs', count: 4 }] });
      const metadata = await admin.fetchTopicMetadata({ topics: ['logs'] });
      assert.deepEqual(metadata.topics[0]!.partitions.map((p) => p.partitionId).sort(), [0, 1, 2, 3]);
      await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: 'logs', count: 2 }] }), kafkaError('INVALID_PARTITIONS'));
      await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: 'logs', count: 4 }] }), kafkaError('INVALID_PARTITIONS'));
    } finally {
      await admin.disconnect();
    }
    const producer = client().producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      const [result] = await producer.send({ topic: 'logs', acks: -1, messages: [{ partition: 3, value: 'on the new partition' }] });
      assert.deepEqual([result!.partition, result!.errorCode], [3, 0]);
    } finally {
      await producer.disconnect();
    }
  });

  test('deleteTopics: gone from the list, produce refused, the name reusable with an empty log; all of it kept across a restart', async () => {
    const admin = client().admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'doomed', numPartitions: 2 }] });
      const producer = client().producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
      await producer.connect();
      await producer.send({ topic: 'doomed', acks: -1, messages: [{ partition: 1, value: 'before' }] });
      await admin.deleteTopics({ topics: ['doomed'] });
      assert.deepEqual((await admin.listTopics()).sort(), ['logs', 'mqtt', 'state'], 'mqtt: the MQTT traffic (docs/kafka.md)');
      await assert.rejects(producer.send({ topic: 'doomed', acks: -1, messages: [{ partition: 1, value: 'after' }] }));
      await producer.disconnect();
      await assert.rejects(admin.deleteTopics({ topics: ['doomed'] }), kafkaError('UNKNOWN_TOPIC_OR_PARTITION'));
    } finally {
      await admin.disconnect();
    }

    await stopBroker(node!);
    node = await startBroker({ dataDir: node!.dataDir, args: ['--kafka-port', String(port)] });
    const again = client().admin();
    await again.connect();
    try {
      assert.deepEqual((await again.listTopics()).sort(), ['logs', 'mqtt', 'state'], 'the deletion survived the restart');
      assert.equal((await describeTopic(again, 'logs'))['max.message.bytes'], '4096', 'configs survived the restart');
      const metadata = await again.fetchTopicMetadata({ topics: ['logs'] });
      assert.equal(metadata.topics[0]!.partitions.length, 4, 'the grown partition count survived the restart');
      assert.equal(await again.createTopics({ topics: [{ topic: 'doomed', numPartitions: 2 }] }), true);
    } finally {
      await again.disconnect();
    }
    const raw = await RawClient.open(port);
    try {
      const { records, errorCode, highWatermark } = await fetchAll(raw, 'doomed', 1);
      assert.deepEqual([errorCode, highWatermark, records.length], [0, 0n, 0], 'the recreated topic starts empty');
      assert.equal((await fetchAll(raw, 'logs', 3)).records[0]?.value, 'on the new partition');
      assert.equal((await fetchAll(raw, 'gone', 0)).errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    } finally {
      raw.close();
    }
  });
});
