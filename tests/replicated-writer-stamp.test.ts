// Goal: the writer stamp (`sl-writer`) that a broker's idempotent appends store in every batch
// of a replicated shard stays inside the journal: a Kafka consumer gets exactly the records,
// keys and headers the producer sent, in batches whose CRCs check, and an MQTT 5 subscriber
// exactly the user properties the publisher sent (docs/replication.md, "Idempotent appends").
// Method: real processes on loopback: a placement voter, one journal node and one broker
// started with --placement and no --journal (so it appends through PlacedShardStore, which
// stamps), replication factor 1 set in placement first. kafkajs produces records with headers
// and a consumer group reads them back; a raw Fetch is decoded by the codec, which checks each
// batch's CRC; mqtt.js publishes and subscribes with MQTT 5 user properties. The journal is then
// read directly to show that the stored batches do carry the stamp.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import mqtt from 'mqtt';
import { WRITER_HEADER } from '../journal/index.js';
import { ApiKey, decodeRecordBatches, type KafkaStruct } from '../protocols/kafka/index.js';
import { PlacementClient } from '../placement/service/index.js';
import { REPLICATION_FACTOR_SETTING, RemoteShardStore } from '../shard-model/index.js';
import { cleanup, type CliProcess, freePort, runCli, scratchDirectory, stopCleanly, waitForLogField } from './support/broker-process.js';
import { waitFor } from './support/kafka-group.js';
import { RawClient } from './support/kafka-raw-client.js';

const { Kafka, logLevel } = kafkajs;

const env = { SHARDLINE_CLUSTER_TOKEN: 'writer-stamp-test-token' };
const TOPIC = 'stamped';
const SENT = [
  { key: 'k0', value: 'v0', headers: { trace: 'a' } },
  { key: 'k1', value: 'v1', headers: {} },
  { key: 'k2', value: 'v2', headers: { trace: 'c', tenant: 'x' } },
];

describe('the writer stamp of idempotent appends to replicated shards', { timeout: 300_000 }, () => {
  const processes: CliProcess[] = [];
  after(async () => {
    await stopCleanly([...processes].reverse());
    await cleanup();
  });

  it('is never seen by Kafka consumers or MQTT subscribers, and is in the stored batches', async () => {
    const placementPort = await freePort();
    const placement = `127.0.0.1:${placementPort}`;
    const voter = runCli(['start', '--roles', 'placement', '--node-id', '1', '--placement-port', String(placementPort), '--data-dir', await scratchDirectory('shardline-stamp-voter-')], env);
    processes.push(voter);
    await waitForLogField(voter, 'placement');
    const client = new PlacementClient({ addresses: [placement], clusterId: 'shardline', clusterToken: env.SHARDLINE_CLUSTER_TOKEN });
    try {
      // One journal node: a replica set of one, without waiting for three to register.
      assert.equal((await client.propose({ type: 'set-setting', key: REPLICATION_FACTOR_SETTING, value: 1 })).result.status, 'ok');
    } finally {
      client.close();
    }
    const journal = runCli(['start', '--roles', 'journal', '--node-id', '11', '--placement', placement, '--grpc-port', '0', '--data-dir', await scratchDirectory('shardline-stamp-journal-')], env);
    processes.push(journal);
    const journalAddress = String((await waitForLogField(journal, 'journalGrpc')).journalGrpc);
    // No $SYS rounds: their retained statistics are journaled in the data shards too, and the
    // count of stored MQTT records below must be the one message this test publishes.
    const broker = runCli(['start', '--roles', 'broker', '--node-id', '21', '--placement', placement, '--mqtt-port', '0', '--kafka-port', '0', '--amqp-port', 'none', '--kafka-group-initial-rebalance-delay-ms', '0', '--sys-interval', '0'], env);
    processes.push(broker);
    // A broker over placement creates and waits for its shards' leaders first: slow on a loaded machine.
    const kafkaPort = Number((await waitForLogField(broker, 'kafkaPort', 180_000)).kafkaPort);
    const mqttAddress = String((await waitForLogField(broker, 'mqtt')).mqtt);

    // Kafka: produced with headers, read back by a group exactly as sent.
    const kafka = new Kafka({ clientId: 'stamp-test', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] }), true);
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: TOPIC, acks: -1, messages: SENT.map((message) => ({ ...message, partition: 0 })) });
    } finally {
      await producer.disconnect();
    }
    const consumer = kafka.consumer({ groupId: 'stamp-readers', retry: { retries: 5 } });
    const received: { key: string; value: string; headers: Record<string, string> }[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          received.push({ key: String(message.key), value: String(message.value), headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)])) });
        },
      });
      await waitFor('the consumer to read every record', () => (received.length >= SENT.length ? true : undefined));
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual(received, SENT);

    // The same records over a raw Fetch: the codec checks every batch's CRC while it decodes them.
    const rawClient = await RawClient.open(kafkaPort, 'stamp-test-raw');
    try {
      const body = await rawClient.call(ApiKey.Fetch, 11, {
        replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, rackId: '', forgottenTopicsData: [],
        topics: [{ topic: TOPIC, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      });
      const partition = ((body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!;
      assert.equal(partition.errorCode, 0);
      const records = decodeRecordBatches(partition.records as Buffer).batches.flatMap((batch) => batch.records);
      assert.deepEqual(records.map((record) => [String(record.key), String(record.value), record.headers.map((header) => header.key)]), SENT.map((message) => [message.key, message.value, Object.keys(message.headers)]));
    } finally {
      rawClient.close();
    }

    // MQTT 5: the user properties the publisher sent, and nothing else.
    const subscriber = await mqtt.connectAsync(`mqtt://${mqttAddress}`, { clientId: 'stamp-sub', protocolVersion: 5, reconnectPeriod: 0 });
    const publisher = await mqtt.connectAsync(`mqtt://${mqttAddress}`, { clientId: 'stamp-pub', protocolVersion: 5, reconnectPeriod: 0 });
    try {
      const delivered = new Promise<{ payload: string; userProperties: unknown }>((resolve) => {
        subscriber.once('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), userProperties: { ...packet.properties?.userProperties } }));
      });
      await subscriber.subscribeAsync('stamped/#', { qos: 1 });
      await publisher.publishAsync('stamped/m', 'hello', { qos: 1, properties: { userProperties: { origin: 'test' } } });
      assert.deepEqual(await delivered, { payload: 'hello', userProperties: { origin: 'test' } });
    } finally {
      await publisher.endAsync();
      await subscriber.endAsync();
    }

    // The journal holds the stamp: these were idempotent appends to replicated shards.
    const store = await RemoteShardStore.connect(journalAddress, { credentials: { clusterToken: env.SHARDLINE_CLUSTER_TOKEN } });
    try {
      const stored = await store.read(`kafka.${TOPIC}.0`, 0, { maxRecords: 100 });
      assert.equal(stored.length, SENT.length);
      assert.ok(stored[0]?.headers.some((header) => header.key === WRITER_HEADER), `the first record carries ${WRITER_HEADER}: ${JSON.stringify(stored[0]?.headers.map((header) => header.key))}`);
      const dataShards = (await store.list()).map((shard) => shard.name).filter((name) => /^mqtt\.\d+$/.test(name));
      const mqttRecords = (await Promise.all(dataShards.map((name) => store.read(name, 0, { maxRecords: 100 })))).flat();
      assert.equal(mqttRecords.length, 1);
      assert.ok(mqttRecords[0]?.headers.some((header) => header.key === WRITER_HEADER));
    } finally {
      await store.close();
    }
  });
});
