// Raft's Figure 8 in this protocol's terms, driven through the cores by hand: why the HW may
// pass an older epoch's record only through a record of the leader's own epoch. The simulator
// meets this schedule rarely (it needs a deposed leader's newer-epoch record to win a later
// election), so the rule is pinned here, against the election rule it protects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseLeader } from './election.js';
import { EpochHistory } from './epoch-history.js';
import { ReplicaFollower } from './follower.js';
import { ReplicaLeader } from './leader.js';
import type { BatchExtent, FetchRequest } from './messages.js';

interface Entry extends BatchExtent {
  value: string;
}
const entry = (baseOffset: number, epoch: number, value: string): Entry => ({ baseOffset, count: 1, epoch, value });
const historyOf = (log: readonly Entry[]): EpochHistory => {
  const history = new EpochHistory();
  for (const batch of log) history.assign(batch.epoch, batch.baseOffset);
  return history;
};
const lastEpoch = (log: readonly Entry[]): number => log.at(-1)?.epoch ?? -1;

/**
 * Five replicas after epochs 1 to 3: a led epoch 2 and wrote r at offset 1, which only b
 * copied; e then led epoch 3 (elected by c, d, e, which lack r), wrote its epoch-start batch at
 * offset 1 and was deposed before anyone copied it. All of it is durable.
 */
function figure8(): Record<'a' | 'b' | 'c' | 'd' | 'e', Entry[]> {
  const x = entry(0, 1, 'x');
  return { a: [x, entry(1, 2, 'r')], b: [x, entry(1, 2, 'r')], c: [x], d: [x], e: [x, entry(1, 3, 'start-3')] };
}

/** a leads epoch 4 (elected by a, b, c), appends its epoch-start batch, and c copies only r. */
function epoch4(commitOldEpochByCount: boolean): { leader: ReplicaLeader; logs: ReturnType<typeof figure8> } {
  const logs = figure8();
  const chosen = chooseLeader(['a', 'b', 'c'].map((node) => ({ node, lastEpoch: lastEpoch(logs[node as 'a']), durableEnd: logs[node as 'a'].length })));
  assert.equal(chosen?.node, 'a');
  logs.a.push(entry(2, 4, 'start-4'));
  const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c', 'd', 'e'], epoch: 4, epochStartOffset: 2, highWatermark: 1, commitOldEpochByCount });
  leader.onLocalLog(3, 3);

  // c's truncation and first fetch, through the follower core.
  const follower = new ReplicaFollower<Entry>({ self: 'c', leader: 'a', epoch: 4, retryAfter: 50 }, 0);
  const cLog = () => ({ logEnd: logs.c.length, durableEnd: logs.c.length, history: historyOf(logs.c) });
  const [query] = follower.start(cLog(), 0);
  if (query?.kind !== 'send' || query.message.type !== 'epoch-end-query') assert.fail(`c should ask where its last epoch ends, got ${JSON.stringify(query)}`);
  assert.deepEqual(query.message, { type: 'epoch-end-query', from: 'c', leaderEpoch: 4, epoch: 1 });
  const reply = leader.onEpochEndQuery(query.message, historyOf(logs.a));
  const [fetch] = follower.onMessage(reply, cLog(), 1);
  assert.deepEqual(fetch?.kind === 'send' && fetch.message, { type: 'fetch', from: 'c', leaderEpoch: 4, fetchOffset: 1, durableOffset: 1 });
  // The answer carries one batch (a small fetch size): r, not a's epoch-start batch.
  const appended = follower.onMessage({ type: 'fetch-response', from: 'a', leaderEpoch: 4, fetchOffset: 1, batches: [logs.a[1] as Entry], highWatermark: leader.highWatermark }, cLog(), 2);
  assert.equal(appended[0]?.kind, 'append');
  logs.c.push(logs.a[1] as Entry);
  leader.onFetch({ type: 'fetch', from: 'b', leaderEpoch: 4, fetchOffset: 2, durableOffset: 2 } satisfies FetchRequest);
  leader.onFetch({ type: 'fetch', from: 'c', leaderEpoch: 4, fetchOffset: 2, durableOffset: 2 } satisfies FetchRequest);
  return { leader, logs };
}

describe('Figure 8: the HW passes older epochs only through the current one', () => {
  it('with the rule, r held by a, b, c is not committed while only they hold it', () => {
    const { leader } = epoch4(false);
    assert.equal(leader.highWatermark, 1);
  });

  it('without it, r is committed, and the election rule then rightly picks e, which lacks it', () => {
    const { leader, logs } = epoch4(true);
    assert.equal(leader.highWatermark, 2, 'the broken variant commits r by count');
    // a is deposed before anyone copies start-4; c, d and e answer the election of epoch 5.
    const chosen = chooseLeader(['c', 'd', 'e'].map((node) => ({ node, lastEpoch: lastEpoch(logs[node as 'c']), durableEnd: logs[node as 'c'].length })));
    assert.equal(chosen?.node, 'e');
    assert.notEqual(logs.e[1]?.value, 'r', 'e would make every follower truncate r, a committed record');
  });
});
