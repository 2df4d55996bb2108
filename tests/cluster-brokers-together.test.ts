// Goal: brokers started at the same moment on a brand-new cluster agree on the number of MQTT
// data shards and so route every topic to the same shard (docs/replication.md): `cluster up`
// starts its brokers together, and none of them may count a partial set of data shards that
// another is still creating.
// Method: `shardline cluster up --brokers 1` on a fresh directory; as soon as its broker has
// created the state shards, while it goes on to create the data shards, two more brokers are
// started by hand (the race a partial count came from). Each broker's log names the data shard
// count it uses; placement must hold exactly that many data shards. Then an mqtt.js client at
// every broker publishes (QoS 1) to the same topics, and every data shard is read from its
// leader: each topic's messages from all three brokers must be in the one shard the agreed
// count hashes it to.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { recordToMessage } from '../engine/index.js';
import { MqttShardMap, RemoteShardStore } from '../shard-model/index.js';
import { runCli, scratchDirectory, waitForLogField } from './support/broker-process.js';
import { clusterUp, killedAfterTests, launchCluster, shardRecord, stopCluster, waitFor, type Cluster } from './support/cluster-up.js';

const BROKERS = 3;
const TOPICS = 24;

const pids = killedAfterTests();

/** The first JSON log line among `lines` whose msg starts with `msg` and that has `fields`. */
function logLine(lines: readonly string[], msg: string, fields: Record<string, unknown> = {}): Record<string, unknown> | undefined {
  for (const line of lines) {
    if (!line.includes(msg)) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (String(entry.msg).startsWith(msg) && Object.entries(fields).every(([key, value]) => entry[key] === value)) return entry;
  }
  return undefined;
}

async function logFile(dir: string, node: string): Promise<string[]> {
  return (await readFile(join(dir, 'logs', `${node}.log`), 'utf8').catch(() => '')).split('\n');
}

describe('brokers that start together', () => {
  it('agree on the data shards and route every topic to the same one', { timeout: 600_000 }, async () => {
    const dir = await scratchDirectory('shardline-cluster-together-');
    const launched = launchCluster(dir, ['--brokers', '1']);
    const { clusterToken, placementPorts } = await waitFor('the cluster state file', async () => JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string; placementPorts: number[] });
    await waitFor('broker-1 to have created the state shards', async () => logLine(await logFile(dir, 'broker-1'), 'created a replicated shard in placement', { shard: '$retained' }), 240_000);
    const voters = placementPorts.map((port) => `127.0.0.1:${port}`).join(',');
    const late = [22, 23].map((id) => runCli(['start', '--host', '127.0.0.1', '--roles', 'broker', '--node-id', String(id), '--placement', voters, '--mqtt-port', '0', '--admin-port', '0', '--broker-peers', 'true'], { SHARDLINE_CLUSTER_TOKEN: clusterToken }));
    for (const broker of late) if (broker.child.pid !== undefined) pids.add(broker.child.pid);
    const cluster: Cluster = await clusterUp(launched, dir, pids);
    for (const broker of late) cluster.restarted.push({ role: 'broker', cli: broker });
    try {
      const addresses = [cluster.brokers[0]?.mqtt as string, ...(await Promise.all(late.map(async (broker) => String((await waitForLogField(broker, 'mqtt', 120_000)).mqtt))))];
      const { shards = [] } = await cluster.placement.read(['shards']);
      const dataShards = shards.filter((shard) => /^mqtt\.\d+$/.test(shard.name)).map((shard) => shard.name).sort();
      const rebuilt = 'broker state rebuilt from the journal';
      const counts = [logLine(await logFile(dir, 'broker-1'), rebuilt)?.dataShards, ...late.map((broker) => logLine(broker.lines, rebuilt)?.dataShards)];
      assert.deepEqual(counts, Array.from({ length: BROKERS }, () => dataShards.length), `each broker's count (${counts.join(', ')}) is placement's ${dataShards.length} data shards`);
      const map = new MqttShardMap(dataShards.length);
      assert.deepEqual(dataShards, [...map.names].sort());

      const topics = Array.from({ length: TOPICS }, (_, i) => `together/${i}`);
      for (const [k, address] of addresses.entries()) {
        const client = await mqtt.connectAsync(`mqtt://${address}`, { clientId: `together-${k}`, clean: true, reconnectPeriod: 0, connectTimeout: 30_000 });
        for (const topic of topics) await client.publishAsync(topic, `broker-${k}`, { qos: 1 });
        await client.endAsync();
      }

      // Where each topic's messages were stored, by the broker that took them.
      const storedIn = new Map<string, string[]>();
      for (const name of dataShards) {
        const record = await shardRecord(cluster, name);
        const leader = cluster.journals.get(record.leader as string);
        assert.ok(leader !== undefined, `${name} has a leader`);
        const store = await RemoteShardStore.connect(leader.journalGrpc, { credentials: { clusterToken: cluster.clusterToken } });
        try {
          for (let offset = 0; ; ) {
            const page = await store.read(name, offset, { maxRecords: 1000 });
            if (page.length === 0) break;
            for (const stored of page) {
              const message = recordToMessage(stored);
              if (message?.topic.startsWith('together/') === true) storedIn.set(message.topic, [...(storedIn.get(message.topic) ?? []), `${message.payload.toString()}@${name}`]);
            }
            offset = (page.at(-1)?.offset ?? offset) + 1;
          }
        } finally {
          await store.close();
        }
      }
      for (const topic of topics) {
        const expected = Array.from({ length: BROKERS }, (_, k) => `broker-${k}@${map.names[map.shardOf(topic)] as string}`);
        assert.deepEqual([...(storedIn.get(topic) ?? [])].sort(), expected, `${topic}: every broker stored it in the same shard`);
      }
    } finally {
      await stopCluster(cluster);
    }
  });
});
