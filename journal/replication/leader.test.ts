import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EpochHistory } from './epoch-history.js';
import { ReplicaLeader } from './leader.js';
import type { FetchRequest } from './messages.js';

const fetch = (from: string, fetchOffset: number, durableOffset: number, leaderEpoch = 5): FetchRequest => ({ type: 'fetch', from, leaderEpoch, fetchOffset, durableOffset });

describe('ReplicaLeader', () => {
  it('counts durable offsets, not fetched ones, towards the high watermark', () => {
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 0, highWatermark: 0 });
    leader.onLocalLog(10, 10);
    leader.onFetch(fetch('b', 10, 0));
    leader.onFetch(fetch('c', 10, 0));
    assert.equal(leader.highWatermark, 0, 'fetched but not durable anywhere but the leader');
    const { decision } = leader.onFetch(fetch('b', 10, 7));
    assert.equal(leader.highWatermark, 7);
    assert.deepEqual(decision, { kind: 'send', fromOffset: 10, highWatermark: 7 });
  });

  it('commits nothing of an older epoch until a record of its own epoch is majority-durable', () => {
    // Offsets 0..9 are from older epochs; this leader's epoch starts at 10.
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 10, highWatermark: 2 });
    leader.onLocalLog(11, 11);
    leader.onFetch(fetch('b', 10, 10));
    assert.equal(leader.highWatermark, 2, 'old-epoch records held by a majority are not committed by count');
    leader.onFetch(fetch('b', 11, 11));
    assert.equal(leader.highWatermark, 11);
  });

  it('serves learners and keeps their progress, but never counts them towards the high watermark', () => {
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 0, highWatermark: 0 });
    leader.onLocalLog(10, 10);
    assert.equal(leader.onFetch(fetch('d', 0, 0)).decision.kind, 'reply', 'not a learner yet: refused');
    leader.setLearners(['d']);
    assert.deepEqual(leader.followerProgress('d'), { fetched: -1, durable: -1 }, 'not heard from');
    assert.deepEqual(leader.onFetch(fetch('d', 10, 10)).decision, { kind: 'send', fromOffset: 10, highWatermark: 0 });
    assert.equal(leader.highWatermark, 0, 'the leader and a learner are not a majority of a, b, c');
    assert.deepEqual(leader.followerProgress('d'), { fetched: 10, durable: 10 });
    leader.onFetch(fetch('b', 10, 6));
    assert.equal(leader.highWatermark, 6);
    leader.setLearners([]);
    assert.equal(leader.followerProgress('d'), undefined);
  });

  it('never moves the high watermark back on reordered reports', () => {
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 0, highWatermark: 0 });
    leader.onLocalLog(8, 8);
    leader.onFetch(fetch('b', 8, 8));
    leader.onFetch(fetch('b', 3, 3));
    assert.equal(leader.highWatermark, 8);
    assert.equal(leader.followerProgress('b')?.durable, 8);
  });

  it('is fenced by a newer epoch and refuses a stale one', () => {
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 0, highWatermark: 0 });
    leader.onLocalLog(4, 4);
    const stale = leader.onFetch(fetch('b', 4, 4, 4));
    assert.equal(stale.decision.kind, 'reply');
    assert.equal(leader.highWatermark, 0, 'a stale-epoch report does not count');
    assert.equal(leader.acceptsAppends, true);
    leader.onFetch(fetch('c', 4, 4, 6));
    assert.equal(leader.acceptsAppends, false);
    assert.equal(leader.fencedByEpoch, 6);
  });

  it('answers the epoch-end query from its history and log end', () => {
    const leader = new ReplicaLeader({ self: 'a', replicas: ['a', 'b', 'c'], epoch: 5, epochStartOffset: 12, highWatermark: 0 });
    leader.onLocalLog(15, 15);
    const history = EpochHistory.from([{ epoch: 1, startOffset: 0 }, { epoch: 3, startOffset: 7 }, { epoch: 5, startOffset: 12 }]);
    assert.deepEqual(leader.onEpochEndQuery({ type: 'epoch-end-query', from: 'b', leaderEpoch: 5, epoch: 4 }, history), { type: 'epoch-end-reply', from: 'a', leaderEpoch: 5, askedEpoch: 4, epoch: 3, endOffset: 12 });
    assert.deepEqual(leader.onEpochEndQuery({ type: 'epoch-end-query', from: 'b', leaderEpoch: 5, epoch: 5 }, history), { type: 'epoch-end-reply', from: 'a', leaderEpoch: 5, askedEpoch: 5, epoch: 5, endOffset: 15 });
  });
});
