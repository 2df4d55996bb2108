// A small seeded PRNG for the simulated disk: every random choice of a simulation (fault draws,
// what a power cut keeps) comes from here, so a failing seed replays exactly.

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, bound) (0 when bound <= 0). */
  int(bound: number): number;
}

export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (bound) => (bound <= 0 ? 0 : Math.floor(next() * bound)),
  };
}
