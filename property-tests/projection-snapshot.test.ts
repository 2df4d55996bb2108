// Property of Projection<T> snapshots (engine/projection) with the codecs the broker uses.
//
// Goal: whatever the records and wherever snapshots fall, a projection opened from the newest
// snapshot plus the records after it has the state a replay of the shard from offset 0 has;
// so has the projection that lived through the appends (and wrote the snapshots).
// Method: random scripts of appends of `$sessions` records (session meta with and without a
// will, subscriptions, cursors, inbound QoS 2 markers, tombstones of each, over a few client
// ids so keys collide) or `$retained` records (messages with properties, empty payloads that
// clear), explicit snapshots, and reopens (close, then open from the snapshot and go on with
// the new projection), over a MemoryShardStore. The living projection is fed each durable
// append (Projection.appended) and also writes snapshots on its own every N records, N drawn
// per script, so snapshots land at random record boundaries. The comparison uses each state's
// comparable form (SessionTable.snapshot(), RetainedStore.snapshot()).
// A failure prints the seed and the shrunk script; set FC_SEED (and FC_PATH) to replay it,
// FC_NUM_RUNS to run more scripts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import type { JournalRecord, RecordInput } from '../journal/index.js';
import { messageToRecord, type Message } from '../engine/index.js';
import { Projection, type ProjectionCodec } from '../engine/index.js';
import { RETAINED_SHARD, RetainedStore, retainedStoreCodec } from '../engine/testing.js';
import { cursorRecord, publishKeyRecord, metaRecord, SESSIONS_SHARD, SessionTable, sessionTableCodec, subscriptionRecord } from '../engine/testing.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const logger = pino({ level: 'silent' });
const CLIENTS = ['a', 'b', 'c'];
const FILTERS = ['x/#', 'x/y', '+/z'];

interface Subject<T> {
  shard: string;
  record: fc.Arbitrary<RecordInput>;
  initial(): T;
  apply(state: T, record: JournalRecord): T;
  codec: ProjectionCodec<T>;
  comparable(state: T): unknown;
}

const willArb = fc.option(
  fc.record({
    topic: fc.constantFrom('w/1', 'w/2'),
    payload: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
    qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
    retain: fc.boolean(),
    properties: fc.option(fc.record({ userProperties: fc.array(fc.tuple(fc.constantFrom('k', 'l'), fc.string({ maxLength: 3 })), { maxLength: 3 }), correlationData: fc.uint8Array({ maxLength: 4 }).map((bytes) => Buffer.from(bytes)) }), { nil: undefined }),
    delaySeconds: fc.nat(30),
  }),
  { nil: undefined },
);

const sessionRecordArb: fc.Arbitrary<RecordInput> = fc.oneof(
  fc.record({ client: fc.constantFrom(...CLIENTS), gone: fc.boolean(), expirySeconds: fc.nat(100), connected: fc.boolean(), will: willArb, protocolVersion: fc.constantFrom(4, 5) }).map(({ client, gone, will, ...meta }) =>
    gone ? { key: Buffer.from(`s:${client}`), value: null } : metaRecord(client, { ...meta, ...(will === undefined ? {} : { will }) }),
  ),
  fc.record({ client: fc.constantFrom(...CLIENTS), filter: fc.constantFrom(...FILTERS), gone: fc.boolean(), qos: fc.constantFrom(0 as const, 1 as const, 2 as const), noLocal: fc.boolean() }).map(({ client, filter, gone, qos, noLocal }) =>
    subscriptionRecord(client, filter, gone ? null : { qos, noLocal, keepRetainFlag: false, sendRetained: 'always' }),
  ),
  fc.record({ client: fc.constantFrom(...CLIENTS), gone: fc.boolean(), acked: fc.array(fc.nat(50), { maxLength: 3 }), release010: fc.boolean() }).map(({ client, gone, acked, release010 }) => {
    const sent = acked.map((offset) => offset + 1);
    if (gone) return cursorRecord(client, null);
    // Release 0.1.0 stored cursors as arrays by shard position; both forms are in old journals.
    if (release010) return { key: Buffer.from(`c:${client}`), value: Buffer.from(JSON.stringify({ acked, sent })) };
    const byName = (offsets: number[]) => Object.fromEntries(offsets.map((offset, shard) => [`mqtt.${shard}`, offset]));
    return cursorRecord(client, { acked: byName(acked), sent: byName(sent) });
  }),
  fc.record({ client: fc.constantFrom(...CLIENTS), packetId: fc.integer({ min: 1, max: 3 }), state: fc.constantFrom('gone', 'stored', 'pending') }).map(({ client, packetId, state }) =>
    publishKeyRecord(client, packetId, state === 'gone' ? null : state === 'stored' ? {} : { pending: { shard: 0, from: packetId, timestamp: 7 } }),
  ),
);

const retainedRecordArb: fc.Arbitrary<RecordInput> = fc
  .record({
    topic: fc.constantFrom('r/1', 'r/2', 'r/3', 'r/4'),
    payload: fc.uint8Array({ maxLength: 6 }).map((bytes) => Buffer.from(bytes)),
    qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
    timestamp: fc.integer({ min: 0, max: 1000 }),
    publisherId: fc.constantFrom('p', 'q'),
    properties: fc.option(fc.record({ contentType: fc.constantFrom('text/plain', 'a/b') }), { nil: undefined }),
  })
  .map((fields) => {
    const message: Message = { ...fields, retain: true };
    return messageToRecord(message, { tombstone: message.payload.length === 0 });
  });

const sessions: Subject<SessionTable> = {
  shard: SESSIONS_SHARD,
  record: sessionRecordArb,
  initial: () => new SessionTable(),
  apply: (table, record) => {
    table.apply(record);
    return table;
  },
  codec: sessionTableCodec,
  comparable: (table) => table.snapshot(),
};

const retained: Subject<RetainedStore> = {
  shard: RETAINED_SHARD,
  record: retainedRecordArb,
  initial: () => new RetainedStore(),
  apply: (store, record) => {
    store.apply(record);
    return store;
  },
  codec: retainedStoreCodec,
  comparable: (store) => ({ messages: store.snapshot(), order: [...store.messages()].map((message) => message.topic) }),
};

type Step = { kind: 'append'; records: RecordInput[] } | { kind: 'snapshot' } | { kind: 'reopen' };

function stepArb(record: fc.Arbitrary<RecordInput>): fc.Arbitrary<Step> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(record, { minLength: 1, maxLength: 5 }).map((records): Step => ({ kind: 'append', records })) },
    { weight: 1, arbitrary: fc.constant<Step>({ kind: 'snapshot' }) },
    { weight: 1, arbitrary: fc.constant<Step>({ kind: 'reopen' }) },
  );
}

/** The state a replay of every record from offset 0 gives, without Projection or snapshots. */
async function fullReplay<T>(store: MemoryShardStore, subject: Subject<T>): Promise<T> {
  let state = subject.initial();
  for (const record of await store.read(subject.shard, 0, { maxRecords: 100_000 })) state = subject.apply(state, record);
  return state;
}

function checkSubject<T>(subject: Subject<T>): Promise<void> {
  return fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.array(stepArb(subject.record), { maxLength: 25 }), async (every, steps) => {
      const store = new MemoryShardStore();
      await store.create(subject.shard, { compacted: true });
      const open = (): Promise<Projection<T>> => Projection.open({ store, shard: subject.shard, logger, initial: subject.initial, apply: subject.apply, codec: subject.codec, snapshotEveryRecords: every });
      let living = await open();
      for (const step of steps) {
        if (step.kind === 'append') {
          const { baseOffset } = await store.append(subject.shard, step.records);
          living.appended(baseOffset, step.records);
        } else if (step.kind === 'snapshot') {
          await living.snapshotNow();
        } else {
          await living.close();
          living = await open();
          assert.deepEqual(subject.comparable(living.state), subject.comparable(await fullReplay(store, subject)), 'reopened from the snapshot');
        }
      }
      await living.snapshotNow();
      const expected = subject.comparable(await fullReplay(store, subject));
      assert.deepEqual(subject.comparable(living.state), expected, 'the living projection');
      const reopened = await open();
      assert.deepEqual(subject.comparable(reopened.state), expected, 'snapshot + tail');
      assert.equal(reopened.offset, (await store.info(subject.shard)).nextOffset);
    }),
    { numRuns: numRuns(100), ...replay },
  );
}

test('$sessions: a snapshot plus the tail replays to the state of a full replay', () => checkSubject(sessions));

test('$retained: a snapshot plus the tail replays to the state of a full replay, in the same order', () => checkSubject(retained));
