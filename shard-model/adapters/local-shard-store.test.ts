import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runShardStoreConformance } from '../conformance.js';
import { LocalShardStore } from './local-shard-store.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

runShardStoreConformance({
  name: 'local journal',
  open: async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-local-'));
    directories.push(directory);
    // Small segments so reads, truncation and tailing cross segment boundaries.
    return LocalShardStore.open(directory, { shardDefaults: { segmentBytes: 1024 } });
  },
});
