// shard-model/'s entry for test code: the public entry plus the conformance suite every
// ShardStore adapter runs. Running code imports shard-model/index.js.
export * from './index.js';
export { runShardStoreConformance } from './conformance.js';
