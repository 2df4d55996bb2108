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
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { RemoteShardStore } from '../shard-model/index.js';
import { scratchDirectory } from './support/broker-process.js';
import {
  killedAfterTests,
  killJournal,
  restartJournal,
  shardRecord,
  startCluster,
  startCountingPublisher,
  stopCluster,
  topicsOnShard,
  waitFor,
  type Cluster,
  type CountingPublisher,
} from './support/cluster-up.js';

/** Leader kills: 3 by default; SL_IDEMPOTENT_KILLS for more. */
const KILLS = Math.max(1, Math.min(100, Number(process.env.SL_IDEMPOTENT_KILLS ?? 3) || 3));
/** Publisher i publishes at QoS QOS[i]. */
const QOS = [1, 1, 2, 2] as const;
const IN_FLIGHT = 8;
const MAX_PER_PUBLISHER = 3_000 + KILLS * 1_000;
const PROGRESS_AFTER_FAILOVER = 40;
const TEST_TIMEOUT_MS = Math.max(900_000, KILLS * 40_000);
const SHARD = 'mqtt.0';

const pids = killedAfterTests();

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
    const cluster: Cluster = await startCluster(dir, pids);
    const [broker1, broker2] = cluster.brokers as [NonNullable<Cluster['brokers'][0]>, NonNullable<Cluster['brokers'][0]>];
    const publishers: CountingPublisher[] = [];
    try {
      const { shards = [] } = await cluster.placement.read(['shards']);
      const dataShards = shards.filter((shard) => shard.name.startsWith('mqtt.'));
      const topics = topicsOnShard(dataShards.length, 0, QOS.length, 'idem');

      const subscriberOptions = { clientId: 'idem-sub', clean: false, reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4 as const };
      const first = await mqtt.connectAsync(`mqtt://${broker2.mqtt}`, subscriberOptions);
      assert.equal((await first.subscribeAsync('idem/#', { qos: 2 }))[0]?.qos, 2);
      await first.endAsync();

      for (const [i, qos] of QOS.entries()) publishers.push(await startCountingPublisher(broker1.mqtt, `idem-pub-${i}`, i, topics[i] as string, qos, MAX_PER_PUBLISHER, IN_FLIGHT));
      const ackedTotal = (): number => publishers.reduce((sum, publisher) => sum + publisher.acked.length, 0);
      await waitFor('the publishers to get going', () => (ackedTotal() >= 50 ? true : undefined));

      for (let kill = 1; kill <= KILLS; kill++) {
        const before = await shardRecord(cluster, SHARD);
        const leaderId = before.leader as string;
        await killJournal(cluster, leaderId);
        const ackedAtKill = ackedTotal();
        await waitFor(`a new leader of ${SHARD} after kill ${kill}`, async () => {
          const record = await shardRecord(cluster, SHARD);
          return record.leaderEpoch > before.leaderEpoch && record.leader !== null && record.leader !== leaderId ? record : undefined;
        });
        await waitFor(`publishes acknowledged after failover ${kill}`, () => (ackedTotal() >= ackedAtKill + PROGRESS_AFTER_FAILOVER ? true : undefined));
        await restartJournal(cluster, leaderId);
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
      const final = await shardRecord(cluster, SHARD);
      const leader = cluster.journals.get(final.leader as string);
      assert.ok(leader !== undefined);
      const store = await RemoteShardStore.connect(leader.journalGrpc, { credentials: { clusterToken: cluster.clusterToken } });
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
      await stopCluster(cluster);
    }
  });
});
