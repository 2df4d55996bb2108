// `shardline bench compare`, the pure part: the scenarios of issue 16 as `bench mqtt` options,
// the figures read from each run's report, the Mosquitto configuration file, and the table of
// medians and ratios. No processes, files or timers here (compare-bench.ts runs the brokers).
import type { MqttBenchOptions, MqttBenchReport } from './mqtt-bench.js';

/**
 * `cluster` is a fresh `shardline cluster up` (3 voters, 3 journal nodes replicating, 2 brokers);
 * `workers` the single node with MQTT in worker processes (`shardline start --workers N`).
 */
export type BrokerName = 'shardline' | 'mosquitto' | 'cluster' | 'workers';

/** What a figure's direction is: a throughput is better higher, a latency or a size lower. */
export type Better = 'higher' | 'lower';

export interface FigureSpec {
  /** Short name in the table (e.g. 'p99 ms'). */
  name: string;
  better: Better;
  /** Digits after the point in the table. */
  digits: number;
  read(report: MqttBenchReport): number | null;
}

export interface ScenarioSpec {
  name: string;
  /** One line for --help and the table. */
  title: string;
  /** The `bench mqtt` options of the scenario (host, port and broker pid are the run's). */
  options(settings: CompareSettings): Omit<MqttBenchOptions, 'host' | 'port' | 'brokerPid'>;
  figures: FigureSpec[];
  /** Lines added to mosquitto.conf for this scenario (beyond the listener and persistence). */
  mosquittoLines: string[];
  /** Run only when --scenarios names it (not part of issue 16's table). */
  onlyWhenNamed?: boolean;
}

export interface CompareSettings {
  /** Measured seconds of load per run. */
  durationSeconds: number;
  /** Idle connections of the memory scenario. */
  idleConnections: number;
  workers: number;
}

const BASE: Omit<MqttBenchOptions, 'host' | 'port' | 'brokerPid' | 'publishers' | 'subscribers' | 'qos' | 'size' | 'rate' | 'durationMs' | 'idleConnections'> = {
  warmupMs: 1000,
  drainTimeoutMs: 5000,
  topic: 'bench/{i}',
  subTopic: 'bench/#',
  workers: 2,
  protocolVersion: 4,
  inflight: 64,
  keepaliveSeconds: 60,
  admin: null,
};

/** Received msg/s: the figure a fan-in run is judged by. */
const receivedPerSecond: FigureSpec = { name: 'recv msg/s', better: 'higher', digits: 0, read: (report) => report.received.perSecond };

/** The table, in its order. */
export const SCENARIOS: readonly ScenarioSpec[] = [
  {
    name: 'latency-1k-qos1',
    title: 'QoS 1, 1 KiB, 1 -> 1 at 5,000 msg/s: latency',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 1, subscribers: 1, qos: 1, size: 1024, rate: 5000, durationMs: settings.durationSeconds * 1000, idleConnections: 0 }),
    figures: [
      { name: 'p50 ms', better: 'lower', digits: 3, read: (report) => (report.latencyMs.samples > 0 ? report.latencyMs.p50 : null) },
      { name: 'p99 ms', better: 'lower', digits: 3, read: (report) => (report.latencyMs.samples > 0 ? report.latencyMs.p99 : null) },
      // Whether the broker kept up with the 5,000 msg/s at all: below it, the publisher's window
      // of unacknowledged publishes was full and the latencies are of a saturated broker.
      receivedPerSecond,
    ],
    mosquittoLines: [],
  },
  {
    name: 'idle',
    title: 'idle connections: broker memory per connection, connect rate',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 0, subscribers: 0, qos: 0, size: 64, rate: 0, durationMs: 1000, warmupMs: 0, drainTimeoutMs: 0, idleConnections: settings.idleConnections }),
    figures: [
      { name: 'kB/conn', better: 'lower', digits: 2, read: (report) => (report.broker?.perIdleConnectionBytes == null ? null : report.broker.perIdleConnectionBytes / 1000) },
      { name: 'conn/s', better: 'higher', digits: 0, read: (report) => (report.connectSeconds.idle > 0 ? report.settings.idleConnections / report.connectSeconds.idle : null) },
    ],
    mosquittoLines: [],
  },
  {
    name: 'large-qos0',
    title: '64 KiB QoS 0, 4 -> 1: MB/s',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 4, subscribers: 1, qos: 0, size: 65536, rate: 0, durationMs: settings.durationSeconds * 1000, idleConnections: 0 }),
    figures: [{ name: 'MB/s', better: 'higher', digits: 1, read: (report) => report.received.mbPerSecond }],
    mosquittoLines: [],
  },
  {
    name: 'fanin-qos0',
    title: 'QoS 0 fan-in 8 -> 1, 64 B: msg/s',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 8, subscribers: 1, qos: 0, size: 64, rate: 0, durationMs: settings.durationSeconds * 1000, idleConnections: 0 }),
    figures: [receivedPerSecond],
    mosquittoLines: [],
  },
  {
    name: 'fanin-qos1',
    title: 'QoS 1 fan-in 8 -> 1, 64 B: msg/s (Mosquitto with unbounded queues)',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 8, subscribers: 1, qos: 1, size: 64, rate: 0, durationMs: settings.durationSeconds * 1000, idleConnections: 0 }),
    figures: [receivedPerSecond, { name: 'lost', better: 'lower', digits: 0, read: (report) => report.received.lost }],
    // The target compares against Mosquitto without its default in-flight and queue caps
    // (with them it drops most of this load); 0 means unbounded for both settings.
    mosquittoLines: ['max_inflight_messages 0', 'max_queued_messages 0'],
  },
  {
    name: 'fanout-qos0',
    title: 'QoS 0 fan-out 1 -> 8, 64 B: msg/s received in all',
    options: (settings) => ({ ...BASE, workers: settings.workers, publishers: 1, subscribers: 8, qos: 0, size: 64, rate: 0, durationMs: settings.durationSeconds * 1000, idleConnections: 0 }),
    figures: [receivedPerSecond],
    mosquittoLines: [],
    onlyWhenNamed: true,
  },
];

export function scenarioNamed(name: string): ScenarioSpec | undefined {
  return SCENARIOS.find((scenario) => scenario.name === name);
}

/**
 * mosquitto.conf for one run: one listener on loopback, anonymous clients, and persistence off
 * (docs/benchmarks.md: Mosquitto is compared without disk writes, Shardline with fsync).
 */
export function mosquittoConf(port: number, scenario: ScenarioSpec, extraLines: readonly string[] = []): string {
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_type error', 'log_type warning', ...scenario.mosquittoLines, ...extraLines];
  return `${lines.join('\n')}\n`;
}

/** The median of the values present (the mean of the middle two for an even count); null when none is. */
export function median(values: ReadonlyArray<number | null>): number | null {
  const present = values.filter((value): value is number => value !== null && Number.isFinite(value)).sort((a, b) => a - b);
  if (present.length === 0) return null;
  const middle = Math.floor(present.length / 2);
  return present.length % 2 === 1 ? (present[middle] as number) : ((present[middle - 1] as number) + (present[middle] as number)) / 2;
}

/** One run of one scenario against one broker. */
export interface RunFigures {
  round: number;
  scenario: string;
  broker: BrokerName;
  /** By figure name; null: the run did not produce it (failed, or no samples). */
  figures: Record<string, number | null>;
  /** The load tool's CPU: all its processes (% of one core) and its busiest process. */
  toolCpuPercent: number | null;
  toolBusiestPercent: number | null;
  brokerCpuPercent: number | null;
  /** The broker process this run started (and stopped); null when it did not start. For a
   *  cluster, the broker the load went to. */
  brokerPid: number | null;
  /** A cluster run's every node and its `cluster up` process (all stopped afterwards). */
  clusterPids?: number[];
  /** Expected deliveries that did not arrive (QoS 1: should be 0); null when the run failed. */
  lost: number | null;
  error?: string;
}

export function figuresOf(scenario: ScenarioSpec, report: MqttBenchReport): Pick<RunFigures, 'figures' | 'toolCpuPercent' | 'toolBusiestPercent' | 'brokerCpuPercent' | 'lost'> {
  const figures: Record<string, number | null> = {};
  for (const figure of scenario.figures) figures[figure.name] = figure.read(report);
  return { figures, lost: report.received.lost, toolCpuPercent: report.tool.cpuPercentOfCore, toolBusiestPercent: report.tool.busiestProcessPercent, brokerCpuPercent: report.broker?.cpuPercentOfCore ?? null };
}

export interface CompareRow {
  scenario: string;
  figure: string;
  better: Better;
  digits: number;
  /** Median over the rounds, per broker (absent: that broker was not run). */
  medians: Partial<Record<BrokerName, number | null>>;
  /** Each round's value, per broker, in round order. */
  values: Partial<Record<BrokerName, Array<number | null>>>;
  /** The median of ratioPair's first broker over its second's; null without both. */
  ratio: number | null;
  /** Medians of the load tool's CPU in this scenario, per broker (% of one core). */
  toolCpu: Partial<Record<BrokerName, number | null>>;
}

/**
 * Which brokers the ratio sets against each other: the cluster against a single node when both
 * ran (issue 13's question), the single node with workers against it without (issue 16's
 * workers), else Shardline against Mosquitto (issue 16's); null otherwise.
 */
export function ratioPair(brokers: readonly BrokerName[]): [BrokerName, BrokerName] | null {
  if (brokers.includes('cluster') && brokers.includes('shardline')) return ['cluster', 'shardline'];
  if (brokers.includes('workers') && brokers.includes('shardline')) return ['workers', 'shardline'];
  if (brokers.includes('shardline') && brokers.includes('mosquitto')) return ['shardline', 'mosquitto'];
  return null;
}

/** The table: one row per (scenario, figure), in the scenarios' order. */
export function compareRows(runs: readonly RunFigures[], brokers: readonly BrokerName[]): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const scenario of SCENARIOS) {
    const ofScenario = runs.filter((run) => run.scenario === scenario.name);
    if (ofScenario.length === 0) continue;
    for (const figure of scenario.figures) {
      const row: CompareRow = { scenario: scenario.name, figure: figure.name, better: figure.better, digits: figure.digits, medians: {}, values: {}, ratio: null, toolCpu: {} };
      for (const broker of brokers) {
        const mine = ofScenario.filter((run) => run.broker === broker).sort((a, b) => a.round - b.round);
        row.values[broker] = mine.map((run) => run.figures[figure.name] ?? null);
        row.medians[broker] = median(row.values[broker]);
        row.toolCpu[broker] = median(mine.map((run) => run.toolCpuPercent));
      }
      const pair = ratioPair(brokers);
      const ours = pair === null ? null : row.medians[pair[0]];
      const theirs = pair === null ? null : row.medians[pair[1]];
      row.ratio = ours == null || theirs == null || theirs === 0 ? null : ours / theirs;
      rows.push(row);
    }
  }
  return rows;
}

function format(value: number | null | undefined, digits: number): string {
  if (value == null) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The table as text: medians, each round's values, the ratio and the tool's CPU. */
export function formatCompareTable(rows: readonly CompareRow[], brokers: readonly BrokerName[]): string {
  const pair = ratioPair(brokers);
  const ratioTitle = pair === null ? 'ratio' : `ratio ${pair.map((broker) => broker.charAt(0).toUpperCase()).join('/')}`;
  const header = ['scenario', 'figure', ...brokers.flatMap((broker) => [`${broker} (median)`, `${broker} (rounds)`]), ratioTitle, ...brokers.map((broker) => `tool CPU % vs ${broker}`)];
  const lines = rows.map((row) => [
    row.scenario,
    `${row.figure} (${row.better} is better)`,
    ...brokers.flatMap((broker) => [format(row.medians[broker], row.digits), (row.values[broker] ?? []).map((value) => format(value, row.digits)).join(' / ')]),
    row.ratio === null ? '-' : `${format(row.ratio, 2)}x`,
    ...brokers.map((broker) => format(row.toolCpu[broker], 0)),
  ]);
  const widths = header.map((cell, column) => Math.max(cell.length, ...lines.map((line) => (line[column] ?? '').length)));
  const render = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [render(header), ...lines.map(render)].join('\n') + '\n';
}
