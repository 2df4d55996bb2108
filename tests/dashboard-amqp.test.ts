// The dashboard's AMQP page in headless Chromium against a running `shardline start --amqp-port`.
//
// Goal: the page docs/amqp.md promises shows what amqplib did: the counts, a queue with its
// ready and unacknowledged messages, consumers and rates, a declared exchange, the
// connection; closing the connection from the page reaches amqplib as 320 CONNECTION_FORCED and
// its row goes. Method: playwright-core driving /usr/bin/chromium (missing Chromium fails the
// test), as tests/dashboard.test.ts; screenshots go to .test-output/dashboard-amqp/.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import amqp from 'amqplib';
import { chromium, type Browser } from 'playwright-core';
import { cleanup, REPO_ROOT, startBroker, stopBroker, usingMosquitto, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { amqpAddress } from './support/raw-amqp.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-amqp-test-token';
const SHOTS = join(REPO_ROOT, '.test-output', 'dashboard-amqp');
const STEP_TIMEOUT_MS = 15_000;

describe('dashboard AMQP page in headless Chromium', { skip: usingMosquitto() ? 'Shardline-only (admin dashboard)' : false, timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let browser: Browser | undefined;
  let connection: amqp.ChannelModel | undefined;

  after(async () => {
    await browser?.close();
    await connection?.close().catch(() => undefined);
    if (node !== undefined) await stopBroker(node);
    await cleanup();
  });

  it('shows queues, exchanges and connections, and closes a connection', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    await mkdir(SHOTS, { recursive: true });
    node = await startBroker({ args: ['--amqp-port', '0', '--admin-token', TOKEN] });
    const base = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const { host, port } = amqpAddress(node);
    connection = await amqp.connect(`amqp://guest:guest@${host}:${port}`);
    // amqplib treats 320 as a close that is not fatal: 'close' with the error, no 'error'.
    const closed = new Promise<{ message: string } | undefined>((resolve) => connection?.once('close', resolve));
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange('dash.x', 'fanout', { durable: false });
    await channel.assertQueue('dash.q', { durable: false, arguments: { 'x-max-length': 100 } });
    await channel.bindQueue('dash.q', 'dash.x', '');
    channel.publish('dash.x', '', Buffer.from('one'));
    channel.publish('dash.x', '', Buffer.from('two'));
    await channel.waitForConfirms();
    const consumer = await connection.createChannel();
    await consumer.prefetch(1);
    const first = new Promise<void>((resolve) => void consumer.consume('dash.q', (message) => message !== null && resolve()));
    await first;

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#view[data-loaded="overview"]');

    await page.click('#nav a[data-page=amqp]');
    await page.waitForSelector('#view[data-loaded="amqp"]');
    // Cells run together in textContent: name, flags, arguments, ready, unacked, consumers, rates.
    await page.waitForFunction(`/^dash\\.q\\{"x-max-length":100\\}111/.test(document.querySelector('tr[data-queue="dash.q"]')?.textContent ?? '')`);
    const row = (await page.textContent('tr[data-queue="dash.q"]')) ?? '';
    assert.match(row, /^dash\.q\{"x-max-length":100\}111[\d.]+[\d.]+[\d.]+$/, 'publish, deliver and ack rates');
    assert.match((await page.textContent('tr[data-exchange="dash.x"]')) ?? '', /^dash\.xfanout1$/);
    assert.ok((await page.locator('tr[data-exchange="amq.topic"]').count()) === 1, 'the predeclared exchanges are listed');
    assert.equal(await page.textContent('#amqp-connections .value'), '1');
    assert.equal(await page.textContent('#amqp-channels .value'), '2');
    assert.equal(await page.textContent('#amqp-ready .value'), '1');
    assert.equal(await page.textContent('#amqp-unacked .value'), '1');
    assert.equal(await page.getAttribute('#amqp-alarm', 'data-blocked'), 'false');
    await page.waitForSelector('#amqp-connections-list tr[data-connection]');
    assert.match((await page.textContent('#amqp-connections-list tr[data-connection]')) ?? '', /127\.0\.0\.1:\d+guest2/);
    await page.screenshot({ path: join(SHOTS, '1-amqp.png'), fullPage: true });

    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#amqp-connections-list tr[data-connection] button.close-connection');
    assert.match((await closed)?.message ?? '', /320 \(CONNECTION-FORCED\)/);
    await page.waitForSelector('#amqp-connections-list tr[data-connection]', { state: 'detached' });
    // The unacknowledged message went back: two ready, none unacked.
    await page.waitForFunction(`/^dash\\.q\\{"x-max-length":100\\}200/.test(document.querySelector('tr[data-queue="dash.q"]')?.textContent ?? '')`);
    await page.screenshot({ path: join(SHOTS, '2-amqp-after-close.png'), fullPage: true });
    assert.equal(await page.textContent('#status'), '', 'no error line');
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });
});
