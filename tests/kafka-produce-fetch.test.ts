// The Kafka front end end to end: a real `shardline start --kafka-port` process, the real
// kafkajs 2.2.4 client (admin creates a topic, producer sends with acks -1), and reads back
// through kafkajs's own cluster/broker fetch and a small hand-driven client over a socket using
// the codec: Fetch v11 and ListOffsets v5 (consumer groups: tests/kafka-groups.test.ts). Then a restart
// on the same data directory, and bad bytes over raw sockets.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, decodeRecordBatches, decodeResponse, encodeRequest, KafkaErrorCode, type KafkaStruct } from '../protocols/kafka/index.js';
import { cleanup, freePort, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { fetchAll, RawClient } from './support/kafka-raw-client.js';

const { CompressionTypes, Kafka, logLevel } = kafkajs;
const require = createRequire(import.meta.url);

interface KafkajsMessage { offset: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | undefined> }
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(options: { nodeId: string }): Promise<{ fetch(request: unknown): Promise<{ responses: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number; highWatermark: string; messages: KafkajsMessage[] }> }> }> }>;
}

/** kafkajs's own cluster and broker classes (what its consumer uses under the group protocol): its Fetch, its decoding. */
function kafkajsCluster(port: number): KafkajsCluster {
  const Cluster = require('kafkajs/src/cluster') as new (options: unknown) => KafkajsCluster;
  const { createLogger, LEVELS } = require('kafkajs/src/loggers') as { createLogger: (options: unknown) => unknown; LEVELS: { NOTHING: number } };
  const socketFactory = require('kafkajs/src/network/socketFactory') as () => unknown;
  return new Cluster({ logger: createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined }), socketFactory: socketFactory(), brokers: [`127.0.0.1:${port}`], clientId: 'kafkajs-fetch', connectionTimeout: 3000, retry: { retries: 1 } });
}

function keyOf(i: number): string | null {
  return i % 4 === 3 ? null : `k${i % 3}`;
}

describe('Kafka front end: kafkajs produces, Fetch reads back, a restart keeps it', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let kafkaPort = 0;
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  const startNode = async (dataDir?: string): Promise<BrokerProcess> => {
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort)], ...(dataDir === undefined ? {} : { dataDir }) });
    return node;
  };

  // Per partition, in order: what the producer sent.
  const sent = new Map<number, Array<{ key: string | null; value: string | null; headers: Array<[string, string | null]> }>>();

  test('kafkajs admin creates a 3-partition topic and the producer (acks -1) sends keyed, null-key and null-value records with headers', async () => {
    kafkaPort = await freePort();
    const started = await startNode();
    assert.ok(started.broker.lines.some((line) => line.includes(`"kafka":"127.0.0.1:${kafkaPort}"`)), 'the listening line names the Kafka listener');
    const kafka = new Kafka({ clientId: 'shardline-test', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const admin = kafka.admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] }), true);
    assert.equal(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] }), false, 'a second create of the same topic creates nothing');
    const metadata = await admin.fetchTopicMetadata({ topics: ['orders'] });
    assert.deepEqual(metadata.topics[0]!.partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
    assert.deepEqual((await admin.listTopics()).sort(), ['mqtt', 'orders'], 'the topic made, and the MQTT traffic (docs/kafka.md)');
    await admin.disconnect();

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (let round = 0; round < 2; round += 1) {
      const messages = [];
      for (let i = round * 9; i < round * 9 + 9; i += 1) {
        const partition = i % 3;
        const key = keyOf(i);
        const value = i % 5 === 4 ? null : `value-${i}`;
        const headers: Record<string, string> = i % 2 === 0 ? { trace: `t${i}`, 'content-type': 'text/plain' } : {};
        messages.push({ partition, key, value, headers });
        const list = sent.get(partition) ?? [];
        list.push({ key, value, headers: Object.entries(headers) });
        sent.set(partition, list);
      }
      // The second round gzip-compressed (the one codec served besides none).
      const results = await producer.send({ topic: 'orders', acks: -1, messages, ...(round === 1 ? { compression: CompressionTypes.GZIP } : {}) });
      for (const result of results) assert.equal(result.errorCode, 0);
    }
    // Unknown topic: kafkajs gets UNKNOWN_TOPIC_OR_PARTITION from Metadata (auto-creation is off).
    await assert.rejects(producer.send({ topic: 'nope', acks: -1, messages: [{ value: 'x' }] }), (error: Error & { type?: string }) => /UNKNOWN_TOPIC_OR_PARTITION|does not host|not found/i.test(`${error.message} ${error.type ?? ''}`));
    await producer.disconnect();
  });

  const checkReadBack = async (): Promise<void> => {
    const client = await RawClient.open(kafkaPort);
    try {
      for (const [partition, expected] of sent) {
        const { records, highWatermark, errorCode } = await fetchAll(client, 'orders', partition);
        assert.equal(errorCode, 0);
        assert.equal(highWatermark, BigInt(expected.length), `partition ${partition} high watermark`);
        assert.deepEqual(records.map((r) => r.offset), expected.map((_, i) => BigInt(i)), `partition ${partition}: offsets are shard offsets 0..n-1`);
        assert.deepEqual(records.map(({ key, value, headers }) => ({ key, value, headers })), expected, `partition ${partition}: order, keys, values, headers`);
        for (const record of records) assert.ok(record.timestamp > 1_600_000_000_000n, 'timestamps are the producer\'s');
        // From the middle: starts at the offset asked for.
        const tail = await fetchAll(client, 'orders', partition, 3n);
        assert.deepEqual(tail.records.map((r) => r.value), expected.slice(3).map((e) => e.value));
        // The end: nothing, no error; past it: OFFSET_OUT_OF_RANGE.
        assert.deepEqual((await fetchAll(client, 'orders', partition, BigInt(expected.length))).records, []);
        assert.equal((await fetchAll(client, 'orders', partition, BigInt(expected.length + 5))).errorCode, KafkaErrorCode.OFFSET_OUT_OF_RANGE);
      }
      // Max bytes: a small limit still returns at least one record, and fewer than all.
      const small = await fetchAll(client, 'orders', 0, 0n, 80);
      assert.ok(small.records.length >= 1 && small.records.length < (sent.get(0)?.length ?? 0), `max bytes honoured: ${small.records.length}`);
      assert.equal((await fetchAll(client, 'missing', 0)).errorCode, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      const offsets = await client.call(ApiKey.ListOffsets, 5, {
        replicaId: -1, isolationLevel: 0,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 1, currentLeaderEpoch: -1, timestamp: -2n }, { partitionIndex: 2, currentLeaderEpoch: -1, timestamp: -1n }, { partitionIndex: 7, currentLeaderEpoch: -1, timestamp: -1n }] }],
      });
      const parts = (offsets.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[];
      assert.deepEqual(parts.map((p) => [p.errorCode, p.offset]), [[0, 0n], [0, BigInt(sent.get(2)!.length)], [KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1n]]);
    } finally {
      client.close();
    }
  };

  test('Fetch v11 reads every partition back in order with keys, values, headers and shard offsets; ListOffsets earliest/latest', checkReadBack);

  test("kafkajs's own Fetch (its broker class, the version it negotiates) decodes what the node returns", async () => {
    const cluster = kafkajsCluster(kafkaPort);
    await cluster.connect();
    try {
      await cluster.addTargetTopic('orders');
      const leaders = cluster.findLeaderForPartitions('orders', [0, 1, 2]);
      assert.deepEqual(Object.keys(leaders), ['0'], 'this node is broker 0 and leads every partition');
      const broker = await cluster.findBroker({ nodeId: '0' });
      const response = await broker.fetch({ maxWaitTime: 0, minBytes: 0, topics: [{ topic: 'orders', partitions: [0, 1, 2].map((partition) => ({ partition, fetchOffset: '0', maxBytes: 1_048_576 })) }] });
      const partitions = response.responses.flatMap((topic) => topic.partitions);
      assert.equal(partitions.length, 3);
      for (const { partition, errorCode, messages, highWatermark } of partitions) {
        const expected = sent.get(partition)!;
        assert.equal(errorCode, 0);
        assert.equal(highWatermark, String(expected.length));
        assert.deepEqual(
          messages.map((m) => ({ offset: m.offset, key: m.key === null ? null : m.key.toString(), value: m.value === null ? null : m.value.toString(), headers: Object.entries(m.headers).map(([name, value]) => [name, value === undefined ? null : value.toString()]) })),
          expected.map((e, i) => ({ offset: String(i), ...e })),
          `partition ${partition} as kafkajs decodes it`,
        );
      }
    } finally {
      await cluster.disconnect();
    }
  });

  test('a Fetch long poll is woken by an append, not by its timeout', async () => {
    const poller = await RawClient.open(kafkaPort);
    const kafka = new Kafka({ clientId: 'waker', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const end = BigInt(sent.get(1)!.length);
      const started = Date.now();
      const waiting = poller.call(ApiKey.Fetch, 11, {
        replicaId: -1, maxWaitMs: 20_000, minBytes: 1, maxBytes: 1_048_576, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
        topics: [{ topic: 'orders', partitions: [{ partition: 1, currentLeaderEpoch: -1, fetchOffset: end, logStartOffset: -1n, partitionMaxBytes: 1_048_576 }] }],
        forgottenTopicsData: [], rackId: '',
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await producer.send({ topic: 'orders', acks: -1, messages: [{ partition: 1, key: 'late', value: 'wake-up' }] });
      sent.get(1)!.push({ key: 'late', value: 'wake-up', headers: [] });
      const body = await waiting;
      const elapsed = Date.now() - started;
      const entry = ((body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!;
      const batch = decodeRecordBatches(entry.records as Buffer).batches[0]!;
      assert.equal(batch.baseOffset, end);
      assert.equal(batch.records[0]!.value?.toString(), 'wake-up');
      assert.ok(elapsed < 10_000, `answered at the append (${elapsed} ms), not at max wait`);
    } finally {
      await producer.disconnect();
      poller.close();
    }
  });

  test('after a restart on the same data directory the topic and every record are still there', async () => {
    const previous = node!;
    await stopBroker(previous);
    node = undefined;
    await startNode(previous.dataDir);
    await checkReadBack();
    const kafka = new Kafka({ clientId: 'after-restart', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    assert.deepEqual((await admin.listTopics()).sort(), ['mqtt', 'orders'], 'the topic made, and the MQTT traffic (docs/kafka.md)');
    await admin.disconnect();
  });

  test('with --kafka-port none there is no Kafka listener', async () => {
    const plain = await startBroker({ args: ['--kafka-port', 'none'] });
    try {
      const listening = plain.broker.lines.find((line) => line.includes('"mqtt"')) ?? '';
      assert.ok(listening.includes('"mqtt"') && !listening.includes('"kafka"'), listening);
    } finally {
      await stopBroker(plain);
    }
  });

  test('bad input: negative and oversized frame sizes, an unknown API key, a truncated request close that connection; an unsupported ApiVersions version gets UNSUPPORTED_VERSION; other clients are unharmed', async () => {
    const bystander = await RawClient.open(kafkaPort);
    const versions = async (client: RawClient): Promise<KafkaStruct> => client.call(ApiKey.ApiVersions, 3, { clientSoftwareName: 'raw-test', clientSoftwareVersion: '1.0' });
    const first = await versions(bystander);
    assert.equal(first.errorCode, 0);
    // Only what is served is advertised.
    assert.deepEqual((first.apiKeys as KafkaStruct[]).map((api) => api.apiKey as number).sort((a, b) => a - b), [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 32, 36, 37, 42]);

    const closes = async (bytes: Buffer, what: string): Promise<void> => {
      const client = await RawClient.open(kafkaPort);
      client.socket.write(bytes);
      const outcome = await Promise.race([client.closed.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open'), 5000))]);
      assert.equal(outcome, 'closed', what);
    };
    const size = (value: number): Buffer => {
      const buffer = Buffer.alloc(4);
      buffer.writeInt32BE(value);
      return buffer;
    };
    await closes(size(-1), 'negative frame size');
    await closes(Buffer.concat([size(200 * 1024 * 1024), Buffer.alloc(16)]), 'frame over the maximum');
    // Unknown API key 999 and a served key at a version nobody advertised: Kafka closes.
    const header = (apiKey: number, apiVersion: number): Buffer => {
      const body = Buffer.alloc(10);
      body.writeInt16BE(apiKey, 0);
      body.writeInt16BE(apiVersion, 2);
      body.writeInt32BE(7, 4);
      body.writeInt16BE(-1, 8);
      return Buffer.concat([size(body.length), body]);
    };
    await closes(header(999, 0), 'unknown API key');
    await closes(header(ApiKey.SaslHandshake, 0), 'a version the codec knows but this node does not serve (SaslHandshake v0)');
    await closes(header(ApiKey.Metadata, 1), 'a truncated Metadata request (no topics array)');
    // A Produce frame cut short: the declared size holds, the body is incomplete → close.
    const produce = encodeRequest(ApiKey.Produce, 7, 9, 'raw', { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records: Buffer.alloc(0) }] }] });
    const cut = produce.subarray(4, produce.length - 6);
    await closes(Buffer.concat([size(cut.length), cut]), 'a truncated Produce request');

    // ApiVersions at a version past ours: the KIP-511 answer, v0 with UNSUPPORTED_VERSION.
    const future = await RawClient.open(kafkaPort);
    // Header v2 (ApiVersions v3+ is flexible): client id, then an empty tagged-field section.
    const body = Buffer.alloc(11);
    body.writeInt16BE(ApiKey.ApiVersions, 0);
    body.writeInt16BE(9, 2);
    body.writeInt32BE(42, 4);
    body.writeInt16BE(-1, 8);
    future.socket.write(Buffer.concat([size(body.length), body]));
    const answer = decodeResponse(ApiKey.ApiVersions, 0, await future.nextFrame());
    assert.equal(answer.correlationId, 42);
    assert.equal(answer.body.errorCode, KafkaErrorCode.UNSUPPORTED_VERSION);
    future.close();

    // A Produce that decodes but carries a corrupt batch: CORRUPT_MESSAGE, the connection stays.
    const corrupt = await bystander.call(ApiKey.Produce, 7, { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records: Buffer.alloc(70, 1) }] }] });
    const partitionResponse = ((corrupt.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!;
    assert.equal(partitionResponse.errorCode, KafkaErrorCode.CORRUPT_MESSAGE);

    // The bystander still works, and so does the node.
    assert.equal((await versions(bystander)).errorCode, 0);
    const { records } = await fetchAll(bystander, 'orders', 0);
    assert.equal(records.length, sent.get(0)!.length);
    bystander.close();
  });
});
