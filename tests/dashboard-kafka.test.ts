// The dashboard's Kafka page (console/kafka.js) in headless Chromium against a running
// `shardline start --kafka-port`.
//
// Goal: what docs/operations.md promises of the Kafka page holds in a real browser: the topics
// with their partitions, end offsets, records and bytes; the consumer groups with state, members
// and total lag; a group's detail with its member and the committed offset, log end and lag per
// partition, equal to what kafkajs produced and committed; the lag shown follows a new commit at
// the next poll; a node without the Kafka listener says so.
// Method: playwright-core driving /usr/bin/chromium (missing Chromium fails the test), kafkajs
// 2.2.4's admin, producer and consumer({ groupId }) against the node. A screenshot goes to
// .test-output/dashboard/ for a human to look at.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cleanup, freePort, REPO_ROOT, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';

const { Kafka, logLevel } = kafkajs;
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-kafka-token';
const SHOTS = join(REPO_ROOT, '.test-output', 'dashboard');
const STEP_TIMEOUT_MS = 15_000;

/** Polls `check` every 100 ms until it holds; fails after `timeoutMs` (a bound, not a speed claim). */
async function waitFor(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The cells of a table row, trimmed. */
async function cells(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(`${selector} td`, (tds) => tds.map((td) => (td.textContent ?? '').trim()));
}

describe('dashboard Kafka page in headless Chromium', { timeout: 150_000 }, () => {
  const nodes: BrokerProcess[] = [];
  const clients: Array<{ disconnect(): Promise<void> }> = [];
  let browser: Browser | undefined;
  after(async () => {
    await browser?.close();
    for (const client of clients) await client.disconnect().catch(() => undefined);
    for (const node of nodes) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  async function login(base: string): Promise<Page> {
    browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    await page.goto(`${base}/`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#view[data-loaded="overview"]');
    return page;
  }

  it('shows topics, groups and a group\'s lag per partition as kafkajs left them', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    await mkdir(SHOTS, { recursive: true });
    const kafkaPort = await freePort();
    const node = await startBroker({ args: ['--admin-token', TOKEN, '--kafka-port', String(kafkaPort), '--kafka-group-initial-rebalance-delay-ms', '0', '--data-shards', '2'] });
    nodes.push(node);
    const base = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;

    const kafka = new Kafka({ clientId: 'dash-app', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    clients.push(admin);
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: 'dash-orders', numPartitions: 2 }] }), true);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    clients.push(producer);
    await producer.connect();
    await producer.send({ topic: 'dash-orders', acks: -1, messages: [0, 0, 0, 0, 0, 1, 1, 1].map((partition, i) => ({ partition, value: `order-${i}` })) });
    const consumer = kafka.consumer({ groupId: 'dash-group', sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 300 });
    clients.push(consumer);
    let joined = false;
    let read = 0;
    consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
    await consumer.connect();
    await consumer.subscribe({ topics: ['dash-orders'], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachMessage: async () => { read += 1; } });
    await waitFor(() => joined && read === 8, 'the consumer to join and read the 8 records');
    // Lag: partition 0 ends at 5, committed 2 → 3; partition 1 ends at 3, committed 3 → 0.
    await consumer.commitOffsets([{ topic: 'dash-orders', partition: 0, offset: '2' }, { topic: 'dash-orders', partition: 1, offset: '3' }]);

    const page = await login(base);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.click('#nav a[data-page=kafka]');
    await page.waitForSelector('#view[data-loaded="kafka"]');
    // Columns: topic, kind, partitions, end offsets, records held, bytes.
    const topic = await cells(page, 'tr[data-kafka-topic="dash-orders"]');
    assert.deepEqual(topic.slice(0, 5), ['dash-orders', 'Kafka', '2', '5 · 3', '8']);
    assert.match(topic[5]!, /^\d+(\.\d)? (B|KiB)$/);
    assert.notEqual(topic[5], '0 B', 'the partitions hold bytes');
    assert.deepEqual((await cells(page, 'tr[data-kafka-topic="mqtt"]')).slice(0, 3), ['mqtt', 'MQTT traffic', '2']);
    // Columns: group, state, protocol, members, generation, total lag.
    const group = await cells(page, 'tr[data-group="dash-group"]');
    assert.deepEqual([group[0], group[1], group[2], group[3], group[5]], ['dash-group', 'Stable', 'consumer / RoundRobinAssigner', '1', '3']);

    await page.click('tr[data-group="dash-group"] a.group-link');
    await page.waitForSelector('#kafka-group-detail tr[data-partition="dash-orders/0"]');
    // Columns: topic, partition, committed, log end, lag, member.
    const p0 = await cells(page, 'tr[data-partition="dash-orders/0"]');
    const p1 = await cells(page, 'tr[data-partition="dash-orders/1"]');
    assert.deepEqual(p0.slice(0, 5), ['dash-orders', '0', '2', '5', '3']);
    assert.deepEqual(p1.slice(0, 5), ['dash-orders', '1', '3', '3', '0']);
    assert.match(p0[5]!, /^dash-app-/, 'the partition names its member');
    assert.equal(await page.textContent('#kafka-total-lag'), '3');
    const member = await cells(page, '#kafka-group-detail tr[data-member]');
    assert.deepEqual(member.slice(1), ['dash-app', '/127.0.0.1', 'dash-orders: 0, 1']);
    await page.screenshot({ path: join(SHOTS, '9-kafka.png'), fullPage: true });

    // The page polls: a commit of the rest shows as lag 0 without a reload.
    await consumer.commitOffsets([{ topic: 'dash-orders', partition: 0, offset: '5' }]);
    await page.waitForSelector('tr[data-partition="dash-orders/0"][data-lag="0"]');
    await page.waitForFunction("document.querySelector('#kafka-total-lag')?.textContent === '0'");
    assert.equal((await cells(page, 'tr[data-group="dash-group"]'))[5], '0');
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
    assert.equal(await page.textContent('#status'), '', 'no error line');
  });

  it('says so on a node without the Kafka listener', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing`);
    const node = await startBroker({ args: ['--admin-token', TOKEN] });
    nodes.push(node);
    const base = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const page = await login(base);
    await page.click('#nav a[data-page=kafka]');
    await page.waitForSelector('#view[data-loaded="kafka"]');
    assert.match((await page.textContent('#kafka-none')) ?? '', /no Kafka listener/);
    assert.equal(await page.textContent('#status'), '', 'no error line');
  });
});
