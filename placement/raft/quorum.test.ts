// Goal: the fast majority computations agree with naive ones for any voter set and acks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { committedIndex, majority, voteResult } from './quorum.js';

function naiveCommitted(matches: number[]): number {
  // The largest index that at least a majority of voters have reached.
  let best = 0;
  for (const candidate of matches) {
    const reached = matches.filter((m) => m >= candidate).length;
    if (reached >= majority(matches.length) && candidate > best) best = candidate;
  }
  return best;
}

test('committedIndex equals the largest index a majority has reached', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 9 }), (matches) => {
      const voters = new Set(matches.map((_, i) => i + 1));
      assert.equal(committedIndex(voters, (id) => matches[id - 1]), naiveCommitted(matches));
    }),
  );
});

test('a voter with no known match counts as 0, and an empty set commits nothing', () => {
  assert.equal(committedIndex(new Set([1, 2, 3]), (id) => (id === 1 ? 5 : undefined)), 0);
  assert.equal(committedIndex(new Set([1, 2, 3]), (id) => (id === 3 ? undefined : 5)), 5);
  assert.equal(committedIndex(new Set(), () => 9), 0);
});

test('voteResult: won with a majority of yes, lost once a majority is impossible, else pending', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 1, maxLength: 9 }), (votes) => {
      const voters = new Set(votes.map((_, i) => i + 1));
      const map = new Map<number, boolean>();
      votes.forEach((v, i) => {
        if (v !== undefined) map.set(i + 1, v);
      });
      const yes = votes.filter((v) => v === true).length;
      const open = votes.filter((v) => v === undefined).length;
      const expected = yes >= majority(votes.length) ? 'won' : yes + open >= majority(votes.length) ? 'pending' : 'lost';
      assert.equal(voteResult(voters, map), expected);
    }),
  );
});
