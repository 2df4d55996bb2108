// Goal: wallNow() follows the system clock that every process shares, within a millisecond, so
// cross-process latencies in `bench mqtt` are never skewed by a per-process time origin.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WALL_CLOCK_ANCHORED_AT_MS, WALL_CLOCK_SLEW_MAX, WALL_CLOCK_STEP_MAX_MS, WALL_CLOCK_UNCERTAINTY_MS, wallNow } from './wall-clock.js';

test('wallNow() stays within a millisecond of Date.now() and never runs backwards', async () => {
  let previous = wallNow();
  for (let round = 0; round < 50; round += 1) {
    const before = Date.now();
    const now = wallNow();
    const after = Date.now();
    // Date.now() truncates to whole milliseconds, so the true time lies in [before, after + 1);
    // wallNow() may be off by its anchor's uncertainty (wider when the anchoring was preempted)
    // and by the system clock's slew and steps since the anchor (wallNow ignores them); still
    // within the millisecond the cross-process latencies need, and far inside the skew of a
    // per-process timeOrigin that this clock replaces.
    const drift = (performance.now() - WALL_CLOCK_ANCHORED_AT_MS) * WALL_CLOCK_SLEW_MAX + WALL_CLOCK_STEP_MAX_MS;
    const slack = Math.max(0.05, WALL_CLOCK_UNCERTAINTY_MS + 0.01) + drift;
    assert.ok(now >= before - slack && now < after + 1 + slack, `wallNow ${now} outside [${before}, ${after + 1}) ± ${slack} ms`);
    assert.ok(now >= previous, 'monotonic');
    previous = now;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
});
