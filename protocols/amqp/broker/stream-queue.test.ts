// Stream queues through the broker and a session over an in-memory shard store with a hand-set
// clock: where each x-stream-offset starts, prefetch credit given back by acks, consumers that
// read independently, nothing removed by reading, the refusals, and reopening the broker.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { readBatchHeader } from '../../../journal/index.js';
import { LocalShardStore, MemoryShardStore } from '../../../shard-model/index.js';
import type { BasicProperties, Command } from '../codec/content.js';
import type { AmqpCodecError } from '../codec/errors.js';
import { longstrValue, type FieldTable, type FieldValue } from '../codec/field-table.js';
import { amqpMethod, type AmqpMethod, type ArgsOf } from '../codec/methods.js';
import { AmqpBroker } from './broker.js';
import { resolveStreamStart } from './stream-queue.js';
import { AmqpSession, type SessionHost } from './session.js';

interface Delivery {
  tag: string;
  deliveryTag: bigint;
  body: string;
  offset: bigint | undefined;
}

class Client implements SessionHost {
  readonly methods: AmqpMethod[] = [];
  readonly deliveries: Delivery[] = [];
  readonly closes: AmqpCodecError[] = [];
  readonly session: AmqpSession;
  readonly cancelNotify = true;

  constructor(
    broker: AmqpBroker,
    readonly connectionId: string,
  ) {
    this.session = new AmqpSession(broker, this);
  }

  sendMethod(_channel: number, method: AmqpMethod): void {
    this.methods.push(method);
  }

  sendContent(_channel: number, method: AmqpMethod, properties: BasicProperties, body: Buffer): void {
    if (method.name !== 'basic.deliver') return;
    const offset = properties.headers?.get('x-stream-offset');
    this.deliveries.push({ tag: method.args.consumerTag, deliveryTag: method.args.deliveryTag, body: body.toString(), offset: offset?.type === 'int64' ? offset.value : undefined });
  }

  closeChannel(channel: number, error: AmqpCodecError): void {
    this.closes.push(error);
    this.session.channelClosed(channel);
  }

  writable(): boolean {
    return true;
  }

  call(channel: number, method: AmqpMethod): void {
    this.session.command(channel, { channel, method });
  }

  ack(channel: number, deliveryTag: bigint): void {
    this.call(channel, amqpMethod('basic.ack', { deliveryTag, multiple: false }));
  }

  publish(channel: number, queue: string, body: string): void {
    const command: Command = {
      channel,
      method: amqpMethod('basic.publish', { ticket: 0, exchange: '', routingKey: queue, mandatory: false, immediate: false }),
      content: { header: { classId: 60, weight: 0, bodySize: BigInt(body.length), properties: {} }, body: Buffer.from(body) },
    };
    this.session.command(channel, command);
  }

  consume(channel: number, queue: string, tag: string, offset?: FieldValue, extra: Partial<ArgsOf<'basic.consume'>> = {}): void {
    const args: FieldTable = offset === undefined ? new Map() : new Map([['x-stream-offset', offset]]);
    this.call(channel, amqpMethod('basic.consume', { ticket: 0, queue, consumerTag: tag, noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: args, ...extra }));
  }

  of(tag: string): Delivery[] {
    return this.deliveries.filter((delivery) => delivery.tag === tag);
  }

  confirmed(seq: number): boolean {
    return this.methods.some((method) => method.name === 'basic.ack' && method.args.deliveryTag >= BigInt(seq));
  }
}

const logger = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
const text = (value: string): FieldValue => longstrValue(value);
const streamArgs = (extra: Array<[string, FieldValue]> = []): FieldTable => new Map([['x-queue-type', text('stream')], ...extra]);
const declare = (queue: string, args: FieldTable = streamArgs(), extra: Partial<ArgsOf<'queue.declare'>> = {}): AmqpMethod =>
  amqpMethod('queue.declare', { ticket: 0, queue, passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: args, ...extra });
const qos = (prefetchCount: number, global = false): AmqpMethod => amqpMethod('basic.qos', { prefetchSize: 0, prefetchCount, global });

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i += 1) await settle();
  assert.ok(check(), 'condition not reached');
}

/** A broker with a clock the test sets (record timestamps come from it). */
async function setup(): Promise<{ store: MemoryShardStore; broker: AmqpBroker; client: Client; clock: { now: number } }> {
  const clock = { now: 1_000_000 };
  const store = new MemoryShardStore({ clock: () => clock.now });
  const broker = await AmqpBroker.open({ store, logger, now: () => clock.now });
  const client = new Client(broker, 'c1');
  return { store, broker, client, clock };
}

/** Publishes with confirms and waits until all are durable. */
async function publishAll(client: Client, queue: string, bodies: readonly string[], first: number): Promise<void> {
  for (const body of bodies) client.publish(1, queue, body);
  await waitFor(() => client.confirmed(first + bodies.length - 1));
}

const range = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe('AMQP stream queues', () => {
  it('reads from first under prefetch, acks give credit back, every delivery carries its offset, nothing is removed', async () => {
    const { store, broker, client } = await setup();
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await publishAll(client, 'events', range('m', 0, 10), 1);
    const shard = broker.queue('events')?.def.shard as string;
    assert.match(shard, /^amqp\.s\.[0-9a-f]{16}$/);
    assert.equal((await store.info(shard)).config.compacted, false);

    client.call(2, qos(3));
    client.consume(2, 'events', 'a', text('first'));
    await waitFor(() => client.of('a').length === 3);
    await settle();
    assert.equal(client.of('a').length, 3, 'no more than the prefetch before an ack');
    client.call(2, amqpMethod('basic.ack', { deliveryTag: 2n, multiple: true }));
    await waitFor(() => client.of('a').length === 5);
    client.call(2, amqpMethod('basic.nack', { deliveryTag: 0n, multiple: true, requeue: true }));
    await waitFor(() => client.of('a').length === 8);
    client.call(2, amqpMethod('basic.ack', { deliveryTag: 0n, multiple: true }));
    await waitFor(() => client.of('a').length === 10);
    assert.deepEqual(client.of('a').map((delivery) => delivery.body), range('m', 0, 10));
    assert.deepEqual(client.of('a').map((delivery) => delivery.offset), range('', 0, 10).map(BigInt));
    assert.equal((await store.read(shard, 0)).length, 10, 'reading and acknowledging removed nothing');
    // A nack with requeue gave credit back but no redelivery: each offset came once.
    assert.equal(new Set(client.of('a').map((delivery) => delivery.offset)).size, 10);
  });

  it('tails: a consumer at next gets only what is published after it, woken by the appends', async () => {
    const { client } = await setup();
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await publishAll(client, 'events', range('old', 0, 4), 1);
    client.call(2, qos(100));
    client.consume(2, 'events', 'n');
    await settle();
    assert.equal(client.of('n').length, 0);
    await publishAll(client, 'events', range('new', 0, 3), 5);
    await waitFor(() => client.of('n').length === 3);
    assert.deepEqual(client.of('n').map((delivery) => [delivery.body, delivery.offset]), [
      ['new0', 4n],
      ['new1', 5n],
      ['new2', 6n],
    ]);
  });

  it('starts at a numeric offset, at a timestamp, and at last (the first record of the last batch)', async () => {
    const { store, broker, client, clock } = await setup();
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    clock.now = 1_000_000;
    await publishAll(client, 'events', range('early', 0, 4), 1);
    clock.now = 2_000_000;
    // The first goes to the shard alone, the others wait and are appended together: two batches.
    await publishAll(client, 'events', range('late', 0, 4), 5);
    const shard = broker.queue('events')?.def.shard as string;
    const { batches } = await store.readBatches(shard, 7);
    const lastBatch = readBatchHeader(batches[0] as Buffer, 0).baseOffset;
    assert.ok(lastBatch > 4 && lastBatch < 7, `the last batch holds several records (starts at ${lastBatch})`);

    client.call(2, qos(100));
    client.consume(2, 'events', 'offset', { type: 'int64', value: 6n });
    client.consume(2, 'events', 'time', { type: 'timestamp', value: 1_500n });
    client.consume(2, 'events', 'last', text('last'));
    client.consume(2, 'events', 'beyond', { type: 'int32', value: 1000 });
    await waitFor(() => client.of('offset').length === 2 && client.of('time').length === 4 && client.of('last').length === 8 - lastBatch);
    assert.deepEqual(client.of('offset').map((delivery) => delivery.body), ['late2', 'late3']);
    assert.deepEqual(client.of('time').map((delivery) => delivery.body), range('late', 0, 4));
    assert.deepEqual(client.of('last').map((delivery) => delivery.offset), range('', lastBatch, 8).map(BigInt));
    assert.equal(client.of('beyond').length, 0, 'an offset past the end waits at the end');
    await publishAll(client, 'events', ['after'], 9);
    await waitFor(() => client.of('beyond').length === 1);
    assert.equal(client.of('beyond')[0]?.offset, 8n);
  });

  it('two consumers read the same messages independently; one that never acks holds back only itself', async () => {
    const { client } = await setup();
    const other = new Client(client.session.broker, 'c2');
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await publishAll(client, 'events', range('m', 0, 50), 1);
    client.call(2, qos(2));
    client.consume(2, 'events', 'slow', text('first'));
    other.call(1, qos(50));
    other.consume(1, 'events', 'fast', text('first'));
    await waitFor(() => other.of('fast').length === 50);
    await settle();
    assert.equal(client.of('slow').length, 2);
    assert.deepEqual(other.of('fast').map((delivery) => delivery.body), range('m', 0, 50));
    assert.deepEqual(client.of('slow').map((delivery) => delivery.body), ['m0', 'm1']);
  });

  it('refuses what streams do not take: non-durable, exclusive, auto-delete (406), get (540), purge (406), consume without prefetch (406) or with no-ack (540)', async () => {
    const { broker } = await setup();
    const expectClose = async (run: (client: Client) => void, code: number): Promise<void> => {
      const client = new Client(broker, `c-${code}-${Math.random()}`);
      client.call(1, declare('events'));
      await settle();
      run(client);
      await waitFor(() => client.closes.length > 0);
      assert.equal(client.closes[0]?.replyCode, code);
    };
    await expectClose((client) => client.call(1, declare('s1', streamArgs(), { durable: false })), 406);
    await expectClose((client) => client.call(1, declare('s2', streamArgs(), { exclusive: true })), 406);
    await expectClose((client) => client.call(1, declare('s3', streamArgs(), { autoDelete: true })), 406);
    await expectClose((client) => client.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'events', noAck: false })), 540);
    await expectClose((client) => client.call(1, amqpMethod('queue.purge', { ticket: 0, queue: 'events', noWait: false })), 406);
    await expectClose((client) => client.consume(1, 'events', 't'), 406);
    await expectClose((client) => {
      client.call(1, qos(5));
      client.consume(1, 'events', 't', undefined, { noAck: true });
    }, 540);
    await expectClose((client) => client.call(1, declare('events', new Map())), 406);
    assert.equal(broker.queue('s1'), undefined);
  });

  it('maps x-max-age and x-max-length-bytes onto the shard retention; a redeclare with other values is 406', async () => {
    const { store, broker, client } = await setup();
    client.call(1, declare('kept', streamArgs([['x-max-age', text('2h')], ['x-max-length-bytes', { type: 'int64', value: 10_000_000n }]])));
    await waitFor(() => broker.queue('kept') !== undefined);
    const config = (await store.info(broker.queue('kept')?.def.shard as string)).config;
    assert.equal(config.retentionMs, 7_200_000);
    assert.equal(config.retentionBytes, 10_000_000);
    client.call(1, declare('kept', streamArgs([['x-max-age', text('3h')]])));
    await waitFor(() => client.closes.length > 0);
    assert.equal(client.closes[0]?.replyCode, 406);
  });

  it('comes back when the broker reopens over the same store: every message read again from first', async () => {
    const { store, client, clock } = await setup();
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await publishAll(client, 'events', range('m', 0, 6), 1);
    const reopened = await AmqpBroker.open({ store, logger, now: () => clock.now });
    const after = new Client(reopened, 'c2');
    assert.ok(reopened.queue('events')?.streamPolicy !== undefined);
    after.call(1, qos(10));
    after.consume(1, 'events', 'again', text('first'));
    await waitFor(() => after.of('again').length === 6);
    assert.deepEqual(after.of('again').map((delivery) => delivery.body), range('m', 0, 6));
  });

  it('a consumer cancelled or its queue deleted stops reading', async () => {
    const { broker, client } = await setup();
    client.call(1, declare('events'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await waitFor(() => client.methods.some((method) => method.name === 'confirm.select-ok'));
    client.call(2, qos(100));
    client.consume(2, 'events', 'gone');
    client.consume(2, 'events', 'stays');
    await settle();
    client.call(2, amqpMethod('basic.cancel', { consumerTag: 'gone', noWait: false }));
    await publishAll(client, 'events', ['x'], 1);
    await waitFor(() => client.of('stays').length === 1);
    assert.equal(client.of('gone').length, 0);
    client.call(1, amqpMethod('queue.delete', { ticket: 0, queue: 'events', ifUnused: false, ifEmpty: false, noWait: false }));
    await waitFor(() => client.methods.some((method) => method.name === 'basic.cancel' && method.args.consumerTag === 'stays'));
    assert.equal(broker.queue('events'), undefined);
  });

  it('a consumer whose next records retention deleted (x-max-length-bytes on a real journal) goes on at the oldest kept one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-stream-'));
    const store = await LocalShardStore.open(directory, { retentionCheckMs: 0 });
    try {
      const broker = await AmqpBroker.open({ store, logger });
      const client = new Client(broker, 'c1');
      const body = 'x'.repeat(200);
      client.call(1, declare('events', streamArgs([['x-max-length-bytes', { type: 'int32', value: 2000 }], ['x-stream-max-segment-size-bytes', { type: 'int32', value: 1024 }]])));
      client.call(1, amqpMethod('confirm.select', { noWait: false }));
      await publishAll(client, 'events', [`${body}0`, `${body}1`], 1);
      client.call(2, qos(1));
      client.consume(2, 'events', 'behind', text('first'));
      await waitFor(() => client.of('behind').length === 1);
      // One publish at a time: each its own batch, so segments of 1024 bytes roll every few.
      for (let i = 2; i < 42; i += 1) await publishAll(client, 'events', [`${body}${i}`], i + 1);
      const journal = store.journal;
      assert.ok((await journal.enforceRetention()) > 0, 'retention deleted segments');
      const start = (await store.info(broker.queue('events')?.def.shard as string)).startOffset;
      assert.ok(start > 2, `the shard starts at ${start}`);
      for (let n = 1; n <= 42 - start + 2 && n < 50; n += 1) {
        await waitFor(() => client.of('behind').length >= n);
        client.ack(2, client.of('behind')[n - 1]?.deliveryTag as bigint);
      }
      await waitFor(() => client.of('behind').at(-1)?.offset === 41n);
      // 0 was delivered, 1 was already read into the reader's page; then the gap, then the rest.
      assert.deepEqual(
        client.of('behind').map((delivery) => Number(delivery.offset)),
        [0, 1, ...Array.from({ length: 42 - start }, (_, i) => start + i)],
      );
      broker.close();
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('stream queues over a replicated shard', () => {
  it("x-stream-offset 'last' steps back over control batches (epoch starts) to the last batch of messages", async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-stream-'));
    const store = await LocalShardStore.open(directory, { retentionCheckMs: 0 });
    try {
      await store.create('s');
      await store.append('s', [{ value: Buffer.from('m0') }]);
      await store.append('s', [{ value: Buffer.from('m1') }, { value: Buffer.from('m2') }]);
      const epochStart = { value: null, headers: [{ key: 'sl-epoch-start', value: Buffer.from('1') }] };
      await store.journal.append('s', [epochStart], { control: true });
      await store.journal.append('s', [epochStart], { control: true });
      assert.equal(await resolveStreamStart(store, 's', { kind: 'last' }), 1);
      // Only control batches: the end.
      await store.create('t');
      await store.journal.append('t', [epochStart], { control: true });
      assert.equal(await resolveStreamStart(store, 't', { kind: 'last' }), 1);
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
