// Tests of the admin HTTP API (admin-server.ts) through fastify's inject over a real Broker on a
// MemoryShardStore.
//
// Goal: every route answers with the documented shape, and every failure with the documented
// status and SL_ADMIN_* code: auth (missing, malformed, wrong token), paging out of range,
// unknown client/retained topic/shard/route, invalid topics and filters, a node without a
// broker. Operator actions act on the broker (kick closes the connection, retained delete
// clears it, publish reaches a subscriber). The OpenAPI document lists the routes.
// Method: clients are recording sinks connected straight to the broker (the protocol
// boundary); the MQTT front end over real sockets is covered by tests/admin-api.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../shard-model/index.js';
import { AdminServer, createAdminApp, type AdminOptions } from './admin-server.js';
import { AdminErrors } from './admin-errors.js';
import { mqttAdminRoutes } from './mqtt-routes.js';
import type { FastifyInstance } from 'fastify';
import { RecordingSink } from '../tests/support/recording-sink.js';
import { Broker, type Session } from '../engine/index.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const node = { id: 'node-1', roles: ['broker', 'journal'], version: '0.1.0', addresses: { mqtt: '127.0.0.1:1883' } };

async function connect(broker: Broker, clientId: string, expirySeconds = 0): Promise<{ session: Session; sink: RecordingSink }> {
  const sink = new RecordingSink({ info: { protocol: 'mqtt', protocolVersion: 5, remoteAddress: '127.0.0.1:50000', connectedAt: 1_700_000_000_000, keepAliveSeconds: 30 } });
  const { session } = await broker.connect({ clientId, cleanStart: true, expirySeconds, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  return { session, sink };
}

async function subscribe(broker: Broker, session: Session, filter: string): Promise<void> {
  await broker.subscribe(session, [{ filter, options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
}

function retainedMessage(topic: string, payload: Buffer) {
  return { topic, payload, qos: 1 as const, retain: true, publisherId: 'pub', timestamp: 1_700_000_000_500, properties: undefined };
}

interface Setup {
  broker: Broker;
  store: MemoryShardStore;
  app: FastifyInstance;
}

async function open(overrides: Partial<AdminOptions> = {}): Promise<Setup> {
  const store = new MemoryShardStore();
  const broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024 });
  const app = await createAdminApp({ broker, store, node, token: TOKEN, logger, settings: () => ({ 'mqtt-port': 1883, 'data-shards': 2 }), protocols: [mqttAdminRoutes(broker)], ...overrides });
  return { broker, store, app };
}

// Response bodies are checked field by field against the documented shapes, so they stay untyped here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function get(app: FastifyInstance, url: string, headers: Record<string, string> = auth): Promise<{ status: number; body: Json }> {
  const response = await app.inject({ method: 'GET', url, headers });
  return { status: response.statusCode, body: response.body === '' ? undefined : response.json() };
}

function assertError(result: { status: number; body: Json }, status: number, code: string): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error.code, code);
  assert.equal(typeof result.body.error.message, 'string');
  assert.ok(result.body.error.message.length > 0);
}

describe('admin API over a broker', () => {
  let setup: Setup;
  let alpha: { session: Session; sink: RecordingSink };

  before(async () => {
    setup = await open({ metrics: { contentType: 'text/plain; version=0.0.4', render: async () => 'shardline_mqtt_connections 2\n' } });
    const { broker } = setup;
    alpha = await connect(broker, 'alpha', 60);
    await connect(broker, 'beta');
    await subscribe(broker, alpha.session, 'sensors/#');
    await subscribe(broker, alpha.session, 'alerts');
    await broker.publish(retainedMessage('sensors/1/temp', Buffer.from('21.5')));
    await broker.publish(retainedMessage('sensors/2/raw', Buffer.from([0xff, 0xfe, 0x00])));
    await broker.publish(retainedMessage('other', Buffer.from('x')));
  });

  after(async () => {
    await setup.app.close();
    await setup.broker.close();
  });

  test('/healthz and /readyz answer without a token', async () => {
    assert.deepEqual(await get(setup.app, '/healthz', {}), { status: 200, body: { status: 'ok' } });
    assert.deepEqual(await get(setup.app, '/readyz', {}), { status: 200, body: { status: 'ready' } });
  });

  test('/api/* and /metrics refuse a missing, malformed or wrong token with 401 JSON', async () => {
    for (const url of ['/api/overview', '/api/mqtt/clients', '/metrics', '/api/no-such-route']) {
      assertError(await get(setup.app, url, {}), 401, 'SL_ADMIN_UNAUTHORIZED');
      assertError(await get(setup.app, url, { authorization: 'Bearer wrong' }), 401, 'SL_ADMIN_UNAUTHORIZED');
      assertError(await get(setup.app, url, { authorization: `Bearer ${TOKEN}x` }), 401, 'SL_ADMIN_UNAUTHORIZED');
      assertError(await get(setup.app, url, { authorization: TOKEN }), 401, 'SL_ADMIN_UNAUTHORIZED');
      assertError(await get(setup.app, url, { authorization: `Basic ${TOKEN}` }), 401, 'SL_ADMIN_UNAUTHORIZED');
    }
    const response = await setup.app.inject({ method: 'DELETE', url: '/api/mqtt/clients/alpha' });
    assert.equal(response.statusCode, 401);
    assert.equal(response.headers['www-authenticate'], 'Bearer');
    assert.ok(setup.broker.clients().some((client) => client.clientId === 'alpha'), 'an unauthorized kick did nothing');
  });

  test('/metrics renders the metrics with their content type', async () => {
    const response = await setup.app.inject({ method: 'GET', url: '/metrics', headers: auth });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.equal(response.body, 'shardline_mqtt_connections 2\n');
  });

  test('overview counts the broker and reports rates', async () => {
    const { status, body } = await get(setup.app, '/api/overview');
    assert.equal(status, 200);
    assert.equal(body.node, 'node-1');
    assert.equal(body.version, '0.1.0');
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.equal(body.connections, setup.broker.onlineCount);
    assert.ok(body.connections >= 1);
    assert.equal(body.sessions, setup.broker.sessions().length);
    assert.equal(body.subscriptions, setup.broker.subscriptions().length);
    assert.equal(body.retained, setup.broker.retainedCounts().client);
    assert.deepEqual(body.sys, { ...setup.broker.stats.sys, retained: setup.broker.retainedCounts().sys }, '$SYS traffic apart');
    assert.equal(body.messagesIn, setup.broker.stats.messagesIn);
    assert.equal(body.messagesOut, setup.broker.stats.messagesOut);
    assert.equal(body.bytesIn, setup.broker.stats.bytesIn);
    assert.deepEqual(body.dropped, setup.broker.stats.dropped);
    // Publishes happened within the first second of history, which counts as one second.
    assert.ok(body.rates.messagesInPerSecond > 0 && body.rates.messagesInPerSecond <= body.messagesIn, JSON.stringify(body.rates));
    assert.equal(typeof body.rates.messagesOutPerSecond, 'number');
  });

  test('nodes lists this node', async () => {
    assert.deepEqual(await get(setup.app, '/api/nodes'), { status: 200, body: { items: [{ ...node, self: true }] } });
  });

  test('shards lists the store, one shard by name, unknown shard 404', async () => {
    const list = await get(setup.app, '/api/shards');
    assert.equal(list.status, 200);
    const names = list.body.items.map((item: { name: string }) => item.name);
    assert.deepEqual(names, (await setup.store.list()).map((info) => info.name));
    assert.ok(names.includes('$retained'));
    const one = await get(setup.app, '/api/shards/$retained');
    assert.equal(one.status, 200);
    const info = await setup.store.info('$retained');
    assert.deepEqual(one.body, {
      name: '$retained',
      startOffset: info.startOffset,
      nextOffset: info.nextOffset,
      sizeBytes: info.sizeBytes,
      segmentCount: info.segmentCount,
      durability: info.config.durability,
      retentionMs: info.config.retentionMs,
      retentionBytes: info.config.retentionBytes,
      compacted: true,
    });
    assertError(await get(setup.app, '/api/shards/no-such-shard'), 404, 'SL_ADMIN_NOT_FOUND');
    assertError(await get(setup.app, '/api/shards/..'), 404, 'SL_ADMIN_NOT_FOUND');
  });

  test('clients lists connected clients with connection details, paged and filtered by prefix', async () => {
    const all = await get(setup.app, '/api/mqtt/clients');
    assert.equal(all.status, 200);
    assert.equal(all.body.offset, 0);
    assert.equal(all.body.limit, 100);
    assert.deepEqual(all.body.items.map((item: { clientId: string }) => item.clientId), ['alpha', 'beta']);
    assert.equal(all.body.total, 2);
    assert.deepEqual(all.body.items[0], {
      clientId: 'alpha',
      protocol: 'mqtt',
      protocolVersion: 5,
      remoteAddress: '127.0.0.1:50000',
      connectedAt: 1_700_000_000_000,
      keepAliveSeconds: 30,
      subscriptions: 2,
      inflight: 2, // the two QoS 1 sensors/# messages, unacknowledged
      queued: 0,
      expirySeconds: 60,
    });
    const second = await get(setup.app, '/api/mqtt/clients?offset=1&limit=1');
    assert.deepEqual([second.body.total, second.body.offset, second.body.limit, second.body.items.map((item: { clientId: string }) => item.clientId)], [2, 1, 1, ['beta']]);
    const prefixed = await get(setup.app, '/api/mqtt/clients?prefix=be');
    assert.deepEqual([prefixed.body.total, prefixed.body.items.map((item: { clientId: string }) => item.clientId)], [1, ['beta']]);
  });

  test('bad paging answers 400 SL_ADMIN_BAD_REQUEST naming the parameter', async () => {
    for (const url of ['/api/mqtt/clients?limit=0', '/api/mqtt/clients?limit=1001', '/api/mqtt/clients?offset=-1', '/api/mqtt/sessions?limit=abc', '/api/mqtt/topics?offset=1.5', '/api/mqtt/retained?limit=0', '/api/mqtt/subscriptions?limit=2000']) {
      const result = await get(setup.app, url);
      assertError(result, 400, 'SL_ADMIN_BAD_REQUEST');
      assert.match(result.body.error.message, /limit|offset/, url);
    }
  });

  test('one client with its subscriptions; unknown client 404', async () => {
    const { status, body } = await get(setup.app, '/api/mqtt/clients/alpha');
    assert.equal(status, 200);
    assert.equal(body.clientId, 'alpha');
    assert.equal(body.subscriptions, 2);
    assert.deepEqual(body.filters.map((entry: { filter: string }) => entry.filter).sort(), ['alerts', 'sensors/#']);
    assert.deepEqual(body.filters[0].options, { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    assertError(await get(setup.app, '/api/mqtt/clients/nobody'), 404, 'SL_ADMIN_NOT_FOUND');
  });

  test('sessions and subscriptions list every session, prefix on the client id', async () => {
    const sessions = await get(setup.app, '/api/mqtt/sessions');
    assert.equal(sessions.status, 200);
    assert.deepEqual(sessions.body.items.map((item: { clientId: string; online: boolean }) => [item.clientId, item.online]), [['alpha', true], ['beta', true]]);
    const subscriptions = await get(setup.app, '/api/mqtt/subscriptions?prefix=al');
    assert.equal(subscriptions.status, 200);
    assert.equal(subscriptions.body.total, 2);
    assert.deepEqual(subscriptions.body.items.map((item: { clientId: string; filter: string }) => `${item.clientId} ${item.filter}`).sort(), ['alpha alerts', 'alpha sensors/#']);
    assert.equal(subscriptions.body.items[0].options.qos, 1);
  });

  test('topics counts messages per topic', async () => {
    const { status, body } = await get(setup.app, '/api/mqtt/topics?prefix=sensors/');
    assert.equal(status, 200);
    assert.deepEqual(body.items, [{ topic: 'sensors/1/temp', messages: 1 }, { topic: 'sensors/2/raw', messages: 1 }]);
    assert.equal(body.total, 2);
  });

  test('retained lists by filter with text and base64 payloads; one by URL-encoded topic; bad filter 400', async () => {
    const all = await get(setup.app, '/api/mqtt/retained');
    assert.equal(all.status, 200);
    assert.equal(all.body.total, 3);
    const sensors = await get(setup.app, `/api/mqtt/retained?filter=${encodeURIComponent('sensors/+/temp')}`);
    assert.deepEqual(sensors.body.items, [{ topic: 'sensors/1/temp', payload: '21.5', payloadBase64: Buffer.from('21.5').toString('base64'), qos: 1, publisherId: 'pub', timestamp: 1_700_000_000_500 }]);
    const raw = await get(setup.app, `/api/mqtt/retained/${encodeURIComponent('sensors/2/raw')}`);
    assert.equal(raw.status, 200);
    assert.equal(raw.body.payload, null, 'not valid UTF-8');
    assert.equal(raw.body.payloadBase64, Buffer.from([0xff, 0xfe, 0x00]).toString('base64'));
    assertError(await get(setup.app, `/api/mqtt/retained/${encodeURIComponent('sensors/9/none')}`), 404, 'SL_ADMIN_NOT_FOUND');
    assertError(await get(setup.app, `/api/mqtt/retained?filter=${encodeURIComponent('a/#/b')}`), 400, 'SL_ADMIN_BAD_REQUEST');
  });

  test('retained delete clears the message; a second delete is 404', async () => {
    const url = `/api/mqtt/retained/${encodeURIComponent('other')}`;
    const response = await setup.app.inject({ method: 'DELETE', url, headers: auth });
    assert.equal(response.statusCode, 204);
    assert.equal(response.body, '');
    assert.equal(setup.broker.retained.get('other'), undefined);
    assertError(await get(setup.app, url), 404, 'SL_ADMIN_NOT_FOUND');
    const again = await setup.app.inject({ method: 'DELETE', url, headers: auth });
    assertError({ status: again.statusCode, body: again.json() }, 404, 'SL_ADMIN_NOT_FOUND');
  });

  test('publish reaches a subscriber and reports matched; invalid input 400', async () => {
    const before = alpha.sink.deliveries.length;
    const publish = (payload: unknown) => setup.app.inject({ method: 'POST', url: '/api/mqtt/publish', headers: auth, payload: payload as object });
    const hit = await publish({ topic: 'alerts', payload: 'fire', qos: 1 });
    assert.equal(hit.statusCode, 200, hit.body);
    assert.deepEqual(hit.json(), { matched: true });
    const delivered = alpha.sink.deliveries.slice(before);
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]?.message.payload.toString(), 'fire');
    assert.equal(delivered[0]?.message.publisherId, '');
    const miss = await publish({ topic: 'nobody/listens', payloadBase64: Buffer.from([1, 2, 3]).toString('base64') });
    assert.deepEqual(miss.json(), { matched: false });
    const retained = await publish({ topic: 'status', payload: 'up', retain: true });
    assert.equal(retained.statusCode, 200);
    assert.equal(setup.broker.retained.get('status')?.payload.toString(), 'up');
    for (const bad of [{ topic: 'a/+/b', payload: 'x' }, { topic: '', payload: 'x' }, { payload: 'x' }, { topic: 'a', qos: 3 }, { topic: 'a', payload: 'x', payloadBase64: 'eA==' }, { topic: 'a', payloadBase64: 'not base64!' }]) {
      const response = await publish(bad);
      assertError({ status: response.statusCode, body: response.json() }, 400, 'SL_ADMIN_BAD_REQUEST');
    }
    const malformed = await setup.app.inject({ method: 'POST', url: '/api/mqtt/publish', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"topic":' });
    assertError({ status: malformed.statusCode, body: malformed.json() }, 400, 'SL_ADMIN_BAD_REQUEST');
  });

  test('config shows the settings; PATCH answers 409 naming the key, unknown key 400', async () => {
    assert.deepEqual(await get(setup.app, '/api/config'), { status: 200, body: { settings: { 'mqtt-port': 1883, 'data-shards': 2 } } });
    const patch = (payload: object) => setup.app.inject({ method: 'PATCH', url: '/api/config', headers: auth, payload });
    const live = await patch({ 'mqtt-port': 1884 });
    assertError({ status: live.statusCode, body: live.json() }, 409, 'SL_ADMIN_NOT_LIVE');
    assert.match(live.json().error.message, /mqtt-port/);
    const unknown = await patch({ 'no-such-setting': 1 });
    assertError({ status: unknown.statusCode, body: unknown.json() }, 400, 'SL_ADMIN_BAD_REQUEST');
    const empty = await patch({});
    assertError({ status: empty.statusCode, body: empty.json() }, 400, 'SL_ADMIN_BAD_REQUEST');
  });

  test('an unknown route is 404 JSON', async () => {
    assertError(await get(setup.app, '/api/mqtt/nothing-here'), 404, 'SL_ADMIN_NOT_FOUND');
    assertError(await get(setup.app, '/nothing-here', {}), 404, 'SL_ADMIN_NOT_FOUND');
  });

  test('/docs/json is an OpenAPI document listing the routes with their schemas; /docs serves the UI locally', async () => {
    const { status, body } = await get(setup.app, '/docs/json', {});
    assert.equal(status, 200);
    assert.match(body.openapi, /^3\./);
    const paths = Object.keys(body.paths);
    for (const path of ['/api/overview', '/api/nodes', '/api/shards', '/api/shards/{name}', '/api/mqtt/clients', '/api/mqtt/clients/{clientId}', '/api/mqtt/sessions', '/api/mqtt/subscriptions', '/api/mqtt/topics', '/api/mqtt/retained', '/api/mqtt/retained/{topic}', '/api/mqtt/publish', '/api/config', '/metrics', '/healthz', '/readyz']) {
      assert.ok(paths.includes(path), `${path} in ${paths.join(' ')}`);
    }
    const clients = body.paths['/api/mqtt/clients'].get;
    assert.deepEqual(clients.parameters.map((parameter: { name: string }) => parameter.name).sort(), ['limit', 'offset', 'prefix']);
    assert.ok(clients.responses['200'] !== undefined && clients.responses['400'] !== undefined);
    assert.deepEqual(clients.security, [{ bearer: [] }]);
    assert.ok(body.paths['/api/mqtt/publish'].post.requestBody !== undefined);
    const ui = await setup.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(ui.statusCode, 200);
    assert.match(String(ui.headers['content-type']), /^text\/html/);
    const assets = [...ui.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    assert.ok(assets.length >= 3, assets.join(' '));
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^(https?:)?\/\//, 'no assets from a CDN');
      const response = await setup.app.inject({ method: 'GET', url: new URL(asset, 'http://admin/docs/').pathname });
      assert.equal(response.statusCode, 200, asset);
    }
  });

  test('kick disconnects a client (administrative action); an unknown client is 404', async () => {
    const gamma = await connect(setup.broker, 'gamma');
    const response = await setup.app.inject({ method: 'DELETE', url: '/api/mqtt/clients/gamma', headers: auth });
    assert.equal(response.statusCode, 204);
    assert.equal(gamma.sink.closedBy, 'administrative-action');
    // The front end answers a close by disconnecting; do what it does.
    await setup.broker.disconnect(gamma.session, gamma.sink, { publishWill: false });
    assertError(await get(setup.app, '/api/mqtt/clients/gamma'), 404, 'SL_ADMIN_NOT_FOUND');
    const again = await setup.app.inject({ method: 'DELETE', url: '/api/mqtt/clients/gamma', headers: auth });
    assertError({ status: again.statusCode, body: again.json() }, 404, 'SL_ADMIN_NOT_FOUND');
  });
});

describe('admin API without a broker or metrics', () => {
  test('a journal-only node answers /api/mqtt with 503, overview with null broker counts, /metrics 404', async () => {
    const store = new MemoryShardStore();
    await store.create('orders');
    const app = await createAdminApp({ broker: undefined, store, node: { ...node, roles: ['journal'] }, token: TOKEN, logger, settings: () => ({}), protocols: [mqttAdminRoutes(undefined)] });
    try {
      for (const url of ['/api/mqtt/clients', '/api/mqtt/sessions', '/api/mqtt/retained', '/api/mqtt/clients/a']) assertError(await get(app, url), 503, 'SL_ADMIN_NOT_AVAILABLE');
      const publish = await app.inject({ method: 'POST', url: '/api/mqtt/publish', headers: auth, payload: { topic: 'a', payload: 'b' } });
      assertError({ status: publish.statusCode, body: publish.json() }, 503, 'SL_ADMIN_NOT_AVAILABLE');
      const overview = await get(app, '/api/overview');
      assert.equal(overview.status, 200);
      assert.equal(overview.body.connections, null);
      assert.equal(overview.body.dropped, null);
      assert.deepEqual(overview.body.rates, { messagesInPerSecond: 0, messagesOutPerSecond: 0 });
      assert.deepEqual((await get(app, '/api/shards')).body.items.map((item: { name: string }) => item.name), ['orders']);
      assert.equal((await get(app, '/readyz', {})).status, 200);
      assertError(await get(app, '/metrics'), 404, 'SL_ADMIN_NOT_FOUND');
    } finally {
      await app.close();
      await store.close();
    }
  });

  test('/readyz is 503 with the reasons while the write gate is closed, 200 once it opens', async () => {
    const { app, broker } = await open();
    try {
      broker.writeGate.block('journal-unavailable', 'the journal at 10.0.0.5:1771 does not answer', 1_700_000_000_000);
      broker.writeGate.block('disk-low', 'free disk 1% below the 5% watermark', 1_700_000_000_500);
      const blocked = await get(app, '/readyz', {});
      assertError(blocked, 503, 'SL_ADMIN_NOT_AVAILABLE');
      assert.deepEqual(blocked.body.blocks, [
        { reason: 'journal-unavailable', detail: 'the journal at 10.0.0.5:1771 does not answer', since: 1_700_000_000_000 },
        { reason: 'disk-low', detail: 'free disk 1% below the 5% watermark', since: 1_700_000_000_500 },
      ]);
      assert.match(blocked.body.error.message, /journal-unavailable.*disk-low/);
      broker.writeGate.unblock('journal-unavailable');
      assert.deepEqual((await get(app, '/readyz', {})).body.blocks.map((block: { reason: string }) => block.reason), ['disk-low']);
      broker.writeGate.unblock('disk-low');
      assert.deepEqual(await get(app, '/readyz', {}), { status: 200, body: { status: 'ready' } });
    } finally {
      await app.close();
      await broker.close();
    }
  });

  test('/readyz on a journal node is 503 naming its replicas that have not caught up, up to five, and 200 once none lags', async () => {
    let lagging = Array.from({ length: 7 }, (_, i) => `mqtt.${i}: log end 10, leader 11's HW 5000`);
    const { app, broker } = await open({ replicationReadiness: { notCaughtUp: () => lagging } });
    try {
      const behind = await get(app, '/readyz', {});
      assertError(behind, 503, 'SL_ADMIN_NOT_AVAILABLE');
      assert.match(behind.body.error.message, /7 not caught up with their leaders: mqtt\.0: log end 10, leader 11's HW 5000;.*mqtt\.4: .*; and 2 more/);
      assert.doesNotMatch(behind.body.error.message, /mqtt\.5/);
      lagging = [];
      assert.deepEqual(await get(app, '/readyz', {}), { status: 200, body: { status: 'ready' } });
    } finally {
      await app.close();
      await broker.close();
    }
  });

  test('/readyz is 503 once the broker is closed, and while the store fails', async () => {
    const { app, broker, store } = await open();
    try {
      await broker.close();
      assertError(await get(app, '/readyz', {}), 503, 'SL_ADMIN_NOT_AVAILABLE');
      assertError(await get(app, '/api/mqtt/clients'), 503, 'SL_ADMIN_NOT_AVAILABLE');
    } finally {
      await app.close();
    }
    const failing = Object.create(store) as MemoryShardStore;
    failing.list = async () => {
      throw new Error('journal server unreachable');
    };
    const storeOnly = await createAdminApp({ broker: undefined, store: failing, node, token: TOKEN, logger, settings: () => ({}) });
    try {
      const result = await get(storeOnly, '/readyz', {});
      assertError(result, 503, 'SL_ADMIN_NOT_AVAILABLE');
      assert.match(result.body.error.message, /unreachable/);
    } finally {
      await storeOnly.close();
    }
  });

  test('the rate sampler ticks on an unref\'d timer that close() clears', async () => {
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    const created: NodeJS.Timeout[] = [];
    const cleared: unknown[] = [];
    globalThis.setInterval = ((callback: () => void, ms: number) => {
      const timer = realSet(callback, ms);
      created.push(timer);
      return timer;
    }) as typeof setInterval;
    globalThis.clearInterval = ((timer: NodeJS.Timeout) => {
      cleared.push(timer);
      realClear(timer);
    }) as typeof clearInterval;
    let setup: Setup | undefined;
    try {
      setup = await open();
      assert.equal(created.length, 1, 'one sampler timer');
      assert.equal(created[0]?.hasRef(), false, 'does not hold the process open');
      await setup.app.close();
      assert.ok(cleared.includes(created[0]), 'cleared on close');
    } finally {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
      await setup?.broker.close();
    }
  });

  test('an empty token is refused at creation', async () => {
    await assert.rejects(createAdminApp({ broker: undefined, store: undefined, node, token: '', logger, settings: () => ({}) }));
  });
});

describe('protocol route plugins', () => {
  // Goal: a front end's routes come only from its plugin, and a plugin's routes get the core's
  // bearer check and error shape without doing anything for them. Method: an app without the
  // MQTT plugin, and one with a made-up protocol's plugin, driven through fastify inject.
  test('without the MQTT plugin there are no /api/mqtt routes; another protocol plugin is guarded and answers in the API error shape', async () => {
    const store = new MemoryShardStore();
    const fake = (app: FastifyInstance): void => {
      app.get<{ Params: { name: string } }>('/api/fake/queues/:name', { schema: { tags: ['fake'], params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }, async (request) => {
        throw AdminErrors.notFound.create({}, `queue ${request.params.name}`);
      });
    };
    const app = await createAdminApp({ broker: undefined, store, node, token: TOKEN, logger, settings: () => ({}), protocols: [fake] });
    try {
      assertError(await get(app, '/api/mqtt/clients'), 404, 'SL_ADMIN_NOT_FOUND');
      assertError(await get(app, '/api/fake/queues/q1', {}), 401, 'SL_ADMIN_UNAUTHORIZED');
      const missing = await get(app, '/api/fake/queues/q1');
      assertError(missing, 404, 'SL_ADMIN_NOT_FOUND');
      assert.match(missing.body.error.message, /queue q1/);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe('AdminServer', () => {
  test('listens on loopback over real HTTP and stops; a taken port is SL_ADMIN_LISTEN_FAILED', async () => {
    const store = new MemoryShardStore();
    const server = await AdminServer.start({ broker: undefined, store, node, token: TOKEN, logger, settings: () => ({}), host: '127.0.0.1', port: 0 });
    try {
      assert.ok(server.port > 0);
      assert.equal(server.address, `127.0.0.1:${server.port}`);
      const health = await fetch(`http://${server.address}/healthz`);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const nodes = await fetch(`http://${server.address}/api/nodes`, { headers: auth });
      assert.equal(nodes.status, 200);
      const refused = await fetch(`http://${server.address}/api/nodes`);
      assert.equal(refused.status, 401);
      await assert.rejects(
        AdminServer.start({ broker: undefined, store, node, token: TOKEN, logger, settings: () => ({}), host: '127.0.0.1', port: server.port }),
        (error: { code?: string }) => error.code === 'SL_ADMIN_LISTEN_FAILED',
      );
    } finally {
      await server.stop();
      await store.close();
    }
  });
});
