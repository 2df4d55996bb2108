// Operating the Kafka front end: a real node with --kafka-port and an admin token. kafkajs makes a
// topic and produces; the node's /metrics counts Kafka requests per API and error code (an
// unknown topic's Metadata answer counted as UNKNOWN_TOPIC_OR_PARTITION) with their latency and
// the open connections; `shardline ctl kafka topics|topic` show topics (the MQTT one too) with
// each partition's offsets; a node without the Kafka listener answers 503. A kafkajs consumer
// group commits offsets: its lag per partition in the admin API, `ctl kafka groups|group` and
// /metrics equals the topic's end offset minus the offset kafkajs admin fetches as committed, and
// drops to 0 after it commits the rest; once it is deleted, it is gone from all three.
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

/** Polls `check` every 100 ms until it holds; fails after `timeoutMs` (a bound, not a speed claim). */
async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface GroupAnswer {
  groupId: string;
  state: string;
  protocolType: string;
  protocolName: string;
  generation: number;
  memberCount: number;
  totalLag: number;
  members: Array<{ memberId: string; clientId: string; clientHost: string; assignment: Array<{ topic: string; partitions: number[] }> }>;
  partitions: Array<{ topic: string; partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null; memberId: string | null }>;
}

describe('Kafka operations: metrics and ctl kafka', { timeout: 180_000 }, () => {
  const nodes: BrokerProcess[] = [];
  /** kafkajs clients still connected when a test fails: closed before the nodes stop. */
  const clients: Array<{ disconnect(): Promise<void> }> = [];
  after(async () => {
    for (const client of clients) await client.disconnect().catch(() => undefined);
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

  test('consumer group lag in the admin API, ctl and metrics: end − committed, down after more commits, gone once deleted', async () => {
    const kafkaPort = await freePort();
    const node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--admin-token', TOKEN, '--kafka-group-initial-rebalance-delay-ms', '0'] });
    nodes.push(node);
    const admin = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const get = async (path: string): Promise<{ status: number; body: unknown }> => {
      const response = await fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: response.status, body: await response.json() };
    };
    const metrics = async (): Promise<string> => (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const env = { SHARDLINE_ADMIN_URL: admin, SHARDLINE_ADMIN_TOKEN: TOKEN };
    const kafka = new Kafka({ clientId: 'lag-app', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 } });
    const kafkaAdmin = kafka.admin();
    clients.push(kafkaAdmin);
    await kafkaAdmin.connect();
    assert.equal(await kafkaAdmin.createTopics({ topics: [{ topic: 'lagging', numPartitions: 2 }] }), true);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    clients.push(producer);
    await producer.connect();
    const send = (partition: number, count: number) => producer.send({ topic: 'lagging', acks: -1, messages: Array.from({ length: count }, (_, i) => ({ partition, value: `p${partition}-${i}` })) });
    await send(0, 10);
    await send(1, 6);

    const consumer = kafka.consumer({ groupId: 'lag-group', sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 300 });
    clients.push(consumer);
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
    await consumer.connect();
    await consumer.subscribe({ topics: ['lagging'], fromBeginning: true });
    let read = 0;
    await consumer.run({ autoCommit: false, eachMessage: async () => { read += 1; } });
    await waitFor(() => joined && read === 16, 'the consumer to join and read all 16 records');
    await consumer.commitOffsets([{ topic: 'lagging', partition: 0, offset: '4' }, { topic: 'lagging', partition: 1, offset: '1' }]);

    /** Lag as a Kafka operator computes it: the topic's end offsets (topics API) minus what kafkajs admin fetches as committed. */
    const expectedLags = async (): Promise<Map<number, number>> => {
      const ends = ((await get('/api/kafka/topics/lagging')).body as { partitions: Array<{ partition: number; endOffset: number }> }).partitions;
      const committed = (await kafkaAdmin.fetchOffsets({ groupId: 'lag-group', topics: ['lagging'] }))[0]!.partitions;
      return new Map(ends.map(({ partition, endOffset }) => [partition, endOffset - Number(committed.find((c) => c.partition === partition)!.offset)]));
    };
    const checkLags = async (expected: Map<number, number>): Promise<void> => {
      const total = [...expected.values()].reduce((sum, lag) => sum + lag, 0);
      const detail = await get('/api/kafka/groups/lag-group');
      assert.equal(detail.status, 200);
      const group = detail.body as GroupAnswer;
      assert.deepEqual(group.partitions.map((p) => [p.topic, p.partition, p.lag, (p.logEndOffset ?? 0) - (p.committedOffset ?? 0)]), [...expected].map(([partition, lag]) => ['lagging', partition, lag, lag]));
      assert.equal(group.totalLag, total);
      const list = (await get('/api/kafka/groups')).body as { items: GroupAnswer[] };
      assert.deepEqual(list.items.map((g) => [g.groupId, g.totalLag]), [['lag-group', total]]);

      const ctlJson = await runCtl(['kafka', 'group', 'lag-group', '--json'], env);
      assert.equal(ctlJson.code, 0, ctlJson.stderr);
      assert.deepEqual((JSON.parse(ctlJson.stdout) as GroupAnswer).partitions.map((p) => p.lag), [...expected.values()]);
      const ctlTable = await runCtl(['kafka', 'group', 'lag-group'], env);
      assert.equal(ctlTable.code, 0, ctlTable.stderr);
      for (const [partition, lag] of expected) {
        const committed = group.partitions[partition]!.committedOffset!;
        assert.match(ctlTable.stdout, new RegExp(`lagging\\s+${partition}\\s+${committed}\\s+${committed + lag}\\s+${lag}\\s`), `ctl row of partition ${partition}`);
      }
      assert.match(ctlTable.stdout, new RegExp(`^total lag ${total}$`, 'm'));
      const groupsTable = await runCtl(['kafka', 'groups'], env);
      assert.equal(groupsTable.code, 0, groupsTable.stderr);
      assert.match(groupsTable.stdout, new RegExp(`lag-group\\s+Stable\\s+consumer/RoundRobinAssigner\\s+1\\s+\\d+\\s+${total}$`, 'm'));

      const text = await metrics();
      for (const [partition, lag] of expected) {
        assert.equal(series(text, 'shardline_kafka_consumer_group_lag', { group: 'lag-group', topic: 'lagging', partition: String(partition) }), lag, `metric lag of partition ${partition}`);
      }
      assert.equal(series(text, 'shardline_kafka_consumer_groups', { state: 'Stable' }), 1);
    };

    const anonymous = await fetch(`${admin}/api/kafka/groups/lag-group`);
    assert.equal(anonymous.status, 401, 'the group routes need the admin token');
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'SL_ADMIN_UNAUTHORIZED');
    const first = await expectedLags();
    assert.deepEqual([...first], [[0, 6], [1, 5]], 'the commits are what kafkajs admin reads back');
    await checkLags(first);
    const detail = (await get('/api/kafka/groups/lag-group')).body as GroupAnswer;
    assert.equal(detail.state, 'Stable');
    assert.equal(detail.protocolType, 'consumer');
    assert.equal(detail.memberCount, 1);
    assert.equal(detail.members[0]!.clientId, 'lag-app');
    assert.deepEqual(detail.members[0]!.assignment, [{ topic: 'lagging', partitions: [0, 1] }]);
    assert.ok(detail.partitions.every((p) => p.memberId === detail.members[0]!.memberId), 'each partition names its member');

    // More records widen the lag; committing everything brings it to 0.
    await send(1, 3);
    const wider = await expectedLags();
    assert.deepEqual([...wider], [[0, 6], [1, 8]]);
    await checkLags(wider);
    await consumer.commitOffsets([{ topic: 'lagging', partition: 0, offset: '10' }, { topic: 'lagging', partition: 1, offset: '9' }]);
    const none = await expectedLags();
    assert.deepEqual([...none], [[0, 0], [1, 0]]);
    await checkLags(none);

    // Deleted (once its consumer has left): gone from the API, ctl and the metrics.
    await consumer.disconnect();
    await producer.disconnect();
    await waitFor(async () => ((await get('/api/kafka/groups/lag-group')).body as GroupAnswer).state === 'Empty', 'the group to be Empty');
    await kafkaAdmin.deleteGroups(['lag-group']);
    await kafkaAdmin.disconnect();
    const gone = await get('/api/kafka/groups/lag-group');
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, { error: { code: 'SL_ADMIN_NOT_FOUND', message: 'Kafka consumer group "lag-group" not found' } });
    assert.deepEqual(((await get('/api/kafka/groups')).body as { items: unknown[] }).items, []);
    const ctlGone = await runCtl(['kafka', 'group', 'lag-group'], env);
    assert.equal(ctlGone.code, 1);
    assert.match(ctlGone.stderr, /Kafka consumer group "lag-group" not found/);
    assert.equal((await runCtl(['kafka', 'groups'], env)).stdout.trim(), 'no Kafka consumer groups');
    const text = await metrics();
    assert.equal(series(text, 'shardline_kafka_consumer_group_lag', { group: 'lag-group' }), undefined, 'no lag series left');
    assert.equal(series(text, 'shardline_kafka_consumer_groups', { state: 'Empty' }), 0);
    assert.equal(series(text, 'shardline_kafka_consumer_groups', { state: 'Stable' }), 0);
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
