// journal/replication's entry for test code and sim/ (the simulator and its broken variants);
// running code imports ./index.js.
export * from './index.js';
export { REASSIGN_BROKEN_VARIANTS, REPLICATION_BROKEN_VARIANTS, runReplicationCluster, type ReassignBrokenVariant, type ReplicationBrokenVariant, type ReplicationRunOptions, type ReplicationRunResult, type SimElector } from './sim/replication-cluster.js';
