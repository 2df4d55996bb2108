// Tests of the dashboard's routes (console-routes.ts) through fastify inject over a real Broker
// on a MemoryShardStore.
//
// Goal: the shard browser's read GET /api/shards/:name/records returns the documented record
// shape (UTF-8 text or null, base64 always), reads from an offset or a time range, caps at the
// limit, needs the token, refuses limit > 500 and toTime < fromTime (400) and answers 404 for an
// unknown shard; the static dashboard is served at / and /console/* without a token and refuses
// names outside its folder.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { MemoryShardStore } from '../shard-model/index.js';
import { createAdminApp } from './admin-server.js';
import { Broker } from '../engine/index.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'console-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

// Response bodies are checked field by field against the documented shapes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

describe('dashboard routes', () => {
  let store: MemoryShardStore;
  let broker: Broker;
  let app: FastifyInstance;

  before(async () => {
    store = new MemoryShardStore();
    broker = await Broker.open({ store, logger, dataShards: 1, maxQueuedBytes: 1024 * 1024 });
    app = await createAdminApp({ broker, store, node: { id: 'n1', roles: ['broker'], version: '0.1.0', addresses: {} }, token: TOKEN, logger, settings: () => ({}) });
    await store.create('audit');
    await store.append('audit', [
      { key: Buffer.from('k0'), value: Buffer.from('v0'), timestamp: 1_000, headers: [{ key: 'h', value: Buffer.from('x') }] },
      { key: null, value: Buffer.from([0xff, 0xfe]), timestamp: 2_000 },
      { key: Buffer.from([0xc3]), value: null, timestamp: 3_000 },
      { value: Buffer.from('v3'), timestamp: 4_000 },
    ]);
  });
  after(async () => {
    await app.close();
    await broker.close();
  });

  const get = async (url: string, headers: Record<string, string> = auth): Promise<{ status: number; body: Json; type: string }> => {
    const reply = await app.inject({ method: 'GET', url, headers });
    let body: Json;
    try {
      body = reply.json();
    } catch {
      body = reply.body;
    }
    return { status: reply.statusCode, body, type: String(reply.headers['content-type'] ?? '') };
  };

  test('records from the start: documented shape, text or null, base64 always', async () => {
    const { status, body } = await get('/api/shards/audit/records');
    assert.equal(status, 200);
    assert.equal(body.shard, 'audit');
    assert.deepEqual(body.items.map((r: Json) => r.offset), [0, 1, 2, 3]);
    assert.deepEqual(body.items[0], { offset: 0, timestamp: 1_000, key: 'k0', value: 'v0', valueBase64: Buffer.from('v0').toString('base64'), headers: [{ key: 'h', value: 'x' }] });
    assert.equal(body.items[1].key, null);
    assert.equal(body.items[1].value, null, 'invalid UTF-8 is null as text');
    assert.equal(body.items[1].valueBase64, Buffer.from([0xff, 0xfe]).toString('base64'));
    assert.equal(body.items[2].key, null, 'a key that is not UTF-8 is null');
    assert.equal(body.items[2].value, null);
    assert.equal(body.items[2].valueBase64, null);
  });

  test('from an offset, with a limit', async () => {
    const { body } = await get('/api/shards/audit/records?fromOffset=1&limit=2');
    assert.deepEqual(body.items.map((r: Json) => r.offset), [1, 2]);
    assert.deepEqual((await get('/api/shards/audit/records?fromOffset=4')).body.items, [], 'at the end: empty');
    assert.deepEqual((await get('/api/shards/audit/records?fromOffset=99')).body.items, [], 'past the end: empty');
  });

  test('a time range: from inclusive, to exclusive', async () => {
    assert.deepEqual((await get('/api/shards/audit/records?fromTime=2000&toTime=4000')).body.items.map((r: Json) => r.offset), [1, 2]);
    assert.deepEqual((await get('/api/shards/audit/records?fromTime=1500')).body.items.map((r: Json) => r.offset), [1, 2, 3]);
    assert.deepEqual((await get('/api/shards/audit/records?fromTime=9000')).body.items, []);
  });

  test('failures: token, unknown shard, bad limits and ranges', async () => {
    const noToken = await get('/api/shards/audit/records', {});
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.error.code, 'SL_ADMIN_UNAUTHORIZED');
    const missing = await get('/api/shards/nope/records');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'SL_ADMIN_NOT_FOUND');
    for (const query of ['limit=501', 'limit=0', 'fromOffset=-1', 'fromTime=5000&toTime=1000', 'fromTime=abc']) {
      const bad = await get(`/api/shards/audit/records?${query}`);
      assert.equal(bad.status, 400, query);
      assert.equal(bad.body.error.code, 'SL_ADMIN_BAD_REQUEST', query);
    }
    assert.equal((await get('/api/shards/audit/records?limit=500')).status, 200);
  });

  test('data shards of the broker are browsable', async () => {
    const [name] = broker.dataShardNames;
    assert.ok(name !== undefined);
    assert.equal((await get(`/api/shards/${encodeURIComponent(name)}/records`)).status, 200);
  });

  test('the dashboard files are served without a token; nothing outside console/', async () => {
    const index = await get('/', {});
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(String(index.body), /<script type="module" src="\/console\/app\.js">/);
    assert.doesNotMatch(String(index.body), /https?:\/\//, 'no external URLs (works offline)');
    const script = await get('/console/app.js', {});
    assert.equal(script.status, 200);
    assert.match(script.type, /^text\/javascript/);
    assert.match((await get('/console/style.css', {})).type, /^text\/css/);
    for (const url of ['/console/..%2Fpackage.json', '/console/.hidden.js', '/console/missing.js', '/console/app.ts']) {
      const refused = await get(url, {});
      assert.equal(refused.status, 404, url);
      assert.equal(refused.body.error.code, 'SL_ADMIN_NOT_FOUND', url);
    }
  });
});
