// Goal: in a running cluster, a replica of a busy MQTT data shard moves to another journal node
// by hand (`shardline ctl shard move`, the leader's own replica), and a journal node gone for
// good is replaced by the controller once `replication.replace-after-ms` has passed; QoS 1
// publishers only see their PUBACKs delayed, every acknowledged message reaches a persistent
// subscriber in per-publisher order, and the new set's replicas hold the
// same bytes below the high watermark.
// Method: `shardline cluster up --journals 4` (replication factor 3: each shard has one journal
// node to spare), mqtt.js publishers at broker-1 on topics of mqtt.0, the subscriber's persistent
// session on broker-2, offline meanwhile. The move goes through the placement leader's admin API
// (the other voters refuse it with SL_ADMIN_NOT_LEADER); the replacement follows a SIGKILL of a
// follower node that is never restarted, with replace-after set to 1 ms through placement.
// Bounded: at most MAX_PER_PUBLISHER messages per publisher, every wait with a deadline.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { REPLACE_AFTER_SETTING } from '../shard-model/index.js';
import { runCli, scratchDirectory } from './support/broker-process.js';
import { assertByteIdentical, journalDataDir, killedAfterTests, killJournal, settledReplicas, shardRecord, startCluster, startCountingPublisher, stopCluster, topicsOnShard, waitFor, type Cluster, type CountingPublisher } from './support/cluster-up.js';

const SHARD = 'mqtt.0';
const PUBLISHERS = 2;
const MAX_PER_PUBLISHER = 20_000;
const PROGRESS = 30;

const pids = killedAfterTests();

describe('replica-set changes in a running cluster', () => {
  it('moves the leader\'s replica of a busy shard by hand, replaces a journal node gone for good, and loses nothing', { timeout: 900_000 }, async () => {
    const dir = await scratchDirectory('shardline-replica-reassign-');
    const cluster: Cluster = await startCluster(dir, pids, ['--journals', '4']);
    const { adminToken } = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { adminToken: string };
    const [broker1, broker2] = cluster.brokers as [NonNullable<Cluster['brokers'][0]>, NonNullable<Cluster['brokers'][0]>];
    const publishers: CountingPublisher[] = [];
    try {
      const initial = await waitFor(`a leader of ${SHARD}`, async () => {
        const record = await shardRecord(cluster, SHARD);
        return record.leader !== null ? record : undefined;
      });
      assert.equal(initial.replicas.length, 3, JSON.stringify(initial));
      const { shards = [] } = await cluster.placement.read(['shards']);
      const dataShards = shards.filter((shard) => /^mqtt\.\d+$/.test(shard.name)).length;
      const topics = topicsOnShard(dataShards, 0, PUBLISHERS, 'reassign');

      const subscriberOptions = { clientId: 'reassign-sub', clean: false, reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4 as const };
      const first = await mqtt.connectAsync(`mqtt://${broker2.mqtt}`, subscriberOptions);
      assert.equal((await first.subscribeAsync('reassign/#', { qos: 1 }))[0]?.qos, 1);
      await first.endAsync();

      for (let i = 0; i < PUBLISHERS; i++) publishers.push(await startCountingPublisher(broker1.mqtt, `reassign-pub-${i}`, i, topics[i] as string, 1, MAX_PER_PUBLISHER));
      const ackedTotal = (): number => publishers.reduce((sum, publisher) => sum + publisher.acked.length, 0);
      await waitFor('the publishers to get going', () => (ackedTotal() >= PROGRESS ? true : undefined));

      // By hand: the leader's replica moves to the spare journal node. Only placement's leader
      // takes it; the command waits until the shard has the new set and a leader.
      const before = await shardRecord(cluster, SHARD);
      const from = before.leader as string;
      const spare = [...cluster.journals.keys()].find((id) => !before.replicas.includes(id)) as string;
      assert.ok(spare !== undefined);
      const leftCopy = join(journalDataDir(cluster, from), 'shards', SHARD);
      assert.ok((await stat(leftCopy)).isDirectory(), `${from} holds ${SHARD} at ${leftCopy} before the move`);
      const ackedAtMove = ackedTotal();
      const refusals: string[] = [];
      let moved = false;
      for (const admin of cluster.voterAdmins) {
        const ctl = runCli(['ctl', 'shard', 'move', SHARD, '--from', from, '--to', spare, '--server', admin], { SHARDLINE_ADMIN_TOKEN: adminToken });
        const exit = await ctl.exited;
        if (exit.code === 0) {
          moved = true;
          break;
        }
        refusals.push(`${ctl.lines.join('\n')}${exit.stderr}`);
        assert.match(refusals.at(-1) as string, /SL_ADMIN_NOT_LEADER/);
      }
      assert.ok(moved, `no voter took the move: ${refusals.join(' | ')}`);
      const afterMove = await shardRecord(cluster, SHARD);
      assert.deepEqual([...afterMove.replicas].sort(), before.replicas.map((id) => (id === from ? spare : id)).sort(), JSON.stringify(afterMove));
      assert.ok(afterMove.leader !== null && afterMove.leaderEpoch > before.leaderEpoch, JSON.stringify(afterMove));
      await waitFor('publishes acknowledged after the move', () => (ackedTotal() >= ackedAtMove + PROGRESS ? true : undefined));

      // The node the move left deletes its copy once it sees the switch, and says so in its
      // replication status.
      await waitFor(`${from}'s copy of ${SHARD} deleted`, async () => (await stat(leftCopy).then(() => false, () => true) ? true : undefined));
      const status = await fetch(`http://${cluster.journals.get(from)?.admin ?? assert.fail(from)}/api/replication/shards`, { headers: { authorization: `Bearer ${adminToken}` } });
      const { items, removed } = (await status.json()) as { items: { shard: string }[]; removed: { shard: string; epoch: number }[] };
      assert.ok(!items.some((item) => item.shard === SHARD), JSON.stringify(items));
      assert.equal(removed[0]?.shard, SHARD, JSON.stringify(removed));

      // Gone for good: a follower of the new set is SIGKILLed and never restarted; with
      // replace-after at 1 ms the controller replaces it once its lease has run out, by the one
      // journal node outside the set (the node the move left, whose copy is gone: it copies the
      // shard afresh as a learner).
      assert.equal((await cluster.placement.propose({ type: 'set-setting', key: REPLACE_AFTER_SETTING, value: 1 })).result.status, 'ok');
      const gone = afterMove.replicas.find((id) => id !== afterMove.leader) as string;
      await killJournal(cluster, gone);
      const ackedAtKill = ackedTotal();
      const replaced = await waitFor(`${gone} replaced in ${SHARD}'s set`, async () => {
        const record = await shardRecord(cluster, SHARD);
        return !record.replicas.includes(gone) && record.replicas.length === 3 && record.leader !== null ? record : undefined;
      }, 240_000);
      assert.deepEqual([...replaced.replicas].sort(), afterMove.replicas.map((id) => (id === gone ? from : id)).sort(), JSON.stringify(replaced));
      cluster.journals.delete(gone);
      await waitFor('publishes acknowledged after the replacement', () => (ackedTotal() >= ackedAtKill + PROGRESS ? true : undefined));

      for (const publisher of publishers) publisher.stopped = true;
      await Promise.all(publishers.map((publisher) => publisher.done));
      for (const [id, publisher] of publishers.entries()) assert.deepEqual(publisher.errors, [], `publisher ${id} saw no error or disconnect`);

      // Every acknowledged message reaches the resumed session, in per-publisher order.
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

      // The new set agrees byte for byte below the HW, the replacement included.
      const rows = await settledReplicas(cluster, SHARD);
      assert.deepEqual(rows.map((row) => row.node).sort(), [...replaced.replicas].sort());
      assert.ok(rows.every((row) => row.voter), `every replica of the new set votes: ${JSON.stringify(rows)}`);
      const hw = Math.min(...rows.map((row) => row.highWatermark));
      assert.ok(hw > ackedTotal() / 2, `the HW ${hw} covers the shard's records`);
      await assertByteIdentical(cluster, SHARD, hw);
    } finally {
      for (const publisher of publishers) publisher.stopped = true;
      await Promise.all(publishers.map(async (publisher) => {
        await publisher.done;
        await publisher.client.endAsync().catch(() => undefined);
      }));
      await stopCluster(cluster);
    }
  });
});
