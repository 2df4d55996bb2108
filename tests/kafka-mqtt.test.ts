// One log, two protocols: a real node with MQTT and Kafka listeners. MQTT publishes (mqtt.js,
// MQTT 5.0 with properties) are read as the Kafka topic `mqtt` (kafkajs's Metadata, a codec client's
// Fetch and ListOffsets; partition = data shard, key = MQTT topic); records produced to `mqtt`
// with kafkajs reach MQTT subscribers; the access policy holds for Kafka clients (a withheld
// record, a refused produce); bad records get Kafka's error codes.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, KafkaErrorCode, type KafkaStruct } from '../protocols/kafka/index.js';
import { cleanup, freePort, startBroker, stopBroker, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { shardMapping } from './support/data-shards.js';
import { fetchAll, RawClient } from './support/kafka-raw-client.js';
import { closeAllClients, connectClient, subscriber } from './support/mqtt-client.js';

const { Kafka, logLevel } = kafkajs;

// The Kafka client "kafka:restricted" may not read billing/ nor publish under locked/; everyone else may do anything.
const ACL = `
[[acl]]
permission = "deny"
action = "subscribe"
topic = "billing/#"
clientid = "kafka:restricted"

[[acl]]
permission = "deny"
action = "publish"
topic = "locked/#"
clientid = "kafka:restricted"

[[acl]]
permission = "allow"
action = "all"
topic = "#"
`;

const header = (headers: Array<[string, string | null]>, name: string): string | null | undefined => headers.find(([key]) => key === name)?.[1];

describe('MQTT traffic as the Kafka topic mqtt, both ways', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let kafkaPort = 0;
  after(async () => {
    closeAllClients();
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('MQTT publishes are records of the topic mqtt, in the partition of their data shard, with MQTT fields as headers', async () => {
    kafkaPort = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--data-shards', '4', '--config', await writeConfigFile(ACL, 'acl.toml')] });
    const shardOf = await shardMapping(node);
    const publisher = await connectClient(node.url, { version: 5, clientId: 'dev-1' });
    const sent = [
      { topic: 'sensors/a', payload: '21.5', qos: 1 as const, retain: false, properties: { contentType: 'text/plain', userProperties: { unit: 'C' } } },
      { topic: 'sensors/b', payload: '19.0', qos: 1 as const, retain: false, properties: {} },
      { topic: 'billing/acme', payload: 'invoice 7', qos: 1 as const, retain: false, properties: {} },
      { topic: 'status/dev-1', payload: 'online', qos: 1 as const, retain: true, properties: {} },
    ];
    for (const message of sent) await publisher.publish(message.topic, message.payload, { qos: message.qos, retain: message.retain, properties: message.properties });

    const kafka = new Kafka({ clientId: 'admin', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.ok((await admin.listTopics()).includes('mqtt'), 'the MQTT topic is listed');
      const metadata = await admin.fetchTopicMetadata({ topics: ['mqtt'] });
      assert.deepEqual(metadata.topics[0]!.partitions.map((p) => p.partitionId).sort(), [0, 1, 2, 3], 'one partition per data shard');
      assert.equal(await admin.createTopics({ topics: [{ topic: 'mqtt', numPartitions: 1 }] }), false, 'the name is taken by the MQTT traffic');
      await assert.rejects(admin.deleteTopics({ topics: ['mqtt'], timeout: 5000 }), (error: Error & { type?: string }) => /TOPIC_DELETION_DISABLED|deletion/i.test(`${error.type ?? ''} ${error.message}`), 'the MQTT topic is not deleted');
      await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: 'mqtt', count: 8 }] }), (error: Error & { type?: string }) => /INVALID_PARTITIONS|partitions/i.test(`${error.type ?? ''} ${error.message}`), 'nor grown');
      const configs = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: 'mqtt', configNames: ['cleanup.policy'] }] });
      assert.deepEqual(configs.resources[0]!.configEntries.map((entry) => [entry.configName, entry.configValue]), [['cleanup.policy', 'delete']]);
    } finally {
      await admin.disconnect();
    }

    const reader = await RawClient.open(kafkaPort, 'reader');
    try {
      const seen = new Map<string, { partition: number; value: string | null; headers: Array<[string, string | null]> }>();
      for (let partition = 0; partition < 4; partition += 1) {
        const { records, highWatermark, errorCode } = await fetchAll(reader, 'mqtt', partition);
        assert.equal(errorCode, 0);
        assert.equal(highWatermark, BigInt(records.length), `partition ${partition}: every record of the shard, offsets 0..n-1`);
        for (const record of records) seen.set(record.key ?? '', { partition, value: record.value, headers: record.headers });
      }
      for (const message of sent) {
        const record = seen.get(message.topic);
        assert.ok(record !== undefined, `${message.topic} was read`);
        assert.equal(record.partition, shardOf(message.topic), `${message.topic} is in the partition of its data shard`);
        assert.equal(record.value, message.payload);
        assert.equal(header(record.headers, 'mqtt.qos'), '1');
        assert.equal(header(record.headers, 'mqtt.publisher'), 'dev-1');
        assert.equal(header(record.headers, 'mqtt.retain'), message.retain ? 'true' : undefined);
      }
      assert.equal(header(seen.get('sensors/a')!.headers, 'mqtt.content-type'), 'text/plain');
      assert.equal(header(seen.get('sensors/a')!.headers, 'unit'), 'C');
      const latest = await reader.call(ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'mqtt', partitions: [{ partitionIndex: shardOf('sensors/a'), currentLeaderEpoch: -1, timestamp: -1n }] }] });
      const offsets = (latest.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[];
      assert.equal(offsets[0]!.errorCode, 0);
      assert.ok((offsets[0]!.offset as bigint) >= 1n, 'ListOffsets latest is the shard end');
    } finally {
      reader.close();
    }

    const restricted = await RawClient.open(kafkaPort, 'restricted');
    try {
      const { records } = await fetchAll(restricted, 'mqtt', shardOf('billing/acme'));
      const billing = records.filter((record) => record.headers.some(([key]) => key === 'mqtt.withheld'));
      assert.equal(billing.length, 1, 'the billing message is withheld from a client that may not read it');
      assert.equal(billing[0]!.key, null);
      assert.equal(billing[0]!.value, null);
      assert.ok(!records.some((record) => record.value === 'invoice 7'), 'its payload is not shown');
    } finally {
      restricted.close();
    }
  });

  test('a Fetch waiting at the end of a partition is woken by an MQTT publish', async () => {
    assert.ok(node !== undefined);
    const shardOf = await shardMapping(node);
    const topic = 'live/1';
    const partition = shardOf(topic);
    const poller = await RawClient.open(kafkaPort, 'poller');
    const publisher = await connectClient(node.url, { version: 4 });
    try {
      const end = (await fetchAll(poller, 'mqtt', partition)).highWatermark;
      const waiting = poller.call(ApiKey.Fetch, 11, {
        replicaId: -1, maxWaitMs: 20_000, minBytes: 1, maxBytes: 1_048_576, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
        topics: [{ topic: 'mqtt', partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: end, logStartOffset: -1n, partitionMaxBytes: 1_048_576 }] }],
        forgottenTopicsData: [], rackId: '',
      });
      await publisher.publish(topic, 'wake', { qos: 1 });
      const body = await waiting;
      const entry = ((body.responses as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!;
      assert.equal(entry.errorCode, 0);
      assert.ok(entry.records !== null && (entry.records as Buffer).includes(Buffer.from('wake')), 'the long poll returned the MQTT message');
    } finally {
      poller.close();
    }
  });

  test('records produced to mqtt with kafkajs reach MQTT subscribers, with their headers as MQTT properties; retained works', async () => {
    assert.ok(node !== undefined);
    const live = await subscriber(node.url, 'cmd/#', { version: 5, qos: 1 });
    const kafka = new Kafka({ clientId: 'ops', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      const results = await producer.send({
        topic: 'mqtt',
        acks: -1,
        messages: [
          { key: 'cmd/dev-1', value: 'reboot', headers: { 'mqtt.qos': '1', 'mqtt.content-type': 'text/plain', reason: 'update' } },
          { key: 'cmd/dev-2', value: 'stop', headers: { 'mqtt.retain': 'true' } },
        ],
      });
      for (const result of results) assert.equal(result.errorCode, 0);
      const [first, second] = await live.waitForMessages(2);
      const byTopic = new Map([first!, second!].map((message) => [message.topic, message]));
      const reboot = byTopic.get('cmd/dev-1');
      assert.ok(reboot !== undefined);
      assert.equal(reboot.payload.toString(), 'reboot');
      assert.equal(reboot.packet.qos, 1);
      assert.equal(reboot.packet.properties?.contentType, 'text/plain');
      assert.deepEqual({ ...reboot.packet.properties?.userProperties }, { reason: 'update' });
      assert.equal(byTopic.get('cmd/dev-2')?.payload.toString(), 'stop');
      // The retained one is kept: a subscriber that comes later gets it.
      const late = await subscriber(node.url, 'cmd/dev-2', { version: 5, qos: 1 });
      const [kept] = await late.waitForMessages(1);
      assert.equal(kept!.payload.toString(), 'stop');
      assert.equal(kept!.packet.retain, true);
    } finally {
      await producer.disconnect();
    }
  });

  test('a kafkajs consumer group reads the MQTT topic and commits offsets on it', async () => {
    assert.ok(node !== undefined);
    const kafka = new Kafka({ clientId: 'group-reader', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const consumer = kafka.consumer({ groupId: 'mqtt-readers', sessionTimeout: 10_000, heartbeatInterval: 500 });
    const seen = new Map<string, string>();
    let resolveSeen: () => void = () => undefined;
    const allSeen = new Promise<void>((resolve) => (resolveSeen = resolve));
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: 'mqtt', fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (message.key !== null && message.value !== null) seen.set(message.key.toString(), message.value.toString());
          if (['sensors/a', 'sensors/b', 'cmd/dev-1'].every((topic) => seen.has(topic))) resolveSeen();
        },
      });
      await Promise.race([allSeen, new Promise((_, reject) => setTimeout(() => reject(new Error(`the group read only ${[...seen.keys()].join(', ')}`)), 30_000))]);
      assert.equal(seen.get('sensors/a'), '21.5');
      assert.equal(seen.get('cmd/dev-1'), 'reboot', 'what Kafka produced to the topic is read back too');
    } finally {
      await consumer.disconnect();
    }
    const admin = kafka.admin();
    await admin.connect();
    try {
      const committed = await admin.fetchOffsets({ groupId: 'mqtt-readers', topics: ['mqtt'] });
      const offsets = committed[0]!.partitions.filter((partition) => Number(partition.offset) > 0);
      assert.ok(offsets.length > 0, 'offsets committed on the MQTT topic');
    } finally {
      await admin.disconnect();
    }
  });

  test('bad records and forbidden topics are refused with Kafka error codes, nothing published, the connection unharmed', async () => {
    assert.ok(node !== undefined);
    const watcher = await subscriber(node.url, '#', { version: 5, qos: 1 });
    const produce = async (client: RawClient, key: string | null, headers: Array<{ key: string; value: Buffer }> = []): Promise<KafkaStruct> => {
      const { encodeRecordBatch } = await import('../protocols/kafka/index.js');
      const records = encodeRecordBatch({
        baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: 0, baseTimestamp: BigInt(Date.now()), maxTimestamp: BigInt(Date.now()),
        producerId: -1n, producerEpoch: -1, baseSequence: -1,
        records: [{ attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: key === null ? null : Buffer.from(key), value: Buffer.from('x'), headers }],
      });
      const body = await client.call(ApiKey.Produce, 8, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'mqtt', partitionData: [{ index: 0, records }] }] });
      return ((body.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!;
    };
    const anyone = await RawClient.open(kafkaPort, 'anyone');
    const restricted = await RawClient.open(kafkaPort, 'restricted');
    try {
      const cases: Array<[KafkaStruct, number, RegExp]> = [
        [await produce(anyone, null), KafkaErrorCode.INVALID_RECORD, /needs a key/],
        [await produce(anyone, 'a/+/b'), KafkaErrorCode.INVALID_RECORD, /wildcard/],
        [await produce(anyone, '$SYS/broker/x'), KafkaErrorCode.INVALID_RECORD, /\$ namespace/],
        [await produce(anyone, 'ok/topic', [{ key: 'mqtt.qos', value: Buffer.from('5') }]), KafkaErrorCode.INVALID_RECORD, /0, 1 or 2/],
        [await produce(restricted, 'locked/door'), KafkaErrorCode.TOPIC_AUTHORIZATION_FAILED, /not allowed/],
      ];
      for (const [response, code, reason] of cases) {
        assert.equal(response.errorCode, code, String(reason));
        assert.match(String(response.errorMessage), reason);
      }
      // Still served: a good record from the same connections goes through.
      assert.equal((await produce(restricted, 'open/door')).errorCode, 0);
      const [delivered] = await watcher.waitForMessages(1, { topic: 'open/door' });
      assert.equal(delivered!.payload.toString(), 'x');
      assert.ok(!watcher.messages.some((message) => ['ok/topic', 'locked/door'].includes(message.topic)), 'nothing refused was published');
    } finally {
      anyone.close();
      restricted.close();
    }
  });
});

describe('the MQTT topic under SASL: rules keyed on the user name apply to Kafka clients', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  after(async () => {
    closeAllClients();
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('bob may not publish under ops/, alice may; the user is SASL\'s, not a claimed client id', async () => {
    const kafkaPort = await freePort();
    const config = await writeConfigFile(`
allow-anonymous = false

[[users]]
username = "alice"
password = "wonderland"

[[users]]
username = "bob"
password = "builder"

[[acl]]
permission = "deny"
action = "publish"
topic = "ops/#"
username = "bob"

[[acl]]
permission = "allow"
action = "all"
topic = "#"
`, 'sasl-acl.toml');
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--config', config] });
    const watcher = await subscriber(node.url, 'ops/#', { version: 5, qos: 1, username: 'alice', password: 'wonderland' });
    const produce = async (username: string, password: string, value: string): Promise<void> => {
      // The client id claims to be alice's: the rule still sees bob, the SASL user.
      const producer = new Kafka({ clientId: 'alice', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 0 }, sasl: { mechanism: 'plain', username, password } }).producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        await producer.send({ topic: 'mqtt', acks: -1, messages: [{ key: 'ops/restart', value }] });
      } finally {
        await producer.disconnect();
      }
    };
    await assert.rejects(produce('bob', 'builder', 'from bob'), (error: Error & { type?: string }) => /TOPIC_AUTHORIZATION_FAILED|not allowed/i.test(`${error.type ?? ''} ${error.message}`));
    await produce('alice', 'wonderland', 'from alice');
    const [delivered] = await watcher.waitForMessages(1);
    assert.equal(delivered!.payload.toString(), 'from alice');
    assert.ok(!watcher.messages.some((message) => message.payload.toString() === 'from bob'), 'nothing of bob\'s was published');
  });
});
