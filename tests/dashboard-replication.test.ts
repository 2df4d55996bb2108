// The dashboard's Replication page (console/replication.js) in headless Chromium against a
// cluster from `shardline cluster up`.
//
// Goal: what docs/operations.md promises of the Replication page holds in a real browser, on a
// broker, a journal node and a placement voter: each replicated shard with its three replicas,
// the leader and epoch placement records, each replica's role, end offset, durable offset, HW
// and lag; a follower that is down is shown not answering and behind the leader, with a
// progress bar, while publishes go on; once it is back and has caught up the page shows lag 0 and no bar, without a
// reload; `ctl replica sets` prints it behind with a bar too. A single node says it is not in a
// placement group.
// Method: real processes on loopback (3 voters, 3 journal nodes, 2 brokers), mqtt.js QoS 1
// publishes at broker-1 to topics of `mqtt.0`, placement read with a PlacementClient for the
// expected leader and epoch, the follower killed with SIGKILL and restarted on its port and
// data directory; playwright-core driving /usr/bin/chromium (missing Chromium fails the test).
// Screenshots go to .test-output/dashboard/ for a human to look at. Every wait has a deadline.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { replicaSetView } from '../admin/index.js';
import type { journalWire } from '../journal/index.js';
import { PlacementClient } from '../placement/service/index.js';
import type { ShardRecord } from '../placement/metadata/index.js';
import { MqttShardMap } from '../shard-model/index.js';
import { REPO_ROOT, runCli, scratchDirectory, startBroker, stopBroker, waitForLogField, type BrokerProcess, type CliProcess } from './support/broker-process.js';
import { killedAfterTests } from './support/cluster-up.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, '.test-output', 'dashboard');
const UP_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 60_000;
const SHARD = 'mqtt.0';
const FIRST_PUBLISHES = 10;
const PUBLISHES_WHILE_DOWN = 40;

interface PrintedNode {
  name: string;
  role: string;
  pid: number;
  mqtt: string;
  admin: string;
  placement: string;
  journalGrpc: string;
}

const pids = killedAfterTests();

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
}

function parseTable(lines: readonly string[]): PrintedNode[] {
  const header = lines.findIndex((line) => line.startsWith('NODE '));
  assert.ok(header >= 0, lines.join('\n'));
  const rows: PrintedNode[] = [];
  for (const line of lines.slice(header + 1)) {
    if (line.trim() === '') break;
    const [name, role, pid, mqttAddress, admin, placement, journalGrpc] = line.trim().split(/\s+/);
    rows.push({ name: name ?? '', role: role ?? '', pid: Number(pid), mqtt: mqttAddress ?? '', admin: admin ?? '', placement: placement ?? '', journalGrpc: journalGrpc ?? '' });
  }
  return rows;
}

/** A topic that hashes to data shard `index` of `count`. */
function topicOnShard(count: number, index: number): string {
  const map = new MqttShardMap(count);
  for (let i = 0; ; i++) if (map.shardOf(`dash/${i}`) === index) return `dash/${i}`;
}

/** The cells of a table row, trimmed. */
async function cells(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(`${selector} td`, (tds) => tds.map((td) => (td.textContent ?? '').trim()));
}

describe('dashboard Replication page in headless Chromium', () => {
  let browser: Browser | undefined;
  after(async () => {
    await browser?.close();
  });

  async function openPage(base: string, token: string, prepare?: (page: Page) => Promise<void>): Promise<Page> {
    browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await prepare?.(page);
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    await page.goto(`http://${base}/`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#view[data-loaded="overview"]');
    await page.click('#nav a[data-page=replication]');
    await page.waitForSelector('#view[data-loaded="replication"]');
    return page;
  }

  /** The page shows `record`: three replica rows, the recorded leader's row as leader in its epoch, the others following it. */
  async function assertSet(page: Page, record: ShardRecord): Promise<void> {
    const head = (await page.textContent(`tr[data-set="${SHARD}"]`)) ?? '';
    assert.match(head, new RegExp(`^${SHARD.replace('.', '\\.')} · epoch ${record.leaderEpoch} · leader ${record.leader} `));
    const nodes = await page.$$eval(`tr[data-shard="${SHARD}"]`, (rows) => rows.map((row) => row.getAttribute('data-node')));
    assert.deepEqual(nodes, [...record.replicas], 'one row per replica, in the recorded order');
    for (const node of record.replicas) {
      // Columns: replica, role, epoch, end offset, durable offset, HW, lag, catch-up, state.
      const row = await cells(page, `tr[data-shard="${SHARD}"][data-node="${node}"]`);
      assert.equal(row[1], node === record.leader ? 'leader' : 'follower', `${node}: ${row.join(' | ')}`);
      assert.equal(row[2], String(record.leaderEpoch));
      assert.equal(row[0]?.includes('(leader)'), node === record.leader);
      assert.equal(row[8], 'ok');
    }
  }

  it('shows each shard\'s replicas, leader and epoch; a stopped follower is behind with a progress bar, then caught up', { timeout: 600_000 }, async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    await mkdir(SHOTS, { recursive: true });
    const dir = await scratchDirectory('shardline-dashboard-replication-');
    const cli: CliProcess = runCli(['cluster', 'up', '--dir', dir, '--grace-seconds', '10']);
    const subscribers: mqtt.MqttClient[] = [];
    let placement: PlacementClient | undefined;
    try {
      await waitFor('the cluster to be up', () => (cli.lines.includes('cluster up; Ctrl-C stops every node') ? true : undefined), UP_TIMEOUT_MS);
      const nodes = parseTable(cli.lines);
      for (const node of nodes) pids.add(node.pid);
      const voters = nodes.filter((node) => node.role === 'placement').map((node) => node.placement);
      const journals = nodes.filter((node) => node.role === 'journal');
      const broker = nodes.find((node) => node.role === 'broker') as PrintedNode;
      const { clusterToken, adminToken } = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string; adminToken: string };
      placement = new PlacementClient({ addresses: voters, clusterId: 'shardline', clusterToken });
      const client = placement;
      const record = async (): Promise<ShardRecord> => {
        const { shards = [] } = await client.read(['shards']);
        const found = shards.find((shard) => shard.name === SHARD && shard.leader !== null);
        assert.ok(found !== undefined, `${SHARD} with a leader in placement`);
        return found;
      };
      const { shards = [] } = await client.read(['shards']);
      const topic = topicOnShard(shards.filter((shard) => shard.name.startsWith('mqtt.')).length, 0);
      const publisher = await mqtt.connectAsync(`mqtt://${broker.mqtt}`, { clientId: 'dash-repl-pub', reconnectPeriod: 0, connectTimeout: 30_000 });
      subscribers.push(publisher);
      for (let i = 0; i < FIRST_PUBLISHES; i++) await publisher.publishAsync(topic, `first-${i}`, { qos: 1 });

      // A broker's page shows the replica set as placement records it.
      const before = await record();
      const page = await openPage(broker.admin, adminToken);
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.waitForSelector(`tr[data-shard="${SHARD}"]`);
      assert.equal(await page.locator(`tr[data-shard="${SHARD}"]`).count(), 3, 'three replicas shown');
      await assertSet(page, before);
      // Every replica caught up and holding the publishes: lag 0, end offset past them.
      for (const node of before.replicas) await page.waitForSelector(`tr[data-shard="${SHARD}"][data-node="${node}"][data-lag="0"]`);
      const leaderRow = await cells(page, `tr[data-shard="${SHARD}"][data-node="${before.leader}"]`);
      assert.ok(Number(leaderRow[3]) >= FIRST_PUBLISHES, `the leader's end offset holds the publishes: ${leaderRow.join(' | ')}`);
      assert.equal(leaderRow[4], leaderRow[3], "the leader's durable offset is its end offset");
      assert.match(await page.textContent('#replication-origin') ?? '', /as placement records them/);
      await page.screenshot({ path: join(SHOTS, '10-replication.png'), fullPage: true });

      // So do a journal node's and a placement voter's (which reads its voter at each poll).
      for (const other of [journals[0] as PrintedNode, nodes.find((node) => node.role === 'placement') as PrintedNode]) {
        const otherPage = await openPage(other.admin, adminToken);
        await otherPage.waitForSelector(`tr[data-shard="${SHARD}"]`);
        await assertSet(otherPage, before);
        await otherPage.close();
      }

      // A follower goes down; publishes go on with the two others; the leader reports it behind.
      const followerId = before.replicas.find((id) => id !== before.leader) as string;
      const follower = journals.find((node) => String(10 + Number(node.name.split('-')[1])) === followerId) as PrintedNode;
      process.kill(follower.pid, 'SIGKILL');
      for (let i = 0; i < PUBLISHES_WHILE_DOWN; i++) await publisher.publishAsync(topic, `while-down-${i}`, { qos: 1 });
      const down = `tr[data-shard="${SHARD}"][data-node="${followerId}"]`;
      // The poll that first shows it down may predate the last publishes: wait for one after them.
      await page.waitForFunction(`((row) => row?.getAttribute('data-reachable') === 'false' && Number(row.getAttribute('data-lag')) >= ${PUBLISHES_WHILE_DOWN})(document.querySelector(${JSON.stringify(down)}))`);
      await page.waitForSelector(`${down} progress`);
      const lag = Number(await page.getAttribute(down, 'data-lag'));
      assert.ok(lag >= PUBLISHES_WHILE_DOWN, `the stopped follower is at least ${PUBLISHES_WHILE_DOWN} offsets behind: ${lag}`);
      const bar = { value: Number(await page.getAttribute(`${down} progress`, 'value')), max: Number(await page.getAttribute(`${down} progress`, 'max')) };
      assert.ok(bar.max > 0 && bar.value < bar.max, `the bar shows it short of the leader's log end: ${JSON.stringify(bar)}`);
      assert.match((await cells(page, down))[8] ?? '', /^not answering:./);
      // The cards count what the rows show (the stopped node holds a replica of every shard).
      assert.ok(Number(await page.textContent('#rp-behind .value')) >= 1);
      assert.equal(Number(await page.textContent('#rp-silent .value')), await page.locator('tr[data-reachable="false"]').count());
      await page.screenshot({ path: join(SHOTS, '10-replication-behind.png'), fullPage: true });
      // `ctl replica sets` prints the same from the broker's admin API, with a text bar.
      const ctl = runCli(['ctl', 'replica', 'sets', '--server', broker.admin, '--prefix', SHARD], { SHARDLINE_ADMIN_TOKEN: adminToken });
      const exit = await ctl.exited;
      assert.equal(exit.code, 0, exit.stderr);
      const line = ctl.lines.find((text) => new RegExp(`^\\s+${followerId}\\s`).test(text)) ?? '';
      const printed = new RegExp('^\\s+\\d+\\s+-\\s+-\\s+\\d+\\s+-\\s+(\\d+)\\s+\\[[#.]{20}\\] \\d+/\\d+ \\(\\d+%\\)\\s+not answering: ').exec(line);
      assert.ok(printed !== null && Number(printed[1]) >= PUBLISHES_WHILE_DOWN, `ctl replica sets shows the follower behind with a bar:\n${ctl.lines.join('\n')}`);

      // Back on its port and data directory: it catches up, and the page follows without a reload.
      const port = follower.journalGrpc.slice(follower.journalGrpc.lastIndexOf(':') + 1);
      const again = runCli(['start', '--host', '127.0.0.1', '--roles', 'journal', '--node-id', followerId, '--placement', voters.join(','), '--grpc-port', port, '--admin-port', '0', '--data-dir', join(dir, follower.name)], { SHARDLINE_CLUSTER_TOKEN: clusterToken });
      await waitForLogField(again, 'journalGrpc');
      if (again.child.pid !== undefined) pids.add(again.child.pid);
      await page.waitForSelector(`${down}[data-reachable="true"][data-lag="0"]`);
      assert.equal(await page.locator(`${down} progress`).count(), 0, 'no bar once caught up');
      assert.equal((await cells(page, down))[7], 'caught up');
      assert.deepEqual(pageErrors, [], 'no script errors in the page');
      assert.equal(await page.textContent('#status'), '', 'no error line');
    } finally {
      for (const subscriber of subscribers) await subscriber.endAsync().catch(() => undefined);
      placement?.close();
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });

  it('shows the learners of a replica-set change after the replicas, with their progress bars', { timeout: 120_000 }, async () => {
    // A learner copies for seconds at most in a test cluster, too briefly to catch it there: the
    // page gets an answer the route's own view (replicaSetView) made of scripted replica statuses.
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing`);
    await mkdir(SHOTS, { recursive: true });
    const status = (fields: Partial<journalWire.ReplicaStatusResponse> & { node: string }): journalWire.ReplicaStatusResponse => ({ role: 'follower', epoch: 5, leader: '11', replicas: ['11', '12', '13'], highWatermark: 100, logEnd: 110, lastEpoch: 5, voter: true, logStart: 10, followers: [], ...fields });
    const item = replicaSetView({ name: SHARD, replicas: ['11', '12', '13'], leader: '11', epoch: 5, learners: ['14', '15'] }, [
      { node: '11', address: '127.0.0.1:1', status: status({ node: '11', role: 'leader', followers: [
        { node: '12', fetched: 110, durable: 110, recordsBehind: 0, bytesBehind: 0 },
        { node: '13', fetched: 110, durable: 110, recordsBehind: 0, bytesBehind: 0 },
        { node: '14', fetched: 60, durable: 60, recordsBehind: 50, bytesBehind: 50_000, learner: true },
        { node: '15', fetched: -1, durable: -1, recordsBehind: 111, bytesBehind: 100_000, learner: true },
      ] }) },
      { node: '12', address: '127.0.0.1:2', status: status({ node: '12' }) },
      { node: '13', address: '127.0.0.1:3', status: status({ node: '13' }) },
      { node: '14', address: '127.0.0.1:4', status: status({ node: '14', voter: false, logEnd: 60, highWatermark: 60 }) },
      { node: '15', address: '127.0.0.1:5', error: 'SL_JOURNAL_SHARD_NOT_FOUND: not created yet' },
    ]);
    const token = 'dashboard-replication-token';
    const node: BrokerProcess = await startBroker({ args: ['--admin-token', token] });
    try {
      const admin = String((await waitForLogField(node.broker, 'admin')).admin);
      const page = await openPage(admin, token, async (opened) => {
        await opened.route('**/api/replication/sets**', (route) => route.fulfill({ json: { origin: 'placement', total: 1, items: [item] } }));
      });
      await page.waitForSelector(`tr[data-shard="${SHARD}"][data-node="15"]`);
      await page.screenshot({ path: join(SHOTS, 'replication-learners.png'), fullPage: true });
      const rows = await page.$$eval(`tr[data-shard="${SHARD}"]`, (trs) => trs.map((tr) => [tr.getAttribute('data-node'), tr.getAttribute('data-learner')]));
      assert.deepEqual(rows, [['11', 'false'], ['12', 'false'], ['13', 'false'], ['14', 'true'], ['15', 'true']]);
      // Columns: replica, role, epoch, end offset, durable offset, HW, lag, catch-up, state.
      const copying = await cells(page, `tr[data-shard="${SHARD}"][data-node="14"]`);
      assert.match(copying[0] ?? '', /^14 \(learner\)/);
      assert.deepEqual([copying[1], copying[3], copying[4], copying[8]], ['learner, copying', '60', '60', 'ok']);
      assert.match(copying[6] ?? '', /^50 \(about /);
      assert.equal(copying[7], '50 of 100 (50%)');
      const bar = (learner: string): Promise<[string | null, string | null]> => page.$eval(`tr[data-shard="${SHARD}"][data-node="${learner}"] progress`, (progress) => [progress.getAttribute('value'), progress.getAttribute('max')]);
      assert.deepEqual(await bar('14'), ['50', '100']);
      const notYet = await cells(page, `tr[data-shard="${SHARD}"][data-node="15"]`);
      assert.deepEqual([notYet[1], notYet[7]], ['learner, copying', '0 of 100 (0%)']);
      assert.match(notYet[8] ?? '', /not answering:.*SL_JOURNAL_SHARD_NOT_FOUND/);
      assert.deepEqual(await bar('15'), ['0', '100']);
      assert.match((await page.textContent(`tr[data-set="${SHARD}"]`)) ?? '', /moving: learners 14, 15 copy the shard/);
      assert.equal((await page.textContent('#rp-learners .value'))?.trim(), '2');
      assert.equal((await page.textContent('#rp-replicas .value'))?.trim(), '3', 'learners are not counted as replicas');
    } finally {
      await stopBroker(node);
    }
  });

  it('says so on a single node, which is in no placement group', { timeout: 120_000 }, async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing`);
    const token = 'dashboard-replication-token';
    const node: BrokerProcess = await startBroker({ args: ['--admin-token', token] });
    try {
      const admin = String((await waitForLogField(node.broker, 'admin')).admin);
      const page = await openPage(admin, token);
      assert.match((await page.textContent('#replication-none')) ?? '', /not in a placement group/);
      assert.equal(await page.textContent('#status'), '', 'no error line');
    } finally {
      await stopBroker(node);
    }
  });
});
