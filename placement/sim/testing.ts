// The placement simulations' runners, for the property tests and `npm run sim` (index.ts holds
// the building blocks the simulators themselves import, so the runners stay out of it).
export { BROKEN_VARIANTS, runCluster, type BrokenVariant } from './cluster.js';
export { REPLICA_BROKEN_VARIANTS, runReplicaCluster, type ReplicaBrokenVariant } from './replica-cluster.js';
