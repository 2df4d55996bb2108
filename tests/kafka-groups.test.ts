// Kafka consumer groups end to end: a real `shardline start --kafka-port` process and kafkajs
// 2.2.4's own consumer({ groupId }) and admin. One consumer reads a topic and commits; a second
// joins and the partitions are split with nothing read twice past the commits; one leaves and
// the other takes its partitions over; the node restarts and the group resumes from its
// committed offsets; the node is SIGKILLed right after an OffsetCommit is acknowledged and the
// offsets are still there. The admin API describes, lists, fetches offsets and deletes groups.
// Then raw sockets: a join/leave loop, bad generations and unknown members get Kafka's error
// codes, memory stays bounded (the member cap), and a kafkajs consumer beside them is unharmed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, decodeResponse, encodeRequest, FrameSplitter, KafkaErrorCode, type KafkaStruct } from '../protocols/kafka/index.js';
import { cleanup, freePort, killBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';

const { Kafka, logLevel } = kafkajs;
type Consumer = ReturnType<InstanceType<typeof Kafka>['consumer']>;

const TOPIC = 'events';
const PARTITIONS = 4;
const GROUP = 'workers';

/** Polls `check` every 100 ms until it holds; fails after `timeoutMs` (a bound, not a speed claim). */
async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A minimal Kafka client over one socket, for requests kafkajs would never send. */
class RawClient {
  readonly #splitter = new FrameSplitter();
  readonly #waiting: Array<(frame: Buffer) => void> = [];
  #correlation = 1;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      const split = this.#splitter.push(chunk);
      if (!split.ok) throw split.error;
      for (const frame of split.frames) this.#waiting.shift()?.(frame);
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  async call(apiKey: number, apiVersion: number, body: KafkaStruct): Promise<KafkaStruct> {
    const correlationId = this.#correlation++;
    const frame = new Promise<Buffer>((resolve) => this.#waiting.push(resolve));
    this.socket.write(encodeRequest(apiKey, apiVersion, correlationId, 'raw-groups', body));
    const response = decodeResponse(apiKey, apiVersion, await frame);
    assert.equal(response.correlationId, correlationId);
    return response.body;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What one consumer read: `partition:offset` → value, and its latest assignment. */
interface Reader {
  name: string;
  consumer: Consumer;
  read: Map<string, string>;
  assignment: number[];
  joins: number;
}

describe('Kafka consumer groups: kafkajs consumers rebalance, commit, resume after a restart and a SIGKILL', { timeout: 300_000 }, () => {
  let node: BrokerProcess | undefined;
  let kafkaPort = 0;
  const readers: Reader[] = [];
  /** Every value produced, in order; batches are produced between phases. */
  const produced: string[] = [];
  after(async () => {
    for (const reader of readers) await reader.consumer.disconnect().catch(() => undefined);
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  const kafka = (): InstanceType<typeof Kafka> => new Kafka({ clientId: 'groups-test', brokers: [`127.0.0.1:${kafkaPort}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 } });

  const startNode = async (dataDir?: string): Promise<void> => {
    // No initial rebalance delay: the raw-socket loop below starts a fresh group hundreds of times.
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort), '--kafka-group-initial-rebalance-delay-ms', '0'], ...(dataDir === undefined ? {} : { dataDir }) });
  };

  const produce = async (count: number): Promise<string[]> => {
    const producer = kafka().producer();
    await producer.connect();
    const values = Array.from({ length: count }, (_, i) => `v${produced.length + i}`);
    await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value, i) => ({ partition: (produced.length + i) % PARTITIONS, key: value, value })) });
    await producer.disconnect();
    produced.push(...values);
    return values;
  };

  const startReader = async (name: string, options: { autoCommit?: boolean; groupId?: string } = {}): Promise<Reader> => {
    const consumer = kafka().consumer({ groupId: options.groupId ?? GROUP, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 300, retry: { retries: 8 } });
    const reader: Reader = { name, consumer, read: new Map(), assignment: [], joins: 0 };
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      reader.assignment = [...(event.payload.memberAssignment[TOPIC] ?? [])].sort();
      reader.joins += 1;
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      autoCommit: options.autoCommit ?? true,
      eachMessage: async ({ partition, message }) => {
        reader.read.set(`${partition}:${message.offset}`, message.value?.toString() ?? '');
      },
    });
    readers.push(reader);
    return reader;
  };

  const stopReader = async (reader: Reader): Promise<void> => {
    await reader.consumer.disconnect();
    readers.splice(readers.indexOf(reader), 1);
  };

  const values = (reader: Reader): string[] => [...reader.read.values()];

  const committed = async (groupId = GROUP): Promise<number[]> => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [TOPIC] });
      return topic!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
    } finally {
      await admin.disconnect();
    }
  };

  /** Per partition, the offset after the last record produced. */
  const ends = (): number[] => Array.from({ length: PARTITIONS }, (_, p) => produced.filter((_, i) => i % PARTITIONS === p).length);

  test('one consumer reads every record of a 4-partition topic and commits them', async () => {
    kafkaPort = await freePort();
    await startNode();
    const admin = kafka().admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] }), true);
    await admin.disconnect();
    const batch = await produce(40);
    const a = await startReader('a');
    await waitFor(() => a.read.size === batch.length, 'a to read the first 40 records');
    assert.deepEqual(values(a).sort(), [...batch].sort(), 'every record, once');
    assert.deepEqual(a.assignment, [0, 1, 2, 3], 'alone, a has every partition');
    await waitFor(async () => (await committed()).join() === ends().join(), 'the commits to reach the end of every partition');
  });

  test('a second consumer joins: the partitions are split, nothing committed is read again, each new record is read once', async () => {
    const [a] = readers;
    const b = await startReader('b');
    await waitFor(() => a!.assignment.length + b.assignment.length === PARTITIONS && b.assignment.length > 0 && a!.assignment.length > 0 && b.assignment.every((p) => !a!.assignment.includes(p)), 'a rebalance that splits the partitions');
    assert.deepEqual([...a!.assignment, ...b.assignment].sort(), [0, 1, 2, 3]);
    const readBefore = a!.read.size;
    const batch = await produce(40);
    await waitFor(() => a!.read.size + b.read.size === readBefore + batch.length, 'the second batch to be read');
    assert.deepEqual(values(b).filter((value) => !batch.includes(value)), [], 'b read nothing the group had committed');
    const newByA = values(a!).filter((value) => batch.includes(value));
    assert.deepEqual([...newByA, ...values(b)].sort(), [...batch].sort(), 'every new record read exactly once between them');
    for (const [key] of b.read) assert.ok(b.assignment.includes(Number(key.split(':')[0])), `b read ${key} from its own partitions`);
    await waitFor(async () => (await committed()).join() === ends().join(), 'the commits of both members');
  });

  test('a consumer leaves: the other takes its partitions over and reads only what is new', async () => {
    const [a, b] = readers;
    await stopReader(a!);
    await waitFor(() => b!.assignment.length === PARTITIONS, 'b to own every partition');
    const readBefore = b!.read.size;
    const batch = await produce(20);
    await waitFor(() => b!.read.size === readBefore + batch.length, 'b to read the third batch');
    assert.deepEqual(values(b!).slice(readBefore).sort(), [...batch].sort());
    await waitFor(async () => (await committed()).join() === ends().join(), 'b\'s commits');
    await stopReader(b!);
  });

  test('after a restart the group resumes from its committed offsets', async () => {
    const previous = node!;
    await stopBroker(previous);
    node = undefined;
    await startNode(previous.dataDir);
    assert.deepEqual(await committed(), ends(), 'the committed offsets are back');
    const batch = await produce(12);
    const c = await startReader('c', { autoCommit: false });
    await waitFor(() => c.read.size === batch.length, 'c to read what was produced since the last commits');
    assert.deepEqual(values(c).sort(), [...batch].sort(), 'nothing committed before the restart is read again');
  });

  test('offsets whose OffsetCommit was acknowledged survive a SIGKILL of the node', async () => {
    const [c] = readers;
    // c (no auto-commit) leaves; its reads are committed by a simple commit (generation -1, what
    // kafkajs's admin setOffsets sends to an empty group) and the node is SIGKILLed the moment
    // the answer arrives.
    await stopReader(c!);
    assert.notDeepEqual(await committed(), ends(), 'c\'s reads are not committed yet');
    const raw = await RawClient.open(kafkaPort);
    const answer = await raw.call(ApiKey.OffsetCommit, 5, {
      groupId: GROUP, generationIdOrMemberEpoch: -1, memberId: '',
      topics: [{ name: TOPIC, partitions: ends().map((committedOffset, partitionIndex) => ({ partitionIndex, committedOffset: BigInt(committedOffset), committedMetadata: null })) }],
    });
    const killed = node!;
    await killBroker(killed);
    raw.close();
    assert.equal(killed.broker.child.signalCode, 'SIGKILL');
    node = undefined;
    assert.deepEqual(((answer.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((p) => p.errorCode), [0, 0, 0, 0], 'acknowledged');
    await startNode(killed.dataDir);
    assert.deepEqual(await committed(), ends(), 'every acknowledged commit is there after the kill');
    const batch = await produce(8);
    const d = await startReader('d');
    await waitFor(() => d.read.size === batch.length, 'd to read only the records after the commits');
    assert.deepEqual(values(d).sort(), [...batch].sort());
    await waitFor(async () => (await committed()).join() === ends().join(), 'd\'s commits');
  });

  test('kafkajs admin: describeGroups, listGroups, fetchOffsets, deleteGroups (refused while a member remains)', async () => {
    const [d] = readers;
    const admin = kafka().admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([GROUP, 'nobody']);
      const group = groups.find((g) => g.groupId === GROUP)!;
      assert.deepEqual([group.state, group.protocolType, group.protocol], ['Stable', 'consumer', 'RoundRobinAssigner']);
      assert.equal(group.members.length, 1);
      assert.equal(group.members[0]!.clientId, 'groups-test');
      assert.equal(group.members[0]!.clientHost, '/127.0.0.1');
      const assignment = kafkajs.AssignerProtocol.MemberAssignment.decode(group.members[0]!.memberAssignment);
      assert.deepEqual([...(assignment?.assignment[TOPIC] ?? [])].sort(), [0, 1, 2, 3]);
      assert.equal(groups.find((g) => g.groupId === 'nobody')?.state, 'Dead');
      const listed = await admin.listGroups();
      assert.deepEqual(listed.groups.filter((g) => g.groupId === GROUP), [{ groupId: GROUP, protocolType: 'consumer' }]);
      const [topic] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
      assert.deepEqual(topic!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset)), ends());
      await assert.rejects(admin.deleteGroups([GROUP]), (error: Error & { groups?: Array<{ errorCode: number }> }) => error.groups?.[0]?.errorCode === KafkaErrorCode.NON_EMPTY_GROUP);
      await stopReader(d!);
      await waitFor(async () => (await admin.describeGroups([GROUP])).groups[0]!.state === 'Empty', 'the group to be empty');
      assert.deepEqual(await admin.deleteGroups([GROUP]), [{ groupId: GROUP, errorCode: 0 }]);
      const [gone] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
      assert.deepEqual(gone!.partitions.map((p) => p.offset), ['-1', '-1', '-1', '-1'], 'the committed offsets went with the group');
      assert.equal((await admin.listGroups()).groups.some((g) => g.groupId === GROUP), false);
    } finally {
      await admin.disconnect();
    }
  });

  test('bad input on raw sockets: join/leave loops stay bounded, bad generations and unknown members get Kafka\'s codes, a kafkajs consumer beside them is unharmed', async () => {
    const bystander = await startReader('bystander', { groupId: 'bystanders' });
    await waitFor(() => bystander.read.size === produced.length, 'the bystander to read the topic');
    const raw = await RawClient.open(kafkaPort);
    const join = (groupId: string, memberId = '', version = 3): Promise<KafkaStruct> => raw.call(ApiKey.JoinGroup, version, { groupId, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, memberId, groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(16) }] });
    try {
      // 300 join/leave rounds over 30 group ids: every group goes with its last member.
      for (let i = 0; i < 300; i += 1) {
        const joined = await join(`loop-${i % 30}`);
        assert.equal(joined.errorCode, 0);
        const left = await raw.call(ApiKey.LeaveGroup, 3, { groupId: `loop-${i % 30}`, members: [{ memberId: joined.memberId as string, groupInstanceId: null }] });
        assert.deepEqual((left.members as KafkaStruct[]).map((m) => m.errorCode), [0]);
      }
      const listed = await raw.call(ApiKey.ListGroups, 3, {});
      assert.deepEqual((listed.groups as KafkaStruct[]).map((g) => g.groupId).filter((id) => (id as string).startsWith('loop-')), [], 'no group left behind');
      // Member ids asked for (JoinGroup v4+) but never used are capped per group: 1000, then GROUP_MAX_SIZE_REACHED.
      const codes = new Map<number, number>();
      for (let i = 0; i < 1010; i += 1) {
        const code = (await join('crowd', '', 5)).errorCode as number;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      assert.deepEqual([...codes].sort(), [[KafkaErrorCode.MEMBER_ID_REQUIRED, 1000], [KafkaErrorCode.GROUP_MAX_SIZE_REACHED, 10]]);
      // Bad generation, unknown member, a forged member id.
      const member = await join('strict');
      const memberId = member.memberId as string;
      assert.equal((await raw.call(ApiKey.Heartbeat, 3, { groupId: 'strict', generationId: 99, memberId, groupInstanceId: null })).errorCode, KafkaErrorCode.ILLEGAL_GENERATION);
      assert.equal((await raw.call(ApiKey.Heartbeat, 3, { groupId: 'strict', generationId: 1, memberId: 'nobody', groupInstanceId: null })).errorCode, KafkaErrorCode.UNKNOWN_MEMBER_ID);
      assert.equal((await raw.call(ApiKey.SyncGroup, 3, { groupId: 'strict', generationId: 1, memberId: 'nobody', groupInstanceId: null, assignments: [] })).errorCode, KafkaErrorCode.UNKNOWN_MEMBER_ID);
      assert.equal((await join('strict', 'forged')).errorCode, KafkaErrorCode.UNKNOWN_MEMBER_ID);
      assert.equal((await join('', '')).errorCode, KafkaErrorCode.INVALID_GROUP_ID);
      const commit = await raw.call(ApiKey.OffsetCommit, 5, { groupId: 'strict', generationIdOrMemberEpoch: 7, memberId, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }] });
      assert.equal(((commit.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!.errorCode, KafkaErrorCode.REBALANCE_IN_PROGRESS, 'the generation awaits its leader\'s SyncGroup');
      await raw.call(ApiKey.SyncGroup, 3, { groupId: 'strict', generationId: 1, memberId, groupInstanceId: null, assignments: [] });
      const stale = await raw.call(ApiKey.OffsetCommit, 5, { groupId: 'strict', generationIdOrMemberEpoch: 7, memberId, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] }] });
      assert.equal(((stale.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[])[0]!.errorCode, KafkaErrorCode.ILLEGAL_GENERATION);
    } finally {
      raw.close();
    }
    // The bystander group still works: a new record reaches it.
    const before = bystander.read.size;
    await produce(4);
    await waitFor(() => bystander.read.size === before + 4, 'the bystander to read new records');
    await stopReader(bystander);
  });
});
