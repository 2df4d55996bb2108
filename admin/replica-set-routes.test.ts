// Goal: GET /api/replication/sets joins the recorded replica sets with each replica's own answer
// and the leader's view of its followers, as docs/operations.md describes: a replica's end and HW
// are its own, its durable offset and lag the leader's view (null without an answering leader,
// never a guess); a replica that does not answer is shown with why, and still with the lag the
// leader reports for it; shards come sorted, filtered by prefix and capped by limit with the
// total; at most REPLICA_STATUS_CONCURRENCY calls run at once; a node without a source and a
// source that cannot read answer 503; no token is 401; the source is closed with the server.
// Method: createAdminApp with a scripted ReplicaSetSource, calls through fastify's inject.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { ShardlineError, type journalWire } from '../journal/index.js';
import { createAdminApp } from './admin-server.js';
import { REPLICA_STATUS_CONCURRENCY, replicaSetAdminRoutes, type ReplicaSetSource } from './replica-set-routes.js';
import type { ReplicaSetRecord } from './replica-set-view.js';

const TOKEN = 'admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const logger = pino({ level: 'silent' });
const node = { id: 'b', roles: ['broker'], version: '0.1.0', addresses: {} };

function status(fields: Partial<journalWire.ReplicaStatusResponse> & { node: string }): journalWire.ReplicaStatusResponse {
  return { role: 'follower', epoch: 3, leader: '11', replicas: ['11', '12', '13'], highWatermark: 100, logEnd: 100, lastEpoch: 3, voter: true, logStart: 0, followers: [], ...fields };
}

const ADDRESSES = new Map([['11', 'a11'], ['12', 'a12'], ['13', 'a13']]);

function scripted(shards: ReplicaSetRecord[], answer: (address: string, shard: string) => journalWire.ReplicaStatusResponse | Error): ReplicaSetSource & { closed: number; asked: string[] } {
  const source = {
    origin: 'placement' as const,
    closed: 0,
    asked: [] as string[],
    read: async () => ({ shards, addresses: ADDRESSES }),
    status: async (address: string, shard: string) => {
      source.asked.push(`${shard}@${address}`);
      const result = answer(address, shard);
      if (result instanceof Error) throw result;
      return result;
    },
    close: () => { source.closed += 1; },
  };
  return source;
}

// Bodies are checked field by field against the documented shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function get(source: ReplicaSetSource | undefined, url: string, headers: Record<string, string> = auth): Promise<{ status: number; body: any }> {
  const app = await createAdminApp({ broker: undefined, store: undefined, node, token: TOKEN, logger, settings: () => ({}), replicaSets: replicaSetAdminRoutes(source) });
  try {
    const response = await app.inject({ method: 'GET', url, headers });
    return { status: response.statusCode, body: response.json() };
  } finally {
    await app.close();
  }
}

const unreachable = new ShardlineError('SL_REMOTE_UNAVAILABLE', 'journal 13 unreachable', {});

test('the learners of a change in progress: asked too, rows after the replicas, the leader\'s view of their progress', async () => {
  const addresses = new Map([...ADDRESSES, ['14', 'a14'], ['15', 'a15']]);
  const asked: string[] = [];
  const source: ReplicaSetSource = {
    origin: 'placement',
    read: async () => ({ shards: [{ name: 'mqtt.0', replicas: ['11', '12', '13'], leader: '11', epoch: 3, learners: ['14', '15'] }], addresses }),
    status: async (address) => {
      asked.push(address);
      if (address === 'a11') {
        return status({ node: '11', role: 'leader', highWatermark: 100, logEnd: 110, logStart: 10, followers: [
          { node: '12', fetched: 110, durable: 110, recordsBehind: 0, bytesBehind: 0 },
          { node: '13', fetched: 110, durable: 110, recordsBehind: 0, bytesBehind: 0 },
          { node: '14', fetched: 60, durable: 55, recordsBehind: 50, bytesBehind: 5000, learner: true },
          { node: '15', fetched: -1, durable: -1, recordsBehind: 111, bytesBehind: 9000, learner: true },
        ] });
      }
      if (address === 'a14') return status({ node: '14', voter: false, logEnd: 60, highWatermark: 55 });
      if (address === 'a15') throw new ShardlineError('SL_JOURNAL_SHARD_NOT_FOUND', 'no shard mqtt.0', {});
      return status({ node: address.slice(1), highWatermark: 100, logEnd: 110 });
    },
  };
  const { status: code, body } = await get(source, '/api/replication/sets');
  assert.equal(code, 200, JSON.stringify(body));
  assert.deepEqual(asked.sort(), ['a11', 'a12', 'a13', 'a14', 'a15']);
  const rows = body.items[0].replicas;
  assert.deepEqual(rows.map((row: { node: string; learner: boolean }) => [row.node, row.learner]), [['11', false], ['12', false], ['13', false], ['14', true], ['15', true]]);
  const [, , , copying, notYet] = rows;
  assert.deepEqual([copying.role, copying.voter, copying.logEnd, copying.fetched, copying.durable, copying.recordsBehind, copying.bytesBehind], ['follower', false, 60, 60, 55, 50, 5000]);
  // Before its first fetch the leader reports -1: nothing copied, the whole of the leader's log behind.
  assert.deepEqual([notYet.reachable, notYet.fetched, notYet.durable, notYet.recordsBehind, notYet.bytesBehind], [false, null, null, 100, 9000]);
  assert.match(notYet.error, /SL_JOURNAL_SHARD_NOT_FOUND/);
});

test('each replica: its own end and HW, the leader\'s view of its durable end and lag; a silent one shows why', async () => {
  const source = scripted([{ name: 'mqtt.0', replicas: ['11', '12', '13'], leader: '11', epoch: 3 }], (address) => {
    if (address === 'a11') {
      return status({ node: '11', role: 'leader', highWatermark: 95, logEnd: 100, logStart: 4, followers: [{ node: '12', fetched: 100, durable: 100, recordsBehind: 0, bytesBehind: 0 }, { node: '13', fetched: 70, durable: 65, recordsBehind: 30, bytesBehind: 3000 }] });
    }
    if (address === 'a12') return status({ node: '12', highWatermark: 95, logEnd: 100 });
    return unreachable;
  });
  const { status: code, body } = await get(source, '/api/replication/sets');
  assert.equal(code, 200, JSON.stringify(body));
  assert.equal(body.origin, 'placement');
  assert.equal(body.total, 1);
  const [set] = body.items;
  assert.deepEqual({ ...set, replicas: undefined }, { shard: 'mqtt.0', epoch: 3, leader: '11', answeringLeader: '11', leaderLogStart: 4, leaderLogEnd: 100, highWatermark: 95, replicas: undefined });
  const [leader, follower, behind] = set.replicas;
  assert.deepEqual(leader, { node: '11', address: 'a11', recordedLeader: true, learner: false, reachable: true, error: null, role: 'leader', epoch: 3, leader: '11', highWatermark: 95, logStart: 4, logEnd: 100, lastEpoch: 3, voter: true, fetched: 100, durable: 100, recordsBehind: 0, bytesBehind: 0 });
  assert.deepEqual([follower.node, follower.role, follower.recordedLeader, follower.logEnd, follower.highWatermark, follower.durable, follower.recordsBehind], ['12', 'follower', false, 100, 95, 100, 0]);
  assert.deepEqual([behind.node, behind.reachable, behind.role, behind.logEnd, behind.fetched, behind.durable, behind.recordsBehind, behind.bytesBehind], ['13', false, null, null, 70, 65, 30, 3000]);
  assert.equal(behind.error, 'SL_REMOTE_UNAVAILABLE: journal 13 unreachable');
  assert.equal(source.closed, 1, 'the source is closed with the admin server');
});

test('without an answering leader the durable ends and lags are null, not guessed', async () => {
  const source = scripted([{ name: 's', replicas: ['11', '12', '13'], leader: '11', epoch: 4 }], (address) => (address === 'a11' ? unreachable : status({ node: address.slice(1), epoch: 4, logEnd: 50, highWatermark: 40 })));
  const { body } = await get(source, '/api/replication/sets');
  const [set] = body.items;
  assert.equal(set.answeringLeader, '');
  assert.equal(set.highWatermark, null);
  for (const replica of set.replicas) assert.deepEqual([replica.fetched, replica.durable, replica.recordsBehind], [null, null, null], replica.node);
  assert.deepEqual(set.replicas.map((replica: { logEnd: number | null }) => replica.logEnd), [null, 50, 50]);
});

test('the leader of the newest epoch is the one whose view counts; a node without an address is not asked', async () => {
  const source = scripted([{ name: 's', replicas: ['11', '12', '99'], leader: '12', epoch: 6 }], (address) => (address === 'a11'
    ? status({ node: '11', role: 'leader', epoch: 5, followers: [{ node: '12', fetched: 1, durable: 1, recordsBehind: 99, bytesBehind: 1 }] })
    : status({ node: '12', role: 'leader', epoch: 6, followers: [{ node: '11', fetched: 100, durable: 90, recordsBehind: 0, bytesBehind: 0 }] })));
  const { body } = await get(source, '/api/replication/sets');
  const [set] = body.items;
  assert.equal(set.answeringLeader, '12');
  assert.deepEqual(set.replicas.map((replica: { durable: number | null }) => replica.durable), [90, 100, null]);
  assert.equal(set.replicas[2].error, 'placement knows no journal address for this node');
  assert.deepEqual(source.asked.sort(), ['s@a11', 's@a12']);
});

test('sorted by name, filtered by prefix, capped by limit with the total; the calls in flight are bounded', async () => {
  const names = Array.from({ length: 40 }, (_, i) => `mqtt.${i}`);
  let inFlight = 0;
  let most = 0;
  const shards = [...names, '$sessions'].reverse().map((name) => ({ name, replicas: ['11', '12', '13'], leader: '11', epoch: 1 }));
  const source: ReplicaSetSource = {
    origin: 'placement',
    read: async () => ({ shards, addresses: ADDRESSES }),
    status: async (address) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      return status({ node: address.slice(1) });
    },
  };
  const all = await get(source, '/api/replication/sets?limit=500');
  assert.equal(all.body.total, 41);
  assert.equal(all.body.items[0].shard, '$sessions');
  assert.ok(most > 1 && most <= REPLICA_STATUS_CONCURRENCY, `calls in flight at once: ${most}`);
  const some = await get(source, '/api/replication/sets?prefix=mqtt.&limit=3');
  assert.equal(some.body.total, 40);
  assert.deepEqual(some.body.items.map((item: { shard: string }) => item.shard), ['mqtt.0', 'mqtt.1', 'mqtt.10']);
  assert.equal((await get(source, '/api/replication/sets?limit=501')).status, 400);
});

test('refusals: a node with no source and a source that cannot read are 503; no token is 401', async () => {
  const none = await get(undefined, '/api/replication/sets');
  assert.equal(none.status, 503);
  assert.equal(none.body.error.code, 'SL_ADMIN_NOT_AVAILABLE');
  assert.match(none.body.error.message, /not in a placement group/);
  const failing: ReplicaSetSource = { origin: 'placement', read: () => Promise.reject(new Error('no quorum')), status: () => Promise.reject(new Error('unused')) };
  const down = await get(failing, '/api/replication/sets');
  assert.equal(down.status, 503);
  assert.equal(down.body.error.code, 'SL_ADMIN_NOT_AVAILABLE');
  assert.equal((await get(failing, '/api/replication/sets', {})).status, 401);
});

test('the OpenAPI document lists the route with its query and answers', async () => {
  const { status: code, body } = await get(undefined, '/docs/json', {});
  assert.equal(code, 200);
  const route = body.paths['/api/replication/sets'].get;
  assert.deepEqual(route.parameters.map((parameter: { name: string }) => parameter.name).sort(), ['limit', 'prefix']);
  assert.deepEqual(Object.keys(route.responses).sort(), ['200', '401', '503']);
  assert.equal(route.responses['200'].content['application/json'].schema.properties.items.items.properties.replicas.items.properties.durable.nullable, true);
});
