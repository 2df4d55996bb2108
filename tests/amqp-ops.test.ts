// Operating the AMQP front end: real `shardline start` nodes with --amqp-port and an admin token,
// amqplib as the client.
//
// Covered: /api/amqp/* (overview, exchanges, queues with depth, consumers, totals and arguments,
// one queue with its bindings, bindings, connections) against what amqplib did; the
// shardline_amqp_* series of /metrics; `shardline ctl amqp exchanges|queues|queue|bindings|
// connections|close`, the close reaching amqplib as 320 CONNECTION_FORCED with the unacked
// message requeued; 503 without the listener; the resource limits (queues, exchanges, bindings
// 406 on the channel, consumers per channel 530 on the connection, channel-max offered in tune
// and enforced on raw frames); and connection.blocked / unblocked as amqplib's 'blocked' and
// 'unblocked' events, driven by amqp-memory-limit-bytes and by the disk watermark (PATCH
// /api/config), with the blocked publisher's socket not read while a consumer-only connection
// goes on.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import amqp from 'amqplib';
import { cleanup, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';
import { amqpAddress, RawAmqp } from './support/raw-amqp.js';

const TOKEN = 'amqp-ops-test-token-0123456789';
const WAIT_MS = 15_000;

function amqpUrl(broker: BrokerProcess): string {
  const { host, port } = amqpAddress(broker);
  return `amqp://guest:guest@${host}:${port}`;
}

/** The value of one series of a Prometheus text exposition, or undefined. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    const inside = line.includes('{') ? line.slice(line.indexOf('{') + 1, line.indexOf('}')) : '';
    if (Object.entries(labels).every(([key, value]) => inside.includes(`${key}="${value}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** Polls `check` until it returns a value (bounded in time); the last error names what was missing. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves with the first emission of `event` (bounded in time). */
function nextEvent<T = unknown>(emitter: { once(event: string, listener: (value: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${WAIT_MS} ms`)), WAIT_MS);
    emitter.once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** A channel's close with its error (amqplib emits 'error' then 'close' on a channel exception). */
function channelError(channel: amqp.Channel): Promise<{ code?: number; message: string }> {
  return nextEvent<{ code?: number; message: string }>(channel, 'error');
}

describe('AMQP operations: admin API, metrics, ctl amqp, limits, connection.blocked', { timeout: 240_000 }, () => {
  const nodes: BrokerProcess[] = [];
  const connections: amqp.ChannelModel[] = [];
  after(async () => {
    for (const connection of connections) await connection.close().catch(() => undefined);
    for (const node of nodes) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  async function start(args: string[]): Promise<{ node: BrokerProcess; admin: string; url: string }> {
    const node = await startBroker({ args: ['--amqp-port', '0', '--admin-token', TOKEN, ...args] });
    nodes.push(node);
    const admin = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    return { node, admin, url: amqpUrl(node) };
  }

  async function connect(url: string): Promise<amqp.ChannelModel> {
    const connection = await amqp.connect(url);
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  }

  const api = async <T>(admin: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${admin}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) } });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };

  interface QueueItem {
    name: string;
    durable: boolean;
    exclusive: boolean;
    autoDelete: boolean;
    arguments: Record<string, unknown>;
    shard?: string;
    ready: number;
    unacked: number;
    consumers: number;
    published: number;
    delivered: number;
    acked: number;
    rates: { publishPerSecond: number };
  }

  test('the admin API, metrics and ctl amqp show what amqplib did; ctl amqp close forces a connection out', async () => {
    const { admin, url } = await start([]);
    const connection = await connect(url);
    const setup = await connection.createConfirmChannel();
    await setup.assertExchange('ops.x', 'topic', { durable: true });
    await setup.assertQueue('ops.q', { durable: true, arguments: { 'x-message-ttl': 60_000 } });
    await setup.bindQueue('ops.q', 'ops.x', 'ops.#');
    for (const body of ['a', 'b', 'c']) setup.publish('ops.x', 'ops.one', Buffer.from(body), { persistent: true });
    await setup.waitForConfirms();
    const consumer = await connection.createChannel();
    await consumer.prefetch(1);
    const delivered = new Promise<amqp.ConsumeMessage>((resolve) => void consumer.consume('ops.q', (message) => message !== null && resolve(message)));
    assert.equal((await delivered).content.toString(), 'a');

    const queue = await waitFor('ops.q with one unacked', async () => {
      const { status, body } = await api<{ items: QueueItem[] }>(admin, '/api/amqp/queues');
      assert.equal(status, 200);
      const found = body.items.find((item) => item.name === 'ops.q');
      return found?.unacked === 1 ? found : undefined;
    });
    assert.deepEqual(
      { ready: queue.ready, unacked: queue.unacked, consumers: queue.consumers, published: queue.published, delivered: queue.delivered, acked: queue.acked, durable: queue.durable, exclusive: queue.exclusive, autoDelete: queue.autoDelete, arguments: queue.arguments },
      { ready: 2, unacked: 1, consumers: 1, published: 3, delivered: 1, acked: 0, durable: true, exclusive: false, autoDelete: false, arguments: { 'x-message-ttl': 60_000 } },
    );
    assert.match(queue.shard ?? '', /^amqp\.q\./);
    // The rates' arithmetic is unit-tested (admin/amqp-routes.test.ts); here only their presence.
    assert.equal(typeof queue.rates.publishPerSecond, 'number');

    const one = await api<QueueItem & { bindings: Array<{ source: string; routingKey: string }> }>(admin, '/api/amqp/queues/ops.q');
    assert.deepEqual(one.body.bindings.map((binding) => [binding.source, binding.routingKey]), [['ops.x', 'ops.#']]);
    assert.equal((await api(admin, '/api/amqp/queues/missing')).status, 404);
    const exchanges = await api<{ items: Array<{ name: string; type: string; durable: boolean; bindings: number }> }>(admin, '/api/amqp/exchanges');
    assert.deepEqual(exchanges.body.items.find((item) => item.name === 'ops.x'), { name: 'ops.x', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {}, bindings: 1 });
    assert.ok(exchanges.body.items.some((item) => item.name === 'amq.topic'), 'the predeclared exchanges are listed');
    const bindings = await api<{ items: unknown[] }>(admin, '/api/amqp/bindings');
    assert.deepEqual(bindings.body.items, [{ source: 'ops.x', destinationKind: 'queue', destination: 'ops.q', routingKey: 'ops.#', arguments: {} }]);
    const listed = await api<{ items: Array<{ id: string; remoteAddress: string; user?: string; channels: number; since: number; blocked: boolean }> }>(admin, '/api/amqp/connections');
    assert.equal(listed.body.items.length, 1);
    const [info] = listed.body.items;
    assert.deepEqual({ user: info?.user, channels: info?.channels, blocked: info?.blocked }, { user: 'guest', channels: 2, blocked: false });
    assert.match(info?.remoteAddress ?? '', /^127\.0\.0\.1:\d+$/);
    const overview = await api<{ connections: number; channels: number; queues: number; ready: number; unacked: number; blockedReason: string | null; totals: Record<string, number> }>(admin, '/api/amqp/overview');
    assert.deepEqual({ ...overview.body, heldBytes: undefined, exchanges: undefined, bindings: undefined }, {
      connections: 1, channels: 2, queues: 1, ready: 2, unacked: 1, blockedReason: null, heldBytes: undefined, exchanges: undefined, bindings: undefined,
      totals: { publishes: 3, deliveries: 1, acks: 0, confirmsAcked: 3, confirmsNacked: 0 },
    });

    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const expected: Array<[string, Record<string, string>, number]> = [
      ['shardline_amqp_connections', {}, 1],
      ['shardline_amqp_channels', {}, 2],
      ['shardline_amqp_queues', {}, 1],
      ['shardline_amqp_bindings', {}, 1],
      ['shardline_amqp_messages_ready', {}, 2],
      ['shardline_amqp_messages_unacked', {}, 1],
      ['shardline_amqp_queue_messages_ready', { queue: 'ops.q' }, 2],
      ['shardline_amqp_queue_messages_unacked', { queue: 'ops.q' }, 1],
      ['shardline_amqp_queue_series_omitted', {}, 0],
      ['shardline_amqp_publishes_total', {}, 3],
      ['shardline_amqp_deliveries_total', {}, 1],
      ['shardline_amqp_acks_total', {}, 0],
      ['shardline_amqp_confirms_total', { outcome: 'ack' }, 3],
      ['shardline_amqp_blocked', {}, 0],
    ];
    for (const [name, labels, value] of expected) assert.equal(series(metrics, name, labels), value, `${name}${JSON.stringify(labels)}`);

    const env = { SHARDLINE_ADMIN_URL: admin, SHARDLINE_ADMIN_TOKEN: TOKEN };
    const queues = await runCtl(['amqp', 'queues'], env);
    assert.equal(queues.code, 0, queues.stderr);
    assert.match(queues.stdout, /ops\.q\s+D\s+2\s+1\s+\S+ B\s+1\s/);
    const queuesJson = await runCtl(['amqp', 'queues', '--json'], env);
    assert.deepEqual((JSON.parse(queuesJson.stdout) as { items: QueueItem[] }).items.map((item) => [item.name, item.ready, item.unacked]), [['ops.q', 2, 1]]);
    const queueOne = await runCtl(['amqp', 'queue', 'ops.q'], env);
    assert.equal(queueOne.code, 0, queueOne.stderr);
    assert.match(queueOne.stdout, /x-message-ttl/);
    assert.match(queueOne.stdout, /ops\.x\s+ops\.#/);
    const missing = await runCtl(['amqp', 'queue', 'nope'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /AMQP queue "nope" not found/);
    const exchangeTable = await runCtl(['amqp', 'exchanges'], env);
    assert.match(exchangeTable.stdout, /ops\.x\s+topic\s+D\s+1/);
    const bindingTable = await runCtl(['amqp', 'bindings'], env);
    assert.match(bindingTable.stdout, /ops\.x\s+queue\s+ops\.q\s+ops\.#/);
    const connectionTable = await runCtl(['amqp', 'connections'], env);
    assert.ok(connectionTable.stdout.includes(info?.id ?? '?'), connectionTable.stdout);
    const help = await runCtl(['amqp', 'close', '--help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /CONNECTION_FORCED/);

    // Closing: amqplib sees 320 (a close it treats as not fatal: 'close' with the error, no
    // 'error'); the unacknowledged message goes back to the queue.
    const closed = nextEvent<{ code?: number; message: string } | undefined>(connection, 'close');
    const close = await runCtl(['amqp', 'close', info?.id ?? '?', '--json'], env);
    assert.equal(close.code, 0, close.stderr);
    assert.deepEqual(JSON.parse(close.stdout), { closed: info?.id });
    const error = await closed;
    assert.match(error?.message ?? '', /^Connection closed: 320 \(CONNECTION-FORCED\) with message "CONNECTION_FORCED - closed by an operator \(admin API\)"$/);
    const after = await waitFor('the unacked message requeued', async () => {
      const { body } = await api<QueueItem>(admin, '/api/amqp/queues/ops.q');
      return body.ready === 3 && body.unacked === 0 && body.consumers === 0 ? body : undefined;
    });
    assert.equal(after.ready, 3);
    assert.deepEqual((await api<{ items: unknown[] }>(admin, '/api/amqp/connections')).body.items, []);
    const again = await runCtl(['amqp', 'close', info?.id ?? '?'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not found/);
  });

  test('a node without the AMQP listener answers 503 and has no AMQP series', async () => {
    const node = await startBroker({ args: ['--admin-token', TOKEN] });
    nodes.push(node);
    const admin = `http://${String((await waitForLogField(node.broker, 'admin')).admin)}`;
    const run = await runCtl(['amqp', 'queues'], { SHARDLINE_ADMIN_URL: admin, SHARDLINE_ADMIN_TOKEN: TOKEN });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /AMQP listener \(--amqp-port\) is not available/);
    assert.equal((await api(admin, '/api/amqp/connections/amqp-1', { method: 'DELETE' })).status, 503);
    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    assert.ok(!metrics.includes('shardline_amqp_'), 'no AMQP series without the listener');
  });

  test('resource limits: queues, exchanges and bindings 406 on the channel, consumers per channel 530, channel-max', async () => {
    const { node, url } = await start(['--amqp-max-queues', '2', '--amqp-max-exchanges', '1', '--amqp-max-bindings', '1', '--amqp-max-consumers-per-channel', '2', '--amqp-channel-max', '3']);
    const connection = await connect(url);
    assert.equal((connection.connection as unknown as { channelMax: number }).channelMax, 3, 'channel-max offered in connection.tune');

    let ch = await connection.createChannel();
    await ch.assertQueue('lim.q1', { durable: false });
    await ch.assertQueue('lim.q2', { durable: false });
    await ch.assertQueue('lim.q1', { durable: false }); // a redeclare at the bound is no new queue
    let refused = channelError(ch);
    await assert.rejects(ch.assertQueue('lim.q3', { durable: false }), /PRECONDITION_FAILED - cannot declare queue 'lim.q3' in vhost '\/': queue limit \(2\) is reached/);
    assert.equal((await refused).code, 406);

    ch = await connection.createChannel();
    await ch.assertExchange('lim.x1', 'direct', { durable: false });
    refused = channelError(ch);
    await assert.rejects(ch.assertExchange('lim.x2', 'direct', { durable: false }), /PRECONDITION_FAILED - cannot declare exchange 'lim.x2' in vhost '\/': exchange limit \(1\) is reached/);
    assert.equal((await refused).code, 406);

    ch = await connection.createChannel();
    await ch.bindQueue('lim.q1', 'lim.x1', 'k');
    await ch.bindQueue('lim.q1', 'lim.x1', 'k'); // the same binding again is no new one
    refused = channelError(ch);
    await assert.rejects(ch.bindQueue('lim.q2', 'lim.x1', 'k'), /PRECONDITION_FAILED - cannot add a binding in vhost '\/': binding limit \(1\) is reached/);
    assert.equal((await refused).code, 406);

    // Each refusal closed only its channel: the connection still works.
    ch = await connection.createChannel();
    await ch.consume('lim.q1', () => undefined);
    await ch.consume('lim.q2', () => undefined);
    const closed = nextEvent<{ code?: number; message: string }>(connection, 'error');
    ch.on('error', () => undefined);
    await assert.rejects(ch.consume('lim.q1', () => undefined));
    const error = await closed;
    assert.equal(error.code, 530);
    assert.match(error.message, /NOT_ALLOWED - reached maximum \(2\) of consumers per channel/);

    // channel-max 3 on the wire: asking for more at tune-ok is 530, a frame on channel 4 is 504.
    const greedy = await RawAmqp.open(amqpAddress(node));
    const refusal = await greedy.handshake({ channelMax: 4 });
    assert.equal(refusal.name, 'connection.close');
    const refusalArgs = (refusal as Extract<typeof refusal, { name: 'connection.close' }>).args;
    assert.equal(refusalArgs.replyCode, 530);
    assert.match(refusalArgs.replyText, /negotiated channel_max = 4 is higher than the maximum allowed value \(3\)/);
    greedy.socket.destroy();
    const raw = await RawAmqp.open(amqpAddress(node));
    assert.equal((await raw.handshake()).name, 'connection.open-ok');
    raw.sendMethod(4, { name: 'channel.open', args: { outOfBand: '' } });
    const args = await raw.expectConnectionClose(504);
    assert.match(args.replyText, /channel 4 is above channel-max 3/);
  });

  test('connection.blocked: the memory bound blocks the publisher (not read) and not a consumer-only connection; the disk watermark too', async () => {
    const { admin, url } = await start(['--amqp-memory-limit-bytes', '20000']);
    const publisher = await connect(url);
    const other = await connect(url);
    const pub = await publisher.createConfirmChannel();
    await pub.assertQueue('mem.q', { durable: false });
    const otherChannel = await other.createChannel();
    let otherBlocked = false;
    other.on('blocked', () => (otherBlocked = true));

    const blocked = nextEvent<string>(publisher, 'blocked');
    for (let i = 0; i < 3; i++) pub.sendToQueue('mem.q', Buffer.alloc(8000, i));
    await pub.waitForConfirms();
    assert.match(await blocked, /^low on memory \(AMQP queues hold 24000 bytes, amqp-memory-limit-bytes is 20000\)$/);
    const view = await api<{ blockedReason: string | null }>(admin, '/api/amqp/overview');
    assert.match(view.body.blockedReason ?? '', /low on memory/);

    // The publisher's next publish and the declare after it wait in its socket; the other
    // connection, which never published, is read: it sees the queue unchanged.
    pub.sendToQueue('mem.q', Buffer.from('held'));
    const heldConfirm = pub.waitForConfirms();
    const heldCheck = pub.checkQueue('mem.q');
    await new Promise((resolve) => setImmediate(resolve));
    await waitFor('the publisher listed as blocked', async () => {
      const { body } = await api<{ items: Array<{ blocked: boolean; channels: number }> }>(admin, '/api/amqp/connections');
      return body.items.some((item) => item.blocked) ? true : undefined;
    });
    assert.equal((await otherChannel.checkQueue('mem.q')).messageCount, 3, 'the held publish was not read');
    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    assert.equal(series(metrics, 'shardline_amqp_blocked'), 1);

    // The consumer-only connection frees memory: the alarm clears, the publisher is told and read again.
    const unblocked = nextEvent(publisher, 'unblocked');
    assert.equal((await otherChannel.purgeQueue('mem.q')).messageCount, 3);
    await unblocked;
    await heldConfirm;
    assert.equal((await heldCheck).messageCount, 1, 'the held publish was handled after the purge');
    assert.equal(otherBlocked, false, 'a connection that never published is not blocked');

    // The disk watermark: a threshold over the free space blocks the publisher, 0 clears it.
    const diskBlocked = nextEvent<string>(publisher, 'blocked');
    const low = await api(admin, '/api/config', { method: 'PATCH', body: JSON.stringify({ 'disk-free-min-percent': 100, 'disk-free-min-bytes': 1_000_000_000_000_000 }) });
    assert.equal(low.status, 200, JSON.stringify(low.body));
    assert.equal(await diskBlocked, 'low on disk');
    const diskUnblocked = nextEvent(publisher, 'unblocked');
    const clear = await api(admin, '/api/config', { method: 'PATCH', body: JSON.stringify({ 'disk-free-min-percent': 0 }) });
    assert.equal(clear.status, 200, JSON.stringify(clear.body));
    await diskUnblocked;
    pub.sendToQueue('mem.q', Buffer.from('after'));
    await pub.waitForConfirms();
    assert.equal((await pub.checkQueue('mem.q')).messageCount, 2);
  });
});
