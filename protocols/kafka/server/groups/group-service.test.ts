// The group APIs over an in-memory ShardStore, every request and response through the codec at
// the version asked (so what a client would decode is what is checked): FindCoordinator, the
// join/sync/heartbeat/leave flow at each JoinGroup version, OffsetCommit durable before its
// answer and read back after a reopen, the commit refusals, DescribeGroups, ListGroups,
// DeleteGroups.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { KAFKA_OFFSETS_SHARD } from '../../../../base/index.js';
import type { AppendOptions, AppendResult, RecordInput } from '../../../../journal/index.js';
import { MemoryShardStore } from '../../../../shard-model/index.js';
import { ApiKey, decodeResponse, encodeRequest, encodeResponse, KafkaErrorCode, parseRequest, type KafkaStruct } from '../../codec/index.js';
import { TopicCatalog } from '../topics.js';
import { KafkaGroupService } from './group-service.js';

const E = KafkaErrorCode;
const logger = pino({ level: 'silent' });

/** A store whose appends to the offsets shard wait for `release()` or fail when `fail` is set. */
class GatedStore extends MemoryShardStore {
  gate: Promise<void> | undefined;
  fail = false;
  override async append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    if (name === KAFKA_OFFSETS_SHARD) {
      if (this.fail) throw new Error('disk gone');
      if (this.gate !== undefined) await this.gate;
    }
    return super.append(name, records, options);
  }
}

interface Harness {
  service: KafkaGroupService;
  store: GatedStore;
  topics: TopicCatalog;
  clock: { now: number };
}

async function open(store = new GatedStore(), clock = { now: 1_000_000 }): Promise<Harness> {
  const topics = await TopicCatalog.open(store);
  if (topics.get('t') === undefined) await topics.create('t', 2, -1, false);
  const service = await KafkaGroupService.open({ store, partitionsOf: (name) => topics.get(name)?.partitions, broker: () => ({ nodeId: 7, host: 'kafka.example', port: 9093 }), logger, limits: { initialRebalanceDelayMs: 0 }, now: () => clock.now });
  return { service, store, topics, clock };
}

let correlation = 0;
/** Request bytes → parse → handle → response bytes → decode, at `version`. */
async function call(service: KafkaGroupService, apiKey: number, version: number, body: KafkaStruct, clientId = 'client'): Promise<KafkaStruct> {
  correlation += 1;
  const parsed = parseRequest(encodeRequest(apiKey, version, correlation, clientId, body).subarray(4));
  assert.equal(parsed.kind, 'request');
  if (parsed.kind !== 'request') throw new Error('unreachable');
  const response = await service.handle(parsed.header, parsed.body, { host: '/127.0.0.1' });
  return decodeResponse(apiKey, version, encodeResponse(apiKey, version, correlation, response).subarray(4)).body;
}

const protocols = [{ name: 'range', metadata: Buffer.from('sub') }];

test('FindCoordinator names this node for groups (v0-v4) and refuses transaction keys', async () => {
  const { service } = await open();
  for (const version of [0, 1, 2, 3]) {
    const body = await call(service, ApiKey.FindCoordinator, version, { key: 'g', keyType: 0 });
    assert.deepEqual([body.errorCode, body.nodeId, body.host, body.port], [0, 7, 'kafka.example', 9093], `v${version}`);
  }
  const v4 = await call(service, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ['a', 'b'] });
  assert.deepEqual((v4.coordinators as KafkaStruct[]).map((c) => [c.key, c.nodeId, c.errorCode]), [['a', 7, 0], ['b', 7, 0]]);
  const txn = await call(service, ApiKey.FindCoordinator, 3, { key: 'tx', keyType: 1 });
  assert.equal(txn.errorCode, E.INVALID_REQUEST);
  service.stop();
});

test('join, sync, heartbeat and leave at every JoinGroup version the node advertises', async () => {
  const { service } = await open();
  for (let version = 0; version <= 9; version += 1) {
    const groupId = `g${version}`;
    const join = { groupId, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols, reason: null };
    let joined = await call(service, ApiKey.JoinGroup, version, join);
    if (version >= 4) {
      assert.equal(joined.errorCode, E.MEMBER_ID_REQUIRED, `v${version}`);
      joined = await call(service, ApiKey.JoinGroup, version, { ...join, memberId: joined.memberId as string });
    }
    assert.equal(joined.errorCode, 0, `v${version}`);
    const memberId = joined.memberId as string;
    assert.ok(memberId.startsWith('client-'), memberId);
    assert.deepEqual([joined.generationId, joined.protocolName, joined.leader], [1, 'range', memberId]);
    assert.deepEqual((joined.members as KafkaStruct[]).map((m) => [m.memberId, (m.metadata as Buffer).toString()]), [[memberId, 'sub']]);
    const syncVersion = Math.min(version, 5);
    const synced = await call(service, ApiKey.SyncGroup, syncVersion, { groupId, generationId: 1, memberId, groupInstanceId: null, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId, assignment: Buffer.from('p0,p1') }] });
    assert.deepEqual([synced.errorCode, (synced.assignment as Buffer).toString()], [0, 'p0,p1'], `SyncGroup v${syncVersion}`);
    const heartbeatVersion = Math.min(version, 4);
    assert.equal((await call(service, ApiKey.Heartbeat, heartbeatVersion, { groupId, generationId: 1, memberId, groupInstanceId: null })).errorCode, 0);
    assert.equal((await call(service, ApiKey.Heartbeat, heartbeatVersion, { groupId, generationId: 2, memberId, groupInstanceId: null })).errorCode, E.ILLEGAL_GENERATION);
    assert.equal((await call(service, ApiKey.Heartbeat, heartbeatVersion, { groupId, generationId: 1, memberId: 'nobody', groupInstanceId: null })).errorCode, E.UNKNOWN_MEMBER_ID);
    const leaveVersion = Math.min(version, 5);
    const left = await call(service, ApiKey.LeaveGroup, leaveVersion, { groupId, memberId, members: [{ memberId, groupInstanceId: null, reason: null }] });
    assert.equal(left.errorCode, 0, `LeaveGroup v${leaveVersion}`);
    if (leaveVersion >= 3) assert.deepEqual((left.members as KafkaStruct[]).map((m) => m.errorCode), [0]);
    const again = await call(service, ApiKey.LeaveGroup, leaveVersion, { groupId, memberId, members: [{ memberId, groupInstanceId: null, reason: null }] });
    assert.equal(leaveVersion >= 3 ? (again.members as KafkaStruct[])[0]!.errorCode : again.errorCode, E.UNKNOWN_MEMBER_ID);
  }
  // Bad join: the session timeout Kafka refuses.
  const bad = await call(service, ApiKey.JoinGroup, 5, { groupId: 'x', sessionTimeoutMs: 100, rebalanceTimeoutMs: 100, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols });
  assert.equal(bad.errorCode, E.INVALID_SESSION_TIMEOUT);
  service.stop();
});

function commitBody(groupId: string, partitions: Array<[string, number, bigint, string | null]>, generationId = -1, memberId = ''): KafkaStruct {
  const topics = new Map<string, KafkaStruct[]>();
  for (const [name, partitionIndex, committedOffset, committedMetadata] of partitions) {
    topics.set(name, [...(topics.get(name) ?? []), { partitionIndex, committedOffset, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata }]);
  }
  return { groupId, generationIdOrMemberEpoch: generationId, memberId, groupInstanceId: null, retentionTimeMs: -1n, topics: [...topics].map(([name, p]) => ({ name, partitions: p })) };
}

function commitErrors(body: KafkaStruct): number[] {
  return (body.topics as KafkaStruct[]).flatMap((topic) => (topic.partitions as KafkaStruct[]).map((p) => p.errorCode as number));
}

async function fetched(service: KafkaGroupService, groupId: string, version = 5): Promise<Array<[string, number, bigint, string | null]>> {
  const body = await call(service, ApiKey.OffsetFetch, version, { groupId, topics: null, requireStable: false });
  return (body.topics as KafkaStruct[]).flatMap((topic) => (topic.partitions as KafkaStruct[]).map((p) => [topic.name as string, p.partitionIndex as number, p.committedOffset as bigint, p.metadata as string | null] as [string, number, bigint, string | null]));
}

test('OffsetCommit is answered only once durable; the offsets are read back after a reopen; a failed append commits nothing', async () => {
  const first = await open();
  let release!: () => void;
  first.store.gate = new Promise((resolve) => {
    release = resolve;
  });
  let answered = false;
  const pending = call(first.service, ApiKey.OffsetCommit, 8, commitBody('simple', [['t', 0, 42n, 'meta'], ['t', 1, 7n, null]])).then((body) => {
    answered = true;
    return body;
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(answered, false, 'no answer before the append is durable');
  assert.deepEqual(await fetched(first.service, 'simple'), [], 'nor are the offsets visible');
  release();
  assert.deepEqual(commitErrors(await pending), [0, 0]);
  first.store.gate = undefined;
  assert.deepEqual(await fetched(first.service, 'simple'), [['t', 0, 42n, 'meta'], ['t', 1, 7n, '']]);
  // Specific partitions, one never committed (-1); OffsetFetch v8 (groups).
  const v8 = await call(first.service, ApiKey.OffsetFetch, 8, { groups: [{ groupId: 'simple', topics: [{ name: 't', partitionIndexes: [1, 0] }] }, { groupId: 'none', topics: [{ name: 't', partitionIndexes: [0] }] }], requireStable: false });
  const groups = v8.groups as KafkaStruct[];
  assert.deepEqual(((groups[0]!.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => p.committedOffset), [7n, 42n]);
  assert.deepEqual(((groups[1]!.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => p.committedOffset), [-1n]);

  first.store.fail = true;
  assert.deepEqual(commitErrors(await call(first.service, ApiKey.OffsetCommit, 8, commitBody('simple', [['t', 0, 99n, null]]))), [E.COORDINATOR_NOT_AVAILABLE]);
  assert.deepEqual(commitErrors(await call(first.service, ApiKey.OffsetCommit, 8, commitBody('fresh', [['t', 0, 1n, null]]))), [E.COORDINATOR_NOT_AVAILABLE]);
  assert.deepEqual((await fetched(first.service, 'simple'))[0], ['t', 0, 42n, 'meta'], 'the failed commit changed nothing');
  assert.equal((await call(first.service, ApiKey.DescribeGroups, 5, { groups: ['fresh'], includeAuthorizedOperations: false }).then((b) => (b.groups as KafkaStruct[])[0]!)).groupState, 'Dead', 'nor created a group');
  first.store.fail = false;
  assert.deepEqual(commitErrors(await call(first.service, ApiKey.OffsetCommit, 2, commitBody('simple', [['t', 1, 8n, null]]))), [0]);
  first.service.stop();

  const second = await open(first.store);
  assert.deepEqual(await fetched(second.service, 'simple', 1 + 1), [['t', 0, 42n, 'meta'], ['t', 1, 8n, '']], 'the projection rebuilt from the offsets shard');
  const listed = await call(second.service, ApiKey.ListGroups, 4, { statesFilter: [] });
  assert.deepEqual((listed.groups as KafkaStruct[]).map((g) => [g.groupId, g.protocolType, g.groupState]), [['simple', '', 'Empty']]);
  second.service.stop();
});

test('OffsetCommit refusals: unknown topic or partition, metadata too large, generation and member checks for a group with members', async () => {
  const { service } = await open();
  const big = 'x'.repeat(4097);
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('s', [['nope', 0, 1n, null], ['t', 2, 1n, null], ['t', 0, 1n, big], ['t', 1, 1n, null]]))), [E.UNKNOWN_TOPIC_OR_PARTITION, E.UNKNOWN_TOPIC_OR_PARTITION, E.OFFSET_METADATA_TOO_LARGE, 0]);
  const joined = await call(service, ApiKey.JoinGroup, 3, { groupId: 'm', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', protocolType: 'consumer', protocols });
  const memberId = joined.memberId as string;
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('m', [['t', 0, 5n, null]], 1, memberId))), [E.REBALANCE_IN_PROGRESS], 'before the leader synced');
  await call(service, ApiKey.SyncGroup, 3, { groupId: 'm', generationId: 1, memberId, assignments: [] });
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('m', [['t', 0, 5n, null]]))), [E.UNKNOWN_MEMBER_ID], 'a simple commit to a group with members');
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('m', [['t', 0, 5n, null]], 0, memberId))), [E.ILLEGAL_GENERATION]);
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('m', [['t', 0, 5n, null]], 1, memberId))), [0]);
  assert.deepEqual(commitErrors(await call(service, ApiKey.OffsetCommit, 8, commitBody('unknown-group', [['t', 0, 5n, null]], 3, 'someone'))), [E.ILLEGAL_GENERATION]);

  // DescribeGroups: the Stable group with its member, metadata and assignment; an unknown one is Dead.
  const described = await call(service, ApiKey.DescribeGroups, 5, { groups: ['m', 'ghost'], includeAuthorizedOperations: false });
  const [m, ghost] = described.groups as KafkaStruct[];
  assert.deepEqual([m!.groupState, m!.protocolType, m!.protocolData], ['Stable', 'consumer', 'range']);
  const member = (m!.members as KafkaStruct[])[0]!;
  assert.deepEqual([member.memberId, member.clientId, member.clientHost, (member.memberMetadata as Buffer).toString()], [memberId, 'client', '/127.0.0.1', 'sub']);
  assert.deepEqual([ghost!.errorCode, ghost!.groupState], [0, 'Dead']);
  // ListGroups with a state filter (v4).
  const stable = await call(service, ApiKey.ListGroups, 4, { statesFilter: ['Stable'] });
  assert.deepEqual((stable.groups as KafkaStruct[]).map((g) => g.groupId), ['m']);

  // DeleteGroups: members remain → NON_EMPTY_GROUP; unknown → GROUP_ID_NOT_FOUND; an empty group goes with its offsets.
  const deleted = await call(service, ApiKey.DeleteGroups, 2, { groupsNames: ['m', 'ghost', 's'] });
  assert.deepEqual((deleted.results as KafkaStruct[]).map((r) => [r.groupId, r.errorCode]), [['m', E.NON_EMPTY_GROUP], ['ghost', E.GROUP_ID_NOT_FOUND], ['s', 0]]);
  assert.deepEqual(await fetched(service, 's'), []);
  await call(service, ApiKey.LeaveGroup, 3, { groupId: 'm', members: [{ memberId, groupInstanceId: null }] });
  assert.deepEqual((await call(service, ApiKey.DeleteGroups, 0, { groupsNames: ['m'] })).results, [{ groupId: 'm', errorCode: 0 }]);
  assert.deepEqual((await call(service, ApiKey.ListGroups, 0, {})).groups, []);
  service.stop();
});

test('a deleted group stays deleted after a reopen (its offsets were tombstoned)', async () => {
  const first = await open();
  assert.deepEqual(commitErrors(await call(first.service, ApiKey.OffsetCommit, 8, commitBody('gone', [['t', 0, 3n, null]]))), [0]);
  assert.deepEqual(commitErrors(await call(first.service, ApiKey.OffsetCommit, 8, commitBody('kept', [['t', 1, 4n, null]]))), [0]);
  assert.deepEqual((await call(first.service, ApiKey.DeleteGroups, 2, { groupsNames: ['gone'] })).results, [{ groupId: 'gone', errorCode: 0 }]);
  first.service.stop();
  const second = await open(first.store);
  assert.deepEqual(((await call(second.service, ApiKey.ListGroups, 3, {})).groups as KafkaStruct[]).map((g) => g.groupId), ['kept']);
  assert.deepEqual(await fetched(second.service, 'gone'), []);
  second.service.stop();
});

test('the session timer evicts a member that stops heartbeating (driver timer, real time)', async () => {
  const clock = { now: 1_000_000 };
  const { service } = await open(undefined, clock);
  const joined = await call(service, ApiKey.JoinGroup, 3, { groupId: 'timed', sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, memberId: '', protocolType: 'consumer', protocols });
  assert.equal(joined.errorCode, 0);
  // The driver's timer is set for the session deadline; the injected clock is moved past it, and
  // the state is polled (bounded) until the timer has fired.
  clock.now += 6000;
  let state = '';
  for (let attempt = 0; attempt < 60 && state !== 'Dead'; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    state = ((await call(service, ApiKey.DescribeGroups, 0, { groups: ['timed'] })).groups as KafkaStruct[])[0]!.groupState as string;
  }
  assert.equal(state, 'Dead');
  service.stop();
});
