// Real broker processes for integration tests: `shardline start` (dist/, built from the sources
// when they changed: cli-entry.ts), in the
// single-node topology (journal and broker in one process) or split (a journal server process
// plus a broker process that reaches it over gRPC), each with its own scratch data directory
// and port 0 everywhere (the admin API's too). The bound addresses come from the "listening"
// log line.
//
// SHARDLINE_TEST_BROKER=mosquitto runs the same tests against a local Mosquitto instead (a
// development aid to check that a test expects what a reference broker does; tests that need
// Shardline-only behaviour, such as kill -9 recovery, call requireShardline()).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPorts } from '../../placement/service/index.js';
import { cliArgs } from './cli-entry.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const LISTEN_TIMEOUT_MS = 30_000;

export type Topology = 'single' | 'split';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  exited: Promise<ExitInfo>;
}

export interface BrokerProcess {
  /** mqtt://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  topology: Topology;
  dataDir: string;
  /** The process serving MQTT. */
  broker: CliProcess;
  /** The journal server process (split topology only). */
  journal?: CliProcess;
  journalAddress?: string;
}

export interface StartBrokerOptions {
  topology?: Topology;
  /** Reuse a data directory (restart after a crash); a new scratch one otherwise. */
  dataDir?: string;
  /** Split topology: reuse a running journal server (restart only the broker). */
  journal?: { process: CliProcess; address: string };
  /** Extra `shardline start` flags, e.g. ['--max-packet-size', '1024']. */
  args?: string[];
  /** Split topology: extra flags for the journal server process (journal settings such as retention). */
  journalArgs?: string[];
  /** Extra environment variables for the broker process. */
  env?: Record<string, string>;
  /** Fixed MQTT port (restarts that must keep the address); 0 by default. */
  mqttPort?: number;
  /** How long the start may take before the test fails (a node with --workers starts several processes); 30 s by default. */
  listenTimeoutMs?: number;
}

const scratch: string[] = [];
const running = new Set<ChildProcess>();

export function usingMosquitto(): boolean {
  return process.env.SHARDLINE_TEST_BROKER === 'mosquitto';
}

export async function scratchDirectory(prefix = 'shardline-mqtt-it-'): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(directory);
  return directory;
}

/** Writes a `shardline start` config file (TOML unless the name says otherwise) into a scratch directory. */
export async function writeConfigFile(text: string, name = 'shardline.toml'): Promise<string> {
  const path = join(await scratchDirectory('shardline-config-'), name);
  await writeFile(path, text);
  return path;
}

/**
 * Runs the CLI (cli-entry.ts) and collects its output; `exited` settles when it ends.
 * SHARDLINE_ADMIN_PORT=0 unless the caller sets it: every `shardline start` node serves the
 * admin API, on 8080 by default, and test files run in parallel would fight over that port.
 */
export function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, cliArgs(args), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Kafka's and AMQP's default ports would clash between nodes started at once: a test that wants
    // those listeners asks for them (--kafka-port 0, --amqp-port 0).
    env: { ...process.env, SHARDLINE_ADMIN_PORT: '0', SHARDLINE_KAFKA_PORT: 'none', SHARDLINE_AMQP_PORT: 'none', ...env },
  });
  return track(child);
}

function track(child: ChildProcess): CliProcess {
  running.add(child);
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => {
    running.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stderr };
  });
  return { child, lines, exited };
}

/** Waits for a JSON log line that has `field`; fails if the process exits first. */
export async function waitForLogField(cli: CliProcess, field: string, timeoutMs = LISTEN_TIMEOUT_MS): Promise<Record<string, unknown>> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    for (const line of cli.lines) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (entry[field] !== undefined) return entry;
    }
    const ended = await Promise.race([cli.exited, new Promise((done) => setTimeout(done, 20, null))]);
    if (ended !== null) assert.fail(`process exited before logging ${field}: ${JSON.stringify(ended)}\n${cli.lines.join('\n')}`);
  }
  cli.child.kill('SIGKILL');
  assert.fail(`no log line with ${field} within ${timeoutMs} ms:\n${cli.lines.join('\n')}`);
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/** Starts a journal server (`--roles journal`) on a data directory. */
export async function startJournalServer(dataDir: string, args: string[] = []): Promise<{ process: CliProcess; address: string }> {
  const cli = runCli(['start', '--roles', 'journal', '--data-dir', dataDir, '--grpc-port', '0', '--admin-port', '0', ...args]);
  const entry = await waitForLogField(cli, 'journalGrpc');
  return { process: cli, address: String(entry.journalGrpc) };
}

/** Starts a broker in the given topology and resolves once it accepts MQTT connections. */
export async function startBroker(options: StartBrokerOptions = {}): Promise<BrokerProcess> {
  const topology = options.topology ?? 'single';
  if (usingMosquitto()) return startMosquitto(options);
  const dataDir = options.dataDir ?? (await scratchDirectory());
  const mqttPort = String(options.mqttPort ?? 0);
  if (topology === 'single') {
    const broker = runCli(['start', '--data-dir', dataDir, '--mqtt-port', mqttPort, '--grpc-port', '0', '--admin-port', '0', ...(options.args ?? [])], options.env);
    const entry = await waitForLogField(broker, 'mqtt', options.listenTimeoutMs);
    const { host, port } = splitAddress(String(entry.mqtt));
    return { url: `mqtt://${host}:${port}`, host, port, topology, dataDir, broker };
  }
  const journal = options.journal ?? (await startJournalServer(dataDir, options.journalArgs));
  const broker = runCli(['start', '--roles', 'broker', '--journal', journal.address, '--mqtt-port', mqttPort, '--admin-port', '0', ...(options.args ?? [])], options.env);
  const entry = await waitForLogField(broker, 'mqtt');
  const { host, port } = splitAddress(String(entry.mqtt));
  return { url: `mqtt://${host}:${port}`, host, port, topology, dataDir, broker, journal: journal.process, journalAddress: journal.address };
}

/** SIGKILLs the broker process (not the journal server of a split topology). */
export async function killBroker(broker: BrokerProcess): Promise<void> {
  if (broker.broker.child.exitCode !== null || broker.broker.child.signalCode !== null) return;
  broker.broker.child.kill('SIGKILL');
  await broker.broker.exited;
}

/**
 * Restarts after a crash: the single topology restarts the whole node on the same data
 * directory; the split topology restarts only the broker against the same journal server.
 * The MQTT port stays the same so clients can reconnect to the old URL.
 */
export async function restartBroker(previous: BrokerProcess, args: string[] = []): Promise<BrokerProcess> {
  await killBroker(previous);
  const journal = previous.journal !== undefined && previous.journalAddress !== undefined ? { process: previous.journal, address: previous.journalAddress } : undefined;
  return startBroker({ topology: previous.topology, dataDir: previous.dataDir, journal, mqttPort: previous.port, args });
}

/**
 * SIGTERM to each process still running, one after the other in the order given, each expected
 * to exit 0. Every one is stopped before a bad exit fails the call: a process left running
 * keeps the test file from ending.
 */
export async function stopCleanly(clis: readonly (CliProcess | undefined)[]): Promise<void> {
  const bad: string[] = [];
  for (const cli of clis) {
    if (cli === undefined || cli.child.exitCode !== null || cli.child.signalCode !== null) continue;
    cli.child.kill('SIGTERM');
    const { code, signal, stderr } = await cli.exited;
    if (code !== 0) bad.push(`exit: code ${code}, signal ${signal}, stderr: ${stderr.slice(-2000)}`);
  }
  assert.deepEqual(bad, [], 'every process exits 0 on SIGTERM');
}

/** SIGTERM, then expects a clean exit 0. */
export function stopBroker(broker: BrokerProcess): Promise<void> {
  return stopCleanly([broker.broker, broker.journal]);
}

/**
 * One broker for a describe block: started before its tests, stopped (exit 0 expected) after
 * them, with `beforeStop` run first (closing the block's clients). The returned object is filled
 * in by the before hook, so tests read `broker.url` as usual.
 */
export function brokerForSuite(options: StartBrokerOptions, beforeStop: () => void = () => undefined): BrokerProcess {
  const broker = {} as BrokerProcess;
  before(async () => {
    Object.assign(broker, await startBroker(options));
  });
  after(async () => {
    beforeStop();
    try {
      if (broker.broker !== undefined) await stopBroker(broker);
    } finally {
      await cleanup();
    }
  });
  return broker;
}

/** Kills every process this module started (by handle) and removes the scratch directories. */
export async function cleanup(): Promise<void> {
  for (const child of running) child.kill('SIGKILL');
  await Promise.all([...running].map((child) => once(child, 'exit').catch(() => undefined)));
  for (const directory of scratch.splice(0)) await rm(directory, { recursive: true, force: true });
}

export function requireShardline(t: { skip: (message: string) => void }): boolean {
  if (!usingMosquitto()) return true;
  t.skip('Shardline-only behaviour (SHARDLINE_TEST_BROKER=mosquitto)');
  return false;
}

/**
 * A port that was free a moment ago, from below the ephemeral range: a port `listen(0)` hands
 * out may be taken by any outgoing connection before the process binds it (a CI run's voter
 * failed to start on EADDRINUSE that way), and the tests make many.
 */
export async function freePort(): Promise<number> {
  const [port] = await freeLoopbackPorts(1);
  if (port === undefined) throw new Error('no free loopback port');
  return port;
}

/**
 * The `shardline start` limit flags that Mosquitto has an equivalent for, as mosquitto.conf
 * lines, so limit tests can be checked against it too; flags without one are left out (a test
 * that depends on them will show Mosquitto's default behaviour).
 */
function mosquittoLimits(args: string[]): { global: string[]; listener: string[] } {
  const global = new Map<string, string>([['max_keepalive', '65535']]);
  const listener: string[] = [];
  const globalNames: Record<string, string> = {
    '--max-packet-size': 'max_packet_size',
    '--max-inflight': 'max_inflight_messages',
    '--max-queued-bytes': 'max_queued_bytes',
    '--max-keep-alive': 'max_keepalive',
  };
  const listenerNames: Record<string, string> = { '--max-connections': 'max_connections', '--topic-alias-maximum': 'max_topic_alias' };
  for (let index = 0; index + 1 < args.length; index += 2) {
    const flag = args[index]!;
    const value = args[index + 1]!;
    if (globalNames[flag] !== undefined) global.set(globalNames[flag], value);
    else if (listenerNames[flag] !== undefined) listener.push(`${listenerNames[flag]} ${value}`);
  }
  return { global: [...global].map(([name, value]) => `${name} ${value}`), listener };
}

async function startMosquitto(options: StartBrokerOptions): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? (await scratchDirectory('shardline-mosquitto-'));
  const port = options.mqttPort !== undefined && options.mqttPort !== 0 ? options.mqttPort : await freePort();
  const config = join(dataDir, 'mosquitto.conf');
  const limits = mosquittoLimits(options.args ?? []);
  await writeFile(config, [...limits.global, `listener ${port} 127.0.0.1`, ...limits.listener, 'allow_anonymous true', 'persistence false', ''].join('\n'));
  const child = spawn('mosquitto', ['-c', config, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const cli = track(child);
  const started = Date.now();
  while (Date.now() - started < LISTEN_TIMEOUT_MS) {
    const ok = await new Promise<boolean>((done) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (ok) return { url: `mqtt://127.0.0.1:${port}`, host: '127.0.0.1', port, topology: 'single', dataDir, broker: cli };
    await new Promise((done) => setTimeout(done, 50));
  }
  assert.fail('mosquitto did not start');
}

