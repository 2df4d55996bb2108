// The AMQP 0-9-1 broker end to end: real `shardline start` processes with --amqp-port, the real
// amqplib and amqp-connection-manager clients.
//
// Covered: the four exchange types and the predeclared exchanges; queue declare (server-named,
// counts, passive), bind/unbind, purge, delete (if-empty), auto-delete and exclusive
// lifecycles; refusals with their reply codes (404 missing exchange / queue, 406 redeclare with
// another type and exchange delete if-unused, 405 another connection's exclusive queue, 403 an
// exclusive consumer, 312 in basic.return); work queues across two consumers with prefetch; a
// consumer that never acks gets no more than its prefetch; nack/reject with and without requeue
// (redelivered set), get / get-empty, recover; publisher confirms through amqp-connection-manager's
// ChannelWrapper; consumer cancel notification when a queue is deleted; and kill -9 of the node:
// confirmed persistent messages in a durable queue survive, acked ones are not redelivered,
// unacked ones come back with redelivered=true, durable exchanges and bindings remain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import amqpManager from 'amqp-connection-manager';
import { encodeContentHeaderPayload, encodeFrame, FrameType, MAX_BODY_SIZE, type AmqpMethod } from '../protocols/amqp/index.js';
import { cleanup, killBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { amqpAddress, RawAmqp } from './support/raw-amqp.js';

function amqpUrl(broker: BrokerProcess): string {
  for (const line of broker.broker.lines) {
    try {
      const entry = JSON.parse(line) as { amqp?: string };
      if (typeof entry.amqp === 'string') return `amqp://guest:guest@${entry.amqp}`;
    } catch {
      // not a JSON line
    }
  }
  throw new Error('no amqp= in the listening line');
}

/** Collects deliveries of a consumer; `next(n)` waits (bounded) for the n-th. */
class Inbox {
  readonly messages: amqp.ConsumeMessage[] = [];
  #waiters: Array<() => void> = [];

  push = (message: amqp.ConsumeMessage | null): void => {
    if (message !== null) this.messages.push(message);
    for (const waiter of this.#waiters.splice(0)) waiter();
  };

  async count(n: number, timeoutMs = 10_000): Promise<amqp.ConsumeMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      if (Date.now() > deadline) throw new Error(`${this.messages.length} of ${n} messages arrived`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.messages.slice(0, n);
  }
}

const bodies = (messages: readonly { content: Buffer }[]): string[] => messages.map((message) => message.content.toString());

/** A round trip on the channel: everything sent before it was handled. */
async function sync(channel: amqp.Channel): Promise<void> {
  await channel.checkExchange('amq.direct');
}

describe('AMQP messaging', () => {
  let broker: BrokerProcess;
  let url: string;
  const connections: amqp.ChannelModel[] = [];

  async function connect(): Promise<amqp.ChannelModel> {
    const connection = await amqp.connect(url);
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  }

  async function channel(): Promise<amqp.Channel> {
    const created = await (await connect()).createChannel();
    created.on('error', () => undefined);
    return created;
  }

  before(async () => {
    broker = await startBroker({ args: ['--amqp-port', '0'] });
    url = amqpUrl(broker);
  });

  after(async () => {
    for (const connection of connections) await connection.close().catch(() => undefined);
    try {
      await stopBroker(broker);
    } finally {
      await cleanup();
    }
  });

  it('routes through direct, fanout, topic and headers exchanges and the default exchange', async () => {
    const ch = await channel();
    await ch.assertExchange('t.direct', 'direct', { durable: false });
    await ch.assertExchange('t.fanout', 'fanout', { durable: false });
    await ch.assertExchange('t.topic', 'topic', { durable: false });
    await ch.assertExchange('t.headers', 'headers', { durable: false });
    const q = async (name: string): Promise<string> => (await ch.assertQueue(name, { durable: false })).queue;
    const [d1, d2, f1, f2, t1, t2, t3, hAll, hAny] = await Promise.all(['d1', 'd2', 'f1', 'f2', 't1', 't2', 't3', 'h-all', 'h-any'].map((name) => q(`route.${name}`)));
    await ch.bindQueue(d1 as string, 't.direct', 'red');
    await ch.bindQueue(d2 as string, 't.direct', 'green');
    await ch.bindQueue(f1 as string, 't.fanout', 'ignored');
    await ch.bindQueue(f2 as string, 't.fanout', '');
    await ch.bindQueue(t1 as string, 't.topic', 'stock.*.nyse');
    await ch.bindQueue(t2 as string, 't.topic', 'stock.#');
    await ch.bindQueue(t3 as string, 't.topic', '#.nyse');
    await ch.bindQueue(hAll as string, 't.headers', '', { 'x-match': 'all', format: 'pdf', type: 'report' });
    await ch.bindQueue(hAny as string, 't.headers', '', { 'x-match': 'any', format: 'pdf', type: 'report' });
    ch.publish('t.direct', 'red', Buffer.from('direct-red'));
    ch.publish('t.direct', 'blue', Buffer.from('direct-blue'));
    ch.publish('t.fanout', 'whatever', Buffer.from('fanout'));
    ch.publish('t.topic', 'stock.ibm.nyse', Buffer.from('ibm-nyse'));
    ch.publish('t.topic', 'stock.nyse', Buffer.from('stock-nyse'));
    ch.publish('t.topic', 'bond.x.y.nyse', Buffer.from('bond-nyse'));
    ch.publish('t.headers', '', Buffer.from('pdf-report'), { headers: { format: 'pdf', type: 'report' } });
    ch.publish('t.headers', '', Buffer.from('pdf-log'), { headers: { format: 'pdf', type: 'log' } });
    ch.sendToQueue(d2 as string, Buffer.from('default-exchange'));
    await sync(ch);
    const drain = async (queue: string): Promise<string[]> => {
      const got: string[] = [];
      for (;;) {
        const message = await ch.get(queue, { noAck: true });
        if (message === false) return got;
        got.push(message.content.toString());
      }
    };
    assert.deepEqual(await drain(d1 as string), ['direct-red']);
    assert.deepEqual(await drain(d2 as string), ['default-exchange']);
    assert.deepEqual(await drain(f1 as string), ['fanout']);
    assert.deepEqual(await drain(f2 as string), ['fanout']);
    assert.deepEqual(await drain(t1 as string), ['ibm-nyse']);
    assert.deepEqual(await drain(t2 as string), ['ibm-nyse', 'stock-nyse']);
    assert.deepEqual(await drain(t3 as string), ['ibm-nyse', 'stock-nyse', 'bond-nyse']);
    assert.deepEqual(await drain(hAll as string), ['pdf-report']);
    assert.deepEqual(await drain(hAny as string), ['pdf-report', 'pdf-log']);
    // unbind: the next red message no longer reaches d1.
    await ch.unbindQueue(d1 as string, 't.direct', 'red');
    ch.publish('t.direct', 'red', Buffer.from('after-unbind'));
    await sync(ch);
    assert.deepEqual(await drain(d1 as string), []);
    // Exchange-to-exchange: t.fanout's messages also reach whatever amq.direct routes.
    await ch.bindExchange('amq.direct', 't.fanout', '');
    await ch.bindQueue(d1 as string, 'amq.direct', 'via-e2e');
    ch.publish('t.fanout', 'via-e2e', Buffer.from('e2e'));
    await sync(ch);
    assert.deepEqual(await drain(d1 as string), ['e2e']);
    await ch.unbindExchange('amq.direct', 't.fanout', '');
    ch.publish('t.fanout', 'via-e2e', Buffer.from('after-unbind'));
    await sync(ch);
    assert.deepEqual(await drain(d1 as string), []);
    // amq.topic is there without a declare.
    await ch.bindQueue(t1 as string, 'amq.topic', 'a.#');
    ch.publish('amq.topic', 'a.b', Buffer.from('amq-topic'));
    await sync(ch);
    assert.deepEqual(await drain(t1 as string), ['amq-topic']);
  });

  it('declares server-named queues and reports message and consumer counts; purge and delete', async () => {
    const ch = await channel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.match(queue, /^amq\.gen-/);
    for (let i = 0; i < 3; i += 1) ch.sendToQueue(queue, Buffer.from(`m${i}`));
    await sync(ch);
    const declared = await ch.checkQueue(queue);
    assert.equal(declared.messageCount, 3);
    assert.equal(declared.consumerCount, 0);
    await assert.rejects(ch.deleteQueue(queue, { ifEmpty: true }), /406/);
    const other = await channel();
    assert.equal((await other.purgeQueue('route.d2').catch(() => ({ messageCount: -1 }))).messageCount, 0);
    const purgeCh = await (connections.at(-2) as amqp.ChannelModel).createChannel();
    assert.equal((await purgeCh.purgeQueue(queue)).messageCount, 3);
    assert.equal((await purgeCh.deleteQueue(queue, { ifEmpty: true })).messageCount, 0);
    await assert.rejects(purgeCh.checkQueue(queue), /404/);
  });

  it('refuses with the reply codes: 404, 406, 405, 403, and 312 in basic.return', async () => {
    const ch = await channel();
    await assert.rejects(ch.checkExchange('no-such-exchange'), /404.*NOT_FOUND - no exchange 'no-such-exchange'/);
    const ch2 = await channel();
    await ch2.assertExchange('typed', 'direct', { durable: false });
    await assert.rejects(ch2.assertExchange('typed', 'fanout', { durable: false }), /406.*PRECONDITION_FAILED - inequivalent arg 'type'/);
    const ch3 = await channel();
    await ch3.assertExchange('used', 'direct', { durable: false });
    await ch3.assertQueue('used.q', { durable: false });
    await ch3.bindQueue('used.q', 'used', 'k');
    await assert.rejects(ch3.deleteExchange('used', { ifUnused: true }), /406.*in use/);
    const owner = await channel();
    await owner.assertQueue('mine', { exclusive: true });
    const intruder = await channel();
    await assert.rejects(intruder.consume('mine', () => undefined), /405.*RESOURCE_LOCKED/);
    const first = await channel();
    await first.assertQueue('solo', { durable: false });
    await first.consume('solo', () => undefined, { exclusive: true });
    const second = await channel();
    await assert.rejects(second.consume('solo', () => undefined), /403.*ACCESS_REFUSED.*exclusive use/);
    const returns = await channel();
    const returned = new Promise<amqp.Message>((resolve) => returns.once('return', resolve));
    returns.publish('amq.direct', 'nobody-bound', Buffer.from('lost'), { mandatory: true });
    const message = await returned;
    assert.equal((message.fields as amqp.MessageFields & { replyCode?: number }).replyCode, 312);
    assert.equal(message.content.toString(), 'lost');
  });

  it('a publish to a missing exchange closes that channel with 404; the connection and others go on', async () => {
    const connection = await connect();
    const doomed = await connection.createChannel();
    const closed = new Promise<Error>((resolve) => doomed.once('error', resolve));
    const healthy = await connection.createChannel();
    doomed.publish('missing-exchange', 'k', Buffer.from('x'));
    assert.match(String(await closed), /404.*no exchange 'missing-exchange'/);
    await healthy.assertQueue('still-works', { durable: false });
    healthy.sendToQueue('still-works', Buffer.from('ok'));
    await sync(healthy);
    const got = await healthy.get('still-works', { noAck: true });
    assert.ok(got !== false && got.content.toString() === 'ok');
  });

  it('over a raw socket: a body over the limit is 406 on its channel, a body without a header 505 on the connection', async () => {
    const client = await RawAmqp.open(amqpAddress(broker));
    await client.handshake();
    client.sendMethod(1, { name: 'channel.open', args: { outOfBand: '' } });
    client.sendMethod(2, { name: 'channel.open', args: { outOfBand: '' } });
    assert.equal((await client.method()).method.name, 'channel.open-ok');
    assert.equal((await client.method()).method.name, 'channel.open-ok');
    const publish: AmqpMethod = { name: 'basic.publish', args: { ticket: 0, exchange: '', routingKey: 'raw', mandatory: false, immediate: false } };
    client.sendMethod(1, publish);
    client.send(encodeFrame(FrameType.header, 1, encodeContentHeaderPayload(60, BigInt(MAX_BODY_SIZE + 1), {})));
    client.send(encodeFrame(FrameType.body, 1, Buffer.alloc(1000)));
    const refused = await client.method();
    assert.equal(refused.channel, 1);
    assert.equal(refused.method.name, 'channel.close');
    const args = (refused.method as Extract<AmqpMethod, { name: 'channel.close' }>).args;
    assert.equal(args.replyCode, 406, args.replyText);
    assert.deepEqual([args.classId, args.methodId], [60, 40]);
    // Channel 2 is unharmed: a publish to a missing exchange closes it with 404 naming basic.publish.
    client.sendMethod(2, { ...publish, args: { ...(publish.args as object), exchange: 'nowhere' } } as AmqpMethod);
    client.send(encodeFrame(FrameType.header, 2, encodeContentHeaderPayload(60, 1n, {})));
    client.send(encodeFrame(FrameType.body, 2, Buffer.from('x')));
    const missing = await client.method();
    assert.equal(missing.channel, 2);
    const missingArgs = (missing.method as Extract<AmqpMethod, { name: 'channel.close' }>).args;
    assert.equal(missingArgs.replyCode, 404, missingArgs.replyText);
    assert.deepEqual([missingArgs.classId, missingArgs.methodId], [60, 40]);
    client.sendMethod(1, { name: 'channel.close-ok', args: {} });
    client.sendMethod(2, { name: 'channel.close-ok', args: {} });
    client.sendMethod(3, { name: 'channel.open', args: { outOfBand: '' } });
    assert.equal((await client.method()).method.name, 'channel.open-ok');
    client.send(encodeFrame(FrameType.body, 3, Buffer.from('stray')));
    await client.expectConnectionClose(505);
    // Others are unharmed.
    const ch = await channel();
    await ch.checkExchange('amq.topic');
  });

  it('shares a work queue between two consumers, each bounded by its prefetch', async () => {
    const producer = await channel();
    await producer.assertQueue('work', { durable: false });
    const [a, b] = [await channel(), await channel()];
    await a.prefetch(2);
    await b.prefetch(3);
    const inboxA = new Inbox();
    const inboxB = new Inbox();
    // Neither acks: each stops at its prefetch.
    await a.consume('work', inboxA.push);
    await b.consume('work', inboxB.push);
    for (let i = 0; i < 20; i += 1) producer.sendToQueue('work', Buffer.from(`job${i}`));
    await inboxA.count(2);
    await inboxB.count(3);
    await sync(producer);
    await sync(a);
    await sync(b);
    assert.equal(inboxA.messages.length, 2);
    assert.equal(inboxB.messages.length, 3);
    assert.equal((await producer.checkQueue('work')).messageCount, 15);
    // One ack gives A room for one more.
    a.ack(inboxA.messages[0] as amqp.ConsumeMessage);
    await inboxA.count(3);
    await sync(a);
    assert.equal(inboxA.messages.length, 3);
    const seen = new Set(bodies([...inboxA.messages, ...inboxB.messages]));
    assert.equal(seen.size, 6, 'no message went to both');
  });

  it('nack and reject with requeue redeliver with redelivered=true; without requeue they are dropped; recover', async () => {
    const ch = await channel();
    await ch.assertQueue('retry', { durable: false });
    ch.sendToQueue('retry', Buffer.from('one'));
    ch.sendToQueue('retry', Buffer.from('two'));
    await sync(ch);
    const first = await ch.get('retry');
    assert.ok(first !== false);
    assert.equal(first.fields.redelivered, false);
    ch.nack(first, false, true);
    const again = await ch.get('retry');
    assert.ok(again !== false);
    assert.equal(again.content.toString(), 'one', 'a requeued message goes back to its place');
    assert.equal(again.fields.redelivered, true);
    ch.reject(again, false);
    const second = await ch.get('retry');
    assert.ok(second !== false && second.content.toString() === 'two');
    await ch.recover();
    const recovered = await ch.get('retry', { noAck: true });
    assert.ok(recovered !== false && recovered.content.toString() === 'two' && recovered.fields.redelivered);
    assert.equal(await ch.get('retry'), false);
    // An unknown delivery tag closes the channel with 406.
    const closed = new Promise<Error>((resolve) => ch.once('error', resolve));
    ch.ack({ fields: { deliveryTag: 999 } } as amqp.Message);
    assert.match(String(await closed), /406.*unknown delivery tag 999/);
  });

  it('confirms publishes through amqp-connection-manager (multiple acks included)', async () => {
    const manager = amqpManager.connect([url]);
    try {
      const wrapper = manager.createChannel({ json: false, setup: (ch: amqp.ConfirmChannel) => ch.assertQueue('confirmed', { durable: true }) });
      await wrapper.waitForConnect();
      await Promise.all(Array.from({ length: 50 }, (_, i) => wrapper.sendToQueue('confirmed', Buffer.from(`c${i}`), { persistent: true })));
      // Unroutable, not mandatory: confirmed at once.
      await wrapper.publish('amq.direct', 'nobody', Buffer.from('x'));
      const ch = await channel();
      assert.equal((await ch.checkQueue('confirmed')).messageCount, 50);
      await ch.deleteQueue('confirmed');
      await wrapper.close();
    } finally {
      await manager.close();
    }
  });

  it('dead-letters expired (x-message-ttl), dropped (x-max-length) and rejected messages with x-death', async () => {
    const ch = await channel();
    await ch.assertQueue('dlq', { durable: false });
    const inbox = new Inbox();
    await ch.consume('dlq', inbox.push, { noAck: true });
    await ch.assertQueue('ttl.q', { durable: false, messageTtl: 50, deadLetterExchange: '', deadLetterRoutingKey: 'dlq' });
    await ch.assertQueue('len.q', { durable: false, maxLength: 1, deadLetterExchange: '', deadLetterRoutingKey: 'dlq' });
    ch.sendToQueue('ttl.q', Buffer.from('expired'));
    const [expired] = await inbox.count(1);
    ch.sendToQueue('len.q', Buffer.from('dropped'));
    ch.sendToQueue('len.q', Buffer.from('kept'));
    const [, dropped] = await inbox.count(2);
    const kept = await ch.get('len.q');
    assert.ok(kept !== false && kept.content.toString() === 'kept');
    ch.reject(kept, false);
    const [, , rejected] = await inbox.count(3);
    const death = (message: amqp.ConsumeMessage | undefined): unknown => {
      const entries = message?.properties.headers?.['x-death'] as Array<{ reason: string; queue: string; count: number }> | undefined;
      return entries?.map((entry) => [entry.reason, entry.queue, Number(entry.count)]);
    };
    assert.deepEqual(
      [expired, dropped, rejected].map((message) => [message?.content.toString(), death(message)]),
      [
        ['expired', [['expired', 'ttl.q', 1]]],
        ['dropped', [['maxlen', 'len.q', 1]]],
        ['kept', [['rejected', 'len.q', 1]]],
      ],
    );
    await assert.rejects((await channel()).assertQueue('prio', { maxPriority: 5 }), /540.*x-max-priority/);
  });

  it('tells a consumer when its queue is deleted; an auto-delete queue goes with its last consumer', async () => {
    const ch = await channel();
    await ch.assertQueue('doomed', { durable: false });
    const cancelled = new Promise<void>((resolve) => {
      void ch.consume('doomed', (message) => {
        if (message === null) resolve();
      });
    });
    const other = await channel();
    await other.deleteQueue('doomed');
    await cancelled;
    await other.assertQueue('fleeting', { durable: false, autoDelete: true });
    const { consumerTag } = await other.consume('fleeting', () => undefined);
    await other.cancel(consumerTag);
    const checker = await channel();
    await assert.rejects(checker.checkQueue('fleeting'), /404/);
  });
});

describe('AMQP durability across kill -9', () => {
  after(cleanup);

  it('keeps confirmed persistent messages, durable exchanges and bindings; acked ones stay gone, unacked come back redelivered', { timeout: 180_000 }, async () => {
    const first = await startBroker({ args: ['--amqp-port', '0'] });
    const connection = await amqp.connect(amqpUrl(first));
    connection.on('error', () => undefined);
    const ch = await connection.createConfirmChannel();
    ch.on('error', () => undefined);
    await ch.assertExchange('orders', 'topic', { durable: true });
    await ch.assertQueue('orders.eu', { durable: true });
    await ch.bindQueue('orders.eu', 'orders', 'eu.#');
    await ch.assertQueue('scratch', { durable: false });
    for (let i = 0; i < 10; i += 1) ch.publish('orders', 'eu.fr', Buffer.from(`order${i}`), { persistent: true });
    ch.publish('orders', 'eu.fr', Buffer.from('transient'), { persistent: false });
    await ch.waitForConfirms();
    const consumer = await connection.createChannel();
    consumer.on('error', () => undefined);
    const m0 = await consumer.get('orders.eu');
    const m1 = await consumer.get('orders.eu');
    assert.ok(m0 !== false && m1 !== false);
    assert.deepEqual(bodies([m0, m1]), ['order0', 'order1']);
    consumer.ack(m0);
    // m1 stays unacknowledged. A confirmed publish to the same queue after the ack means the
    // ack's record (written in the queue's order) is durable too.
    ch.publish('orders', 'eu.fr', Buffer.from('marker'), { persistent: true });
    await ch.waitForConfirms();

    await killBroker(first);
    const second = await startBroker({ dataDir: first.dataDir, args: ['--amqp-port', '0'] });
    try {
      const again = await amqp.connect(amqpUrl(second));
      again.on('error', () => undefined);
      const after = await again.createChannel();
      after.on('error', () => undefined);
      const declared = await after.checkQueue('orders.eu');
      assert.equal(declared.messageCount, 10, 'order1..order9 and the marker; order0 was acked, the transient message is gone');
      const got: amqp.GetMessage[] = [];
      for (;;) {
        const message = await after.get('orders.eu');
        if (message === false) break;
        got.push(message);
      }
      assert.deepEqual(bodies(got), ['order1', 'order2', 'order3', 'order4', 'order5', 'order6', 'order7', 'order8', 'order9', 'marker']);
      assert.equal(got[0]?.fields.redelivered, true, 'the unacked message comes back redelivered');
      after.ackAll();
      // The durable exchange and binding are back; the non-durable queue is not.
      after.publish('orders', 'eu.de', Buffer.from('after-restart'), { persistent: true });
      await sync(after);
      const routed = await after.get('orders.eu', { noAck: true });
      assert.ok(routed !== false && routed.content.toString() === 'after-restart');
      await assert.rejects(after.checkQueue('scratch'), /404/);
      await again.close();
      await connection.close().catch(() => undefined);
    } finally {
      await stopBroker(second);
    }
  });
});
