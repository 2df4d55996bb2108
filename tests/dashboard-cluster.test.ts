// The dashboard's Cluster page (console/) in headless Chromium against the admin API of a live
// 3-voter placement group.
//
// Goal: what docs/operations.md promises of the Cluster page holds in a real browser: on a
// node that runs a placement voter it shows the leader, the term, the leader's commit index,
// this node's role, and one row per member with its role, indexes and lag; a member that goes
// down is shown unreachable at the next poll. (A node without placement shows a line saying so:
// tests/dashboard.test.ts, against a `shardline start`.)
// Method: three in-process PlacementServers on loopback gRPC with a real AdminServer each
// (tests/support/placement-admin-group.ts), playwright-core driving /usr/bin/chromium (missing Chromium
// fails the test). A screenshot goes to .test-output/dashboard/ for a human to look at.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startAdminCluster, type AdminTestCluster, type AdminTestNode } from './support/placement-admin-group.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-cluster-token';
const SHOTS = join(fileURLToPath(new URL('..', import.meta.url)), '.test-output', 'dashboard');
const STEP_TIMEOUT_MS = 10_000;

describe('dashboard Cluster page in headless Chromium', { timeout: 60_000 }, () => {
  let group: AdminTestCluster;
  let browser: Browser | undefined;

  before(async () => {
    group = await startAdminCluster(TOKEN);
  });

  after(async () => {
    await browser?.close();
    await group.stop();
  });

  it('shows the leader, term, commit index and each member\'s lag; a stopped member turns unreachable', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    await mkdir(SHOTS, { recursive: true });
    const leader = group.leader();
    const [self, other] = group.followers() as [AdminTestNode, AdminTestNode];

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    await page.goto(`${self.http.url}/`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#view[data-loaded="overview"]');
    await page.click('#nav a[data-page=cluster]');
    await page.waitForSelector('#view[data-loaded="cluster"]');

    const status = self.admin.status();
    assert.equal(await page.textContent('#cl-leader .value'), String(leader.id));
    assert.equal(Number(await page.textContent('#cl-term .value')), status.term);
    assert.ok(Number(await page.textContent('#cl-commit .value')) >= 1);
    assert.equal(await page.textContent('#cl-self .value'), `${self.id} (follower)`);
    assert.equal(await page.locator('#cluster-members tr[data-member]').count(), 3);
    assert.equal(await page.getAttribute(`tr[data-member="${leader.id}"]`, 'data-role'), 'leader');
    // Cells run together in textContent: id, address, voter, role, term, commit, applied, lag, state.
    assert.match((await page.textContent(`tr[data-member="${self.id}"]`)) ?? '', new RegExp(`^${self.id} \\(this node\\)127\\.0\\.0\\.1:\\d+yesfollower\\d+\\d+\\d+\\d+ok$`));
    await page.screenshot({ path: join(SHOTS, '9-cluster.png'), fullPage: true });

    await group.cluster.servers[other.id - 1]?.stop(100);
    await page.waitForSelector(`tr[data-member="${other.id}"][data-reachable="false"]`);
    assert.match((await page.textContent(`tr[data-member="${other.id}"]`)) ?? '', /unreachable: /);
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });
});
