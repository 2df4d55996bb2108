// The linearizability checker.
//
// Goal: it accepts every history a correct (atomic) key-value store can produce, however the
// operations overlap and whichever never completed, and rejects the classic anomalies (stale read
// after a completed write, a lost write, compare-and-set that two clients both win or that fails
// on a matching value), naming the key and the operation that cannot be placed; it stays fast on
// histories of thousands of operations and gives up with 'unknown' rather than hang.
// Method: hand-written histories for the anomalies; a fast-check property runs a sequential
// store, gives each operation a random interval around the instant it took effect (some never
// complete; of those, some took effect and some did not) and checks the checker accepts, then
// plants a stale read and checks it rejects. Replay a failure with FC_SEED (and FC_PATH).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkLinearizability, type KvOperation } from './linearizability.js';
import { replay } from '../../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const read = (client: string, key: string, output: string | null, invokedAt: number, completedAt: number): KvOperation => ({ client, op: 'read', input: { key }, output, invokedAt, completedAt });
const write = (client: string, key: string, value: string, invokedAt: number, completedAt: number): KvOperation => ({ client, op: 'write', input: { key, value }, invokedAt, completedAt });
const cas = (client: string, key: string, expected: string | null, value: string, output: boolean | undefined, invokedAt: number, completedAt: number): KvOperation => ({ client, op: 'cas', input: { key, expected, value }, output, invokedAt, completedAt });

function assertViolation(history: KvOperation[], key: string, stuckPattern: RegExp): string {
  const result = checkLinearizability(history);
  assert.equal(result.ok, false, 'expected a violation');
  assert.ok(!result.ok && result.verdict === 'violation', JSON.stringify(result));
  assert.equal(result.key, key);
  assert.match(result.explanation, stuckPattern);
  return result.explanation;
}

test('accepts sequential, concurrent and overlapping histories', () => {
  assert.equal(checkLinearizability([]).ok, true);
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 1), read('c2', 'x', '1', 2, 3)]).ok, true);
  // A read overlapping a write may see either value, and two overlapping reads may disagree.
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 10), read('c2', 'x', null, 1, 2), read('c3', 'x', '1', 3, 4), read('c4', 'x', '1', 5, 12)]).ok, true);
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 10), read('c2', 'x', '1', 1, 2), read('c3', 'x', null, 0, 3)]).ok, true);
  // Two overlapping writes: later reads agree on whichever came last.
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 5), write('c2', 'x', '2', 1, 6), read('c3', 'x', '1', 7, 8), read('c3', 'x', '1', 9, 10)]).ok, true);
  // A call and a return at the same tick are concurrent.
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 5), read('c2', 'x', null, 5, 6)]).ok, true);
  // Keys are independent.
  assert.equal(checkLinearizability([write('c1', 'x', '1', 0, 1), write('c1', 'y', '2', 2, 3), read('c2', 'x', '1', 4, 5), read('c2', 'y', '2', 4, 5)]).ok, true);
  assert.equal(checkLinearizability([read('c1', 'x', 'init', 0, 1)], { initialValue: () => 'init' }).ok, true);
});

test('accepts pending operations linearized anywhere after their call, or never', () => {
  const pendingWrite = write('c1', 'x', '1', 0, Infinity);
  assert.equal(checkLinearizability([pendingWrite, read('c2', 'x', null, 5, 6)]).ok, true);
  assert.equal(checkLinearizability([pendingWrite, read('c2', 'x', '1', 5, 6)]).ok, true);
  assert.equal(checkLinearizability([pendingWrite, read('c2', 'x', null, 5, 6), read('c2', 'x', '1', 100, 101)]).ok, true);
  // Not before its call.
  assertViolation([read('c2', 'x', '1', 0, 1), write('c1', 'x', '1', 2, Infinity)], 'x', /read\("x"\) → "1"/);
  // Once it is seen it cannot be unseen.
  assertViolation([pendingWrite, read('c2', 'x', '1', 5, 6), read('c2', 'x', null, 7, 8)], 'x', /read\("x"\) → null \[7, 8\]/);
  // A pending compare-and-set does what the model says if it took effect.
  const base = [write('c1', 'x', 'a', 0, 1), cas('c2', 'x', 'a', 'b', undefined, 2, Infinity)];
  assert.equal(checkLinearizability([...base, read('c3', 'x', 'b', 5, 6)]).ok, true);
  assert.equal(checkLinearizability([...base, read('c3', 'x', 'a', 5, 6)]).ok, true);
  assertViolation([write('c1', 'x', 'z', 0, 1), cas('c2', 'x', 'a', 'b', undefined, 2, Infinity), read('c3', 'x', 'b', 5, 6)], 'x', /read\("x"\) → "b"/);
  // A pending read constrains nothing.
  assert.equal(checkLinearizability([read('c1', 'x', 'nonsense', 0, Infinity)]).ok, true);
});

test('rejects a stale read after a completed write, and names it', () => {
  const explanation = assertViolation([write('c1', 'x', '1', 0, 1), read('c2', 'x', null, 2, 3)], 'x', /c2 read\("x"\) → null \[2, 3\] cannot take effect/);
  assert.match(explanation, /c1 write\("x", "1"\) \[0, 1\]/);
  assertViolation([write('c1', 'x', '1', 0, 10), read('c2', 'x', '1', 1, 2), read('c3', 'x', null, 3, 4)], 'x', /read\("x"\) → null \[3, 4\]/);
});

test('rejects a lost write and a value nobody wrote', () => {
  assertViolation([write('c1', 'x', '1', 0, 1), write('c2', 'x', '2', 2, 3), read('c3', 'x', '1', 4, 5)], 'x', /read\("x"\) → "1" \[4, 5\]/);
  assertViolation([write('c1', 'x', '1', 0, 1), read('c3', 'x', '7', 4, 5)], 'x', /"7"/);
});

test('rejects compare-and-set anomalies', () => {
  // Both clients win the same compare-and-set.
  assertViolation([cas('c1', 'x', null, 'a', true, 0, 5), cas('c2', 'x', null, 'b', true, 1, 6)], 'x', /cas/);
  // It fails although the value matched and nothing else ran.
  assertViolation([write('c1', 'x', '1', 0, 1), cas('c2', 'x', '1', '2', false, 2, 3)], 'x', /cas\("x", "1" → "2"\) → false/);
  // It succeeds but a later read sees the old value.
  assertViolation([write('c1', 'x', '1', 0, 1), cas('c2', 'x', '1', '2', true, 2, 3), read('c3', 'x', '1', 4, 5)], 'x', /read\("x"\) → "1" \[4, 5\]/);
  // It succeeds against a value that was never there.
  assertViolation([write('c1', 'x', '1', 0, 1), cas('c2', 'x', '9', '2', true, 2, 3)], 'x', /cas/);
  // Accepted: two racing compare-and-sets, one wins, and the loser saw the winner's value.
  assert.equal(checkLinearizability([cas('c1', 'x', null, 'a', true, 0, 5), cas('c2', 'x', null, 'b', false, 1, 6), read('c3', 'x', 'a', 7, 8)]).ok, true);
});

test('reports the key and the shortest failing prefix among many keys', () => {
  const history: KvOperation[] = [];
  for (let i = 0; i < 50; i++) history.push(write('c1', `k${i}`, `${i}`, i, i + 1), read('c2', `k${i}`, `${i}`, i + 2, i + 3));
  history.push(write('c1', 'k7', 'late', 100, 101), read('c2', 'k7', '7', 102, 103), read('c2', 'k7', 'late', 200, 201));
  const explanation = assertViolation(history, 'k7', /not linearizable by time 103/);
  assert.match(explanation, /read\("k7"\) → "7" \[102, 103\]/);
});

test('a search past the budget gives "unknown", not a hang or a wrong verdict', () => {
  // Many overlapping writes of distinct values and one read that sees none of them: the search
  // has to try orderings before it can refuse.
  const history: KvOperation[] = [];
  for (let i = 0; i < 40; i++) history.push(write(`c${i}`, 'x', `${i}`, 0, 100));
  history.push(read('r', 'x', 'never', 0, 100));
  const result = checkLinearizability(history, { stepBudget: 1_000 });
  assert.ok(!result.ok && result.verdict === 'unknown', JSON.stringify(result));
  assert.equal(result.key, 'x');
  assert.throws(() => checkLinearizability([write('c1', 'x', '1', 5, 4)]), RangeError);
});

interface Planned {
  client: number;
  kind: 'read' | 'write' | 'cas';
  key: string;
  expectCurrent: boolean;
  expectedPick: number;
  pending: boolean;
  tookEffect: boolean;
  before: number;
  after: number;
}

const plannedArb: fc.Arbitrary<Planned> = fc.record({
  client: fc.integer({ min: 0, max: 4 }),
  kind: fc.constantFrom<Planned['kind']>('read', 'read', 'write', 'cas'),
  key: fc.constantFrom('a', 'b', 'c'),
  expectCurrent: fc.boolean(),
  expectedPick: fc.nat(),
  // About one operation in eight never completes.
  pending: fc.integer({ min: 0, max: 7 }).map((draw) => draw === 0),
  tookEffect: fc.boolean(),
  before: fc.integer({ min: 0, max: 40 }),
  after: fc.integer({ min: 0, max: 40 }),
});

/**
 * Runs the plan against a sequential store: operation i takes effect at instant 10*i, inside a
 * random interval around it. Every written value is unique, so a planted stale read can be made
 * provably impossible. A pending operation either took effect (its effect is applied) or not.
 */
function execute(plan: readonly Planned[]): KvOperation[] {
  const store = new Map<string, string>();
  return plan.map((step, i) => {
    const at = 10 * i + 100;
    const invokedAt = at - step.before;
    const completedAt = step.pending ? Infinity : at + step.after;
    const client = `c${step.client}`;
    const current = store.get(step.key) ?? null;
    const applies = !step.pending || step.tookEffect;
    const value = `v${i}`;
    if (step.kind === 'read') return read(client, step.key, current, invokedAt, completedAt);
    if (step.kind === 'write') {
      if (applies) store.set(step.key, value);
      return write(client, step.key, value, invokedAt, completedAt);
    }
    const expected = step.expectCurrent ? current : `v${step.expectedPick % (i + 1)}`;
    const ok = expected === current;
    if (ok && applies) store.set(step.key, value);
    return cas(client, step.key, expected, value, step.pending ? undefined : ok, invokedAt, completedAt);
  });
}

const writtenValue = (operation: KvOperation): string | undefined => {
  if (operation.completedAt === Infinity) return undefined;
  if (operation.op === 'write') return operation.input.value;
  if (operation.op === 'cas' && operation.output === true) return operation.input.value;
  return undefined;
};

/**
 * Makes one read provably stale: it returns the value of a completed write W1 although another
 * completed write W2 to the key started after W1 ended and ended before the read began. Values are
 * unique, so nothing else could have put W1's value back. Falls back to appending such a triple.
 */
function plantStaleRead(history: KvOperation[]): KvOperation[] {
  for (let r = 0; r < history.length; r++) {
    const reader = history[r] as KvOperation;
    if (reader.op !== 'read' || reader.completedAt === Infinity) continue;
    for (const w2 of history) {
      if (writtenValue(w2) === undefined || w2.input.key !== reader.input.key || w2.completedAt >= reader.invokedAt) continue;
      const w1 = history.find((candidate) => writtenValue(candidate) !== undefined && candidate.input.key === reader.input.key && candidate.completedAt < w2.invokedAt);
      if (w1 === undefined) continue;
      const planted = history.slice();
      planted[r] = { ...reader, output: writtenValue(w1) as string };
      return planted;
    }
  }
  const end = 100_000;
  return [...history, write('w1', 'z', 'old', end, end + 1), write('w2', 'z', 'new', end + 2, end + 3), read('r', 'z', 'old', end + 4, end + 5)];
}

test('property: histories of an atomic store with random overlapping intervals are linearizable', () => {
  fc.assert(
    fc.property(fc.array(plannedArb, { minLength: 0, maxLength: 120, size: 'max' }), (plan) => {
      const result = checkLinearizability(execute(plan));
      assert.ok(result.ok, JSON.stringify(result));
    }),
    { numRuns: 150, ...replay },
  );
});

test('property: the same histories with a planted stale read are rejected', () => {
  fc.assert(
    fc.property(fc.array(plannedArb, { minLength: 0, maxLength: 120, size: 'max' }), (plan) => {
      const result = checkLinearizability(plantStaleRead(execute(plan)));
      assert.ok(!result.ok && result.verdict === 'violation', JSON.stringify(result));
    }),
    { numRuns: 150, ...replay },
  );
});

test('a history of 5,000 operations over 5 clients is checked in well under the time of a run', (t) => {
  const rng = fc.sample(fc.array(plannedArb.map((step) => ({ ...step, key: `k${step.expectedPick % 10}` })), { minLength: 5_000, maxLength: 5_000 }), { numRuns: 1, seed: 12 })[0] as Planned[];
  const history = execute(rng);
  const started = performance.now();
  const result = checkLinearizability(history);
  const elapsedMs = performance.now() - started;
  assert.ok(result.ok, JSON.stringify(result));
  t.diagnostic(`10 keys: ${elapsedMs.toFixed(0)} ms`);
  // Generous bounds: the test shares cores with others; typical times are a few hundred ms.
  assert.ok(elapsedMs < 4_000, `took ${elapsedMs} ms`);
  // One hot key, all 5,000 operations on it.
  const hot = execute(rng.map((step) => ({ ...step, key: 'hot' })));
  const hotStarted = performance.now();
  assert.ok(checkLinearizability(hot).ok);
  const hotMs = performance.now() - hotStarted;
  t.diagnostic(`1 hot key: ${hotMs.toFixed(0)} ms`);
  assert.ok(hotMs < 4_000, `hot key took ${hotMs} ms`);
});

/** The definition, by enumeration: some order of the completed operations and some of the pending ones is legal and respects real time. */
function bruteForceLinearizable(history: readonly KvOperation[]): boolean {
  const operations = history.filter((operation) => !(operation.op === 'read' && operation.completedAt === Infinity));
  const used = new Array<boolean>(operations.length).fill(false);
  const states = new Map<string, string | null>();
  const search = (placed: number[]): boolean => {
    const completedLeft = operations.some((operation, i) => !used[i] && operation.completedAt !== Infinity);
    if (!completedLeft) return true;
    for (let i = 0; i < operations.length; i++) {
      if (used[i]) continue;
      const operation = operations[i]!;
      // Real time: nothing still unplaced may have returned before this one was called.
      if (operations.some((other, j) => !used[j] && j !== i && other.completedAt < operation.invokedAt)) continue;
      const key = operation.input.key;
      const current = states.get(key) ?? null;
      let next = current;
      if (operation.op === 'read') {
        if (operation.output !== current) continue;
      } else if (operation.op === 'write') {
        next = operation.input.value;
      } else {
        const matches = current === operation.input.expected;
        if (operation.completedAt !== Infinity && operation.output !== matches) continue;
        if (matches) next = operation.input.value;
      }
      used[i] = true;
      states.set(key, next);
      const found = search([...placed, i]);
      used[i] = false;
      states.set(key, current);
      if (found) return true;
    }
    return false;
  };
  return search([]);
}

const smallOperationArb: fc.Arbitrary<KvOperation> = fc
  .record({
    client: fc.constantFrom('c1', 'c2', 'c3'),
    kind: fc.constantFrom('read', 'write', 'cas'),
    key: fc.constantFrom('x', 'y'),
    value: fc.constantFrom('1', '2'),
    output: fc.constantFrom<string | null>(null, '1', '2'),
    expected: fc.constantFrom<string | null>(null, '1', '2'),
    ok: fc.boolean(),
    invokedAt: fc.integer({ min: 0, max: 12 }),
    duration: fc.integer({ min: 0, max: 6 }),
    pending: fc.integer({ min: 0, max: 4 }).map((draw) => draw === 0),
  })
  .map(({ client, kind, key, value, output, expected, ok, invokedAt, duration, pending }): KvOperation => {
    const completedAt = pending ? Infinity : invokedAt + duration;
    if (kind === 'read') return read(client, key, output, invokedAt, completedAt);
    if (kind === 'write') return write(client, key, value, invokedAt, completedAt);
    return cas(client, key, expected, value, pending ? undefined : ok, invokedAt, completedAt);
  });

test('property: on small random histories the checker agrees with enumeration of every order', () => {
  let rejected = 0;
  fc.assert(
    fc.property(fc.array(smallOperationArb, { minLength: 1, maxLength: 7, size: 'max' }), (history) => {
      const expected = bruteForceLinearizable(history);
      const result = checkLinearizability(history);
      if (!expected) rejected++;
      assert.equal(result.ok, expected, JSON.stringify(result));
      if (!result.ok) assert.equal(result.verdict, 'violation');
    }),
    { numRuns: 1_500, ...replay },
  );
  // The generator must produce both verdicts for the comparison to mean something.
  assert.ok(rejected > 100, `only ${rejected} non-linearizable histories generated`);
});
