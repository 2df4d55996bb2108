// Node 20's test runner does not expand globs, so this finds the test files of the
// given folders and hands them to `node --test` with tsx loaded.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// `--concurrency N` sets how many test files run at once (default 2, one per core here);
// TEST_CONCURRENCY overrides it. The integration tests spend most of their time waiting on the
// processes they start, so they take 3. `--timings` (or TEST_TIMINGS=1) adds a table of each
// file's wall time and test count at the end (scripts/test-timings.mjs).
const args = process.argv.slice(2);
let defaultConcurrency = '2';
let timings = process.env.TEST_TIMINGS === '1';
for (;;) {
  if (args[0] === '--concurrency') {
    defaultConcurrency = args[1] ?? '';
    args.splice(0, 2);
  } else if (args[0] === '--timings') {
    timings = true;
    args.splice(0, 1);
  } else break;
}
const folders = args;
if (folders.length === 0 || !/^[1-9]\d*$/.test(defaultConcurrency)) {
  console.error('usage: node scripts/run-tests.mjs [--concurrency N] [--timings] FOLDER...');
  process.exit(2);
}

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

const files = folders.flatMap((folder) => findTests(folder)).sort();
if (files.length === 0) {
  console.error(`no *.test.ts files under ${folders.join(', ')}`);
  process.exit(1);
}
// Tests start the CLI from dist/ (tests/support/cli-entry.ts), so it is brought up to date with
// the sources once here, before test files that run together could each find it stale.
const build = spawnSync(process.execPath, [fileURLToPath(new URL('./build-if-changed.mjs', import.meta.url))], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const concurrency = process.env.TEST_CONCURRENCY ?? defaultConcurrency;
// Naming any reporter drops the default one (TAP when the output is not a terminal, as in CI),
// so it is named too; the failure summary comes last, where a log's tail shows it.
const reporters = [
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
  '--test-reporter-destination=stdout',
  ...(timings ? [`--test-reporter=${new URL('./test-timings.mjs', import.meta.url).href}`, '--test-reporter-destination=stdout'] : []),
  `--test-reporter=${new URL('./failure-summary.mjs', import.meta.url).href}`,
  '--test-reporter-destination=stdout',
];
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...reporters, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
