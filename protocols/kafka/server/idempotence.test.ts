// Idempotent producers: the pure sequence rules (producer-state.ts) and the store-backed part
// (idempotence.ts) over an in-memory ShardStore: a retried batch is answered with its original
// offset and appended once, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch is
// INVALID_PRODUCER_EPOCH, a new epoch restarts at 0, sequences wrap, state is capped per
// partition (least recent producer forgotten), and both the producer ids and the sequence state
// come back after a reopen over the same store (the restart).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { KafkaErrorCode } from '../codec/index.js';
import { Idempotence } from './idempotence.js';
import { PartitionProducers, type ProducerBatch } from './producer-state.js';

const b = (producerId: bigint, producerEpoch: number, baseSequence: number, count = 2): ProducerBatch => ({ producerId, producerEpoch, baseSequence, count });
const records = (n: number) => Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`r${i}`) }));

test('sequence rules: in order, duplicate, gap, old and new epochs, wrap, unknown producers', () => {
  const state = new PartitionProducers(10);
  assert.deepEqual(state.check(b(1n, 0, 7)), { kind: 'append' }, 'an unknown producer may start anywhere');
  state.appended(b(1n, 0, 0), 100);
  state.appended(b(1n, 0, 2), 102);
  assert.deepEqual(state.check(b(1n, 0, 4)), { kind: 'append' });
  assert.deepEqual(state.check(b(1n, 0, 2)), { kind: 'duplicate', baseOffset: 102 });
  assert.deepEqual(state.check(b(1n, 0, 0)), { kind: 'duplicate', baseOffset: 100 });
  assert.equal((state.check(b(1n, 0, 5)) as { errorCode: number }).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'a gap');
  assert.equal((state.check(b(1n, 0, 2, 3)) as { errorCode: number }).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'same start, other length: not the same batch');
  state.appended(b(1n, 1, 0), 104);
  assert.equal((state.check(b(1n, 0, 4)) as { errorCode: number }).errorCode, KafkaErrorCode.INVALID_PRODUCER_EPOCH);
  assert.equal((state.check(b(1n, 2, 3)) as { errorCode: number }).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'a new epoch starts at 0');
  assert.deepEqual(state.check(b(1n, 2, 0)), { kind: 'append' });
  assert.equal((state.check(b(1n, 0, -1)) as { errorCode: number }).errorCode, KafkaErrorCode.INVALID_RECORD);
  // Sequences wrap from 2^31-1 to 0.
  state.appended(b(2n, 0, 2 ** 31 - 2, 2), 200);
  assert.deepEqual(state.check(b(2n, 0, 0)), { kind: 'append' });
  // Five batches are remembered per producer: the sixth-newest is no longer a duplicate.
  for (let i = 0; i < 6; i += 1) state.appended(b(3n, 0, i * 2), 300 + i * 2);
  assert.equal(state.check(b(3n, 0, 2)).kind, 'duplicate');
  assert.equal(state.check(b(3n, 0, 0)).kind, 'refuse');
});

test('state is capped per partition: the least recently appending producer is forgotten', () => {
  const state = new PartitionProducers(2);
  state.appended(b(1n, 0, 0), 0);
  state.appended(b(2n, 0, 0), 2);
  state.appended(b(1n, 0, 2), 4);
  state.appended(b(3n, 0, 0), 6);
  assert.equal(state.size, 2);
  assert.deepEqual(state.check(b(2n, 0, 0)), { kind: 'append' }, 'producer 2 was forgotten: its retry is no longer recognised');
  assert.equal(state.check(b(1n, 0, 2)).kind, 'duplicate');
});

test('over a store: duplicates appended once, refusals, producer ids and state survive a reopen', async () => {
  const store = new MemoryShardStore();
  await store.create('kafka.t.0');
  const first = await Idempotence.open(store);
  const a = await first.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: -1n, producerEpoch: -1 });
  const c = await first.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: -1n, producerEpoch: -1 });
  assert.deepEqual([a.errorCode, a.producerId, a.producerEpoch, c.producerId], [0, 0n, 0, 1n]);
  assert.deepEqual(await first.append('kafka.t.0', b(0n, 0, 0, 3), records(3)), { errorCode: 0, baseOffset: 0, duplicate: false });
  assert.deepEqual(await first.append('kafka.t.0', b(0n, 0, 0, 3), records(3)), { errorCode: 0, baseOffset: 0, duplicate: true });
  // A retry racing its original: both in flight at once, appended once.
  const [x, y] = await Promise.all([first.append('kafka.t.0', b(0n, 0, 3, 2), records(2)), first.append('kafka.t.0', b(0n, 0, 3, 2), records(2))]);
  assert.deepEqual([x.errorCode, y.errorCode, (x as { baseOffset: number }).baseOffset, (y as { baseOffset: number }).baseOffset], [0, 0, 3, 3]);
  assert.equal((await first.append('kafka.t.0', b(0n, 0, 9, 1), records(1))).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert.equal(await store.highWatermark('kafka.t.0'), 5);

  // The restart: a new instance over the same store.
  const second = await Idempotence.open(store);
  assert.deepEqual(await second.append('kafka.t.0', b(0n, 0, 3, 2), records(2)), { errorCode: 0, baseOffset: 3, duplicate: true }, 'a retry after the restart is still a duplicate');
  assert.equal((await second.append('kafka.t.0', b(0n, 0, 8, 1), records(1))).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'a gap after the restart');
  assert.deepEqual(await second.append('kafka.t.0', b(0n, 0, 5, 1), records(1)), { errorCode: 0, baseOffset: 5, duplicate: false });
  const next = await second.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: -1n, producerEpoch: -1 });
  assert.equal(next.producerId, 2n, 'ids handed out before the restart are not handed out again');
  // An epoch bump (KIP-360), a producer id never handed out, a transactional id.
  assert.deepEqual([(await second.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: 0n, producerEpoch: 0 })).producerEpoch], [1]);
  assert.equal((await second.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: 99n, producerEpoch: 0 })).errorCode, KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING);
  assert.equal((await second.initProducerId({ transactionalId: 'tx', transactionTimeoutMs: 1000, producerId: -1n, producerEpoch: -1 })).errorCode, KafkaErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  // After the bump the old epoch is stale.
  assert.deepEqual(await second.append('kafka.t.0', b(0n, 1, 0, 1), records(1)), { errorCode: 0, baseOffset: 6, duplicate: false });
  assert.equal((await second.append('kafka.t.0', b(0n, 0, 6, 1), records(1))).errorCode, KafkaErrorCode.INVALID_PRODUCER_EPOCH);

  // A rebuild window of 1 record sees only the last batch's header: older producers are forgotten.
  const narrow = await Idempotence.open(store, { rebuildRecords: 1 });
  assert.deepEqual(await narrow.append('kafka.t.0', b(0n, 1, 0, 1), records(1)), { errorCode: 0, baseOffset: 6, duplicate: true });
});
