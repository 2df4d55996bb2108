// `shardline bench mqtt`, the coordinator: forks the worker processes, hands each its share of
// clients, moves them through the phases (idle connections, subscribers, publishers, load,
// drain, close) and turns their counters into a report. Latency samples travel to this
// process in batches and go into one LatencyHistogram. The broker's memory and CPU come from
// /proc when its pid is given.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { brokerAccounting, fetchBrokerCounters, type BrokerAccounting, type BrokerCounters } from './broker-accounting.js';
import type { QoS } from 'mqtt-packet';
import { LatencyHistogram } from './latency-histogram.js';
import { type CoordinatorMessage, type CpuTime, type ProtocolVersion, type Role, type WorkerAssignment, type WorkerConfig, type WorkerMessage, type WorkerStats } from './mqtt-bench-wire.js';
import { wallNow } from './wall-clock.js';

export interface MqttBenchOptions {
  host: string;
  port: number;
  publishers: number;
  subscribers: number;
  qos: QoS;
  /** Payload bytes per message (at least PAYLOAD_HEADER_BYTES). */
  size: number;
  /** Total target messages/s over all publishers; 0 = as fast as possible. */
  rate: number;
  durationMs: number;
  warmupMs: number;
  /** After the window: how long to wait for messages still on their way. */
  drainTimeoutMs: number;
  idleConnections: number;
  topic: string;
  subTopic: string;
  workers: number;
  brokerPid: number | null;
  protocolVersion: ProtocolVersion;
  inflight: number;
  keepaliveSeconds: number;
  /** The broker's admin API (base URL and token): its counters are read before and after the run. */
  admin?: { url: string; token: string } | null;
}

export interface LoadProgress {
  elapsedMs: number;
  totalMs: number;
  sent: number;
  delivered: number;
}

export interface MqttBenchHooks {
  /** A new phase begins (for a status line): 'connect idle', 'connect sub', 'connect pub', 'load', 'drain', 'close'. */
  onPhase?(phase: string): void;
  /** Several times a second during load and drain. */
  onProgress?(progress: LoadProgress): void;
  signal?: AbortSignal;
}

export interface BrokerFigures {
  pid: number;
  rssBeforeBytes: number | null;
  rssAfterIdleBytes: number | null;
  /** (rssAfterIdle - rssBefore) / idle connections; null without idle connections. */
  perIdleConnectionBytes: number | null;
  rssPeakBytes: number | null;
  rssEndBytes: number | null;
  /** Broker CPU time in the measured window as % of one core. */
  cpuPercentOfCore: number | null;
  /** Broker CPU seconds from before the first connection to the end. */
  cpuSecondsTotal: number | null;
}

export interface MqttBenchReport {
  startedAt: string;
  node: string;
  cpus: number;
  url: string;
  settings: Omit<MqttBenchOptions, 'host' | 'port'>;
  /** Measured window, seconds (the actual span, not just the flag). */
  windowSeconds: number;
  sent: { messages: number; perSecond: number; all: number };
  received: {
    /** Deliveries that arrived inside the window, per second. */
    perSecond: number;
    /** Payload MB (10^6) per second of those deliveries. */
    mbPerSecond: number;
    /** Measured messages × the subscribers whose filter matches their topic. */
    expected: number;
    /** Distinct measured messages the subscribers got (each subscriber counted separately). */
    delivered: number;
    lost: number;
    duplicates: number;
    /** Deliveries without this run's payload header (other clients on the topic). */
    foreign: number;
    all: number;
  };
  publishes: { completed: number; refused: number; inflightAtEnd: number };
  latencyMs: { samples: number; p50: number; p99: number; p999: number; max: number };
  tool: {
    processes: number;
    cpuPercentOfCore: number;
    cpuPercentOfMachine: number;
    /** The busiest single process (% of one core): near 100 means the tool limited the rate. */
    busiestProcessPercent: number;
    /** Per process, % of one core: the coordinator first, then the workers. */
    perProcessPercent: number[];
    /** The busiest worker's event loop, % of the window busy (not waiting for I/O). */
    busiestWorkerLoopPercent: number;
  };
  broker: BrokerFigures | null;
  /** With --admin: the broker's own counters set against the tool's (broker-accounting.ts). */
  accounting: BrokerAccounting | null;
  connectSeconds: { idle: number; subscribers: number; publishers: number };
  drainSeconds: number;
  /** The first few errors (connections closed or refused during the run, ...). */
  errors: string[];
  errorCount: number;
  elapsedSeconds: number;
}

const START_DELAY_MS = 200;
const PROGRESS_INTERVAL_MS = 250;
const RSS_SAMPLE_INTERVAL_MS = 100;
const DRAIN_IDLE_MS = 1000;
const SETTLE_AFTER_IDLE_MS = 500;
const CONNECT_TIMEOUT_MS = 10_000;
const FINISH_TIMEOUT_MS = 10_000;
const WORKER_EXIT_GRACE_MS = 5000;
/** Linux USER_HZ: /proc/PID/stat times are in these ticks on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;
const MAX_ERRORS = 20;
const COUNTER_SETTLE_POLL_MS = 250;
const COUNTER_SETTLE_MAX_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function defaultWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

export async function readRssBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

export async function readCpuSeconds(pid: number): Promise<number | null> {
  const own = await readOwnCpuSeconds(pid);
  if (own === null) return null;
  // A node with --workers runs its brokers as child processes: its CPU is theirs too.
  let children: number[] = [];
  try {
    children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(' ').filter((field) => field.trim() !== '').map(Number);
  } catch {
    // no children file (not Linux, or the process is gone): its own CPU only
  }
  let total = own;
  for (const child of children) total += (await readOwnCpuSeconds(child)) ?? 0;
  return total;
}

async function readOwnCpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

/**
 * Spreads clients over workers: subscribers first, each weighing as many units as there are
 * publishers (it receives all of their traffic), then publishers (one unit) onto the lightest
 * worker; idle connections round-robin.
 */
export function assignClients(workers: number, publishers: number, subscribers: number, idle: number): WorkerAssignment[] {
  const assignments: WorkerAssignment[] = Array.from({ length: workers }, (_, worker) => ({ worker, publishers: [], subscribers: [], idle: [], publisherTotal: publishers }));
  const load = new Array<number>(workers).fill(0);
  const lightest = (): number => load.indexOf(Math.min(...load));
  for (let index = 0; index < subscribers; index += 1) {
    const worker = lightest();
    assignments[worker]?.subscribers.push(index);
    load[worker] = (load[worker] ?? 0) + Math.max(1, publishers);
  }
  for (let index = 0; index < publishers; index += 1) {
    const worker = lightest();
    assignments[worker]?.publishers.push(index);
    load[worker] = (load[worker] ?? 0) + 1;
  }
  for (let index = 0; index < idle; index += 1) assignments[index % workers]?.idle.push(index);
  return assignments;
}

function workerEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  // From the sources (tsx) the worker is TypeScript too and needs the same loader.
  if (here.endsWith('.ts')) return { file: join(dirname(here), 'mqtt-bench-worker.ts'), execArgv: ['--import', import.meta.resolve('tsx')] };
  return { file: join(dirname(here), 'mqtt-bench-worker.js'), execArgv: [] };
}

interface WorkerHandle {
  child: ChildProcess;
  latest: WorkerStats | null;
  final: WorkerStats | null;
  exited: boolean;
  waiters: Map<string, () => void>;
}

function emptyCpu(): CpuTime {
  return { userUs: 0, systemUs: 0 };
}

export async function runMqttBench(options: MqttBenchOptions, hooks: MqttBenchHooks = {}): Promise<MqttBenchReport> {
  const startedAt = new Date();
  const started = performance.now();
  const workerCount = Math.max(1, Math.min(options.workers, Math.max(1, options.publishers + options.subscribers + options.idleConnections)));
  const histogram = new LatencyHistogram();
  const errors: string[] = [];
  const addErrors = (messages: string[]): void => {
    for (const message of messages) if (errors.length < MAX_ERRORS) errors.push(message);
  };
  const pid = options.brokerPid;
  const broker: BrokerFigures | null = pid === null ? null : { pid, rssBeforeBytes: null, rssAfterIdleBytes: null, perIdleConnectionBytes: null, rssPeakBytes: null, rssEndBytes: null, cpuPercentOfCore: null, cpuSecondsTotal: null };
  const brokerCpuAtStart = pid === null ? null : await readCpuSeconds(pid);
  const admin = options.admin ?? null;
  const countersBefore = admin === null ? null : await fetchBrokerCounters(admin);
  if (broker !== null) broker.rssBeforeBytes = await readRssBytes(broker.pid);

  let failWith: (error: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failWith = reject));
  failure.catch(() => undefined);
  let failed: Error | null = null;
  const fail = (error: Error): void => {
    if (failed !== null) return;
    failed = error;
    failWith(error);
  };
  const onAbort = (): void => fail(new Error('interrupted'));
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  if (hooks.signal?.aborted === true) onAbort();

  const entry = workerEntry();
  const handles: WorkerHandle[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    for (let index = 0; index < workerCount; index += 1) {
      const child = fork(entry.file, [], { execArgv: entry.execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const handle: WorkerHandle = { child, latest: null, final: null, exited: false, waiters: new Map() };
      handles.push(handle);
      child.on('message', (message: WorkerMessage) => {
        switch (message.type) {
          case 'stats':
          case 'final':
            for (const sample of message.stats.latenciesNs) histogram.record(sample);
            addErrors(message.stats.errors);
            handle.latest = message.stats;
            if (message.type === 'final') handle.final = message.stats;
            break;
          case 'fatal':
            fail(new Error(`worker ${index}: ${message.message}`));
            break;
        }
        const key = message.type === 'connected' ? `connected:${message.role}` : message.type;
        handle.waiters.get(key)?.();
        handle.waiters.delete(key);
      });
      // 'close' comes after the IPC channel is drained, so a final report is never outrun by the exit.
      child.on('close', (code, signal) => {
        handle.exited = true;
        if (handle.final === null) fail(new Error(`worker ${index} exited early (code ${code}, signal ${signal})`));
      });
      child.on('error', (error) => fail(new Error(`worker ${index}: ${error.message}`)));
    }
    const waitAll = async (key: string, timeoutMs: number, what: string): Promise<void> => {
      const arrivals = handles.map((handle) => new Promise<void>((resolve) => handle.waiters.set(key, resolve)));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer from every worker within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs)));
      try {
        await Promise.race([Promise.all(arrivals), failure, timeout]);
      } finally {
        clearTimeout(timer);
      }
    };
    const sendAll = (message: CoordinatorMessage | ((worker: number) => CoordinatorMessage)): void => {
      handles.forEach((handle, worker) => handle.child.send(typeof message === 'function' ? message(worker) : message));
    };

    await waitAll('ready', 30_000, 'starting workers');
    const config: WorkerConfig = {
      host: options.host,
      port: options.port,
      protocolVersion: options.protocolVersion,
      qos: options.qos,
      size: options.size,
      ratePerPublisher: options.publishers > 0 ? options.rate / options.publishers : 0,
      inflight: options.inflight,
      keepaliveSeconds: options.keepaliveSeconds,
      topic: options.topic,
      subTopic: options.subTopic,
      connectConcurrency: 64,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      clientIdPrefix: `slbench-${process.pid.toString(36)}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`,
    };
    const assignments = assignClients(workerCount, options.publishers, options.subscribers, options.idleConnections);
    sendAll((worker) => ({ type: 'setup', config, assignment: assignments[worker] as WorkerAssignment }));

    const connectSeconds = { idle: 0, subscribers: 0, publishers: 0 };
    const connectRole = async (role: Role, count: number): Promise<number> => {
      if (count === 0) return 0;
      hooks.onPhase?.(`connect ${role}`);
      const begun = performance.now();
      const waiting = waitAll(`connected:${role}`, 30_000 + count * 10, `connecting ${count} ${role} clients`);
      sendAll({ type: 'connect', role });
      await waiting;
      return (performance.now() - begun) / 1000;
    };
    connectSeconds.idle = await connectRole('idle', options.idleConnections);
    if (broker !== null && options.idleConnections > 0) {
      await Promise.race([sleep(SETTLE_AFTER_IDLE_MS), failure]);
      broker.rssAfterIdleBytes = await readRssBytes(broker.pid);
      if (broker.rssAfterIdleBytes !== null && broker.rssBeforeBytes !== null) broker.perIdleConnectionBytes = (broker.rssAfterIdleBytes - broker.rssBeforeBytes) / options.idleConnections;
    }
    connectSeconds.subscribers = await connectRole('sub', options.subscribers);
    connectSeconds.publishers = await connectRole('pub', options.publishers);

    // Load: every worker starts at the same wall-clock instant.
    hooks.onPhase?.('load');
    const startAt = wallNow() + START_DELAY_MS;
    const window = { startAt, measureStart: startAt + options.warmupMs, measureEnd: startAt + options.warmupMs + options.durationMs };
    sendAll({ type: 'start', window });
    const totalMs = window.measureEnd - startAt;
    let ownCpuStart: NodeJS.CpuUsage | null = null;
    let ownCpu = emptyCpu();
    let brokerCpuWindowStart: number | null = null;
    let windowStartedAt = window.measureStart;
    let windowEndedAt = window.measureEnd;
    const at = (time: number, action: () => void): void => {
      timers.push(setTimeout(action, Math.max(0, time - wallNow())));
    };
    at(window.measureStart, () => {
      windowStartedAt = wallNow();
      ownCpuStart = process.cpuUsage();
      if (pid !== null) void readCpuSeconds(pid).then((seconds) => (brokerCpuWindowStart = seconds));
    });
    at(window.measureEnd, () => {
      windowEndedAt = wallNow();
      if (ownCpuStart !== null) {
        const used = process.cpuUsage(ownCpuStart);
        ownCpu = { userUs: used.user, systemUs: used.system };
      }
      if (pid !== null && broker !== null) {
        void readCpuSeconds(pid).then((seconds) => {
          if (seconds !== null && brokerCpuWindowStart !== null) broker.cpuPercentOfCore = ((seconds - brokerCpuWindowStart) * 100_000) / Math.max(1, windowEndedAt - windowStartedAt);
        });
      }
    });
    if (broker !== null) {
      timers.push(
        setInterval(() => {
          void readRssBytes(broker.pid).then((rss) => {
            if (rss !== null) broker.rssPeakBytes = Math.max(broker.rssPeakBytes ?? 0, rss);
          });
        }, RSS_SAMPLE_INTERVAL_MS),
      );
    }
    const totals = (): WorkerStats => sumStats(handles.map((handle) => handle.final ?? handle.latest));
    timers.push(
      setInterval(() => {
        const current = totals();
        hooks.onProgress?.({ elapsedMs: Math.min(totalMs, wallNow() - startAt), totalMs, sent: current.sent, delivered: current.delivered });
      }, PROGRESS_INTERVAL_MS),
    );

    // Drain: until every measured message reached every subscriber, nothing moved for a
    // while, or the drain timeout.
    await Promise.race([sleep(Math.max(0, window.measureEnd - wallNow())), failure]);
    hooks.onPhase?.('drain');
    const drainStarted = wallNow();
    let lastDelivered = -1;
    let lastChangeAt = drainStarted;
    while (wallNow() < window.measureEnd + options.drainTimeoutMs) {
      await Promise.race([sleep(50), failure]);
      const current = totals();
      const reported = handles.every((handle) => handle.latest !== null);
      const publishersDone = reported && handles.every((handle) => handle.latest?.publishersDone === true);
      const progressKey = current.delivered + current.completed;
      if (progressKey !== lastDelivered) {
        lastDelivered = progressKey;
        lastChangeAt = wallNow();
      }
      if (publishersDone && current.measuredUnique >= current.sentMeasuredMatching * options.subscribers) break;
      if (publishersDone && wallNow() - lastChangeAt >= DRAIN_IDLE_MS) break;
    }
    const drainSeconds = (wallNow() - drainStarted) / 1000;
    for (const timer of timers.splice(0)) clearTimeout(timer);

    hooks.onPhase?.('close');
    const finals = waitAll('final', FINISH_TIMEOUT_MS, 'closing connections');
    sendAll({ type: 'finish' });
    await finals;
    // Workers exit on their own after their final report; give them a moment before the kill below.
    await Promise.race([Promise.all(handles.map((handle) => (handle.exited ? undefined : once(handle.child, 'close')))), sleep(WORKER_EXIT_GRACE_MS)]);

    if (broker !== null) {
      broker.rssEndBytes = await readRssBytes(broker.pid);
      const cpuEnd = await readCpuSeconds(broker.pid);
      if (cpuEnd !== null && brokerCpuAtStart !== null) broker.cpuSecondsTotal = cpuEnd - brokerCpuAtStart;
    }
    const final = sumStats(handles.map((handle) => handle.final));
    const accounting = admin === null || countersBefore === null ? null : brokerAccounting(countersBefore, await settledCounters(admin), { sent: final.sent, sentMatching: final.sentMatching, subscribers: options.subscribers, received: final.delivered - final.foreign });
    const windowMs = Math.max(1, windowEndedAt - windowStartedAt);
    const windowSeconds = windowMs / 1000;
    const expected = final.sentMeasuredMatching * options.subscribers;
    const cpuPercents = [ownCpu, ...handles.map((handle) => handle.final?.windowCpu ?? emptyCpu())].map((cpu) => ((cpu.userUs + cpu.systemUs) / 1000 / windowMs) * 100);
    const toolPercent = cpuPercents.reduce((sum, value) => sum + value, 0);
    const quantileMs = (q: number): number => histogram.quantileNs(q) / 1e6;
    const { host: _host, port: _port, ...settings } = options;
    return {
      startedAt: startedAt.toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      url: `mqtt://${options.host}:${options.port}`,
      settings: { ...settings, workers: workerCount },
      windowSeconds,
      sent: { messages: final.sentMeasured, perSecond: final.sentMeasured / windowSeconds, all: final.sent },
      received: {
        perSecond: final.deliveredInWindow / windowSeconds,
        mbPerSecond: (final.deliveredInWindow * options.size) / windowSeconds / 1e6,
        expected,
        delivered: final.measuredUnique,
        lost: Math.max(0, expected - final.measuredUnique),
        duplicates: final.duplicates,
        foreign: final.foreign,
        all: final.delivered,
      },
      publishes: { completed: final.completed, refused: final.refused, inflightAtEnd: final.inflight },
      latencyMs: { samples: histogram.count, p50: quantileMs(0.5), p99: quantileMs(0.99), p999: quantileMs(0.999), max: quantileMs(1) },
      tool: { processes: cpuPercents.length, cpuPercentOfCore: toolPercent, cpuPercentOfMachine: toolPercent / availableParallelism(), busiestProcessPercent: Math.max(...cpuPercents),
        perProcessPercent: cpuPercents,
        busiestWorkerLoopPercent: Math.max(0, ...handles.map((handle) => (handle.final?.windowLoopBusy ?? 0) * 100)),
      },
      broker,
      accounting,
      connectSeconds,
      drainSeconds,
      errors,
      errorCount: final.errorCount,
      elapsedSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    for (const timer of timers) clearTimeout(timer);
    for (const handle of handles) {
      if (!handle.exited && handle.child.exitCode === null) handle.child.kill('SIGKILL');
    }
  }
}

/**
 * The broker's counters once they stop moving: after the connections close it may still be
 * reading publishes from its socket buffers. Polled every COUNTER_SETTLE_POLL_MS, at most
 * COUNTER_SETTLE_MAX_MS.
 */
async function settledCounters(admin: { url: string; token: string }): Promise<BrokerCounters> {
  let previous = await fetchBrokerCounters(admin);
  const deadline = performance.now() + COUNTER_SETTLE_MAX_MS;
  while (performance.now() < deadline) {
    await sleep(COUNTER_SETTLE_POLL_MS);
    const current = await fetchBrokerCounters(admin);
    if (current.messagesIn === previous.messagesIn && current.messagesOut === previous.messagesOut) return current;
    previous = current;
  }
  return previous;
}

function sumStats(all: (WorkerStats | null)[]): WorkerStats {
  const sum: WorkerStats = { sent: 0, sentMeasured: 0, sentMeasuredMatching: 0, sentMatching: 0, completed: 0, refused: 0, inflight: 0, publishersDone: true, delivered: 0, deliveredInWindow: 0, measuredUnique: 0, duplicates: 0, foreign: 0, latenciesNs: new Float64Array(0), windowCpu: emptyCpu(), windowLoopBusy: 0, errors: [], errorCount: 0 };
  for (const stats of all) {
    if (stats === null) {
      sum.publishersDone = false;
      continue;
    }
    sum.sent += stats.sent;
    sum.sentMeasured += stats.sentMeasured;
    sum.sentMeasuredMatching += stats.sentMeasuredMatching;
    sum.sentMatching += stats.sentMatching;
    sum.completed += stats.completed;
    sum.refused += stats.refused;
    sum.inflight += stats.inflight;
    sum.publishersDone &&= stats.publishersDone;
    sum.delivered += stats.delivered;
    sum.deliveredInWindow += stats.deliveredInWindow;
    sum.measuredUnique += stats.measuredUnique;
    sum.duplicates += stats.duplicates;
    sum.foreign += stats.foreign;
    sum.errorCount += stats.errorCount;
  }
  return sum;
}

function number(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${number(bytes / 2 ** 20, 1)} MiB`;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${number((part / whole) * 100, 3)}%`;
}

export function formatMqttReport(report: MqttBenchReport): string {
  const s = report.settings;
  const lines = [
    `shardline bench mqtt: ${report.url}, MQTT ${s.protocolVersion === 5 ? '5' : '3.1.1'}, ${report.startedAt}, node ${report.node}, ${report.cpus} CPUs`,
    `${s.publishers} pub(s) on ${s.topic} -> ${s.subscribers} sub(s) on ${s.subTopic}, QoS ${s.qos}, ${s.size} B payload, rate ${s.rate === 0 ? `max${s.qos > 0 ? ` (window ${s.inflight}/pub)` : ''}` : `${number(s.rate)} msg/s`}, ${s.idleConnections} idle conn(s), ${s.workers} worker(s)`,
    `window ${number(report.windowSeconds, 2)} s after ${number(s.warmupMs / 1000, 1)} s warm-up; connect ${number(report.connectSeconds.idle + report.connectSeconds.subscribers + report.connectSeconds.publishers, 1)} s; drain ${number(report.drainSeconds, 2)} s`,
    '',
  ];
  if (s.publishers > 0) lines.push(`sent        ${number(report.sent.perSecond)} msg/s  (${number(report.sent.messages)} in the window)`);
  if (s.subscribers > 0) {
    lines.push(
      `received    ${number(report.received.perSecond)} msg/s  ${number(report.received.mbPerSecond, 2)} MB/s payload`,
      `delivery    expected ${number(report.received.expected)}, received ${number(report.received.delivered)}, not arrived ${number(report.received.lost)} (${percent(report.received.lost, report.received.expected)}; by the end of the drain${report.accounting === null ? '; --admin splits it by where it went' : ''}), duplicates ${number(report.received.duplicates)}${report.received.foreign > 0 ? `, foreign ${number(report.received.foreign)}` : ''}`,
      `latency ms  p50 ${number(report.latencyMs.p50, 3)}  p99 ${number(report.latencyMs.p99, 3)}  p999 ${number(report.latencyMs.p999, 3)}  max ${number(report.latencyMs.max, 3)}  (${number(report.latencyMs.samples)} samples)`,
    );
  }
  if (s.qos > 0 && s.publishers > 0) lines.push(`publishes   completed ${number(report.publishes.completed)}, refused ${number(report.publishes.refused)}, in flight at the end ${number(report.publishes.inflightAtEnd)}`);
  const a = report.accounting;
  if (a !== null) {
    const dropped = Object.entries(a.brokerDropped).filter(([, count]) => count !== 0);
    const droppedTotal = dropped.reduce((sum, [, count]) => sum + count, 0);
    lines.push(
      `accounting  whole run, tool vs. broker counters (/metrics): tool sent ${number(a.toolSent)}, broker received ${number(a.brokerReceived)} (${number(a.notReceivedByBroker)} never reached it)`,
      `            deliveries expected ${number(a.expectedDeliveries)}: subscribers got ${number(a.toolReceived)}, broker dropped ${number(droppedTotal)}${dropped.length === 0 ? '' : ` (${dropped.map(([reason, count]) => `${reason} ${number(count)}`).join(', ')})`},`,
      `            in flight to the subscribers when the run closed ${number(a.inFlightAtEnd)}, still in the broker (journal, dispatch) when they left ${number(a.notDeliveredByBroker)}, publishes that never reached it x subscribers ${number(a.notReceivedByBroker * s.subscribers)}`,
    );
  }
  const b = report.broker;
  if (b !== null) {
    const perConn = b.perIdleConnectionBytes === null ? '' : `, after ${number(s.idleConnections)} idle conns ${mib(b.rssAfterIdleBytes)} (${number(b.perIdleConnectionBytes / 1024, 2)} KiB/conn)`;
    lines.push(`broker      pid ${b.pid}: RSS before ${mib(b.rssBeforeBytes)}${perConn}, peak ${mib(b.rssPeakBytes)}, end ${mib(b.rssEndBytes)}; CPU ${number(b.cpuPercentOfCore)}% of a core in the window, ${number(b.cpuSecondsTotal, 2)} s in all`);
  }
  lines.push(`load tool   CPU ${number(report.tool.cpuPercentOfCore)}% of a core (${number(report.tool.cpuPercentOfMachine)}% of ${report.cpus} CPUs) over ${report.tool.processes} processes; busiest ${number(report.tool.busiestProcessPercent)}%; busiest event loop ${number(report.tool.busiestWorkerLoopPercent)}% busy`);
  const warnings: string[] = [];
  if (report.tool.busiestProcessPercent >= 90 || report.tool.busiestWorkerLoopPercent >= 90) warnings.push('a load tool worker had no slack (near 100% CPU or event loop busy): the tool may have limited the rate (try --workers, or a quieter machine)');
  if (s.rate > 0 && report.sent.perSecond < s.rate * 0.95) warnings.push(`sent ${number(report.sent.perSecond)} msg/s, below the target ${number(s.rate)}`);
  if (report.errorCount > 0) warnings.push(`${number(report.errorCount)} error(s), first: ${report.errors.slice(0, 3).join('; ')}`);
  for (const warning of warnings) lines.push(`warning: ${warning}`);
  if (s.rate === 0 && s.qos === 0 && s.subscribers > 0) lines.push('note: QoS 0 at full speed fills the socket buffers, so latency measures that queue; quote latency from a --rate run');
  lines.push(`elapsed ${number(report.elapsedSeconds, 1)} s`);
  return `${lines.join('\n')}\n`;
}
