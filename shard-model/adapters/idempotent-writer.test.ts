// IdempotentWriter: sequences in call order, the in-flight bound, ackedBelow, and what a failed
// append does to the appends behind it and to the next writer id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APPENDS_IN_FLIGHT_MAX, IdempotentWriter, type WriterTurn } from './idempotent-writer.js';

function ids(): () => number {
  let next = 100;
  return () => next++;
}

test('sequences follow the calls; at most APPENDS_IN_FLIGHT_MAX unanswered; ackedBelow is the oldest unanswered', async () => {
  const writer = new IdempotentWriter(ids());
  const turns = await Promise.all(Array.from({ length: APPENDS_IN_FLIGHT_MAX }, () => writer.turn()));
  assert.deepEqual(turns.map((turn) => turn.sequence), Array.from({ length: APPENDS_IN_FLIGHT_MAX }, (_, i) => i));
  const state: { extra?: WriterTurn } = {};
  const waiting = writer.turn().then((turn) => (state.extra = turn));
  await Promise.resolve();
  assert.equal(state.extra, undefined, 'past the bound a turn waits');
  writer.answered(turns[1] as WriterTurn);
  const extra = await waiting;
  assert.equal(extra.sequence, APPENDS_IN_FLIGHT_MAX);
  assert.deepEqual(writer.stamp(extra), { id: 100, sequence: APPENDS_IN_FLIGHT_MAX, ackedBelow: 0 });
  writer.answered(turns[0] as WriterTurn);
  assert.equal(writer.stamp(extra).ackedBelow, 2);
});

test('a failed append abandons the later unanswered ones, and a new id starts once they settle', async () => {
  const writer = new IdempotentWriter(ids());
  const [zero, one, two] = await Promise.all([writer.turn(), writer.turn(), writer.turn()]) as [WriterTurn, WriterTurn, WriterTurn];
  const failure = new Error('disk full');
  writer.failed(one, failure);
  assert.equal(writer.abandoned(zero), undefined, 'an earlier append goes on');
  assert.equal(writer.abandoned(two), failure);
  const state: { next?: WriterTurn } = {};
  const waiting = writer.turn().then((turn) => (state.next = turn));
  writer.answered(zero);
  await Promise.resolve();
  assert.equal(state.next, undefined, 'the new id waits for the old one\'s appends to settle');
  writer.failed(two, failure);
  const next = await waiting;
  assert.deepEqual(writer.stamp(next), { id: 101, sequence: 0, ackedBelow: 0 });
});
