// The placement service's entry for test code: the public entry plus an in-process group of
// voters on loopback (test-cluster.ts) and the wire names a test needs to speak raw gRPC.
export * from './index.js';
export { CLUSTER_METADATA_KEY, TOKEN_METADATA_KEY, placementService } from './placement-proto.js';
export { CLUSTER_ID, CLUSTER_TOKEN, startCluster, waitFor, type ClusterPersistence, type TestCluster } from './test-cluster.js';
