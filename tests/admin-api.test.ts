// The admin HTTP API of a running `shardline start` node, over real HTTP, with real MQTT clients.
//
// Goal: what docs/operations.md promises an operator holds end to end: the listening line names
// the admin address; probes answer without a token, everything else needs the bearer token (401
// with SL_ADMIN_UNAUTHORIZED otherwise); the overview, client, retained and metrics views show
// what MQTT clients did; kick disconnects a client (5.0 DISCONNECT 0x98); a retained message can
// be read and deleted; a publish from the API reaches a subscriber; bad paging is a 400. And the
// token rules of `start`: a given token is never logged; without one the data directory keeps a
// 0600 token file, logged once when created and reused on restart; a broker-only node makes one
// per start; every role serves the API (a journal-only node's MQTT routes answer 503).
// Method: `shardline start` processes from tests/support/broker-process.ts (ports 0), global
// fetch against the `admin` address of the listening line, mqtt.js clients (3.1.1 and 5.0).
import assert from 'node:assert/strict';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { brokerForSuite, cleanup, requireShardline, startBroker, stopBroker, usingMosquitto, waitForLogField, type CliProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, subscriber, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

// Distinctive, so a log line that carries it is found.
const TOKEN = 'admin-api-test-token-3f9c1d7e';

interface Reply {
  status: number;
  contentType: string;
  text: string;
  json: unknown;
}

async function call(base: string, path: string, options: { method?: string; token?: string | null; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method: options.method ?? 'GET', headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, json };
}

interface Overview {
  connections: number;
  subscriptions: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
}

function errorCode(reply: Reply): string | undefined {
  return (reply.json as { error?: { code?: string } } | undefined)?.error?.code;
}

async function adminUrl(cli: CliProcess): Promise<string> {
  const entry = await waitForLogField(cli, 'admin');
  assert.match(String(entry.admin), /^127\.0\.0\.1:\d+$/, 'admin field of the listening line');
  assert.ok(String(entry.msg).includes(` admin=${String(entry.admin)}`), `listening line names the admin address: ${String(entry.msg)}`);
  return `http://${String(entry.admin)}`;
}

/** Polls `probe` until it returns true (the broker updates its views asynchronously). */
async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`not within ${timeoutMs} ms: ${what}`);
}

after(cleanup);

describe('admin API of `shardline start` (single node, --admin-token given)', { skip: usingMosquitto() ? 'Shardline-only (admin API)' : false }, () => {
  const broker = brokerForSuite({ args: ['--admin-token', TOKEN] }, closeAllClients);
  let base = '';
  const api = (path: string, options?: Parameters<typeof call>[2]): Promise<Reply> => call(base, path, options);

  it('the listening line names the admin address; probes answer without a token; the given token is never logged', async () => {
    base = await adminUrl(broker.broker);
    assert.deepEqual((await api('/healthz', { token: null })).json, { status: 'ok' });
    assert.equal((await api('/readyz', { token: null })).status, 200);
    assert.ok(!broker.broker.lines.some((line) => line.includes(TOKEN)), 'no log line carries the given token');
    assert.ok(!broker.broker.lines.some((line) => line.includes('admin token created')), 'no token is created when one is given');
  });

  it('401 SL_ADMIN_UNAUTHORIZED without the token, with a wrong one, and on /metrics', async () => {
    for (const [path, token] of [['/api/overview', null], ['/api/overview', 'wrong'], ['/api/mqtt/clients', `${TOKEN}x`], ['/metrics', null]] as const) {
      const reply = await api(path, { token });
      assert.equal(reply.status, 401, `${path} with ${String(token)}`);
      assert.equal(errorCode(reply), 'SL_ADMIN_UNAUTHORIZED', `${path}: ${reply.text}`);
    }
    const scheme = await fetch(`${base}/api/overview`, { headers: { authorization: TOKEN } });
    assert.equal(scheme.status, 401, 'the token without "Bearer " is refused');
  });

  it('overview and clients: counts, the connected client with its protocol, prefix filter; kick disconnects it (5.0 DISCONNECT 0x98)', async () => {
    const before = (await api('/api/overview')).json as Overview;
    const id = uniqueClientId('adm');
    const topic = uniqueTopic('adm-ov');
    const client = await subscriber(broker.url, topic, { version: 5, clientId: id, qos: 1 });
    const other = await connectClient(broker.url, { version: 4, clientId: uniqueClientId('oth') });
    await other.publish(topic, 'hello', { qos: 1 });
    await client.waitForMessages(1);

    const overview = (await api('/api/overview')).json as Overview;
    assert.equal(overview.connections, before.connections + 2, 'two more connections');
    assert.equal(overview.subscriptions, before.subscriptions + 1, 'one more subscription');
    assert.equal(overview.messagesIn, before.messagesIn + 1);
    assert.equal(overview.bytesIn, before.bytesIn + 5);
    assert.ok(overview.messagesOut >= before.messagesOut + 1);

    const list = (await api(`/api/mqtt/clients?prefix=${encodeURIComponent(id)}`)).json as { total: number; items: Array<Record<string, unknown>> };
    assert.equal(list.total, 1, JSON.stringify(list));
    assert.equal(list.items[0]?.clientId, id);
    assert.equal(list.items[0]?.protocolVersion, 5);
    assert.equal(list.items[0]?.subscriptions, 1);
    const all = (await api('/api/mqtt/clients?limit=1000')).json as { total: number; items: Array<{ clientId: string }> };
    assert.ok(all.items.some((item) => item.clientId === other.clientId), 'the 3.1.1 client is listed too');
    const one = await api(`/api/mqtt/clients/${encodeURIComponent(id)}`);
    assert.equal(one.status, 200, one.text);

    const kicked = await api(`/api/mqtt/clients/${encodeURIComponent(id)}`, { method: 'DELETE' });
    assert.equal(kicked.status, 204, kicked.text);
    await client.closed;
    assert.equal(client.serverDisconnect?.reasonCode, 0x98, 'DISCONNECT Administrative action');
    await eventually('the kicked client leaves the list', async () => ((await api(`/api/mqtt/clients?prefix=${encodeURIComponent(id)}`)).json as { total: number }).total === 0);
    const again = await api(`/api/mqtt/clients/${encodeURIComponent(id)}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(errorCode(again), 'SL_ADMIN_NOT_FOUND');
    await other.end();
  });

  it('bad paging is a 400 SL_ADMIN_BAD_REQUEST', async () => {
    for (const query of ['limit=0', 'limit=1001', 'offset=-1', 'limit=abc']) {
      const reply = await api(`/api/mqtt/clients?${query}`);
      assert.equal(reply.status, 400, `${query}: ${reply.text}`);
      assert.equal(errorCode(reply), 'SL_ADMIN_BAD_REQUEST', query);
    }
  });

  it('retained messages: listed by filter, read by topic, deleted (a new subscriber then gets nothing)', async () => {
    const topic = `${uniqueTopic('adm-ret')}/a b`;
    const publisher = await connectClient(broker.url, { version: 5 });
    await publisher.publish(topic, 'kept', { qos: 1, retain: true });
    await eventually('the retained message is listed', async () => {
      const list = (await api(`/api/mqtt/retained?filter=${encodeURIComponent(topic)}`)).json as { items: Array<{ topic: string; payload: string | null }> };
      return list.items.length === 1 && list.items[0]?.topic === topic && list.items[0]?.payload === 'kept';
    });
    const one = await api(`/api/mqtt/retained/${encodeURIComponent(topic)}`);
    assert.equal(one.status, 200, one.text);
    assert.equal((one.json as { payloadBase64: string }).payloadBase64, Buffer.from('kept').toString('base64'));

    assert.equal((await api(`/api/mqtt/retained/${encodeURIComponent(topic)}`, { method: 'DELETE' })).status, 204);
    assert.equal((await api(`/api/mqtt/retained/${encodeURIComponent(topic)}`)).status, 404);
    assert.equal((await api(`/api/mqtt/retained/${encodeURIComponent(topic)}`, { method: 'DELETE' })).status, 404);
    const probe = await subscriber(broker.url, topic, { version: 5 });
    // Barrier: a live marker published after the SUBACK comes after any retained message.
    await probe.expectNothingBeforeMarker(publisher, topic, { from: 0, what: 'no retained message after the delete' });
    await probe.end();
    await publisher.end();
  });

  it('POST /api/mqtt/publish reaches a subscriber; an invalid topic is a 400', async () => {
    const topic = uniqueTopic('adm-pub');
    const sub = await subscriber(broker.url, topic, { version: 5, qos: 1 });
    const reply = await api('/api/mqtt/publish', { method: 'POST', body: { topic, payload: 'from the API', qos: 1 } });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json, { matched: true });
    const [received] = await sub.waitForMessages(1);
    assert.equal(received?.payload.toString(), 'from the API');
    assert.equal(received?.packet.qos, 1);

    const bad = await api('/api/mqtt/publish', { method: 'POST', body: { topic: 'a/#', payload: 'x' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(errorCode(bad), 'SL_ADMIN_BAD_REQUEST');
    await sub.end();
  });

  it('/metrics: Prometheus text with the MQTT and shard series, values matching the overview', async () => {
    const client = await connectClient(broker.url, { version: 5 });
    const reply = await api('/metrics');
    assert.equal(reply.status, 200);
    assert.match(reply.contentType, /^text\/plain/);
    const connections = /^shardline_mqtt_connections\{[^}]*\} (\d+)$/m.exec(reply.text);
    assert.ok(connections !== null, 'shardline_mqtt_connections present');
    const overview = (await api('/api/overview')).json as { connections: number; messagesIn: number };
    assert.equal(Number(connections[1]), overview.connections);
    assert.ok(overview.connections >= 1);
    assert.match(reply.text, /^shardline_messages_in_total\{protocol="mqtt",node="[^"]+"\} \d+$/m);
    assert.match(reply.text, /^shardline_shard_next_offset\{shard="mqtt\.0",node="[^"]+"\} \d+$/m);
    assert.match(reply.text, /^process_cpu_user_seconds_total/m);
    await client.end();
  });

  it('/api/config shows the effective settings without the token', async () => {
    const reply = await api('/api/config');
    const settings = (reply.json as { settings: Record<string, unknown> }).settings;
    assert.equal(settings['admin-port'], 0);
    assert.deepEqual(settings.roles, ['journal', 'broker']);
    assert.ok(!reply.text.includes(TOKEN), 'the token is not in /api/config');
  });
});

describe('admin token kept in the data directory', { skip: usingMosquitto() ? 'Shardline-only (admin API)' : false }, () => {
  it('no token given: <data-dir>/admin-token is created 0600, logged once, works, and is reused (not logged) on restart', async (t) => {
    if (!requireShardline(t)) return;
    const first = await startBroker();
    try {
      const base = await adminUrl(first.broker);
      const file = join(first.dataDir, 'admin-token');
      const token = (await readFile(file, 'utf8')).trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const created = first.broker.lines.filter((line) => line.includes(token));
      assert.equal(created.length, 1, `the token is logged once:\n${created.join('\n')}`);
      assert.match(created[0] ?? '', /admin token created: /);
      assert.equal((await call(base, '/api/overview', { token })).status, 200);
      assert.equal((await call(base, '/api/overview', { token: 'guess' })).status, 401);
      await stopBroker(first);

      const second = await startBroker({ dataDir: first.dataDir });
      const secondBase = await adminUrl(second.broker);
      assert.equal((await call(secondBase, '/api/overview', { token })).status, 200, 'the same token after a restart');
      assert.ok(!second.broker.lines.some((line) => line.includes(token) || line.includes('admin token created')), 'not logged again');
      await stopBroker(second);
    } finally {
      await cleanup();
    }
  });
});

describe('admin API on every role (split topology)', { skip: usingMosquitto() ? 'Shardline-only (admin API)' : false }, () => {
  it('the journal node serves shards (MQTT routes 503), the broker-only node makes a token per start and serves both', async (t) => {
    if (!requireShardline(t)) return;
    const node = await startBroker({ topology: 'split' });
    try {
      assert.ok(node.journal !== undefined);
      const journalBase = await adminUrl(node.journal);
      const journalToken = (await readFile(join(node.dataDir, 'admin-token'), 'utf8')).trim();
      const shards = await call(journalBase, '/api/shards', { token: journalToken });
      assert.equal(shards.status, 200, shards.text);
      assert.ok((shards.json as { items: Array<{ name: string }> }).items.some((shard) => shard.name === 'mqtt.0'), shards.text);
      const clients = await call(journalBase, '/api/mqtt/clients', { token: journalToken });
      assert.equal(clients.status, 503, clients.text);
      assert.equal(errorCode(clients), 'SL_ADMIN_NOT_AVAILABLE');

      const brokerBase = await adminUrl(node.broker);
      const createdLine = node.broker.lines.find((line) => line.includes('admin token created: '));
      assert.ok(createdLine !== undefined, 'the broker-only node logs the token it made');
      const token = /admin token created: (\S+)/.exec(String((JSON.parse(createdLine) as { msg: string }).msg))?.[1] ?? '';
      assert.notEqual(token, journalToken, 'a token of its own');
      const nodes = await call(brokerBase, '/api/nodes', { token });
      assert.equal(nodes.status, 200, nodes.text);
      assert.deepEqual((nodes.json as { items: Array<{ roles: string[] }> }).items[0]?.roles, ['broker']);
      assert.equal((await call(brokerBase, '/api/shards', { token })).status, 200, 'shards through the remote journal');
      await stopBroker(node);
    } finally {
      await cleanup();
    }
  });
});
