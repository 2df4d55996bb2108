// Goal: each placement command does what it says on the happy path and is refused with its
// code otherwise; retries are answered from the session table; leases expire only by command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apply, emptyState, expiredNodes, mqttDataShardNames, MQTT_NAMESPACE, restore, snapshot, type CommandResult, type JsonValue, type PlacementCommand, type PlacementState } from './index.js';

type Body = PlacementCommand extends infer C ? (C extends PlacementCommand ? Omit<C, 'clientId' | 'sequence'> : never) : never;

/** Applies bodies as one client's commands 1, 2, 3...; returns the state and every result. */
function run(bodies: Body[], from: PlacementState = emptyState(), clientId = 'c'): { state: PlacementState; results: CommandResult[] } {
  let state = from;
  const results: CommandResult[] = [];
  const start = state.sessions.get(clientId)?.sequence ?? 0;
  bodies.forEach((body, i) => {
    const out = apply(state, { ...body, clientId, sequence: start + i + 1 } as PlacementCommand);
    state = out.state;
    results.push(out.result);
  });
  return { state, results };
}

const register = (nodeId: string, at = 0, leaseMs = 1000): Body => ({ type: 'register-node', nodeId, roles: ['journal'], addresses: { journal: `127.0.0.1:${nodeId.length}` }, at, leaseMs });
const three: Body[] = [register('a'), register('b'), register('c'), { type: 'create-shard', shard: 'mqtt.0', replicas: ['a', 'b', 'c'] }];

function refusal(result: CommandResult | undefined): string | undefined {
  return result?.status === 'refused' ? result.code : undefined;
}

describe('placement state machine', () => {
  it('registers nodes, sorting roles and keeping registeredAt across a re-registration', () => {
    const { state, results } = run([
      { type: 'register-node', nodeId: 'n1', roles: ['placement', 'broker'], addresses: { broker: 'h:1', placement: 'h:2' }, at: 100, leaseMs: 50 },
      { type: 'register-node', nodeId: 'n1', roles: ['journal'], addresses: { journal: 'h:3' }, at: 200, leaseMs: 50 },
    ]);
    assert.deepEqual(results.map((r) => r.status), ['ok', 'ok']);
    assert.deepEqual(state.nodes.get('n1'), { id: 'n1', roles: ['journal'], addresses: { journal: 'h:3' }, registeredAt: 100, leaseExpiresAt: 250 });
  });

  it('keeps a broker\'s client endpoints (sorted), drops them when it registers again without, refuses them on a non-broker, and snapshots them', () => {
    const { state, results } = run([
      { type: 'register-node', nodeId: 'b1', roles: ['broker'], addresses: { broker: 'h:1883' }, endpoints: { kafka: 'b1.example:9092', amqp: 'b1.example:5672' }, at: 0, leaseMs: 50 },
      { type: 'register-node', nodeId: 'b2', roles: ['broker'], addresses: { broker: 'h:1884' }, endpoints: { kafka: 'b2.example:9092' }, at: 0, leaseMs: 50 },
      { type: 'register-node', nodeId: 'b2', roles: ['broker'], addresses: { broker: 'h:1884' }, at: 10, leaseMs: 50 },
      { type: 'register-node', nodeId: 'j', roles: ['journal'], addresses: { journal: 'h:1771' }, endpoints: { kafka: 'j:9092' }, at: 0, leaseMs: 50 },
    ]);
    assert.deepEqual(results.map(refusal), [undefined, undefined, undefined, 'invalid']);
    const b1 = state.nodes.get('b1');
    assert.deepEqual(b1?.endpoints, { amqp: 'b1.example:5672', kafka: 'b1.example:9092' });
    assert.deepEqual(Object.keys(b1?.endpoints ?? {}), ['amqp', 'kafka']);
    assert.equal(state.nodes.get('b2')?.endpoints, undefined);
    assert.equal('endpoints' in (state.nodes.get('b2') ?? {}), false);
    assert.equal(state.nodes.has('j'), false);
    assert.deepEqual(restore(snapshot(state)).nodes.get('b1'), b1);
  });

  it('refuses a registration without roles, with a repeated role or without one address per role', () => {
    const { results } = run([
      { type: 'register-node', nodeId: 'n', roles: [], addresses: {}, at: 0, leaseMs: 1 },
      { type: 'register-node', nodeId: 'n', roles: ['broker', 'broker'], addresses: { broker: 'x' }, at: 0, leaseMs: 1 },
      { type: 'register-node', nodeId: 'n', roles: ['broker'], addresses: { broker: 'x', journal: 'y' }, at: 0, leaseMs: 1 },
      { type: 'register-node', nodeId: 'n', roles: ['broker', 'journal'], addresses: { broker: 'x' }, at: 0, leaseMs: 1 },
    ]);
    assert.deepEqual(results.map(refusal), ['invalid', 'invalid', 'invalid', 'invalid']);
  });

  it('extends a lease by heartbeat, never backwards, and refuses an unknown node', () => {
    const { state, results } = run([register('a', 0, 100), { type: 'heartbeat', nodeId: 'a', at: 500, leaseMs: 100 }, { type: 'heartbeat', nodeId: 'a', at: 300, leaseMs: 100 }, { type: 'heartbeat', nodeId: 'z', at: 1, leaseMs: 1 }]);
    assert.deepEqual(results.map(refusal), [undefined, undefined, undefined, 'unknown-node']);
    assert.equal(state.nodes.get('a')?.leaseExpiresAt, 600);
    // Watchers learn of a renewal as a lease change, which address-routing views skip.
    const renewed = apply(state, { type: 'heartbeat', nodeId: 'a', at: 700, leaseMs: 100, clientId: 'c', sequence: 5 });
    assert.deepEqual(renewed.changes, [{ revision: 5, kind: 'lease', key: 'a', op: 'put' }]);
  });

  it('lists expired nodes without expiring them; expire-node is refused while a heartbeat keeps the lease live', () => {
    const { state } = run([register('b', 0, 100), register('a', 0, 100), register('c', 0, 1000)]);
    assert.deepEqual(expiredNodes(state, 99), []);
    assert.deepEqual(expiredNodes(state, 100), ['a', 'b']);
    assert.equal(state.nodes.size, 3);
    const { state: after, results } = run([{ type: 'heartbeat', nodeId: 'a', at: 90, leaseMs: 100 }, { type: 'expire-node', nodeId: 'a', at: 100 }, { type: 'expire-node', nodeId: 'b', at: 100 }, { type: 'expire-node', nodeId: 'b', at: 100 }], state);
    assert.deepEqual(results.map(refusal), [undefined, 'lease-live', undefined, 'unknown-node']);
    assert.deepEqual([...after.nodes.keys()].sort(), ['a', 'c']);
  });

  it('deregisters a node and refuses an unknown one', () => {
    const { state, results } = run([register('a'), { type: 'deregister-node', nodeId: 'a' }, { type: 'deregister-node', nodeId: 'a' }]);
    assert.deepEqual(results.map(refusal), [undefined, undefined, 'unknown-node']);
    assert.equal(state.nodes.size, 0);
  });

  it('creates a shard with no leader at epoch 0 and refuses an existing name, unknown nodes and bad replica sets', () => {
    const { state, results } = run([
      ...three,
      { type: 'create-shard', shard: 'mqtt.0', replicas: ['a'] },
      { type: 'create-shard', shard: 'mqtt.1', replicas: ['a', 'x'] },
      { type: 'create-shard', shard: 'mqtt.1', replicas: [] },
      { type: 'create-shard', shard: 'mqtt.1', replicas: ['a', 'a'] },
    ]);
    assert.deepEqual(results.slice(3).map(refusal), [undefined, 'shard-exists', 'unknown-node', 'invalid', 'invalid']);
    assert.deepEqual(state.shards.get('mqtt.0'), { name: 'mqtt.0', replicas: ['a', 'b', 'c'], leader: null, leaderEpoch: 0, state: 'active' });
    assert.equal(state.shards.has('mqtt.1'), false);
  });

  it('sets a leader by compare-and-set on the epoch, which becomes expected + 1', () => {
    const { state, results } = run([
      ...three,
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'a', expectedEpoch: 0 },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'b', expectedEpoch: 0 },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'x', expectedEpoch: 1 },
      { type: 'set-shard-leader', shard: 'nope', leader: 'a', expectedEpoch: 0 },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: null, expectedEpoch: 1 },
    ]);
    assert.deepEqual(results.slice(4).map(refusal), [undefined, 'stale-epoch', 'not-a-replica', 'unknown-shard', undefined]);
    assert.deepEqual(results[4], { status: 'ok', revision: 5, leaderEpoch: 1 });
    assert.deepEqual(results[8], { status: 'ok', revision: 9, leaderEpoch: 2 });
    assert.equal(state.shards.get('mqtt.0')?.leader, null);
    assert.equal(state.shards.get('mqtt.0')?.leaderEpoch, 2);
  });

  it('records an elected leader once into an epoch reserved with a null leader, without moving the epoch', () => {
    const { state, results } = run([
      ...three,
      { type: 'record-shard-leader', shard: 'mqtt.0', epoch: 1, leader: 'a' },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: null, expectedEpoch: 0 },
      { type: 'record-shard-leader', shard: 'mqtt.0', epoch: 1, leader: 'x' },
      { type: 'record-shard-leader', shard: 'mqtt.0', epoch: 2, leader: 'a' },
      { type: 'record-shard-leader', shard: 'mqtt.0', epoch: 1, leader: 'b' },
      { type: 'record-shard-leader', shard: 'mqtt.0', epoch: 1, leader: 'c' },
      { type: 'record-shard-leader', shard: 'nope', epoch: 1, leader: 'a' },
    ]);
    assert.deepEqual(results.slice(4).map(refusal), ['stale-epoch', undefined, 'not-a-replica', 'stale-epoch', undefined, 'stale-epoch', 'unknown-shard']);
    assert.deepEqual(results[8], { status: 'ok', revision: 9, leaderEpoch: 1 });
    assert.equal(state.shards.get('mqtt.0')?.leader, 'b');
    assert.equal(state.shards.get('mqtt.0')?.leaderEpoch, 1);
  });

  it('refuses a leader that is a replica but no longer registered', () => {
    const { results } = run([...three, { type: 'deregister-node', nodeId: 'b' }, { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'b', expectedEpoch: 0 }]);
    assert.equal(refusal(results.at(-1)), 'unknown-node');
  });

  it('changes replicas but keeps the leader among them', () => {
    const { state, results } = run([
      ...three,
      register('d'),
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'a', expectedEpoch: 0 },
      { type: 'set-replicas', shard: 'mqtt.0', replicas: ['b', 'c', 'd'] },
      { type: 'set-replicas', shard: 'mqtt.0', replicas: ['a', 'x'] },
      { type: 'set-replicas', shard: 'nope', replicas: ['a'] },
      { type: 'set-replicas', shard: 'mqtt.0', replicas: ['a', 'c', 'd'] },
    ]);
    assert.deepEqual(results.slice(6).map(refusal), ['leader-not-in-replicas', 'unknown-node', 'unknown-shard', undefined]);
    assert.deepEqual(state.shards.get('mqtt.0')?.replicas, ['a', 'c', 'd']);
    assert.equal(state.shards.get('mqtt.0')?.leaderEpoch, 1);
  });

  it('changes a replica set in two steps, serialized by the epoch: begin-reassign, then switch-replicas', () => {
    const { state, results } = run([
      ...three,
      register('d'),
      { type: 'register-node', nodeId: 'k', roles: ['broker'], addresses: { broker: 'h:2' }, at: 0, leaseMs: 1000 },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'a', expectedEpoch: 0 },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 0, replicas: ['a', 'b', 'd'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'b', 'c'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'b', 'k'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'x', 'd'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'd'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'd', 'b'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 1, replicas: ['a', 'c', 'd'] },
      { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'b', expectedEpoch: 1 },
      { type: 'switch-replicas', shard: 'mqtt.0', expectedEpoch: 1 },
      { type: 'switch-replicas', shard: 'mqtt.0', expectedEpoch: 2 },
    ]);
    // stale epoch, the same set, a broker, an unknown node, too few kept (twice), ok, busy, an
    // election meanwhile (the change survives it), the switch at the old epoch, the switch.
    assert.deepEqual(results.slice(7).map(refusal), ['stale-epoch', 'invalid', 'invalid', 'unknown-node', 'invalid', 'invalid', undefined, 'change-in-progress', undefined, 'stale-epoch', undefined]);
    const shard = state.shards.get('mqtt.0');
    assert.deepEqual(shard?.replicas, ['a', 'd', 'b']);
    assert.equal(shard?.target, undefined);
    assert.equal(shard?.leader, null);
    assert.equal(shard?.leaderEpoch, 3);
    assert.equal(shard?.state, 'active');
  });

  it('refuses a change that keeps too few replicas, and cancels one', () => {
    const { state, results } = run([
      ...three,
      register('d'),
      register('e'),
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 0, replicas: ['a', 'd', 'e'] },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 0, replicas: ['a'] },
      { type: 'cancel-reassign', shard: 'mqtt.0' },
      { type: 'begin-reassign', shard: 'mqtt.0', expectedEpoch: 0, replicas: ['a', 'b', 'c', 'd', 'e'] },
      { type: 'cancel-reassign', shard: 'mqtt.0' },
      { type: 'switch-replicas', shard: 'mqtt.0', expectedEpoch: 0 },
    ]);
    assert.deepEqual(results.slice(6).map(refusal), ['invalid', 'invalid', 'invalid', undefined, undefined, 'invalid']);
    assert.deepEqual(state.shards.get('mqtt.0'), { name: 'mqtt.0', replicas: ['a', 'b', 'c'], leader: null, leaderEpoch: 0, state: 'active' });
  });

  it('sets a shard state and refuses an unknown shard', () => {
    const { state, results } = run([...three, { type: 'set-shard-state', shard: 'mqtt.0', state: 'reassigning' }, { type: 'set-shard-state', shard: 'x', state: 'offline' }]);
    assert.deepEqual(results.slice(4).map(refusal), [undefined, 'unknown-shard']);
    assert.equal(state.shards.get('mqtt.0')?.state, 'reassigning');
  });

  it('maps a namespace to existing shards only, named like the broker names its data shards', () => {
    // The names the engine writes on disk (base/shard-names.ts): a rename would orphan data dirs.
    assert.deepEqual(mqttDataShardNames(2), ['mqtt.0', 'mqtt.1']);
    const shards = mqttDataShardNames(2);
    const { state, results } = run([
      register('a'),
      ...shards.map((shard): Body => ({ type: 'create-shard', shard, replicas: ['a'] })),
      { type: 'set-map', namespace: MQTT_NAMESPACE, shards },
      { type: 'set-map', namespace: MQTT_NAMESPACE, shards: ['mqtt.0', 'mqtt.9'] },
      { type: 'set-map', namespace: MQTT_NAMESPACE, shards: ['mqtt.0', 'mqtt.0'] },
    ]);
    assert.deepEqual(results.slice(3).map(refusal), [undefined, 'unknown-shard', 'invalid']);
    assert.deepEqual(state.maps.get(MQTT_NAMESPACE), { shards, revision: 4 });
  });

  it('sets settings and compare-and-sets them on the key revision (0 for absent)', () => {
    const { state, results } = run([
      { type: 'cas-setting', key: 'k', expectedRevision: 1, value: 1 },
      { type: 'cas-setting', key: 'k', expectedRevision: 0, value: { a: [1, 'x'] } },
      { type: 'set-setting', key: 'other', value: null },
      { type: 'cas-setting', key: 'k', expectedRevision: 0, value: 3 },
      { type: 'cas-setting', key: 'k', expectedRevision: 2, value: 'new' },
    ]);
    assert.deepEqual(results.map(refusal), ['cas-mismatch', undefined, undefined, 'cas-mismatch', undefined]);
    assert.deepEqual(state.settings.get('k'), { value: 'new', revision: 5 });
    assert.deepEqual(state.settings.get('other'), { value: null, revision: 3 });
  });

  it('answers a retry from the session table without applying it again; an older sequence is stale', () => {
    let state = run([...three, { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'a', expectedEpoch: 0 }]).state;
    const other = apply(state, { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'b', expectedEpoch: 1, clientId: 'd', sequence: 1 });
    state = other.state;
    // Client c's command 5 would now be refused (epoch 2), but it already succeeded.
    const retry = apply(state, { type: 'set-shard-leader', shard: 'mqtt.0', leader: 'a', expectedEpoch: 0, clientId: 'c', sequence: 5 });
    assert.equal(retry.duplicate, true);
    assert.deepEqual(retry.result, { status: 'ok', revision: 5, leaderEpoch: 1 });
    assert.equal(retry.state, state);
    assert.deepEqual(retry.changes, []);
    const stale = apply(state, { type: 'set-setting', key: 'k', value: 1, clientId: 'c', sequence: 2 });
    assert.equal(refusal(stale.result), 'stale-sequence');
    assert.equal(stale.state, state);
  });

  it('advances the revision once per new command, refused or not, and reports changes for successes only', () => {
    let state = emptyState();
    const a = apply(state, { ...register('a'), clientId: 'x', sequence: 1 } as PlacementCommand);
    assert.deepEqual(a.changes, [{ revision: 1, kind: 'node', key: 'a', op: 'put' }]);
    state = a.state;
    const refused = apply(state, { type: 'heartbeat', nodeId: 'q', at: 0, leaseMs: 1, clientId: 'x', sequence: 2 });
    assert.equal(refused.state.revision, 2);
    assert.deepEqual(refused.changes, []);
    assert.equal(refused.state.nodes, state.nodes);
    const gone = apply(refused.state, { type: 'deregister-node', nodeId: 'a', clientId: 'y', sequence: 7 });
    assert.deepEqual(gone.changes, [{ revision: 3, kind: 'node', key: 'a', op: 'delete' }]);
  });

  it('writes equal snapshots for equal states whatever order their records were inserted in', () => {
    const { state } = run([register('a'), register('b'), { type: 'set-setting', key: 'k', value: { z: 1, a: 2 } }]);
    const reversed: PlacementState = {
      ...state,
      nodes: new Map([...state.nodes].reverse()),
      settings: new Map([['k', { value: JSON.parse('{"a":2,"z":1}') as JsonValue, revision: 3 }]]),
    };
    assert.deepEqual(snapshot(reversed), snapshot(state));
  });

  it('restores a snapshot to an equal state, and refuses a foreign version', () => {
    const { state } = run([...three, { type: 'set-setting', key: '__proto__', value: JSON.parse('{"__proto__":1}') as JsonValue }]);
    const copy = restore(snapshot(state));
    assert.deepEqual(snapshot(copy), snapshot(state));
    assert.deepEqual(copy.settings.get('__proto__')?.value, JSON.parse('{"__proto__":1}'));
    assert.throws(() => restore(new TextEncoder().encode('{"version":2}')), { code: 'bad-snapshot' });
    assert.throws(() => restore(new Uint8Array([0xff])), { code: 'bad-snapshot' });
  });
});
