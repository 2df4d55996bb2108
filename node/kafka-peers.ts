// The Kafka brokers of the cluster as this node sees them: the placement group's registered
// nodes with a `kafka` (plain) or `kafkas` (TLS) client endpoint (registration.ts), read every
// few seconds. A node that
// stops heartbeating is expired by the placement leader once its lease runs out, and leaves the
// list at the next read. While the group cannot be read the last list stays: brokers keep
// answering with the leaders and coordinators they last agreed on.
import type { Logger } from 'pino';
import { formatAdvertised, KAFKA_LISTENERS, kafkaBrokerId, parseAdvertised, type KafkaAddress, type KafkaClusterMember, type KafkaListenerName } from '../protocols/kafka/index.js';
import type { NodeRecord } from '../placement/metadata/index.js';
import type { PlacementClient } from '../placement/service/index.js';

export const KAFKA_PEERS_INTERVAL_MS = 2_000;

export interface KafkaPeersOptions {
  readonly client: PlacementClient;
  readonly logger: Logger;
  readonly intervalMs?: number;
}

/** The endpoint name each Kafka listener is registered under. */
export const KAFKA_ENDPOINTS: Readonly<Record<KafkaListenerName, string>> = { plain: 'kafka', tls: 'kafkas' };

/** The brokers among the registered nodes: broker role and a Kafka endpoint (plain, TLS or both) that parses. */
export function kafkaBrokersOf(nodes: readonly NodeRecord[]): KafkaClusterMember[] {
  const brokers: KafkaClusterMember[] = [];
  for (const node of nodes) {
    if (!node.roles.includes('broker')) continue;
    const listeners: Partial<Record<KafkaListenerName, KafkaAddress>> = {};
    for (const listener of KAFKA_LISTENERS) {
      const endpoint = node.endpoints?.[KAFKA_ENDPOINTS[listener]];
      if (endpoint === undefined) continue;
      try {
        listeners[listener] = parseAdvertised(endpoint);
      } catch {
        // Registered by a node whose own check let it through (another build); not dialable here.
      }
    }
    if (Object.keys(listeners).length > 0) brokers.push({ nodeId: kafkaBrokerId(node.id), listeners });
  }
  return brokers;
}

/** A broker for the log: its id and each listener's address. */
function describeBroker(broker: KafkaClusterMember): string {
  return `${broker.nodeId}@${KAFKA_LISTENERS.flatMap((listener) => {
    const address = broker.listeners[listener];
    return address === undefined ? [] : [`${KAFKA_ENDPOINTS[listener]}=${formatAdvertised(address)}`];
  }).join(',')}`;
}

export class KafkaPeers {
  #brokers: readonly KafkaClusterMember[] | undefined;
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
  brokers(): readonly KafkaClusterMember[] | undefined {
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
        const seen = (list: readonly KafkaClusterMember[] | undefined): string => [...(list ?? [])].sort((x, y) => x.nodeId - y.nodeId).map(describeBroker).join(' ');
        // Leaders and coordinators move when the set (or a broker's listeners) changes: worth a line for whoever reads the log.
        if (this.#brokers === undefined || seen(brokers) !== seen(this.#brokers)) logger.info({ brokers: brokers.map(describeBroker) }, 'Kafka brokers of the cluster');
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
