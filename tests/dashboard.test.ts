// The web dashboard (console/) in headless Chromium against a running `shardline start`.
//
// Goal: what docs/operations.md promises of the dashboard holds end to end in a real browser:
// the page is served by the admin server, asks for the token, and with it shows a connected
// mqtt.js client on the overview and the clients page; kicking it from the clients page
// disconnects it and the counts drop; the shards page lists the MQTT data shards and the shard
// browser shows the record a client published, from an offset and from a time range; the
// overview shows the data directory's space, the watermark and bytes per shard, and the shards
// page each shard's retention; the
// broker's own $SYS statistics are shown apart (their card) and counted neither in "Messages in"
// nor on the Topics page; the Cluster page says the node runs no placement voter.
// Method: playwright-core driving /usr/bin/chromium (installed by .ci/run; missing Chromium
// fails the test rather than skipping it), a `shardline start` from tests/support/broker-process.ts,
// an mqtt.js client. One screenshot per page goes to .test-output/dashboard/ for a human to look at.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { brokerForSuite, REPO_ROOT, usingMosquitto, waitForLogField } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
const SHOTS = join(REPO_ROOT, '.test-output', 'dashboard');
const STEP_TIMEOUT_MS = 10_000;

describe('web dashboard in headless Chromium', { skip: usingMosquitto() ? 'Shardline-only (admin dashboard)' : false, timeout: 90_000 }, () => {
  // $SYS every second, so its traffic is there to be kept apart from the one client publish.
  const broker = brokerForSuite({ args: ['--admin-token', TOKEN, '--sys-interval', '1'] }, closeAllClients);
  let browser: Browser | undefined;

  after(async () => {
    await browser?.close();
  });

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  it('loads, shows and kicks a client, browses a shard', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    await mkdir(SHOTS, { recursive: true });
    const base = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;

    const clientId = uniqueClientId('dash');
    const topic = uniqueTopic('dash');
    const payload = `hello dashboard ${Date.now()}`;
    const client = await connectClient(broker.url, { version: 5, clientId });
    await client.client.publishAsync(topic, payload, { qos: 1 });
    const publishedAt = Date.now();

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const offline: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(base)) offline.push(request.url());
    });

    // Token prompt, then the overview.
    await page.goto(`${base}/`);
    await page.waitForSelector('#login:not([hidden])');
    await shot(page, '0-login');
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#view[data-loaded="overview"]');
    const connections = async (): Promise<number> => Number(await page.textContent('#ov-connections .value'));
    await page.waitForFunction("Number(document.querySelector('#ov-connections .value')?.textContent) >= 1");
    const before = await connections();
    assert.ok(before >= 1, `overview connections ${before}`);
    // The data directory's free and used space with the watermark, and bytes per shard.
    await page.waitForSelector('#ov-disks tr[data-disk][data-low="false"]');
    // Cells run together in textContent: free, used, size, journal, watermark, state.
    assert.match((await page.textContent('#ov-disks tr[data-disk]')) ?? '', /^\/\S+?(\d+(\.\d)? (B|KiB|MiB|GiB|TiB)){5}ok$/);
    await page.waitForSelector('#ov-shard-bytes tr[data-shard-bytes="mqtt.0"]');
    assert.match((await page.textContent('#ov-shard-bytes tr[data-shard-bytes="$sessions"]')) ?? '', /\$sessions\s*\d+(\.\d)? (B|KiB|MiB)/);
    // Two polls, so both charts have a line.
    await page.waitForTimeout(2_300);
    await shot(page, '1-overview');

    // Clients: listed, detail, kick.
    await page.click('#nav a[data-page=clients]');
    await page.waitForSelector(`tr[data-client="${clientId}"]`);
    const listed = Number(/^(\d+)/.exec((await page.textContent('#client-total')) ?? '')?.[1]);
    assert.equal(listed, before, 'clients page total matches the overview');
    await page.fill('#client-search', clientId.slice(0, 6));
    await page.waitForSelector(`tr[data-client="${clientId}"]`);
    await page.click(`tr[data-client="${clientId}"] a.client-link`);
    await page.waitForSelector('#client-detail .detail');
    assert.ok((await page.textContent('#client-detail'))?.includes(clientId));
    await shot(page, '2-clients');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click(`tr[data-client="${clientId}"] button.kick`);
    await page.waitForSelector(`tr[data-client="${clientId}"]`, { state: 'detached' });
    await client.waitForClose();
    await page.fill('#client-search', '');
    await page.waitForFunction(`(/^(\\d+)/.exec(document.querySelector('#client-total')?.textContent ?? '') ?? [])[1] === '${before - 1}'`);
    await shot(page, '3-clients-after-kick');

    await page.click('#nav a[data-page=overview]');
    await page.waitForFunction(`document.querySelector('#ov-connections .value')?.textContent === '${before - 1}'`);

    // $SYS statistics are shown apart: once some have been published, the client counters
    // still hold exactly the one client publish, and the Topics page lists only client topics.
    await page.waitForFunction("Number(/^(\\d+)/.exec(document.querySelector('#ov-sys .value')?.textContent ?? '')?.[1] ?? 0) > 0");
    assert.equal(await page.textContent('#ov-in .value'), '1', 'messages in: the client publish only');
    await page.click('#nav a[data-page=topics]');
    await page.waitForSelector('#view[data-loaded="topics"]');
    await page.waitForSelector(`#topic-list td:text-is("${topic}")`);
    const topicList = (await page.textContent('#topic-list')) ?? '';
    assert.ok(!topicList.includes('$SYS'), `no $SYS topic among the client topics: ${topicList}`);
    assert.match((await page.textContent('#topic-sys-note')) ?? '', /\$SYS/);
    await shot(page, '4-topics');
    await page.click('#nav a[data-page=sessions]');
    await page.waitForSelector('#view[data-loaded="sessions"]');
    await shot(page, '5-sessions');

    // A single node runs the embedded one-voter placement group: the Cluster page shows it,
    // this node its only member and (once elected) its leader.
    await page.click('#nav a[data-page=cluster]');
    await page.waitForSelector('#view[data-loaded="cluster"]');
    await page.waitForSelector('#cluster-members tr[data-member="1"][data-role="leader"]', { timeout: 15_000 });
    assert.equal(await page.locator('#cluster-members tr[data-member]').count(), 1);
    assert.match((await page.textContent('#cl-self .value')) ?? '', /^1 \(leader\)$/);
    assert.equal(await page.textContent('#status'), '', 'no error line');

    // Shards: the MQTT data shards, one of which holds the publish.
    await page.click('#nav a[data-page=shards]');
    await page.waitForSelector('tr[data-shard^="mqtt."]');
    await shot(page, '6-shards');
    // The data shards' retention (the default, 7 days) and the system shards' own rule.
    assert.match((await page.textContent('tr[data-shard="mqtt.0"]')) ?? '', /7 d/);
    assert.match((await page.textContent('tr[data-shard="$sessions"]')) ?? '', /none \(compacted: latest per key\)/);
    const shards = (await (await fetch(`${base}/api/shards`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: Array<{ name: string; nextOffset: number }> };
    const written = shards.items.filter((shard) => /^mqtt\.\d+$/.test(shard.name) && shard.nextOffset > 0);
    assert.ok(written.length >= 1, `an mqtt.N shard has records: ${JSON.stringify(shards.items)}`);

    // Shard browser: from the start, then a time range around the publish.
    let found: string | undefined;
    for (const shard of written) {
      await page.click(`tr[data-shard="${shard.name}"] a`);
      await page.waitForSelector('#view[data-loaded="browser"]');
      await page.waitForSelector('#records tr[data-offset]');
      if ((await page.textContent('#records'))?.includes(payload) === true) {
        found = shard.name;
        break;
      }
      await page.click('#nav a[data-page=shards]');
      await page.waitForSelector('tr[data-shard^="mqtt."]');
    }
    assert.ok(found !== undefined, `the publish is in one of ${written.map((shard) => shard.name).join(', ')}`);
    await shot(page, '7-shard-browser');
    await page.selectOption('#browse-mode', 'time');
    // datetime-local takes local time; Chromium runs in this process's time zone.
    const local = (ms: number): string => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await page.fill('#browse-from-time', local(publishedAt - 60_000));
    await page.fill('#browse-to-time', local(publishedAt + 60_000));
    await page.evaluate("document.querySelector('#records').replaceChildren()");
    await page.click('#browse-load');
    await page.waitForSelector('#records-count');
    assert.ok((await page.textContent('#records'))?.includes(payload), 'the time range holds the publish');
    await shot(page, '8-shard-browser-time-range');

    assert.deepEqual(pageErrors, [], 'no script errors in the page');
    assert.deepEqual(offline, [], 'every request goes to the admin server (no CDN)');
  });
});
