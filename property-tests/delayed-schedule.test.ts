// Property of delayed publish (engine/delayed/): whatever the script of delayed publishes, time
// steps, clean restarts and crashes, every accepted `$delayed/{s}/{topic}` message reaches
// {topic} exactly once, never before it is due, on time while the broker is up (else at the
// first start after it fell due), and in (release time, due time, acceptance) order.
// Method: random scripts against a Broker + DelayedPublisher over one MemoryShardStore and a
// manual clock. A crash abandons the running broker at a quiescent point (no close(), so nothing
// is recorded beyond what was already appended) and opens a new one on a new clock set
// `downtime` later: the old instance's timers never fire again, as with kill -9. The outcome is
// read from the data shard, where the target publishes are stored with their publish time.
// A failure prints the seed and the shrunk script; FC_SEED (and FC_PATH) replay it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { Broker, DelayedPublisher, recordToMessage } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { ManualClock } from '../tests/support/manual-clock.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

const logger = pino({ level: 'silent' });
const MAX_DELAY_S = 20;

type Step = { kind: 'publish'; delay: number; qos: 0 | 1 | 2 } | { kind: 'advance'; ms: number } | { kind: 'crash'; downtimeMs: number } | { kind: 'restart' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('publish' as const), delay: fc.integer({ min: 0, max: MAX_DELAY_S }), qos: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 12_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), downtimeMs: fc.integer({ min: 0, max: 30_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

interface Running {
  clock: ManualClock;
  broker: Broker;
}

async function start(store: MemoryShardStore, at: number): Promise<Running> {
  const clock = new ManualClock();
  await clock.advance(at - clock.now());
  const broker = await Broker.open({ store, logger, dataShards: 1, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
  broker.extras.delayed = await DelayedPublisher.open({ store, clock, logger, host: { publish: (message) => broker.publish(message), mayPublish: () => true }, maxDelaySeconds: MAX_DELAY_S, maxMessages: 10_000 });
  // Messages overdue at the start go out on a timer of 0 ms.
  await clock.advance(0);
  return { clock, broker };
}

test('every accepted delayed message is published exactly once, never early, on time when up, in order', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
      const store = new MemoryShardStore();
      let running = await start(store, 1_700_000_000_000);
      const starts: number[] = [];
      const accepted: Array<{ due: number; index: number }> = [];
      for (const current of steps) {
        if (current.kind === 'publish') {
          const index = accepted.length;
          const now = running.clock.now();
          await running.broker.publish({ topic: `$delayed/${current.delay}/out/t`, payload: Buffer.from(String(index)), qos: current.qos, retain: false, publisherId: 'p', timestamp: now, properties: undefined });
          accepted.push({ due: now + current.delay * 1000, index });
        } else if (current.kind === 'advance') {
          await running.clock.advance(current.ms);
        } else {
          const at = running.clock.now() + (current.kind === 'crash' ? current.downtimeMs : 0);
          if (current.kind === 'restart') await running.broker.close();
          running = await start(store, at);
          starts.push(at);
        }
      }
      await running.clock.advance(MAX_DELAY_S * 1000 + 1);
      await running.broker.close();

      const published = (await store.read('mqtt.0', 0, { maxRecords: 100_000 })).map((record) => {
        const message = recordToMessage(record);
        assert.ok(message !== undefined);
        return { index: Number(message.payload.toString()), at: message.timestamp, topic: message.topic };
      });
      assert.deepEqual(published.map((entry) => entry.index).sort((a, b) => a - b), accepted.map((entry) => entry.index), 'each accepted message exactly once');
      for (const entry of published) {
        const { due } = accepted[entry.index] as { due: number };
        assert.equal(entry.topic, 'out/t');
        assert.ok(entry.at >= due, `message ${entry.index} published at ${entry.at}, due ${due}`);
        assert.ok(entry.at === due || (starts.includes(entry.at) && due < entry.at), `message ${entry.index} due ${due} published at ${entry.at}: neither on time nor at a start after it fell due`);
      }
      const expected = [...published].sort((a, b) => a.at - b.at || (accepted[a.index] as { due: number }).due - (accepted[b.index] as { due: number }).due || a.index - b.index);
      assert.deepEqual(published.map((entry) => entry.index), expected.map((entry) => entry.index), 'release order');
    }),
    { numRuns: numRuns(60), ...replay },
  );
});
