// The simulator's seeded randomness, on journal/sim's mulberry32 (placement/sim has a richer
// generator, but journal/ sits below placement/ and may not import it). fork() derives a
// stream from the seed and a label, not from the parent's position, so drawing one more number
// in one component (the network, faults, the workload) leaves the others' choices unchanged.
import { mulberry32 } from '../../sim/mulberry32.js';

export interface SimRandom {
  next(): number;
  int(bound: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: readonly T[]): T[];
  fork(label: string): SimRandom;
}

export function createSimRandom(seed: number): SimRandom {
  const base = mulberry32(seed);
  const random: SimRandom = {
    next: base.next,
    int: base.int,
    chance: (p) => p > 0 && base.next() < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick() from an empty array');
      return items[base.int(items.length)] as (typeof items)[number];
    },
    shuffle: (items) => {
      const copy = items.slice();
      for (let i = copy.length - 1; i > 0; i--) {
        const j = base.int(i + 1);
        [copy[i], copy[j]] = [copy[j] as (typeof copy)[number], copy[i] as (typeof copy)[number]];
      }
      return copy;
    },
    fork: (label) => {
      let hash = (0x811c9dc5 ^ seed) >>> 0;
      for (let i = 0; i < label.length; i++) hash = Math.imul(hash ^ label.charCodeAt(i), 0x01000193) >>> 0;
      return createSimRandom(hash);
    },
  };
  return random;
}
