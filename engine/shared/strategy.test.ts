// Unit tests of the shared subscription strategies (strategy.ts), which pick the member of a
// group for each message among the candidates the group passes in (online, allowed to read,
// with or without room).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '../../tests/support/seeded-random.js';
import { pickMember, type Candidate, type PickState } from './strategy.js';

const members = (...ids: string[]): Candidate[] => ids.map((id) => ({ clientId: id.replace('!', ''), hasRoom: !id.endsWith('!') }));
const fresh = (): PickState => ({ last: undefined });

describe('pickMember', () => {
  test('no candidates: nobody', () => {
    for (const strategy of ['round-robin', 'random', 'sticky', 'hash-client-id'] as const) assert.equal(pickMember(strategy, [], 'p', fresh(), Math.random), undefined);
  });

  test('round-robin: client id order from after the previous pick, skipping members without room', () => {
    const state = fresh();
    const picks = Array.from({ length: 5 }, () => pickMember('round-robin', members('a', 'b!', 'c'), 'p', state, Math.random)?.clientId);
    assert.deepEqual(picks, ['a', 'c', 'a', 'c', 'a']);
    // The previous pick left the group: the next one after it in order.
    assert.equal(pickMember('round-robin', members('b', 'd'), 'p', { last: 'c' }, Math.random)?.clientId, 'd');
    assert.equal(pickMember('round-robin', members('a!', 'b!'), 'p', fresh(), Math.random), undefined, 'everyone full: wait');
  });

  test('random: only members with room, each of them picked', () => {
    const random = seededRandom(3);
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i += 1) {
      const id = pickMember('random', members('a', 'b!', 'c', 'd'), 'p', fresh(), random)?.clientId ?? 'none';
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ['a', 'c', 'd']);
    for (const count of seen.values()) assert.ok(count > 60, `roughly uniform: ${[...seen]}`);
  });

  test('sticky: keeps its member, waits while it is full, moves on only when it is gone', () => {
    const state = fresh();
    const first = pickMember('sticky', members('a', 'b', 'c'), 'p', state, seededRandom(1))?.clientId as string;
    for (let i = 0; i < 10; i += 1) assert.equal(pickMember('sticky', members('a', 'b', 'c'), 'p', state, Math.random)?.clientId, first);
    const full = members('a', 'b', 'c').map((candidate) => (candidate.clientId === first ? { ...candidate, hasRoom: false } : candidate));
    assert.equal(pickMember('sticky', full, 'p', state, Math.random), undefined, 'waits for its member');
    const rest = members('a', 'b', 'c').filter((candidate) => candidate.clientId !== first);
    const next = pickMember('sticky', rest, 'p', state, Math.random)?.clientId;
    assert.ok(next !== undefined && next !== first);
    assert.equal(pickMember('sticky', members('a', 'b', 'c'), 'p', state, Math.random)?.clientId, next, 'and sticks to the new one');
  });

  test('hash-client-id: one member per publisher, waiting while it is full; publishers spread', () => {
    const owners = new Set<string>();
    for (let publisher = 0; publisher < 40; publisher += 1) {
      const pick = (): string | undefined => pickMember('hash-client-id', members('a', 'b', 'c'), `pub-${publisher}`, fresh(), Math.random)?.clientId;
      const owner = pick() as string;
      for (let i = 0; i < 3; i += 1) assert.equal(pick(), owner);
      owners.add(owner);
      const full = members('a', 'b', 'c').map((candidate) => (candidate.clientId === owner ? { ...candidate, hasRoom: false } : candidate));
      assert.equal(pickMember('hash-client-id', full, `pub-${publisher}`, fresh(), Math.random), undefined);
    }
    assert.equal(owners.size, 3, 'forty publishers reach all three members');
  });
});
