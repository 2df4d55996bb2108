// Kafka clients other than kafkajs against a real node: kcat (librdkafka, the C client most
// Kafka tools are built on) and kafka-python (Debian's python3-kafka; .ci/run installs both).
// kcat produces to the MQTT topic and an mqtt.js subscriber receives it; kcat reads the MQTT
// topic back; kafka-python creates a topic, produces gzip batches with headers and reads them
// back by partition assignment (no consumer group).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanup, freePort, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, subscriber } from './support/mqtt-client.js';
import { runProcess, type ProcessRun } from './support/run-process.js';

/** Debian's interpreter, whose dist-packages hold python3-kafka (a pyenv python3 on PATH would not see it). */
const PYTHON = '/usr/bin/python3';

function run(command: string, args: string[], input = ''): Promise<ProcessRun> {
  return runProcess(command, args, { input });
}

const KAFKA_PYTHON = `
import json, sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
servers = '127.0.0.1:' + sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=servers, client_id='py-admin')
admin.create_topics([NewTopic('py-topic', num_partitions=2, replication_factor=1)])
topics = sorted(admin.list_topics())
producer = KafkaProducer(bootstrap_servers=servers, acks='all', compression_type='gzip')
for i in range(6):
    producer.send('py-topic', key=b'k%d' % i, value=b'v%d' % i, partition=i % 2, headers=[('n', str(i).encode())]).get(timeout=10)
producer.flush()
consumer = KafkaConsumer(bootstrap_servers=servers, consumer_timeout_ms=3000, enable_auto_commit=False)
consumer.assign([TopicPartition('py-topic', 0), TopicPartition('py-topic', 1)])
consumer.seek_to_beginning()
records = sorted([m.partition, m.offset, m.key.decode(), m.value.decode(), [[k, v.decode()] for k, v in m.headers]] for m in consumer)
print(json.dumps({'topics': topics, 'records': records}))
`;

describe('kcat (librdkafka) and kafka-python against a node', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let kafkaPort = 0;
  after(async () => {
    closeAllClients();
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('kcat produces to the MQTT topic (an MQTT subscriber receives it) and reads it back to the end', async () => {
    kafkaPort = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--sys-interval', '0'] });
    const mqtt = await subscriber(node.url, 'plant/#', { version: 5, qos: 1 });
    const produced = await run('kcat', ['-b', `127.0.0.1:${kafkaPort}`, '-t', 'mqtt', '-P', '-K', ':', '-H', 'unit=C'], 'plant/line1:21.5\nplant/line2:19.0\n');
    assert.equal(produced.code, 0, produced.stderr);
    const received = await mqtt.waitForMessages(2);
    assert.deepEqual(received.map((m) => [m.topic, m.payload.toString(), m.packet.qos]).sort(), [['plant/line1', '21.5', 1], ['plant/line2', '19.0', 1]]);
    assert.deepEqual({ ...received[0]!.packet.properties?.userProperties }, { unit: 'C' }, 'a kcat header is an MQTT user property');

    const consumed = await run('kcat', ['-b', `127.0.0.1:${kafkaPort}`, '-t', 'mqtt', '-C', '-o', 'beginning', '-e', '-q', '-f', '%k|%s|%h\n']);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.doesNotMatch(consumed.stderr, /PROTOERR|parse failure/i, 'librdkafka decodes every Fetch answer');
    const lines = consumed.stdout.trim().split('\n').sort();
    assert.deepEqual(lines, ['plant/line1|21.5|mqtt.qos=1,mqtt.publisher=kafka:rdkafka,unit=C', 'plant/line2|19.0|mqtt.qos=1,mqtt.publisher=kafka:rdkafka,unit=C']);
  });

  test('kafka-python creates a topic, produces gzip batches with headers and reads them back by assignment', async () => {
    assert.ok(node !== undefined);
    const result = await run(PYTHON, ['-c', KAFKA_PYTHON, String(kafkaPort)]);
    assert.equal(result.code, 0, result.stderr);
    const { topics, records } = JSON.parse(result.stdout) as { topics: string[]; records: Array<[number, number, string, string, Array<[string, string]>]> };
    assert.deepEqual(topics, ['mqtt', 'py-topic']);
    assert.deepEqual(records, [0, 2, 4, 1, 3, 5].map((i, at) => [i % 2, at < 3 ? at : at - 3, `k${i}`, `v${i}`, [['n', String(i)]]]));
  });
});
