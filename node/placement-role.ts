// The placement role: this process is one voter of the placement group (placement/service's
// PlacementServer over the voter's durable storage in data-dir/placement, node/placement-storage),
// plus a PlacementClient to the group for this node's own registration and for the admin routes.
//
// Two ways to start: a founding voter (peers given, its empty log bootstrapped with them as the
// voter set) or a joining voter (`join`: addresses of the running group). A joining voter with an
// empty log writes no voter set: it starts its server knowing only itself, then asks the group's
// leader to add it (AddVoter with its address, retried until the group answers) and learns the
// group's peers from the answer; the leader then sends it the log or a snapshot. A joining voter
// whose log is not empty has joined before: it restarts from its data directory like any voter.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isShardlineError, ShardlineError } from '../base/index.js';
import { placementAdmin, type PlacementAdmin } from '../admin/index.js';
import { PlacementClient, PlacementServer } from '../placement/service/index.js';
import { openDurablePlacement, type DurablePlacement } from './placement-storage/index.js';

/** The voter's storage, in data-dir/placement. */
export const PLACEMENT_DIRECTORY = 'placement';

export interface PlacementRoleOptions {
  /** This voter's Raft id. */
  readonly nodeId: number;
  /**
   * Every voter of the group, this one included: id → HOST:PORT its peers and clients dial. A
   * joining voter gives only itself (its own address is what the group records for it).
   */
  readonly peers: ReadonlyMap<number, string>;
  /** Join a running group: some or all of its voters' HOST:PORT. Unset: a founding voter. */
  readonly join?: readonly string[];
  /** How long a join keeps asking the group (no leader yet, a voter down), ms (default 60000). */
  readonly joinTimeoutMs?: number;
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
    const joining = options.join !== undefined;
    // A log that is not empty holds the voter set (and peers, once applied): restart from it.
    const fresh = storage.raftPersistence.storage.lastIndex() === 0;
    const joinedPeers = joining ? await readJoinedPeers(options.dataDir) : [];
    try {
      server = await PlacementServer.start({
        nodeId: options.nodeId,
        clusterId: options.clusterId,
        clusterToken: options.clusterToken,
        peers: options.peers,
        // Written only into an empty log: the voters a new group starts with. A restarted voter
        // keeps the voter set its log holds. A joining voter writes none: its first entries come
        // from the leader, so its log is the group's and not one it made up.
        ...(joining ? {} : { initialVoters: [...options.peers.keys()] }),
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
    if (joining && !fresh) {
      // The peers it learned when it joined, in case its log lacks the applied peer list yet.
      server.learnPeers(joinedPeers);
      // Killed between being added and writing that file, it may know no peer at all and
      // refuse the leader's messages: ask the join addresses who the peers are (Status, which
      // changes nothing; a second join could re-add a voter removed since).
      if (joinedPeers.length === 0) learnPeersFrom(server, options, 'warn').catch((error: unknown) => logger.warn({ err: error }, 'placement: could not ask the join addresses for the peers'));
      logger.info({ voters: server.status().voters }, 'placement: this voter has a Raft log already, so it restarts from its data directory (--placement-join is only used by a voter whose placement data directory is empty)');
    } else if (joining) {
      try {
        await joinGroup(server, options);
      } catch (error) {
        await server.stop();
        await storage.close();
        throw error;
      }
    }
    // A voter bound to port 0 is reached at the port it got, not at the one it was given.
    const peers = new Map([...options.peers].map(([id, address]) => [id, id === options.nodeId && options.port === 0 ? server.address : address]));
    for (const [id, address] of server.knownPeers()) if (!peers.has(id)) peers.set(id, address);
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

/** Where a joined voter keeps the peers its join's answer listed (placement data directory). */
const JOINED_PEERS_FILE = 'joined-peers.json';

async function readJoinedPeers(dataDir: string): Promise<[number, string][]> {
  try {
    const parsed = JSON.parse(await readFile(joinedPeersPath(dataDir), 'utf8')) as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed.filter((entry): entry is [number, string] => Array.isArray(entry) && typeof entry[0] === 'number' && typeof entry[1] === 'string');
  } catch {
    // Missing (it never joined, or was started as a founding voter) or unreadable: the replicated peer list covers it.
    return [];
  }
}

/**
 * Asks the group to add this voter (the leader records its address, then adds it; a retry is
 * harmless) and learns every peer from the answer, kept in JOINED_PEERS_FILE for a restart
 * that comes before the log's peer list is applied. Refusals (token, cluster id, another
 * change in progress, an id or address taken) end the start; an unreachable group is retried
 * until joinTimeoutMs.
 */
async function joinGroup(server: PlacementServer, options: PlacementRoleOptions): Promise<void> {
  const logger = options.logger;
  const own = server.knownPeers().get(options.nodeId) ?? server.address;
  const addresses = options.join ?? [];
  logger.info({ join: addresses, address: own }, `placement: joining the group at ${addresses.join(',')} as voter ${options.nodeId} (address ${own})`);
  const timeoutMs = options.joinTimeoutMs ?? 60_000;
  // Knowing the peers before it is added, it takes the leader's first messages at once instead
  // of refusing them until the join's answer comes (the leader would back off and retry).
  await learnPeersFrom(server, options, 'debug');
  const client = new PlacementClient({ addresses: [...addresses], clusterId: options.clusterId, clusterToken: options.clusterToken, requestTimeoutMs: timeoutMs, maxAttempts: 1_000, logger: logger.child({ component: 'placement-join' }) });
  try {
    const answer = await client.join(options.nodeId, own).catch((error: unknown) => {
      // Same code, a message that says what was being done (the start's last line).
      if (!isShardlineError(error)) throw error;
      throw new ShardlineError(error.code, `voter ${options.nodeId} cannot join the placement group at ${addresses.join(',')}: ${error.message}`, error.context, { cause: error });
    });
    const peers = (answer.peers ?? []).map((peer) => [peer.id, peer.address] as [number, string]);
    server.learnPeers(peers);
    const path = joinedPeersPath(options.dataDir);
    await writeFile(`${path}.tmp`, JSON.stringify(peers));
    await rename(`${path}.tmp`, path);
    logger.info({ voters: answer.voters, index: answer.index }, `placement: joined the group as voter ${options.nodeId} (voters now ${answer.voters.join(', ')}); catching up from the leader`);
  } finally {
    client.close();
  }
}

function joinedPeersPath(dataDir: string): string {
  return join(dataDir, PLACEMENT_DIRECTORY, JOINED_PEERS_FILE);
}

/** Learns the peers one of the join addresses knows (its Status); failures are logged, not fatal. */
async function learnPeersFrom(server: PlacementServer, options: PlacementRoleOptions, silenceLevel: 'warn' | 'debug'): Promise<void> {
  const client = new PlacementClient({ addresses: [...(options.join ?? [])], clusterId: options.clusterId, clusterToken: options.clusterToken, logger: options.logger.child({ component: 'placement-join' }) });
  try {
    for (const address of options.join ?? []) {
      try {
        const status = await client.status(address);
        server.learnPeers((status.peers ?? []).map((peer) => [peer.id, peer.address]));
        return;
      } catch (error) {
        options.logger.debug({ address, err: error }, 'placement: a join address did not answer Status');
      }
    }
    options.logger[silenceLevel]({ join: options.join }, 'placement: no join address answered Status; this voter learns its peers from the join or its log');
  } finally {
    client.close();
  }
}
