// The brokers `shardline bench amqp` starts, each a child of this process on free loopback
// ports with a scratch directory, stopped by its pid afterwards:
// - Shardline: `shardline start --amqp-port P` on a new data directory (default durability,
//   fsync), as this process runs (sources under tsx, or dist/).
// - RabbitMQ: the installed server's own start script with every path, name and port its own
//   (RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, RABBITMQ_NODENAME, RABBITMQ_NODE_PORT,
//   RABBITMQ_DIST_PORT, a rabbitmq.conf whose one listener is 127.0.0.1, no plugins, a private
//   HOME for the Erlang cookie), and its own epmd on a free loopback port, so nothing of an
//   installed RabbitMQ or another Erlang node is touched. The script runs in its own process
//   group (it starts beam.smp and helpers as children), which is signalled as a whole.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { freeLoopbackPorts } from '../../placement/service/index.js';
import { readCpuSeconds } from './mqtt-bench.js';
import { acceptsConnections, firstExecutable, shardlineEntry } from './local-process.js';

/** 'target': a broker given by --target, not started here. */
export type AmqpBrokerName = 'shardline' | 'rabbitmq' | 'target';

const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 100;
const STOP_TIMEOUT_MS = 10_000;
const STDERR_TAIL_BYTES = 4000;
/** The start script itself, not /usr/sbin's wrapper (which, run as root, switches to the rabbitmq user and its /var/lib directory). */
const RABBITMQ_PATHS = ['/usr/lib/rabbitmq/bin/rabbitmq-server', '/usr/local/sbin/rabbitmq-server', '/opt/homebrew/sbin/rabbitmq-server', '/usr/sbin/rabbitmq-server'];
const EPMD_PATHS = ['/usr/bin/epmd', '/usr/local/bin/epmd', '/usr/lib/erlang/bin/epmd'];

/** rabbitmq-server: `explicit` if given, else the usual install paths; null when none is there. */
export function findRabbitmq(explicit?: string): Promise<string | null> {
  return firstExecutable(explicit !== undefined ? [explicit] : RABBITMQ_PATHS);
}

/** "3.10.8", from the directory the Debian and generic-unix packages install the script in (rabbitmq_server-VERSION/sbin). */
export async function rabbitmqVersion(path: string): Promise<string> {
  const match = /rabbitmq_server-([\w.-]+)$/.exec(dirname(dirname(await realpath(path).catch(() => path))));
  return match?.[1] ?? 'unknown';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface RunningAmqpBroker {
  name: AmqpBrokerName;
  port: number;
  /** The child this process started; its process tree is the broker. */
  child: ChildProcess;
  /** Signalled as a group (RabbitMQ's script and its children). */
  group: boolean;
  /** epmd started for this RabbitMQ. */
  epmd?: ChildProcess;
  directory: string;
  stderr(): string;
}

export interface StartAmqpBrokerOptions {
  rabbitmqPath: string | null;
  shardlineArgs: readonly string[];
}

export async function startAmqpBroker(name: AmqpBrokerName, options: StartAmqpBrokerOptions): Promise<RunningAmqpBroker> {
  const directory = await mkdtemp(join(tmpdir(), `shardline-bench-amqp-${name}-`));
  const [port, distPort, epmdPort] = await freeLoopbackPorts(3);
  let running: RunningAmqpBroker;
  if (name === 'shardline') {
    const args = [...shardlineEntry(), 'start', '--data-dir', join(directory, 'data'), '--amqp-port', String(port), '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', '0', '--log-level', 'warn', ...options.shardlineArgs];
    running = withStderr({ name, port: port!, child: spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }), group: false, directory });
  } else if (name === 'target') {
    throw new Error('a --target broker is not started by the bench');
  } else {
    if (options.rabbitmqPath === null) throw new Error('RabbitMQ is not installed');
    running = await startRabbitmq(options.rabbitmqPath, directory, port!, distPort!, epmdPort!);
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await acceptsConnections(running.port))) {
    const { child } = running;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stopAmqpBroker(running);
      throw new Error(`${name} did not listen on 127.0.0.1:${running.port}${child.exitCode !== null ? ` (exited with ${child.exitCode})` : ''}: ${running.stderr().trim().split('\n').slice(-3).join(' | ')}`);
    }
    await sleep(READY_POLL_MS);
  }
  return running;
}

function withStderr(broker: Omit<RunningAmqpBroker, 'stderr'>): RunningAmqpBroker {
  let stderr = '';
  broker.child.stderr?.setEncoding('utf8');
  broker.child.stderr?.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)));
  // Output not read would fill the pipe and stall the broker.
  broker.child.stdout?.resume();
  return { ...broker, stderr: () => stderr };
}

async function startRabbitmq(script: string, directory: string, port: number, distPort: number, epmdPort: number): Promise<RunningAmqpBroker> {
  const home = join(directory, 'home');
  await Promise.all(['home', 'mnesia', 'log'].map((sub) => mkdir(join(directory, sub))));
  const config = join(directory, 'rabbitmq.conf');
  await writeFile(config, [`listeners.tcp.1 = 127.0.0.1:${port}`, 'log.console = false', ''].join('\n'));
  const plugins = join(directory, 'enabled_plugins');
  await writeFile(plugins, '[].\n');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: home,
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: join(directory, 'mnesia'),
    RABBITMQ_LOG_BASE: join(directory, 'log'),
    RABBITMQ_NODENAME: `${basename(directory).replace(/[^\w-]/g, '')}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    // No system-wide rabbitmq-env.conf: every setting is the ones above.
    RABBITMQ_CONF_ENV_FILE: '/dev/null',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const epmdPath = await firstExecutable(EPMD_PATHS);
  const epmd = epmdPath === null ? undefined : spawn(epmdPath, ['-address', '127.0.0.1', '-port', String(epmdPort)], { stdio: 'ignore', env });
  const child = spawn(script, [], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: directory, detached: true });
  return withStderr({ name: 'rabbitmq', port, child, group: true, ...(epmd === undefined ? {} : { epmd }), directory });
}

/** SIGTERM to the broker's pid (RabbitMQ: its process group), SIGKILL if it lingers; then its epmd and its scratch directory go. */
export async function stopAmqpBroker(broker: RunningAmqpBroker): Promise<void> {
  const { child } = broker;
  const signal = (name: NodeJS.Signals): void => {
    try {
      if (broker.group && child.pid !== undefined) process.kill(-child.pid, name);
      else child.kill(name);
    } catch {
      // already gone
    }
  };
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  // The script may end before beam.smp does: whatever is left of the group goes too.
  if (broker.group) signal('SIGKILL');
  const { epmd } = broker;
  if (epmd !== undefined && epmd.exitCode === null && epmd.signalCode === null) {
    const exited = once(epmd, 'exit');
    epmd.kill('SIGKILL');
    await exited;
  }
  await rm(broker.directory, { recursive: true, force: true });
}

/** CPU seconds used so far by the broker's process tree (the child and its descendants). */
export async function brokerCpuSeconds(broker: RunningAmqpBroker): Promise<number | null> {
  if (broker.child.pid === undefined) return null;
  let total = 0;
  const pending = [broker.child.pid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    total += (await readCpuSeconds(pid)) ?? 0;
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const child of children.trim().split(/\s+/)) if (child !== '') pending.push(Number(child));
  }
  return total;
}
