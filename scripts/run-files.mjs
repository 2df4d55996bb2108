// The child run-tests.mjs starts (with tsx loaded, which the runner passes on to every test
// process): runs the test files given, in the order given, CONCURRENCY at a time, through
// node:test's run(). `node --test FILE...` would not do: Node 20.20 takes its file arguments as
// glob patterns and sorts what they match by path, so run-tests.mjs's order would be lost.
// Usage: node --import tsx scripts/run-files.mjs CONCURRENCY TIMINGS(0|1) FILE...
import { resolve } from 'node:path';
import { compose } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import failureSummary from './failure-summary.mjs';
import timings from './test-timings.mjs';

const [concurrency, withTimings, ...files] = process.argv.slice(2);
const stream = run({ files: files.map((file) => resolve(file)), concurrency: Number(concurrency) });
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
