// The placement replica simulation (placement/sim/replica-cluster.ts) as a suite for `npm run
// sim` and the property tests: one seed is one whole run of PlacementReplicas with the real
// metadata state machine (3 or 5 voters, faults, clients, watchers, checkers). The variants
// switch on a deliberate bug in the replica or its driver; the self-tests require the suite to
// catch each one.
import { REPLICA_BROKEN_VARIANTS, runReplicaCluster, type ReplicaBrokenVariant } from '../placement/sim/testing.js';
import type { SimSuite } from './suite.js';

export const placementReplicaSuite: SimSuite = {
  name: 'placement-replica',
  summary: 'placement replicas (Raft + metadata state machine) under partitions, crashes, torn disks and drift; exactly-once, epochs, watches, linearizability, liveness',
  defaultSeeds: 1000,
  variants: [...REPLICA_BROKEN_VARIANTS],
  runSeed(seed, options) {
    const variant = options.variant;
    if (variant !== undefined && !(REPLICA_BROKEN_VARIANTS as readonly string[]).includes(variant)) throw new Error(`placement-replica suite has no variant ${variant}`);
    const result = runReplicaCluster(seed, variant === undefined ? {} : { variant: variant as ReplicaBrokenVariant });
    if (result.failure === null) return Promise.resolve(null);
    const stats = Object.entries(result.stats).map(([key, value]) => `${key} ${value}`).join(', ');
    return Promise.resolve({ seed, message: result.failure.split('\n')[0]!, detail: `run: ${stats}\nlast events:\n${result.trace}\n\n${result.failure}` });
  },
};
