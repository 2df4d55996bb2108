// Goal: /readyz's placement check says ready only for a voter of the group that knows a leader
// and has applied up to the leader's commit index (within the catch-up wait), and says why not
// otherwise. Method: a scripted PlacementAdmin (status and members as given), a sleep that only
// counts, so every branch is decided without timing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlacementAdmin, PlacementMember, PlacementStatus } from './placement-admin.js';
import { placementNotReady } from './placement-readiness.js';

function status(fields: Partial<PlacementStatus>): PlacementStatus {
  return { id: 2, role: 'follower', term: 3, leader: 1, leaderAddress: '127.0.0.1:1228', commitIndex: 10, appliedIndex: 10, revision: 10, voters: [1, 2, 3], clusterId: 'shardline', ...fields };
}

/** A voter whose applied index follows `applied` (one value per status() call, the last repeated). */
function fakeAdmin(self: PlacementStatus, members: PlacementMember[], applied: number[] = [self.appliedIndex]): PlacementAdmin & { membersCalls: number } {
  let calls = 0;
  const admin = {
    membersCalls: 0,
    status: () => ({ ...self, appliedIndex: applied[Math.min(calls++, applied.length - 1)] as number }),
    members: () => {
      admin.membersCalls += 1;
      return Promise.resolve(members);
    },
    addMember: () => Promise.reject(new Error('unused')),
    removeMember: () => Promise.reject(new Error('unused')),
    transferLeader: () => Promise.reject(new Error('unused')),
    leaderChanges: () => 0,
    onProposalApplied: () => () => undefined,
    shards: () => Promise.reject(new Error('not used by readiness')),
    beginReassign: () => Promise.reject(new Error('not used by readiness')),
    settings: () => Promise.reject(new Error('not used by readiness')),
    setSetting: () => Promise.reject(new Error('not used by readiness')),
    close: () => undefined,
  };
  return admin;
}

const leaderAt = (commitIndex: number): PlacementMember => ({ id: 1, address: '127.0.0.1:1228', status: status({ id: 1, role: 'leader', commitIndex, appliedIndex: commitIndex }), error: null });

function timing(): { catchUpMs: number; pollMs: number; sleep: (ms: number) => Promise<void>; slept: number } {
  const t = { catchUpMs: 100, pollMs: 20, slept: 0, sleep: (ms: number) => { t.slept += ms; return Promise.resolve(); } };
  return t;
}

describe('placement readiness', () => {
  test('a follower that has applied the leader\'s commit index is ready', async () => {
    assert.equal(await placementNotReady(fakeAdmin(status({ appliedIndex: 12 }), [leaderAt(12)]), timing()), null);
  });

  test('the leader is ready on its own commit index without asking anyone', async () => {
    const admin = fakeAdmin(status({ id: 1, leader: 1, role: 'leader', commitIndex: 40, appliedIndex: 40 }), []);
    assert.equal(await placementNotReady(admin, timing()), null);
    assert.equal(admin.membersCalls, 0);
  });

  test('a follower still applying in-flight entries is ready once it reaches the index, within the wait', async () => {
    const t = timing();
    assert.equal(await placementNotReady(fakeAdmin(status({}), [leaderAt(15)], [10, 12, 14, 15]), t), null);
    assert.equal(t.slept, 2 * t.pollMs, "it polled until the index was reached, no longer");
  });

  test('a follower that stays behind is not ready, with both indexes', async () => {
    const t = timing();
    assert.equal(await placementNotReady(fakeAdmin(status({}), [leaderAt(500)], [10, 20, 30]), t), "placement applied index 30 is behind the leader's commit index 500");
    assert.ok(t.slept >= t.catchUpMs, 'it waited the catch-up time first');
  });

  test('no leader known: not ready (no quorum)', async () => {
    assert.match(await placementNotReady(fakeAdmin(status({ leader: 0, role: 'preCandidate' }), []), timing()) ?? '', /no placement leader is known/);
  });

  test('not in the voter set (removed): not ready', async () => {
    assert.equal(await placementNotReady(fakeAdmin(status({ voters: [1, 3] }), [leaderAt(10)]), timing()), 'node 2 is not a voter of the group (voters 1, 3)');
  });

  test('a leader that does not answer: not ready, with the error', async () => {
    const silent: PlacementMember = { id: 1, address: '127.0.0.1:1228', status: null, error: 'deadline exceeded' };
    assert.equal(await placementNotReady(fakeAdmin(status({}), [silent]), timing()), 'placement leader 1 does not answer (deadline exceeded)');
    assert.equal(await placementNotReady(fakeAdmin(status({}), []), timing()), 'placement leader 1 does not answer');
  });
});
