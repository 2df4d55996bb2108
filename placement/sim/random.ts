// Seeded randomness for the placement simulator: every choice a simulated run makes (latencies,
// drops, partitions, crashes, client operations) is drawn from a Random made from the run's seed,
// so a printed seed replays the run exactly.
//
// The generator is xoshiro128** (Blackman and Vigna), seeded through splitmix32 so that nearby
// seeds (1, 2, 3...) start from unrelated states. It is 32-bit integer arithmetic only, which
// JavaScript does exactly with Math.imul and >>> 0, so a seed gives the same stream on every
// platform.
//
// fork(label) derives a child stream from the parent's seed and the label, never from the
// parent's current position: a component that draws one more number (a new fault, a new client
// operation) leaves the streams of all other components unchanged, so a seed's behaviour shifts
// only where the code changed.

export interface Random {
  /** The seed this stream was made from (a fork's seed is derived from its parent's and its label). */
  readonly seed: number;
  /** A uniformly distributed unsigned 32-bit integer. */
  uint32(): number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, bound); bound must be a positive safe integer. */
  int(bound: number): number;
  /** An integer in [min, max], both inclusive. */
  intBetween(min: number, max: number): number;
  /** True with probability p (p <= 0 never draws true, p >= 1 always). */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy (Fisher–Yates); the input is left as it was. */
  shuffle<T>(items: readonly T[]): T[];
  /** An independent stream named by label; the same label always gives the same stream. */
  fork(label: string): Random;
}

const TWO_TO_32 = 4294967296;

/** splitmix32: a bijective mixer, used to spread a seed over xoshiro's 128 bits of state. */
function splitmix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) >>> 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the label's UTF-16 code units, mixed with the parent seed. */
function forkSeed(parentSeed: number, label: string): number {
  let hash = (0x811c9dc5 ^ parentSeed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    hash = Math.imul(hash ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return splitmix32({ value: hash });
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function createRandom(seed: number): Random {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`random seed must be a safe integer, got ${seed}`);
  const normalized = seed >>> 0;
  const mixer = { value: normalized };
  let s0 = splitmix32(mixer);
  let s1 = splitmix32(mixer);
  let s2 = splitmix32(mixer);
  let s3 = splitmix32(mixer);
  // xoshiro must not start from the all-zero state (it would stay there); splitmix32 never
  // yields four zeros in a row, but the guard costs nothing.
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return result;
  };
  const next = (): number => uint32() / TWO_TO_32;
  const int = (bound: number): number => {
    if (!Number.isSafeInteger(bound) || bound <= 0) throw new RangeError(`int(bound) needs a positive safe integer, got ${bound}`);
    if (bound <= TWO_TO_32) {
      // Rejection sampling keeps every value equally likely (a plain modulo favours small ones).
      const limit = TWO_TO_32 - (TWO_TO_32 % bound);
      for (;;) {
        const value = uint32();
        if (value < limit) return value % bound;
      }
    }
    return Math.floor(next() * bound);
  };
  const random: Random = {
    seed: normalized,
    uint32,
    next,
    int,
    intBetween: (min, max) => {
      if (max < min) throw new RangeError(`intBetween(${min}, ${max}): max is below min`);
      return min + int(max - min + 1);
    },
    chance: (p) => {
      if (p <= 0) return false;
      if (p >= 1) return true;
      return next() < p;
    },
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick() from an empty array');
      return items[int(items.length)] as (typeof items)[number];
    },
    shuffle: (items) => {
      const copy = items.slice();
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const held = copy[i] as (typeof copy)[number];
        copy[i] = copy[j] as (typeof copy)[number];
        copy[j] = held;
      }
      return copy;
    },
    fork: (label) => createRandom(forkSeed(normalized, label)),
  };
  return random;
}
