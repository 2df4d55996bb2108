// x-overflow reject-publish / reject-publish-dlx, x-expires and the alternate-exchange argument,
// through a session over an in-memory shard store, with a hand-driven clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { fieldTable, longstrValue, type FieldTable } from '../codec/field-table.js';
import { amqpMethod, type AmqpMethod, type ArgsOf } from '../codec/methods.js';
import { AmqpBroker } from './broker.js';
import { RecordingClient as Client } from './testing.js';

const logger = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
/** Confirms by sequence number: one that settles while an earlier one waits for its append is sent first. */
const bySequence = (confirms: string[]): string[] => [...confirms].sort((a, b) => Number(a.split(':')[1]) - Number(b.split(':')[1]));
const queueArgs = (queue: string, args: FieldTable = new Map(), durable = false): ArgsOf<'queue.declare'> => ({ ticket: 0, queue, passive: false, durable, exclusive: false, autoDelete: false, noWait: false, arguments: args });
const int = (value: number) => ({ type: 'int32', value }) as const;
const exchangeArgs = (exchange: string, type: string, args: FieldTable = new Map()): ArgsOf<'exchange.declare'> => ({ ticket: 0, exchange, type, passive: false, durable: false, autoDelete: false, internal: false, noWait: false, arguments: args });
const bind = (queue: string, exchange: string, routingKey = ''): AmqpMethod => amqpMethod('queue.bind', { ticket: 0, queue, exchange, routingKey, noWait: false, arguments: new Map() });

describe('x-overflow reject-publish', () => {
  it('nacks the publishes past x-max-length under confirms and keeps the queue as it was', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker);
    client.call(1, amqpMethod('queue.declare', queueArgs('bounded', fieldTable({ 'x-max-length': int(2), 'x-overflow': longstrValue('reject-publish') }), true)));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    for (const body of ['a', 'b', 'c', 'd']) client.publish(1, '', 'bounded', body);
    await settle();
    assert.deepEqual(bySequence(client.confirms()), ['ack:1', 'ack:2', 'nack:3', 'nack:4']);
    assert.deepEqual(client.drain(1, 'bounded'), ['a', 'b'], 'the oldest stay: nothing was dropped at the head');
    client.publish(1, '', 'bounded', 'e');
    await settle();
    assert.deepEqual(client.confirms().at(-1), 'ack:5', 'room again once the queue was read');
    broker.close();
  });

  it('counts x-max-length-bytes, and a publish routed to a full queue and a free one is nacked while the free one keeps it', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker);
    client.call(1, amqpMethod('queue.declare', queueArgs('small', fieldTable({ 'x-max-length-bytes': int(5), 'x-overflow': longstrValue('reject-publish') }))));
    client.call(1, amqpMethod('queue.declare', queueArgs('free')));
    client.call(1, bind('small', 'amq.fanout'));
    client.call(1, bind('free', 'amq.fanout'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    client.publish(1, 'amq.fanout', '', 'abc');
    client.publish(1, 'amq.fanout', '', 'def');
    client.publish(1, 'amq.fanout', '', 'gh');
    await settle();
    assert.deepEqual(bySequence(client.confirms()), ['ack:1', 'nack:2', 'ack:3']);
    assert.deepEqual(client.drain(1, 'small'), ['abc', 'gh']);
    assert.deepEqual(client.drain(1, 'free'), ['abc', 'def', 'gh']);
    broker.close();
  });

  it('reject-publish-dlx dead-letters what it refuses (reason maxlen); without confirms the publisher is told nothing', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker);
    client.call(1, amqpMethod('queue.declare', queueArgs('graveyard')));
    client.call(1, amqpMethod('queue.declare', queueArgs('bounded', fieldTable({ 'x-max-length': int(1), 'x-overflow': longstrValue('reject-publish-dlx'), 'x-dead-letter-exchange': longstrValue(''), 'x-dead-letter-routing-key': longstrValue('graveyard') }))));
    for (const body of ['kept', 'refused']) client.publish(1, '', 'bounded', body);
    await settle();
    assert.deepEqual(bySequence(client.confirms()), []);
    assert.deepEqual(client.drain(1, 'bounded'), ['kept']);
    client.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'graveyard', noAck: true }));
    const dead = client.sent.at(-1);
    assert.equal(dead?.body, 'refused');
    const death = dead?.properties?.headers?.get('x-death');
    const entry = death?.type === 'array' ? death.value[0] : undefined;
    const reason = entry?.type === 'table' ? entry.value.get('reason') : undefined;
    assert.equal(reason?.type === 'longstr' ? Buffer.from(reason.value).toString() : undefined, 'maxlen');
    broker.close();
  });

  it('a refused publish in a transaction does not fail the commit; an unknown overflow is 406', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker);
    client.call(1, amqpMethod('queue.declare', queueArgs('bounded', fieldTable({ 'x-max-length': int(0), 'x-overflow': longstrValue('reject-publish') }))));
    client.call(1, amqpMethod('tx.select', {}));
    client.publish(1, '', 'bounded', 'x');
    client.call(1, amqpMethod('tx.commit', {}));
    await settle();
    assert.ok(client.sent.some((sent) => sent.method.name === 'tx.commit-ok'));
    client.call(2, amqpMethod('queue.declare', queueArgs('odd', fieldTable({ 'x-overflow': longstrValue('drop-tail') }))));
    await settle();
    assert.equal(client.closes[0]?.error.replyCode, 406);
    broker.close();
  });
});

describe('x-expires', () => {
  it('deletes a queue unused for that long; a declare or a get uses it, a consumer keeps it', async () => {
    let now = 1_000_000;
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger, now: () => now });
    const client = new Client(broker);
    const expiring = queueArgs('brief', fieldTable({ 'x-expires': int(5000) }), true);
    client.call(1, amqpMethod('queue.declare', expiring));
    await settle();
    now += 4000;
    broker.sweep();
    client.call(1, amqpMethod('queue.declare', expiring));
    await settle();
    now += 4000;
    broker.sweep();
    client.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'brief', noAck: true }));
    now += 4000;
    broker.sweep();
    await settle();
    assert.ok(broker.queue('brief') !== undefined, 'each use started the time again');
    client.call(1, amqpMethod('basic.consume', { ticket: 0, queue: 'brief', consumerTag: 'ct', noLocal: false, noAck: true, exclusive: false, noWait: false, arguments: new Map() }));
    now += 60_000;
    broker.sweep();
    await settle();
    assert.ok(broker.queue('brief') !== undefined, 'a queue with a consumer is in use');
    client.call(1, amqpMethod('basic.cancel', { consumerTag: 'ct', noWait: false }));
    now += 4999;
    broker.sweep();
    await settle();
    assert.ok(broker.queue('brief') !== undefined);
    now += 1;
    broker.sweep();
    await settle();
    assert.equal(broker.queue('brief'), undefined, 'unused for 5000 ms after the consumer went');
    assert.equal(broker.topology.queues.has('brief'), false);
    client.call(1, amqpMethod('queue.declare', queueArgs('watched', fieldTable({ 'x-expires': int(1000) }))));
    await settle();
    now += 600;
    client.call(1, amqpMethod('queue.declare', { ...queueArgs('watched'), passive: true }));
    now += 400;
    broker.sweep();
    await settle();
    assert.equal(broker.queue('watched'), undefined, 'a passive declare only looks: it does not renew x-expires');
    client.call(2, amqpMethod('queue.declare', queueArgs('zero', fieldTable({ 'x-expires': int(0) }))));
    await settle();
    assert.equal(client.closes[0]?.error.replyCode, 406, 'x-expires 0 is refused as RabbitMQ does');
    broker.close();
  });
});

describe('alternate-exchange', () => {
  it('routes what the exchange cannot route through its alternate, along a chain that ends at a cycle', async () => {
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger });
    const client = new Client(broker);
    client.call(1, amqpMethod('exchange.declare', exchangeArgs('orders', 'direct', fieldTable({ 'alternate-exchange': longstrValue('unrouted') }))));
    client.call(1, amqpMethod('exchange.declare', exchangeArgs('unrouted', 'fanout')));
    client.call(1, amqpMethod('queue.declare', queueArgs('eu')));
    client.call(1, amqpMethod('queue.declare', queueArgs('leftovers')));
    client.call(1, bind('eu', 'orders', 'eu'));
    client.call(1, bind('leftovers', 'unrouted'));
    client.publish(1, 'orders', 'eu', 'routed');
    client.publish(1, 'orders', 'us', 'stray', true);
    await settle();
    assert.deepEqual(client.drain(1, 'eu'), ['routed']);
    assert.deepEqual(client.drain(1, 'leftovers'), ['stray']);
    assert.equal(client.sent.filter((sent) => sent.method.name === 'basic.return').length, 0, 'routed by the alternate: no basic.return');

    client.call(1, amqpMethod('exchange.declare', exchangeArgs('ping', 'direct', fieldTable({ 'alternate-exchange': longstrValue('pong') }))));
    client.call(1, amqpMethod('exchange.declare', exchangeArgs('pong', 'direct', fieldTable({ 'alternate-exchange': longstrValue('ping') }))));
    client.publish(1, 'ping', 'nowhere', 'lost', true);
    await settle();
    assert.equal(client.sent.filter((sent) => sent.method.name === 'basic.return').length, 1, 'a cycle of alternates ends unroutable');
    client.call(2, amqpMethod('exchange.declare', exchangeArgs('bad', 'direct', fieldTable({ 'alternate-exchange': int(1) }))));
    await settle();
    assert.equal(client.closes[0]?.error.replyCode, 406);
    broker.close();
  });
});
