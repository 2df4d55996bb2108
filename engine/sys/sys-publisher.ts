// `$SYS/brokers/{node}/...`: broker statistics published every `sys-interval` seconds through
// the normal publish path, so they are journaled like any message and every delivery passes the
// access policy's mayRead (a client sees them only if its rules let it read `$SYS/...`). They
// are retained, so a client that subscribes gets the latest values at once. Leading wildcards do
// not match `$` topics (MQTT-4.7.2-1): a client must subscribe to `$SYS/#` explicitly.
// Their own traffic is counted apart (broker.stats.sys), so messages/received, messages/sent,
// bytes/* and messages/retained here are client traffic only, as the admin overview says.
import type { Logger } from 'pino';
import type { Clock } from '../../base/index.js';
import type { Broker } from '../broker.js';
import type { Message } from '../messages/message.js';

export const SYS_PREFIX = '$SYS/brokers/';

export interface SysOptions {
  broker: Broker;
  clock: Clock;
  logger: Logger;
  /** Seconds between two rounds; 0 turns the topics off. */
  intervalSeconds: number;
  /** The {node} level: a name without '/', '+', '#'. */
  node: string;
  version: string;
}

/** Makes a node name usable as one topic level. */
export function sysNodeLevel(name: string): string {
  const level = name.replace(/[/+#]/g, '_').replaceAll('\u0000', '_');
  return level === '' ? '_' : level;
}

/** The topics and values of one round, by topic suffix (after `$SYS/brokers/{node}/`). */
export function sysValues(broker: Broker, version: string, now: number): Array<[string, string]> {
  const { stats } = broker;
  const dropped = stats.dropped['queue-full'] + stats.dropped.expired + stats.dropped['too-large'];
  return [
    ['version', version],
    // The broker's clock (wall time in production), the one broker.startedAt was read from.
    ['uptime', String(Math.floor((now - broker.startedAt) / 1000))],
    ['clients/connected', String(broker.onlineCount)],
    ['sessions/count', String(broker.sessionCount)],
    ['subscriptions/count', String(broker.subscriptionCount)],
    ['messages/received', String(stats.messagesIn)],
    ['messages/sent', String(stats.messagesOut)],
    ['messages/dropped', String(dropped)],
    ['messages/retained', String(broker.retainedCounts().client)],
    ['bytes/received', String(stats.bytesIn)],
    ['bytes/sent', String(stats.bytesOut)],
  ];
}

export class SysPublisher {
  #timer: unknown;
  #stopped = false;
  #round: Promise<void> = Promise.resolve();

  private constructor(private readonly options: SysOptions) {}

  /** Starts the rounds (the first one after one interval); a no-op publisher when the interval is 0. */
  static start(options: SysOptions): SysPublisher {
    const publisher = new SysPublisher(options);
    publisher.#schedule();
    return publisher;
  }

  get prefix(): string {
    return `${SYS_PREFIX}${sysNodeLevel(this.options.node)}/`;
  }

  #schedule(): void {
    if (this.#stopped || this.options.intervalSeconds === 0) return;
    this.#timer = this.options.clock.setTimeout(() => {
      this.#round = this.publishNow().finally(() => this.#schedule());
    }, this.options.intervalSeconds * 1000);
  }

  /** Publishes one round now; resolves when every value is stored. */
  async publishNow(): Promise<void> {
    const { broker, clock, logger, version } = this.options;
    // While writes are blocked the round is skipped, not queued: the first round after the
    // gate opens carries the current values, and a refused round would only log noise.
    if (broker.closed || !broker.writeGate.open) return;
    const now = clock.now();
    const messages: Message[] = sysValues(broker, version, now).map(([suffix, value]) => ({
      topic: this.prefix + suffix,
      payload: Buffer.from(value),
      qos: 0,
      retain: true,
      publisherId: '',
      timestamp: now,
      properties: undefined,
    }));
    const results = await Promise.allSettled(messages.map((message) => broker.publish(message)));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined && !broker.closed) logger.warn({ err: (failed as PromiseRejectedResult).reason }, 'publishing $SYS topics failed; trying again next interval');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    await this.#round;
  }
}
