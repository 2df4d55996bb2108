// A node:test reporter for `scripts/run-tests.mjs --timings`: once the run ends, one line per
// test file with its wall time (process start to exit, so tsx and module loading count) and its
// number of tests, slowest first. The slowest files are where the suite's time goes; the counts
// show that a faster file still runs every test it ran before.
export default async function* timings(source) {
  const files = new Map();
  const fileOf = (file) => {
    let entry = files.get(file);
    if (entry === undefined) {
      entry = { ms: 0, tests: 0, failed: 0, skipped: 0 };
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
    entry.tests += 1;
    if (event.type === 'test:fail') entry.failed += 1;
    if (data.skip !== undefined || data.todo !== undefined) entry.skipped += 1;
  }
  const rows = [...files].sort((a, b) => b[1].ms - a[1].ms);
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
  yield out;
}
