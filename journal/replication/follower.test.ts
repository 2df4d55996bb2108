import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EpochHistory } from './epoch-history.js';
import { ReplicaFollower, type FollowerAction } from './follower.js';
import type { BatchExtent } from './messages.js';

const options = { self: 'b', leader: 'a', epoch: 6, retryAfter: 50 };

describe('ReplicaFollower', () => {
  it('asks again when the leader never had its last epoch, and cuts where the logs part (KIP-279)', () => {
    // Follower: epoch 1 at 0..9, epoch 4 at 10..11. Leader: epoch 1 at 0..5, epoch 3 from 6.
    const history = EpochHistory.from([{ epoch: 1, startOffset: 0 }, { epoch: 4, startOffset: 10 }]);
    const follower = new ReplicaFollower<BatchExtent>(options, 0);
    const log = { logEnd: 12, durableEnd: 12, history };
    assert.deepEqual(follower.start(log, 0), [{ kind: 'send', to: 'a', message: { type: 'epoch-end-query', from: 'b', leaderEpoch: 6, epoch: 4 } }]);
    // The leader's largest epoch <= 4 is 3, ending at its log end 20.
    const first = follower.onMessage({ type: 'epoch-end-reply', from: 'a', leaderEpoch: 6, askedEpoch: 4, epoch: 3, endOffset: 20 }, log, 1);
    assert.deepEqual(first, [
      { kind: 'truncate', offset: 10 },
      { kind: 'send', to: 'a', message: { type: 'epoch-end-query', from: 'b', leaderEpoch: 6, epoch: 1 } },
    ]);
    history.truncateFrom(10);
    const second = follower.onMessage({ type: 'epoch-end-reply', from: 'a', leaderEpoch: 6, askedEpoch: 1, epoch: 1, endOffset: 6 }, { logEnd: 10, durableEnd: 10, history }, 2);
    assert.deepEqual(second, [
      { kind: 'truncate', offset: 6 },
      { kind: 'send', to: 'a', message: { type: 'fetch', from: 'b', leaderEpoch: 6, fetchOffset: 6, durableOffset: 6 } },
    ]);
  });

  it('appends batches at its end, learns the HW no further than its log, and ignores stale or misplaced answers', () => {
    const follower = new ReplicaFollower<BatchExtent>(options, 0);
    const log = { logEnd: 0, durableEnd: 0, history: new EpochHistory() };
    follower.start(log, 0);
    const batches = [{ baseOffset: 0, count: 3, epoch: 6 }];
    assert.deepEqual(follower.onMessage({ type: 'fetch-response', from: 'a', leaderEpoch: 5, fetchOffset: 0, batches, highWatermark: 3 }, log, 1), [], 'an older epoch');
    assert.deepEqual(follower.onMessage({ type: 'fetch-response', from: 'a', leaderEpoch: 6, fetchOffset: 2, batches, highWatermark: 3 }, log, 1), [], 'not at our end');
    const actions: FollowerAction<BatchExtent>[] = follower.onMessage({ type: 'fetch-response', from: 'a', leaderEpoch: 6, fetchOffset: 0, batches, highWatermark: 9 }, log, 1);
    assert.deepEqual(actions[0], { kind: 'append', batches });
    assert.deepEqual(actions[1], { kind: 'send', to: 'a', message: { type: 'fetch', from: 'b', leaderEpoch: 6, fetchOffset: 3, durableOffset: 0 } });
    assert.equal(follower.highWatermark, 3);
  });
});
