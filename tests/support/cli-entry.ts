// How tests start the `shardline` CLI: node on the compiled dist/cli/main.js, which is what the
// installed bin (bin/shardline.js) runs. Loading the sources through tsx instead costs each
// process about 0.6 s of CPU and 45 MB more, and the integration tests start hundreds of them on
// a 2-core machine.
//
// dist/ must be built from today's sources, or a test would pass or fail on stale code:
// scripts/run-tests.mjs runs scripts/build-if-changed.mjs before any test file, and the first
// call here in each test process runs it again (a few milliseconds when nothing changed), which
// covers a file run on its own after an edit. A lock keeps test files started together from
// building at the same time.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ENTRY = join(ROOT, 'dist', 'cli', 'main.js');
const LOCK = join(tmpdir(), `shardline-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 16)}.lock`);
// A build takes about 15 s on the test machines; a lock this old was left by a killed process.
const STALE_LOCK_MS = 5 * 60_000;

let built = false;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function lock(): void {
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    try {
      if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
    } catch {
      // released between the mkdir and the stat
    }
    sleep(100);
  }
}

/** Builds dist/ if a source changed since the last build; throws with the build's output if it fails. */
export function ensureCliBuilt(): void {
  if (built) return;
  lock();
  try {
    const result = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-if-changed.mjs')], { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`scripts/build-if-changed.mjs failed (exit ${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
  built = true;
}

/** The node arguments that run `shardline ARGS` from an up-to-date dist/ (spawn them with process.execPath). */
export function cliArgs(args: readonly string[] = []): string[] {
  ensureCliBuilt();
  return [ENTRY, ...args];
}
