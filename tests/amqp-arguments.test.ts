// RabbitMQ's queue and exchange arguments that refuse or reroute, against a real node with
// amqplib: x-overflow reject-publish (basic.nack under confirms) and reject-publish-dlx, x-expires
// (the queue goes once unused), and the alternate-exchange exchange argument.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { cleanup, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';

function amqpAddress(broker: BrokerProcess): string {
  for (const line of broker.broker.lines) {
    try {
      const entry = JSON.parse(line) as { amqp?: string };
      if (typeof entry.amqp === 'string') return entry.amqp;
    } catch {
      // not a JSON line
    }
  }
  throw new Error('no amqp= in the listening line');
}

/** Publishes on a confirm channel; resolves 'ack' or 'nack'. */
function confirmed(channel: amqp.ConfirmChannel, exchange: string, routingKey: string, body: string, options: amqp.Options.Publish = {}): Promise<'ack' | 'nack'> {
  return new Promise((resolve) => {
    channel.publish(exchange, routingKey, Buffer.from(body), { persistent: true, ...options }, (error) => resolve(error ? 'nack' : 'ack'));
  });
}

async function bodies(channel: amqp.Channel, queue: string): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < 100; i += 1) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) return got;
    got.push(message.content.toString());
  }
  throw new Error('the queue did not empty');
}

describe('AMQP queue and exchange arguments', { timeout: 120_000 }, () => {
  let node: BrokerProcess;
  let connection: amqp.ChannelModel;

  before(async () => {
    node = await startBroker({ args: ['--amqp-port', '0'] });
    connection = await amqp.connect(`amqp://guest:guest@${amqpAddress(node)}`);
    connection.on('error', () => undefined);
  });

  after(async () => {
    await connection.close().catch(() => undefined);
    await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  it('x-overflow reject-publish: publishes past x-max-length are nacked, the queue keeps its oldest', async () => {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('bounded-reject', { durable: true, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
    const outcomes = [];
    for (const body of ['a', 'b', 'c']) outcomes.push(await confirmed(channel, '', 'bounded-reject', body));
    assert.deepEqual(outcomes, ['ack', 'ack', 'nack']);
    assert.deepEqual(await bodies(channel, 'bounded-reject'), ['a', 'b']);
    assert.equal(await confirmed(channel, '', 'bounded-reject', 'd'), 'ack', 'room again once read');
    await channel.close();
  });

  it('x-overflow reject-publish-dlx: the refused publish is nacked and dead-lettered', async () => {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('overflow-graveyard');
    await channel.assertQueue('bounded-dlx', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'overflow-graveyard' } });
    assert.deepEqual([await confirmed(channel, '', 'bounded-dlx', 'kept'), await confirmed(channel, '', 'bounded-dlx', 'refused')], ['ack', 'nack']);
    const dead = await channel.get('overflow-graveyard', { noAck: true });
    assert.ok(dead !== false);
    assert.equal(dead.content.toString(), 'refused');
    assert.equal(String((dead.properties.headers?.['x-death'] as Array<{ reason: unknown }>)[0]?.reason), 'maxlen');
    await channel.close();
  });

  it('x-expires: a queue unused for that long is deleted', async () => {
    const channel = await connection.createChannel();
    await channel.assertQueue('short-lived', { arguments: { 'x-expires': 300 } });
    let gone = false;
    // The node looks for unused queues every second; bounded at 20 s.
    for (let i = 0; i < 100 && !gone; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const probe = await connection.createChannel();
      probe.on('error', () => undefined);
      try {
        await probe.checkQueue('short-lived');
        await probe.close();
      } catch (error) {
        assert.equal((error as { code?: number }).code, 404);
        gone = true;
      }
    }
    assert.ok(gone, 'the queue was deleted');
    await channel.close();
  });

  it('alternate-exchange: what the exchange cannot route goes to its alternate, with no basic.return', async () => {
    const channel = await connection.createConfirmChannel();
    const returned: string[] = [];
    channel.on('return', (message: amqp.Message) => returned.push(message.content.toString()));
    await channel.assertExchange('ae-fallback', 'fanout');
    await channel.assertExchange('ae-orders', 'direct', { alternateExchange: 'ae-fallback' });
    await channel.assertQueue('ae-eu');
    await channel.assertQueue('ae-leftovers');
    await channel.bindQueue('ae-eu', 'ae-orders', 'eu');
    await channel.bindQueue('ae-leftovers', 'ae-fallback', '');
    assert.equal(await confirmed(channel, 'ae-orders', 'eu', 'routed', { mandatory: true }), 'ack');
    assert.equal(await confirmed(channel, 'ae-orders', 'us', 'stray', { mandatory: true }), 'ack');
    assert.deepEqual(await bodies(channel, 'ae-eu'), ['routed']);
    const leftovers = await channel.get('ae-leftovers', { noAck: true });
    assert.ok(leftovers !== false);
    assert.equal(leftovers.content.toString(), 'stray');
    assert.equal(leftovers.fields.exchange, 'ae-orders', 'delivered with the exchange it was published to');
    assert.deepEqual(returned, []);
    await channel.close();
  });
});
