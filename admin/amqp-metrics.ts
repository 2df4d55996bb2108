// Prometheus series of the AMQP front end, read at scrape time from the listener and its
// broker (nothing on the publish path touches prom-client). Per-queue series are capped: the
// AMQP_QUEUE_SERIES_MAX queues holding the most messages get a series, the rest are counted in
// shardline_amqp_queue_series_omitted, so thousands of queues cannot blow up a scrape.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AmqpServer } from '../protocols/amqp/index.js';

/** Queues with their own ready/unacked series per scrape. */
export const AMQP_QUEUE_SERIES_MAX = 100;

export type AmqpMetricsSource = Pick<AmqpServer, 'broker' | 'openConnections' | 'openChannels' | 'blockedReason'>;

export function registerAmqpMetrics(registry: Registry, amqp: AmqpMetricsSource): void {
  const registers = [registry];
  const broker = amqp.broker;
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  };
  gauge('shardline_amqp_connections', 'AMQP client connections open now', () => amqp.openConnections);
  gauge('shardline_amqp_channels', 'AMQP channels open now, over all connections', () => amqp.openChannels);
  gauge('shardline_amqp_blocked', '1 while publishing AMQP connections are blocked (connection.blocked: disk low, journal unavailable or amqp-memory-limit-bytes reached), else 0', () => (amqp.blockedReason === undefined ? 0 : 1));
  if (broker === undefined) return;
  gauge('shardline_amqp_queues', 'AMQP queues on the node', () => broker.queues().length);
  gauge('shardline_amqp_exchanges', 'AMQP exchanges on the node (the predeclared ones included)', () => broker.topology.exchanges.size);
  gauge('shardline_amqp_bindings', 'AMQP bindings on the node', () => broker.topology.bindingCount);
  gauge('shardline_amqp_messages_ready', 'Messages ready for delivery over all AMQP queues', () => broker.queues().reduce((total, runtime) => total + runtime.queue.messageCount, 0));
  gauge('shardline_amqp_messages_unacked', 'AMQP deliveries waiting for an acknowledgement over all queues', () => broker.queues().reduce((total, runtime) => total + runtime.counters.unacked, 0));
  gauge('shardline_amqp_held_bytes', 'Message bytes AMQP queues hold in memory (ready and unacknowledged): what amqp-memory-limit-bytes bounds', () => broker.heldBytes());
  const deepest = (): { shown: ReturnType<typeof broker.queues>; omitted: number } => {
    const all = broker.queues().sort((a, b) => b.queue.messageCount + b.counters.unacked - (a.queue.messageCount + a.counters.unacked));
    return { shown: all.slice(0, AMQP_QUEUE_SERIES_MAX), omitted: Math.max(0, all.length - AMQP_QUEUE_SERIES_MAX) };
  };
  new Gauge({
    name: 'shardline_amqp_queue_messages_ready',
    help: `Messages ready per AMQP queue, for the ${AMQP_QUEUE_SERIES_MAX} queues holding the most messages`,
    labelNames: ['queue'] as const,
    registers,
    collect() {
      this.reset();
      for (const runtime of deepest().shown) this.set({ queue: runtime.name }, runtime.queue.messageCount);
    },
  });
  new Gauge({
    name: 'shardline_amqp_queue_messages_unacked',
    help: `Deliveries waiting for an acknowledgement per AMQP queue, for the ${AMQP_QUEUE_SERIES_MAX} queues holding the most messages`,
    labelNames: ['queue'] as const,
    registers,
    collect() {
      this.reset();
      for (const runtime of deepest().shown) this.set({ queue: runtime.name }, runtime.counters.unacked);
    },
  });
  gauge('shardline_amqp_queue_series_omitted', `AMQP queues without their own shardline_amqp_queue_* series this scrape (past the ${AMQP_QUEUE_SERIES_MAX} holding the most messages)`, () => deepest().omitted);
  // prom-client counters only move by increments: each collect resets and adds the running total.
  const counter = (name: string, help: string, value: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  };
  counter('shardline_amqp_publishes_total', 'basic.publish commands routed by the AMQP broker', () => broker.stats.publishes);
  counter('shardline_amqp_deliveries_total', 'Messages the AMQP broker handed out (basic.deliver and basic.get-ok)', () => broker.stats.deliveries);
  counter('shardline_amqp_acks_total', 'AMQP deliveries acknowledged by basic.ack', () => broker.stats.acks);
  new Counter({
    name: 'shardline_amqp_confirms_total',
    help: 'Publisher confirms told to AMQP publishers, one per publish: outcome ack or nack',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ outcome: 'ack' }, broker.stats.confirmsAcked);
      this.inc({ outcome: 'nack' }, broker.stats.confirmsNacked);
    },
  });
}
