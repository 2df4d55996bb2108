// `shardline shard verify`: checks a data directory's files (audit module) and prints each
// problem with its place; the exit status says whether any is error-level damage.
import { AUDIT_PROBLEMS, hasErrors, verifyJournal, type AuditProblem, type VerifyReport } from '../../journal/index.js';
import { DEFAULT_DATA_DIR, stringFlag, type Command } from '../command.js';
import { lazyProgress } from '../lazy-progress.js';
import { Output } from '../output.js';

const usage = `
Usage: shardline shard verify [--data-dir DIR] [--shard NAME] [--json]

Checks every batch of every segment of a journal data directory (magic number, length,
format version, checksum, offset and epoch order, record structure), each segment's .index
and .timeindex (present, valid, written for the log's current size, every entry true to the
log), and that segments do not overlap. It reads the files directly: no running node is
needed, the journal lock is not taken and nothing is written, so it is safe beside a running
node and on a damaged journal.

Flags:
  --data-dir DIR   the journal's data directory (default ./data, as for shardline start)
  --shard NAME     verify this shard only
  --json           print one JSON object: shards, segments, batches, records, bytesChecked,
                   errors, warnings, lockHolder (pid of the running node that holds the
                   directory's lock, or null), activeLogs (each shard's active segment log),
                   and problems (each: severity, code, shard, segment, position, message)
  -h, --help       this text

Output: one line per problem (severity, SL_AUDIT_* code, shard, file, byte position in that
file, what is wrong), then a summary line. docs/errors.md explains each code and its fix.
Warnings are things the journal repairs or ignores when it opens (a stale or missing index,
a torn tail on the active segment). Beside a running node (the directory's journal.lock names a
live process), the active segments' indexes are stale or missing by design (they are written
when a segment is sealed or the journal closes): the text output says so once, in a note line,
instead of one warning per shard; --json lists them all. A progress bar is drawn on stderr when
it is a terminal.

Exit status: 0 no error-level problem (warnings allowed); 1 error-level damage, or the
directory is not a readable journal, or --shard names no shard; 2 bad flags.
`;

function problemLine(found: AuditProblem): string {
  const place = [`shard ${found.shard}`, found.segment === '' ? null : `file ${found.segment}`, `byte ${found.position}`].filter((part) => part !== null).join(', ');
  return `${found.severity.padEnd(7)}  ${found.code.padEnd(26)}  ${place}: ${found.message}\n`;
}

/** A stale or missing index on an active segment while a node holds the lock: expected, not a finding. */
function expectedWhileLive(report: VerifyReport): (found: AuditProblem) => boolean {
  if (report.lockHolder === null) return () => false;
  const activeStems = new Set(report.activeLogs.map((active) => `${active.shard}/${active.log.replace(/\.log$/, '')}`));
  return (found) =>
    found.severity === 'warning' &&
    (found.code === AUDIT_PROBLEMS.indexStale.code || found.code === AUDIT_PROBLEMS.indexMissing.code) &&
    activeStems.has(`${found.shard}/${found.segment.replace(/\.(log|index|timeindex)$/, '')}`);
}

function counts(report: VerifyReport): { errors: number; warnings: number } {
  const errors = report.problems.filter((found) => found.severity === 'error').length;
  return { errors, warnings: report.problems.length - errors };
}

function summaryLine(report: VerifyReport, shown: readonly AuditProblem[]): string {
  const errors = shown.filter((found) => found.severity === 'error').length;
  const warnings = shown.length - errors;
  const checked = [count(report.shards, 'shard'), count(report.segments, 'segment'), count(report.batches, 'batch', 'batches'), count(report.records, 'record'), count(report.bytesChecked, 'byte')];
  const verdict = errors + warnings === 0 ? 'no problems' : `${count(errors, 'error')}, ${count(warnings, 'warning')}`;
  return `verified ${checked.join(', ')}: ${verdict}\n`;
}

function liveNote(report: VerifyReport, expected: readonly AuditProblem[]): string {
  const shards = new Set(expected.map((found) => found.shard)).size;
  return `note     a running node (pid ${report.lockHolder ?? '?'}) has this journal open: the active segment's index is stale or missing in ${count(shards, 'shard')}, as expected (written when the segment is sealed or the node stops; rebuilt from the log on open); not counted below\n`;
}

function count(value: number, one: string, many = `${one}s`): string {
  return `${value} ${value === 1 ? one : many}`;
}

export const shardVerifyCommand: Command = {
  path: ['shard', 'verify'],
  summary: 'Check every batch and index of a data directory (reads files; safe beside a running node)',
  usage,
  options: { 'data-dir': { type: 'string' }, shard: { type: 'string' }, json: { type: 'boolean' } },
  async run(values) {
    const dataDir = stringFlag(values, 'data-dir', DEFAULT_DATA_DIR);
    const shard = values.shard === undefined ? undefined : stringFlag(values, 'shard');
    const progress = lazyProgress('verify');
    let report: VerifyReport;
    try {
      report = await verifyJournal(dataDir, { shard, onProgress: progress.onProgress });
    } finally {
      progress.stop();
    }
    const output = new Output();
    if (values.json === true) {
      const { problems, ...totals } = report;
      await output.write(`${JSON.stringify({ ...totals, ...counts(report), problems }, null, 2)}\n`);
    } else {
      const isExpected = expectedWhileLive(report);
      const expected = report.problems.filter(isExpected);
      const shown = report.problems.filter((found) => !isExpected(found));
      if (expected.length > 0) await output.write(liveNote(report, expected));
      for (const found of shown) if (!(await output.write(problemLine(found)))) break;
      await output.write(summaryLine(report, shown));
    }
    return hasErrors(report) ? 1 : 0;
  },
};
