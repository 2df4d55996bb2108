import { runShardStoreConformance } from '../conformance.js';
import { MemoryShardStore } from './memory-shard-store.js';

runShardStoreConformance({ name: 'memory', open: async () => new MemoryShardStore() });
