// Properties of the subscription trie (engine/routing/topic-trie.ts) against a naive matcher.
//
// Goal: for any set of subscriptions and any topic name, the trie returns exactly the
// (filter, subscriber) pairs a level-by-level reading of MQTT section 4.7 says match, each once;
// after any sequence of adds and removes the trie holds exactly the model's pairs, answers add
// and remove as the model does, and keeps only the nodes the remaining filters need (none once
// everything is removed).
// Method: names and filters are drawn from a small alphabet of levels ('', '$SYS', '$', 'a',
// 'b', and in filters '+' and a trailing '#') so that matches, empty levels and '$' names are
// frequent. The reference matcher below is written from the spec, not from the trie: it walks a
// filter and a name side by side. A Map keyed by "filter U+0000 subscriber" is the model
// (U+0000 cannot occur in a valid filter). A failure prints the seed and the shrunk
// counterexample; set FC_SEED (and FC_PATH) to replay it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkTopicFilter, checkTopicName, TopicTrie } from '../engine/index.js';
import { replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const NAME_LEVELS = ['', '$SYS', '$', 'a', 'b'];
const FILTER_LEVELS = [...NAME_LEVELS, '+'];
const SUBSCRIBERS = ['x', 'y', 'z'];

const nameArb = fc
  .array(fc.constantFrom(...NAME_LEVELS), { minLength: 1, maxLength: 5 })
  .map((levels) => levels.join('/'))
  .filter((name) => name.length > 0);

const filterArb = fc
  .tuple(fc.array(fc.constantFrom(...FILTER_LEVELS), { maxLength: 4 }), fc.boolean())
  .map(([levels, multiLevel]) => (multiLevel ? [...levels, '#'] : levels).join('/'))
  .filter((filter) => filter.length > 0);

const subscriberArb = fc.constantFrom(...SUBSCRIBERS);

const subscriptionArb = fc.record({ filter: filterArb, subscriberId: subscriberArb, value: fc.nat(2) });

type Model = Map<string, { filter: string; subscriberId: string; value: number }>;

/** MQTT 4.7, read literally: compare level by level. */
function naiveMatches(filter: string, name: string): boolean {
  const filterLevels = filter.split('/');
  const nameLevels = name.split('/');
  // MQTT-4.7.2-1: a filter starting with a wildcard does not match a name starting with '$'.
  if (name.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (let i = 0; i < filterLevels.length; i += 1) {
    // '#' stands for the rest of the name: the parent level alone, or any levels below it.
    if (filterLevels[i] === '#') return true;
    if (i >= nameLevels.length) return false;
    // '+' stands for exactly one level, whatever it holds (even nothing).
    if (filterLevels[i] !== '+' && filterLevels[i] !== nameLevels[i]) return false;
  }
  return filterLevels.length === nameLevels.length;
}

function keyOf(filter: string, subscriberId: string): string {
  return `${filter}\u0000${subscriberId}`;
}

function expectedMatches(model: Model, name: string): string[] {
  return [...model.values()]
    .filter((entry) => naiveMatches(entry.filter, name))
    .map((entry) => `${entry.filter} ${entry.subscriberId} ${entry.value}`)
    .sort();
}

function actualMatches(trie: TopicTrie<number>, name: string): string[] {
  return trie.match(name).map((match) => `${match.filter} ${match.subscriberId} ${match.value}`).sort();
}

/** The nodes a trie needs for these filters: one per distinct non-empty level prefix. */
function prefixCount(model: Model): number {
  const prefixes = new Set<string>();
  for (const { filter } of model.values()) {
    const levels = filter.split('/');
    // Levels are joined with U+0000 so that a prefix differs from a filter with an empty level.
    for (let depth = 1; depth <= levels.length; depth += 1) prefixes.add(levels.slice(0, depth).join('\u0000'));
  }
  return prefixes.size;
}

test('the generators produce valid names and filters', () => {
  fc.assert(
    fc.property(nameArb, filterArb, (name, filter) => {
      assert.ok(checkTopicName(name).ok, name);
      assert.ok(checkTopicFilter(filter).ok, filter);
    }),
    { numRuns: 500, ...replay },
  );
});

test('match equals the naive matcher over the same subscriptions', () => {
  fc.assert(
    fc.property(fc.array(subscriptionArb, { maxLength: 30 }), fc.array(nameArb, { minLength: 1, maxLength: 10 }), (subscriptions, names) => {
      const trie = new TopicTrie<number>();
      const model: Model = new Map();
      for (const subscription of subscriptions) {
        trie.add(subscription.filter, subscription.subscriberId, subscription.value);
        model.set(keyOf(subscription.filter, subscription.subscriberId), subscription);
      }
      for (const name of names) assert.deepEqual(actualMatches(trie, name), expectedMatches(model, name), `topic ${JSON.stringify(name)}`);
    }),
    { numRuns: 1000, ...replay },
  );
});

type Operation =
  | { kind: 'add'; filter: string; subscriberId: string; value: number }
  | { kind: 'remove'; filter: string; subscriberId: string }
  // Removes the model's entry at this index (modulo its size), so removes often hit.
  | { kind: 'remove-held'; index: number };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 3, arbitrary: subscriptionArb.map((subscription) => ({ kind: 'add' as const, ...subscription })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), filter: filterArb, subscriberId: subscriberArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove-held' as const), index: fc.nat() }) },
);

function apply(trie: TopicTrie<number>, model: Model, operation: Operation): void {
  if (operation.kind === 'add') {
    const key = keyOf(operation.filter, operation.subscriberId);
    assert.equal(trie.add(operation.filter, operation.subscriberId, operation.value), !model.has(key), `add ${key}`);
    model.set(key, operation);
    return;
  }
  let filter: string;
  let subscriberId: string;
  if (operation.kind === 'remove') ({ filter, subscriberId } = operation);
  else {
    const held = [...model.values()][operation.index % Math.max(model.size, 1)];
    if (held === undefined) return;
    ({ filter, subscriberId } = held);
  }
  const key = keyOf(filter, subscriberId);
  assert.equal(trie.remove(filter, subscriberId), model.has(key), `remove ${key}`);
  model.delete(key);
}

test('adds and removes keep the trie equal to the model and pruned; removing everything leaves no nodes', () => {
  fc.assert(
    fc.property(fc.array(operationArb, { maxLength: 60 }), nameArb, fc.array(fc.nat(), { maxLength: 60 }), (operations, name, removalOrder) => {
      const trie = new TopicTrie<number>();
      const model: Model = new Map();
      for (const operation of operations) {
        apply(trie, model, operation);
        assert.equal(trie.size, model.size, 'size');
        assert.equal(trie.nodeCount(), prefixCount(model), 'nodeCount: nodes the filters need, no more');
      }
      assert.deepEqual(actualMatches(trie, name), expectedMatches(model, name), `topic ${JSON.stringify(name)}`);
      // Remove what is left in a drawn order, then check nothing remains.
      let step = 0;
      while (model.size > 0) {
        apply(trie, model, { kind: 'remove-held', index: removalOrder[step % Math.max(removalOrder.length, 1)] ?? 0 });
        step += 1;
        assert.equal(trie.nodeCount(), prefixCount(model), 'nodeCount while emptying');
      }
      assert.equal(trie.size, 0);
      assert.equal(trie.nodeCount(), 0);
      assert.deepEqual(trie.match(name), []);
    }),
    { numRuns: 500, ...replay },
  );
});
