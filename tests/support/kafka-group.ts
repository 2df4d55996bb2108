// A kafkajs consumer group with one member bootstrapped at each of several brokers, and
// producers writing through each broker: what the cluster tests (plain and TLS) check the same
// way, whatever listener the clients use.
import assert from 'node:assert/strict';
import type kafkajs from 'kafkajs';

type Kafka = InstanceType<typeof kafkajs.Kafka>;
type Consumer = ReturnType<Kafka['consumer']>;

export interface GroupReader {
  readonly consumer: Consumer;
  /** `partition:offset` → value */
  readonly read: Map<string, string>;
  assignment: number[];
}

export interface GroupOptions {
  readonly topic: string;
  readonly partitions: number;
  readonly groupId: string;
  /** kafkajs restarts a crashed consumer on its own: true once the test tears down stops that loop. */
  readonly tearingDown: () => boolean;
}

/** Polls `check` every 200 ms, at most `timeoutMs` (a bound, not a speed claim) and 600 times. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; polls < 600 && Date.now() < deadline; polls += 1) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/**
 * One member per broker (`kafkaAt(port)` bootstraps there), pushed to `readers` as it starts so
 * the caller can disconnect them; resolves once the partitions are split between the first two,
 * each partition assigned once.
 */
export async function joinGroupAtEach(kafkaAt: (port: number) => Kafka, ports: readonly number[], options: GroupOptions, readers: GroupReader[]): Promise<[GroupReader, GroupReader]> {
  for (const port of ports) {
    const consumer = kafkaAt(port).consumer({ groupId: options.groupId, sessionTimeout: 15_000, heartbeatInterval: 500, maxWaitTimeInMs: 300, retry: { retries: 10, restartOnFailure: async () => !options.tearingDown() } });
    const reader: GroupReader = { consumer, read: new Map(), assignment: [] };
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      reader.assignment = [...(event.payload.memberAssignment[options.topic] ?? [])].sort();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void reader.read.set(`${partition}:${message.offset}`, message.value?.toString() ?? '') });
    readers.push(reader);
  }
  const [first, second] = readers as [GroupReader, GroupReader];
  await waitFor('the group split over both members', () => {
    const both = [...first.assignment, ...second.assignment];
    return first.assignment.length > 0 && second.assignment.length > 0 && new Set(both).size === options.partitions && both.length === options.partitions ? true : undefined;
  });
  return [first, second];
}

/** An idempotent producer bootstrapped at each broker writes `perBroker` records over every partition (acks -1); returns the values. */
export async function produceThroughEach(kafkaAt: (port: number) => Kafka, ports: readonly number[], options: { topic: string; partitions: number; perBroker: number; prefix: string }): Promise<string[]> {
  const produced: string[] = [];
  for (const [i, port] of ports.entries()) {
    const producer = kafkaAt(port).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const values = Array.from({ length: options.perBroker }, (_, n) => `${options.prefix}${i}-v${n}`);
    await producer.send({ topic: options.topic, acks: -1, messages: values.map((value, n) => ({ partition: n % options.partitions, key: value, value })) });
    await producer.disconnect();
    produced.push(...values);
  }
  return produced;
}

/** Waits until the two members read as many records as were produced, then checks each was read once, by one member, and no partition by both. */
export async function assertReadOnceByOneMember(first: GroupReader, second: GroupReader, produced: readonly string[]): Promise<void> {
  await waitFor('every record read', () => (first.read.size + second.read.size >= produced.length ? true : undefined));
  assert.deepEqual([...first.read.values(), ...second.read.values()].sort(), [...produced].sort(), 'each record read once, by one member');
  const partitionsOf = (reader: GroupReader): Set<string> => new Set([...reader.read.keys()].map((key) => key.split(':')[0] as string));
  assert.deepEqual([...partitionsOf(first)].filter((partition) => partitionsOf(second).has(partition)), [], 'no partition consumed by both members');
}
