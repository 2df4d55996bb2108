// A node's membership in the cluster: it registers itself (id, roles, an address per role, the
// client endpoints of a broker such as its advertised Kafka address) with
// the placement group and keeps its lease alive by heartbeats. The placement group being away
// is an outage to log and retry, never a reason to stop: MQTT and the journal keep serving
// without it, and the node registers again when it is back (a lease that ran out meanwhile was
// expired by the leader, so a heartbeat answers unknown-node and the node registers anew).
import type { Logger } from 'pino';
import type { Role } from '../placement/metadata/index.js';
import type { PlacementClient } from '../placement/service/index.js';

export const DEFAULT_LEASE_MS = 10_000;

export interface RegistrationOptions {
  readonly client: PlacementClient;
  readonly nodeId: string;
  readonly roles: readonly Role[];
  readonly addresses: Readonly<Partial<Record<Role, string>>>;
  /** Client endpoints by protocol (`kafka`: the advertised HOST:PORT); omitted when none. */
  readonly endpoints?: Readonly<Record<string, string>>;
  /** How long the lease lasts after each heartbeat (default 10 s); heartbeats come three times per lease. */
  readonly leaseMs?: number;
  readonly logger: Logger;
}

export class Registration {
  private stopped = false;
  private registered = false;
  private failing = false;
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly loop: Promise<void>;

  private constructor(private readonly options: RegistrationOptions) {
    this.loop = this.run();
  }

  /** Starts registering in the background; never throws, failures are logged and retried. */
  static start(options: RegistrationOptions): Registration {
    return new Registration(options);
  }

  /** True once the placement group acknowledged the registration (and until a heartbeat finds it gone). */
  get isRegistered(): boolean {
    return this.registered;
  }

  /**
   * Stops the heartbeats; the lease runs out by itself and the leader expires the node. A
   * request in flight is not waited for: closing the client (or stopping the local voter)
   * ends it, and a group that is away must not hold up the node's shutdown.
   */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
  }

  /** Settles once the loop has ended after stop(). */
  get done(): Promise<void> {
    return this.loop;
  }

  private get leaseMs(): number {
    return this.options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    while (!this.stopped) {
      try {
        await this.beat();
        if (this.failing) logger.info('placement service reachable again');
        this.failing = false;
      } catch (error) {
        if (this.stopped) break;
        // Once per outage: the client already retried within its own time budget.
        if (!this.failing) logger.warn({ err: error }, 'placement service unreachable: retrying; this node keeps serving meanwhile');
        this.failing = true;
      }
      await this.pause(Math.floor(this.leaseMs / 3));
    }
  }

  private async beat(): Promise<void> {
    const { client, nodeId, roles, addresses, endpoints, logger } = this.options;
    if (!this.registered) {
      const { result } = await client.propose({ type: 'register-node', nodeId, roles, addresses, ...(endpoints === undefined ? {} : { endpoints }), leaseMs: this.leaseMs });
      if (result.status === 'refused') {
        logger.warn({ code: result.code, detail: result.detail }, `placement refused this node's registration: ${result.detail}`);
        return;
      }
      this.registered = true;
      logger.info({ nodeId, roles, addresses, endpoints }, 'registered with the placement service');
      return;
    }
    const { result } = await client.propose({ type: 'heartbeat', nodeId, leaseMs: this.leaseMs });
    if (result.status === 'refused' && result.code === 'unknown-node') {
      // The lease ran out while the group was away and the leader expired this node.
      this.registered = false;
      logger.warn({ nodeId }, 'placement expired this node\'s lease; registering again');
      await this.beat();
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      // The node's listeners keep the process alive, not the heartbeat.
      this.timer.unref();
    });
  }
}
