// shard-model/: the ShardStore interface and its adapters. This is the layer's public entry.
export type { ShardStore, TailOptions } from './shard-store.js';
export { LocalShardStore } from './adapters/local-shard-store.js';
export { MemoryShardStore, type MemoryShardStoreOptions } from './adapters/memory-shard-store.js';
