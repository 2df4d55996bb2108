// A `shardline cluster up` cluster for the replication proofs (cluster-failover, cluster-wipe,
// replica-reassign): started as a child process, its printed address table
// parsed, journal nodes killed and restarted by hand on their ports and data directories, the
// MQTT publishers that count what was acknowledged, and the checks those tests share: replicas
// byte-identical below the high watermark (stored batches compared as bytes) and `shardline
// shard verify` on each journal node's data directory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { readBatchHeader } from '../../journal/index.js';
import type { ShardRecord } from '../../placement/metadata/index.js';
import { PlacementClient } from '../../placement/service/index.js';
import { MqttShardMap, RemoteShardStore } from '../../shard-model/index.js';
import { cleanup, runCli, waitForLogField, type CliProcess } from './broker-process.js';

const POLL_MS = 200;
export const STEP_TIMEOUT_MS = 90_000;
const UP_TIMEOUT_MS = 240_000;
/** Journal node ids are 10 + K for journal-K (cli/commands/cluster-up.ts). */
const JOURNAL_ID_BASE = 10;

export interface PrintedNode {
  name: string;
  role: string;
  pid: number;
  mqtt: string;
  admin: string;
  placement: string;
  journalGrpc: string;
}

/** When the process `pid` started (clock ticks since boot, /proc/PID/stat field 22); undefined when it is gone. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Pids that remember when their process started: a pid whose process has exited may be given to
 * another process, another test file's node say, which a SIGKILL by pid alone would hit.
 */
class OwnedPids extends Set<number> {
  readonly #started = new Map<number, string | undefined>();

  override add(pid: number): this {
    this.#started.set(pid, startTicks(pid));
    return super.add(pid);
  }

  /** The pids still held by the processes they were added for. */
  alive(): number[] {
    return [...this].filter((pid) => this.#started.get(pid) !== undefined && startTicks(pid) === this.#started.get(pid));
  }
}

/** The pids a test file's clusters start, SIGKILLed (with the scratch directories removed) after its tests, each only if still the process it was added for. */
export function killedAfterTests(): Set<number> {
  const pids = new OwnedPids();
  after(async () => {
    for (const pid of pids.alive()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone since
      }
    }
    await cleanup();
  });
  return pids;
}

/** An MQTT client publishing `ID:SEQ` to one topic, up to `inFlight` messages unacknowledged, counting what was acknowledged. */
export interface CountingPublisher {
  client: MqttClient;
  qos: 1 | 2;
  /** The sequence numbers acknowledged, in the order the acknowledgements came. */
  acked: number[];
  errors: string[];
  /** How often the connection closed (the tests require none). */
  closed: number;
  stopped: boolean;
  /** Settles when the publisher stops (`stopped` set, `max` reached, or a publish failed) and nothing it sent is unanswered. */
  done: Promise<void>;
}

export async function startCountingPublisher(address: string, clientId: string, id: number, topic: string, qos: 1 | 2, max: number, inFlight = 1): Promise<CountingPublisher> {
  const client = await mqtt.connectAsync(`mqtt://${address}`, { clientId, clean: true, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 120 });
  const publisher: CountingPublisher = { client, qos, acked: [], errors: [], closed: 0, stopped: false, done: Promise.resolve() };
  client.on('close', () => publisher.closed++);
  client.on('error', (error) => publisher.errors.push(error.message));
  publisher.done = (async () => {
    const window = new Set<Promise<void>>();
    for (let seq = 0; seq < max && !publisher.stopped && publisher.errors.length === 0; seq++) {
      const sent: Promise<void> = client
        .publishAsync(topic, `${id}:${seq}`, { qos })
        .then(
          () => {
            publisher.acked.push(seq);
          },
          (error: Error) => {
            publisher.errors.push(error.message);
          },
        )
        .finally(() => window.delete(sent));
      window.add(sent);
      if (window.size >= inFlight) await Promise.race(window);
    }
    await Promise.all(window);
  })();
  return publisher;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value; fails with the last error after timeoutMs. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(POLL_MS);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
}

function parseTable(lines: readonly string[]): PrintedNode[] {
  const header = lines.findIndex((line) => line.startsWith('NODE '));
  assert.ok(header >= 0, lines.join('\n'));
  const rows: PrintedNode[] = [];
  for (const line of lines.slice(header + 1)) {
    if (line.trim() === '') break;
    const [name, role, pid, mqttAddress, admin, placement, journalGrpc] = line.trim().split(/\s+/);
    rows.push({ name: name ?? '', role: role ?? '', pid: Number(pid), mqtt: mqttAddress ?? '', admin: admin ?? '', placement: placement ?? '', journalGrpc: journalGrpc ?? '' });
  }
  return rows;
}

/** Topics that all hash to the data shard `index` of `count`, named `prefix/N`. */
export function topicsOnShard(count: number, index: number, how: number, prefix: string): string[] {
  const map = new MqttShardMap(count);
  const topics: string[] = [];
  for (let i = 0; topics.length < how; i++) if (map.shardOf(`${prefix}/${i}`) === index) topics.push(`${prefix}/${i}`);
  return topics;
}

export interface Cluster {
  dir: string;
  cli: CliProcess;
  voters: string[];
  /** The voters' admin addresses (HOST:PORT), in the order `cluster up` printed them. */
  voterAdmins: string[];
  /** Journal nodes by node id ('11', '12', '13'); the pid is updated on each restart. */
  journals: Map<string, PrintedNode>;
  brokers: PrintedNode[];
  clusterToken: string;
  /** The admin token every node of the cluster takes (DIR/cluster.json). */
  adminToken: string;
  env: Record<string, string>;
  placement: PlacementClient;
  /** Every pid started, for the test's after() hook. */
  pids: Set<number>;
  /** Nodes the test started by hand (restarts), which `cluster up` does not stop. */
  restarted: { role: 'journal' | 'broker'; cli: CliProcess }[];
}

/** Runs `shardline cluster up` in `dir` (with `args`) and waits until it prints its address table. */
export async function startCluster(dir: string, pids: Set<number>, args: readonly string[] = []): Promise<Cluster> {
  return clusterUp(launchCluster(dir, args), dir, pids);
}

/** Starts `shardline cluster up` without waiting for it (clusterUp waits). */
export function launchCluster(dir: string, args: readonly string[] = []): CliProcess {
  return runCli(['cluster', 'up', '--dir', dir, '--grace-seconds', '20', ...args]);
}

/** Waits until the launched `cluster up` prints its address table, and reads it. */
export async function clusterUp(cli: CliProcess, dir: string, pids: Set<number>): Promise<Cluster> {
  // A `cluster up` that exited will not come up: fail at once, with its reason (on stderr).
  const up = await waitFor('the cluster to be up', () => (cli.child.exitCode !== null ? 'exited' : cli.lines.includes('cluster up; Ctrl-C stops every node') ? 'up' : undefined), UP_TIMEOUT_MS);
  if (up === 'exited') assert.fail(`cluster up exited: ${cli.lines.join('\n')}\n${(await cli.exited).stderr}`);
  const nodes = parseTable(cli.lines);
  for (const node of nodes) pids.add(node.pid);
  const voters = nodes.filter((node) => node.role === 'placement').map((node) => node.placement);
  const journals = new Map(nodes.filter((node) => node.role === 'journal').map((node) => [String(JOURNAL_ID_BASE + Number(node.name.split('-')[1])), node]));
  const brokers = nodes.filter((node) => node.role === 'broker');
  const { clusterToken, adminToken } = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string; adminToken: string };
  const placement = new PlacementClient({ addresses: voters, clusterId: 'shardline', clusterToken });
  const voterAdmins = nodes.filter((node) => node.role === 'placement').map((node) => node.admin);
  return { dir, cli, voters, voterAdmins, journals, brokers, clusterToken, adminToken, env: { SHARDLINE_CLUSTER_TOKEN: clusterToken }, placement, pids, restarted: [] };
}

export async function shardRecord(cluster: Cluster, name: string): Promise<ShardRecord> {
  const { shards = [] } = await cluster.placement.read(['shards']);
  const record = shards.find((shard) => shard.name === name);
  assert.ok(record !== undefined, `shard ${name} in placement`);
  return record;
}

export function journalDataDir(cluster: Cluster, id: string): string {
  return join(cluster.dir, `journal-${Number(id) - JOURNAL_ID_BASE}`);
}

/** Starts the journal node `id` again on its port and data directory (as `cluster up` started it). */
export async function restartJournal(cluster: Cluster, id: string): Promise<void> {
  const node = cluster.journals.get(id) as PrintedNode;
  const port = node.journalGrpc.slice(node.journalGrpc.lastIndexOf(':') + 1);
  const again = runCli(['start', '--host', '127.0.0.1', '--roles', 'journal', '--node-id', id, '--placement', cluster.voters.join(','), '--grpc-port', port, '--admin-port', '0', '--data-dir', journalDataDir(cluster, id)], cluster.env);
  cluster.restarted.push({ role: 'journal', cli: again });
  const listening = await waitForLogField(again, 'journalGrpc', 60_000);
  if (again.child.pid !== undefined) {
    cluster.pids.add(again.child.pid);
    cluster.journals.set(id, { ...node, pid: again.child.pid, admin: String(listening.admin ?? node.admin) });
  }
}

/** SIGKILLs the journal node `id` and waits for it to be gone. */
export async function killJournal(cluster: Cluster, id: string): Promise<void> {
  const node = cluster.journals.get(id) as PrintedNode;
  process.kill(node.pid, 'SIGKILL');
  await waitFor(`journal ${id} (pid ${node.pid}) to be gone`, () => (alive(node.pid) ? undefined : true), 30_000);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

export interface ReplicaRow {
  node: string;
  epoch: number;
  leader: string;
  role: string;
  highWatermark: number;
  logEnd: number;
  voter: boolean;
}

/** `shardline ctl replica status --json` over the shard's replicas in placement; undefined when the command fails. */
export async function replicaStatus(cluster: Cluster, shard: string): Promise<ReplicaRow[] | undefined> {
  const { replicas } = await shardRecord(cluster, shard);
  const list = replicas.map((id) => `${id}@${(cluster.journals.get(id) as PrintedNode).journalGrpc}`).join(',');
  const ctl = runCli(['ctl', 'replica', 'status', '--shard', shard, '--journals', list, '--json'], cluster.env);
  const exit = await ctl.exited;
  if (exit.code !== 0) return undefined;
  return JSON.parse(ctl.lines.join('\n')) as ReplicaRow[];
}

/**
 * Waits until every replica of `shard` follows placement's recorded leader in its epoch, all with
 * the leader's HW; returns their rows. With `writing` (publishers still append to the shard) the
 * HWs are not compared: a follower learns each new HW one fetch later, so under load they are
 * seldom equal at one look, and the rows' lowest HW is the point up to which all must agree.
 */
export async function settledReplicas(cluster: Cluster, shard: string, { writing = false } = {}): Promise<ReplicaRow[]> {
  return waitFor(`every replica of ${shard} following the recorded leader${writing ? '' : ' at its HW'}`, async () => {
    const record = await shardRecord(cluster, shard);
    const rows = await replicaStatus(cluster, shard);
    if (rows === undefined || rows.length !== record.replicas.length) return undefined;
    const settled = rows.every((row) => row.epoch === record.leaderEpoch && row.leader === record.leader && row.role === (row.node === record.leader ? 'leader' : 'follower'));
    // Below the lowest HW each replica serves its whole log (HWs only move up to a replica's end).
    const leader = rows.find((row) => row.role === 'leader');
    if (settled && leader !== undefined && (writing || rows.every((row) => row.highWatermark === leader.highWatermark))) return rows;
    // Thrown, not returned: waitFor names the last one when it times out.
    throw new Error(`placement: leader ${String(record.leader)} in epoch ${record.leaderEpoch}; replicas: ${JSON.stringify(rows)}`);
  });
}

export interface SetReplica {
  node: string;
  learner: boolean;
  role: string | null;
  epoch: number | null;
  leader: string | null;
  highWatermark: number | null;
  voter: boolean | null;
}

export interface ReplicaSet {
  shard: string;
  epoch: number;
  leader: string | null;
  replicas: SetReplica[];
}

/**
 * Waits until every replica of every replicated shard follows the shard's recorded leader in
 * its epoch, all at the leader's HW but for the shards in `writing` (as settledReplicas);
 * returns the sets. One `shardline ctl replica sets --json` at the first voter per look (every
 * shard at once), not one `ctl replica status` per shard.
 */
export async function settledSets(cluster: Cluster, writing: ReadonlySet<string> = new Set()): Promise<ReplicaSet[]> {
  return waitFor(`every replica of every shard following the recorded leader`, async () => {
    const ctl = runCli(['ctl', 'replica', 'sets', '--limit', '500', '--server', cluster.voterAdmins[0] as string, '--json'], { SHARDLINE_ADMIN_TOKEN: cluster.adminToken });
    const exit = await ctl.exited;
    if (exit.code !== 0) throw new Error(`ctl replica sets exited ${String(exit.code)}: ${exit.stderr}`);
    const { items } = JSON.parse(ctl.lines.join('\n')) as { items: ReplicaSet[] };
    const unsettled = items.filter((set) => {
      const members = set.replicas.filter((replica) => !replica.learner);
      const leader = members.find((replica) => replica.node === set.leader);
      return (
        leader === undefined ||
        !members.every((replica) => replica.epoch === set.epoch && replica.leader === set.leader && replica.role === (replica.node === set.leader ? 'leader' : 'follower')) ||
        (!writing.has(set.shard) && !members.every((replica) => replica.highWatermark === leader.highWatermark))
      );
    });
    if (items.length > 0 && unsettled.length === 0) return items;
    // Thrown, not returned: waitFor names the last one when it times out.
    throw new Error(`not settled: ${JSON.stringify(unsettled.slice(0, 3))}`);
  });
}

/**
 * Every replica's stored batches of `shard` below `below`, byte for byte as `readBatches`
 * returns them (each node serves up to its own HW); batches ending past `below` are left out.
 * The replicas are the shard's set in placement.
 */
export async function storedBatches(cluster: Cluster, shard: string, below: number): Promise<Map<string, Buffer>> {
  const result = new Map<string, Buffer>();
  for (const id of (await shardRecord(cluster, shard)).replicas) {
    const node = cluster.journals.get(id) as PrintedNode;
    const store = await RemoteShardStore.connect(node.journalGrpc, { credentials: { clusterToken: cluster.clusterToken } });
    try {
      const kept: Buffer[] = [];
      for (let offset = 0; offset < below; ) {
        const page = await store.readBatches(shard, offset, { maxBytes: 1024 * 1024 });
        if (page.batches.length === 0) break;
        for (const batch of page.batches) {
          const header = readBatchHeader(batch, 0);
          if (header.baseOffset + header.lastOffsetDelta < below) kept.push(batch);
        }
        offset = page.next;
      }
      result.set(id, Buffer.concat(kept));
    } finally {
      await store.close();
    }
  }
  return result;
}

/** Asserts that every replica holds the same bytes below `below`; returns the byte count. */
export async function assertByteIdentical(cluster: Cluster, shard: string, below: number): Promise<number> {
  const batches = await storedBatches(cluster, shard, below);
  const [first, ...others] = [...batches.entries()];
  assert.ok(first !== undefined);
  assert.ok(first[1].length > 0, `replica ${first[0]} holds batches of ${shard} below ${below}`);
  for (const [id, bytes] of others) {
    if (bytes.equals(first[1])) continue;
    // Each journal node compacts a compacted shard's sealed segments on its own schedule, so
    // their bytes part once one has: then they must hold the same records where both hold one,
    // and the same latest record of every key.
    if (await compacted(cluster, shard, id)) await assertSameRecords(cluster, shard, below, first[0], id);
    else assert.fail(`${shard}: replica ${id} (${bytes.length} bytes) differs from replica ${first[0]} (${first[1].length} bytes) below offset ${below}`);
  }
  return first[1].length;
}

async function compacted(cluster: Cluster, shard: string, id: string): Promise<boolean> {
  const store = await RemoteShardStore.connect((cluster.journals.get(id) as PrintedNode).journalGrpc, { credentials: { clusterToken: cluster.clusterToken } });
  try {
    return (await store.info(shard)).config.compacted;
  } finally {
    await store.close();
  }
}

/** Replica `id`'s records of `shard` below `below`, by offset, each as one comparable string. */
async function recordsOf(cluster: Cluster, shard: string, below: number, id: string): Promise<Map<number, { key: string; record: string }>> {
  const store = await RemoteShardStore.connect((cluster.journals.get(id) as PrintedNode).journalGrpc, { credentials: { clusterToken: cluster.clusterToken } });
  const records = new Map<number, { key: string; record: string }>();
  try {
    for (let offset = 0; offset < below; ) {
      const page = await store.read(shard, offset, { maxRecords: 1000 });
      if (page.length === 0) break;
      for (const stored of page) {
        if (stored.offset >= below) break;
        const key = stored.key?.toString('base64') ?? '';
        records.set(stored.offset, { key, record: JSON.stringify([key, stored.value?.toString('base64') ?? null, stored.headers.map((header) => [header.key, header.value?.toString('base64') ?? null])]) });
      }
      offset = (page.at(-1)?.offset ?? offset) + 1;
    }
  } finally {
    await store.close();
  }
  return records;
}

async function assertSameRecords(cluster: Cluster, shard: string, below: number, a: string, b: string): Promise<void> {
  const [left, right] = await Promise.all([recordsOf(cluster, shard, below, a), recordsOf(cluster, shard, below, b)]);
  const latest = (records: Map<number, { key: string; record: string }>): Map<string, string> => {
    const byKey = new Map<string, string>();
    for (const [offset, { key, record }] of [...records.entries()].sort(([x], [y]) => x - y)) byKey.set(key, `${offset}:${record}`);
    return byKey;
  };
  const differing = [...left.entries()].filter(([offset, { record }]) => right.has(offset) && right.get(offset)?.record !== record).map(([offset]) => offset);
  assert.deepEqual(differing.slice(0, 10), [], `${shard}: replicas ${a} and ${b} hold different records at the same offsets below ${below}`);
  assert.deepEqual(latest(right), latest(left), `${shard}: replicas ${a} and ${b} differ in the latest record of some key below ${below}`);
}

export interface VerifyResult {
  exit: number | null;
  errors: number;
  warnings: number;
  batches: number;
  problems: unknown[];
}

/** `shardline shard verify --data-dir DIR --json`. */
export async function shardVerify(dataDir: string): Promise<VerifyResult> {
  const verify = runCli(['shard', 'verify', '--data-dir', dataDir, '--json']);
  const exit = await verify.exited;
  const report = JSON.parse(verify.lines.join('\n')) as { errors: number; warnings: number; batches: number; problems: unknown[] };
  return { exit: exit.code, errors: report.errors, warnings: report.warnings, batches: report.batches, problems: report.problems };
}

/** Starts broker `index` (0-based) again on its MQTT port, as `cluster up` started it. */
export async function restartBroker(cluster: Cluster, index: number): Promise<void> {
  const node = cluster.brokers[index] as PrintedNode;
  const port = node.mqtt.slice(node.mqtt.lastIndexOf(':') + 1);
  const again = runCli(['start', '--host', '127.0.0.1', '--roles', 'broker', '--node-id', String(21 + index), '--placement', cluster.voters.join(','), '--mqtt-port', port, '--admin-port', '0', '--broker-peers', 'true'], cluster.env);
  cluster.restarted.push({ role: 'broker', cli: again });
  await waitForLogField(again, 'mqtt', 60_000);
  if (again.child.pid !== undefined) {
    cluster.pids.add(again.child.pid);
    cluster.brokers[index] = { ...node, pid: again.child.pid };
  }
}

/**
 * Stops every node: the brokers restarted by hand first (they write to the journals), then
 * `cluster up` (its own brokers, journals and voters), and the journals restarted by hand once
 * its brokers are gone.
 */
export async function stopCluster(cluster: Cluster): Promise<void> {
  cluster.placement.close();
  const stop = async (children: readonly { cli: CliProcess }[]): Promise<void> => {
    for (const { cli } of children) if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGTERM');
    await Promise.all(children.map(({ cli }) => cli.exited));
  };
  await stop(cluster.restarted.filter((child) => child.role === 'broker'));
  // As `cluster up` orders its own nodes: the journals restarted by hand go once its brokers
  // have stopped (it prints the journals' or voters' lines after them). A broker whose journals
  // are all gone retries its last appends until its retry deadline, past the stop's grace.
  const stopping = stop([{ cli: cluster.cli }]);
  const pastBrokers = (): boolean => cluster.cli.child.exitCode !== null || cluster.cli.lines.some((line) => /^stopped (journal|placement|node)-/.test(line));
  await waitFor('cluster up to stop its brokers', () => (pastBrokers() ? true : undefined), 120_000);
  await Promise.all([stopping, stop(cluster.restarted.filter((child) => child.role === 'journal'))]);
}
