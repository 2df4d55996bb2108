// What issue 14's proof asks of consumers that tests/kafka-groups.test.ts does not show: a group
// of three kafkajs consumers splits a 6-partition topic with no partition read by two of them,
// rebalances when one leaves (the two left take its partitions and read only what is new), and a
// new member after all have gone resumes from the committed offsets; and a consumer seeks by
// offset and by timestamp (admin.fetchTopicOffsetsByTimestamp, ListOffsets by time).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { cleanup, freePort, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';

const { Kafka, logLevel } = kafkajs;
type Consumer = ReturnType<InstanceType<typeof Kafka>['consumer']>;

const TOPIC = 'jobs';
const PARTITIONS = 6;

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Member {
  consumer: Consumer;
  /** `partition:offset` of every record this member processed. */
  read: string[];
  assignment: number[];
  generation: number;
}

describe('Kafka consumers: a group of three, seeks by offset and by timestamp', { timeout: 300_000 }, () => {
  let node: BrokerProcess;
  let kafka: InstanceType<typeof Kafka>;
  const members: Member[] = [];
  let producedCount = 0;

  before(async () => {
    const port = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(port), '--kafka-group-initial-rebalance-delay-ms', '0'] });
    kafka = new Kafka({ clientId: 'consumers-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    await admin.disconnect();
  });
  after(async () => {
    for (const member of members) await member.consumer.disconnect().catch(() => undefined);
    await stopBroker(node);
    await cleanup();
  });

  const produce = async (count: number): Promise<void> => {
    const producer = kafka.producer();
    await producer.connect();
    const messages = Array.from({ length: count }, (_, i) => ({ partition: (producedCount + i) % PARTITIONS, value: `m${producedCount + i}` }));
    await producer.send({ topic: TOPIC, acks: -1, messages });
    await producer.disconnect();
    producedCount += count;
  };

  const join = async (groupId: string): Promise<Member> => {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    const member: Member = { consumer, read: [], assignment: [], generation: 0 };
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      member.assignment = [...(event.payload.memberAssignment[TOPIC] ?? [])].sort();
      member.generation += 1;
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void member.read.push(`${partition}:${message.offset}`) });
    members.push(member);
    return member;
  };

  const allRead = (group: Member[]): string[] => group.flatMap((member) => member.read);

  test('three members split the partitions, rebalance when one leaves, and a later member resumes from the commits', async () => {
    const group = [await join('trio'), await join('trio'), await join('trio')];
    // Settled: every member holds two partitions and together they hold all six, once each.
    await waitFor(() => group.every((member) => member.assignment.length === 2) && new Set(group.flatMap((member) => member.assignment)).size === PARTITIONS, 'three members with two partitions each');
    await produce(60);
    await produce(60);
    await waitFor(() => new Set(allRead(group)).size >= producedCount, 'the three members to read all 120 records');
    for (const member of group) {
      for (const key of member.read) assert.ok(member.assignment.includes(Number(key.split(':')[0])), `a member read ${key} outside its partitions ${member.assignment.join(',')}`);
    }

    const [leaving, ...staying] = group as [Member, Member, Member];
    const leftWith = leaving.assignment;
    await leaving.consumer.disconnect();
    members.splice(members.indexOf(leaving), 1);
    await waitFor(() => staying.every((member) => member.assignment.length === 3), 'the two left to hold three partitions each');
    assert.deepEqual(staying.flatMap((member) => member.assignment).sort(), [0, 1, 2, 3, 4, 5]);
    assert.ok(leftWith.every((partition) => staying.some((member) => member.assignment.includes(partition))), 'the leaver\'s partitions were taken over');
    const before = allRead(group).length;
    await produce(60);
    await waitFor(() => allRead(group).length - before >= 60, 'the two to read the 60 new records');
    // Commits were made while the three read, so what the two took over is not read again:
    // each record read at most twice (once by the leaver before its last commit, once after) and
    // the new records once.
    const counts = new Map<string, number>();
    for (const key of allRead(group)) counts.set(key, (counts.get(key) ?? 0) + 1);
    assert.equal(counts.size, producedCount, 'every record was read');
    const readAgain = [...counts].filter(([, count]) => count > 1).length;
    assert.ok(readAgain <= 60, `at most the leaver's uncommitted tail is read again, got ${readAgain}`);

    for (const member of staying) {
      await member.consumer.disconnect();
      members.splice(members.indexOf(member), 1);
    }
    await produce(30);
    const later = await join('trio');
    await waitFor(() => later.read.length >= 30, 'the later member to read the 30 records produced while the group was empty');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(later.read.length, 30, `the later member resumes from the commits and reads only the 30 new records, read ${later.read.length}`);
  });

  test('a consumer seeks to an offset, and to the first record at or after a timestamp', async () => {
    const admin = kafka.admin();
    await admin.connect();
    const beforeLate = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const lateFrom = producedCount;
    await produce(12); // two per partition, all at or after beforeLate
    const byTime = await admin.fetchTopicOffsetsByTimestamp(TOPIC, beforeLate);
    const ends = await admin.fetchTopicOffsets(TOPIC);
    await admin.disconnect();
    for (const { partition, offset } of byTime) {
      const end = Number(ends.find((entry) => entry.partition === partition)?.offset);
      assert.equal(Number(offset), end - 2, `partition ${partition}: the first record at or after the timestamp is the first of the last two`);
    }
    assert.equal(lateFrom + 12, producedCount);

    const seeker = kafka.consumer({ groupId: 'seeker', maxWaitTimeInMs: 200 });
    const read: Array<{ partition: number; offset: number; value: string }> = [];
    await seeker.connect();
    await seeker.subscribe({ topics: [TOPIC] });
    await seeker.run({ autoCommit: false, eachMessage: async ({ partition, message }) => void read.push({ partition, offset: Number(message.offset), value: message.value?.toString() ?? '' }) });
    members.push({ consumer: seeker, read: [], assignment: [], generation: 0 });
    const partition0 = byTime.find((entry) => entry.partition === 0)!;
    seeker.seek({ topic: TOPIC, partition: 0, offset: partition0.offset });
    seeker.seek({ topic: TOPIC, partition: 1, offset: '3' });
    await waitFor(() => read.some((entry) => entry.partition === 0) && read.some((entry) => entry.partition === 1 && entry.offset >= 3), 'reads from the sought offsets');
    const first0 = read.find((entry) => entry.partition === 0)!;
    assert.equal(first0.offset, Number(partition0.offset), 'partition 0 starts at the offset for the timestamp');
    assert.equal(first0.value, `m${lateFrom}`, 'which is the first record produced after the timestamp');
    const first1 = read.find((entry) => entry.partition === 1)!;
    assert.equal(first1.offset, 3, 'partition 1 starts at the offset sought');
    assert.equal(first1.value, `m${3 * PARTITIONS + 1}`);
  });
});
