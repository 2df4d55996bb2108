// Deadlines of many items on one clock timer. Tens of thousands of idle MQTT connections each
// need a keep-alive deadline; a clock timer per connection costs a timer object and a closure
// each (about 250 bytes in V8) and a timer arm and clear per connection. Here an item costs one
// entry in its tick's set, and one timer serves them all: it is armed for the end of the
// earliest tick that holds an item, and fires every item of every tick that has ended.
//
// An item fires no earlier than its deadline and at most one tick (plus the clock timer's own
// lateness) after it. Pure: time and the one timer come from the injected Clock.
import type { Clock } from './clock.js';

/** Where an item was scheduled; give it back to cancel(). 0: not scheduled. */
export type WheelSlot = number;

export class TimerWheel<T> {
  /** Items by tick (deadline / tickMs rounded down); a tick has ended once now >= (tick + 1) * tickMs. */
  readonly #ticks = new Map<number, Set<T>>();
  #timer: unknown;
  /** The tick the timer is armed for; Infinity while none is armed. */
  #armedFor = Number.POSITIVE_INFINITY;
  /**
   * The tick the wheel was made in. Slots count from it, so they stay small integers: a slot
   * from the clock's epoch (about 7e9 ticks of 250 ms) is a boxed double in every item that
   * keeps one, 16 bytes more per idle connection.
   */
  readonly #firstTick: number;

  constructor(
    private readonly clock: Clock,
    readonly tickMs: number,
    /** Called once for each item whose deadline has passed (one shared function: no closure per item). */
    private readonly due: (item: T) => void,
  ) {
    if (!(tickMs >= 1)) throw new RangeError(`tick of ${tickMs} ms: it must be at least 1 ms`);
    this.#firstTick = Math.floor(clock.now() / tickMs);
  }

  /** Items scheduled (tests, metrics). */
  get size(): number {
    let size = 0;
    for (const items of this.#ticks.values()) size += items.size;
    return size;
  }

  /** Schedules `item` to fire at `at` (clock time, ms); an item is scheduled once at a time (cancel its old slot first). */
  schedule(item: T, at: number): WheelSlot {
    // A deadline before the wheel existed is overdue: it fires at the end of the first tick.
    const tick = Math.max(this.#firstTick, Math.floor(at / this.tickMs));
    let items = this.#ticks.get(tick);
    if (items === undefined) {
      items = new Set();
      this.#ticks.set(tick, items);
    }
    items.add(item);
    if (tick < this.#armedFor) this.#arm(tick);
    // Slot 0 means "not scheduled", so the wheel's first tick is slot 1. `| 0` makes it a small
    // integer in V8's eyes (a subtraction of two large doubles is a heap number even when the
    // result is 361), for 2^30 ticks (8.5 years of 250 ms ticks); past that it stays a double.
    const slot = tick - this.#firstTick + 1;
    return slot < 2 ** 30 ? slot | 0 : slot;
  }

  cancel(item: T, slot: WheelSlot): void {
    if (slot === 0) return;
    const tick = slot - 1 + this.#firstTick;
    const items = this.#ticks.get(tick);
    if (items === undefined || !items.delete(item) || items.size > 0) return;
    this.#ticks.delete(tick);
    // The timer stays armed for an emptied tick: it finds nothing due and re-arms for the next.
  }

  #arm(tick: number): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#armedFor = tick;
    this.#timer = this.clock.setTimeout(() => this.#fire(), Math.max(0, (tick + 1) * this.tickMs - this.clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const ended = Math.floor(this.clock.now() / this.tickMs) - 1;
    const dueTicks: number[] = [];
    for (const tick of this.#ticks.keys()) if (tick <= ended) dueTicks.push(tick);
    dueTicks.sort((a, b) => a - b);
    for (const tick of dueTicks) {
      const items = this.#ticks.get(tick);
      // Taken out before the calls: an item may schedule itself again (into a later tick).
      this.#ticks.delete(tick);
      for (const item of items ?? []) this.due(item);
    }
    let next = Number.POSITIVE_INFINITY;
    for (const tick of this.#ticks.keys()) if (tick < next) next = tick;
    if (next < this.#armedFor) this.#arm(next);
  }
}
