// The broker and a connection's session over an in-memory shard store, driven method by method
// with a host that records what would go to the socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { AppendOptions, AppendResult, RecordInput } from '../../../journal/index.js';
import { MemoryShardStore } from '../../../shard-model/index.js';
import type { BasicProperties, Command } from '../codec/content.js';
import type { AmqpCodecError } from '../codec/errors.js';
import { longstrValue, fieldTable } from '../codec/field-table.js';
import { amqpMethod, type AmqpMethod, type ArgsOf } from '../codec/methods.js';
import { AmqpBroker } from './broker.js';
import { AmqpSession, type SessionHost } from './session.js';

class FailingStore extends MemoryShardStore {
  failQueueAppends = false;
  /** While set, queue appends wait for `release()` (an fdatasync that takes its time). */
  holdQueueAppends = false;
  readonly #held: Array<() => void> = [];
  /** Every record appended to a queue shard, in order: [key as a number, value or null]. */
  readonly queueRecords: Array<[number, boolean]> = [];

  override async append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    if (this.failQueueAppends && name.startsWith('amqp.q.')) throw new Error('disk full');
    if (name.startsWith('amqp.q.')) {
      for (const record of records) this.queueRecords.push([Number((record.key as Buffer).readBigUInt64BE(0)), record.value !== null]);
      if (this.holdQueueAppends) await new Promise<void>((resolve) => this.#held.push(resolve));
    }
    return super.append(name, records, options);
  }

  release(): void {
    this.holdQueueAppends = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

interface Sent {
  channel: number;
  method: AmqpMethod;
  body?: string;
}

class Client implements SessionHost {
  readonly sent: Sent[] = [];
  readonly closes: Array<{ channel: number; error: AmqpCodecError }> = [];
  readonly session: AmqpSession;
  readonly cancelNotify = true;

  constructor(
    broker: AmqpBroker,
    readonly connectionId: string,
  ) {
    this.session = new AmqpSession(broker, this);
  }

  sendMethod(channel: number, method: AmqpMethod): void {
    this.sent.push({ channel, method });
  }

  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Buffer): void {
    const sent = { channel, method, body: body.toString() };
    const deaths = properties.headers?.get('x-death');
    const newest = deaths?.type === 'array' ? deaths.value[0] : undefined;
    const reason = newest?.type === 'table' ? newest.value.get('reason') : undefined;
    if (reason?.type === 'longstr') deathReasons.set(sent, Buffer.from(reason.value).toString());
    this.sent.push(sent);
  }

  closeChannel(channel: number, error: AmqpCodecError): void {
    this.closes.push({ channel, error });
    this.session.channelClosed(channel);
  }

  writable(): boolean {
    return true;
  }

  call(channel: number, method: AmqpMethod): void {
    this.session.command(channel, { channel, method });
  }

  publish(channel: number, exchange: string, routingKey: string, body: string, properties: BasicProperties = {}, mandatory = false): void {
    const command: Command = {
      channel,
      method: amqpMethod('basic.publish', { ticket: 0, exchange, routingKey, mandatory, immediate: false }),
      content: { header: { classId: 60, weight: 0, bodySize: BigInt(body.length), properties }, body: Buffer.from(body) },
    };
    this.session.command(channel, command);
  }

  names(): string[] {
    return this.sent.map((entry) => entry.method.name);
  }

  take(name: AmqpMethod['name']): Sent[] {
    const found = this.sent.filter((entry) => entry.method.name === name);
    this.sent.splice(0, this.sent.length, ...this.sent.filter((entry) => entry.method.name !== name));
    return found;
  }
}

const logger = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
const queueArgs = (queue: string, extra: Partial<ArgsOf<'queue.declare'>> = {}): ArgsOf<'queue.declare'> => ({ ticket: 0, queue, passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: new Map(), ...extra });

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i += 1) await settle();
  assert.ok(check(), 'condition not reached');
}

describe('AMQP session', () => {
  it('confirms a run of durable publishes in order, several at once with multiple', async () => {
    const store = new MemoryShardStore();
    const broker = await AmqpBroker.open({ store, logger });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('queue.declare', queueArgs('jobs')));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    for (let i = 0; i < 5; i += 1) client.publish(1, '', 'jobs', `m${i}`, { deliveryMode: 2 });
    await waitFor(() => client.sent.some((entry) => entry.method.name === 'basic.ack' && entry.method.args.deliveryTag === 5n));
    const acks = client.take('basic.ack').map((entry) => entry.method.args as ArgsOf<'basic.ack'>);
    assert.ok(acks.some((ack) => ack.multiple), 'at least one multiple ack for a batch');
    assert.equal(acks.at(-1)?.deliveryTag, 5n);
    // Tags only grow; each ack covers what the previous did not.
    for (let i = 1; i < acks.length; i += 1) assert.ok((acks[i]?.deliveryTag as bigint) > (acks[i - 1]?.deliveryTag as bigint));
  });

  it('nacks publishes whose append failed and acks the unroutable one at once', async () => {
    const store = new FailingStore();
    const broker = await AmqpBroker.open({ store, logger });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('queue.declare', queueArgs('jobs')));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await waitFor(() => client.names().includes('confirm.select-ok'));
    store.failQueueAppends = true;
    client.publish(1, '', 'jobs', 'lost', { deliveryMode: 2 });
    client.publish(1, 'amq.direct', 'nobody', 'unroutable', { deliveryMode: 2 });
    await waitFor(() => client.names().includes('basic.nack'));
    // Each told on its own: the nack of the failed append, the ack of the unroutable one.
    assert.deepEqual(
      client.sent
        .filter((entry) => entry.method.name === 'basic.nack' || entry.method.name === 'basic.ack')
        .map((entry) => [entry.method.name, (entry.method.args as ArgsOf<'basic.ack'>).deliveryTag, (entry.method.args as ArgsOf<'basic.ack'>).multiple] as const)
        .sort((a, b) => Number(a[1] - b[1])),
      [
        ['basic.nack', 1n, false],
        ['basic.ack', 2n, false],
      ],
    );
  });

  it('confirms a message consumed and acknowledged before it was written without writing it, and out of order', async () => {
    const store = new FailingStore();
    const broker = await AmqpBroker.open({ store, logger });
    const publisher = new Client(broker, 'p');
    const consumer = new Client(broker, 'c');
    publisher.call(1, amqpMethod('queue.declare', queueArgs('jobs')));
    publisher.call(1, amqpMethod('confirm.select', { noWait: false }));
    await waitFor(() => publisher.names().includes('confirm.select-ok'));
    consumer.call(1, amqpMethod('basic.consume', { ticket: 0, queue: 'jobs', consumerTag: 'c', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() }));
    store.holdQueueAppends = true;
    // m1's record goes into an append at once, which hangs; m2 and m3 wait for the next one.
    for (const body of ['m1', 'm2', 'm3']) publisher.publish(1, '', 'jobs', body, { deliveryMode: 2 });
    const deliveries = consumer.take('basic.deliver');
    assert.deepEqual(deliveries.map((entry) => entry.body), ['m1', 'm2', 'm3']);
    // The consumer acknowledges m2 and m3 while m1's append still waits.
    consumer.call(1, amqpMethod('basic.ack', { deliveryTag: 2n, multiple: false }));
    consumer.call(1, amqpMethod('basic.ack', { deliveryTag: 3n, multiple: false }));
    await waitFor(() => publisher.names().includes('basic.ack'));
    const early = publisher.take('basic.ack').map((entry) => [(entry.method.args as ArgsOf<'basic.ack'>).deliveryTag, (entry.method.args as ArgsOf<'basic.ack'>).multiple]);
    assert.deepEqual(early, [[2n, false], [3n, false]], 'm2 and m3 are confirmed on their own before m1');
    store.release();
    await waitFor(() => publisher.names().includes('basic.ack'));
    assert.deepEqual(publisher.take('basic.ack').map((entry) => [(entry.method.args as ArgsOf<'basic.ack'>).deliveryTag, (entry.method.args as ArgsOf<'basic.ack'>).multiple]), [[1n, false]], 'm1 once durable, not a multiple ack over 2 and 3 again');
    publisher.publish(1, '', 'jobs', 'm4', { deliveryMode: 2 });
    await waitFor(() => publisher.names().includes('basic.ack'));
    assert.deepEqual(publisher.take('basic.ack').map((entry) => (entry.method.args as ArgsOf<'basic.ack'>).deliveryTag), [4n]);
    // Only m1 and m4 reached the shard; m2 and m3 left no record and no tombstone.
    assert.deepEqual(store.queueRecords, [[1, true], [4, true]]);
    broker.close();
  });

  it('recovers durable queues from their shards: acked messages gone, the rest redelivered, transient ones lost', async () => {
    const store = new MemoryShardStore();
    const broker = await AmqpBroker.open({ store, logger });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('exchange.declare', { ticket: 0, exchange: 'ex', type: 'fanout', passive: false, durable: true, autoDelete: false, internal: false, noWait: false, arguments: new Map() }));
    client.call(1, amqpMethod('queue.declare', queueArgs('jobs')));
    client.call(1, amqpMethod('queue.bind', { ticket: 0, queue: 'jobs', exchange: 'ex', routingKey: '', noWait: false, arguments: new Map() }));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    client.publish(1, 'ex', '', 'a', { deliveryMode: 2 });
    client.publish(1, 'ex', '', 'b', { deliveryMode: 2 });
    client.publish(1, 'ex', '', 'transient', { deliveryMode: 1 });
    client.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'jobs', noAck: false }));
    client.call(1, amqpMethod('basic.ack', { deliveryTag: 1n, multiple: false }));
    client.publish(1, 'ex', '', 'c', { deliveryMode: 2 });
    await waitFor(() => client.sent.some((entry) => entry.method.name === 'basic.ack' && entry.method.args.deliveryTag === 4n));
    const reopened = await AmqpBroker.open({ store, logger });
    const after = new Client(reopened, 'c2');
    for (let i = 0; i < 3; i += 1) after.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'jobs', noAck: true }));
    const got = after.sent.map((entry) => [entry.method.name, entry.body, entry.method.name === 'basic.get-ok' ? entry.method.args.redelivered : undefined]);
    assert.deepEqual(got, [
      ['basic.get-ok', 'b', true],
      ['basic.get-ok', 'c', true],
      ['basic.get-empty', undefined, undefined],
    ]);
    assert.equal(reopened.topology.bindingsFrom('ex').length, 1);
  });

  it('a channel-wide prefetch (global) bounds all of its consumers together', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker, 'c1');
    for (const name of ['a', 'b']) client.call(1, amqpMethod('queue.declare', queueArgs(name, { durable: false })));
    await settle();
    client.call(1, amqpMethod('basic.qos', { prefetchSize: 0, prefetchCount: 3, global: true }));
    for (const name of ['a', 'b']) client.call(1, amqpMethod('basic.consume', { ticket: 0, queue: name, consumerTag: name, noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() }));
    for (let i = 0; i < 5; i += 1) {
      client.publish(2, '', 'a', `a${i}`);
      client.publish(2, '', 'b', `b${i}`);
    }
    await settle();
    assert.equal(client.take('basic.deliver').length, 3);
    client.call(1, amqpMethod('basic.ack', { deliveryTag: 3n, multiple: true }));
    await settle();
    assert.equal(client.take('basic.deliver').length, 3);
  });

  it('deletes exclusive queues with their connection and tells consumers of a deleted queue', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const owner = new Client(broker, 'c1');
    owner.call(1, amqpMethod('queue.declare', queueArgs('mine', { exclusive: true })));
    owner.call(1, amqpMethod('queue.declare', queueArgs('shared', { durable: false })));
    await settle();
    const other = new Client(broker, 'c2');
    other.call(1, amqpMethod('basic.consume', { ticket: 0, queue: 'shared', consumerTag: 'watch', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() }));
    other.call(2, amqpMethod('queue.declare', queueArgs('mine', { passive: true })));
    await settle();
    assert.equal(other.closes[0]?.error.replyCode, 405);
    owner.call(1, amqpMethod('queue.delete', { ticket: 0, queue: 'shared', ifUnused: false, ifEmpty: false, noWait: false }));
    await settle();
    assert.deepEqual(other.take('basic.cancel').map((entry) => entry.method.args), [{ consumerTag: 'watch', noWait: true }]);
    owner.session.closed();
    await settle();
    assert.equal(broker.queue('mine'), undefined);
  });

  it('refuses queue arguments it does not implement with 540 naming them', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('queue.declare', queueArgs('ttl', { arguments: fieldTable({ 'x-max-priority': { type: 'int32', value: 10 } }) })));
    client.call(2, amqpMethod('queue.declare', queueArgs('classic', { arguments: fieldTable({ 'x-queue-type': longstrValue('classic') }) })));
    await settle();
    assert.equal(client.closes.length, 1);
    assert.equal(client.closes[0]?.error.replyCode, 540);
    assert.match(client.closes[0]?.error.replyText ?? '', /x-max-priority/);
    assert.ok(client.names().includes('queue.declare-ok'));
    assert.equal(broker.queue('ttl'), undefined);
  });

  it('x-message-ttl and the expiration property expire messages at the head, dead-lettered with x-death', async () => {
    let now = 1_000_000;
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger, now: () => now });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('queue.declare', queueArgs('dead', { durable: false })));
    client.call(1, amqpMethod('queue.declare', queueArgs('short', { durable: false, arguments: fieldTable({ 'x-message-ttl': { type: 'int32', value: 1000 }, 'x-dead-letter-exchange': longstrValue(''), 'x-dead-letter-routing-key': longstrValue('dead') }) })));
    await settle();
    client.publish(2, '', 'short', 'old');
    now += 500;
    client.publish(2, '', 'short', 'own-ttl', { expiration: '100' });
    client.publish(2, '', 'short', 'young');
    now += 600;
    // 'old' (1000 ms) and then 'own-ttl' (100 ms) are expired at the head; 'young' is not.
    client.call(2, amqpMethod('basic.get', { ticket: 0, queue: 'short', noAck: true }));
    assert.equal(client.take('basic.get-ok')[0]?.body, 'young');
    const dead = (): string | undefined => {
      client.call(2, amqpMethod('basic.get', { ticket: 0, queue: 'dead', noAck: true }));
      const [got] = client.take('basic.get-ok');
      return got === undefined ? undefined : `${got.body}:${deathReason(client, got)}`;
    };
    assert.deepEqual([dead(), dead()], ['old:expired', 'own-ttl:expired']);
    // Only the head expires: a short-lived message behind a long-lived one waits for it.
    client.publish(2, '', 'short', 'long');
    client.publish(2, '', 'short', 'brief', { expiration: '10' });
    now += 50;
    broker.queue('short')?.queue.expire();
    assert.equal(broker.queue('short')?.queue.messageCount, 2);
    now += 1000;
    broker.queue('short')?.queue.expire();
    assert.equal(broker.queue('short')?.queue.messageCount, 0);
    assert.deepEqual([dead(), dead()], ['long:expired', 'brief:expired']);
    broker.close();
  });

  it('x-max-length drops the oldest to the dead-letter exchange; reject without requeue dead-letters with reason rejected', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker, 'c1');
    const dlx = fieldTable({ 'x-dead-letter-exchange': longstrValue('amq.fanout') });
    client.call(1, amqpMethod('queue.declare', queueArgs('graveyard', { durable: false })));
    client.call(1, amqpMethod('queue.bind', { ticket: 0, queue: 'graveyard', exchange: 'amq.fanout', routingKey: '', noWait: false, arguments: new Map() }));
    client.call(1, amqpMethod('queue.declare', queueArgs('bounded', { durable: false, arguments: new Map([...dlx, ['x-max-length', { type: 'int32', value: 2 }]]) })));
    await settle();
    for (const body of ['a', 'b', 'c']) client.publish(2, '', 'bounded', body);
    client.call(2, amqpMethod('basic.get', { ticket: 0, queue: 'bounded', noAck: false }));
    assert.equal(client.take('basic.get-ok')[0]?.body, 'b');
    client.call(2, amqpMethod('basic.reject', { deliveryTag: 1n, requeue: false }));
    const reasons: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      client.call(2, amqpMethod('basic.get', { ticket: 0, queue: 'graveyard', noAck: true }));
      const [got] = client.take('basic.get-ok');
      assert.ok(got !== undefined);
      reasons.push(`${got.body}:${deathReason(client, got)}`);
    }
    assert.deepEqual(reasons, ['a:maxlen', 'b:rejected']);
    client.call(3, amqpMethod('queue.declare', queueArgs('bounded', { durable: false, arguments: new Map([...dlx, ['x-max-length', { type: 'int32', value: 3 }]]) })));
    await settle();
    assert.equal(client.closes.at(-1)?.error.replyCode, 406, 'a redeclare with another x-max-length');
    assert.equal(client.closes.at(-1)?.channel, 3);
    client.call(2, amqpMethod('queue.declare', queueArgs('negative', { durable: false, arguments: fieldTable({ 'x-max-length': { type: 'int32', value: -1 } }) })));
    await settle();
    assert.equal(client.closes.at(-1)?.error.replyCode, 406);
    broker.close();
  });

  it('tx: publishes and acknowledgements wait for tx.commit, tx.rollback drops them', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker, 'c1');
    client.call(1, amqpMethod('queue.declare', queueArgs('txq')));
    client.call(1, amqpMethod('tx.select', {}));
    client.publish(1, '', 'txq', 'held', { deliveryMode: 2 });
    await settle();
    assert.equal(broker.queue('txq')?.queue.messageCount, 0, 'not routed before the commit');
    client.call(1, amqpMethod('tx.commit', {}));
    await waitFor(() => client.names().includes('tx.commit-ok'));
    assert.equal(broker.queue('txq')?.queue.messageCount, 1);
    client.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'txq', noAck: false }));
    client.call(1, amqpMethod('basic.ack', { deliveryTag: 1n, multiple: false }));
    client.publish(1, '', 'txq', 'rolled-back');
    client.call(1, amqpMethod('tx.rollback', {}));
    await waitFor(() => client.names().includes('tx.rollback-ok'));
    assert.equal(broker.queue('txq')?.queue.messageCount, 0, 'the publish was dropped');
    client.call(1, amqpMethod('basic.recover', { requeue: true }));
    await settle();
    assert.equal(broker.queue('txq')?.queue.messageCount, 1, 'the ack was dropped too: the message is still unacknowledged, so recover requeues it');
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    await settle();
    assert.equal(client.closes[0]?.error.replyCode, 406);
  });
});

const deathReasons = new WeakMap<Sent, string>();

/** The reason of a dead-lettered delivery's newest x-death entry. */
function deathReason(_client: Client, sent: Sent): string | undefined {
  return deathReasons.get(sent);
}
