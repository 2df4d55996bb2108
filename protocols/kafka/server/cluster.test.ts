// Kafka brokers in a cluster, without processes: two brokers' services over one in-memory
// ShardStore (the shared journal), each with a view of the same live brokers. The choices are
// deterministic (every broker computes the same leader and coordinator), spread over the
// brokers, and refused where they do not belong: produce at a non-leader is
// NOT_LEADER_OR_FOLLOWER, a group request at a non-coordinator NOT_COORDINATOR. Producer ids of
// two brokers never meet; a leader that takes a partition over knows the batches the previous
// one appended (a retry is a duplicate, not a second copy); topics and committed offsets made
// at one broker are seen at the other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { kafkaPartitionShardName } from '../../../base/index.js';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { ApiKey, decodeResponse, encodeRecordBatch, encodeRequest, encodeResponse, KafkaErrorCode, parseRequest, type KafkaStruct } from '../codec/index.js';
import { brokersOn, groupCoordinator, kafkaBrokerId, leaderCandidates, normalizeBrokers, parseAdvertised, partitionLeader, type KafkaBroker, type KafkaClusterMember, type KafkaClusterView, type KafkaListenerName } from './cluster.js';
import { KafkaGroupService } from './groups/group-service.js';
import { Idempotence } from './idempotence.js';
import { KafkaService } from './service.js';
import { TopicCatalog } from './topics.js';

const E = KafkaErrorCode;
const logger = pino({ level: 'silent' });
const A: KafkaBroker = { nodeId: 21, host: 'a.example', port: 9092 };
const B: KafkaBroker = { nodeId: 22, host: 'b.example', port: 9093 };

/** Brokers with a plain listener only, as before TLS on clustered brokers. */
const plainOnly = (broker: KafkaBroker): KafkaClusterMember => ({ nodeId: broker.nodeId, listeners: { plain: { host: broker.host, port: broker.port } } });

interface Broker {
  service: KafkaService;
  groups: KafkaGroupService;
  idempotence: Idempotence;
  view: { live: Array<KafkaBroker | KafkaClusterMember> | undefined };
}

async function broker(store: MemoryShardStore, self: KafkaBroker | KafkaClusterMember, live: Array<KafkaBroker | KafkaClusterMember> | undefined): Promise<Broker> {
  const member = (b: KafkaBroker | KafkaClusterMember): KafkaClusterMember => ('listeners' in b ? b : plainOnly(b));
  const me = member(self);
  const view = { live };
  const cluster: KafkaClusterView = { selfId: me.nodeId, brokers: () => (view.live === undefined ? undefined : normalizeBrokers(view.live.map(member))) };
  const advertised = (listener: KafkaListenerName): { host: string; port: number } => me.listeners[listener] ?? { host: 'unbound', port: 0 };
  const topics = await TopicCatalog.open(store);
  const idempotence = await Idempotence.open(store, { brokerId: me.nodeId });
  const groups = await KafkaGroupService.open({ store, partitionsOf: (name) => topics.get(name)?.partitions, broker: (listener) => ({ nodeId: me.nodeId, ...advertised(listener) }), cluster, logger, limits: { initialRebalanceDelayMs: 0 } });
  const service = new KafkaService({ store, topics, idempotence, nodeId: me.nodeId, clusterId: 'c', advertised, groups, cluster, logger });
  return { service, groups, idempotence, view };
}

let correlation = 0;
/** Through the codec both ways, as a client of `listener` would see it. */
async function call(service: KafkaService, apiKey: number, version: number, body: KafkaStruct, listener: KafkaListenerName = 'plain'): Promise<KafkaStruct> {
  correlation += 1;
  const parsed = parseRequest(encodeRequest(apiKey, version, correlation, 'client', body).subarray(4));
  if (parsed.kind !== 'request') throw new Error(`not a request: ${parsed.kind}`);
  const response = await service.handle(parsed.header, parsed.body, new AbortController().signal, { host: '/127.0.0.1', remoteAddress: '127.0.0.1', username: undefined, listener });
  return decodeResponse(apiKey, version, encodeResponse(apiKey, version, correlation, response as KafkaStruct).subarray(4)).body;
}

function batch(values: string[], producerId = -1n, baseSequence = -1): Buffer {
  return encodeRecordBatch({
    baseOffset: 0n, partitionLeaderEpoch: 0, attributes: 0, lastOffsetDelta: values.length - 1, baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n,
    producerId, producerEpoch: producerId >= 0n ? 0 : -1, baseSequence,
    records: values.map((value, i) => ({ attributes: 0, timestampDelta: 0n, offsetDelta: i, key: null, value: Buffer.from(value), headers: [] })),
  });
}

async function produce(service: KafkaService, topic: string, partition: number, records: Buffer): Promise<KafkaStruct> {
  const response = await call(service, ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  return ((response.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!;
}

describe('Kafka brokers in a cluster', () => {
  it('maps node ids to int32 broker ids, spreads leaders and coordinators deterministically, and checks advertised addresses', () => {
    assert.equal(kafkaBrokerId('21'), 21);
    assert.equal(kafkaBrokerId('2147483647'), 2147483647);
    const hashed = kafkaBrokerId('host-a/127.0.0.1:1883');
    assert.ok(hashed >= 0 && hashed <= 0x7fffffff);
    assert.equal(kafkaBrokerId('host-a/127.0.0.1:1883'), hashed);
    assert.ok(kafkaBrokerId('2147483648') <= 0x7fffffff && kafkaBrokerId('007') !== 7);
    const brokers = normalizeBrokers([B, A, { ...A, host: 'dup' }]);
    assert.deepEqual(brokers, [A, B], 'sorted by id, one per id');
    const leaders = Array.from({ length: 8 }, (_, p) => partitionLeader(brokers, 'orders', p)?.nodeId);
    assert.ok(leaders.every((leader, p) => leader !== leaders[p + 1]), `round-robin over both brokers: ${leaders.join(',')}`);
    assert.deepEqual(new Set(leaders), new Set([21, 22]));
    assert.deepEqual(Array.from({ length: 8 }, (_, p) => partitionLeader([...brokers].reverse().sort((x, y) => x.nodeId - y.nodeId), 'orders', p)?.nodeId), leaders);
    const coordinators = new Set(Array.from({ length: 20 }, (_, i) => groupCoordinator(brokers, `group-${i}`)?.nodeId));
    assert.deepEqual([...coordinators].sort(), [21, 22], 'groups land on both brokers');
    assert.equal(groupCoordinator(brokers, 'g')?.nodeId, groupCoordinator(normalizeBrokers([A, B]), 'g')?.nodeId);
    assert.equal(partitionLeader([], 't', 0), undefined);
    assert.deepEqual(parseAdvertised('broker-0.shardline:9092'), { host: 'broker-0.shardline', port: 9092 });
    assert.deepEqual(parseAdvertised('[2001:db8::1]:9092'), { host: '2001:db8::1', port: 9092 });
    for (const bad of ['0.0.0.0:9092', '[::]:9092', 'broker:0', 'broker:65536', 'broker', ':9092', 'a b:1', 'broker-:9092']) {
      assert.throws(() => parseAdvertised(bad), (error: { code?: string }) => error.code === 'SL_KAFKA_ADVERTISED', bad);
    }
  });

  it('Metadata lists every live broker and the same leaders at both; produce at a non-leader is NOT_LEADER_OR_FOLLOWER; a topic made at one is known at the other', async () => {
    const store = new MemoryShardStore();
    const a = await broker(store, A, [A, B]);
    const b = await broker(store, B, [A, B]);
    const created = await call(a.service, ApiKey.CreateTopics, 5, { topics: [{ name: 'orders', numPartitions: 4, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    assert.equal((created.topics as KafkaStruct[])[0]!.errorCode, 0);
    const metadataAt = async (at: Broker): Promise<KafkaStruct> => call(at.service, ApiKey.Metadata, 9, { topics: [{ name: 'orders' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    const [ma, mb] = [await metadataAt(a), await metadataAt(b)];
    assert.deepEqual((ma.brokers as KafkaStruct[]).map((x) => [x.nodeId, x.host, x.port]), [[21, 'a.example', 9092], [22, 'b.example', 9093]]);
    assert.deepEqual(mb.brokers, ma.brokers);
    const leadersOf = (m: KafkaStruct): number[] => ((m.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => p.leaderId as number);
    assert.equal((mb.topics as KafkaStruct[])[0]!.errorCode, 0, 'the topic created at a is known at b');
    assert.deepEqual(leadersOf(mb), leadersOf(ma));
    assert.deepEqual(new Set(leadersOf(ma)), new Set([21, 22]));
    for (let partition = 0; partition < 4; partition += 1) {
      const leader = leadersOf(ma)[partition] === 21 ? a : b;
      const other = leader === a ? b : a;
      assert.equal((await produce(other.service, 'orders', partition, batch(['x']))).errorCode, E.NOT_LEADER_OR_FOLLOWER, `partition ${partition} at the non-leader`);
      assert.equal((await produce(leader.service, 'orders', partition, batch([`p${partition}`]))).errorCode, 0, `partition ${partition} at its leader`);
    }
    for (let partition = 0; partition < 4; partition += 1) assert.deepEqual((await store.read(kafkaPartitionShardName('orders', partition), 0)).map((r) => r.value?.toString()), [`p${partition}`]);
    // b alone: it leads everything.
    b.view.live = [B];
    for (let partition = 0; partition < 4; partition += 1) assert.equal((await produce(b.service, 'orders', partition, batch(['y']))).errorCode, 0);
  });

  it('a broker that has not read the live brokers yet leads nothing and coordinates nothing', async () => {
    const store = new MemoryShardStore();
    const a = await broker(store, A, undefined);
    await call(a.service, ApiKey.CreateTopics, 5, { topics: [{ name: 't', numPartitions: 2, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    const metadata = await call(a.service, ApiKey.Metadata, 9, { topics: [{ name: 't' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    assert.deepEqual((metadata.brokers as KafkaStruct[]).map((x) => x.nodeId), [21]);
    assert.deepEqual(((metadata.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => [p.errorCode, p.leaderId]), [[E.LEADER_NOT_AVAILABLE, -1], [E.LEADER_NOT_AVAILABLE, -1]]);
    assert.equal((await produce(a.service, 't', 0, batch(['x']))).errorCode, E.NOT_LEADER_OR_FOLLOWER);
    const found = await call(a.service, ApiKey.FindCoordinator, 2, { key: 'g', keyType: 0 });
    assert.deepEqual([found.errorCode, found.nodeId], [E.COORDINATOR_NOT_AVAILABLE, -1]);
    assert.equal((await call(a.service, ApiKey.Heartbeat, 3, { groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null })).errorCode, E.NOT_COORDINATOR);
    // Once read, it serves.
    a.view.live = [A];
    assert.equal((await produce(a.service, 't', 0, batch(['x']))).errorCode, 0);
    assert.equal((await call(a.service, ApiKey.FindCoordinator, 2, { key: 'g', keyType: 0 })).nodeId, 21);
  });

  it('producer ids of two brokers are distinct, and each accepts an epoch bump of an id the other handed out', async () => {
    const store = new MemoryShardStore();
    const a = await Idempotence.open(store, { brokerId: 21 });
    const b = await Idempotence.open(store, { brokerId: 22 });
    const init = (i: Idempotence, producerId = -1n, producerEpoch = -1): Promise<KafkaStruct> => i.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId, producerEpoch });
    const ids: bigint[] = [];
    for (let i = 0; i < 3; i += 1) ids.push((await init(a)).producerId as bigint, (await init(b)).producerId as bigint);
    assert.equal(new Set(ids).size, 6, `distinct: ${ids.join(', ')}`);
    assert.ok(ids.every((id) => id >= 2n ** 31n && id < 2n ** 62n));
    const fromB = ids[1]!;
    assert.deepEqual(await init(a, fromB, 0), { throttleTimeMs: 0, errorCode: 0, producerId: fromB, producerEpoch: 1 });
    assert.equal((await init(a, fromB + 10n, 0)).errorCode, E.INVALID_PRODUCER_ID_MAPPING, 'an id b never handed out');
    // After a restart each broker goes on from its own counter.
    const again = await Idempotence.open(store, { brokerId: 22 });
    assert.equal((await init(again)).producerId, ids[5]! + 1n);
  });

  it('a broker taking a partition over sees the batches the previous leader appended: a retry is a duplicate', async () => {
    const store = new MemoryShardStore();
    const a = await Idempotence.open(store, { brokerId: 21 });
    const b = await Idempotence.open(store, { brokerId: 22 });
    await store.create('kafka.t.0');
    const pid = (await a.initProducerId({ transactionalId: null, transactionTimeoutMs: 0, producerId: -1n, producerEpoch: -1 })).producerId as bigint;
    const records = [{ value: Buffer.from('r0') }, { value: Buffer.from('r1') }];
    // b has looked at the partition before (its state is cached), then a appends while leading it.
    assert.deepEqual(await b.append('kafka.t.0', { producerId: pid, producerEpoch: 0, baseSequence: 0, count: 2 }, records), { errorCode: 0, baseOffset: 0, duplicate: false });
    assert.deepEqual(await a.append('kafka.t.0', { producerId: pid, producerEpoch: 0, baseSequence: 2, count: 2 }, records), { errorCode: 0, baseOffset: 2, duplicate: false });
    // Leadership back at b: the retry of a's batch is answered with a's offset, the next batch follows it.
    assert.deepEqual(await b.append('kafka.t.0', { producerId: pid, producerEpoch: 0, baseSequence: 2, count: 2 }, records), { errorCode: 0, baseOffset: 2, duplicate: true });
    assert.equal((await b.append('kafka.t.0', { producerId: pid, producerEpoch: 0, baseSequence: 6, count: 2 }, records)).errorCode, E.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.deepEqual(await b.append('kafka.t.0', { producerId: pid, producerEpoch: 0, baseSequence: 4, count: 2 }, records), { errorCode: 0, baseOffset: 4, duplicate: false });
    assert.equal(await store.highWatermark('kafka.t.0'), 6);
  });

  it('FindCoordinator names one broker per group at both; group requests elsewhere are NOT_COORDINATOR; offsets committed at one coordinator are read at the next', async () => {
    const store = new MemoryShardStore();
    const a = await broker(store, A, [A, B]);
    const b = await broker(store, B, [A, B]);
    await call(a.service, ApiKey.CreateTopics, 5, { topics: [{ name: 't', numPartitions: 2, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    const find = async (at: Broker, key: string): Promise<number> => (await call(at.service, ApiKey.FindCoordinator, 2, { key, keyType: 0 })).nodeId as number;
    const groups = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5'];
    const coordinators = await Promise.all(groups.map((g) => find(a, g)));
    assert.deepEqual(await Promise.all(groups.map((g) => find(b, g))), coordinators, 'both brokers name the same coordinator');
    const group = groups[coordinators.indexOf(22)] as string;
    const join = { groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('m') }], reason: null };
    assert.equal((await call(a.service, ApiKey.JoinGroup, 5, join)).errorCode, E.NOT_COORDINATOR);
    assert.equal((await call(a.service, ApiKey.Heartbeat, 3, { groupId: group, generationId: 1, memberId: 'm', groupInstanceId: null })).errorCode, E.NOT_COORDINATOR);
    assert.equal((await call(a.service, ApiKey.SyncGroup, 3, { groupId: group, generationId: 1, memberId: 'm', groupInstanceId: null, assignments: [] })).errorCode, E.NOT_COORDINATOR);
    assert.equal((await call(a.service, ApiKey.LeaveGroup, 1, { groupId: group, memberId: 'm' })).errorCode, E.NOT_COORDINATOR);
    assert.equal((await call(a.service, ApiKey.OffsetFetch, 5, { groupId: group, topics: [{ name: 't', partitionIndexes: [0] }], requireStable: false })).errorCode, E.NOT_COORDINATOR);
    const commit = (at: Broker, offset: bigint): Promise<KafkaStruct> => call(at.service, ApiKey.OffsetCommit, 5, { groupId: group, generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1n, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }] });
    const partitionError = (r: KafkaStruct): number => (((r.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!.errorCode as number);
    assert.equal(partitionError(await commit(a, 5n)), E.NOT_COORDINATOR);
    assert.equal(((await call(a.service, ApiKey.DeleteGroups, 1, { groupsNames: [group] })).results as KafkaStruct[])[0]!.errorCode, E.NOT_COORDINATOR);
    assert.equal(((await call(a.service, ApiKey.DescribeGroups, 1, { groups: [group], includeAuthorizedOperations: false })).groups as KafkaStruct[])[0]!.errorCode, E.NOT_COORDINATOR);
    const joined = await call(b.service, ApiKey.JoinGroup, 5, join);
    assert.equal(joined.errorCode, E.MEMBER_ID_REQUIRED, 'the coordinator serves the join');
    assert.equal(partitionError(await commit(b, 7n)), 0);
    // b goes away: a is every group's coordinator now and reads the offset b committed.
    a.view.live = [A];
    assert.equal(await find(a, group), 21);
    const fetched = await call(a.service, ApiKey.OffsetFetch, 5, { groupId: group, topics: [{ name: 't', partitionIndexes: [0] }], requireStable: false });
    assert.equal(fetched.errorCode, 0);
    assert.equal(((fetched.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!.committedOffset, 7n);
    const listed = await call(b.service, ApiKey.ListGroups, 4, { statesFilter: [] });
    assert.ok((listed.groups as KafkaStruct[]).some((g) => g.groupId === group), 'b still lists it while its view names b');
  });
  it('brokers with different listeners: each listener\'s clients are told its brokers only, and leaders and coordinators are brokers every client can dial, the same for both listeners', async () => {
    const both = (nodeId: number, host: string): KafkaClusterMember => ({ nodeId, listeners: { plain: { host, port: 9092 }, tls: { host, port: 9093 } } });
    const [P, Q] = [both(31, 'p.example'), both(32, 'q.example')];
    const R: KafkaClusterMember = { nodeId: 33, listeners: { plain: { host: 'r.example', port: 9092 } } };
    const S: KafkaClusterMember = { nodeId: 34, listeners: { tls: { host: 's.example', port: 9093 } } };
    assert.deepEqual(leaderCandidates([P, Q, R]), [P, Q], 'R lacks TLS, which P and Q serve');
    assert.deepEqual(leaderCandidates([R, plainOnly(A)]), [R, plainOnly(A)], 'no TLS in use: every plain broker');
    assert.deepEqual(leaderCandidates([R, S]), [], 'nobody serves both');
    assert.deepEqual(brokersOn([P, R, S], 'tls').map((b) => [b.nodeId, b.host, b.port]), [[31, 'p.example', 9093], [34, 's.example', 9093]]);

    const store = new MemoryShardStore();
    const [p, q, r] = [await broker(store, P, [P, Q, R]), await broker(store, Q, [P, Q, R]), await broker(store, R, [P, Q, R])];
    await call(p.service, ApiKey.CreateTopics, 5, { topics: [{ name: 'mixed', numPartitions: 6, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false });
    const metadata = (at: Broker, listener: KafkaListenerName): Promise<KafkaStruct> => call(at.service, ApiKey.Metadata, 9, { topics: [{ name: 'mixed' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }, listener);
    const brokersOf = (m: KafkaStruct): string[] => (m.brokers as KafkaStruct[]).map((b) => `${String(b.nodeId)}@${String(b.host)}:${String(b.port)}`);
    const leadersOf = (m: KafkaStruct): number[] => ((m.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((x) => x.leaderId as number);
    const overTls = await metadata(p, 'tls');
    assert.deepEqual(brokersOf(overTls), ['31@p.example:9093', '32@q.example:9093'], 'TLS clients get TLS addresses, and not R');
    assert.deepEqual(brokersOf(await metadata(r, 'plain')), ['31@p.example:9092', '32@q.example:9092', '33@r.example:9092']);
    assert.deepEqual(new Set(leadersOf(overTls)), new Set([31, 32]), 'leaders spread over P and Q');
    for (const [at, listener] of [[q, 'tls'], [p, 'plain'], [r, 'plain']] as const) assert.deepEqual(leadersOf(await metadata(at, listener)), leadersOf(overTls), 'one leader per partition whichever broker and listener answer');
    for (let partition = 0; partition < 6; partition += 1) assert.equal((await produce(r.service, 'mixed', partition, batch(['x']))).errorCode, E.NOT_LEADER_OR_FOLLOWER, 'R leads nothing');
    const find = async (at: Broker, listener: KafkaListenerName, key: string): Promise<string> => {
      const found = await call(at.service, ApiKey.FindCoordinator, 2, { key, keyType: 0 }, listener);
      return `${String(found.nodeId)}@${String(found.host)}:${String(found.port)}`;
    };
    const groups = Array.from({ length: 8 }, (_, i) => `g${i}`);
    const overPlain = await Promise.all(groups.map((g) => find(r, 'plain', g)));
    const tlsAnswers = await Promise.all(groups.map((g) => find(q, 'tls', g)));
    assert.ok(overPlain.every((c) => c.endsWith(':9092') && !c.startsWith('33@')), overPlain.join(' '));
    assert.deepEqual(tlsAnswers, overPlain.map((c) => c.replace(':9092', ':9093')), 'the same coordinator, at its TLS address');
    assert.equal((await call(r.service, ApiKey.Heartbeat, 3, { groupId: 'g0', generationId: 1, memberId: 'm', groupInstanceId: null })).errorCode, E.NOT_COORDINATOR, 'R coordinates nothing');

    // A plain-only and a TLS-only broker: no broker every client can dial, so nothing is led.
    const s = await broker(store, S, [R, S]);
    r.view.live = [R, S];
    assert.deepEqual(brokersOf(await metadata(s, 'tls')), ['34@s.example:9093']);
    assert.deepEqual(new Set(leadersOf(await metadata(s, 'tls'))), new Set([-1]));
    assert.equal((await produce(r.service, 'mixed', 0, batch(['x']))).errorCode, E.NOT_LEADER_OR_FOLLOWER);
    const none = await call(s.service, ApiKey.FindCoordinator, 2, { key: 'g0', keyType: 0 }, 'tls');
    assert.deepEqual([none.errorCode, none.nodeId], [E.COORDINATOR_NOT_AVAILABLE, -1]);
  });
});
