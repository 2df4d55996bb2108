// Reconnection through amqp-connection-manager across a crash of the node: one managed
// connection with a publishing ChannelWrapper (publisher confirms) and a consuming one (manual
// acks, prefetch) on a durable queue; the node is SIGKILLed while messages are published and
// acknowledged, started again on the same port and data directory, and the manager reconnects
// both channels by itself. Afterwards every confirmed message has been consumed (none lost),
// and no message whose acknowledgement was durable is delivered again.
//
// Which acknowledgements are durable: basic.ack has no answer, but the node writes a queue's
// acknowledgements and messages through one writer in the order it handles them
// (docs/amqp.md, "restart"). So every ack the consumer sent before a round trip on its own
// channel (a passive queue.declare: its reply means the node handled the acks before it) is
// durable once a publish made after that reply is confirmed. Acks after the last such point
// may come back (at least once); those are not counted.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type amqp from 'amqplib';
import amqpManager from 'amqp-connection-manager';
import { cleanup, freePort, killBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';

const QUEUE = 'reconnect.jobs';
/** Upper bounds on the load: messages published in all, and how long any phase may wait. */
const MAX_MESSAGES = 20_000;
const PHASE_TIMEOUT_MS = 60_000;
const WINDOW = 50;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Delivery {
  id: number;
  redelivered: boolean;
  afterRestart: boolean;
}

describe('AMQP reconnection through amqp-connection-manager after kill -9', () => {
  after(cleanup);

  it('publishing and consuming go on after the node restarts; no confirmed message lost, no durably acked one redelivered', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const args = ['--amqp-port', String(port)];
    let node: BrokerProcess = await startBroker({ args });
    const manager = amqpManager.connect([`amqp://guest:guest@127.0.0.1:${port}`], { reconnectTimeInSeconds: 0.2, heartbeatIntervalInSeconds: 5 });
    let connects = 0;
    manager.on('connect', () => (connects += 1));
    manager.on('connectFailed', () => undefined);
    manager.on('disconnect', () => undefined);
    let restarted = false;
    try {
      const publisher = manager.createChannel({ json: false, setup: (ch: amqp.ConfirmChannel) => ch.assertQueue(QUEUE, { durable: true }) });
      let consumerChannel: amqp.Channel | undefined;
      const consumer = manager.createChannel({
        confirm: false,
        json: false,
        setup: async (ch: amqp.Channel) => {
          await ch.assertQueue(QUEUE, { durable: true });
          consumerChannel = ch;
        },
      });
      publisher.on('error', () => undefined);
      consumer.on('error', () => undefined);
      await Promise.all([publisher.waitForConnect(), consumer.waitForConnect()]);

      const deliveries: Delivery[] = [];
      /** Ids in the order the consumer acknowledged them. */
      const acked: number[] = [];
      await consumer.consume(
        QUEUE,
        (message) => {
          const id = Number(message.content.toString());
          deliveries.push({ id, redelivered: message.fields.redelivered, afterRestart: restarted });
          consumer.ack(message);
          acked.push(id);
        },
        { prefetch: 20 },
      );

      // The publisher: ids 1, 2, ... with at most WINDOW unconfirmed, until told to stop. The
      // wrapper queues publishes while disconnected and sends them after reconnecting, but one
      // already sent when the connection dropped fails with "channel closed"
      // (amqp-connection-manager 5.0): it is published again, as an application would.
      let published = 0;
      let stopPublishing = false;
      const confirmed = new Set<number>();
      const publishOne = async (id: number): Promise<void> => {
        const deadline = Date.now() + PHASE_TIMEOUT_MS;
        for (;;) {
          try {
            await publisher.sendToQueue(QUEUE, Buffer.from(String(id)), { persistent: true });
            confirmed.add(id);
            return;
          } catch (error) {
            if (Date.now() > deadline) throw error;
            await sleep(20);
          }
        }
      };
      const publishing = (async () => {
        const inFlight = new Set<Promise<void>>();
        while (!stopPublishing && published < MAX_MESSAGES) {
          published += 1;
          const sent: Promise<void> = publishOne(published).finally(() => inFlight.delete(sent));
          inFlight.add(sent);
          if (inFlight.size >= WINDOW) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      })();
      publishing.catch(() => undefined);

      // Checkpoints: acks made before a round trip on the consumer's channel, and the first
      // publish id made after its reply. Taken every 50 ms while the node is up.
      const checkpoints: Array<{ ackedCount: number; firstPublishAfter: number }> = [];
      let checkpointing = true;
      const taking = (async () => {
        while (checkpointing) {
          const channel = consumerChannel;
          const ackedCount = acked.length;
          try {
            if (channel !== undefined && !restarted) {
              await channel.checkQueue(QUEUE);
              checkpoints.push({ ackedCount, firstPublishAfter: published + 1 });
            }
          } catch {
            // the node went away mid round trip: no checkpoint
          }
          await sleep(50);
        }
      })();

      await until('load before the kill', () => confirmed.size >= 1000 && acked.length >= 500);
      const confirmedAtKill = new Set(confirmed);
      const publishedAtKill = published;
      checkpointing = false;
      await killBroker(node);
      restarted = true;
      await taking;
      assert.ok(publishedAtKill > confirmedAtKill.size, 'publishes were in flight when the node was killed');
      const lastConfirmedBeforeKill = Math.max(...confirmedAtKill);
      const durable = checkpoints.filter((checkpoint) => checkpoint.firstPublishAfter <= lastConfirmedBeforeKill);
      const durableAcks = new Set(acked.slice(0, Math.max(0, ...durable.map((checkpoint) => checkpoint.ackedCount))));
      assert.ok(durableAcks.size > 0, 'some acknowledgements were durable before the kill');

      node = await startBroker({ dataDir: node.dataDir, args });
      // The manager reconnects on its own; publishing (never stopped) goes on.
      await until('the manager to reconnect', () => connects >= 2);
      const confirmedAtRestart = confirmed.size;
      await until('publishes confirmed after the restart', () => confirmed.size >= confirmedAtRestart + 500);
      stopPublishing = true;
      await publishing;
      assert.equal(confirmed.size, published, 'every publish was confirmed in the end');
      await until('every confirmed message consumed', () => {
        const got = new Set(deliveries.map((delivery) => delivery.id));
        return [...confirmed].every((id) => got.has(id));
      });

      const redeliveredAcked = deliveries.filter((delivery) => delivery.afterRestart && durableAcks.has(delivery.id)).map((delivery) => delivery.id);
      assert.deepEqual(redeliveredAcked, [], 'no message whose acknowledgement was durable is delivered again');
      // A message confirmed before the crash and delivered after it was read back from the queue's shard.
      const recovered = deliveries.filter((delivery) => delivery.afterRestart && confirmedAtKill.has(delivery.id));
      assert.ok(recovered.every((delivery) => delivery.redelivered), 'messages recovered from before the crash come back redelivered');
      await Promise.all([publisher.close(), consumer.close()]);
    } finally {
      await manager.close();
      await stopBroker(node);
    }
  });
});
