// A small file system a test can fill: a size-limited tmpfs mounted on a fresh temporary
// directory (needs root, which the test machines have). Disk-full tests use it to get real
// ENOSPC from the kernel rather than a simulated one. Unmount in an `after` hook.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallFilesystem {
  directory: string;
  unmount(): Promise<void>;
}

export async function mountSmallFilesystem(sizeBytes: number): Promise<SmallFilesystem> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-small-fs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', directory]);
  let mounted = true;
  return {
    directory,
    async unmount() {
      // Lazy: a test that failed half-way may still hold files open there; the mount goes
      // away once they are closed (at the latest when the test process exits).
      if (mounted) execFileSync('umount', ['-l', directory]);
      mounted = false;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
