// Operating the Kafka front end: a real node with --kafka-port and an admin token. kafkajs makes a
// topic and produces; the node's /metrics counts Kafka requests per API and error code (an
// unknown topic's Metadata answer counted as UNKNOWN_TOPIC_OR_PARTITION) with their latency and
// the open connections; `shardline ctl kafka topics|topic` show topics (the MQTT one too) with
// each partition's offsets; a node without the Kafka listener answers 503.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey } from '../protocols/kafka/index.js';
import { cleanup, freePort, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';
import { RawClient } from './support/kafka-raw-client.js';

const { Kafka, logLevel } = kafkajs;
const TOKEN = 'kafka-ops-test-token-0123456789';

/** The value of one series of a Prometheus text exposition, or undefined. */
function series(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    if (Object.entries(labels).every(([key, value]) => inside.includes(`${key}="${value}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('Kafka operations: metrics and ctl kafka', { timeout: 120_000 }, () => {
  const nodes: BrokerProcess[] = [];
  after(async () => {
    for (const node of nodes) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('metrics per API and error, and ctl kafka topics / topic', async () => {
    const kafkaPort = await freePort();
    const node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--admin-token', TOKEN, '--data-shards', '2'] });
    nodes.push(node);
    const admin = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const kafka = new Kafka({ clientId: 'ops', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 1 } });
    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    assert.equal(await kafkaAdmin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2 }] }), true);
    await kafkaAdmin.disconnect();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic: 'orders', acks: -1, messages: [{ partition: 0, value: 'a' }, { partition: 0, value: 'b' }, { partition: 1, value: 'c' }] });
    await producer.disconnect();
    const raw = await RawClient.open(kafkaPort);
    const unknown = await raw.call(ApiKey.Metadata, 9, { topics: [{ name: 'missing' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    assert.equal((unknown.topics as Array<{ errorCode: number }>)[0]!.errorCode, 3);

    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    assert.ok((series(metrics, 'shardline_kafka_requests_total', { api: 'Produce', error: 'NONE' }) ?? 0) >= 1, 'produce requests counted');
    assert.ok((series(metrics, 'shardline_kafka_requests_total', { api: 'Metadata', error: 'UNKNOWN_TOPIC_OR_PARTITION' }) ?? 0) >= 1, 'the unknown topic counted under its error code');
    assert.ok((series(metrics, 'shardline_kafka_request_duration_seconds_count', { api: 'Produce' }) ?? 0) >= 1, 'produce latency observed');
    assert.ok((series(metrics, 'shardline_kafka_connections', {}) ?? 0) >= 1, 'the raw client is an open connection');
    raw.close();

    const env = { SHARDLINE_ADMIN_URL: admin, SHARDLINE_ADMIN_TOKEN: TOKEN };
    const listed = await runCtl(['kafka', 'topics', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const items = (JSON.parse(listed.stdout) as { items: Array<{ name: string; mqtt: boolean; partitions: Array<{ partition: number; shard: string; startOffset: number; endOffset: number }> }> }).items;
    assert.deepEqual(items.map((topic) => [topic.name, topic.mqtt, topic.partitions.length]), [['mqtt', true, 2], ['orders', false, 2]]);
    const orders = items.find((topic) => topic.name === 'orders')!;
    assert.deepEqual(orders.partitions.map((p) => [p.shard, p.startOffset, p.endOffset]), [['kafka.orders.0', 0, 2], ['kafka.orders.1', 0, 1]]);
    const table = await runCtl(['kafka', 'topics'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /orders\s+kafka\s+2\s+3\s/);
    const one = await runCtl(['kafka', 'topic', 'orders'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /0\s+kafka\.orders\.0\s+0\s+2\s/);
    const missing = await runCtl(['kafka', 'topic', 'nope'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Kafka topic "nope" not found/);
  });

  test('a node without the Kafka listener answers 503 to ctl kafka', async () => {
    const node = await startBroker({ args: ['--admin-token', TOKEN] });
    nodes.push(node);
    const admin = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const run = await runCtl(['kafka', 'topics'], { SHARDLINE_ADMIN_URL: admin, SHARDLINE_ADMIN_TOKEN: TOKEN });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Kafka listener \(--kafka-port\) is not available/);
    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    assert.ok(!metrics.includes('shardline_kafka_requests_total'), 'no Kafka series without the listener');
  });
});
