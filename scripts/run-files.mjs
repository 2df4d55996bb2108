// The child run-tests.mjs starts (with tsx loaded, which the runner passes on to every test
// process): runs the test files given, in the order given, CONCURRENCY at a time, through
// node:test's run(). `node --test FILE...` would not do: Node 20.20 takes its file arguments as
// glob patterns and sorts what they match by path, so run-tests.mjs's order would be lost.
//
// Batched (BATCHED 1): the files are dealt into CONCURRENCY batches of about equal recorded
// seconds (the order given is longest first), and each batch runs as one test process that
// imports its files one after the other. A test file's process costs about 1 s of CPU before its
// first test (tsx, and loading the modules it imports); the unit and property tests are 219
// files, most of whose tests take milliseconds, so on 2 cores that was about half of their
// phase. The price is isolation: a batch's files share one process, so a root-level hook
// (beforeEach at the top of a file) would run around the other files' tests too, and a file
// that crashes its process ends its batch. No unit or property test file has such hooks; the
// integration tests, which start processes and wait on them, run one file per process.
// Usage: node --import tsx scripts/run-files.mjs CONCURRENCY TIMINGS(0|1) BATCHED(0|1) FILE...
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compose } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import failureSummary from './failure-summary.mjs';
import timings from './test-timings.mjs';

const [concurrency, withTimings, batchedFlag, ...files] = process.argv.slice(2);

/** CONCURRENCY entry files, each importing its share of the files; the files are longest first. */
function batchEntries(paths) {
  let durations = {};
  try {
    durations = JSON.parse(readFileSync(new URL('./test-durations.json', import.meta.url), 'utf8'));
  } catch {
    // No record yet: every file counts the same.
  }
  const root = fileURLToPath(new URL('..', import.meta.url));
  const batches = Array.from({ length: Math.max(1, Math.min(Number(concurrency), paths.length)) }, () => ({ seconds: 0, files: [] }));
  for (const path of paths) {
    const lightest = batches.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    lightest.files.push(path);
    lightest.seconds += durations[relative(root, path)] ?? 1;
  }
  const directory = mkdtempSync(join(tmpdir(), 'shardline-test-batches-'));
  process.on('exit', () => rmSync(directory, { recursive: true, force: true }));
  return batches.map((batch, index) => {
    const entry = join(directory, `batch-${index + 1}-of-${batches.length}.mjs`);
    // A file that fails to load becomes a failed test named after it, and the batch goes on.
    const imports = batch.files.map((file) => `try { await import(${JSON.stringify(pathToFileURL(file).href)}); } catch (error) { test(${JSON.stringify(`${relative(root, file)} did not load`)}, () => { throw error; }); }\n`);
    writeFileSync(entry, `import { test } from 'node:test';\n${imports.join('')}`);
    return entry;
  });
}

const paths = files.map((file) => resolve(file));
const stream = run({ files: batchedFlag === '1' ? batchEntries(paths) : paths, concurrency: Number(concurrency) });
// As `node --test` does: any failed test (a todo one aside) fails the run; a file whose process
// fails outside its tests is reported as a failed test too.
let failed = false;
stream.on('test:fail', (data) => {
  if (data.todo === undefined || data.todo === false) failed = true;
});
// The terminal gets the readable spec report, a log (CI) the TAP one; the failure summary comes
// last, where a log's tail shows it.
const reporters = [process.stdout.isTTY ? new spec() : tap, ...(withTimings === '1' ? [timings] : []), failureSummary];
for (const reporter of reporters) compose(stream, reporter).pipe(process.stdout);
process.on('exit', () => {
  if (failed) process.exitCode = 1;
});
