// Which data shard of a running `shardline start` a topic lands on, for barriers across topics.
//
// A broker dispatches each data shard's messages in offset order, so a marker published (after
// the act was acknowledged) on a topic of the same shard as a message that must not arrive is
// dispatched after it: had that message been delivered, it would have come first. Topics of
// different shards have no order between them, hence this mapping. It is the engine's own
// (Broker.shardOf of a probe broker over a memory store with the same shard count), not a copy
// of the hash. Against Mosquitto (one process, no shards) every topic counts as shard 0.
import assert from 'node:assert/strict';
import pino from 'pino';
import { Broker } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { usingMosquitto, waitForLogField, type BrokerProcess } from './broker-process.js';
import type { Received, TestClient } from './mqtt-client.js';

export type ShardOf = (topic: string) => number;

const probes = new Map<number, Promise<ShardOf>>();

function probe(count: number): Promise<ShardOf> {
  let found = probes.get(count);
  if (found === undefined) {
    found = (async () => {
      const broker = await Broker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), dataShards: count, maxQueuedBytes: 1024 * 1024 });
      await broker.close();
      return (topic: string) => broker.shardOf(topic);
    })();
    probes.set(count, found);
  }
  return found;
}

/** The topic-to-shard mapping of a running broker (its shard count from its start-up log line). */
export async function shardMapping(broker: BrokerProcess): Promise<ShardOf> {
  if (usingMosquitto()) return () => 0;
  const entry = await waitForLogField(broker.broker, 'dataShards');
  return probe(entry.dataShards as number);
}

/**
 * Marker topics for barriers: for every shard that one of `unwanted` maps to, one topic
 * `topicOf(N)` (the first N that lands there).
 */
export async function markerTopics(broker: BrokerProcess, unwanted: string[], topicOf: (n: number) => string): Promise<string[]> {
  const shardOf = await shardMapping(broker);
  const needed = new Set(unwanted.map(shardOf));
  const topics: string[] = [];
  for (let n = 0; needed.size > 0; n += 1) {
    const topic = topicOf(n);
    if (needed.delete(shardOf(topic))) topics.push(topic);
  }
  return topics;
}

/**
 * "Nothing else arrives" across topics: `via` publishes a QoS 1 marker on a topic `topicOf(N)`
 * (one `reader` receives) for every data shard one of `unwantedTopics` maps to, `reader` waits
 * for all of them, and no message since index `from` other than the markers (only those
 * `unwanted` picks, when given) may have come. The caller makes sure `via` publishes after the
 * act was handled (its acknowledgement, a round trip).
 */
export async function expectNothingBeforeShardMarkers(
  broker: BrokerProcess,
  via: TestClient,
  reader: TestClient,
  unwantedTopics: string[],
  topicOf: (n: number) => string,
  options: { from: number; what: string; unwanted?: (message: Received) => boolean },
): Promise<void> {
  const topics = await markerTopics(broker, unwantedTopics, topicOf);
  const payloads = new Set<string>();
  for (const topic of topics) {
    const payload = `marker ${topic}`;
    payloads.add(payload);
    await via.publish(topic, payload, { qos: 1 });
  }
  for (const topic of topics) await reader.waitForMessages(1, { topic });
  const between = reader.messages.slice(options.from).filter((m) => !payloads.has(m.payload.toString()) && (options.unwanted?.(m) ?? true));
  assert.deepEqual(
    between.map((m) => `${m.topic}: ${m.payload.toString().slice(0, 40)}`),
    [],
    `expected ${options.what}`,
  );
}
