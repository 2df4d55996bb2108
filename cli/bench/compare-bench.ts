// `shardline bench compare`: issue 16's scenarios against Shardline and Mosquitto, interleaved.
// Each run starts its own broker as a child of this process on a free loopback port (Shardline
// on a new data directory, Mosquitto from a generated mosquitto.conf), runs `bench mqtt` against
// it in this process, and stops it by its pid. Rounds alternate which broker goes first, so slow
// drifts of a shared machine fall on both. The table (compare-report.ts) has the medians.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareRows, figuresOf, mosquittoConf, type BrokerName, type CompareRow, type CompareSettings, type RunFigures, type ScenarioSpec } from './compare-report.js';
import { runMqttBench, type MqttBenchOptions } from './mqtt-bench.js';
import { freeLoopbackPorts } from '../../placement/service/index.js';
import { acceptsConnections, firstExecutable, shardlineEntry } from './local-process.js';

export interface CompareOptions {
  rounds: number;
  scenarios: readonly ScenarioSpec[];
  settings: CompareSettings;
  /** The brokers to run, in the first round's order. */
  brokers: readonly BrokerName[];
  /** The mosquitto binary (needed when 'mosquitto' is among the brokers). */
  mosquittoPath: string | null;
  /** Extra `shardline start` flags (the single node, and the one with workers). */
  shardlineArgs: readonly string[];
  /** `shardline start --workers N` of the `workers` target. */
  brokerWorkers: number;
  /** Extra `shardline cluster up` flags. */
  clusterArgs: readonly string[];
  /** Extra mosquitto.conf lines (every scenario). */
  mosquittoLines: readonly string[];
  /** Runs not started by then are left out (and listed): the whole comparison is bounded in time. */
  timeLimitMs: number;
}

export interface CompareHooks {
  onRun?(label: string): void;
  signal?: AbortSignal;
}

export interface CompareReport {
  startedAt: string;
  node: string;
  cpus: number;
  /** 1-minute load average before and after (a shared machine's noise shows here). */
  loadAverage: { before: number; after: number };
  mosquitto: { path: string; version: string } | null;
  /** What was not run and why (no Mosquitto, the time limit). */
  notes: string[];
  settings: CompareSettings & { rounds: number; scenarios: string[]; brokers: BrokerName[]; shardlineArgs: string[]; clusterArgs: string[]; brokerWorkers: number };
  runs: RunFigures[];
  rows: CompareRow[];
  elapsedSeconds: number;
}

const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 100;
const STOP_TIMEOUT_MS = 10_000;
const STDERR_TAIL_BYTES = 4000;
/** The usual install paths, tried after $PATH. */
const MOSQUITTO_PATHS = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto', '/opt/homebrew/sbin/mosquitto'];

/** The mosquitto binary: `explicit` if given, else the first found on $PATH or the usual paths; null when none is. */
export async function findMosquitto(explicit?: string): Promise<string | null> {
  const candidates = explicit !== undefined ? [explicit] : [...(process.env.PATH ?? '').split(':').filter((dir) => dir !== '').map((dir) => join(dir, 'mosquitto')), ...MOSQUITTO_PATHS];
  return firstExecutable(candidates);
}

/** "mosquitto version 2.0.11" from `mosquitto -h` (which exits non-zero by design). */
export function mosquittoVersion(path: string): string {
  const result = spawnSync(path, ['-h'], { encoding: 'utf8', timeout: 5000 });
  const match = /mosquitto version (\S+)/.exec(`${result.stdout ?? ''}${result.stderr ?? ''}`);
  return match?.[1] ?? 'unknown';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface RunningBroker {
  child: ChildProcess;
  port: number;
  /** The process whose CPU and memory the run reports: the broker, or a cluster's first broker. */
  pid: number | null;
  /** A cluster's nodes by name (their pids), from `cluster up`'s address table. */
  nodes: Map<string, number>;
  directory: string;
  stderr: () => string;
}

/** `cluster up` prints this once every node listens. */
const CLUSTER_READY = /^cluster up;/;
/** A row of its address table: NODE ROLE PID MQTT ... ('-' where a node has no such address). */
const CLUSTER_ROW = /^((?:placement|journal|broker)-\d+)\s+(\w+)\s+(\d+)\s+(\S+)/;
/** `cluster up` stops brokers, journals and voters in turn, each group within this grace. */
const CLUSTER_GRACE_SECONDS = 5;

/**
 * A fresh `shardline cluster up` on its own directory: the load goes to its first broker, the
 * journal nodes replicate every shard 3 ways. Stopping it (SIGTERM to `cluster up`) stops them all.
 */
async function startCluster(options: CompareOptions): Promise<RunningBroker> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-compare-cluster-'));
  const args = [...shardlineEntry(), 'cluster', 'up', '--dir', join(directory, 'cluster'), '--grace-seconds', String(CLUSTER_GRACE_SECONDS), ...options.clusterArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)));
  const running: RunningBroker = { child, port: 0, pid: null, nodes: new Map(), directory, stderr: () => stderr };
  const mqtt = new Map<string, string>();
  const ready = new Promise<boolean>((resolve) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const row = CLUSTER_ROW.exec(line);
      if (row !== null) {
        running.nodes.set(row[1] as string, Number(row[3]));
        mqtt.set(row[1] as string, row[4] as string);
      } else if (CLUSTER_READY.test(line)) resolve(true);
    });
    child.once('exit', () => resolve(false));
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
  });
  const up = await Promise.race([ready, timedOut]);
  clearTimeout(timer);
  const port = Number(/:(\d+)$/.exec(mqtt.get('broker-1') ?? '')?.[1] ?? NaN);
  if (!up || !Number.isInteger(port)) {
    await stopBroker(running);
    throw new Error(`cluster up did not come up${child.exitCode !== null ? ` (exited with ${child.exitCode})` : ''}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  running.port = port;
  running.pid = running.nodes.get('broker-1') ?? null;
  return running;
}

async function startBroker(broker: BrokerName, scenario: ScenarioSpec, options: CompareOptions): Promise<RunningBroker> {
  if (broker === 'cluster') return startCluster(options);
  const port = (await freeLoopbackPorts(1))[0]!;
  const directory = await mkdtemp(join(tmpdir(), `shardline-compare-${broker}-`));
  let child: ChildProcess;
  if (broker === 'mosquitto') {
    const conf = join(directory, 'mosquitto.conf');
    await writeFile(conf, mosquittoConf(port, scenario, options.mosquittoLines));
    child = spawn(options.mosquittoPath as string, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    const workers = broker === 'workers' ? ['--workers', String(options.brokerWorkers)] : [];
    const args = [...shardlineEntry(), 'start', '--data-dir', join(directory, 'data'), '--mqtt-port', String(port), '--grpc-port', '0', '--admin-port', '0', '--kafka-port', 'none', '--amqp-port', 'none', '--log-level', 'warn', ...workers, ...options.shardlineArgs];
    child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)));
  const running: RunningBroker = { child, port, pid: child.pid ?? null, nodes: new Map(), directory, stderr: () => stderr };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await acceptsConnections(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stopBroker(running);
      throw new Error(`${broker} did not listen on 127.0.0.1:${port}${child.exitCode !== null ? ` (exited with ${child.exitCode})` : ''}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await sleep(READY_POLL_MS);
  }
  return running;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the broker's pid (for a cluster, to `cluster up`, which stops its nodes), SIGKILL if
 * it lingers; a cluster's node still alive then (its nodes run detached) gets SIGKILL by its pid.
 * Then the scratch directory goes.
 */
async function stopBroker(broker: RunningBroker): Promise<void> {
  const { child } = broker;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    // cluster up takes up to one grace per group of nodes.
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS + (broker.nodes.size > 0 ? 3 * CLUSTER_GRACE_SECONDS * 1000 : 0));
    await exited;
    clearTimeout(timer);
  }
  for (const pid of broker.nodes.values()) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  await rm(broker.directory, { recursive: true, force: true });
}

export async function runCompare(options: CompareOptions, hooks: CompareHooks = {}): Promise<CompareReport> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const loadBefore = loadavg()[0] ?? 0;
  const notes: string[] = [];
  let brokers = [...options.brokers];
  if (brokers.includes('mosquitto') && options.mosquittoPath === null) {
    brokers = brokers.filter((broker) => broker !== 'mosquitto');
    notes.push('Mosquitto is not installed (no mosquitto on $PATH or in /usr/sbin; --mosquitto PATH names one): Shardline only, no ratios');
  }
  const runs: RunFigures[] = [];
  let skipped = 0;
  for (let round = 1; round <= options.rounds; round += 1) {
    const order = round % 2 === 1 ? brokers : [...brokers].reverse();
    for (const scenario of options.scenarios) {
      for (const broker of order) {
        if (hooks.signal?.aborted === true) throw new Error('interrupted');
        if (Date.now() - started > options.timeLimitMs) {
          skipped += 1;
          continue;
        }
        hooks.onRun?.(`round ${round}/${options.rounds}: ${scenario.name} on ${broker}`);
        runs.push(await runOne(round, scenario, broker, options, hooks.signal));
      }
    }
  }
  if (skipped > 0) notes.push(`${skipped} run(s) not started: the time limit (${Math.round(options.timeLimitMs / 1000)} s) was reached`);
  const mosquittoPath = brokers.includes('mosquitto') ? options.mosquittoPath : null;
  return {
    startedAt,
    node: process.version,
    cpus: availableParallelism(),
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
    mosquitto: mosquittoPath === null ? null : { path: mosquittoPath, version: mosquittoVersion(mosquittoPath) },
    notes,
    settings: { ...options.settings, rounds: options.rounds, scenarios: options.scenarios.map((scenario) => scenario.name), brokers, shardlineArgs: [...options.shardlineArgs], clusterArgs: [...options.clusterArgs], brokerWorkers: options.brokerWorkers },
    runs,
    rows: compareRows(runs, brokers),
    elapsedSeconds: (Date.now() - started) / 1000,
  };
}

/** Probe publishes per second per publisher, and how long each probe sends. */
const PROBE_RATE_PER_PUBLISHER = 20;
const PROBE_MS = 500;
const PROBE_ACK_WAIT_MS = 10_000;

/**
 * Waits until the broker acknowledges QoS 1 publishes on every topic the run will publish to: a
 * cluster listens before each shard has an elected leader, and a publisher whose shard has none
 * yet would stall the measured run. Short runs of the same publishers at a low rate, without
 * subscribers, until one ends with nothing unacknowledged; bounded by READY_TIMEOUT_MS.
 */
async function untilAcknowledging(load: MqttBenchOptions, signal: AbortSignal | undefined): Promise<void> {
  const probe: MqttBenchOptions = { ...load, subscribers: 0, idleConnections: 0, brokerPid: null, admin: null, rate: load.publishers * PROBE_RATE_PER_PUBLISHER, warmupMs: 0, durationMs: PROBE_MS, drainTimeoutMs: PROBE_ACK_WAIT_MS };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const report = await runMqttBench(probe, { signal });
    if (report.errorCount === 0 && report.publishes.completed > 0 && report.publishes.inflightAtEnd === 0) return;
    if (Date.now() > deadline) throw new Error(`the broker did not acknowledge QoS 1 publishes on every topic within ${READY_TIMEOUT_MS / 1000} s (${report.publishes.inflightAtEnd} unacknowledged${report.errorCount > 0 ? `, first error: ${report.errors[0] ?? '?'}` : ''})`);
  }
}

async function runOne(round: number, scenario: ScenarioSpec, broker: BrokerName, options: CompareOptions, signal: AbortSignal | undefined): Promise<RunFigures> {
  const empty: RunFigures = { round, scenario: scenario.name, broker, figures: {}, lost: null, toolCpuPercent: null, toolBusiestPercent: null, brokerCpuPercent: null, brokerPid: null };
  let running: RunningBroker;
  try {
    running = await startBroker(broker, scenario, options);
  } catch (error) {
    return { ...empty, error: (error as Error).message };
  }
  empty.brokerPid = running.pid;
  if (running.nodes.size > 0) empty.clusterPids = [...running.nodes.values(), ...(running.child.pid === undefined ? [] : [running.child.pid])];
  try {
    const load = { ...scenario.options(options.settings), host: '127.0.0.1', port: running.port, brokerPid: running.pid };
    if (load.publishers > 0 && load.qos > 0) await untilAcknowledging(load, signal);
    const report = await runMqttBench(load, { signal });
    const figures: RunFigures = { ...empty, ...figuresOf(scenario, report) };
    if (report.errorCount > 0) figures.error = `${report.errorCount} error(s) in the run, first: ${report.errors[0] ?? '?'}`;
    return figures;
  } catch (error) {
    if (signal?.aborted === true) throw error;
    return { ...empty, error: `${(error as Error).message}${running.stderr() === '' ? '' : ` (broker stderr: ${running.stderr().trim().split('\n').slice(-2).join(' | ')})`}` };
  } finally {
    await stopBroker(running);
  }
}
