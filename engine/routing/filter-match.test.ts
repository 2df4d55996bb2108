// Unit tests of filterMatches (filter-match.ts), the one-pair matcher used for retained messages
// and session read-backs.
//
// Goal: it answers as MQTT section 4.7 says (the spec's own examples, '$' topics, empty levels)
// and exactly as TopicTrie.match does, since the broker routes live messages with the trie and
// retained/read-back ones with this function: a disagreement would deliver a message one way
// and not the other. Method: tables of examples, then a fast-check property over a small level
// alphabet ('', '$SYS', '$', 'a', 'b', wildcards) where every subtle case is frequent. Set
// FC_SEED (and FC_PATH) to replay a failure.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { filterMatches } from './filter-match.js';
import { checkTopicFilter, checkTopicName } from './topic-name.js';
import { TopicTrie } from './topic-trie.js';
import { replay } from '../../tests/support/fast-check.js';

describe('filterMatches', () => {
  test('the examples of MQTT 4.7.1.2 and 4.7.1.3', () => {
    const cases: Array<[string, string, boolean]> = [
      ['sport/tennis/player1/#', 'sport/tennis/player1', true],
      ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
      ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
      ['sport/#', 'sport', true],
      ['sport/#', 'sport/', true],
      ['#', 'sport/tennis', true],
      ['sport/tennis/+', 'sport/tennis/player1', true],
      ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
      ['sport/+', 'sport', false],
      ['sport/+', 'sport/', true],
      ['+/+', '/finance', true],
      ['/+', '/finance', true],
      ['+', '/finance', false],
      ['+', 'finance', true],
    ];
    for (const [filter, name, expected] of cases) assert.equal(filterMatches(filter, name), expected, `${filter} vs ${name}`);
  });

  test("wildcards at the first level do not match '$' topics; literal '$' levels do (MQTT-4.7.2-1)", () => {
    assert.equal(filterMatches('#', '$SYS/monitor/Clients'), false);
    assert.equal(filterMatches('+/monitor/Clients', '$SYS/monitor/Clients'), false);
    assert.equal(filterMatches('$SYS/#', '$SYS/monitor/Clients'), true);
    assert.equal(filterMatches('$SYS/monitor/+', '$SYS/monitor/Clients'), true);
    assert.equal(filterMatches('$SYS/#', '$SYS'), true);
    assert.equal(filterMatches('a/#', 'a/$SYS'), true, "only a topic starting with '$' is special");
  });

  test('empty levels are levels; exact filters match only themselves', () => {
    assert.equal(filterMatches('a//b', 'a//b'), true);
    assert.equal(filterMatches('a/+/b', 'a//b'), true);
    assert.equal(filterMatches('a/b', 'a//b'), false);
    assert.equal(filterMatches('a/b/', 'a/b'), false);
    assert.equal(filterMatches('a/b', 'a/b/'), false);
    assert.equal(filterMatches('/', '/'), true);
    assert.equal(filterMatches('+/+', '/'), true);
    assert.equal(filterMatches('#', '/'), true);
    assert.equal(filterMatches('a', 'A'), false, 'case matters');
  });

  const NAME_LEVELS = ['', '$SYS', '$', 'a', 'b'];
  const nameArb = fc
    .array(fc.constantFrom(...NAME_LEVELS), { minLength: 1, maxLength: 5 })
    .map((levels) => levels.join('/'))
    .filter((name) => name.length > 0);
  const filterArb = fc
    .tuple(fc.array(fc.constantFrom(...NAME_LEVELS, '+'), { maxLength: 4 }), fc.boolean())
    .map(([levels, multiLevel]) => (multiLevel ? [...levels, '#'] : levels).join('/'))
    .filter((filter) => filter.length > 0);

  test('agrees with TopicTrie.match on every filter and name', () => {
    fc.assert(
      fc.property(fc.uniqueArray(filterArb, { minLength: 1, maxLength: 12 }), fc.array(nameArb, { minLength: 1, maxLength: 8 }), (filters, names) => {
        const trie = new TopicTrie<null>();
        for (const filter of filters) {
          assert.ok(checkTopicFilter(filter).ok, filter);
          trie.add(filter, 'subscriber', null);
        }
        for (const name of names) {
          assert.ok(checkTopicName(name).ok, name);
          const byTrie = trie
            .match(name)
            .map((match) => match.filter)
            .sort();
          const byFunction = filters.filter((filter) => filterMatches(filter, name)).sort();
          assert.deepEqual(byFunction, byTrie, `topic ${JSON.stringify(name)}`);
        }
      }),
      { numRuns: 1000, ...replay },
    );
  });
});
