// The sequence rule of idempotent appends (writer-table.ts): unit cases, then a property over
// any interleaving of resends, duplicates, reorders, lost answers and truncations of the
// unanswered tail: the log ends up holding each append exactly once, in the writer's order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WriterTable, type WriterStamp } from './writer-table.js';

const stamp = (id: number, sequence: number, ackedBelow = 0): WriterStamp => ({ id, sequence, ackedBelow });

describe('WriterTable', () => {
  it('takes a new writer at its lowest unanswered sequence only', () => {
    const table = new WriterTable();
    assert.deepEqual(table.decide(stamp(7, 1, 0)), { kind: 'out-of-sequence', expected: 0 }, 'sequence 0 is still unanswered and unseen');
    assert.deepEqual(table.decide(stamp(7, 5, 5)), { kind: 'append' });
  });

  it('answers a resent append with the stored batch, and an unfinished one with in-progress', () => {
    const table = new WriterTable();
    table.begin(7, 0);
    assert.deepEqual(table.decide(stamp(7, 0)), { kind: 'in-progress' });
    table.stored(7, 0, { baseOffset: 10, lastOffset: 12 });
    assert.deepEqual(table.decide(stamp(7, 0)), { kind: 'duplicate', extent: { baseOffset: 10, lastOffset: 12 } });
    assert.deepEqual(table.decide(stamp(7, 1)), { kind: 'append' });
    assert.deepEqual(table.decide(stamp(7, 2)), { kind: 'out-of-sequence', expected: 1 });
  });

  it('gives the sequence back when the local write fails, with everything after it', () => {
    const table = new WriterTable();
    table.begin(7, 0);
    table.stored(7, 0, { baseOffset: 0, lastOffset: 0 });
    table.begin(7, 1);
    table.begin(7, 2);
    table.failed(7, 1);
    assert.equal(table.lastSequence(7), 0);
    assert.deepEqual(table.decide(stamp(7, 1)), { kind: 'append' });
  });

  it('forgets what a truncation removes, and a writer with nothing left', () => {
    const table = new WriterTable();
    table.observe(1, 0, { baseOffset: 0, lastOffset: 0 });
    table.observe(1, 1, { baseOffset: 1, lastOffset: 1 });
    table.observe(2, 0, { baseOffset: 2, lastOffset: 2 });
    table.truncateFrom(1);
    assert.equal(table.lastSequence(1), 0);
    assert.equal(table.lastSequence(2), undefined);
    assert.deepEqual(table.decide(stamp(1, 1, 1)), { kind: 'append' });
  });

  it('follows a writer that knows more than the table (a compacted header)', () => {
    const table = new WriterTable();
    table.observe(1, 3, { baseOffset: 0, lastOffset: 0 });
    assert.deepEqual(table.decide(stamp(1, 9, 9)), { kind: 'append' });
  });

  it('keeps at most maxWriters, forgetting the least recent', () => {
    const table = new WriterTable(2, 4);
    table.observe(1, 0, { baseOffset: 0, lastOffset: 0 });
    table.observe(2, 0, { baseOffset: 1, lastOffset: 1 });
    table.observe(1, 1, { baseOffset: 2, lastOffset: 2 });
    table.observe(3, 0, { baseOffset: 3, lastOffset: 3 });
    assert.equal(table.size, 2);
    assert.equal(table.lastSequence(2), undefined);
    assert.equal(table.lastSequence(1), 1);
  });
});

/** One writer and one leader's log; the steps come from fast-check. */
function runSchedule(appends: number, inFlight: number, steps: readonly { pick: number; loseAnswer: boolean; truncate: number }[], dedup = true): number[] {
  const table = new WriterTable(4, 16);
  const log: number[] = [];
  const answered = new Set<number>();
  const ackedBelow = (): number => {
    let below = 0;
    while (answered.has(below)) below += 1;
    return below;
  };
  const deliver = (sequence: number, loseAnswer: boolean): void => {
    const decision = dedup ? table.decide(stamp(1, sequence, ackedBelow())) : { kind: 'append' as const };
    if (decision.kind === 'append') {
      table.begin(1, sequence);
      log.push(sequence);
      table.stored(1, sequence, { baseOffset: log.length - 1, lastOffset: log.length - 1 });
    }
    if ((decision.kind === 'append' || decision.kind === 'duplicate') && !loseAnswer) answered.add(sequence);
  };
  for (const step of steps) {
    const low = ackedBelow();
    // The writer resends any unanswered append of its window, or a network duplicate of any.
    const sequence = Math.min(appends - 1, low + (step.pick % inFlight));
    if (sequence >= low || step.pick % 5 === 0) deliver(step.pick % 5 === 0 ? step.pick % appends : sequence, step.loseAnswer);
    if (step.truncate > 0) {
      // A failover may cut only what no writer was answered for.
      let keep = log.length;
      while (keep > 0 && log.length - keep < step.truncate && !answered.has(log[keep - 1] as number)) keep -= 1;
      log.length = keep;
      table.truncateFrom(keep);
    }
  }
  for (let round = 0; ackedBelow() < appends && round < appends * inFlight * 2; round += 1) deliver(ackedBelow(), false);
  return log;
}

describe('WriterTable property', () => {
  const schedule = fc.record({
    appends: fc.integer({ min: 1, max: 30 }),
    inFlight: fc.integer({ min: 1, max: 8 }),
    steps: fc.array(fc.record({ pick: fc.nat(1000), loseAnswer: fc.boolean(), truncate: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 4 })) }), { maxLength: 120 }),
  });

  it('stores every append exactly once, in order, whatever the interleaving', () => {
    fc.assert(
      fc.property(schedule, ({ appends, inFlight, steps }) => {
        assert.deepEqual(runSchedule(appends, inFlight, steps), Array.from({ length: appends }, (_, i) => i));
      }),
      { numRuns: 300 },
    );
  });

  it('self-test: without the rule the same schedules store duplicates', () => {
    const found = fc.check(
      fc.property(schedule, ({ appends, inFlight, steps }) => {
        assert.deepEqual(runSchedule(appends, inFlight, steps, false), Array.from({ length: appends }, (_, i) => i));
      }),
      { numRuns: 300, seed: 1 },
    );
    assert.equal(found.failed, true);
  });
});
