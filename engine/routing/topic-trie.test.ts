// Unit tests of topic validation (topic-name.ts) and the subscription trie (topic-trie.ts).
//
// Goal: names and filters are accepted or refused exactly as MQTT section 4.7 says, with the
// right code; the trie matches the spec's own examples (4.7.1.2, 4.7.1.3, 4.7.2) and prunes
// what it no longer needs. Method: small tables of topics; matches are compared as sorted
// "filter subscriber" strings since match() promises no order. Randomised comparison with a
// naive matcher is in property-tests/topic-matcher.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkTopicFilter, checkTopicName, type TopicLimits } from '../index.js';
import { TopicTrie } from './topic-trie.js';

function reasonOf(check: ReturnType<typeof checkTopicName>): string {
  return check.ok ? 'ok' : check.reason;
}

function matched(trie: TopicTrie<unknown>, topicName: string): string[] {
  return trie.match(topicName).map((match) => `${match.filter} ${match.subscriberId}`).sort();
}

function trieOf(filters: string[]): TopicTrie<number> {
  const trie = new TopicTrie<number>();
  filters.forEach((filter, index) => trie.add(filter, 'c', index));
  return trie;
}

function matchingFilters(filters: string[], topicName: string): string[] {
  return trieOf(filters).match(topicName).map((match) => match.filter).sort();
}

describe('checkTopicName', () => {
  test('accepts names with empty levels, spaces, $ and multi-byte characters, split into levels', () => {
    assert.deepEqual(checkTopicName('sport/tennis/player1'), { ok: true, levels: ['sport', 'tennis', 'player1'] });
    assert.deepEqual(checkTopicName('/finance'), { ok: true, levels: ['', 'finance'] });
    assert.deepEqual(checkTopicName('a//b'), { ok: true, levels: ['a', '', 'b'] });
    assert.deepEqual(checkTopicName('/'), { ok: true, levels: ['', ''] });
    assert.deepEqual(checkTopicName('$SYS/broker/load'), { ok: true, levels: ['$SYS', 'broker', 'load'] });
    assert.deepEqual(checkTopicName('ACCOUNTS/€ 1'), { ok: true, levels: ['ACCOUNTS', '€ 1'] });
  });

  test('refuses the empty name (MQTT-4.7.3-1), U+0000 (MQTT-4.7.3-2) and lone surrogates (MQTT-1.5.4-1)', () => {
    assert.equal(reasonOf(checkTopicName('')), 'topic-empty');
    assert.equal(reasonOf(checkTopicName('a/\u0000b')), 'topic-null-character');
    assert.equal(reasonOf(checkTopicName('a/\ud800')), 'topic-ill-formed');
  });

  test('refuses wildcards anywhere in a name (MQTT-4.7.1-1)', () => {
    for (const name of ['+', '#', 'a/+', 'a/#', 'a+b', 'sport/tennis#', '+/x']) {
      assert.equal(reasonOf(checkTopicName(name)), 'name-wildcard', name);
    }
  });

  test('counts UTF-8 bytes against the byte limit, never above 65535 (MQTT-4.7.3-3)', () => {
    const limits: TopicLimits = { levelsMax: 10, bytesMax: 6 };
    assert.equal(reasonOf(checkTopicName('€€', limits)), 'ok'); // 2 units, 6 bytes
    assert.equal(reasonOf(checkTopicName('€€a', limits)), 'topic-too-long'); // 7 bytes
    assert.equal(reasonOf(checkTopicName('😀a', { levelsMax: 10, bytesMax: 5 })), 'ok'); // 4 + 1 bytes
    assert.equal(reasonOf(checkTopicName('😀ab', { levelsMax: 10, bytesMax: 5 })), 'topic-too-long');
    const huge: TopicLimits = { levelsMax: 10, bytesMax: 1_000_000 };
    assert.equal(reasonOf(checkTopicName('a'.repeat(65_535), huge)), 'ok');
    assert.equal(reasonOf(checkTopicName('a'.repeat(65_536), huge)), 'topic-too-long');
    assert.equal(reasonOf(checkTopicName('é'.repeat(32_768), huge)), 'topic-too-long'); // 65536 bytes
  });

  test('refuses more levels than levelsMax', () => {
    const limits: TopicLimits = { levelsMax: 3, bytesMax: 100 };
    assert.equal(reasonOf(checkTopicName('a/b/c', limits)), 'ok');
    assert.equal(reasonOf(checkTopicName('a/b/c/', limits)), 'topic-too-many-levels');
    assert.equal(reasonOf(checkTopicName('///', limits)), 'topic-too-many-levels');
  });
});

describe('checkTopicFilter', () => {
  test('accepts the spec\'s valid filters', () => {
    for (const filter of ['sport/tennis/player1/#', 'sport/#', '#', '+', '+/tennis/#', 'sport/+/player1', '/+', '+/+', '$SYS/#', 'a//+', '/']) {
      assert.equal(reasonOf(checkTopicFilter(filter)), 'ok', filter);
    }
    assert.deepEqual(checkTopicFilter('+/+/#'), { ok: true, levels: ['+', '+', '#'] });
  });

  test('refuses # that is not alone in the last level (MQTT-4.7.1-2)', () => {
    for (const filter of ['sport/tennis#', 'sport/tennis/#/ranking', '#/', '#/a', 'a#', '##', 'a/#b']) {
      assert.equal(reasonOf(checkTopicFilter(filter)), 'filter-multi-level-wildcard-misplaced', filter);
    }
  });

  test('refuses + that is not alone in its level (MQTT-4.7.1-3)', () => {
    for (const filter of ['sport+', 'sport/+tennis', '++', 'a/b+/c', '+a/#']) {
      assert.equal(reasonOf(checkTopicFilter(filter)), 'filter-single-level-wildcard-misplaced', filter);
    }
  });

  test('shares the name rules on length, U+0000 and levels', () => {
    assert.equal(reasonOf(checkTopicFilter('')), 'topic-empty');
    assert.equal(reasonOf(checkTopicFilter('+/\u0000')), 'topic-null-character');
    assert.equal(reasonOf(checkTopicFilter('+/+/#', { levelsMax: 2, bytesMax: 100 })), 'topic-too-many-levels');
  });
});

describe('TopicTrie matching', () => {
  test('sport/tennis/player1/# matches the player, its children, and the parent level (4.7.1.2)', () => {
    const filters = ['sport/tennis/player1/#'];
    for (const name of ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon', 'sport/tennis/player1/']) {
      assert.deepEqual(matchingFilters(filters, name), filters, name);
    }
    for (const name of ['sport/tennis', 'sport/tennis/player2', 'sport/tennis/player10', 'sport']) {
      assert.deepEqual(matchingFilters(filters, name), [], name);
    }
  });

  test('sport/# matches sport itself; # matches everything not starting with $', () => {
    assert.deepEqual(matchingFilters(['sport/#'], 'sport'), ['sport/#']);
    assert.deepEqual(matchingFilters(['sport/#'], 'sports'), []);
    for (const name of ['sport', '/', 'a//b', '/finance']) assert.deepEqual(matchingFilters(['#'], name), ['#'], name);
  });

  test('sport/+ matches one level below sport, including an empty one, but not sport (4.7.1.3)', () => {
    const filters = ['sport/+'];
    assert.deepEqual(matchingFilters(filters, 'sport/'), filters);
    assert.deepEqual(matchingFilters(filters, 'sport/tennis'), filters);
    assert.deepEqual(matchingFilters(filters, 'sport'), []);
    assert.deepEqual(matchingFilters(filters, 'sport/tennis/player1'), []);
    assert.deepEqual(matchingFilters(['sport/tennis/+'], 'sport/tennis/player1'), ['sport/tennis/+']);
    assert.deepEqual(matchingFilters(['sport/tennis/+'], 'sport/tennis/player1/ranking'), []);
  });

  test('+/+ and /+ match /finance; + does not (4.7.1.3)', () => {
    assert.deepEqual(matchingFilters(['+/+', '/+', '+'], '/finance'), ['+/+', '/+']);
    assert.deepEqual(matchingFilters(['/finance', 'finance'], '/finance'), ['/finance']);
    assert.deepEqual(matchingFilters(['+'], 'finance'), ['+']);
    assert.deepEqual(matchingFilters(['+'], '/'), []);
    assert.deepEqual(matchingFilters(['+/+'], '/'), ['+/+']);
  });

  test('empty levels are levels: a//b has three', () => {
    const filters = ['a/+/b', 'a//b', 'a/b', 'a/+', 'a/#', '+/+/+'];
    assert.deepEqual(matchingFilters(filters, 'a//b'), ['+/+/+', 'a/#', 'a/+/b', 'a//b']);
  });

  test('$ names are not matched by filters starting with a wildcard (MQTT-4.7.2-1)', () => {
    const filters = ['#', '+/monitor/Clients', '+/#', '+', '$SYS/#', '$SYS/monitor/+', '$SYS/monitor/Clients', '$SYS/+/Clients'];
    assert.deepEqual(matchingFilters(filters, '$SYS/monitor/Clients'), ['$SYS/#', '$SYS/+/Clients', '$SYS/monitor/+', '$SYS/monitor/Clients']);
    assert.deepEqual(matchingFilters(filters, '$SYS'), ['$SYS/#']);
    assert.deepEqual(matchingFilters(['#', '+'], '$'), []);
    // Only the first level counts: a '$' further down is an ordinary character.
    assert.deepEqual(matchingFilters(['#', '+/$SYS', 'a/+'], 'a/$SYS'), ['#', '+/$SYS', 'a/+']);
  });

  test('returns each (filter, subscriber) pair once; overlapping filters of one subscriber each appear', () => {
    const trie = new TopicTrie<string>();
    trie.add('a/+', 'alice', 'qos1');
    trie.add('a/#', 'alice', 'qos2');
    trie.add('a/b', 'bob', 'qos0');
    trie.add('a/b', 'alice', 'qos0');
    trie.add('#', 'carol', 'qos0');
    assert.deepEqual(matched(trie, 'a/b'), ['# carol', 'a/# alice', 'a/+ alice', 'a/b alice', 'a/b bob']);
    assert.deepEqual(
      trie.match('a/b').find((match) => match.filter === 'a/#'),
      { filter: 'a/#', subscriberId: 'alice', value: 'qos2' },
    );
  });

  test('refuses unchecked names and filters as programmer errors', () => {
    const trie = new TopicTrie<number>();
    assert.throws(() => trie.match('a/+'), assert.AssertionError);
    assert.throws(() => trie.match(''), assert.AssertionError);
    assert.throws(() => trie.add('a/#/b', 'c', 1), assert.AssertionError);
    assert.throws(() => trie.remove('a+', 'c'), assert.AssertionError);
  });
});

describe('TopicTrie add and remove', () => {
  test('subscribing again to a filter replaces the subscription (MQTT-3.8.4-3)', () => {
    const trie = new TopicTrie<number>();
    assert.equal(trie.add('a/b', 'c', 0), true);
    assert.equal(trie.add('a/b', 'c', 2), false);
    assert.equal(trie.size, 1);
    assert.deepEqual(trie.match('a/b'), [{ filter: 'a/b', subscriberId: 'c', value: 2 }]);
  });

  test('removing prunes exactly the nodes no filter needs any more', () => {
    const trie = new TopicTrie<number>();
    trie.add('a/b/c', 'x', 1);
    trie.add('a/b', 'y', 2);
    trie.add('a/+/#', 'x', 3);
    assert.equal(trie.nodeCount(), 5); // a, a/b, a/b/c, a/+, a/+/#
    assert.equal(trie.remove('a/b/c', 'y'), false, 'another subscriber\'s filter');
    assert.equal(trie.remove('a/b/c/d', 'x'), false, 'a filter that was never added');
    assert.equal(trie.remove('a/b/c', 'x'), true);
    assert.equal(trie.remove('a/b/c', 'x'), false, 'already removed');
    assert.equal(trie.nodeCount(), 4, 'a/b stays: y subscribes to it');
    assert.equal(trie.remove('a/+/#', 'x'), true);
    assert.equal(trie.nodeCount(), 2);
    assert.deepEqual(matched(trie, 'a/b'), ['a/b y']);
    assert.equal(trie.remove('a/b', 'y'), true);
    assert.equal(trie.nodeCount(), 0);
    assert.equal(trie.size, 0);
    assert.deepEqual(trie.match('a/b'), []);
  });

  test('removing a prefix filter keeps the longer filters below it', () => {
    const trie = new TopicTrie<number>();
    trie.add('a', 'x', 1);
    trie.add('a/b', 'x', 2);
    assert.equal(trie.remove('a', 'x'), true);
    assert.equal(trie.nodeCount(), 2);
    assert.deepEqual(matched(trie, 'a'), []);
    assert.deepEqual(matched(trie, 'a/b'), ['a/b x']);
  });
});
