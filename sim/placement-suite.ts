// The placement cluster simulation (placement/sim/cluster.ts) as a suite for `npm run sim` and
// the property tests: one seed is one whole run (3 or 5 voters, faults, clients, checkers).
// The variants switch on a deliberate bug in the core or the driver; the self-tests require
// the suite to catch each one, so a checker that has gone blind fails loudly.
import { BROKEN_VARIANTS, runCluster, type BrokenVariant } from '../placement/sim/testing.js';
import type { SimSuite } from './suite.js';

export const placementSuite: SimSuite = {
  name: 'placement',
  summary: 'a Raft placement cluster under partitions, crashes, torn disks and clock drift; safety, linearizability, liveness after heal',
  defaultSeeds: 2000,
  variants: [...BROKEN_VARIANTS],
  runSeed(seed, options) {
    const variant = options.variant;
    if (variant !== undefined && !(BROKEN_VARIANTS as readonly string[]).includes(variant)) throw new Error(`placement suite has no variant ${variant}`);
    const result = runCluster(seed, variant === undefined ? {} : { variant: variant as BrokenVariant });
    if (result.failure === null) return Promise.resolve(null);
    const stats = Object.entries(result.stats).map(([key, value]) => `${key} ${value}`).join(', ');
    return Promise.resolve({ seed, message: result.failure.split('\n')[0]!, detail: `run: ${stats}\nlast events:\n${result.trace}\n\n${result.failure}` });
  },
};
