// Goal: every broker on one journal maps topics onto the same MQTT data shards, also when they
// start together on a brand-new journal or one starts while another is still creating them
// (docs/replication.md): the count is the first record of `$mqtt-layout`, not what a list shows.
// Method: prepareShards over a memory store: a journal caught halfway through another broker's
// creation, brokers asking for different counts at the same moment, an older journal without
// the layout shard, and a layout record nobody should have written.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { isShardlineError } from '../base/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { LAYOUT_SHARD, prepareShards } from './broker-start.js';

const logger = pino({ level: 'silent' });

function layout(count: number): { key: null; value: Buffer; headers: [] } {
  return { key: null, value: Buffer.from(JSON.stringify({ dataShards: count })), headers: [] };
}

describe('the MQTT data shard count', () => {
  test('a broker starting while another has created only some data shards takes the whole count from the layout', async () => {
    const store = new MemoryShardStore();
    // The other broker wrote the layout (4) and had created 2 of its 4 data shards when this one listed.
    await store.create(LAYOUT_SHARD);
    await store.append(LAYOUT_SHARD, [layout(4)]);
    for (const name of ['mqtt.0', 'mqtt.1']) await store.create(name);
    const { shardMap, frontier } = await prepareShards(store, logger, 4);
    assert.deepEqual(shardMap.names, ['mqtt.0', 'mqtt.1', 'mqtt.2', 'mqtt.3']);
    assert.equal(frontier.length, 4);
    assert.ok((await store.list()).some((info) => info.name === 'mqtt.3'), 'it created the missing ones');
  });

  test('brokers starting at the same moment with different counts agree on the first one written', async () => {
    const store = new MemoryShardStore();
    const results = await Promise.all([3, 5, 2, 7].map((count) => prepareShards(store, logger, count)));
    const counts = results.map((result) => result.shardMap.names.length);
    assert.equal(new Set(counts).size, 1, `one count for all: ${counts.join(', ')}`);
    for (const topic of ['a', 'b/c', 'sensors/1/temp', 'x/y/z']) assert.equal(new Set(results.map((result) => result.shardMap.shardOf(topic))).size, 1, topic);
    const data = (await store.list()).filter((info) => /^mqtt\.\d+$/.test(info.name));
    assert.equal(data.length, counts[0], 'exactly the agreed data shards exist');
  });

  test('a journal from before the layout shard keeps the count its data shards have', async () => {
    const store = new MemoryShardStore();
    for (const name of ['mqtt.0', 'mqtt.1', 'mqtt.2']) await store.create(name);
    const { shardMap } = await prepareShards(store, logger, 8);
    assert.equal(shardMap.names.length, 3);
    const [record] = await store.read(LAYOUT_SHARD, 0);
    assert.deepEqual(JSON.parse(record?.value?.toString() ?? 'null'), { dataShards: 3 });
    assert.equal((await prepareShards(store, logger, 8)).shardMap.names.length, 3, 'and every later start');
  });

  test('a layout record that is not one is refused with SL_BROKER_BAD_LAYOUT, not guessed', async () => {
    for (const value of ['{"dataShards":0}', 'not json', '{"dataShards":"4"}']) {
      const store = new MemoryShardStore();
      await store.create(LAYOUT_SHARD);
      await store.append(LAYOUT_SHARD, [{ key: null, value: Buffer.from(value), headers: [] }]);
      await assert.rejects(prepareShards(store, logger, 4), (error) => isShardlineError(error, 'SL_BROKER_BAD_LAYOUT'), value);
    }
  });
});
