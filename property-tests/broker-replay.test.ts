// Properties of the broker's system-shard projections (engine/broker.ts, `$sessions` and
// `$retained`).
//
// Goal: the session table and the retained set the broker keeps in memory are exactly what
// replaying their shards gives, at any point, so a restart rebuilds the state the live broker
// had; and the table holds what the sessions really are (the durable ones, with their
// subscriptions), so what a restart rebuilds is also right.
// Method: random scripts of client operations (connect with clean start or not, expiry 0 or
// more, an optional will with or without delay; subscribe, unsubscribe, acknowledge, publish
// retained or not with empty payloads that clear, QoS 2 publishes from the client with a packet
// id and their PUBREL (the front end's inbound QoS 2 steps), disconnect with or without the
// will, restarts) run against a live Broker over a MemoryShardStore. Time is a manual clock whose
// timers fire only when a step advances it, in due order, so will delays and session expiry
// happen at exact, replayable moments. Checks:
//  (a) a fresh SessionTable / RetainedStore fed every record of `$sessions` / `$retained` from
//      offset 0 has the live broker's snapshot(); so has a SessionTable fed only what a full
//      compaction keeps (each key's latest record, tombstones dropped);
//  (b) after close(), Broker.open over the same store rebuilds the replayed state, which is the
//      live state except what close() itself records (connected sessions become disconnected
//      now, their wills dropped);
//  (c) a model of the sessions (alive, durable, online, subscriptions, pending wills, inbound
//      QoS 2 packet ids awaiting PUBREL) written from MQTT's rules predicts the table's members,
//      their subscriptions and inbound packet ids, and the retained set after every step,
//      across restarts.
// A failure prints the seed and the shrunk script; set FC_SEED (and FC_PATH) to replay it,
// FC_NUM_RUNS to run more scripts.
import { test } from 'node:test';
import fc from 'fast-check';
import { numRuns, replay } from '../tests/support/fast-check.js';
import { opArb, runScript } from './broker-script.js';

fc.configureGlobal({ includeErrorInReport: true });

test('(a) the live session table and retained set equal their shards replayed; (b) close and reopen rebuild them', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb(true), { maxLength: 40, size: 'max' }), async (ops) => {
      await runScript(ops, async (harness, step) => {
        await harness.checkReplay(step);
      });
    }),
    { numRuns: numRuns(200), ...replay },
  );
});

test('(c) the session table holds exactly the live durable sessions and their subscriptions; retained follows publishes and wills', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb(true), { maxLength: 40, size: 'max' }), async (ops) => {
      await runScript(ops, (harness, step) => harness.checkModel(step));
    }),
    { numRuns: numRuns(200), ...replay },
  );
});
