// `shardline ctl` as an operator runs it: the real CLI in a child process against the real admin
// API (createAdminApp on 127.0.0.1, port 0) over a real Broker on a MemoryShardStore. Clients are
// connected in-process through the broker with recording sinks, so a kick is seen as the close
// the front end would get. Asserts exit codes, the --json output parsed, the words an operator
// relies on in tables and errors (a refused token, an unreachable URL, the API's 404 message),
// and the broker state each action leaves behind.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createAdminApp, mqttAdminRoutes } from '../admin/index.js';
import { Broker, SendResult, type CloseReason, type ConnectionInfo, type Delivery, type DeliverySink, type Session } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { normalizeServerUrl } from '../cli/testing.js';
import { formatDuration, formatPage } from '../cli/testing.js';
import { ctlCommands } from '../cli/commands/index.js';
import { runCtl } from './support/ctl-process.js';

const TOKEN = 'ctl-test-token';
const WAIT_MS = 5_000;


const ctl = runCtl;

class RecordingSink implements DeliverySink {
  readonly deliveries: Delivery[] = [];
  closedBy: CloseReason | undefined;
  readonly inFlightMaximum = 65_535;
  #nextTag = 1;
  session: Session | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly info: ConnectionInfo,
  ) {}

  send(delivery: Delivery): SendResult {
    this.deliveries.push(delivery);
    return SendResult.Sent;
  }

  assignTag(_delivery: Delivery, inUse: (tag: number) => boolean): number {
    while (inUse(this.#nextTag)) this.#nextTag += 1;
    return this.#nextTag++;
  }

  resumeHeld(): void {}

  close(reason: CloseReason): void {
    this.closedBy = reason;
    // What the MQTT front end does when the broker ends a connection.
    if (this.session !== undefined) void this.broker.disconnect(this.session, this, { publishWill: false });
  }

  describe(): ConnectionInfo {
    return this.info;
  }
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > WAIT_MS) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('shardline ctl against the admin API', () => {
  let broker: Broker;
  let app: FastifyInstance;
  let url: string;
  let env: Record<string, string>;
  const sinks = new Map<string, RecordingSink>();

  async function connect(clientId: string, port: number): Promise<RecordingSink> {
    const sink = new RecordingSink(broker, { protocol: 'mqtt', protocolVersion: 5, remoteAddress: `127.0.0.1:${port}`, connectedAt: Date.now(), keepAliveSeconds: 30 });
    const { session } = await broker.connect({ clientId, cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
    session.attach(sink);
    sink.session = session;
    sinks.set(clientId, sink);
    return sink;
  }

  before(async () => {
    const logger = pino({ level: 'silent' });
    const store = new MemoryShardStore();
    broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024 });
    app = await createAdminApp({
      broker,
      store,
      node: { id: 'node-ctl', roles: ['broker'], version: '0.1.0-test', addresses: { mqtt: '127.0.0.1:1883' } },
      token: TOKEN,
      logger,
      settings: () => ({ 'mqtt-port': 1883, 'admin-port': 0, 'log-level': 'info' }),
      protocols: [mqttAdminRoutes(broker)],
      // What the node's disk watch reports (a real one is driven in tests/disk-full.test.ts).
      disks: () => [{ path: '/var/lib/shardline', totalBytes: 8 * 1024 ** 3, freeBytes: 3 * 1024 ** 3, usedBytes: 5 * 1024 ** 3, journalBytes: 1024 ** 3, thresholdBytes: Math.floor(8 * 1024 ** 3 * 0.05), low: false, checkedAt: Date.now() }],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    url = `http://127.0.0.1:${port}`;
    env = { SHARDLINE_ADMIN_URL: url, SHARDLINE_ADMIN_TOKEN: TOKEN };
    const alpha = await connect('ctl-alpha', 50001);
    await connect('ctl-beta', 50002);
    const [isNew] = await broker.subscribe(alpha.session!, [{ filter: 'ctl/pub/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
    assert.equal(isNew, true);
  });

  after(async () => {
    await app?.close();
    await broker?.close();
  });

  it('lists connected clients as a table', async () => {
    const run = await ctl(['mqtt', 'client', 'list'], env);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^client id\s+proto\s+address\s+connected/);
    assert.equal(lines.length, 3, run.stdout);
    assert.match(lines[1]!, /^ctl-alpha\s+mqtt v5\s+127\.0\.0\.1:50001\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+30\s+1\s/);
    assert.match(lines[2]!, /^ctl-beta\s/);
  });

  it('prints the API JSON with --json, with --server/--token flags instead of the environment', async () => {
    const run = await ctl(['mqtt', 'client', 'list', '--json', '--prefix', 'ctl-a', '--server', url, '--token', TOKEN]);
    assert.equal(run.code, 0, run.stderr);
    const page = JSON.parse(run.stdout) as { total: number; offset: number; limit: number; items: Array<{ clientId: string; remoteAddress: string }> };
    assert.equal(page.total, 1);
    assert.deepEqual(page.items.map((item) => item.clientId), ['ctl-alpha']);
    assert.equal(page.items[0]!.remoteAddress, '127.0.0.1:50001');
  });

  it('shows one client with its subscriptions', async () => {
    const run = await ctl(['mqtt', 'client', 'info', 'ctl-alpha'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^client id\s+ctl-alpha$/m);
    assert.match(run.stdout, /^ctl\/pub\/#\s+1\s+-$/m);
  });

  it('gives the overview and the node list', async () => {
    const overview = await ctl(['overview'], env);
    // formatDuration's form (`42s`, `1m 15s`, `1d 2h 3s`): a loaded machine can take minutes to get here.
    assert.match(overview.stdout, /^uptime\s+(?:\d+d )?(?:\d+h )?(?:\d+m )?\d+s$/m);
    assert.equal(overview.code, 0, overview.stderr);
    assert.match(overview.stdout, /^node\s+node-ctl$/m);
    assert.match(overview.stdout, /^connections\s+2$/m);
    // The data directory's space with the watermark (defaults: the smaller of 5 % and 2 GiB), and bytes per shard.
    assert.match(overview.stdout, /^disk \/var\/lib\/shardline\s+3\.0 GiB free of 8\.0 GiB, 5\.0 GiB used \(journal 1\.0 GiB\); watermark 409\.6 MiB$/m);
    assert.match(overview.stdout, /^shard bytes\s+.*\$sessions [\d.]+ \S+.*mqtt\.0 [\d.]+ \S+/m);
    assert.match(overview.stdout, /^\$SYS\s+in \d+, out \d+, retained \d+ \(broker statistics, not counted above\)$/m, 'the $SYS line apart');
    const nodes = await ctl(['node', 'list', '--json'], env);
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.deepEqual((JSON.parse(nodes.stdout) as { items: Array<{ id: string; self: boolean }> }).items.map((node) => [node.id, node.self]), [['node-ctl', true]]);
  });

  it('lists sessions, subscriptions and shards', async () => {
    const sessions = await ctl(['mqtt', 'session', 'list'], env);
    assert.equal(sessions.code, 0, sessions.stderr);
    assert.match(sessions.stdout, /^ctl-alpha\s+yes\s+no\s+0\s+1\s+-\s+-$/m);
    const subscriptions = await ctl(['mqtt', 'subscription', 'list', '--json'], env);
    assert.equal(subscriptions.code, 0, subscriptions.stderr);
    const page = JSON.parse(subscriptions.stdout) as { items: Array<{ clientId: string; filter: string }> };
    assert.deepEqual(page.items.map((item) => [item.clientId, item.filter]), [['ctl-alpha', 'ctl/pub/#']]);
    const shards = await ctl(['shard', 'list'], env);
    assert.equal(shards.code, 0, shards.stderr);
    assert.match(shards.stdout, /^name\s+start\s+next\s+bytes/);
    assert.match(shards.stdout, /^\$sessions\s+0\s+\d+\s/m);
    const missing = await ctl(['shard', 'info', 'no-such-shard'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /shard "no-such-shard" not found \[SL_ADMIN_NOT_FOUND\]/);
  });

  it('publishes a message that reaches a subscriber', async () => {
    const alpha = sinks.get('ctl-alpha')!;
    const run = await ctl(['mqtt', 'publish', 'ctl/pub/one', 'hello from ctl', '--qos', '1'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /published to ctl\/pub\/one \(matched/);
    await waitFor('the delivery', () => alpha.deliveries.some((delivery) => delivery.message.topic === 'ctl/pub/one'));
    const delivery = alpha.deliveries.find((candidate) => candidate.message.topic === 'ctl/pub/one')!;
    assert.equal(delivery.message.payload.toString(), 'hello from ctl');
    assert.equal(delivery.qos, 1);
  });

  it('lists and deletes retained messages', async () => {
    const published = await ctl(['mqtt', 'publish', 'ctl/retained/a', 'kept', '--retain'], env);
    assert.equal(published.code, 0, published.stderr);
    await broker.publish({ topic: 'ctl/retained/bin', payload: Buffer.from([0xff, 0xfe, 0x00]), qos: 0, retain: true, publisherId: 'p', timestamp: Date.now(), properties: undefined });

    const table = await ctl(['mqtt', 'retained', 'list', '--filter', 'ctl/retained/#'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ctl\/retained\/a\s+0\s+4\s+kept\s/m);
    assert.match(table.stdout, /^ctl\/retained\/bin\s+0\s+3\s+<3 bytes, not UTF-8>/m);

    const listed = await ctl(['mqtt', 'retained', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const page = JSON.parse(listed.stdout) as { items: Array<{ topic: string; payload: string | null }> };
    assert.deepEqual(page.items.map((item) => [item.topic, item.payload]).sort(), [['ctl/retained/a', 'kept'], ['ctl/retained/bin', null]]);

    const deleted = await ctl(['mqtt', 'retained', 'delete', 'ctl/retained/a'], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(broker.retained.get('ctl/retained/a'), undefined);
    assert.notEqual(broker.retained.get('ctl/retained/bin'), undefined);

    const again = await ctl(['mqtt', 'retained', 'delete', 'ctl/retained/a'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /retained message on "ctl\/retained\/a" not found \[SL_ADMIN_NOT_FOUND\]/);
  });

  it('reports a bad filter with the API message', async () => {
    const run = await ctl(['mqtt', 'retained', 'list', '--filter', 'a/#/b'], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /invalid filter.*\[SL_ADMIN_BAD_REQUEST\]/);
  });

  it('kicks a connected client, and answers the API 404 for one that is not connected', async () => {
    const beta = sinks.get('ctl-beta')!;
    const run = await ctl(['mqtt', 'client', 'kick', 'ctl-beta', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { kicked: 'ctl-beta' });
    assert.equal(beta.closedBy, 'administrative-action');
    await waitFor('the kicked client to be gone', () => !broker.clients().some((client) => client.clientId === 'ctl-beta'));

    const missing = await ctl(['mqtt', 'client', 'kick', 'ctl-beta'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /connected client "ctl-beta" not found \[SL_ADMIN_NOT_FOUND\]/);
    const info = await ctl(['mqtt', 'client', 'info', 'nobody'], env);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /connected client "nobody" not found/);
  });

  it('gets the settings, all or one', async () => {
    const all = await ctl(['config', 'get'], env);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^mqtt-port\s+1883$/m);
    const one = await ctl(['config', 'get', 'log-level'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'info\n');
    const parsed = await ctl(['config', 'get', '--json'], env);
    assert.deepEqual(JSON.parse(parsed.stdout), { settings: { 'mqtt-port': 1883, 'admin-port': 0, 'log-level': 'info' } });
    const unknown = await ctl(['config', 'get', 'no-such-key'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no setting "no-such-key"/);
  });

  it('says the token was refused, with exit 1', async () => {
    const wrong = await ctl(['overview'], { SHARDLINE_ADMIN_URL: url, SHARDLINE_ADMIN_TOKEN: 'not-the-token' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /the admin token was refused \(SHARDLINE_ADMIN_TOKEN \/ --token\)/);
    assert.equal(wrong.stdout, '');
    const none = await ctl(['overview', '--server', url]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /refused .*no token was given/);
  });

  it('names the URL it could not reach, with exit 1', async () => {
    const server = `http://127.0.0.1:${await unusedPort()}`;
    const run = await ctl(['overview', '--server', server, '--token', TOKEN]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`cannot reach the admin server at ${server.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
  });

  it('rejects bad flags and unknown commands with exit 2', async () => {
    const limit = await ctl(['mqtt', 'client', 'list', '--limit', '5000'], env);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit must be at most 1000/);
    const qos = await ctl(['mqtt', 'publish', 't', 'm', '--qos', '3'], env);
    assert.equal(qos.code, 2);
    const unknown = await ctl(['session', 'list'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /did you mean `shardline ctl mqtt session list`/);
  });

  it('has help for the group and for every command', async () => {
    const group = await ctl(['--help']);
    assert.equal(group.code, 0);
    for (const command of ctlCommands.filter((candidate) => candidate.path[0] === 'ctl' && candidate.path.length > 1)) {
      assert.ok(group.stdout.includes(`shardline ${command.path.join(' ')} `), `group help lists ${command.path.join(' ')}`);
      assert.match(command.usage, new RegExp(`^Usage: shardline ${command.path.join(' ')}\\b`, 'm'));
      // ctl replica elect|status talk to the journal nodes over gRPC (the interim election), not
      // to the admin API; ctl replica sets reads the admin API like the rest.
      const overJournals = command.path[1] === 'replica' && command.path[2] !== 'sets';
      assert.match(command.usage, overJournals ? /--journals ID@HOST:PORT/ : /--server URL/);
    }
    const kick = await ctl(['mqtt', 'client', 'kick', '--help']);
    assert.equal(kick.code, 0);
    assert.match(kick.stdout, /^Usage: shardline ctl mqtt client kick CLIENT_ID/);
  });
});

describe('ctl helpers', () => {
  it('normalizes server URLs', () => {
    assert.equal(normalizeServerUrl('127.0.0.1:8080'), 'http://127.0.0.1:8080');
    assert.equal(normalizeServerUrl('https://admin.example:9443/'), 'https://admin.example:9443');
    assert.throws(() => normalizeServerUrl('ftp://x'), /http or https/);
  });

  it('formats durations and says which part of a long list a page shows', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(90_061), '1d 1h 1m 1s');
    const columns = [{ title: 'n' }];
    assert.equal(formatPage({ total: 1, offset: 0, items: ['a'] }, columns, (item) => [item], 'none'), 'n\na');
    assert.match(formatPage({ total: 5, offset: 2, items: ['c', 'd'] }, columns, (item) => [item], 'none'), /showing 3-4 of 5/);
    assert.equal(formatPage({ total: 0, offset: 0, items: [] as string[] }, columns, (item) => [item], 'none'), 'none');
  });
});
