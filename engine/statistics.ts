// The broker's traffic counters (BrokerStats, read by the admin API, /metrics and $SYS), the
// per-topic publish counts, and the once-a-minute log of dropped deliveries. Client traffic and
// the broker's own `$SYS/...` messages are counted apart, so an idle node shows no client traffic.
import type { Logger } from 'pino';
import type { Message } from './messages/message.js';

/** Topics counted per broker process (the busiest stay when the table is full). */
const TOPIC_COUNT_MAX = 10_000;
const DROP_REPORT_INTERVAL_MS = 60_000;

export interface BrokerStats {
  messagesIn: number;
  messagesOut: number;
  /** Payload bytes published. */
  bytesIn: number;
  /** Payload bytes of live and retained deliveries. */
  bytesOut: number;
  dropped: Record<'queue-full' | 'expired' | 'too-large', number>;
  /** Offsets sessions skipped because retention deleted them before they were read (counted per session). */
  retentionGapMessages: number;
  /** Publishes refused because writes were blocked (the write gate closed: journal unreachable, disk low). */
  refused: number;
  /**
   * The broker's own `$SYS/...` statistics messages, counted here and not in the totals above
   * (nor in the per-topic counts), so an idle node shows no client traffic.
   */
  sys: { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number };
}

/** Topics of the broker's own statistics (engine/sys), counted apart from client traffic. */
function isSysTopic(topic: string): boolean {
  return topic.startsWith('$SYS/');
}

export class Statistics {
  readonly stats: BrokerStats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, dropped: { 'queue-full': 0, expired: 0, 'too-large': 0 }, retentionGapMessages: 0, refused: 0, sys: { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 } };
  readonly #topicCounts = new Map<string, number>();
  #dropsReportedAt = 0;
  #dropsReported = 0;

  /** A message published (counted when it reaches its target topic). */
  countIn(message: Message): void {
    if (isSysTopic(message.topic)) {
      this.stats.sys.messagesIn += 1;
      this.stats.sys.bytesIn += message.payload.length;
    } else {
      this.stats.messagesIn += 1;
      this.stats.bytesIn += message.payload.length;
      this.#countTopic(message.topic);
    }
  }

  /** A message handed to a subscriber (live or retained). */
  countOut(message: Message): void {
    const counts = isSysTopic(message.topic) ? this.stats.sys : this.stats;
    counts.messagesOut += 1;
    counts.bytesOut += message.payload.length;
  }

  #countTopic(topic: string): void {
    const count = this.#topicCounts.get(topic);
    if (count !== undefined) {
      this.#topicCounts.set(topic, count + 1);
      return;
    }
    if (this.#topicCounts.size >= TOPIC_COUNT_MAX) {
      // Full: forget the quietest half, so new topics can be counted (counts are approximate).
      const sorted = [...this.#topicCounts].sort((a, b) => a[1] - b[1]);
      for (const [name] of sorted.slice(0, sorted.length / 2)) this.#topicCounts.delete(name);
    }
    this.#topicCounts.set(topic, 1);
  }

  /** Messages clients published per topic since start (the busiest TOPIC_COUNT_MAX topics at most; no $SYS). */
  topicCounts(): Array<{ topic: string; messages: number }> {
    return [...this.#topicCounts].map(([topic, messages]) => ({ topic, messages })).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  /** Logs dropped deliveries at most once a minute, when there were new ones. */
  reportDrops(now: number, logger: Logger): void {
    if (now - this.#dropsReportedAt < DROP_REPORT_INTERVAL_MS) return;
    const { dropped } = this.stats;
    const total = dropped['queue-full'] + dropped.expired + dropped['too-large'];
    if (total === this.#dropsReported) return;
    this.#dropsReportedAt = now;
    this.#dropsReported = total;
    logger.warn({ dropped: { ...dropped } }, 'deliveries dropped since start: queue-full = QoS 0 past a slow subscriber\'s --max-queued-bytes, expired = message expiry, too-large = over the client\'s maximum packet size');
  }
}
