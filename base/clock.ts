// Time as a dependency: a core that reads Date.now or arms its own timers cannot be driven by a
// test or the simulator, so every layer takes a Clock and the node passes systemClock.

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    // Unreferenced: a pending timer must not keep the process from exiting.
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
