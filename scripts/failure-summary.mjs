// A node:test reporter that run-tests.mjs always adds: after the run, every failed test again,
// with its file and the first lines of its error. A CI log is often read from its tail only, and
// the runner's own summary there gives the count of failures but not which tests they were.
export default async function* failureSummary(source) {
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { data } = event;
    // A suite or file fails because a test in it did; that test is listed already.
    if (data.details?.error?.failureType === 'subtestsFailed') continue;
    const error = data.details?.error;
    const cause = error?.cause ?? error;
    const message = String(cause?.message ?? cause ?? 'unknown error').split('\n').slice(0, 6).join('\n      ');
    failures.push(`  ✖ ${data.name}\n      file: ${data.file ?? '?'}\n      ${message}`);
  }
  if (failures.length === 0) return;
  yield `\nfailed tests (${failures.length}):\n${failures.join('\n')}\n`;
}
