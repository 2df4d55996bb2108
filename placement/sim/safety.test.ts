// The safety checkers.
//
// Goal: each checker accepts the observations of a correct Raft run and catches a planted
// violation of its property, with a message naming the nodes, terms and indexes involved.
// Method: a small transcript per checker: a correct run first (no violations), then the same run
// with one fault planted, as a broken core would produce it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ElectionSafety, LeaderCompleteness, LogMatching, NoLostAcknowledgedWrite, StateMachineSafety, type LogEntry } from './safety.js';

/** A log from a compact description: terms of indexes first..first+n-1, digests `${term}-${index}` unless given. */
function log(terms: number[], first = 1, digests: Record<number, string> = {}): LogEntry[] {
  return terms.map((term, i) => ({ index: first + i, term, digest: digests[first + i] ?? `${term}-${first + i}` }));
}

test('ElectionSafety: one leader per term; a second one is caught', () => {
  const checker = new ElectionSafety();
  assert.deepEqual(checker.recordLeader(1, 'n1'), []);
  assert.deepEqual(checker.recordLeader(1, 'n1'), []);
  assert.deepEqual(checker.recordLeader(2, 'n2'), []);
  assert.deepEqual(checker.recordLeader(3, 'n1'), []);
  const found = checker.recordLeader(2, 'n3');
  assert.equal(found.length, 1);
  assert.equal(found[0]?.checker, 'ElectionSafety');
  assert.match(found[0]?.message ?? '', /two leaders in term 2: n2 and n3/);
  assert.equal(checker.violations.length, 1);
});

test('LogMatching: diverging uncommitted tails and compacted prefixes are fine; a different past is caught', () => {
  const checker = new LogMatching();
  // n3 holds an uncommitted entry of term 2 that n1 replaced in term 3; n2 is compacted to index 3.
  assert.deepEqual(
    checker.check([
      ['n1', log([1, 1, 1, 3, 3])],
      ['n2', log([1, 3], 3)],
      ['n3', log([1, 1, 1, 2])],
    ]),
    [],
  );
  // Same index and term at 4, but the entries below differ in term.
  const broken = new LogMatching();
  const found = broken.check([
    ['n1', log([1, 1, 2, 3])],
    ['n2', log([1, 2, 2, 3])],
  ]);
  assert.equal(found.length, 1);
  assert.match(found[0]?.message ?? '', /logs of n1 and n2 agree at index 4 \(term 3\) but differ below it at index 2/);
  // Two different entries under one (index, term), even seen at different moments.
  const later = new LogMatching();
  assert.deepEqual(later.check([['n1', log([1, 1])]]), []);
  const twice = later.check([['n2', log([1, 1], 1, { 2: 'other' })]]);
  assert.match(twice[0]?.message ?? '', /two entries at index 2 term 1: 1-2 \(seen on n1\) and other \(on n2\)/);
  // A log with a hole or a falling term is malformed.
  const shape = new LogMatching().check([['n1', [{ index: 1, term: 2, digest: 'a' }, { index: 3, term: 1, digest: 'b' }]]]);
  assert.equal(shape.length, 2);
  assert.match(shape[0]?.message ?? '', /jumps from index 1 to 3/);
});

test('LeaderCompleteness: later leaders hold committed entries in either order of records; a leader without one is caught', () => {
  const checker = new LeaderCompleteness();
  assert.deepEqual(checker.recordLeader(1, 'n1', []), []);
  assert.deepEqual(checker.recordCommitted({ index: 1, term: 1, digest: '1-1' }, 1), []);
  assert.deepEqual(checker.recordCommitted({ index: 2, term: 1, digest: '1-2' }, 1), []);
  assert.deepEqual(checker.recordLeader(2, 'n2', log([1, 1, 1])), []);
  // A leader whose log is compacted past a committed entry still holds it (in its snapshot).
  assert.deepEqual(checker.recordLeader(3, 'n3', log([2], 3), 2), []);
  // The entry was committed in term 3 only as far as a node in term 3 could tell: no older leader is held to it.
  assert.deepEqual(checker.recordCommitted({ index: 3, term: 2, digest: '2-3' }, 3), []);

  const broken = new LeaderCompleteness();
  broken.recordCommitted({ index: 1, term: 1, digest: '1-1' }, 1);
  broken.recordCommitted({ index: 2, term: 1, digest: '1-2' }, 1);
  // Elected without the log check: it lacks index 2.
  const found = broken.recordLeader(2, 'n3', log([1]));
  assert.equal(found.length, 1);
  assert.match(found[0]?.message ?? '', /leader n3 of term 2 lacks \{index 2, term 1, digest 1-2\} committed in term 1; it holds nothing/);
  // The other order: a leader recorded first, a commit from an earlier term learned later.
  const reversed = new LeaderCompleteness();
  reversed.recordLeader(5, 'n2', log([1, 4]));
  const late = reversed.recordCommitted({ index: 2, term: 3, digest: '3-2' }, 3);
  assert.match(late[0]?.message ?? '', /leader n2 of term 5 lacks \{index 2, term 3, digest 3-2\}.*holds \{index 2, term 4, digest 4-2\}/);
});

test('StateMachineSafety: in-order applies on every node agree; a different entry or a gap is caught', () => {
  const checker = new StateMachineSafety();
  for (const node of ['n1', 'n2', 'n3']) for (let index = 1; index <= 3; index++) assert.deepEqual(checker.recordApplied(node, index, `d${index}`), []);
  // n2 restarts from its persisted applied index 2 and applies 3 again, then continues.
  checker.recordRestored('n2', 2);
  assert.deepEqual(checker.recordApplied('n2', 3, 'd3'), []);
  assert.deepEqual(checker.recordApplied('n2', 4, 'd4'), []);
  // n3 installs a snapshot at 10 and continues from there.
  checker.recordRestored('n3', 10);
  assert.deepEqual(checker.recordApplied('n3', 11, 'd11'), []);
  assert.equal(checker.violations.length, 0);

  const different = checker.recordApplied('n1', 4, 'other');
  assert.match(different[0]?.message ?? '', /index 4 applied as d4 on n2 but as other on n1/);
  const gap = checker.recordApplied('n1', 6, 'd6');
  assert.match(gap[0]?.message ?? '', /n1 applied index 6 after index 4 \(expected 5\)/);
  const repeat = new StateMachineSafety();
  repeat.recordApplied('n1', 1, 'a');
  assert.match(repeat.recordApplied('n1', 1, 'a')[0]?.message ?? '', /applied index 1 after index 1/);
});

test('NoLostAcknowledgedWrite: acknowledged writes all applied once; a lost or doubled write is caught', () => {
  const checker = new NoLostAcknowledgedWrite();
  for (const id of ['w1', 'w2', 'w3']) checker.recordAcknowledged(id);
  // w4 was never acknowledged (a timeout) but took effect: that is allowed.
  assert.deepEqual(checker.check(['w1', 'w4', 'w2', 'w3']), []);
  const lost = checker.check(['w1', 'w3']);
  assert.equal(lost.length, 1);
  assert.match(lost[0]?.message ?? '', /1 acknowledged write\(s\) missing from the applied log: w2/);
  const doubled = checker.check(['w1', 'w2', 'w3', 'w2']);
  assert.match(doubled[0]?.message ?? '', /w2 \(2 times\)/);
  const lenient = new NoLostAcknowledgedWrite({ duplicatesAllowed: true });
  lenient.recordAcknowledged('w1');
  assert.deepEqual(lenient.check(['w1', 'w1']), []);
});
