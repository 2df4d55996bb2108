// The merge of own and other brokers' records into one dispatch order (data-follower.ts), over a
// memory store whose tail sees a record as soon as it is appended, before its appender hears back:
// the race a real journal makes rare, made certain here.
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { ShardStore, TailOptions } from '../../shard-model/index.js';
import { MemoryShardStore } from '../../shard-model/testing.js';
import { DataFollower } from './data-follower.js';

/**
 * The follower's view of the shard: a memory store whose tail leaves out the records valued
 * 'control', as a journal's reads leave out a leader's epoch-start batch (offsets with no record).
 */
function withoutControl(store: MemoryShardStore): ShardStore {
  return {
    tail: async function* (name: string, fromOffset: number, options?: TailOptions) {
      for await (const record of store.tail(name, fromOffset, options)) if (record.value?.toString() !== 'control') yield record;
    },
  } as unknown as ShardStore;
}

async function harness(): Promise<{ store: MemoryShardStore; follower: DataFollower<string>; dispatched: string[]; frontier: () => number }> {
  const store = new MemoryShardStore();
  await store.create('s');
  const dispatched: string[] = [];
  let frontier = 0;
  const follower = new DataFollower<string>({
    store: withoutControl(store),
    logger: pino({ level: 'silent' }),
    name: 's',
    shard: 0,
    frontier: () => frontier,
    dispatchOwn: (items, baseOffset) => {
      items.forEach((item, index) => dispatched.push(`own ${item}@${baseOffset + index}`));
      frontier = baseOffset + items.length;
    },
    dispatchOther: (record) => {
      dispatched.push(`other ${record.value?.toString()}@${record.offset}`);
      frontier = record.offset + 1;
    },
    skipTo: (offset) => {
      frontier = Math.max(frontier, offset);
    },
  });
  follower.start();
  return { store, follower, dispatched, frontier: () => frontier };
}

async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns += 1) {
    assert.ok(turns < 1000, 'the follower did not get there');
    await tick();
  }
}

describe('DataFollower', () => {
  it('an own record the tail reads before its append is acknowledged is dispatched once, as own', async () => {
    const { store, follower, dispatched, frontier } = await harness();
    const id = follower.own.began();
    const { baseOffset } = await store.append('s', [{ value: Buffer.from('mine') }]);
    // The tail has the record now; the acknowledgement is still on its way.
    for (let i = 0; i < 20; i += 1) await tick();
    assert.deepEqual(dispatched, [], 'not handed on while an own append that may hold it is in flight');
    follower.ownBatch(['mine'], baseOffset);
    follower.own.settled(id);
    await store.append('s', [{ value: Buffer.from('theirs') }]);
    await until(() => frontier() === 2);
    assert.deepEqual(dispatched, ['own mine@0', 'other theirs@1']);
    await follower.stop();
  });

  it('an own batch above offsets with no record (a leader\'s epoch start) is dispatched once the tail shows the gap, and so are the later ones', async () => {
    const { store, follower, dispatched, frontier } = await harness();
    // The shard's new leader wrote its epoch start at 0 after the broker had read the next offset 0.
    await store.append('s', [{ value: Buffer.from('control') }]);
    for (const value of ['first', 'second']) {
      const id = follower.own.began();
      const { baseOffset } = await store.append('s', [{ value: Buffer.from(value) }]);
      follower.ownBatch([value], baseOffset);
      follower.own.settled(id);
    }
    await store.append('s', [{ value: Buffer.from('control') }, { value: Buffer.from('theirs') }]);
    await until(() => frontier() === 5);
    assert.deepEqual(dispatched, ['own first@1', 'own second@2', 'other theirs@4']);
    assert.equal(follower.heldBatches, 0);
    await follower.stop();
  });

  it('an own batch above another broker\'s record waits for it: offset order, each once', async () => {
    const { store, follower, dispatched, frontier } = await harness();
    await store.append('s', [{ value: Buffer.from('theirs') }]);
    const id = follower.own.began();
    const { baseOffset } = await store.append('s', [{ value: Buffer.from('mine-a') }, { value: Buffer.from('mine-b') }]);
    // Acknowledged before the tail has read anything.
    follower.ownBatch(['mine-a', 'mine-b'], baseOffset);
    follower.own.settled(id);
    await until(() => frontier() === 3);
    assert.deepEqual(dispatched, ['other theirs@0', 'own mine-a@1', 'own mine-b@2']);
    assert.equal(follower.heldBatches, 0);
    await follower.stop();
  });
});
