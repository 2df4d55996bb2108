// AMQP stream queues (x-queue-type=stream) end to end: a real `shardline start` with
// --amqp-port and the amqplib client. A stream is declared durable, published to with confirms,
// and read without being consumed: from first, a numeric offset, a timestamp (AMQP timestamp,
// seconds), last and next, by two consumers independently, each delivery with its
// x-stream-offset header; RabbitMQ's refusals (non-durable 406, basic.get 540, a consume
// without prefetch 406); and after kill -9 of the node the stream is read again in full. The
// same reads with the journal in another process (split roles: the shard read over gRPC),
// after kill -9 of the broker alone.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import amqp from 'amqplib';
import { cleanup, killBroker, restartBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { amqpAddress } from './support/raw-amqp.js';

const STREAM = { durable: true, arguments: { 'x-queue-type': 'stream' } };

function amqpUrl(broker: BrokerProcess): string {
  const { host, port } = amqpAddress(broker);
  return `amqp://guest:guest@${host}:${port}`;
}

/** A consumer's deliveries, acknowledged as they come (so prefetch credit returns). */
class Reader {
  readonly bodies: string[] = [];
  readonly offsets: number[] = [];

  constructor(readonly channel: amqp.Channel) {}

  static async start(connection: amqp.ChannelModel, queue: string, offset: unknown, prefetch = 5): Promise<Reader> {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await channel.prefetch(prefetch);
    const reader = new Reader(channel);
    const args = offset === undefined ? {} : { 'x-stream-offset': offset };
    await channel.consume(
      queue,
      (message) => {
        if (message === null) return;
        reader.bodies.push(message.content.toString());
        reader.offsets.push(Number(message.properties.headers?.['x-stream-offset']));
        channel.ack(message);
      },
      { arguments: args },
    );
    return reader;
  }

  /** Waits (bounded) until `n` deliveries came; returns their bodies. */
  async count(n: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.bodies.length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(this.bodies.length, n, `${this.bodies.length} of ${n} deliveries arrived`);
    return this.bodies.slice();
  }
}

const range = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

async function publish(channel: amqp.ConfirmChannel, queue: string, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body));
  await channel.waitForConfirms();
}

/** A round trip on a channel: the deliveries it would have got so far came. */
async function roundTrip(channel: amqp.Channel): Promise<void> {
  await channel.checkQueue('events');
}

describe('AMQP stream queues', () => {
  after(cleanup);

  it('reads a stream from first, an offset, a timestamp, last and next, independently, and again after kill -9', { timeout: 240_000 }, async () => {
    const first = await startBroker({ args: ['--amqp-port', '0'] });
    let second: BrokerProcess | undefined;
    const connections: amqp.ChannelModel[] = [];
    const connect = async (broker: BrokerProcess): Promise<amqp.ChannelModel> => {
      const connection = await amqp.connect(amqpUrl(broker));
      connection.on('error', () => undefined);
      connections.push(connection);
      return connection;
    };
    try {
      const connection = await connect(first);
      const publisher = await connection.createConfirmChannel();
      publisher.on('error', () => undefined);
      await publisher.assertQueue('events', STREAM);

      // Group A, then group B from the next whole second on: a timestamp of that second selects B.
      await publish(publisher, 'events', range('a', 0, 10));
      const boundary = Math.floor(Date.now() / 1000) + 1;
      while (Date.now() < boundary * 1000) await new Promise((resolve) => setTimeout(resolve, 25));
      await publish(publisher, 'events', range('b', 0, 10));
      const all = [...range('a', 0, 10), ...range('b', 0, 10)];

      const fromFirst = await Reader.start(connection, 'events', 'first');
      assert.deepEqual(await fromFirst.count(20), all);
      assert.deepEqual(fromFirst.offsets, Array.from({ length: 20 }, (_, i) => i));
      const fromOffset = await Reader.start(connection, 'events', 15);
      assert.deepEqual(await fromOffset.count(5), range('b', 5, 10));
      const fromTime = await Reader.start(connection, 'events', { '!': 'timestamp', value: boundary });
      assert.deepEqual(await fromTime.count(10), range('b', 0, 10));
      // A second reader from first gets everything again: reading consumed nothing.
      const again = await Reader.start(connection, 'events', 'first', 3);
      assert.deepEqual(await again.count(20), all);

      const fromNext = await Reader.start(connection, 'events', 'next');
      await roundTrip(fromNext.channel);
      // One publish waited for alone is a batch of its own: `last` starts at it.
      await publish(publisher, 'events', ['alone']);
      const fromLast = await Reader.start(connection, 'events', 'last');
      assert.deepEqual(await fromLast.count(1), ['alone']);
      assert.deepEqual(fromLast.offsets, [20]);
      await publish(publisher, 'events', ['c0', 'c1']);
      assert.deepEqual(await fromNext.count(3), ['alone', 'c0', 'c1']);
      assert.deepEqual(fromNext.offsets, [20, 21, 22]);
      // The tailing readers got the new ones too.
      assert.deepEqual((await fromFirst.count(23)).slice(20), ['alone', 'c0', 'c1']);
      assert.deepEqual((await fromLast.count(3)).slice(1), ['c0', 'c1']);

      // RabbitMQ's refusals.
      const refusals = await connection.createChannel();
      refusals.on('error', () => undefined);
      await assert.rejects(refusals.assertQueue('not-durable', { durable: false, arguments: { 'x-queue-type': 'stream' } }), /406/);
      const noPrefetch = await connection.createChannel();
      noPrefetch.on('error', () => undefined);
      await assert.rejects(
        noPrefetch.consume('events', () => undefined, { arguments: { 'x-stream-offset': 'first' } }),
        /406/,
      );
      const getter = await connect(first);
      const getChannel = await getter.createChannel();
      getChannel.on('error', () => undefined);
      await assert.rejects(getChannel.get('events'), /540|closed/);

      await killBroker(first);
      second = await startBroker({ dataDir: first.dataDir, args: ['--amqp-port', '0'] });
      const reconnected = await connect(second);
      const check = await reconnected.createChannel();
      await check.checkQueue('events');
      const replay = await Reader.start(reconnected, 'events', 'first');
      assert.deepEqual(await replay.count(23), [...all, 'alone', 'c0', 'c1']);
      assert.deepEqual(replay.offsets, Array.from({ length: 23 }, (_, i) => i));
      const tail = await Reader.start(reconnected, 'events', 'next');
      await roundTrip(tail.channel);
      const publisherAgain = await reconnected.createConfirmChannel();
      await publish(publisherAgain, 'events', ['after-restart']);
      assert.deepEqual(await tail.count(1), ['after-restart']);
      assert.deepEqual(tail.offsets, [23]);
    } finally {
      for (const connection of connections) await connection.close().catch(() => undefined);
      if (second !== undefined) await stopBroker(second);
      await killBroker(first);
    }
  });

  it('reads a stream over a remote journal (split roles) from first, last and an offset, and again after the broker is killed', { timeout: 240_000 }, async () => {
    const first = await startBroker({ topology: 'split', args: ['--amqp-port', '0'] });
    let second: BrokerProcess | undefined;
    const connections: amqp.ChannelModel[] = [];
    const connect = async (broker: BrokerProcess): Promise<amqp.ChannelModel> => {
      const connection = await amqp.connect(amqpUrl(broker));
      connection.on('error', () => undefined);
      connections.push(connection);
      return connection;
    };
    try {
      const connection = await connect(first);
      const publisher = await connection.createConfirmChannel();
      publisher.on('error', () => undefined);
      await publisher.assertQueue('events', STREAM);
      await publish(publisher, 'events', range('m', 0, 5));
      await publish(publisher, 'events', ['alone']);
      const all = [...range('m', 0, 5), 'alone'];
      assert.deepEqual(await (await Reader.start(connection, 'events', 'first', 2)).count(6), all);
      assert.deepEqual(await (await Reader.start(connection, 'events', 'last')).count(1), ['alone']);
      assert.deepEqual(await (await Reader.start(connection, 'events', 2)).count(4), all.slice(2));

      second = await restartBroker(first, ['--amqp-port', '0']);
      const reconnected = await connect(second);
      const replay = await Reader.start(reconnected, 'events', 'first');
      assert.deepEqual(await replay.count(6), all);
      const publisherAgain = await reconnected.createConfirmChannel();
      await publish(publisherAgain, 'events', ['after-restart']);
      assert.deepEqual((await replay.count(7)).slice(6), ['after-restart']);
      assert.deepEqual(replay.offsets, [0, 1, 2, 3, 4, 5, 6]);
    } finally {
      for (const connection of connections) await connection.close().catch(() => undefined);
      if (second !== undefined) await stopBroker(second);
      else await stopBroker(first);
    }
  });
});
