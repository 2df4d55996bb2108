// The result of `shardline bench journal` and its text form. Pure: the command gathers the
// figures, this module only lays them out. Every figure shown is the median over the runs.
import type { BenchLimits, Metrics, Scenario } from './journal-bench.js';

export interface ScenarioResult {
  name: string;
  kind: Scenario['kind'];
  /** One entry per run, in run order. */
  runs: Metrics[];
  /** Per-metric median of `runs`. */
  median: Metrics;
}

export interface BenchReport {
  startedAt: string;
  node: string;
  cpus: number;
  totalMemoryBytes: number;
  dataDirectory: string;
  runs: number;
  limits: BenchLimits;
  scenarios: ScenarioResult[];
  /** Wall-clock time of the whole bench, in seconds. */
  elapsedSeconds: number;
}

interface Column {
  title: string;
  metric: string;
  digits: number;
}

const APPEND_COLUMNS: Column[] = [
  { title: 'records/s', metric: 'recordsPerSecond', digits: 0 },
  { title: 'appends/s', metric: 'appendsPerSecond', digits: 0 },
  { title: 'MB/s payload', metric: 'payloadMBps', digits: 1 },
  { title: 'MB/s log', metric: 'logMBps', digits: 1 },
  { title: 'p50 µs', metric: 'p50Us', digits: 0 },
  { title: 'p99 µs', metric: 'p99Us', digits: 0 },
  { title: 'p999 µs', metric: 'p999Us', digits: 0 },
];

const RATE_COLUMNS: Column[] = [
  { title: 'appends/s', metric: 'appendsPerSecond', digits: 0 },
  { title: 'p50 µs', metric: 'p50Us', digits: 0 },
  { title: 'p99 µs', metric: 'p99Us', digits: 0 },
  { title: 'p999 µs', metric: 'p999Us', digits: 0 },
  { title: 'max µs', metric: 'maxUs', digits: 0 },
  { title: 'p99 from slot µs', metric: 'fromSlotP99Us', digits: 0 },
  { title: 'disk fdatasync p50 µs', metric: 'diskSyncP50Us', digits: 0 },
  { title: 'p99 µs', metric: 'diskSyncP99Us', digits: 0 },
  { title: 'p999 µs', metric: 'diskSyncP999Us', digits: 0 },
];

const READ_COLUMNS: Column[] = [
  { title: 'records/s', metric: 'recordsPerSecond', digits: 0 },
  { title: 'MB/s payload', metric: 'payloadMBps', digits: 0 },
  { title: 'MB/s log', metric: 'logMBps', digits: 0 },
  { title: 'MB/s batches', metric: 'batchMBps', digits: 0 },
  { title: 'MB/s raw file', metric: 'rawReadMBps', digits: 0 },
  { title: 'MB/s raw+xxh64', metric: 'rawChecksumMBps', digits: 0 },
  { title: 'MiB read', metric: 'logMiB', digits: 0 },
];

function formatNumber(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(heading: string, columns: Column[], results: ScenarioResult[]): string[] {
  const rows = results.map((result) => {
    const metrics: Metrics = { ...result.median, logMiB: (result.median.logBytes ?? Number.NaN) / 2 ** 20 };
    return [result.name, ...columns.map((column) => formatNumber(metrics[column.metric], column.digits))];
  });
  const header = [heading, ...columns.map((column) => column.title)];
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => (index === 0 ? cell.padEnd(widths[index] ?? 0) : cell.padStart(widths[index] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

export function formatReport(report: BenchReport): string {
  const { limits } = report;
  const lines = [
    `shardline bench journal: ${report.startedAt}, node ${report.node}, ${report.cpus} CPUs, ${(report.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM`,
    `data dir ${report.dataDirectory}; ${report.runs} run(s), figures are medians over runs; ${limits.durationMs / 1000} s per scenario after ${limits.warmupMs / 1000} s warm-up, at most ${Math.round(limits.maxBytes / 2 ** 20)} MiB of log per phase`,
    'MB = 10^6 bytes; payload = record values; log = bytes in segment files (batch and record headers included); latency = one append call, start to acknowledgement',
    '',
  ];
  const appends = report.scenarios.filter((result) => result.kind === 'append');
  const rates = report.scenarios.filter((result) => result.kind === 'rate');
  const reads = report.scenarios.filter((result) => result.kind === 'read');
  if (appends.length > 0) lines.push(...table('append scenario', APPEND_COLUMNS, appends), '');
  if (rates.length > 0) {
    lines.push(...table('fixed-rate scenario', RATE_COLUMNS, rates));
    lines.push(
      'fixed rate: one record per append, issued on a fixed schedule without waiting for earlier acknowledgements (open loop); latency = append call to acknowledgement; from slot = from the scheduled time (counts the pacer running late on a busy machine).',
      'disk fdatasync: the same disk right after, 4 KiB appended to a scratch file then fdatasync, synchronous calls on the main thread: the floor an fsync-mode acknowledgement cannot beat.',
      '',
    );
  }
  if (reads.length > 0) {
    lines.push(...table('read scenario', READ_COLUMNS, reads));
    lines.push('records/s, MB/s payload and MB/s log: Journal.read (checksum checked, records decoded); MB/s batches: Journal.readBatches (checksum checked, batches as stored, not decoded); raw file: plain sequential file reads; raw+xxh64: the same plus hashing every byte.', '');
  }
  lines.push(`elapsed ${report.elapsedSeconds.toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}
