// The placement role: this process is one voter of the placement group (placement/service's
// PlacementServer over the voter's durable storage in data-dir/placement, node/placement-storage),
// plus a PlacementClient to the group for this node's own registration and for the admin routes.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { placementAdmin, type PlacementAdmin } from '../admin/index.js';
import { PlacementClient, PlacementServer } from '../placement/service/index.js';
import { openDurablePlacement, type DurablePlacement } from './placement-storage/index.js';

/** The voter's storage, in data-dir/placement. */
export const PLACEMENT_DIRECTORY = 'placement';

export interface PlacementRoleOptions {
  /** This voter's Raft id. */
  readonly nodeId: number;
  /** Every voter of the group, this one included: id → HOST:PORT its peers and clients dial. */
  readonly peers: ReadonlyMap<number, string>;
  /** Bind address and port of this voter's gRPC server. */
  readonly host: string;
  readonly port: number;
  readonly clusterId: string;
  readonly clusterToken: string;
  /** The node's data directory; the voter keeps its storage in PLACEMENT_DIRECTORY under it. */
  readonly dataDir: string;
  /** How long to wait for a previous owner's lock on the voter's Raft log (a killed node still exiting). */
  readonly lockWaitMs: number;
  readonly logger: Logger;
}

/** A running voter and a client to its group; what the admin routes and the registration use. */
export interface RunningPlacement {
  readonly server: PlacementServer;
  readonly client: PlacementClient;
}

/** One placement voter: storage, then the gRPC server (bootstrapping a new group from `peers`), then a client. */
export class PlacementRole implements RunningPlacement {
  private constructor(
    readonly server: PlacementServer,
    readonly client: PlacementClient,
    /** What the admin API's /api/cluster routes and the placement metrics read and change. */
    readonly admin: PlacementAdmin,
    private readonly storage: DurablePlacement,
  ) {}

  static async start(options: PlacementRoleOptions): Promise<PlacementRole> {
    const logger = options.logger;
    const storage = await openDurablePlacement({ dataDir: join(options.dataDir, PLACEMENT_DIRECTORY), nodeId: options.nodeId, clusterId: options.clusterId, lockWaitMs: options.lockWaitMs, logger });
    let server: PlacementServer;
    try {
      server = await PlacementServer.start({
        nodeId: options.nodeId,
        clusterId: options.clusterId,
        clusterToken: options.clusterToken,
        peers: options.peers,
        // Written only into an empty log: the voters a new group starts with. A restarted voter
        // keeps the voter set its log holds.
        initialVoters: [...options.peers.keys()],
        host: options.host,
        port: options.port,
        raftPersistence: storage.raftPersistence,
        appliedPersistence: storage.appliedPersistence,
        logger,
        onFatal: (error) => logger.fatal({ err: error }, 'the placement voter stopped: its storage failed; restart the node'),
      });
    } catch (error) {
      await storage.close();
      throw error;
    }
    // A voter bound to port 0 is reached at the port it got, not at the one it was given.
    const peers = new Map([...options.peers].map(([id, address]) => [id, id === options.nodeId && options.port === 0 ? server.address : address]));
    const client = new PlacementClient({ addresses: [...peers.values()], clusterId: options.clusterId, clusterToken: options.clusterToken, logger: logger.child({ component: 'placement-client' }) });
    const admin = placementAdmin(server, { peers, clusterId: options.clusterId, clusterToken: options.clusterToken });
    return new PlacementRole(server, client, admin, storage);
  }

  get address(): string {
    return this.server.address;
  }

  /** The bound port (placement-port 0 picks one). */
  get port(): number {
    return Number(this.address.slice(this.address.lastIndexOf(':') + 1));
  }

  /** Closes the clients, stops the voter (in-flight requests answered), then closes its storage. */
  async stop(): Promise<void> {
    this.client.close();
    this.admin.close();
    try {
      await this.server.stop();
    } finally {
      await this.storage.close();
    }
  }
}
