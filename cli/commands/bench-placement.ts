// `shardline bench placement`: flags, the scratch directory and the output. The workload lives
// in cli/bench/placement-bench.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runPlacementBench, type LatencySummary, type PlacementBenchResult } from '../bench/placement-bench.js';
import { UsageError, type Command, boundedIntegerFlag } from '../command.js';
import { createProgress } from '../progress.js';

const DEFAULTS = { voters: 3, writers: 4, proposals: 5_000, durationSeconds: 20, valueBytes: 100, floorAppends: 1_000, tickMs: 100 };
const MAX_DURATION_SECONDS = 600;
/** The floor is bounded in time too, so a slow disk cannot stall the run before the group starts. */
const FLOOR_DURATION_MS = 10_000;

const usage = `
Usage: shardline bench placement [flags]

Measures the placement group on this machine: voters (${DEFAULTS.voters} by default) in this process on 127.0.0.1
(gRPC), each on durable storage (the Raft log on a journal shard with fsync, the applied state
in LevelDB) in a scratch directory, and N writers each proposing one metadata command at a
time (a setting of --value-bytes bytes) until --proposals commits or --duration. Prints the
commit throughput and the p50/p90/p99/max commit latency (a client's call to its answer, sent
once a quorum fsynced the entry and the leader applied it).

In the same run, before the group starts, it measures the floor: the journal's own append of
one record with fsync, one appender, on the same disk (what one voter's save costs), and
prints commit latency / floor. The machine may be noisy: run it 3 times and quote medians.

Flags:
  --data-dir DIR       where the scratch directory goes, removed afterwards (default: the OS
                       temp dir, ${tmpdir()}); put it on the disk you want to measure
  --voters N           voters, 1..7 (default ${DEFAULTS.voters})
  --writers N          concurrent writers, each with its own client, 1..256 (default ${DEFAULTS.writers})
  --proposals N        commits to measure in all (default ${DEFAULTS.proposals})
  --duration SECONDS   at most this long for the measured proposals (default ${DEFAULTS.durationSeconds}, at most ${MAX_DURATION_SECONDS})
  --value-bytes N      bytes of each proposed value, 1..65536 (default ${DEFAULTS.valueBytes})
  --floor-appends N    journal appends of the floor (default ${DEFAULTS.floorAppends}; at most ${FLOOR_DURATION_MS / 1000} s)
  --tick-ms N          Raft tick (default ${DEFAULTS.tickMs}, as a node runs it)
  --json               print the results as JSON on stdout
  -h, --help           this text

A progress bar is drawn on stderr when it is a terminal.
`;


function seconds(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || value <= 0 || value > MAX_DURATION_SECONDS) {
    throw new UsageError(`--${name} must be a number of seconds in (0, ${MAX_DURATION_SECONDS}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;
const latencies = (s: LatencySummary): string => `p50 ${ms(s.p50Ms)}  p90 ${ms(s.p90Ms)}  p99 ${ms(s.p99Ms)}  max ${ms(s.maxMs)}`;

export function formatPlacementReport(result: PlacementBenchResult, context: { directory: string; startedAt: string }): string {
  return [
    `shardline bench placement: ${result.voters} voters on 127.0.0.1, durable storage (fsync) under ${context.directory}`,
    `  started ${context.startedAt}, node ${process.version}, ${cpus().length} CPUs, load ${loadavg().map((load) => load.toFixed(2)).join(' ')}`,
    '',
    `  writers          ${result.writers}, ${result.valueBytes} B values`,
    `  commits          ${result.commit.count} in ${result.seconds.toFixed(2)} s: ${result.commitsPerSecond.toFixed(0)} commits/s`,
    `  commit latency   ${latencies(result.commit)}`,
    `  journal floor    ${latencies(result.floor)}  (${result.floor.count} appends of ${result.floor.recordBytes} B, fsync, 1 appender)`,
    `  commit / floor   p50 ${result.ratio.p50.toFixed(1)}x  p99 ${result.ratio.p99.toFixed(1)}x`,
    `  leader changes   ${result.leaderChanges} (1: the first election only)`,
    '',
  ].join('\n');
}

async function run(values: Record<string, unknown>): Promise<number> {
  const voters = boundedIntegerFlag(values, 'voters', DEFAULTS.voters, 1, 7);
  const writers = boundedIntegerFlag(values, 'writers', DEFAULTS.writers, 1, 256);
  const proposals = boundedIntegerFlag(values, 'proposals', DEFAULTS.proposals, 1, 10_000_000);
  const durationMs = seconds(values, 'duration', DEFAULTS.durationSeconds) * 1000;
  const valueBytes = boundedIntegerFlag(values, 'value-bytes', DEFAULTS.valueBytes, 1, 65_536);
  const floorAppends = boundedIntegerFlag(values, 'floor-appends', DEFAULTS.floorAppends, 1, 1_000_000);
  const tickMs = boundedIntegerFlag(values, 'tick-ms', DEFAULTS.tickMs, 1, 10_000);
  const base = resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : tmpdir());
  const directory = await mkdtemp(join(base, 'shardline-bench-placement-'));
  const aborter = new AbortController();
  const onInterrupt = (): void => aborter.abort();
  process.once('SIGINT', onInterrupt);
  const startedAt = new Date().toISOString();
  const progress = createProgress('bench placement', floorAppends + proposals, 'ops');
  let result: PlacementBenchResult;
  try {
    result = await runPlacementBench({ directory, voters, writers, proposals, durationMs, valueBytes, floorAppends, floorDurationMs: FLOOR_DURATION_MS, tickMs, now: () => performance.now(), signal: aborter.signal, onProgress: () => progress.increment() });
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onInterrupt);
    await rm(directory, { recursive: true, force: true });
  }
  process.stdout.write(values.json === true ? `${JSON.stringify({ startedAt, node: process.version, cpus: cpus().length, loadavg: loadavg(), directory, ...result }, null, 2)}\n` : formatPlacementReport(result, { directory, startedAt }));
  if (aborter.signal.aborted) {
    process.stderr.write('shardline bench placement: interrupted; the figures cover what ran\n');
    return 130;
  }
  return 0;
}

export const benchPlacementCommand: Command = {
  path: ['bench', 'placement'],
  summary: 'Measure placement commit throughput and latency (3 voters, fsync) against the journal fsync floor',
  usage,
  options: {
    'data-dir': { type: 'string' },
    voters: { type: 'string' },
    writers: { type: 'string' },
    proposals: { type: 'string' },
    duration: { type: 'string' },
    'value-bytes': { type: 'string' },
    'floor-appends': { type: 'string' },
    'tick-ms': { type: 'string' },
    json: { type: 'boolean' },
  },
  run: (values) => run(values),
};
