// `shardline bench journal`: flags, the scratch journal and the output. The workloads live in
// cli/bench/journal-bench.ts, the layout of the results in cli/bench/bench-report.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Journal } from '../../journal/index.js';
import { formatReport, type BenchReport, type ScenarioResult } from '../bench/bench-report.js';
import type { DurabilityMode } from '../../journal/index.js';
import { DEFAULT_SCENARIO_SETTINGS, MAX_RATE, MAX_WINDOW, defaultScenarios, medianMetrics, parseSize, rateScenario, runScenario, selectScenarios, type BenchLimits, type Metrics, type Scenario } from '../bench/journal-bench.js';
import { integerFlag, UsageError, type Command, secondsFlag, boundedIntegerFlag } from '../command.js';
import { createProgress } from '../progress.js';

const DEFAULT_DURATION_SECONDS = 2;
const MAX_DURATION_SECONDS = 600;
const DEFAULT_WARMUP_SECONDS = 0.5;
const MAX_WARMUP_SECONDS = 60;
const DEFAULT_RUNS = 1;
const MAX_RUNS = 50;
const DEFAULT_MAX_MIB = 2048;
const MAX_RECORDS_PER_APPEND = 100_000;
const DURABILITY_CHOICES: readonly DurabilityMode[] = ['fsync', 'interval', 'none'];

const usage = `
Usage: shardline bench journal [flags]

Measures the journal on this machine: append records/s, MB/s and latency percentiles
(p50/p99/p999 of one append call) for 100 B and 1 KiB records in each durability mode
(fsync, interval, none) with 1 and 16 concurrent appenders; batched appends; group commit
(fsync, 16 appenders, several records per append); and sequential reads from the page cache.
The machine may be noisy: use --runs 3 or more and quote the medians it prints.

Scenarios (names are specs; --list shows the defaults):
  append-<size>-<durability>-c<appenders>-b<records per append>   e.g. append-100B-fsync-c16-b100
  read-<size>-b<records per append of the fill>                  e.g. read-1KiB-b100
  rate-<size>-<durability>-r<appends/s>-c<appenders>[-w<window>]  e.g. rate-1KiB-fsync-r5000-c1
  <size> is each record's value size: <n>B or <n>KiB.

Fixed rate (issue 16's latency question): --rate N runs only a rate scenario: --appenders
clients (default 1) take turns to issue N appends/s in total, one --size record each (default
1KiB), in --durability mode (default fsync), for --duration seconds or --count appends. A
client does not wait for its acknowledgements (open loop) unless --window W limits it to W
unacknowledged appends, like an MQTT publisher's in-flight limit. It prints ack latency
p50/p99/p999 and appends/s, and beside them the same disk's raw write + fdatasync latency
measured in the same run. E.g.:
  shardline bench journal --rate 5000 --appenders 1 --duration 10 --runs 3
  shardline bench journal --rate 5000 --appenders 16 --window 1 --duration 10 --runs 3

Flags:
  --data-dir DIR               where the scratch journal goes: a fresh sub-directory of DIR,
                               removed afterwards (default: the OS temp dir, ${tmpdir()})
  --duration SECONDS           measured time per scenario (default ${DEFAULT_DURATION_SECONDS}, at most ${MAX_DURATION_SECONDS})
  --warmup SECONDS             unmeasured warm-up per scenario: appends, or read passes (at
                               least one) (default ${DEFAULT_WARMUP_SECONDS})
  --runs N                     run every scenario N times, report per-metric medians (default ${DEFAULT_RUNS})
  --records-per-append N       records per append in the size x durability x appenders matrix
                               (default ${DEFAULT_SCENARIO_SETTINGS.recordsPerAppend}: per-record latency)
  --batch-records N            records per append of the batched scenarios, durability none,
                               1 appender (default ${DEFAULT_SCENARIO_SETTINGS.batchRecords})
  --group-commit-records N     records per append of the group-commit scenarios, durability
                               fsync, 16 appenders (default ${DEFAULT_SCENARIO_SETTINGS.groupCommitRecords})
  --read-batch-records N       records per append when filling a shard for a read scenario,
                               which sets the size of the batches read (default ${DEFAULT_SCENARIO_SETTINGS.readBatchRecords})
  --scenario PATTERN           run only matching scenarios; repeat or separate with commas;
                               * is a wildcard, otherwise a substring; a full spec not in the
                               defaults runs as given
  --max-mib N                  log MiB one scenario phase may write (default ${DEFAULT_MAX_MIB}); a read
                               scenario fills at most min(this, 256) MiB and reads it in passes
  --rate N                     fixed-rate mode (see above): N appends/s in total
  --appenders N                fixed rate: concurrent clients sharing the rate (default 1)
  --size SIZE                  fixed rate: value bytes per record, <n>B or <n>KiB (default 1KiB)
  --durability MODE            fixed rate: fsync, interval or none (default fsync)
  --window W                   fixed rate: unacknowledged appends per client (default: no limit)
  --count N                    fixed rate: appends per run instead of --duration
  --list                       print the selected scenario names and exit
  --json                       print the results as JSON on stdout
  -h, --help                   this text

A progress bar is drawn on stderr when it is a terminal.
`;



const RATE_ONLY_FLAGS = ['appenders', 'size', 'durability', 'count', 'window'];

function rateScenarioFromFlags(values: Record<string, unknown>): Scenario | null {
  if (values.rate === undefined) {
    const stray = RATE_ONLY_FLAGS.find((name) => values[name] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} only applies with --rate`);
    return null;
  }
  if (values.scenario !== undefined) throw new UsageError('--rate and --scenario do not go together (a rate-... spec can be given as --scenario instead)');
  const rate = boundedIntegerFlag(values, 'rate', 1, 1, MAX_RATE);
  const appenders = boundedIntegerFlag(values, 'appenders', 1, 1, 1024);
  const size = parseSize(typeof values.size === 'string' ? values.size : '1KiB');
  if (size === null) throw new UsageError(`--size must be <n>B or <n>KiB up to 8 MiB, got ${JSON.stringify(values.size)}`);
  const durability = typeof values.durability === 'string' ? values.durability : 'fsync';
  if (!(DURABILITY_CHOICES as readonly string[]).includes(durability)) throw new UsageError(`--durability must be one of ${DURABILITY_CHOICES.join(', ')}, got ${JSON.stringify(durability)}`);
  return rateScenario(size, durability as DurabilityMode, rate, appenders, values.window === undefined ? 0 : boundedIntegerFlag(values, 'window', 1, 1, MAX_WINDOW));
}

function chooseScenarios(values: Record<string, unknown>): Scenario[] {
  const rate = rateScenarioFromFlags(values);
  if (rate !== null) return [rate];
  const all = defaultScenarios({
    recordsPerAppend: boundedIntegerFlag(values, 'records-per-append', DEFAULT_SCENARIO_SETTINGS.recordsPerAppend, 1, MAX_RECORDS_PER_APPEND),
    batchRecords: boundedIntegerFlag(values, 'batch-records', DEFAULT_SCENARIO_SETTINGS.batchRecords, 1, MAX_RECORDS_PER_APPEND),
    groupCommitRecords: boundedIntegerFlag(values, 'group-commit-records', DEFAULT_SCENARIO_SETTINGS.groupCommitRecords, 1, MAX_RECORDS_PER_APPEND),
    readBatchRecords: boundedIntegerFlag(values, 'read-batch-records', DEFAULT_SCENARIO_SETTINGS.readBatchRecords, 1, MAX_RECORDS_PER_APPEND),
  });
  const raw = values.scenario;
  const patterns = (Array.isArray(raw) ? raw : []).flatMap((value) => String(value).split(',')).map((value) => value.trim()).filter((value) => value !== '');
  const { selected, unmatched } = selectScenarios(all, patterns);
  if (unmatched.length > 0) throw new UsageError(`--scenario ${unmatched.map((pattern) => JSON.stringify(pattern)).join(', ')} matches no scenario and is not a valid spec (try --list)`);
  return selected;
}

/** Progress steps per scenario, so a long fixed-rate run moves the bar as it goes. */
const PROGRESS_STEPS = 100;

async function runAll(scenarios: Scenario[], runs: number, limits: BenchLimits, directory: string, probeDirectory: string, signal: AbortSignal): Promise<ScenarioResult[]> {
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const progress = createProgress('bench journal', scenarios.length * runs * PROGRESS_STEPS, `/ ${PROGRESS_STEPS} per scenario`);
  let done = 0;
  const measured = scenarios.map(() => [] as Metrics[]);
  try {
    // Runs are the outer loop, so slow drift of a shared machine spreads over all scenarios.
    for (let run = 0; run < runs && !signal.aborted; run += 1) {
      for (const [index, scenario] of scenarios.entries()) {
        if (signal.aborted) break;
        const base = done;
        const onProgress = (fraction: number): void => progress.update(base + Math.floor(Math.min(1, fraction) * (PROGRESS_STEPS - 1)));
        const context = { journal, limits, now: () => performance.now(), signal, shardName: `bench-${run}-${index}`, probeDirectory, onProgress };
        measured[index]?.push(await runScenario(scenario, context));
        done += PROGRESS_STEPS;
        progress.update(done);
      }
    }
  } finally {
    progress.stop();
    await journal.close();
  }
  return scenarios.map((scenario, index) => {
    const results = measured[index] ?? [];
    return { name: scenario.name, kind: scenario.kind, runs: results, median: medianMetrics(results) };
  });
}

async function run(values: Record<string, unknown>): Promise<number> {
  const scenarios = chooseScenarios(values);
  if (values.list === true) {
    process.stdout.write(`${scenarios.map((scenario) => scenario.name).join('\n')}\n`);
    return 0;
  }
  let durationSeconds = secondsFlag(values, 'duration', DEFAULT_DURATION_SECONDS, 0.01, MAX_DURATION_SECONDS);
  if (values.count !== undefined) {
    const rate = scenarios[0]?.kind === 'rate' ? scenarios[0].rate : 1;
    if (values.duration !== undefined) throw new UsageError('give --duration or --count, not both');
    durationSeconds = Math.min(MAX_DURATION_SECONDS, integerFlag(values, 'count', 1, 1) / rate);
  }
  const limits: BenchLimits = {
    durationMs: durationSeconds * 1000,
    warmupMs: secondsFlag(values, 'warmup', DEFAULT_WARMUP_SECONDS, 0, MAX_WARMUP_SECONDS) * 1000,
    maxBytes: boundedIntegerFlag(values, 'max-mib', DEFAULT_MAX_MIB, 1, 1024 * 1024) * 2 ** 20,
  };
  const runs = boundedIntegerFlag(values, 'runs', DEFAULT_RUNS, 1, MAX_RUNS);
  const base = resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : tmpdir());
  const directory = await mkdtemp(join(base, 'shardline-bench-'));
  const aborter = new AbortController();
  const onInterrupt = (): void => aborter.abort();
  process.once('SIGINT', onInterrupt);
  const startedAt = new Date();
  const started = performance.now();
  let results: ScenarioResult[];
  try {
    results = await runAll(scenarios, runs, limits, join(directory, 'journal'), directory, aborter.signal);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    await rm(directory, { recursive: true, force: true });
  }
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    node: process.version,
    cpus: cpus().length,
    totalMemoryBytes: totalmem(),
    dataDirectory: directory,
    runs,
    limits,
    scenarios: results,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  process.stdout.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  if (aborter.signal.aborted) {
    process.stderr.write('shardline bench journal: interrupted; the figures cover the scenarios that ran\n');
    return 130;
  }
  return 0;
}

export const benchJournalCommand: Command = {
  path: ['bench', 'journal'],
  summary: 'Measure journal append and read throughput and append latency on this machine',
  usage,
  options: {
    'data-dir': { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    runs: { type: 'string' },
    'records-per-append': { type: 'string' },
    'batch-records': { type: 'string' },
    'group-commit-records': { type: 'string' },
    'read-batch-records': { type: 'string' },
    scenario: { type: 'string', multiple: true },
    'max-mib': { type: 'string' },
    rate: { type: 'string' },
    appenders: { type: 'string' },
    size: { type: 'string' },
    durability: { type: 'string' },
    count: { type: 'string' },
    window: { type: 'string' },
    list: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  run: (values) => run(values),
};
