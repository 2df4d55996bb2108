// The restart benchmark: how long a node with a large broker state takes from process start
// until it serves MQTT. The state is written straight into a data directory through the
// journal and the engine's record builders (minutes of MQTT connections are not needed to
// make 100,000 durable sessions), then `shardline start` is run on it several times and timed
// from spawn until a CONNECT gets its CONNACK.
//
// The first start after the fill finds no snapshot (as after a crash before any was written);
// each later one follows a clean shutdown of the one before. Both are reported apart.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import mqttPacket from 'mqtt-packet';
import pino from 'pino';
import { Journal, type RecordInput } from '../../journal/index.js';
import { ACL_SHARD, AclStore, Broker, cursorRecord, messageToRecord, metaRecord, RETAINED_SHARD, SESSIONS_SHARD, subscriptionRecord, type Message } from '../../engine/index.js';
import { LocalShardStore } from '../../shard-model/index.js';
import { freeLoopbackPorts } from '../../placement/service/index.js';

/** Records per append while filling: big batches, few fsyncs. */
const FILL_BATCH_RECORDS = 5_000;
/** How long a node may take to serve before the run is given up. */
const SERVE_TIMEOUT_MS = 10 * 60_000;
const PROBE_RETRY_MS = 20;

export interface RestartFill {
  sessions: number;
  retained: number;
  aclRules: number;
  /**
   * Times every session's cursors are written again and every retained topic is published
   * again after the first records: the history a running node leaves in the shards before
   * compaction reclaims it (superseded records a replay from offset 0 reads all the same).
   */
  updates: number;
  /** Data shards of the node (fixed at the first start). */
  dataShards: number;
}

export interface RestartRun {
  /** Spawn until CONNACK, ms. */
  serveMs: number;
  /**
   * CPU time (user + system) the node process used until it served, ms, from /proc (undefined
   * where there is none). Steadier than serveMs on a shared machine, where other work stretches
   * the wall time.
   */
  cpuMs: number | undefined;
  /** What the node said it rebuilt (its "broker state rebuilt" log line). */
  rebuilt: { sessions?: number; retained?: number; sessionRecords?: number; retainedRecords?: number };
}

/** Fills an empty data directory with the given state, telling progress in records. */
export async function fillDataDir(directory: string, fill: RestartFill, progress: (records: number) => void): Promise<void> {
  const logger = pino({ level: 'silent' });
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  try {
    const store = LocalShardStore.over(journal);
    // The system shards with the settings the node gives them, made by the components themselves.
    const broker = await Broker.open({ store, logger, dataShards: fill.dataShards, maxQueuedBytes: 1024 * 1024 });
    await broker.close();
    await (await AclStore.open(store, logger)).close();
    const now = Date.now();
    // A day of expiry: none ends while the benchmark runs. Each has one subscription and cursors
    // on every data shard, what a durable session that connected once and read a little holds.
    const atStart = Object.fromEntries(broker.dataShardNames.map((name) => [name, 0]));
    const cursors = { acked: atStart, sent: atStart };
    await appendAll(
      store,
      SESSIONS_SHARD,
      fill.sessions,
      (i) => [
        metaRecord(`bench-${i}`, { expirySeconds: 86_400, connected: false, disconnectedAt: now, protocolVersion: 5 }),
        subscriptionRecord(`bench-${i}`, `bench/${i}/#`, { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' }),
        cursorRecord(`bench-${i}`, cursors),
      ],
      progress,
    );
    await appendAll(
      store,
      RETAINED_SHARD,
      fill.retained,
      (i) => [messageToRecord(retainedMessage(i, now))],
      progress,
    );
    for (let round = 1; round <= fill.updates; round += 1) {
      const at = Object.fromEntries(broker.dataShardNames.map((name) => [name, round]));
      const moved = { acked: at, sent: at };
      await appendAll(store, SESSIONS_SHARD, fill.sessions, (i) => [cursorRecord(`bench-${i}`, moved)], progress);
      await appendAll(store, RETAINED_SHARD, fill.retained, (i) => [messageToRecord(retainedMessage(i, now + round))], progress);
    }
    await appendAll(
      store,
      ACL_SHARD,
      fill.aclRules,
      (i) => [{ key: Buffer.from(`bench-rule-${i}`), value: Buffer.from(JSON.stringify({ position: i, rule: { permission: 'allow', action: 'all', topic: `bench/${i}/#`, username: [`user-${i}`] } })) }],
      progress,
    );
  } finally {
    await journal.close();
  }
}

function retainedMessage(i: number, timestamp: number): Message {
  return { topic: `bench/retained/${i}`, payload: Buffer.from(`retained message ${i} `.padEnd(64, '.')), qos: 1, retain: true, publisherId: 'bench', timestamp, properties: undefined };
}

async function appendAll(store: LocalShardStore, shard: string, count: number, records: (i: number) => RecordInput[], progress: (records: number) => void): Promise<void> {
  let batch: RecordInput[] = [];
  for (let i = 0; i < count; i += 1) {
    batch.push(...records(i));
    if (batch.length >= FILL_BATCH_RECORDS || i === count - 1) {
      await store.append(shard, batch);
      progress(batch.length);
      batch = [];
    }
  }
}


/** Resolves once an MQTT CONNECT on the port gets a CONNACK; retries while the port refuses. */
async function connack(port: number, deadline: number): Promise<void> {
  const packet = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'bench-restart-probe', keepalive: 30 });
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => socket.write(packet));
      socket.once('data', (data: Buffer) => {
        socket.destroy();
        resolve(data[0] === 0x20);
      });
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (answered) return;
    if (performance.now() > deadline) throw new Error(`the node did not serve MQTT on port ${port} within ${SERVE_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, PROBE_RETRY_MS));
  }
}

/**
 * Starts `shardline start` on the directory (the same entry point and loader this process runs
 * with), times it until it serves, then stops it with SIGTERM (a clean shutdown) and waits.
 */
export async function timeOneStart(directory: string): Promise<RestartRun> {
  const [mqttPort, grpcPort, adminPort] = (await freeLoopbackPorts(3)) as [number, number, number];
  const entry = process.argv[1] as string;
  const started = performance.now();
  const child = spawn(process.execPath, [...process.execArgv, entry, 'start', '--data-dir', directory, '--mqtt-port', String(mqttPort), '--grpc-port', String(grpcPort), '--admin-port', String(adminPort), '--kafka-port', 'none', '--amqp-port', 'none', '--sys-interval', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SHARDLINE_LOG_LEVEL: 'info' },
  });
  const rebuilt: RestartRun['rebuilt'] = {};
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (;;) {
      const end = output.indexOf('\n');
      if (end < 0) break;
      const line = output.slice(0, end);
      output = output.slice(end + 1);
      if (!line.includes('broker state rebuilt')) continue;
      try {
        Object.assign(rebuilt, JSON.parse(line) as RestartRun['rebuilt']);
      } catch {
        // Not JSON: a line of another format; the timing stands without the counts.
      }
    }
  });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString('utf8');
  });
  const exited = once(child, 'exit');
  try {
    await Promise.race([connack(mqttPort, started + SERVE_TIMEOUT_MS), exited.then(() => Promise.reject(new Error(`the node exited before serving: ${errors.slice(-2000)}`)))]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const serveMs = performance.now() - started;
  const cpuMs = child.pid === undefined ? undefined : await processCpuMs(child.pid);
  child.kill('SIGTERM');
  await exited;
  return { serveMs, cpuMs, rebuilt: { sessions: rebuilt.sessions, retained: rebuilt.retained, sessionRecords: rebuilt.sessionRecords, retainedRecords: rebuilt.retainedRecords } };
}

/** User + system CPU time of a process so far, ms (Linux /proc; undefined elsewhere). */
async function processCpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, so cut at the last ')'): utime is
    // the 14th field of the line, stime the 15th, in clock ticks (100 per second on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
