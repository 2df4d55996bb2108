// Goal: over random command sequences, the state machine keeps its promises: leader epochs
// never decrease, retries change nothing, a snapshot continues exactly like the live state,
// the revision counts new commands, and the codec round-trips and refuses garbage cleanly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { apply, decodeCommand, emptyState, encodeCommand, MalformedCommandError, restore, ROLES, SHARD_STATES, snapshot, type CommandResult, type JsonValue, type PlacementCommand, type PlacementState } from './index.js';

type Body = PlacementCommand extends infer C ? (C extends PlacementCommand ? Omit<C, 'clientId' | 'sequence'> : never) : never;

// Values as they come out of JSON (so -0 is 0; the codec reads "-0" as 0).
const json = (maxDepth: number): fc.Arbitrary<JsonValue> => fc.jsonValue({ maxDepth }).map((value) => JSON.parse(JSON.stringify(value)) as JsonValue);

// Small name pools so that random commands often hit existing records and succeed.
const nodeId = fc.constantFrom('a', 'b', 'c', 'd');
const shardName = fc.constantFrom('mqtt.0', 'mqtt.1', 's');
const key = fc.constantFrom('k1', 'k2');
const time = fc.nat(1000);
const replicas = fc.uniqueArray(nodeId, { minLength: 1, maxLength: 4 });
const roles = fc.uniqueArray(fc.constantFrom(...ROLES), { minLength: 1, maxLength: 3 });

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('register-node' as const), nodeId, roles: roles.map((r) => r), at: time, leaseMs: fc.integer({ min: 1, max: 500 }) }).map((c): Body => ({ ...c, addresses: Object.fromEntries(c.roles.map((role) => [role, `${c.nodeId}:${role}`])) })) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('heartbeat' as const), nodeId, at: time, leaseMs: fc.integer({ min: 1, max: 500 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('deregister-node' as const), nodeId }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('expire-node' as const), nodeId, at: time }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('create-shard' as const), shard: shardName, replicas }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('set-shard-leader' as const), shard: shardName, leader: fc.option(nodeId, { nil: null }), expectedEpoch: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('set-replicas' as const), shard: shardName, replicas }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('set-shard-state' as const), shard: shardName, state: fc.constantFrom(...SHARD_STATES) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('set-map' as const), namespace: fc.constantFrom('mqtt', 'kafka'), shards: fc.uniqueArray(shardName, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('set-setting' as const), key, value: json(2) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('cas-setting' as const), key, expectedRevision: fc.nat(20), value: json(2) }) },
);

// Most runs start from registered nodes and two shards, or leader changes would rarely succeed.
const setup: Body[] = [
  ...['a', 'b', 'c', 'd'].map((id): Body => ({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: `${id}:1` }, at: 0, leaseMs: 500 })),
  { type: 'create-shard', shard: 'mqtt.0', replicas: ['a', 'b', 'c'] },
  { type: 'create-shard', shard: 'mqtt.1', replicas: ['b', 'c', 'd'] },
];

/** Commands from three clients, each numbering its own 1, 2, 3... */
const commands: fc.Arbitrary<PlacementCommand[]> = fc.tuple(fc.boolean(), fc.array(fc.tuple(fc.constantFrom('x', 'y', 'z'), body), { maxLength: 80, size: 'max' })).map(([prepared, random]) => {
  const next = new Map<string, number>();
  const pairs: [string, Body][] = [...(prepared ? setup.map((b): [string, Body] => ['x', b]) : []), ...random];
  return pairs.map(([clientId, b]) => {
    const sequence = (next.get(clientId) ?? 0) + 1;
    next.set(clientId, sequence);
    return { ...b, clientId, sequence } as PlacementCommand;
  });
});

function applyAll(from: PlacementState, list: readonly PlacementCommand[]): { state: PlacementState; results: CommandResult[] } {
  let state = from;
  const results = list.map((command) => {
    const out = apply(state, command);
    state = out.state;
    return out.result;
  });
  return { state, results };
}

const RUNS = 300;

describe('placement state machine properties', () => {
  it('never lowers a leader epoch, and a leader change moves it by exactly one', () => {
    fc.assert(
      fc.property(commands, (list) => {
        let state = emptyState();
        for (const command of list) {
          const out = apply(state, command);
          for (const [name, shard] of state.shards) {
            const after = out.state.shards.get(name);
            assert.ok(after !== undefined && after.leaderEpoch >= shard.leaderEpoch, `epoch of ${name} went down`);
          }
          if (command.type === 'set-shard-leader' && out.result.status === 'ok' && !out.duplicate) {
            assert.equal(out.state.shards.get(command.shard)?.leaderEpoch, command.expectedEpoch + 1);
            assert.equal(out.result.leaderEpoch, command.expectedEpoch + 1);
          }
          state = out.state;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('applies a sequence with random retries like the sequence without them', () => {
    // A retry is a copy of an earlier command inserted later, as a client resending through
    // another node, or a Raft entry committed twice, would produce.
    const withRetries = commands.chain((list) =>
      fc.array(fc.tuple(fc.nat(Math.max(0, list.length - 1)), fc.nat(list.length)), { maxLength: list.length === 0 ? 0 : 30 }).map((retries) => ({ list, retries })),
    );
    fc.assert(
      fc.property(withRetries, ({ list, retries }) => {
        const direct = applyAll(emptyState(), list);
        // retries: [which command, how many originals after it the copy lands]
        const inserts = retries.map(([which, offset]) => ({ which, at: Math.min(list.length, which + 1 + offset) }));
        let state = emptyState();
        const results: CommandResult[] = [];
        for (let i = 0; i <= list.length; i++) {
          for (const retry of inserts.filter((r) => r.at === i)) {
            const original = list[retry.which]!;
            const out = apply(state, original);
            assert.equal(out.duplicate, true);
            assert.equal(out.state, state);
            const latest = state.sessions.get(original.clientId)?.sequence === original.sequence;
            if (latest) assert.deepEqual(out.result, results[retry.which]);
            else assert.equal(out.result.status === 'refused' && out.result.code, 'stale-sequence');
          }
          if (i < list.length) {
            const out = apply(state, list[i]!);
            state = out.state;
            results.push(out.result);
          }
        }
        assert.deepEqual(results, direct.results);
        assert.deepEqual(snapshot(state), snapshot(direct.state));
      }),
      { numRuns: RUNS },
    );
  });

  it('continues from snapshot and restore exactly as from the live state', () => {
    fc.assert(
      fc.property(commands, fc.nat(), (list, cut) => {
        const split = list.length === 0 ? 0 : cut % (list.length + 1);
        const head = applyAll(emptyState(), list.slice(0, split));
        const restored = restore(snapshot(head.state));
        assert.deepEqual(restored, head.state);
        const live = applyAll(head.state, list.slice(split));
        // The restored replica reads its commands from entry bytes, as a follower would.
        const resumed = applyAll(restored, list.slice(split).map((command) => decodeCommand(encodeCommand(command))));
        assert.deepEqual(resumed.results, live.results);
        assert.deepEqual(snapshot(resumed.state), snapshot(live.state));
        // Retries of the head are still recognised after the restore.
        for (const command of list.slice(0, split)) assert.equal(apply(restored, command).duplicate, true);
      }),
      { numRuns: RUNS },
    );
  });

  it('advances the revision by one per new command (applied or refused) and not for a retry', () => {
    fc.assert(
      fc.property(commands, fc.array(fc.nat(), { maxLength: 10 }), (list, repeats) => {
        let state = emptyState();
        const seen: PlacementCommand[] = [];
        const steps = [...list.map((command) => ({ command, retry: false }))];
        for (const r of repeats) if (list.length > 0) steps.splice(r % (steps.length + 1), 0, { command: list[r % list.length]!, retry: true });
        for (const { command } of steps) {
          const isNew = !seen.includes(command) && (state.sessions.get(command.clientId)?.sequence ?? 0) < command.sequence;
          const out = apply(state, command);
          assert.equal(out.duplicate, !isNew);
          assert.equal(out.state.revision, state.revision + (isNew ? 1 : 0));
          for (const change of out.changes) assert.equal(change.revision, out.state.revision);
          if (isNew) {
            seen.push(command);
            assert.equal(out.result.revision, out.state.revision);
            if (out.result.status === 'refused') {
              assert.deepEqual(out.changes, []);
              for (const part of ['nodes', 'shards', 'maps', 'settings'] as const) assert.equal(out.state[part], state[part]);
            } else assert.ok(out.changes.length > 0);
          }
          state = out.state;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('placement command codec', () => {
  const anyName = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
  const anyBody: fc.Arbitrary<Body> = fc.oneof(
    body,
    fc.record({ type: fc.constant('set-setting' as const), key: anyName, value: json(5) }),
    fc.record({ type: fc.constant('create-shard' as const), shard: anyName, replicas: fc.array(anyName, { maxLength: 5 }) }),
    fc.record({ type: fc.constant('set-shard-leader' as const), shard: anyName, leader: fc.option(anyName, { nil: null }), expectedEpoch: fc.nat() }),
  );
  const anyCommand = fc.tuple(anyName, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), anyBody).map(([clientId, sequence, b]) => ({ ...b, clientId, sequence }) as PlacementCommand);

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(anyCommand, (command) => {
        assert.deepEqual(decodeCommand(encodeCommand(command)), command);
      }),
      { numRuns: 500 },
    );
  });

  function decodesOrRefuses(bytes: Uint8Array): void {
    try {
      const command = decodeCommand(bytes);
      // Whatever passes must be a command the codec would write.
      assert.deepEqual(decodeCommand(encodeCommand(command)), command);
    } catch (error) {
      if (!(error instanceof MalformedCommandError)) throw error;
      assert.equal(error.code, 'malformed-command');
    }
  }

  it('refuses random bytes, random JSON and damaged commands only with MalformedCommandError', () => {
    const encoder = new TextEncoder();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodesOrRefuses), { numRuns: 500 });
    fc.assert(fc.property(fc.jsonValue(), (value) => decodesOrRefuses(encoder.encode(JSON.stringify(value)))), { numRuns: 500 });
    // A valid command with one field replaced, removed or added.
    const damaged = fc.tuple(anyCommand, fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), fc.boolean()).map(([command, field, value, remove]) => {
      const object: Record<string, unknown> = { ...command };
      const fields = Object.keys(object);
      const target = fields[field.length % fields.length]!;
      if (remove) delete object[field.length % 2 === 0 ? target : field];
      else object[field.length % 2 === 0 ? target : field] = value;
      return encoder.encode(JSON.stringify(object));
    });
    fc.assert(fc.property(damaged, decodesOrRefuses), { numRuns: 1000 });
  });

  it('names what is wrong', () => {
    const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
    assert.throws(() => decodeCommand(bytes('{')), /not JSON/);
    assert.throws(() => decodeCommand(new Uint8Array([0xc3, 0x28])), /not UTF-8/);
    assert.throws(() => decodeCommand(bytes('{"type":"launch"}')), /type must be one of/);
    assert.throws(() => decodeCommand(bytes('{"type":"heartbeat","clientId":"c","sequence":1,"nodeId":"n","at":1}')), /heartbeat lacks leaseMs/);
    assert.throws(() => decodeCommand(bytes('{"type":"deregister-node","clientId":"c","sequence":0,"nodeId":"n"}')), /sequence must be an integer >= 1/);
    assert.throws(() => decodeCommand(bytes('{"type":"deregister-node","clientId":"c","sequence":1,"nodeId":"n","extra":1}')), /unknown field "extra"/);
    assert.throws(() => decodeCommand(new Uint8Array(2 << 20)), /bytes, limit/);
    assert.throws(() => decodeCommand(bytes('{"type":"register-node","clientId":"c","sequence":1,"nodeId":"n","roles":"broker","addresses":{},"at":0,"leaseMs":1}')), /roles must be a list/);
    const registration = '"type":"register-node","clientId":"c","sequence":1,"nodeId":"n","roles":["broker"],"addresses":{"broker":"h:1"},"at":0,"leaseMs":1';
    assert.deepEqual(decodeCommand(bytes(`{${registration},"endpoints":{"kafka":"h:9092"}}`)), { type: 'register-node', clientId: 'c', sequence: 1, nodeId: 'n', roles: ['broker'], addresses: { broker: 'h:1' }, endpoints: { kafka: 'h:9092' }, at: 0, leaseMs: 1 });
    assert.equal('endpoints' in decodeCommand(bytes(`{${registration}}`)), false);
    assert.throws(() => decodeCommand(bytes(`{${registration},"endpoints":["h:9092"]}`)), /endpoints must be an object/);
    assert.throws(() => decodeCommand(bytes(`{${registration},"endpoints":{"Kafka!":"h:9092"}}`)), /endpoints key/);
    assert.throws(() => decodeCommand(bytes(`{${registration},"endpoints":{"kafka":""}}`)), /endpoints.kafka must be a non-empty string/);
    assert.throws(() => decodeCommand(bytes(`{${registration},"endpoints":{${Array.from({ length: 17 }, (_, i) => `"e${i}":"h:1"`).join(',')}}}`)), /more than 16 entries/);
    // Nesting is bounded, so a hostile value cannot exhaust the stack of a recursive walk.
    const deep = 400_000;
    assert.throws(() => decodeCommand(bytes(`{"type":"set-setting","clientId":"c","sequence":1,"key":"k","value":${'['.repeat(deep)}${']'.repeat(deep)}}`)), /nests deeper than 32/);
    assert.throws(() => encodeCommand({ type: 'set-setting', clientId: 'c', sequence: 1, key: 'k', value: Number.NaN }), MalformedCommandError);
    const negativeZero = decodeCommand(bytes('{"type":"set-setting","clientId":"c","sequence":1,"key":"k","value":[-0]}'));
    assert.ok(negativeZero.type === 'set-setting' && Array.isArray(negativeZero.value) && Object.is(negativeZero.value[0], 0));
  });
});
