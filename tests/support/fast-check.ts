// The project's fast-check replay convention in one place: a failing property prints its seed and
// path; FC_SEED (and FC_PATH) replay exactly that run, FC_NUM_RUNS runs more (or fewer) than the
// test's default.

/** Spread into `fc.assert` parameters: empty unless FC_SEED is set. */
export const replay: { seed?: number; path?: string } = process.env.FC_SEED === undefined ? {} : { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH };

/** FC_NUM_RUNS when set, else the test's own default. */
export function numRuns(fallback: number): number {
  return Number(process.env.FC_NUM_RUNS ?? fallback);
}
