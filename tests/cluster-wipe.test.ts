// Goal: a journal node whose data directory is lost while the cluster runs rejoins empty, is
// repaired from the others and loses nothing (docs/replication.md, "A wiped replica"): in a
// `shardline cluster up` cluster under QoS 1 load, the wiped node gets its shards back, copies
// them without a vote until it holds its leader's epoch, ends byte-identical to the others below
// the high watermark, and then carries every majority: with each of the two other nodes killed
// in turn, publishes are still acknowledged, and every acknowledged message reaches the
// persistent subscriber.
// Method: real processes on loopback, mqtt.js clients. Publishers at broker-1 on topics of
// mqtt.0, a persistent session on broker-2 offline meanwhile. The leader journal node of mqtt.0
// is SIGKILLed, its data directory deleted, and it is started again on its id, port and (empty)
// directory. Its /readyz must turn 200 (every assigned shard created, copied and voting again)
// and `ctl replica sets` must show it a voting follower of every shard; its stored batches of mqtt.0 are
// compared byte for byte with the others'. Then each other node is SIGKILLed, publishes must be
// acknowledged without it (the wiped node is in the only majority left), and it is restarted.
// Finally the subscriber resumes and `shard verify` checks each data directory. Bounded: at most
// MAX_PER_PUBLISHER messages per publisher, every wait with a deadline.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import mqtt, { type IClientOptions } from 'mqtt';
import { CREATE_GRACE_SETTING } from '../shard-model/index.js';
import { scratchDirectory } from './support/broker-process.js';
import {
  assertByteIdentical,
  journalDataDir,
  killedAfterTests,
  killJournal,
  replicaStatus,
  restartJournal,
  settledReplicas,
  settledSets,
  shardRecord,
  shardVerify,
  startCluster,
  startCountingPublisher,
  stopCluster,
  topicsOnShard,
  waitFor,
  type Cluster,
  type CountingPublisher,
} from './support/cluster-up.js';

const PUBLISHERS = 3;
const MAX_PER_PUBLISHER = 20_000;
/** Acknowledged publishes required at each step (after the wipe, with each other node down). */
const PROGRESS = 20;
const REPAIR_TIMEOUT_MS = 180_000;
/**
 * How long the controller lets the wiped node lack a shard before creating it (default 10 s, for
 * a broker creating a new shard to give its config first; every shard here exists already).
 */
const CREATE_GRACE_MS = 1_000;

const pids = killedAfterTests();

async function readyz(admin: string): Promise<{ status: number; message: string }> {
  const response = await fetch(`http://${admin}/readyz`);
  const body = (await response.json()) as { error?: { message: string } };
  return { status: response.status, message: body.error?.message ?? '' };
}

describe('a journal node wiped while the cluster runs', () => {
  it('rejoins empty, is repaired from the others, then carries every majority; nothing acknowledged is lost', { timeout: 900_000 }, async () => {
    const dir = await scratchDirectory('shardline-cluster-wipe-');
    const cluster: Cluster = await startCluster(dir, pids);
    const [broker1, broker2] = cluster.brokers as [NonNullable<Cluster['brokers'][0]>, NonNullable<Cluster['brokers'][0]>];
    const publishers: CountingPublisher[] = [];
    const busiest = 'mqtt.0';
    try {
      assert.equal((await cluster.placement.propose({ type: 'set-setting', key: CREATE_GRACE_SETTING, value: CREATE_GRACE_MS })).result.status, 'ok');
      const { shards = [] } = await cluster.placement.read(['shards']);
      const dataShards = shards.filter((shard) => /^mqtt\.\d+$/.test(shard.name));
      const topics = topicsOnShard(dataShards.length, 0, PUBLISHERS, 'wipe');

      const subscriberOptions: IClientOptions = { clientId: 'wipe-sub', clean: false, reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4 };
      const first = await mqtt.connectAsync(`mqtt://${broker2.mqtt}`, subscriberOptions);
      assert.equal((await first.subscribeAsync('wipe/#', { qos: 1 }))[0]?.qos, 1);
      await first.endAsync();

      for (let i = 0; i < PUBLISHERS; i++) publishers.push(await startCountingPublisher(broker1.mqtt, `wipe-pub-${i}`, i, topics[i] as string, 1, MAX_PER_PUBLISHER));
      const ackedTotal = (): number => publishers.reduce((sum, publisher) => sum + publisher.acked.length, 0);
      const progress = async (what: string): Promise<void> => {
        const from = ackedTotal();
        await waitFor(`${PROGRESS} publishes acknowledged ${what}`, () => (ackedTotal() >= from + PROGRESS ? true : undefined));
      };
      await progress('at the start');

      // The wipe: the shard's leader dies and comes back with an empty data directory.
      const before = await shardRecord(cluster, busiest);
      const wiped = before.leader as string;
      await killJournal(cluster, wiped);
      await rm(journalDataDir(cluster, wiped), { recursive: true, force: true });
      await waitFor(`a new leader of ${busiest}`, async () => {
        const record = await shardRecord(cluster, busiest);
        return record.leaderEpoch > before.leaderEpoch && record.leader !== null && record.leader !== wiped ? record : undefined;
      });
      await progress('after the wiped leader failed over');
      await restartJournal(cluster, wiped);
      const wipedAdmin = (cluster.journals.get(wiped) as NonNullable<ReturnType<typeof cluster.journals.get>>).admin;
      // Not ready while it lacks shards placement assigns it or has not copied them.
      const early = await readyz(wipedAdmin);
      assert.equal(early.status, 503, `the wiped node is not ready at once: ${early.message}`);
      await waitFor('the wiped node ready (every assigned shard created, copied, voting)', async () => ((await readyz(wipedAdmin)).status === 200 ? true : undefined), REPAIR_TIMEOUT_MS);
      const sets = await settledSets(cluster, new Set([busiest]));
      assert.deepEqual(sets.map((set) => set.shard).sort(), shards.map((record) => record.name).sort(), 'ctl replica sets lists every shard');
      for (const set of sets) {
        const mine = set.replicas.find((replica) => replica.node === wiped);
        assert.ok(mine !== undefined && mine.voter === true, `${set.shard}: the wiped node votes again: ${JSON.stringify(set.replicas)}`);
      }
      await progress('with the repaired node back');
      const repairedRows = await settledReplicas(cluster, busiest, { writing: true });
      const repairedHw = Math.min(...repairedRows.map((row) => row.highWatermark));
      assert.ok(repairedHw > 0);
      await assertByteIdentical(cluster, busiest, repairedHw);

      // Each other node down in turn: the repaired node is in the only majority left.
      for (const other of [...cluster.journals.keys()].filter((id) => id !== wiped)) {
        const record = await shardRecord(cluster, busiest);
        await killJournal(cluster, other);
        if (record.leader === other) {
          await waitFor(`a leader of ${busiest} other than ${other}`, async () => {
            const now = await shardRecord(cluster, busiest);
            return now.leaderEpoch > record.leaderEpoch && now.leader !== null && now.leader !== other ? now : undefined;
          });
        }
        await progress(`with journal ${other} down`);
        await restartJournal(cluster, other);
        const admin = (cluster.journals.get(other) as NonNullable<ReturnType<typeof cluster.journals.get>>).admin;
        await waitFor(`journal ${other} ready again`, async () => ((await readyz(admin)).status === 200 ? true : undefined), REPAIR_TIMEOUT_MS);
      }

      for (const publisher of publishers) publisher.stopped = true;
      await Promise.all(publishers.map((publisher) => publisher.done));
      for (const [i, publisher] of publishers.entries()) {
        assert.deepEqual(publisher.errors, [], `publisher ${i} saw no error, only delays`);
        assert.equal(publisher.closed, 0, `publisher ${i} was never disconnected`);
        await publisher.client.endAsync();
      }

      // Every acknowledged message reaches the persistent subscriber, first deliveries in order.
      const received = new Map<number, number[]>();
      const subscriber = mqtt.connect(`mqtt://${broker2.mqtt}`, subscriberOptions);
      subscriber.on('message', (_topic, payload) => {
        const [id, seq] = payload.toString().split(':').map(Number) as [number, number];
        received.set(id, [...(received.get(id) ?? []), seq]);
      });
      const missing = (): string[] => publishers.flatMap((publisher, id) => {
        const got = new Set(received.get(id) ?? []);
        return publisher.acked.filter((seq) => !got.has(seq)).map((seq) => `${id}:${seq}`);
      });
      try {
        await waitFor('every acknowledged message at the subscriber', () => (missing().length === 0 ? true : undefined)).catch(() => undefined);
        const lost = missing();
        assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged messages missing (of ${ackedTotal()})`);
        for (const [id, seqs] of received) {
          const firsts = seqs.filter((seq, index) => seqs.indexOf(seq) === index);
          const outOfOrder = firsts.findIndex((seq, index) => index > 0 && seq < (firsts[index - 1] as number));
          assert.equal(outOfOrder, -1, `publisher ${id}: out of order at ${outOfOrder}`);
        }
      } finally {
        await subscriber.endAsync();
      }

      // Every replica, the repaired one included, holds the same bytes below the HW.
      for (const shard of [busiest, '$sessions', '$retained']) {
        const rows = await settledReplicas(cluster, shard);
        await assertByteIdentical(cluster, shard, Math.min(...rows.map((row) => row.highWatermark)));
      }
      const final = await replicaStatus(cluster, busiest);
      assert.ok(final?.every((row) => row.voter), `every replica votes: ${JSON.stringify(final)}`);
    } finally {
      await stopCluster(cluster);
    }

    for (const id of cluster.journals.keys()) {
      const report = await shardVerify(journalDataDir(cluster, id));
      assert.deepEqual({ exit: report.exit, errors: report.errors, problems: report.problems }, { exit: 0, errors: 0, problems: [] }, `shard verify on journal ${id}`);
    }
  });
});
