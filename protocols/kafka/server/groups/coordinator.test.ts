// The group coordinator alone, time passed by hand: joins, member ids, generations, leader and
// protocol choice, sync, heartbeat and leave errors, session expiry, static members, bounds,
// commit checks; then a fast-check property over random request sequences and time steps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { KafkaErrorCode } from '../../codec/index.js';
import { numRuns, replay } from '../../../../tests/support/fast-check.js';
import { DEFAULT_GROUP_LIMITS, GroupCoordinator, type GroupLimits, type JoinRequest, type JoinResult, type SyncResult } from './coordinator.js';

const E = KafkaErrorCode;

function coordinator(limits: Partial<GroupLimits> = {}): GroupCoordinator {
  let next = 0;
  return new GroupCoordinator((clientId) => `${clientId}-${(next += 1)}`, { ...DEFAULT_GROUP_LIMITS, initialRebalanceDelayMs: 0, ...limits });
}

function joinRequest(overrides: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: 'g', memberId: '', groupInstanceId: null, clientId: 'c', clientHost: '127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 20_000,
    protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('m') }], requireKnownMemberId: false, ...overrides,
  };
}

/** A join whose answer may come later: `result` is set when it does. */
function join(groups: GroupCoordinator, now: number, overrides: Partial<JoinRequest> = {}): { result: JoinResult | undefined; calls: number } {
  const outcome: { result: JoinResult | undefined; calls: number } = { result: undefined, calls: 0 };
  groups.join(joinRequest(overrides), now, (result) => {
    outcome.result = result;
    outcome.calls += 1;
  });
  return outcome;
}

/** Without narrowing `result` for what follows (it is set by a later call). */
function answered(outcome: { result: unknown }): boolean {
  return outcome.result !== undefined;
}

function sync(groups: GroupCoordinator, now: number, memberId: string, generationId: number, assignments: Array<{ memberId: string; assignment: Buffer }> = []): { result: SyncResult | undefined } {
  const outcome: { result: SyncResult | undefined } = { result: undefined };
  groups.sync({ groupId: 'g', generationId, memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments }, now, (result) => {
    outcome.result = result;
  });
  return outcome;
}

test('JoinGroup v4+: MEMBER_ID_REQUIRED hands out an id; the rejoin with it forms generation 1 with the member as leader', () => {
  const groups = coordinator();
  const first = join(groups, 0, { requireKnownMemberId: true });
  assert.equal(first.result?.errorCode, E.MEMBER_ID_REQUIRED);
  const id = first.result.memberId;
  assert.equal(id, 'c-1');
  const second = join(groups, 1, { memberId: id, requireKnownMemberId: true });
  assert.deepEqual({ ...second.result, members: second.result?.members.map((m) => m.memberId) }, { errorCode: 0, generationId: 1, protocolType: 'consumer', protocolName: 'range', leader: id, memberId: id, members: [id] });
  // An id nobody handed out is refused.
  assert.equal(join(groups, 2, { memberId: 'forged' }).result?.errorCode, E.UNKNOWN_MEMBER_ID);
  assert.equal(join(groups, 2, { groupId: 'other', memberId: 'forged' }).result?.errorCode, E.UNKNOWN_MEMBER_ID);
});

test('bad joins: empty group id, session timeout out of bounds, no protocols, a protocol type or protocol the group cannot share', () => {
  const groups = coordinator();
  assert.equal(join(groups, 0, { groupId: '' }).result?.errorCode, E.INVALID_GROUP_ID);
  assert.equal(join(groups, 0, { sessionTimeoutMs: 5999 }).result?.errorCode, E.INVALID_SESSION_TIMEOUT);
  assert.equal(join(groups, 0, { sessionTimeoutMs: 1_800_001 }).result?.errorCode, E.INVALID_SESSION_TIMEOUT);
  assert.equal(join(groups, 0, { protocols: [] }).result?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  assert.equal(groups.groupCount, 0, 'a refused join leaves no group behind');
  assert.equal(join(groups, 0).result?.errorCode, 0);
  assert.equal(join(groups, 1, { protocolType: 'connect' }).result?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  assert.equal(join(groups, 1, { protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] }).result?.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
});

test('a second member starts a rebalance: the first learns it by heartbeat, both rejoin, the leader assigns, each gets its own assignment', () => {
  const groups = coordinator();
  const a = join(groups, 0).result!;
  assert.equal(sync(groups, 0, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('all') }]).result?.assignment.toString(), 'all');
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, 10), 0);
  const b = join(groups, 100, { clientId: 'd', protocols: [{ name: 'roundrobin', metadata: Buffer.from('b') }, { name: 'range', metadata: Buffer.from('b2') }] });
  assert.equal(answered(b), false, 'the new member waits for the others to rejoin');
  assert.equal(groups.describe('g').groupState, 'PreparingRebalance');
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, 200), E.REBALANCE_IN_PROGRESS);
  const a2 = join(groups, 300, { memberId: a.memberId });
  assert.equal(a2.result?.generationId, 2);
  assert.equal(b.result?.generationId, 2);
  assert.equal(a2.result.leader, a.memberId, 'the leader stays');
  assert.equal(a2.result.protocolName, 'range', 'the only protocol both support');
  assert.deepEqual(a2.result.members.map((m) => [m.memberId, m.metadata.toString()]), [[a.memberId, 'm'], ['d-2', 'b2']]);
  assert.deepEqual(b.result.members, [], 'followers get no member list');
  // The follower syncs first and waits; the leader's sync answers both.
  const bSync = sync(groups, 400, 'd-2', 2);
  assert.equal(answered(bSync), false);
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 2, memberId: 'd-2', groupInstanceId: null }, 400), 0, 'a heartbeat while the leader assigns is fine');
  const aSync = sync(groups, 500, a.memberId, 2, [{ memberId: a.memberId, assignment: Buffer.from('p0') }, { memberId: 'd-2', assignment: Buffer.from('p1') }, { memberId: 'ghost', assignment: Buffer.from('x') }]);
  assert.equal(aSync.result?.assignment.toString(), 'p0');
  assert.equal(bSync.result?.assignment.toString(), 'p1');
  assert.equal(groups.describe('g').groupState, 'Stable');
  // Old generation, unknown member.
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, 600), E.ILLEGAL_GENERATION);
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 2, memberId: 'nobody', groupInstanceId: null }, 600), E.UNKNOWN_MEMBER_ID);
  assert.equal(groups.heartbeat({ groupId: 'nope', generationId: 2, memberId: a.memberId, groupInstanceId: null }, 600), E.UNKNOWN_MEMBER_ID);
  assert.equal(sync(groups, 600, a.memberId, 1).result?.errorCode, E.ILLEGAL_GENERATION);
  // A sync once Stable gets the member's assignment again.
  assert.equal(sync(groups, 600, 'd-2', 2).result?.assignment.toString(), 'p1');
});

test('a member that leaves (or whose session lapses) hands its partitions over by a rebalance; the last one leaving empties the group', () => {
  const groups = coordinator();
  const a = join(groups, 0).result!;
  sync(groups, 0, a.memberId, 1, []);
  const b = join(groups, 10, { clientId: 'd' });
  const a2 = join(groups, 20, { memberId: a.memberId });
  sync(groups, 30, b.result!.memberId, 2);
  sync(groups, 30, a.memberId, 2, []);
  assert.equal(a2.result?.generationId, 2);
  const left = groups.leave('g', [{ memberId: a.memberId, groupInstanceId: null }, { memberId: 'ghost', groupInstanceId: null }], 40);
  assert.deepEqual(left.members.map((m) => m.errorCode), [0, E.UNKNOWN_MEMBER_ID]);
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 2, memberId: b.result!.memberId, groupInstanceId: null }, 50), E.REBALANCE_IN_PROGRESS);
  const b3 = join(groups, 60, { clientId: 'd', memberId: b.result!.memberId });
  assert.equal(b3.result?.generationId, 3);
  assert.equal(b3.result.leader, b.result!.memberId, 'the remaining member leads');
  sync(groups, 60, b.result!.memberId, 3, []);
  // No heartbeat for the session timeout: evicted at tick, the group is Empty and (no offsets) gone.
  groups.tick(60 + 9_999);
  assert.equal(groups.describe('g').groupState, 'Stable');
  assert.equal(groups.nextDeadline(), 60 + 10_000);
  groups.tick(60 + 10_000);
  assert.equal(groups.describe('g').groupState, 'Dead');
  assert.equal(groups.groupCount, 0);
});

test('a member that does not rejoin by the rebalance timeout is dropped; the others get their generation', () => {
  const groups = coordinator();
  const a = join(groups, 0).result!;
  sync(groups, 0, a.memberId, 1, []);
  const b = join(groups, 1000, { clientId: 'd' });
  // a keeps heartbeating (so its session holds) but never rejoins.
  for (let t = 2000; t < 21_000; t += 3000) assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, t), E.REBALANCE_IN_PROGRESS);
  groups.tick(1000 + 19_999);
  assert.equal(answered(b), false);
  groups.tick(1000 + 20_000);
  assert.equal(b.result?.generationId, 2);
  assert.deepEqual(b.result.members.map((m) => m.memberId), [b.result.memberId]);
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, 21_001), E.UNKNOWN_MEMBER_ID);
});

test('a new empty group waits the initial rebalance delay for more members before its first generation', () => {
  const groups = coordinator({ initialRebalanceDelayMs: 3000 });
  const a = join(groups, 0);
  const b = join(groups, 1000, { clientId: 'd' });
  assert.equal(answered(a), false);
  assert.equal(groups.nextDeadline(), 3000);
  groups.tick(3000);
  assert.equal(a.result?.generationId, 1);
  assert.equal(b.result?.generationId, 1);
  assert.equal(a.result.members.length, 2);
});

test('a sync still waiting when a rebalance starts gets REBALANCE_IN_PROGRESS; a leaving member waiting on a join gets UNKNOWN_MEMBER_ID', () => {
  const groups = coordinator();
  const a = join(groups, 0).result!;
  const b = join(groups, 0, { clientId: 'd' });
  assert.equal(answered(b), false);
  const a2 = join(groups, 1, { memberId: a.memberId });
  const bId = b.result!.memberId;
  const bSync = sync(groups, 2, bId, a2.result!.generationId);
  join(groups, 3, { clientId: 'e' });
  assert.equal(bSync.result?.errorCode, E.REBALANCE_IN_PROGRESS);
  const bRejoin = join(groups, 4, { clientId: 'd', memberId: bId });
  assert.equal(answered(bRejoin), false);
  groups.leave('g', [{ memberId: bId, groupInstanceId: null }], 5);
  assert.equal(bRejoin.result?.errorCode, E.UNKNOWN_MEMBER_ID);
  assert.equal(bRejoin.calls, 1);
});

test('static membership: a restarted instance takes its old place without a rebalance; the old member id is fenced', () => {
  const groups = coordinator();
  const a = join(groups, 0, { groupInstanceId: 'i-a', requireKnownMemberId: true }).result!;
  assert.equal(a.errorCode, 0, 'static members skip MEMBER_ID_REQUIRED');
  const b = join(groups, 0, { clientId: 'd', groupInstanceId: 'i-b' });
  const a2 = join(groups, 1, { memberId: a.memberId, groupInstanceId: 'i-a' }).result!;
  sync(groups, 2, b.result!.memberId, 2);
  sync(groups, 2, a.memberId, 2, [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: b.result!.memberId, assignment: Buffer.from('B') }]);
  assert.equal(a2.generationId, 2);
  // b restarts: a new member id, same generation, same assignment.
  const b2 = join(groups, 3, { clientId: 'd', groupInstanceId: 'i-b' }).result!;
  assert.equal(b2.errorCode, 0);
  assert.notEqual(b2.memberId, b.result!.memberId);
  assert.equal(b2.generationId, 2);
  assert.equal(groups.describe('g').groupState, 'Stable');
  assert.equal(sync(groups, 4, b2.memberId, 2).result?.assignment.toString(), 'B');
  assert.equal(groups.heartbeat({ groupId: 'g', generationId: 2, memberId: b.result!.memberId, groupInstanceId: 'i-b' }, 5), E.FENCED_INSTANCE_ID);
  assert.equal(join(groups, 5, { memberId: b.result!.memberId, groupInstanceId: 'i-b' }).result?.errorCode, E.FENCED_INSTANCE_ID);
  // LeaveGroup v3+ by instance id.
  const left = groups.leave('g', [{ memberId: '', groupInstanceId: 'i-b' }, { memberId: 'x', groupInstanceId: 'i-a' }, { memberId: '', groupInstanceId: 'i-z' }], 6);
  assert.deepEqual(left.members.map((m) => m.errorCode), [0, E.FENCED_INSTANCE_ID, E.UNKNOWN_MEMBER_ID]);
  assert.equal(groups.describe('g').members.length, 1);
});

test('bounds: members per group (ids handed out count) and groups per node; a join/leave loop does not grow anything', () => {
  const groups = coordinator({ maxMembersPerGroup: 3, maxGroups: 2 });
  const ids = [0, 1, 2].map(() => join(groups, 0, { requireKnownMemberId: true }).result!);
  assert.deepEqual(ids.map((r) => r.errorCode), [E.MEMBER_ID_REQUIRED, E.MEMBER_ID_REQUIRED, E.MEMBER_ID_REQUIRED]);
  assert.equal(join(groups, 0, { requireKnownMemberId: true }).result?.errorCode, E.GROUP_MAX_SIZE_REACHED);
  join(groups, 0, { groupId: 'h' });
  assert.equal(join(groups, 0, { groupId: 'i' }).result?.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  // Lapsed ids are forgotten at their session timeout, as is h's member, which never heartbeats.
  groups.tick(10_000);
  assert.equal(groups.describe('g').groupState, 'Dead');
  assert.equal(groups.groupCount, 0);
  for (let i = 0; i < 500; i += 1) {
    const joined = join(groups, 20_000 + i, { groupId: `loop-${i % 7}` }).result!;
    groups.leave(`loop-${i % 7}`, [{ memberId: joined.memberId, groupInstanceId: null }], 20_000 + i);
  }
  assert.equal(groups.groupCount, 0, 'every loop group went with its last member');
});

test('bytes: one member\'s metadata or assignment over its bound is INVALID_REQUEST; the node\'s held bytes are bounded and freed when members go', () => {
  const groups = coordinator({ maxMemberBytes: 100, maxHeldBytes: 250 });
  const meta = (size: number): JoinRequest['protocols'] => [{ name: 'range', metadata: Buffer.alloc(size) }];
  assert.equal(join(groups, 0, { protocols: meta(101) }).result?.errorCode, E.INVALID_REQUEST);
  const a = join(groups, 0, { protocols: meta(100) }).result!;
  assert.equal(a.errorCode, 0);
  assert.equal(groups.heldBytes, 100);
  // The leader's assignments: one too large, then too many bytes for the node, then fitting.
  assert.equal(sync(groups, 0, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.alloc(101) }]).result?.errorCode, E.INVALID_REQUEST);
  assert.equal(join(groups, 0, { groupId: 'h', protocols: meta(100) }).result?.errorCode, 0);
  assert.equal(sync(groups, 0, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.alloc(60) }]).result?.errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.equal(sync(groups, 0, a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.alloc(50) }]).result?.errorCode, 0);
  assert.equal(groups.heldBytes, 250);
  assert.equal(join(groups, 0, { groupId: 'i', protocols: meta(1) }).result?.errorCode, E.COORDINATOR_NOT_AVAILABLE, 'the node is full');
  // A known member rejoining with metadata of the same size is not refused by the full node.
  assert.equal(join(groups, 1, { memberId: a.memberId, protocols: meta(100) }).result?.errorCode, 0);
  groups.leave('g', [{ memberId: a.memberId, groupInstanceId: null }], 2);
  assert.equal(groups.heldBytes, 100, 'the leaving member\'s metadata and assignment are freed');
  assert.equal(join(groups, 3, { groupId: 'i', protocols: meta(100) }).result?.errorCode, 0);
});

test('commit checks: simple commits (generation -1) for a group without members, member and generation checks otherwise', () => {
  const groups = coordinator({ maxGroups: 2 });
  const simple = { groupId: 's', generationId: -1, memberId: '', groupInstanceId: null };
  assert.equal(groups.checkCommit(simple, 0), 0);
  groups.applyOffsets('s', [{ topic: 't', partition: 0, offset: 5n, leaderEpoch: -1, metadata: null, commitTimestamp: 0 }]);
  assert.equal(groups.describe('s').groupState, 'Empty');
  assert.equal(groups.checkCommit({ ...simple, groupId: 'x', generationId: 3 }, 0), E.ILLEGAL_GENERATION);
  const a = join(groups, 0).result!;
  assert.equal(groups.checkCommit({ ...simple, groupId: 'g' }, 1), E.REBALANCE_IN_PROGRESS, 'awaiting the leader\'s sync');
  sync(groups, 1, a.memberId, 1, []);
  assert.equal(groups.checkCommit({ ...simple, groupId: 'g' }, 1), E.UNKNOWN_MEMBER_ID, 'a simple commit to a group with members');
  assert.equal(groups.checkCommit({ groupId: 'g', generationId: 0, memberId: a.memberId, groupInstanceId: null }, 1), E.ILLEGAL_GENERATION);
  assert.equal(groups.checkCommit({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, 1), 0);
  assert.equal(groups.checkCommit({ ...simple, groupId: 'third' }, 1), E.COORDINATOR_NOT_AVAILABLE, 'groups per node');
  assert.equal(groups.checkDelete('g'), E.NON_EMPTY_GROUP);
  assert.equal(groups.checkDelete('nope'), E.GROUP_ID_NOT_FOUND);
  assert.equal(groups.checkDelete('s'), 0);
  groups.deleteGroup('s');
  assert.equal(groups.describe('s').groupState, 'Dead');
  assert.deepEqual(groups.offsets('s'), []);
});

// --- Property: random joins, syncs, heartbeats, leaves and time steps keep the invariants. ---

type Step =
  | { kind: 'join'; client: number; v4: boolean; rejoin: boolean }
  | { kind: 'sync'; client: number }
  | { kind: 'heartbeat'; client: number }
  | { kind: 'leave'; client: number }
  | { kind: 'time'; ms: number };

// Weighted so that generations of several members form and sync often; long time steps now and then lapse sessions.
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('join' as const), client: fc.nat(4), v4: fc.boolean(), rejoin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), client: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), client: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), client: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('time' as const), ms: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 400 }) }, { weight: 1, arbitrary: fc.integer({ min: 400, max: 8000 }) }) }) },
);

test('property: one generation at a time, every member of a generation gets the leader\'s assignment or an error, no member outlives its session', () => {
  fc.assert(fc.property(fc.array(step, { minLength: 30, maxLength: 150 }), fc.integer({ min: 0, max: 1500 }), (steps, initialDelay) => {
    const groups = coordinator({ initialRebalanceDelayMs: initialDelay, minSessionTimeoutMs: 1000 });
    let now = 0;
    // What each client believes: its member id and generation; busy while a join or sync of its waits (clients send one at a time).
    const clients = Array.from({ length: 5 }, () => ({ memberId: '', generation: -1, busy: false }));
    /** Wraps a reply: asserts it is called once, and frees the client. */
    const once = <T>(client: number, reply: (result: T) => void) => {
      let calls = 0;
      clients[client]!.busy = true;
      return (result: T): void => {
        calls += 1;
        assert.equal(calls, 1, 'a request is answered once');
        clients[client]!.busy = false;
        reply(result);
      };
    };
    // Of the group's current life (a group that empties and goes starts again at generation 0):
    // generation → the member ids its joins answered, its leader, the assignment its leader sent.
    let generations = new Map<number, Set<string>>();
    let leaders = new Map<number, string>();
    let assigned = new Map<number, Map<string, string>>();
    const lastSeen = new Map<string, { at: number; session: number }>();
    const sessionOf = (client: number): number => 1500 + client * 500;
    const seen = (memberId: string, at: number, session: number): void => {
      lastSeen.set(memberId, { at: Math.max(at, lastSeen.get(memberId)?.at ?? at), session });
    };

    const onJoin = (client: number) => (result: JoinResult): void => {
      if (result.errorCode === E.MEMBER_ID_REQUIRED) clients[client]!.memberId = result.memberId;
      if (result.errorCode !== 0) return;
      clients[client] = { memberId: result.memberId, generation: result.generationId, busy: false };
      const members = generations.get(result.generationId) ?? new Set();
      members.add(result.memberId);
      generations.set(result.generationId, members);
      leaders.set(result.generationId, result.leader);
      seen(result.memberId, now, sessionOf(client));
      if (result.members.length > 0) assert.equal(result.leader, result.memberId, 'only the leader gets the member list');
    };
    for (const s of steps) {
      if (s.kind === 'time') {
        now += s.ms;
        groups.tick(now);
      } else {
        const client = clients[s.client]!;
        if (client.busy && (s.kind === 'join' || s.kind === 'sync')) continue;
        const ref = { groupId: 'g', generationId: client.generation, memberId: client.memberId, groupInstanceId: null };
        const session = sessionOf(s.client);
        if (s.kind === 'join') {
          groups.join(joinRequest({ clientId: `c${s.client}`, memberId: s.rejoin ? client.memberId : '', requireKnownMemberId: s.v4, sessionTimeoutMs: session, rebalanceTimeoutMs: 4000 }), now, once(s.client, onJoin(s.client)));
        } else if (s.kind === 'sync') {
          const { generation, memberId } = client;
          const sentAt = now;
          // Every member proposes the same thing (each member its own label); only the leader's counts.
          const assignments = [...(generations.get(generation) ?? [])].map((id) => ({ memberId: id, assignment: Buffer.from(`${generation}:${id}`) }));
          if (leaders.get(generation) === memberId && !assigned.has(generation)) assigned.set(generation, new Map(assignments.map((a) => [a.memberId, a.assignment.toString()])));
          groups.sync({ ...ref, protocolType: null, protocolName: null, assignments }, now, once(s.client, (result: SyncResult) => {
            // A sync that passed the member checks counts as a sign of life when it was sent.
            if (![E.UNKNOWN_MEMBER_ID, E.ILLEGAL_GENERATION].includes(result.errorCode as 25)) seen(memberId, sentAt, session);
            if (result.errorCode !== 0) return;
            assert.ok(assigned.has(generation), `generation ${generation}: an assignment before its leader sent one`);
            assert.equal(result.assignment.toString(), assigned.get(generation)!.get(memberId) ?? '', `generation ${generation}, member ${memberId}: the leader's assignment`);
          }));
          // Not answered yet: it passed the member checks and waits for the leader.
          if (clients[s.client]!.busy) seen(memberId, sentAt, session);
        } else if (s.kind === 'heartbeat') {
          const error = groups.heartbeat(ref, now);
          if (error === 0 || error === E.REBALANCE_IN_PROGRESS) seen(client.memberId, now, session);
        } else {
          groups.leave('g', [{ memberId: client.memberId, groupInstanceId: null }], now);
        }
      }
      const description = groups.describe('g');
      if (description.groupState === 'Dead') {
        generations = new Map();
        leaders = new Map();
        assigned = new Map();
      }
      if (description.groupState === 'Stable' || description.groupState === 'CompletingRebalance') {
        // No member outlives its session: each one listed showed a sign of life within its session timeout.
        for (const member of description.members) {
          const last = lastSeen.get(member.memberId);
          assert.ok(last !== undefined && now - last.at < last.session, `member ${member.memberId} outlived its session`);
        }
        // One generation at a time: the members listed are exactly those the current generation's joins answered.
        const current = Math.max(...generations.keys());
        assert.deepEqual(new Set(description.members.map((m) => m.memberId)), generations.get(current));
      }
    }
    // Once every session has lapsed nothing is held: the byte count is back to zero, the group gone.
    groups.tick(now + 100_000);
    groups.tick(now + 200_000);
    assert.equal(groups.describe('g').groupState, 'Dead');
    assert.equal(groups.heldBytes, 0, 'held bytes accounted exactly');
  }), { numRuns: numRuns(300), ...replay });
});
