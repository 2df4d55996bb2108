// Goal: base/timer-wheel.ts fires every scheduled, uncancelled item exactly once, never before
// its deadline and no later than the end of its tick, with one clock timer at a time.
// Method: a manual clock (timers fire exactly when due) drives the wheel through random
// schedules, cancels, reschedules from the callback and clock advances; a plain model says when
// each item must fire. Replay a failure with FC_SEED (and FC_PATH).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TimerWheel, type WheelSlot } from './timer-wheel.js';
import { ManualClock } from '../tests/support/manual-clock.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

/** A manual clock that counts its armed timers. */
class CountingClock extends ManualClock {
  armed = 0;
  maxArmed = 0;
  override setTimeout(callback: () => void, ms: number): unknown {
    this.armed += 1;
    this.maxArmed = Math.max(this.maxArmed, this.armed);
    return super.setTimeout(() => {
      this.armed -= 1;
      callback();
    }, ms);
  }
  override clearTimeout(handle: unknown): void {
    this.armed -= 1;
    super.clearTimeout(handle);
  }
}

describe('TimerWheel', () => {
  it('fires an item at the end of its deadline tick, not before the deadline', async () => {
    const clock = new CountingClock();
    const fired: Array<[string, number]> = [];
    const wheel = new TimerWheel<string>(clock, 100, (item) => fired.push([item, clock.now()]));
    const start = clock.now();
    wheel.schedule('a', start + 250);
    await clock.advance(249);
    assert.deepEqual(fired, []);
    await clock.advance(51);
    assert.deepEqual(fired, [['a', start + 300]]);
    assert.equal(wheel.size, 0);
    assert.equal(clock.armed, 0, 'no timer is left armed once the wheel is empty');
  });

  it('does not fire a cancelled item, and keeps the others of its tick', async () => {
    const clock = new CountingClock();
    const fired: string[] = [];
    const wheel = new TimerWheel<string>(clock, 100, (item) => fired.push(item));
    const a = wheel.schedule('a', clock.now() + 120);
    wheel.schedule('b', clock.now() + 130);
    const c = wheel.schedule('c', clock.now() + 1000);
    wheel.cancel('a', a);
    wheel.cancel('c', c);
    wheel.cancel('c', c);
    wheel.cancel('z', 0);
    await clock.advance(2000);
    assert.deepEqual(fired, ['b']);
  });

  it('lets an item schedule itself again from its callback (a keep-alive that saw traffic)', async () => {
    const clock = new CountingClock();
    const fired: number[] = [];
    let rounds = 0;
    const wheel: TimerWheel<string> = new TimerWheel<string>(clock, 50, (item) => {
      fired.push(clock.now());
      rounds += 1;
      if (rounds < 3) wheel.schedule(item, clock.now() + 1000);
    });
    const start = clock.now();
    wheel.schedule('k', start + 1000);
    await clock.advance(10_000);
    assert.equal(fired.length, 3);
    for (const [index, at] of fired.entries()) assert.ok(at >= start + 1000 * (index + 1), `round ${index} fired at ${at - start}`);
    assert.equal(clock.maxArmed, 1);
  });

  it('gives small-integer slots on a wall clock, and fires a deadline from before the wheel at its first tick', async () => {
    // Slots count from the wheel's first tick: a slot counted from 1970 is a boxed double in
    // every connection that keeps one (timer-wheel.ts).
    const clock = new CountingClock();
    assert.ok(clock.now() > 2 ** 40, 'the manual clock starts at a wall-clock time');
    const fired: Array<[string, number]> = [];
    const wheel = new TimerWheel<string>(clock, 250, (item) => fired.push([item, clock.now()]));
    const start = clock.now();
    const late = wheel.schedule('late', start + 90_000);
    const overdue = wheel.schedule('overdue', start - 10_000);
    for (const slot of [late, overdue]) assert.ok(Number.isInteger(slot) && slot > 0 && slot < 2 ** 30, `slot ${slot}`);
    wheel.cancel('late', late);
    await clock.advance(100_000);
    const firstTickEnd = (Math.floor(start / 250) + 1) * 250;
    assert.deepEqual(fired, [['overdue', firstTickEnd]]);
  });

  it('refuses a tick under 1 ms', () => {
    assert.throws(() => new TimerWheel(new ManualClock(), 0, () => {}), RangeError);
  });

  it('matches a model over random schedules, cancels and advances, with one clock timer at a time', async () => {
    type Op = { kind: 'schedule'; item: number; delay: number } | { kind: 'cancel'; item: number } | { kind: 'advance'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('schedule' as const), item: fc.integer({ min: 0, max: 15 }), delay: fc.integer({ min: 0, max: 3000 }) }),
      fc.record({ kind: fc.constant('cancel' as const), item: fc.integer({ min: 0, max: 15 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 400 }), fc.array(op, { maxLength: 60 }), async (tickMs, ops) => {
        const clock = new CountingClock();
        const firedAt = new Map<number, number[]>();
        const wheel = new TimerWheel<number>(clock, tickMs, (item) => {
          const times = firedAt.get(item) ?? [];
          times.push(clock.now());
          firedAt.set(item, times);
          slots.delete(item);
        });
        /** The model: each scheduled item's deadline and its slot. */
        const slots = new Map<number, { at: number; slot: WheelSlot }>();
        const expected = new Map<number, number>();
        const check = (): void => {
          for (const [item, times] of firedAt) {
            assert.equal(times.length, 1, `item ${item} fired ${times.length} times`);
            const at = expected.get(item) as number;
            const fired = times[0] as number;
            assert.ok(fired >= at, `item ${item} fired at ${fired}, before its deadline ${at}`);
            assert.ok(fired <= (Math.floor(at / tickMs) + 1) * tickMs, `item ${item} fired at ${fired}, after the end of its tick (deadline ${at}, tick ${tickMs} ms)`);
          }
          for (const item of slots.keys()) assert.ok(!firedAt.has(item));
          assert.ok(clock.armed <= 1, `${clock.armed} clock timers armed`);
        };
        for (const step of ops) {
          if (step.kind === 'schedule') {
            const old = slots.get(step.item);
            if (old !== undefined) wheel.cancel(step.item, old.slot);
            firedAt.delete(step.item);
            const at = clock.now() + step.delay;
            slots.set(step.item, { at, slot: wheel.schedule(step.item, at) });
            expected.set(step.item, at);
          } else if (step.kind === 'cancel') {
            const old = slots.get(step.item);
            if (old !== undefined) wheel.cancel(step.item, old.slot);
            slots.delete(step.item);
            expected.delete(step.item);
            firedAt.delete(step.item);
          } else {
            await clock.advance(step.ms);
            check();
            // What fired is settled: forget it, so a later schedule of the same item starts clean.
            for (const item of firedAt.keys()) expected.delete(item);
            firedAt.clear();
          }
        }
        await clock.advance(3000 + tickMs);
        check();
        for (const item of expected.keys()) assert.ok(firedAt.has(item) || !slots.has(item), `item ${item} never fired`);
        assert.equal(slots.size, 0, 'every item fired by the end');
        assert.equal(wheel.size, 0);
      }),
      { numRuns: numRuns(200), ...replay },
    );
  });
});
