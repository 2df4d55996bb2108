// The Kafka brokers of the cluster as this node sees them: the placement group's registered
// nodes with a `kafka` client endpoint (registration.ts), read every few seconds. A node that
// stops heartbeating is expired by the placement leader once its lease runs out, and leaves the
// list at the next read. While the group cannot be read the last list stays: brokers keep
// answering with the leaders and coordinators they last agreed on.
import type { Logger } from 'pino';
import { kafkaBrokerId, parseAdvertised, type KafkaBroker } from '../protocols/kafka/index.js';
import type { NodeRecord } from '../placement/metadata/index.js';
import type { PlacementClient } from '../placement/service/index.js';

export const KAFKA_PEERS_INTERVAL_MS = 2_000;

export interface KafkaPeersOptions {
  readonly client: PlacementClient;
  readonly logger: Logger;
  readonly intervalMs?: number;
}

/** The brokers among the registered nodes: broker role and a Kafka endpoint that parses. */
export function kafkaBrokersOf(nodes: readonly NodeRecord[]): KafkaBroker[] {
  const brokers: KafkaBroker[] = [];
  for (const node of nodes) {
    const endpoint = node.endpoints?.kafka;
    if (endpoint === undefined || !node.roles.includes('broker')) continue;
    try {
      brokers.push({ nodeId: kafkaBrokerId(node.id), ...parseAdvertised(endpoint) });
    } catch {
      // Registered by a node whose own check let it through (another build); not dialable here.
    }
  }
  return brokers;
}

export class KafkaPeers {
  #brokers: readonly KafkaBroker[] | undefined;
  #stopped = false;
  #failing = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  readonly #loop: Promise<void>;

  private constructor(private readonly options: KafkaPeersOptions) {
    this.#loop = this.#run();
  }

  static start(options: KafkaPeersOptions): KafkaPeers {
    return new KafkaPeers(options);
  }

  /** The live brokers at the last successful read; undefined before the first. */
  brokers(): readonly KafkaBroker[] | undefined {
    return this.#brokers;
  }

  /** Ends the reads; a read in flight is not waited for (closing the client ends it). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }

  /** Settles once the loop has ended after stop(). */
  get done(): Promise<void> {
    return this.#loop;
  }

  async #run(): Promise<void> {
    const { client, logger } = this.options;
    while (!this.#stopped) {
      try {
        const { nodes = [] } = await client.read(['nodes']);
        const brokers = kafkaBrokersOf(nodes);
        const ids = (list: readonly KafkaBroker[] | undefined): string => (list ?? []).map((broker) => broker.nodeId).sort((x, y) => x - y).join(',');
        // Leaders and coordinators move when the set changes: worth a line for whoever reads the log.
        if (this.#brokers === undefined || ids(brokers) !== ids(this.#brokers)) logger.info({ brokers: brokers.map((broker) => `${broker.nodeId}@${broker.host}:${broker.port}`) }, 'Kafka brokers of the cluster');
        this.#brokers = brokers;
        if (this.#failing) logger.info('placement readable again: Kafka broker list updated');
        this.#failing = false;
      } catch (error) {
        if (!this.#failing && !this.#stopped) logger.warn({ err: error }, 'cannot read the Kafka brokers from placement: keeping the last list');
        this.#failing = true;
      }
      await this.#pause(this.options.intervalMs ?? KAFKA_PEERS_INTERVAL_MS);
    }
  }

  #pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
      // The listeners keep the process alive, not this poll.
      this.#timer.unref();
    });
  }
}
