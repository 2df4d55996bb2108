// A node:test reporter for `scripts/run-tests.mjs --timings`: once the run ends, one line per
// test file with its wall time (process start to exit, so tsx and module loading count) and its
// number of tests, slowest first. The slowest files are where the suite's time goes; the counts
// show that a faster file still runs every test it ran before. With TEST_DURATIONS_FILE set
// (`run-tests.mjs --save-timings`), each file's seconds are also merged into that JSON file,
// which run-tests.mjs reads to start the longest files first. A file run inside a batch
// (run-tests.mjs --batched) has no process of its own: its time is that of its top-level tests
// and suites, and the batches' entry files are left out.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Merges this run's seconds per file into the record; files that no longer exist leave it. */
function saveDurations(path, rows) {
  const root = dirname(dirname(path));
  const record = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  // Only test files: a shared suite (shard-model/conformance.ts) shows up as a file of its own.
  for (const [file, entry] of rows) if (file.endsWith('.test.ts')) record[relative(root, file)] = Math.round(entry.ms / 100) / 10;
  const kept = Object.keys(record)
    .filter((file) => existsSync(join(root, file)))
    .sort();
  writeFileSync(path, JSON.stringify(Object.fromEntries(kept.map((file) => [file, record[file]])), null, 2) + '\n');
}

export default async function* timings(source) {
  const files = new Map();
  const fileOf = (file) => {
    let entry = files.get(file);
    if (entry === undefined) {
      entry = { ms: 0, topLevelMs: 0, tests: 0, failed: 0, skipped: 0 };
      files.set(file, entry);
    }
    return entry;
  };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail' && event.type !== 'test:complete') continue;
    const { data } = event;
    if (data.file === undefined) continue;
    if (data.name === data.file && data.nesting === 0) {
      // The file's own entry, which the runner completes when its process exits.
      if (event.type === 'test:complete') fileOf(data.file).ms = data.details.duration_ms;
      continue;
    }
    // Counted like the runner's summary: every test and subtest, once.
    if (event.type === 'test:complete') continue;
    const entry = fileOf(data.file);
    if (data.nesting === 0) entry.topLevelMs += data.details?.duration_ms ?? 0;
    entry.tests += 1;
    if (event.type === 'test:fail') entry.failed += 1;
    if (data.skip !== undefined || data.todo !== undefined) entry.skipped += 1;
  }
  for (const entry of files.values()) if (entry.ms === 0) entry.ms = entry.topLevelMs;
  const rows = [...files].filter(([file]) => file.endsWith('.test.ts')).sort((a, b) => b[1].ms - a[1].ms);
  const cwd = process.cwd() + '/';
  let total = 0;
  let tests = 0;
  let out = '\ntimings (wall per file, slowest first)\n     secs  tests  file\n';
  for (const [file, entry] of rows) {
    total += entry.ms;
    tests += entry.tests;
    const notes = [entry.failed > 0 ? `${entry.failed} failed` : '', entry.skipped > 0 ? `${entry.skipped} skipped` : '']
      .filter((note) => note !== '')
      .join(', ');
    const name = file.startsWith(cwd) ? file.slice(cwd.length) : file;
    out += `${(entry.ms / 1000).toFixed(1).padStart(9)}  ${String(entry.tests).padStart(5)}  ${name}${notes === '' ? '' : ` (${notes})`}\n`;
  }
  out += `${(total / 1000).toFixed(1).padStart(9)}  ${String(tests).padStart(5)}  total over ${rows.length} files (summed, not wall)\n`;
  const record = process.env.TEST_DURATIONS_FILE;
  if (record !== undefined && record !== '') {
    saveDurations(record, rows);
    out += `seconds per file saved in ${record}\n`;
  }
  yield out;
}
