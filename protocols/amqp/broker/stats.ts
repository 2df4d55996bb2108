// Running totals of the AMQP broker for metrics and the admin API: node-wide counters and each
// queue's own. Plain numbers bumped where the event happens; read at scrape or request time.

/** Node totals since start. */
export class AmqpStats {
  /** basic.publish commands routed (a transaction's at commit). */
  publishes = 0;
  /** Messages sent to consumers (basic.deliver) and by basic.get-ok. */
  deliveries = 0;
  /** Deliveries acknowledged by basic.ack. */
  acks = 0;
  /** Publisher confirms told: acks and nacks, one per publish. */
  confirmsAcked = 0;
  confirmsNacked = 0;
}

/** One queue's counters. */
export interface QueueCounters {
  /** Messages that entered the queue (published or dead-lettered into it). */
  published: number;
  /** Messages handed to consumers or basic.get. */
  delivered: number;
  /** Deliveries acknowledged. */
  acked: number;
  /** Deliveries waiting for an acknowledgement now, and their body bytes. */
  unacked: number;
  unackedBytes: number;
}

export function newQueueCounters(): QueueCounters {
  return { published: 0, delivered: 0, acked: 0, unacked: 0, unackedBytes: 0 };
}
