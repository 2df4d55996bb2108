// Goal: the admin API compiles its route schemas on each route's first request
// (lazy-compilers.ts), so a schema that does not compile no longer fails the start. Here every
// route of every admin plugin is compiled eagerly: a broken schema anywhere fails this test.
// Validation and serialization behave as with Fastify's own compilers: a bad body gets 400 with
// Ajv's message, a response loses the fields its schema does not list, and a route with a
// broken schema answers 500 on its first request.
// Method: createAdminApp over a MemoryShardStore and a Broker on it, with every route plugin;
// Fastify's inject for requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import pino from 'pino';
import { Broker } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { createAdminApp } from './admin-server.js';
import { amqpAdminRoutes } from './amqp-routes.js';
import { kafkaAdminRoutes } from './kafka-routes.js';
import { compileDeferred, lazyCompilers, type DeferredCompiles } from './lazy-compilers.js';
import { mqttAdminRoutes } from './mqtt-routes.js';
import type { PlacementAdmin } from './placement-admin.js';
import { placementAdminRoutes } from './placement-routes.js';
import { replicaSetAdminRoutes } from './replica-set-routes.js';
import { replicationAdminRoutes } from './replication-routes.js';

const logger = pino({ level: 'silent' });
const TOKEN = 'lazy-compilers-token-0123';
const node = { id: 'node-1', roles: ['broker', 'journal', 'placement'], version: '0.1.0', addresses: {} };

/** The cluster routes only call placement when a request comes; compiling their schemas needs none. */
const placementNotCalled = new Proxy({} as PlacementAdmin, {
  get: (_target, name) => () => {
    throw new Error(`placement.${String(name)} is not called while schemas compile`);
  },
});

test('every admin route schema compiles', async () => {
  const store = new MemoryShardStore();
  const broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024 });
  const deferred: DeferredCompiles = { pending: [] };
  const app = await createAdminApp({
    broker,
    store,
    node,
    token: TOKEN,
    logger,
    settings: () => ({}),
    protocols: [mqttAdminRoutes(broker), kafkaAdminRoutes(undefined, store), amqpAdminRoutes(undefined)],
    cluster: placementAdminRoutes(placementNotCalled),
    replication: replicationAdminRoutes(undefined),
    replicaSets: replicaSetAdminRoutes(undefined),
    deferredCompiles: deferred,
  });
  try {
    await app.ready();
    const compiled = compileDeferred(deferred);
    // Well over a hundred request parts and responses; a plugin that stopped reaching the
    // lazy compilers would show as a drop here.
    assert.ok(compiled > 100, `${compiled} schemas compiled`);
  } finally {
    await app.close();
    await broker.close();
    await store.close();
  }
});

test('the lazy compilers validate and serialize as Fastify does; a broken schema fails its first request, not the start', async () => {
  const deferred: DeferredCompiles = { pending: [] };
  const app = Fastify({ schemaController: { compilersFactory: lazyCompilers(deferred) } });
  app.post('/items', {
    schema: {
      body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
      response: { 200: { type: 'object', properties: { name: { type: 'string' }, count: { type: 'integer' } } } },
    },
    handler: async (request) => ({ name: (request.body as { name: string }).name, count: 3, secret: 'not in the schema' }),
  });
  app.get('/broken', { schema: { response: { 200: { type: 'no-such-type' } } }, handler: async () => ({}) });
  try {
    await app.ready();
    // The body, both responses (and whatever Fastify adds) wait for their first request.
    assert.ok(deferred.pending.length >= 3, `${deferred.pending.length} compiles deferred`);
    const ok = await app.inject({ method: 'POST', url: '/items', payload: { name: 'a' } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { name: 'a', count: 3 });
    const bad = await app.inject({ method: 'POST', url: '/items', payload: {} });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /must have required property 'name'/);
    const empty = await app.inject({ method: 'POST', url: '/items', payload: { name: '' } });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.json().message, /must NOT have fewer than 1 characters/);
    assert.equal((await app.inject({ method: 'GET', url: '/broken' })).statusCode, 500);
    assert.throws(() => compileDeferred(deferred));
  } finally {
    await app.close();
  }
});
