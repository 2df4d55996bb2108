// One wall clock that the coordinator and every worker process of `shardline bench mqtt` agree
// on to within microseconds, so a latency measured across processes (sent in one, received in
// another) is not skewed. `performance.timeOrigin + performance.now()` is not that clock: each
// process fixes its timeOrigin once at start, and on CI two processes forked together disagreed
// by more than a loopback round trip, so half the latencies came out negative. Here each process
// anchors the monotonic clock to the moment the system clock (shared by all processes) ticks
// over to a new millisecond.

/** Spins at most this long looking for a sharp millisecond edge; never stalls a process longer. */
const ANCHOR_MAX_SPIN_MS = 20;
/** An edge seen between two reads this close together is sharp enough to stop looking. */
const SHARP_EDGE_MS = 0.01;

function anchor(): { epochMs: number; monotonicMs: number; widthMs: number } {
  // Each read of the system clock is bracketed by two monotonic reads, so a tick to `epoch` lies
  // after the first bracket's start and before the second bracket's end. The narrowest bracket
  // seen wins, because a preemption anywhere in it (shared CI machines) widens it.
  let best = { epochMs: Date.now(), monotonicMs: performance.now(), widthMs: Number.POSITIVE_INFINITY };
  let lastEpoch = best.epochMs;
  let lastStart = best.monotonicMs;
  const spinUntil = lastStart + ANCHOR_MAX_SPIN_MS;
  for (;;) {
    const start = performance.now();
    const epoch = Date.now();
    const end = performance.now();
    if (epoch === lastEpoch + 1 && end - lastStart < best.widthMs) best = { epochMs: epoch, monotonicMs: (lastStart + end) / 2, widthMs: end - lastStart };
    if (best.widthMs <= SHARP_EDGE_MS || end > spinUntil) return best;
    lastEpoch = epoch;
    lastStart = start;
  }
}

const { epochMs, monotonicMs, widthMs } = anchor();

/**
 * How far wallNow() may be from the true time: half the bracket around the tick it anchored to,
 * or a whole millisecond when no tick was seen within the spin (a process preempted throughout).
 */
export const WALL_CLOCK_UNCERTAINTY_MS = Math.min(widthMs / 2, 1);

/**
 * How far the system clock may move against the monotonic one after the anchor, which wallNow()
 * does not follow: the kernel slews it by up to 500 ppm while NTP corrects it, and a VM's clock
 * is stepped now and then (seen here: 0.49 ms within 5 s on this VM, and a test read 0.12 ms
 * off 17 ms after a sharp anchor). Processes anchored within one bench run stay well inside this.
 */
export const WALL_CLOCK_SLEW_MAX = 500e-6;
export const WALL_CLOCK_STEP_MAX_MS = 0.5;

/** performance.now() at the anchor: the slew bound grows from here. */
export const WALL_CLOCK_ANCHORED_AT_MS = monotonicMs;

/** Milliseconds since the epoch, with sub-millisecond resolution, consistent across processes. */
export function wallNow(): number {
  return epochMs + (performance.now() - monotonicMs);
}
