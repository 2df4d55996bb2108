// Goal: in a cluster from `shardline cluster up`, appends retried across a failover are stored
// once (idempotent appends, docs/replication.md): while QoS 1 and QoS 2 publishers keep several
// messages in flight each on topics of one data shard, the leader journal node of that shard is
// killed with SIGKILL again and again; afterwards the shard's log holds every acknowledged
// message exactly once and in per-publisher order, and a persistent subscriber gets each QoS 2
// message exactly once (and every acknowledged message, in order).
// Method: real processes on loopback, mqtt.js clients. Publishers at broker-1; the subscriber's
// persistent session on broker-2, offline meanwhile (it resumes from the shards at the end).
// The leader is read from placement before each kill; the killed node is restarted on its port
// and data directory once placement names a new leader and the publishers made progress. The
// log is read from the final leader. Bounded: KILLS kills, at most MAX_PER_PUBLISHER messages
// per publisher, IN_FLIGHT unacknowledged per publisher, every wait with a deadline.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { PlacementClient } from '../placement/service/index.js';
import type { ShardRecord } from '../placement/metadata/index.js';
import { MqttShardMap, RemoteShardStore } from '../shard-model/index.js';
import { cleanup, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';

/** Leader kills: 3 by default; SL_IDEMPOTENT_KILLS for more. */
const KILLS = Math.max(1, Math.min(100, Number(process.env.SL_IDEMPOTENT_KILLS ?? 3) || 3));
/** Publisher i publishes at QoS QOS[i]. */
const QOS = [1, 1, 2, 2] as const;
const IN_FLIGHT = 8;
const MAX_PER_PUBLISHER = 3_000 + KILLS * 1_000;
const PROGRESS_AFTER_FAILOVER = 40;
const UP_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = Math.max(900_000, KILLS * 40_000);
const POLL_MS = 200;
const SHARD = 'mqtt.0';

interface PrintedNode {
  name: string;
  role: string;
  pid: number;
  mqtt: string;
  placement: string;
  journalGrpc: string;
}

const pids = new Set<number>();
after(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await cleanup();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
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
    const [name, role, pid, mqttAddress, , placement, journalGrpc] = line.trim().split(/\s+/);
    rows.push({ name: name ?? '', role: role ?? '', pid: Number(pid), mqtt: mqttAddress ?? '', placement: placement ?? '', journalGrpc: journalGrpc ?? '' });
  }
  return rows;
}

function topicsOnShard(count: number, index: number, how: number): string[] {
  const map = new MqttShardMap(count);
  const topics: string[] = [];
  for (let i = 0; topics.length < how; i++) if (map.shardOf(`idem/${i}`) === index) topics.push(`idem/${i}`);
  return topics;
}

interface Publisher {
  client: MqttClient;
  acked: number[];
  errors: string[];
  closed: number;
  stopped: boolean;
  done: Promise<void>;
}

/** Publishes `id:seq` with up to IN_FLIGHT unacknowledged, until stopped. */
async function startPublisher(address: string, id: number, topic: string, qos: 1 | 2): Promise<Publisher> {
  const client = await mqtt.connectAsync(`mqtt://${address}`, { clientId: `idem-pub-${id}`, clean: true, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 120 });
  const publisher: Publisher = { client, acked: [], errors: [], closed: 0, stopped: false, done: Promise.resolve() };
  client.on('close', () => publisher.closed++);
  client.on('error', (error) => publisher.errors.push(error.message));
  publisher.done = (async () => {
    const window = new Set<Promise<void>>();
    for (let seq = 0; seq < MAX_PER_PUBLISHER && !publisher.stopped && publisher.errors.length === 0; seq++) {
      const sent: Promise<void> = client.publishAsync(topic, `${id}:${seq}`, { qos }).then(
        () => {
          publisher.acked.push(seq);
        },
        (error: Error) => {
          publisher.errors.push(error.message);
        },
      ).finally(() => window.delete(sent));
      window.add(sent);
      if (window.size >= IN_FLIGHT) await Promise.race(window);
    }
    await Promise.all(window);
  })();
  return publisher;
}

/** `id:seq` of every message in a list, and the duplicates and order breaks among them per publisher. */
function audit(messages: readonly string[]): { duplicates: string[]; outOfOrder: string[] } {
  const seen = new Set<string>();
  const last = new Map<number, number>();
  const duplicates: string[] = [];
  const outOfOrder: string[] = [];
  for (const message of messages) {
    if (seen.has(message)) duplicates.push(message);
    seen.add(message);
    const [id, seq] = message.split(':').map(Number) as [number, number];
    if (seq <= (last.get(id) ?? -1) && !duplicates.includes(message)) outOfOrder.push(`${message} after ${id}:${String(last.get(id))}`);
    last.set(id, Math.max(seq, last.get(id) ?? -1));
  }
  return { duplicates, outOfOrder };
}

describe('appends retried across failovers are stored once', () => {
  it('QoS 1 and QoS 2 publishers through repeated SIGKILLs of the shard leader: every acknowledged message exactly once, in order', { timeout: TEST_TIMEOUT_MS }, async () => {
    const dir = await scratchDirectory('shardline-cluster-idempotent-');
    const cli: CliProcess = runCli(['cluster', 'up', '--dir', dir, '--grace-seconds', '20']);
    await waitFor('the cluster to be up', () => (cli.lines.includes('cluster up; Ctrl-C stops every node') ? true : undefined), UP_TIMEOUT_MS);
    const nodes = parseTable(cli.lines);
    for (const node of nodes) pids.add(node.pid);
    const voters = nodes.filter((node) => node.role === 'placement').map((node) => node.placement);
    const journals = new Map(nodes.filter((node) => node.role === 'journal').map((node) => [String(10 + Number(node.name.split('-')[1])), node]));
    const [broker1, broker2] = nodes.filter((node) => node.role === 'broker') as [PrintedNode, PrintedNode];
    const { clusterToken } = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string };
    const env = { SHARDLINE_CLUSTER_TOKEN: clusterToken };
    const placement = new PlacementClient({ addresses: voters, clusterId: 'shardline', clusterToken });
    const shardRecord = async (name: string): Promise<ShardRecord> => {
      const { shards = [] } = await placement.read(['shards']);
      const record = shards.find((shard) => shard.name === name);
      assert.ok(record !== undefined, `shard ${name} in placement`);
      return record;
    };
    const publishers: Publisher[] = [];
    try {
      const { shards = [] } = await placement.read(['shards']);
      const dataShards = shards.filter((shard) => shard.name.startsWith('mqtt.'));
      const topics = topicsOnShard(dataShards.length, 0, QOS.length);

      const subscriberOptions = { clientId: 'idem-sub', clean: false, reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4 as const };
      const first = await mqtt.connectAsync(`mqtt://${broker2.mqtt}`, subscriberOptions);
      assert.equal((await first.subscribeAsync('idem/#', { qos: 2 }))[0]?.qos, 2);
      await first.endAsync();

      for (const [i, qos] of QOS.entries()) publishers.push(await startPublisher(broker1.mqtt, i, topics[i] as string, qos));
      const ackedTotal = (): number => publishers.reduce((sum, publisher) => sum + publisher.acked.length, 0);
      await waitFor('the publishers to get going', () => (ackedTotal() >= 50 ? true : undefined));

      for (let kill = 1; kill <= KILLS; kill++) {
        const before = await shardRecord(SHARD);
        const leaderId = before.leader as string;
        const node = journals.get(leaderId) as PrintedNode;
        process.kill(node.pid, 'SIGKILL');
        const ackedAtKill = ackedTotal();
        await waitFor(`a new leader of ${SHARD} after kill ${kill}`, async () => {
          const record = await shardRecord(SHARD);
          return record.leaderEpoch > before.leaderEpoch && record.leader !== null && record.leader !== leaderId ? record : undefined;
        });
        await waitFor(`publishes acknowledged after failover ${kill}`, () => (ackedTotal() >= ackedAtKill + PROGRESS_AFTER_FAILOVER ? true : undefined));
        const port = node.journalGrpc.slice(node.journalGrpc.lastIndexOf(':') + 1);
        const again = runCli(['start', '--host', '127.0.0.1', '--roles', 'journal', '--node-id', leaderId, '--placement', voters.join(','), '--grpc-port', port, '--admin-port', '0', '--data-dir', join(dir, `journal-${Number(leaderId) - 10}`)], env);
        await waitForLogField(again, 'journalGrpc', STEP_TIMEOUT_MS);
        if (again.child.pid !== undefined) {
          pids.add(again.child.pid);
          journals.set(leaderId, { ...node, pid: again.child.pid });
        }
      }

      for (const publisher of publishers) publisher.stopped = true;
      await Promise.all(publishers.map((publisher) => publisher.done));
      for (const [i, publisher] of publishers.entries()) {
        assert.deepEqual(publisher.errors, [], `publisher ${i} saw no error, only delays`);
        assert.equal(publisher.closed, 0, `publisher ${i} was never disconnected`);
        await publisher.client.endAsync();
      }
      const acked = publishers.flatMap((publisher, id) => publisher.acked.map((seq) => `${id}:${seq}`));

      // The log: every acknowledged message once, in per-publisher order.
      const final = await shardRecord(SHARD);
      const leader = journals.get(final.leader as string) as PrintedNode;
      const store = await RemoteShardStore.connect(leader.journalGrpc, { credentials: { clusterToken } });
      const logged: string[] = [];
      try {
        const end = await store.highWatermark(SHARD);
        for (let offset = 0; offset < end; ) {
          const page = await store.read(SHARD, offset, { maxRecords: 1000 });
          if (page.length === 0) break;
          for (const record of page) if (record.key?.toString().startsWith('idem/') === true) logged.push(record.value?.toString() ?? '');
          offset = (page.at(-1)?.offset ?? offset) + 1;
        }
      } finally {
        await store.close();
      }
      const inLog = audit(logged);
      assert.deepEqual(inLog.duplicates.slice(0, 20), [], `${inLog.duplicates.length} messages stored twice (of ${logged.length})`);
      assert.deepEqual(inLog.outOfOrder.slice(0, 20), [], 'per-publisher order in the log');
      const loggedSet = new Set(logged);
      const notLogged = acked.filter((message) => !loggedSet.has(message));
      assert.deepEqual(notLogged.slice(0, 20), [], `${notLogged.length} acknowledged messages not in the log`);

      // The subscriber: every acknowledged message, QoS 2 ones exactly once, in order.
      const received: string[] = [];
      const subscriber = mqtt.connect(`mqtt://${broker2.mqtt}`, subscriberOptions);
      subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
      try {
        const missing = (): string[] => {
          const got = new Set(received);
          return acked.filter((message) => !got.has(message));
        };
        await waitFor('every acknowledged message at the subscriber', () => (missing().length === 0 ? true : undefined)).catch(() => undefined);
        assert.deepEqual(missing().slice(0, 20), [], `${missing().length} acknowledged messages not delivered (of ${acked.length})`);
        const delivered = audit(received);
        assert.deepEqual(delivered.duplicates.slice(0, 20), [], `${delivered.duplicates.length} duplicate deliveries`);
        assert.deepEqual(delivered.outOfOrder.slice(0, 20), [], 'per-publisher order of deliveries');
        assert.ok(received.some((message) => QOS[Number(message.split(':')[0])] === 2), 'QoS 2 messages were delivered');
      } finally {
        await subscriber.endAsync();
      }
    } finally {
      placement.close();
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });
});
