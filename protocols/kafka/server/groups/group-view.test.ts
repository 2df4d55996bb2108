// The operators' view of a group, on a real GroupCoordinator driven by hand: the summary
// (state, protocol, generation, member count), the consumer assignment as kafkajs encodes it,
// and the lag per partition = log end − committed, with its edge cases (no commit yet, a topic
// gone, a commit past the end, a negative commit).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { DEFAULT_GROUP_LIMITS, GroupCoordinator, type CommittedOffset, type JoinResult } from './coordinator.js';
import { decodeConsumerAssignment, groupDetail, memberViews } from './group-view.js';

const { AssignerProtocol } = kafkajs;

function commit(topic: string, partition: number, offset: bigint): CommittedOffset {
  return { topic, partition, offset, leaderEpoch: -1, metadata: null, commitTimestamp: 0 };
}

test('the consumer assignment kafkajs encodes decodes to its topics and partitions', () => {
  const bytes = AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: { orders: [0, 2], audit: [1] }, userData: Buffer.from('x') });
  assert.deepEqual(decodeConsumerAssignment(bytes), [{ topic: 'orders', partitions: [0, 2] }, { topic: 'audit', partitions: [1] }]);
  assert.deepEqual(decodeConsumerAssignment(Buffer.alloc(0)), []);
  assert.equal(decodeConsumerAssignment(Buffer.from([0, 0, 0x7f, 0xff, 0xff, 0xff])), undefined, 'a count past the bytes is no assignment');
  assert.equal(decodeConsumerAssignment(Buffer.from('not an assignment at all')), undefined);
});

test('a stable group: summary, members with assignments, lag per partition and in total', () => {
  const groups = new GroupCoordinator((clientId) => `${clientId}-1`, { ...DEFAULT_GROUP_LIMITS, initialRebalanceDelayMs: 0 });
  let joined: JoinResult | undefined;
  groups.join({
    groupId: 'g', memberId: '', groupInstanceId: null, clientId: 'app', clientHost: '/127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000,
    protocolType: 'consumer', protocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from('m') }], requireKnownMemberId: false,
  }, 0, (result) => { joined = result; });
  groups.tick(0);
  assert.ok(joined !== undefined && joined.errorCode === 0, 'joined');
  const assignment = AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: { orders: [0, 1, 2] }, userData: Buffer.alloc(0) });
  groups.sync({ groupId: 'g', generationId: joined.generationId, memberId: joined.memberId, groupInstanceId: null, protocolType: 'consumer', protocolName: 'RoundRobinAssigner', assignments: [{ memberId: joined.memberId, assignment }] }, 0, () => undefined);
  groups.applyOffsets('g', [commit('orders', 0, 4n), commit('orders', 1, 10n), commit('gone', 0, 3n)]);

  assert.deepEqual(groups.summaries(), [{ groupId: 'g', groupState: 'Stable', protocolType: 'consumer', protocolName: 'RoundRobinAssigner', generation: 1, memberCount: 1 }]);
  const members = memberViews(groups.describe('g'));
  assert.deepEqual(members, [{ memberId: 'app-1', groupInstanceId: null, clientId: 'app', clientHost: '/127.0.0.1', assignment: [{ topic: 'orders', partitions: [0, 1, 2] }] }]);

  const ends: Record<string, number> = { 'orders/0': 10, 'orders/1': 7, 'orders/2': 5 };
  const detail = groupDetail(groups.summary('g')!, members, groups.offsets('g'), (topic, partition) => ends[`${topic}/${partition}`]);
  assert.deepEqual(detail.partitions.map((p) => [p.topic, p.partition, p.committedOffset, p.logEndOffset, p.lag, p.memberId]), [
    ['gone', 0, 3, null, null, null], // topic deleted: no log end, no lag
    ['orders', 0, 4, 10, 6, 'app-1'],
    ['orders', 1, 10, 7, 0, 'app-1'], // committed past the end (log truncated): no negative lag
    ['orders', 2, null, 5, null, 'app-1'], // assigned, nothing committed yet
  ]);
  assert.equal(detail.totalLag, 6);
  assert.equal(detail.memberCount, 1);
});

test('a group with committed offsets only (no members): Empty, lag from the commits; a negative commit is no position', () => {
  const groups = new GroupCoordinator(() => 'unused', DEFAULT_GROUP_LIMITS);
  groups.applyOffsets('offline', [commit('t', 0, 2n), commit('t', 1, -1n)]);
  const detail = groupDetail(groups.summary('offline')!, memberViews(groups.describe('offline')), groups.offsets('offline'), () => 9);
  assert.equal(detail.groupState, 'Empty');
  assert.deepEqual(detail.members, []);
  assert.deepEqual(detail.partitions.map((p) => [p.partition, p.committedOffset, p.lag]), [[0, 2, 7], [1, null, null]]);
  assert.equal(detail.totalLag, 7);
  assert.equal(groups.summary('nobody'), undefined);
});
