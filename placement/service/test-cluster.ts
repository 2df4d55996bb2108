// Test helpers for the placement service: free loopback ports, a cluster of in-process
// PlacementServers (in-memory persistence unless the test passes its own, e.g. node/'s durable
// one), and a bounded wait. Used by tests only.
import { freeLoopbackPorts } from './free-ports.js';
import type { Logger } from 'pino';
import { MemoryAppliedStatePersistence, MemoryRaftPersistence, type AppliedStatePersistence, type RaftPersistence } from '../replica/index.js';
import type { PlacementTls } from './credentials.js';
import { PlacementServer, type PlacementServerOptions } from './server.js';

export const CLUSTER_ID = 'test-cluster';
export const CLUSTER_TOKEN = 'test-token-0123456789';

export interface TestCluster {
  readonly servers: PlacementServer[];
  readonly peers: ReadonlyMap<number, string>;
  leader(): PlacementServer | undefined;
  stop(): Promise<void>;
}

export interface ClusterPersistence {
  readonly raftPersistence: RaftPersistence;
  readonly appliedPersistence: AppliedStatePersistence;
}

export async function startCluster(options: { size?: number; logger?: Logger; tls?: PlacementTls; tickMs?: number; replica?: PlacementServerOptions['replica']; server?: Partial<PlacementServerOptions>; persistence?: (nodeId: number) => ClusterPersistence } = {}): Promise<TestCluster> {
  const size = options.size ?? 3;
  const ports = await freeLoopbackPorts(size);
  const persistence = options.persistence ?? (() => ({ raftPersistence: new MemoryRaftPersistence(), appliedPersistence: new MemoryAppliedStatePersistence() }));
  const ids = ports.map((_, i) => i + 1);
  const peers = new Map(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
  const servers = await Promise.all(ids.map((nodeId) => PlacementServer.start({
    nodeId,
    clusterId: CLUSTER_ID,
    clusterToken: CLUSTER_TOKEN,
    peers,
    initialVoters: ids,
    ...persistence(nodeId),
    // 20 ms ticks, elections after 10-20 ticks: a new leader within about half a second.
    tickMs: options.tickMs ?? 20,
    requestTimeoutMs: 2_000,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.replica === undefined ? {} : { replica: options.replica }),
    ...options.server,
  })));
  return {
    servers,
    peers,
    // A stopped server's replica keeps its last view, which may still say leader.
    leader: () => servers.find((server) => server.running && server.status().role === 'leader'),
    stop: async () => void (await Promise.all(servers.map((server) => server.stop(200)))),
  };
}

/** Polls `probe` every 20 ms until it returns a value other than undefined; fails after timeoutMs. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; polls < timeoutMs / 20 + 1 && Date.now() < deadline; polls++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
