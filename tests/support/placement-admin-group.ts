// Test helper: a 3-voter placement group in process (placement/service's startCluster, loopback
// gRPC) with a real AdminServer on loopback for each voter, serving the /api/cluster routes and
// the placement metrics. Used by admin/placement-routes.test.ts, tests/ctl-cluster.test.ts and
// tests/dashboard-cluster.test.ts.
import pino from 'pino';
import { AdminServer, createMetrics, placementAdmin, placementAdminRoutes, type PlacementAdmin } from '../../admin/index.js';
import { CLUSTER_ID, CLUSTER_TOKEN, startCluster, waitFor, type TestCluster } from '../../placement/service/testing.js';

export interface AdminTestNode {
  readonly id: number;
  readonly admin: PlacementAdmin;
  readonly http: AdminServer;
}

export interface AdminTestCluster {
  readonly cluster: TestCluster;
  readonly nodes: readonly AdminTestNode[];
  /** The node whose voter leads now (fails when none does). */
  leader(): AdminTestNode;
  /** Running nodes that do not lead. */
  followers(): AdminTestNode[];
  stop(): Promise<void>;
}

export async function startAdminCluster(token: string, options: { transferWaitMs?: number } = {}): Promise<AdminTestCluster> {
  const logger = pino({ level: 'silent' });
  const cluster = await startCluster();
  const nodes = await Promise.all(cluster.servers.map(async (server) => {
    const admin = placementAdmin(server, { peers: cluster.peers, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, requestTimeoutMs: 3_000 });
    const metrics = createMetrics({ node: `p${server.nodeId}`, placement: admin });
    const http = await AdminServer.start({
      broker: undefined,
      store: undefined,
      node: { id: `p${server.nodeId}`, roles: ['placement'], version: '0.1.0', addresses: {} },
      token,
      logger,
      settings: () => ({}),
      metrics,
      cluster: placementAdminRoutes(admin, options),
      placementReadiness: admin,
      host: '127.0.0.1',
      port: 0,
    });
    return { id: server.nodeId, admin, http };
  }));
  await waitFor('a leader every voter knows', () => {
    const leader = cluster.leader();
    return leader !== undefined && cluster.servers.every((server) => server.status().leader === leader.nodeId) ? true : undefined;
  });
  const leader = (): AdminTestNode => {
    const server = cluster.leader();
    const node = nodes.find((candidate) => candidate.id === server?.nodeId);
    if (node === undefined) throw new Error('no placement voter leads');
    return node;
  };
  return {
    cluster,
    nodes,
    leader,
    followers: () => nodes.filter((node) => node.id !== leader().id && cluster.servers[node.id - 1]?.running === true),
    stop: async () => {
      for (const node of nodes) {
        node.admin.close();
        await node.http.stop();
      }
      await cluster.stop();
    },
  };
}
