// The merge of own and other brokers' records into one dispatch order (data-follower.ts), over a
// memory store whose tail sees a record as soon as it is appended, before its appender hears back:
// the race a real journal makes rare, made certain here.
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/testing.js';
import { DataFollower } from './data-follower.js';

async function harness(): Promise<{ store: MemoryShardStore; follower: DataFollower<string>; dispatched: string[]; frontier: () => number }> {
  const store = new MemoryShardStore();
  await store.create('s');
  const dispatched: string[] = [];
  let frontier = 0;
  const follower = new DataFollower<string>({
    store,
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
