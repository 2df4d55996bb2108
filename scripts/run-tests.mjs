// Finds the test files of the given folders and runs them with tsx loaded, longest first
// (scripts/run-files.mjs runs them in that order).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// `--concurrency N` sets how many test files run at once (default 2, one per core here);
// TEST_CONCURRENCY overrides it. The integration tests spend most of their time waiting on the
// processes they start, so they take 3. `--timings` (or TEST_TIMINGS=1) adds a table of each
// file's wall time and test count at the end (scripts/test-timings.mjs); `--save-timings` also
// writes those times into scripts/test-durations.json, which orders the next runs; `--list`
// prints the files in the order they would start, and runs nothing. `--batched` runs the files
// in one process per slot instead of one each (see run-files.mjs): for tests that start no
// processes of their own, where a file's own tsx and module loading cost more than its tests.
const args = process.argv.slice(2);
let defaultConcurrency = '2';
let batched = false;
let timings = process.env.TEST_TIMINGS === '1';
let saveTimings = false;
let list = false;
for (;;) {
  if (args[0] === '--concurrency') {
    defaultConcurrency = args[1] ?? '';
    args.splice(0, 2);
  } else if (args[0] === '--timings') {
    timings = true;
    args.splice(0, 1);
  } else if (args[0] === '--save-timings') {
    timings = true;
    saveTimings = true;
    args.splice(0, 1);
  } else if (args[0] === '--batched') {
    batched = true;
    args.splice(0, 1);
  } else if (args[0] === '--list') {
    list = true;
    args.splice(0, 1);
  } else break;
}
const folders = args;
if (folders.length === 0 || !/^[1-9]\d*$/.test(defaultConcurrency)) {
  console.error('usage: node scripts/run-tests.mjs [--concurrency N] [--batched] [--timings] [--save-timings] [--list] FOLDER...');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const DURATIONS = fileURLToPath(new URL('./test-durations.json', import.meta.url));

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

/** Seconds per file (path from the repository root) of an earlier run; empty when there is no such record. */
function knownDurations() {
  try {
    return JSON.parse(readFileSync(DURATIONS, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return {};
    throw error;
  }
}

// The runner starts files in the order given, each as a slot frees up: longest first, so that
// no long file starts last and runs on alone while the other slots have nothing left to do.
// A file without a recorded time (a new one) may be long, so it goes before them all.
const durations = knownDurations();
const durationOf = (file) => durations[relative(root, file)] ?? Infinity;
const files = folders
  .flatMap((folder) => findTests(folder))
  .sort()
  .sort((a, b) => (durationOf(a) === durationOf(b) ? 0 : durationOf(a) > durationOf(b) ? -1 : 1));
if (files.length === 0) {
  console.error(`no *.test.ts files under ${folders.join(', ')}`);
  process.exit(1);
}
if (list) {
  for (const file of files) console.log(`${String(durations[relative(root, file)] ?? '?').padStart(6)}  ${file}`);
  process.exit(0);
}
// Tests start the CLI from dist/ (tests/support/cli-entry.ts), so it is brought up to date with
// the sources once here, before test files that run together could each find it stale.
const build = spawnSync(process.execPath, [fileURLToPath(new URL('./build-if-changed.mjs', import.meta.url))], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const concurrency = process.env.TEST_CONCURRENCY ?? defaultConcurrency;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', fileURLToPath(new URL('./run-files.mjs', import.meta.url)), concurrency, timings ? '1' : '0', batched ? '1' : '0', ...files],
  { stdio: 'inherit', env: saveTimings ? { ...process.env, TEST_DURATIONS_FILE: DURATIONS } : process.env },
);
process.exit(result.status ?? 1);
