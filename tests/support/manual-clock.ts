// A broker clock for engine tests: time moves only when told, and due timers fire in due order
// (ties: first scheduled first), each followed by a settle so the promise reactions they start
// have run before the next one fires.
import assert from 'node:assert/strict';
import type { Clock } from '../../engine/index.js';

/** Lets every pending promise reaction run (memory stores do no real I/O). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class ManualClock implements Clock {
  #now = 1_700_000_000_000;
  #nextId = 1;
  readonly #timers = new Map<number, { due: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId;
    this.#nextId += 1;
    this.#timers.set(id, { due: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Runs the timers due up to now + ms; `between` sees the clock at each firing first. */
  async advance(ms: number, between?: (now: number) => void): Promise<void> {
    const target = this.#now + ms;
    for (let fired = 0; ; fired += 1) {
      assert.ok(fired < 100_000, 'timers keep rescheduling at the same instant');
      let next: [number, { due: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].due <= target && (next === undefined || entry[1].due < next[1].due)) next = entry;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].due);
      between?.(this.#now);
      next[1].callback();
      await settle();
    }
    this.#now = target;
    between?.(this.#now);
  }
}
