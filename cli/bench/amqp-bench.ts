// `shardline bench amqp`: rounds of the same load (amqp-load.ts) against a fresh Shardline and,
// with --compare rabbitmq, a fresh RabbitMQ (amqp-brokers.ts), alternating which goes first, so
// the slow drifts of a shared machine fall on both. The report has each figure's median over
// the rounds per broker, every round's value, and the ratio Shardline / RabbitMQ.
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { brokerCpuSeconds, rabbitmqVersion, startAmqpBroker, stopAmqpBroker, type AmqpBrokerName } from './amqp-brokers.js';
import { runAmqpLoad, type AmqpLoadOptions, type AmqpLoadResult } from './amqp-load.js';

export type AmqpWorkload = Omit<AmqpLoadOptions, 'host' | 'port' | 'onProgress'>;

export interface AmqpBenchOptions {
  rounds: number;
  workload: AmqpWorkload;
  brokers: readonly AmqpBrokerName[];
  rabbitmqPath: string | null;
  shardlineArgs: readonly string[];
  /** Runs not started by then are left out and listed. */
  timeLimitMs: number;
  /** A broker already running (HOST:PORT split): every round loads it, nothing is started. */
  target?: { host: string; port: number } | undefined;
}

export interface AmqpRun {
  round: number;
  broker: AmqpBrokerName;
  result?: AmqpLoadResult;
  /** The broker's process tree over the run, as a share of one core. */
  brokerCpu?: number | null;
  /** The run failed: no figures. */
  error?: string;
  /** The run has figures, but something in it is worth a look (nacks, messages not consumed). */
  warning?: string;
}

/** A figure of the report: how to read it from a run and which way is better. */
export interface AmqpFigure {
  name: string;
  higherIsBetter: boolean;
  of(run: AmqpRun): number | undefined;
}

export const AMQP_FIGURES: readonly AmqpFigure[] = [
  { name: 'confirmed msg/s', higherIsBetter: true, of: (run) => run.result?.confirmedPerSecond },
  { name: 'consumed msg/s', higherIsBetter: true, of: (run) => run.result?.consumedPerSecond },
  { name: 'confirm p50 ms', higherIsBetter: false, of: (run) => run.result?.confirmLatencyMs.p50 },
  { name: 'confirm p99 ms', higherIsBetter: false, of: (run) => run.result?.confirmLatencyMs.p99 },
  { name: 'confirm p999 ms', higherIsBetter: false, of: (run) => run.result?.confirmLatencyMs.p999 },
  { name: 'end-to-end p50 ms', higherIsBetter: false, of: (run) => run.result?.endToEndMs.p50 },
  { name: 'end-to-end p99 ms', higherIsBetter: false, of: (run) => run.result?.endToEndMs.p99 },
  { name: 'end-to-end p999 ms', higherIsBetter: false, of: (run) => run.result?.endToEndMs.p999 },
  { name: 'broker CPU %', higherIsBetter: false, of: (run) => (run.brokerCpu === undefined || run.brokerCpu === null ? undefined : run.brokerCpu * 100) },
  { name: 'tool CPU %', higherIsBetter: false, of: (run) => (run.result === undefined ? undefined : run.result.toolCpu * 100) },
];

export interface AmqpFigureRow {
  figure: string;
  /** Per broker: the median over the rounds that produced the figure, and each round's value. */
  brokers: Partial<Record<AmqpBrokerName, { median: number | undefined; rounds: number[] }>>;
  /** Shardline's median / RabbitMQ's, when both have one. */
  ratio: number | undefined;
}

export interface AmqpBenchReport {
  startedAt: string;
  node: string;
  cpus: number;
  loadAverage: { before: number; after: number };
  rabbitmq: { path: string; version: string } | null;
  notes: string[];
  workload: AmqpWorkload;
  rounds: number;
  brokers: AmqpBrokerName[];
  runs: AmqpRun[];
  rows: AmqpFigureRow[];
  elapsedSeconds: number;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function figureRows(runs: readonly AmqpRun[], brokers: readonly AmqpBrokerName[]): AmqpFigureRow[] {
  return AMQP_FIGURES.map((figure) => {
    const row: AmqpFigureRow = { figure: figure.name, brokers: {}, ratio: undefined };
    for (const broker of brokers) {
      const rounds = runs.filter((run) => run.broker === broker && run.error === undefined).map((run) => figure.of(run)).filter((value): value is number => value !== undefined && Number.isFinite(value));
      row.brokers[broker] = { median: median(rounds), rounds };
    }
    const shardline = row.brokers.shardline?.median;
    const rabbitmq = row.brokers.rabbitmq?.median;
    row.ratio = shardline !== undefined && rabbitmq !== undefined && rabbitmq !== 0 ? shardline / rabbitmq : undefined;
    return row;
  });
}

export interface AmqpBenchHooks {
  onRun?(label: string): void;
  onProgress?(elapsedMs: number, totalMs: number): void;
}

export async function runAmqpBench(options: AmqpBenchOptions, hooks: AmqpBenchHooks = {}): Promise<AmqpBenchReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg()[0] ?? 0;
  const notes: string[] = [];
  let brokers = [...options.brokers];
  if (brokers.includes('rabbitmq') && options.rabbitmqPath === null) {
    brokers = brokers.filter((broker) => broker !== 'rabbitmq');
    notes.push('RabbitMQ is not installed (no rabbitmq-server in /usr/lib/rabbitmq/bin, /usr/local/sbin or /usr/sbin; --rabbitmq PATH names one): Shardline only, no ratio');
  }
  const runs: AmqpRun[] = [];
  let skipped = 0;
  for (let round = 1; round <= options.rounds; round += 1) {
    const order = round % 2 === 1 ? brokers : [...brokers].reverse();
    for (const broker of order) {
      if (performance.now() - started > options.timeLimitMs) {
        skipped += 1;
        continue;
      }
      hooks.onRun?.(`round ${round}/${options.rounds}: ${broker}`);
      runs.push(await runOne(round, broker, options, hooks));
    }
  }
  if (skipped > 0) notes.push(`${skipped} run(s) not started: the time limit (${Math.round(options.timeLimitMs / 1000)} s) was reached`);
  const rabbitmqPath = brokers.includes('rabbitmq') ? options.rabbitmqPath : null;
  return {
    startedAt,
    node: process.version,
    cpus: availableParallelism(),
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
    rabbitmq: rabbitmqPath === null ? null : { path: rabbitmqPath, version: await rabbitmqVersion(rabbitmqPath) },
    notes,
    workload: options.workload,
    rounds: options.rounds,
    brokers,
    runs,
    rows: figureRows(runs, brokers),
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}

async function runOne(round: number, broker: AmqpBrokerName, options: AmqpBenchOptions, hooks: AmqpBenchHooks): Promise<AmqpRun> {
  const progress = hooks.onProgress === undefined ? {} : { onProgress: hooks.onProgress };
  if (options.target !== undefined) {
    try {
      return { round, broker, result: await runAmqpLoad({ ...options.workload, ...options.target, ...progress }), brokerCpu: null };
    } catch (error) {
      return { round, broker, error: (error as Error).message };
    }
  }
  let running;
  try {
    running = await startAmqpBroker(broker, { rabbitmqPath: options.rabbitmqPath, shardlineArgs: options.shardlineArgs });
  } catch (error) {
    return { round, broker, error: (error as Error).message };
  }
  try {
    const cpuBefore = await brokerCpuSeconds(running);
    const at = performance.now();
    const result = await runAmqpLoad({ ...options.workload, host: '127.0.0.1', port: running.port, ...progress });
    const cpuAfter = await brokerCpuSeconds(running);
    const brokerCpu = cpuBefore === null || cpuAfter === null ? null : (cpuAfter - cpuBefore) / ((performance.now() - at) / 1000);
    const problems = [
      ...(result.nacked > 0 ? [`${result.nacked} publish(es) nacked`] : []),
      ...(result.consumed < result.confirmed ? [`${result.confirmed - result.consumed} confirmed message(s) not consumed by the end of the drain`] : []),
    ];
    return { round, broker, result, brokerCpu, ...(problems.length > 0 ? { warning: problems.join('; ') } : {}) };
  } catch (error) {
    const tail = running.stderr().trim().split('\n').slice(-2).join(' | ');
    return { round, broker, error: `${(error as Error).message}${tail === '' ? '' : ` (broker stderr: ${tail})`}` };
  } finally {
    await stopAmqpBroker(running);
  }
}
