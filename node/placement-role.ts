// The placement role: this process is one voter of the placement group (placement/service's
// PlacementServer over a voter's storage under the data directory), plus a PlacementClient to
// the group for this node's own registration and for the admin routes.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MemoryAppliedStatePersistence, MemoryRaftPersistence, type AppliedStatePersistence, type RaftPersistence } from '../placement/replica/index.js';
import { PlacementClient, PlacementServer } from '../placement/service/index.js';

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
  readonly logger: Logger;
}

/** A running voter and a client to its group; what the admin routes and the registration use. */
export interface RunningPlacement {
  readonly server: PlacementServer;
  readonly client: PlacementClient;
}

interface VoterStorage {
  readonly raftPersistence: RaftPersistence;
  readonly appliedPersistence: AppliedStatePersistence;
  close(): Promise<void>;
}

/**
 * The voter's storage. In memory for now: the durable adapter (node/placement-storage) is being
 * written beside this, and this function is the one place that changes when it lands. Until
 * then a restarted voter comes back empty and catches up from its peers (a one-voter group
 * starts over).
 */
async function openVoterStorage(directory: string, logger: Logger): Promise<VoterStorage> {
  logger.debug({ directory }, 'placement storage: in memory (the durable adapter is not wired yet)');
  return { raftPersistence: new MemoryRaftPersistence(), appliedPersistence: new MemoryAppliedStatePersistence(), close: async () => undefined };
}

/** One placement voter: storage, then the gRPC server (bootstrapping a new group from `peers`), then a client. */
export class PlacementRole implements RunningPlacement {
  private constructor(
    readonly server: PlacementServer,
    readonly client: PlacementClient,
    private readonly storage: VoterStorage,
  ) {}

  static async start(options: PlacementRoleOptions): Promise<PlacementRole> {
    const logger = options.logger;
    const storage = await openVoterStorage(join(options.dataDir, PLACEMENT_DIRECTORY), logger);
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
    const client = new PlacementClient({ addresses: [...options.peers.values()], clusterId: options.clusterId, clusterToken: options.clusterToken, logger: logger.child({ component: 'placement-client' }) });
    return new PlacementRole(server, client, storage);
  }

  get address(): string {
    return this.server.address;
  }

  /** The bound port (placement-port 0 picks one). */
  get port(): number {
    return Number(this.address.slice(this.address.lastIndexOf(':') + 1));
  }

  /** Closes the client, stops the voter (in-flight requests answered), then closes its storage. */
  async stop(): Promise<void> {
    this.client.close();
    try {
      await this.server.stop();
    } finally {
      await this.storage.close();
    }
  }
}
