// The replicated journal's simulation (journal/replication/sim/replication-cluster.ts) as a
// suite for `npm run sim` and the property tests: one seed is one whole run (3 or 5 replicas,
// faults, a client, placement's stand-in, the checkers). The variants switch on a deliberate
// bug in a core or in the election; the self-tests require the suite to catch each one.
import { REPLICATION_BROKEN_VARIANTS, runReplicationCluster, type ReplicationBrokenVariant } from '../journal/replication/testing.js';
import type { SimSuite } from './suite.js';

export const replicationSuite: SimSuite = {
  name: 'replication',
  summary: 'a shard replica set (leader epochs, majority-durable HW, truncation by epoch history) under partitions, lossy links and crashes that lose unsynced data; no acked record lost, log matching, reads only below the HW, liveness after heal',
  defaultSeeds: 1000,
  variants: [...REPLICATION_BROKEN_VARIANTS],
  runSeed(seed, options) {
    const variant = options.variant;
    if (variant !== undefined && !(REPLICATION_BROKEN_VARIANTS as readonly string[]).includes(variant)) throw new Error(`replication suite has no variant ${variant}`);
    // SIM_TRACE=full keeps every event of the run instead of the last ones (long, for replays).
    const traceCapacity = process.env.SIM_TRACE === 'full' ? Number.MAX_SAFE_INTEGER : 300;
    const result = runReplicationCluster(seed, { traceCapacity, ...(variant === undefined ? {} : { variant: variant as ReplicationBrokenVariant }) });
    if (result.failure === null) return Promise.resolve(null);
    const stats = Object.entries(result.stats).map(([key, value]) => `${key} ${value}`).join(', ');
    return Promise.resolve({ seed, message: result.failure.split('\n')[0] as string, detail: `run: ${stats}\nlast events:\n${result.trace}\n\n${result.failure}` });
  },
};
