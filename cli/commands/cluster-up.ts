// `shardline cluster up`: a whole cluster on this machine, each node a separate `shardline start`
// child on loopback with its data under one directory, for trying the cluster and for tests that
// need one. It prints every address once all nodes listen and stops them all on Ctrl-C.
//
// The topology: 3 placement voters, N journal nodes (default 3) and M brokers (default 2); with
// --combined the first three journal nodes are the voters (one process each, --roles
// placement,journal, as the Kubernetes StatefulSet runs them). The
// journal nodes replicate the shards placement assigns them (replication factor 3 by default,
// capped by the journal nodes there are); the voters' leader runs the replication controller,
// which elects each shard's leader and fails it over; the brokers use no --journal: they send
// each shard's calls to its leader as placement names it (docs/replication.md), and run with
// --broker-peers so that they act as one MQTT service.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { freeLoopbackPorts } from '../../placement/service/index.js';
import { integerFlag, stringFlag, UsageError, type Command } from '../command.js';
import { formatTable } from '../table.js';

const DEFAULT_DIR = './shardline-cluster';
const VOTERS = 3;
const MAX_JOURNALS = 9;
const DEFAULT_JOURNALS = 3;
const MAX_BROKERS = 9;
const DEFAULT_BROKERS = 2;
/** Journal node ids start here and broker ids at BROKER_ID_BASE, apart from the voters' 1..3. */
const JOURNAL_ID_BASE = 10;
const BROKER_ID_BASE = 20;
const HOST = '127.0.0.1';
/** A node that has not logged its listening line by then is taken as failed (tsx or a loaded machine can be slow). */
const LISTEN_TIMEOUT_MS = 90_000;
const DEFAULT_GRACE_SECONDS = 10;
const STATE_FILE = 'cluster.json';
const TAIL_LINES = 5;

const usage = `
Usage: shardline cluster up [--dir DIR] [--journals N] [--brokers N] [--combined] [--base-port N]
                          [--grace-seconds S]

Starts a cluster on this machine, each node a separate \`shardline start\` process on 127.0.0.1
with its data under --dir, prints every address and the admin token, and runs until Ctrl-C
(SIGINT), SIGTERM or SIGHUP, which stop every node: brokers first, then journals, then voters,
each with SIGTERM and, past --grace-seconds, SIGKILL.

Nodes:
  placement-1..3  placement voters (node ids 1-3; a new cluster token is generated)
  journal-K       journal nodes (node ids 11, 12, ...), registered with the placement group;
                  they replicate every shard on up to 3 of them (the replication factor);
                  their gRPC ports refuse calls without the cluster token (in DIR/cluster.json)
  broker-K        brokers (node ids 21, 22, ...), registered; each sends a shard's appends
                  and reads to the shard's leader, which the placement leader elects and
                  replaces when its journal node dies
With --combined (the layout of deploy/kubernetes/, fewer processes on one machine):
  node-1..3       each a placement voter and a journal node in one process (--roles
                  placement,journal, node ids 1-3); journal-4.. (ids 14, ...) for --journals
                  above 3, and the brokers as above

A message acknowledged by a broker is on a majority of its shard's replicas. The brokers run with
--broker-peers: a message published at one reaches subscribers at every broker, and a client id
is connected at one broker at a time (docs/deployment.md, "Scaling brokers").

Flags:
  --dir DIR            where the nodes keep their data (DIR/placement-1, DIR/journal-1, ...),
                       their logs (DIR/logs/NODE.log) and the cluster's tokens and placement
                       ports (DIR/${STATE_FILE}, reused when the cluster is started again on the
                       same directory) (default: ${DEFAULT_DIR})
  --journals N         journal nodes, 1 to ${MAX_JOURNALS} (default: ${DEFAULT_JOURNALS})
  --brokers N          broker nodes, 1 to ${MAX_BROKERS} (default: ${DEFAULT_BROKERS})
  --combined           the voters are the first three journal nodes (needs --journals 3 or
                       more); a directory keeps the layout it was first started with
  --base-port N        consecutive ports from N (voters: placement then admin port each;
                       journals: gRPC then admin; brokers: MQTT then admin); unset: the
                       placement and journal gRPC ports are picked free once and kept in
                       DIR/${STATE_FILE} (placement records the journal addresses, so a
                       journal node restarted by hand must come back on its port), the
                       others are picked by the OS
  --grace-seconds S    how long each node gets to stop after SIGTERM before SIGKILL
                       (default: ${DEFAULT_GRACE_SECONDS})

SHARDLINE_* variables in the environment reach every node (SHARDLINE_LOG_LEVEL=debug, say);
flags set here win over them. A node that exits while the cluster runs is reported on stderr
with its log file; the others keep running. Exit status: 0 once every node stopped cleanly, 1
when a node failed to start, exited on its own or did not stop cleanly, 2 for bad flags.
`;

interface ClusterState {
  clusterToken: string;
  adminToken: string;
  placementPorts: number[];
  /** Journal gRPC ports by journal node (absent in a state written before they were kept). */
  journalPorts?: number[];
  /** Started with --combined (absent: without). */
  combined?: boolean;
}

interface NodePlan {
  name: string;
  /** Stopping order: brokers, journals, then voters (a combined node stops with the voters). */
  role: 'placement' | 'journal' | 'broker';
  /** What the address table shows (the --roles given). */
  roles: string;
  args: string[];
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RunningNode {
  plan: NodePlan;
  child: ChildProcess;
  pid: number;
  logPath: string;
  /** Fields of the node's listening log line (mqtt, admin, placement, journalGrpc). */
  listening: Promise<Record<string, unknown>>;
  exited: Promise<Exit>;
  exit: Exit | null;
}

async function loadState(path: string, combined: boolean, pickPorts: () => Promise<number[]>): Promise<ClusterState> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    const state = JSON.parse(text) as Partial<ClusterState>;
    if (typeof state.clusterToken !== 'string' || typeof state.adminToken !== 'string' || !Array.isArray(state.placementPorts) || state.placementPorts.length !== VOTERS) {
      throw new UsageError(`${path} is not a cluster state this command wrote; remove it or use another --dir`);
    }
    return state as ClusterState;
  }
  const state: ClusterState = {
    clusterToken: randomBytes(24).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
    placementPorts: await pickPorts(),
    ...(combined ? { combined } : {}),
  };
  await writeFile(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return state;
}

function plan(dir: string, journals: number, brokers: number, combined: boolean, placementPorts: readonly number[], journalPorts: readonly number[], nextPort: () => number): NodePlan[] {
  const peers = placementPorts.map((port, index) => `${index + 1}@${HOST}:${port}`).join(',');
  const voterAddresses = placementPorts.map((port) => `${HOST}:${port}`).join(',');
  const common = ['--host', HOST];
  const nodes: NodePlan[] = [];
  const journalArgs = (k: number): string[] => ['--grpc-port', String(journalPorts[k - 1] ?? nextPort())];
  for (let id = 1; id <= VOTERS; id++) {
    const placementPort = String(placementPorts[id - 1]);
    const voter = ['--node-id', String(id), '--placement-peers', peers, '--placement-port', placementPort];
    if (combined) nodes.push({ name: `node-${id}`, role: 'placement', roles: 'placement,journal', args: [...common, '--roles', 'placement,journal', ...voter, ...journalArgs(id), '--admin-port', String(nextPort()), '--data-dir', join(dir, `node-${id}`)] });
    else nodes.push({ name: `placement-${id}`, role: 'placement', roles: 'placement', args: [...common, '--roles', 'placement', ...voter, '--admin-port', String(nextPort()), '--data-dir', join(dir, `placement-${id}`)] });
  }
  for (let k = combined ? VOTERS + 1 : 1; k <= journals; k++) {
    nodes.push({ name: `journal-${k}`, role: 'journal', roles: 'journal', args: [...common, '--roles', 'journal', '--node-id', String(JOURNAL_ID_BASE + k), '--placement', voterAddresses, ...journalArgs(k), '--admin-port', String(nextPort()), '--data-dir', join(dir, `journal-${k}`)] });
  }
  for (let k = 1; k <= brokers; k++) {
    nodes.push({ name: `broker-${k}`, role: 'broker', roles: 'broker', args: [...common, '--roles', 'broker', '--node-id', String(BROKER_ID_BASE + k), '--placement', voterAddresses, '--mqtt-port', String(nextPort()), '--admin-port', String(nextPort()), '--kafka-port', 'none', '--broker-peers', 'true'] });
  }
  return nodes;
}

function startNode(node: NodePlan, logDir: string, env: NodeJS.ProcessEnv): RunningNode {
  // The same entry and loader flags as this process, so `node --import tsx cli/main.ts` and the
  // installed bin both start their own kind of child.
  const entry = process.argv[1];
  if (entry === undefined) throw new Error('cannot tell which script runs shardline (process.argv[1] is unset)');
  // Detached: a terminal's Ctrl-C reaches only this process, which then stops the nodes in order
  // (brokers before the journals they write to) instead of all of them at once.
  const child = spawn(process.execPath, [...process.execArgv, entry, 'start', ...node.args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${node.name}: the process did not start`);
  const logPath = join(logDir, `${node.name}.log`);
  const log: WriteStream = createWriteStream(logPath, { flags: 'a' });
  child.stderr?.pipe(log, { end: false });
  const running: RunningNode = { plan: node, child, pid, logPath, listening: Promise.resolve({}), exited: Promise.resolve({ code: null, signal: null }), exit: null };
  running.exited = new Promise<Exit>((resolveExit) => {
    child.once('close', (code, signal) => {
      running.exit = { code, signal };
      log.end();
      resolveExit(running.exit);
    });
  });
  // The last lines a node wrote, for the message when it fails to start (the reason is there).
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  if (child.stderr !== null) createInterface({ input: child.stderr }).on('line', keep);
  running.listening = new Promise((resolveListening, reject) => {
    const timer = setTimeout(() => reject(new Error(`${node.name} (pid ${pid}) did not report its addresses within ${LISTEN_TIMEOUT_MS / 1000} s; see ${logPath}`)), LISTEN_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      keep(line);
      let record: { msg?: unknown } & Record<string, unknown>;
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        return;
      }
      if (typeof record.msg === 'string' && record.msg.startsWith('listening')) {
        clearTimeout(timer);
        resolveListening(record);
      }
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${node.name} (pid ${pid}) exited before it listened (${describeExit({ code, signal })}); see ${logPath}; its last lines:\n${tail.join('\n')}`));
    });
  });
  // Rejections are read by whoever awaits; this keeps one nobody awaits from crashing the process.
  running.listening.catch(() => undefined);
  return running;
}

function describeExit(exit: Exit): string {
  return exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

function cell(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : '-';
}

function addressTable(nodes: readonly RunningNode[], addresses: ReadonlyMap<RunningNode, Record<string, unknown>>): string {
  const rows = nodes.map((node) => {
    const line = addresses.get(node) ?? {};
    return [node.plan.name, node.plan.roles, String(node.pid), cell(line.mqtt), cell(line.admin), cell(line.placement), cell(line.journalGrpc)];
  });
  return formatTable([{ title: 'NODE' }, { title: 'ROLE' }, { title: 'PID', align: 'right' }, { title: 'MQTT' }, { title: 'ADMIN' }, { title: 'PLACEMENT' }, { title: 'JOURNAL-GRPC' }], rows);
}

/** Stops the nodes group by group (SIGTERM, then SIGKILL past the grace); true when every one exited 0. */
async function stopAll(nodes: readonly RunningNode[], graceMs: number, hurry: Promise<void>): Promise<boolean> {
  let clean = true;
  for (const role of ['broker', 'journal', 'placement'] as const) {
    const group = nodes.filter((node) => node.plan.role === role && node.exit === null);
    for (const node of group) node.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolveGrace) => {
      timer = setTimeout(resolveGrace, graceMs);
    });
    await Promise.race([Promise.all(group.map((node) => node.exited)), grace, hurry]);
    clearTimeout(timer);
    for (const node of group) {
      if (node.exit === null) {
        process.stderr.write(`${node.plan.name} (pid ${node.pid}) did not stop in time: SIGKILL\n`);
        node.child.kill('SIGKILL');
        clean = false;
      }
    }
    for (const node of group) {
      const exit = await node.exited;
      if (exit.code !== 0) clean = false;
      process.stdout.write(`stopped ${node.plan.name} (pid ${node.pid}, ${describeExit(exit)})\n`);
    }
  }
  return clean;
}

async function run(values: Record<string, unknown>): Promise<number> {
  const dir = resolve(stringFlag(values, 'dir', DEFAULT_DIR));
  const journals = integerFlag(values, 'journals', DEFAULT_JOURNALS, 1);
  if (journals > MAX_JOURNALS) throw new UsageError(`--journals must be at most ${MAX_JOURNALS}, got ${journals}`);
  const brokers = integerFlag(values, 'brokers', DEFAULT_BROKERS, 1);
  if (brokers > MAX_BROKERS) throw new UsageError(`--brokers must be at most ${MAX_BROKERS}, got ${brokers}`);
  const combined = values.combined === true;
  if (combined && journals < VOTERS) throw new UsageError(`--combined makes the ${VOTERS} voters journal nodes too: --journals must be at least ${VOTERS}, got ${journals}`);
  const graceMs = integerFlag(values, 'grace-seconds', DEFAULT_GRACE_SECONDS, 1) * 1000;
  const basePort = values['base-port'] === undefined ? undefined : integerFlag(values, 'base-port', 0, 1);
  const portsNeeded = VOTERS * 2 + journals * 2 + brokers * 2 - (combined ? VOTERS : 0);
  if (basePort !== undefined && basePort + portsNeeded - 1 > 65_535) throw new UsageError(`--base-port ${basePort} leaves too few ports for ${portsNeeded} listeners`);

  const logDir = join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  let next = basePort ?? 0;
  // Ports after the placement ones; 0 lets each node take a free one and report it.
  const nextPort = (): number => (basePort === undefined ? 0 : next++);
  const placementPorts = basePort === undefined ? undefined : [nextPort(), nextPort(), nextPort()];
  const state = await loadState(join(dir, STATE_FILE), combined, async () => placementPorts ?? freeLoopbackPorts(VOTERS));
  if (placementPorts !== undefined && placementPorts.join() !== state.placementPorts.join()) {
    throw new UsageError(`the voters in ${dir} were founded on placement ports ${state.placementPorts.join(', ')}, not ${placementPorts.join(', ')}: start again with --base-port ${state.placementPorts[0]} or without it`);
  }
  const env = { ...process.env, SHARDLINE_CLUSTER_TOKEN: state.clusterToken, SHARDLINE_ADMIN_TOKEN: state.adminToken };
  let journalPorts: number[] = [];
  if (basePort === undefined) {
    // Kept across runs on one directory: placement and the replicas know the journal nodes by them.
    if (state.journalPorts === undefined || state.journalPorts.length < journals) {
      state.journalPorts = [...(state.journalPorts ?? []), ...(await freeLoopbackPorts(journals - (state.journalPorts?.length ?? 0)))];
      await writeFile(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    }
    journalPorts = state.journalPorts.slice(0, journals);
  }
  if ((state.combined === true) !== combined) {
    throw new UsageError(`${dir} holds a cluster first started ${state.combined === true ? 'with' : 'without'} --combined: start it the same way, or use another --dir`);
  }
  const plans = plan(dir, journals, brokers, combined, state.placementPorts, journalPorts, nextPort);

  const nodes: RunningNode[] = [];
  let stopping = false;
  /** A node exited while the cluster ran: the exit status says so. */
  let lost = false;
  let hurry = (): void => undefined;
  const hurried = new Promise<void>((resolveHurry) => {
    hurry = resolveHurry;
  });
  const stopRequested = new Promise<NodeJS.Signals>((resolveStop) => {
    const handler = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal: no more waiting for graceful stops.
        for (const node of nodes) if (node.exit === null) node.child.kill('SIGKILL');
        hurry();
        return;
      }
      stopping = true;
      resolveStop(signal);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, handler);
  });

  const launch = (node: NodePlan): RunningNode => {
    const running = startNode(node, logDir, env);
    nodes.push(running);
    running.child.once('close', (code, signal) => {
      if (stopping) return;
      lost = true;
      process.stderr.write(`${node.name} (pid ${running.pid}) exited unexpectedly (${describeExit({ code, signal })}); see ${running.logPath}\n`);
    });
    return running;
  };

  const addresses = new Map<RunningNode, Record<string, unknown>>();
  const listen = async (group: readonly RunningNode[]): Promise<void> => {
    const lines = await Promise.race([Promise.all(group.map((node) => node.listening)), stopRequested.then(() => null)]);
    if (lines === null) throw new Error('stopped');
    group.forEach((node, index) => addresses.set(node, lines[index] ?? {}));
  };

  try {
    process.stdout.write(combined ? `starting ${VOTERS} placement voters that are journal nodes too, ${journals - VOTERS} more journal node(s) and ${brokers} broker(s) under ${dir}\n` : `starting ${VOTERS} placement voters, ${journals} journal node(s) and ${brokers} broker(s) under ${dir}\n`);
    await listen(plans.filter((node) => node.role === 'placement').map(launch));
    const journalNodes = plans.filter((node) => node.role === 'journal').map(launch);
    await listen(journalNodes);
    // Together: the data shard count is the journal's first `$mqtt-layout` record, so brokers
    // creating the shards at once agree on it (engine/broker-start.ts).
    await listen(plans.filter((node) => node.role === 'broker').map(launch));
  } catch (error) {
    if (stopping) {
      process.stdout.write('stopping before every node listened\n');
      return (await stopAll(nodes, graceMs, hurried)) ? 0 : 1;
    }
    stopping = true;
    process.stderr.write(`shardline cluster up: ${(error as Error).message}\n`);
    await stopAll(nodes, graceMs, hurried);
    return 1;
  }

  process.stdout.write(`${addressTable(nodes, addresses)}\n\n`);
  process.stdout.write(`admin token: ${state.adminToken}   (e.g. SHARDLINE_ADMIN_TOKEN=… shardline ctl cluster members --server http://${cell(addresses.get(nodes[0] as RunningNode)?.admin)})\n`);
  process.stdout.write(`cluster token and placement ports: ${join(dir, STATE_FILE)}; logs: ${logDir}\n`);
  process.stdout.write(`shards are replicated on up to 3 journal nodes; their leaders are elected by the placement leader (shardline ctl replica status --shard NAME --journals ID@HOST:PORT,...)\n`);
  process.stdout.write('cluster up; Ctrl-C stops every node\n');

  const signal = await stopRequested;
  process.stdout.write(`${signal}: stopping brokers, then journals, then voters\n`);
  const clean = await stopAll(nodes, graceMs, hurried);
  return clean && !lost ? 0 : 1;
}

export const clusterUpCommand: Command = {
  path: ['cluster', 'up'],
  summary: 'Run a cluster on this machine: 3 placement voters, 3 replicating journal nodes and 2 brokers as separate processes',
  usage,
  options: {
    dir: { type: 'string' },
    journals: { type: 'string' },
    brokers: { type: 'string' },
    'base-port': { type: 'string' },
    'grace-seconds': { type: 'string' },
    combined: { type: 'boolean' },
  },
  run,
};
