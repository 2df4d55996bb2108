// ShardAppender's pipelining (issue 16): with a store whose appends take offsets in call order,
// more appends start while the first is in flight, and completions are handled in the order
// the appends were made even when a later one settles first.
// Method: a store whose appends stay pending until the test settles them, one by one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AppendResult, RecordInput } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { ShardAppender } from './shard-appender.js';

interface Call {
  records: readonly RecordInput[];
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/** Only append() is used by ShardAppender; each call waits for the test. */
function heldStore(orderedAppends: boolean): { store: ShardStore; calls: Call[] } {
  const calls: Call[] = [];
  const store = {
    orderedAppends,
    append: (_name: string, records: readonly RecordInput[]) => new Promise<AppendResult>((resolve, reject) => calls.push({ records, resolve, reject })),
  } as unknown as ShardStore;
  return { store, calls };
}

function record(text: string): RecordInput {
  return { value: Buffer.from(text) };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function result(baseOffset: number, count: number): AppendResult {
  return { baseOffset, lastOffset: baseOffset + count - 1 } as AppendResult;
}

describe('ShardAppender', () => {
  test('pipelined: appends start while earlier ones are in flight, up to 4; then what waits is batched', async () => {
    const { store, calls } = heldStore(true);
    const appender = new ShardAppender<string, number>(store, 's', (_item, offset) => offset, undefined, undefined, undefined, true);
    const added: Array<Promise<number>> = [];
    for (const text of ['a', 'b', 'c', 'd']) {
      added.push(appender.add(record(text), text));
      await settle();
    }
    assert.equal(calls.length, 4, 'each went out with the earlier ones in flight');
    added.push(appender.add(record('e'), 'e'), appender.add(record('f'), 'f'));
    await settle();
    assert.equal(calls.length, 4, 'four in flight at most');
    (calls[0] as Call).resolve(result(0, 1));
    await settle();
    assert.equal(calls.length, 5);
    assert.equal((calls[4] as Call).records.length, 2, 'what waited went out as one batch');
    for (let i = 1; i < 4; i += 1) (calls[i] as Call).resolve(result(i, 1));
    (calls[4] as Call).resolve(result(4, 2));
    assert.deepEqual(await Promise.all(added), [0, 1, 2, 3, 4, 5]);
    await appender.drained();
    assert.equal(appender.idle, true);
  });

  test('pipelined: the records added in one turn behind an append in flight go out as one batch', async () => {
    const { store, calls } = heldStore(true);
    const appender = new ShardAppender<string, number>(store, 's', (_item, offset) => offset, undefined, undefined, undefined, true);
    const added = ['a', 'b', 'c'].map((text) => appender.add(record(text), text));
    assert.equal(calls.length, 1, 'the first goes at once');
    await settle();
    assert.equal(calls.length, 2);
    assert.equal((calls[1] as Call).records.length, 2, 'the other two together, while the first is in flight');
    (calls[0] as Call).resolve(result(0, 1));
    (calls[1] as Call).resolve(result(1, 2));
    assert.deepEqual(await Promise.all(added), [0, 1, 2]);
  });

  test('pipelined: completions are handled in the order made, whatever order they settle in', async () => {
    const { store, calls } = heldStore(true);
    const seen: string[] = [];
    const batches: number[] = [];
    const appender = new ShardAppender<string, void>(
      store,
      's',
      (item) => {
        seen.push(item);
      },
      (_items, baseOffset) => batches.push(baseOffset),
      undefined,
      undefined,
      true,
    );
    const first = appender.add(record('a'), 'a');
    await settle();
    const second = appender.add(record('b'), 'b');
    await settle();
    (calls[1] as Call).resolve(result(1, 1));
    await settle();
    assert.deepEqual(seen, [], 'the later append waits for the earlier one');
    (calls[0] as Call).resolve(result(0, 1));
    await Promise.all([first, second]);
    assert.deepEqual(seen, ['a', 'b']);
    assert.deepEqual(batches, [0, 1]);
  });

  test('pipelined: a failed append fails only its own records; the next one is still handled after it', async () => {
    const { store, calls } = heldStore(true);
    const seen: string[] = [];
    const appender = new ShardAppender<string, void>(store, 's', (item) => void seen.push(item), undefined, undefined, undefined, true);
    const first = appender.add(record('a'), 'a');
    const second = appender.add(record('b'), 'b');
    await settle();
    (calls[1] as Call).resolve(result(0, 1));
    (calls[0] as Call).reject(new Error('refused'));
    await assert.rejects(first, /refused/);
    await second;
    assert.deepEqual(seen, ['b']);
  });

  test('a store without ordered appends gets one append at a time', async () => {
    const { store, calls } = heldStore(false);
    const appender = new ShardAppender<string, number>(store, 's', (_item, offset) => offset, undefined, undefined, undefined, false);
    const first = appender.add(record('a'), 'a');
    const second = appender.add(record('b'), 'b');
    assert.equal(calls.length, 1);
    (calls[0] as Call).resolve(result(0, 1));
    await settle();
    assert.equal(calls.length, 2);
    (calls[1] as Call).resolve(result(1, 1));
    assert.deepEqual(await Promise.all([first, second]), [0, 1]);
  });
});
