// Properties of the publish order a time-range replay delivers in (engine/replay/publish-order.ts
// and the replay through the broker, engine/replay/replays.ts).
//
// Goal: (a) the merge of per-shard sequences, fed in pages of any size whenever it says it is
// starved, gives every item exactly once, keeps each shard's own order, and, when each shard is
// in timestamp order (the broker's clock moving forward), is sorted by (timestamp, shard index);
// (b) a replay of any range [from, to) of any publish history over a memory store delivers
// exactly the stored messages of its filter in that range, in that order.
// Method: (a) random timestamps with many ties (a small range), random page sizes; (b) random
// publishes on a few topics spread over three shards with non-decreasing timestamps (repeats
// give ties across shards), a random filter among exact and wildcard ones and a random range;
// the model is a filter and a sort of the publish list. FC_SEED / FC_PATH replay a failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { Broker, filterMatches, PublishOrderMerge, type Delivery, type Message } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { ManualClock, settle } from '../tests/support/manual-clock.js';
import { replay } from '../tests/support/fast-check.js';
import { RecordingSink } from '../tests/support/recording-sink.js';

fc.configureGlobal({ includeErrorInReport: true });

interface Item {
  timestamp: number;
  offset: number;
}

const shardsArb = fc.array(fc.array(fc.nat(20), { maxLength: 30 }), { minLength: 1, maxLength: 5 });

test('(a) the merge gives every item once, keeps shard order, and sorts shards in time order by (timestamp, shard)', () => {
  fc.assert(
    fc.property(shardsArb, fc.boolean(), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }), (stamps, sortEach, pageSizes) => {
      const lanes = stamps.map((list) => (sortEach ? [...list].sort((a, b) => a - b) : list).map((timestamp, offset): Item => ({ timestamp, offset })));
      const merge = new PublishOrderMerge<Item>(lanes.keys());
      const fed = lanes.map(() => 0);
      const out: Array<{ shard: number; item: Item }> = [];
      let page = 0;
      for (let steps = 0; !merge.done; steps += 1) {
        assert.ok(steps < 10_000, 'the merge makes progress');
        const next = merge.take();
        if (next !== undefined) {
          out.push(next);
          continue;
        }
        for (const shard of merge.starved()) {
          const size = pageSizes[page++ % pageSizes.length] as number;
          const lane = lanes[shard] as Item[];
          merge.add(shard, lane.slice(fed[shard], (fed[shard] as number) + size));
          fed[shard] = Math.min(lane.length, (fed[shard] as number) + size);
          merge.setMore(shard, (fed[shard] as number) < lane.length);
        }
      }
      assert.equal(out.length, lanes.reduce((sum, lane) => sum + lane.length, 0));
      for (const [shard, lane] of lanes.entries()) assert.deepEqual(out.filter((entry) => entry.shard === shard).map((entry) => entry.item), lane);
      if (sortEach) {
        for (let i = 1; i < out.length; i += 1) {
          const [a, b] = [out[i - 1], out[i]] as [{ shard: number; item: Item }, { shard: number; item: Item }];
          assert.ok(a.item.timestamp < b.item.timestamp || (a.item.timestamp === b.item.timestamp && a.shard <= b.shard), `out of order at ${i}`);
        }
      }
    }),
    { numRuns: 300, ...replay },
  );
});

const TOPICS = ['a/x', 'a/y', 'b/x', 'b/y', 'a/z/1'];
const FILTERS = ['a/x', 'a/+', '+/x', '#', 'a/#', 'b/y'];

test('(b) a replay delivers exactly the stored messages of its filter in [from, to), ordered by (timestamp, shard, offset)', async () => {
  const T0 = 1_700_000_000_000;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ topic: fc.constantFrom(...TOPICS), step: fc.nat(3) }), { maxLength: 60 }),
      fc.constantFrom(...FILTERS),
      fc.nat(100),
      fc.nat(100),
      async (publishes, filter, fromAt, length) => {
        const clock = new ManualClock();
        const broker = await Broker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), dataShards: 3, maxQueuedBytes: 4096, clock, cursorFlushMs: 1000 });
        let time = T0;
        const published: Array<{ message: Message; order: number }> = [];
        for (const [order, { topic, step }] of publishes.entries()) {
          time += step;
          const message: Message = { topic, payload: Buffer.from(String(order)), qos: 1, retain: false, publisherId: 'p', timestamp: time, properties: undefined };
          published.push({ message, order });
          await broker.publish(message);
        }
        const from = T0 + fromAt;
        const to = from + length + 1;
        const sink = new RecordingSink();
        const { session } = await broker.connect({ clientId: 'reader', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
        session.attach(sink);
        broker.startReplay(session, 'k', { filter, from, to }, { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' });
        for (let acked = 0, rounds = 0; rounds < 1000; rounds += 1) {
          await settle();
          if (acked === sink.deliveries.length) break;
          for (; acked < sink.deliveries.length; acked += 1) session.ack((sink.deliveries[acked] as Delivery).tag);
        }
        // Publish order within a shard is the publish call order (one appender per shard).
        const expected = published
          .filter(({ message }) => filterMatches(filter, message.topic) && message.timestamp >= from && message.timestamp < to)
          .sort((x, y) => x.message.timestamp - y.message.timestamp || broker.shardOf(x.message.topic) - broker.shardOf(y.message.topic) || x.order - y.order)
          .map(({ order }) => String(order));
        assert.deepEqual(sink.deliveries.map((delivery) => delivery.message.payload.toString()), expected);
        await broker.close();
      },
    ),
    { numRuns: 60, ...replay },
  );
});
