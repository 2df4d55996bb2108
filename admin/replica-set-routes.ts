// GET /api/replication/sets: every replicated shard's replica set, leader and epoch, with each
// replica's own figures and the leader's view of its catch-up, for the dashboard's Replication
// page. Unlike /api/replication/shards (this journal node's own view only) it answers on any
// cluster member, brokers included: the sets come from placement (or, on a journal node
// replicating without placement, from its own replica state) and each replica is asked its
// ReplicaStatus over its journal gRPC port, as `shardline ctl replica status` asks. The runtime
// hands in the source (node/replica-set-source.ts); without one (a single node) the route
// answers 503.
import type { FastifyInstance } from 'fastify';
import { isShardlineError, type journalWire } from '../journal/index.js';
import { AdminErrors } from './admin-errors.js';
import { replicaSetView, type ReplicaAnswer, type ReplicaSetRecord } from './replica-set-view.js';
import { errors, secured, type AdminRoutePlugin } from './route-kit.js';

/** Where the replica sets come from and how a replica is asked about a shard. */
export interface ReplicaSetSource {
  /** 'placement': the cluster's shard records; 'replica-peers': a journal node's own replicated shards (no placement). */
  readonly origin: 'placement' | 'replica-peers';
  /** The replicated shards and each journal node's gRPC address, by node id. */
  read(): Promise<{ shards: readonly ReplicaSetRecord[]; addresses: ReadonlyMap<string, string> }>;
  /** One replica's ReplicaStatus of `shard`; rejects when the node does not answer in time. */
  status(address: string, shard: string): Promise<journalWire.ReplicaStatusResponse>;
  /** Releases the source's connections (the admin server is closing). */
  close?(): void;
}

/** Shards per answer: each costs one call per replica. */
export const REPLICA_SETS_LIMIT_MAX = 500;
/** ReplicaStatus calls in flight at once for one request. */
export const REPLICA_STATUS_CONCURRENCY = 16;

const nullableOffset = { type: 'integer', minimum: 0, nullable: true } as const;

const replicaRow = {
  type: 'object',
  required: ['node', 'address', 'recordedLeader', 'learner', 'reachable', 'error', 'role', 'epoch', 'leader', 'highWatermark', 'logStart', 'logEnd', 'lastEpoch', 'voter', 'fetched', 'durable', 'recordsBehind', 'bytesBehind'],
  properties: {
    node: { type: 'string' },
    address: { type: 'string', nullable: true, description: "the replica's journal gRPC address; null when placement has none" },
    recordedLeader: { type: 'boolean', description: 'placement records this replica as the leader' },
    learner: { type: 'boolean', description: 'a learner of a replica-set change in progress: copying the shard from the leader, counted for nothing until placement switches the set' },
    reachable: { type: 'boolean' },
    error: { type: 'string', nullable: true, description: 'why the replica did not answer' },
    role: { type: 'string', nullable: true, description: 'leader, follower, starting (writing its epoch start) or idle, as the replica answered' },
    epoch: { type: 'integer', nullable: true, description: 'the epoch the replica holds' },
    leader: { type: 'string', nullable: true, description: "the leader the replica knows; '' none" },
    highWatermark: { ...nullableOffset, description: "the replica's HW: it serves readers below it" },
    logStart: nullableOffset,
    logEnd: { ...nullableOffset, description: "the replica's log end (its durable end: replicated shards run in fsync mode)" },
    lastEpoch: { type: 'integer', nullable: true, description: "the epoch of the replica's last batch" },
    voter: { type: 'boolean', nullable: true, description: 'false while it rejoins without the replica state it lost' },
    fetched: { ...nullableOffset, description: 'the log end the leader last heard from this replica; null for a learner that has not fetched yet' },
    durable: { ...nullableOffset, description: 'the durable end the leader last heard from this replica' },
    recordsBehind: { ...nullableOffset, description: "the leader's log end minus fetched; 0 on the leader; null without an answering leader" },
    bytesBehind: { ...nullableOffset, description: "about how many bytes of the leader's log lie past fetched" },
  },
} as const;

const setItem = {
  type: 'object',
  required: ['shard', 'epoch', 'leader', 'answeringLeader', 'leaderLogStart', 'leaderLogEnd', 'highWatermark', 'replicas'],
  properties: {
    shard: { type: 'string' },
    epoch: { type: 'integer', description: "the shard's recorded epoch" },
    leader: { type: 'string', nullable: true, description: 'the recorded leader; null when none' },
    answeringLeader: { type: 'string', description: "the replica that answered as leader in the newest epoch, whose view fetched, durable and the lags are; '' none" },
    leaderLogStart: nullableOffset,
    leaderLogEnd: nullableOffset,
    highWatermark: { ...nullableOffset, description: "the answering leader's HW" },
    replicas: { type: 'array', items: replicaRow, description: 'the recorded replicas in the recorded order, then the learners of a change in progress' },
  },
} as const;

/** Runs `work` over `items` with at most `limit` promises pending, keeping the order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function describe(error: unknown): string {
  if (isShardlineError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

export function replicaSetAdminRoutes(source: ReplicaSetSource | undefined): AdminRoutePlugin {
  return (app: FastifyInstance) => {
    if (source?.close !== undefined) app.addHook('onClose', async () => source.close?.());
    app.get<{ Querystring: { limit: number; prefix: string } }>('/api/replication/sets', {
      schema: {
        tags: ['replication'],
        summary: "Every replicated shard's replica set, leader and epoch, each replica's figures and the leader's view of its catch-up",
        ...secured,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: REPLICA_SETS_LIMIT_MAX, default: 100, description: `shards to return, 1..${REPLICA_SETS_LIMIT_MAX}, by name` },
            prefix: { type: 'string', default: '', description: 'only shards whose name starts with this' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['origin', 'total', 'items'],
            properties: {
              origin: { type: 'string', enum: ['placement', 'replica-peers'], description: 'where the replica sets come from' },
              total: { type: 'integer', minimum: 0, description: 'replicated shards matching the prefix (items holds at most limit of them)' },
              items: { type: 'array', items: setItem },
            },
          },
          ...errors(401, 503),
        },
      },
    }, async (request) => {
      if (source === undefined) throw AdminErrors.notAvailable.create({}, 'replication (this node is not in a placement group and replicates nothing)');
      const { shards, addresses } = await source.read().catch((error: unknown) => {
        throw AdminErrors.notAvailable.create({}, `the replica sets (placement did not answer: ${describe(error)})`);
      });
      const matching = shards.filter((shard) => shard.name.startsWith(request.query.prefix)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const page = matching.slice(0, request.query.limit);
      const asks = page.flatMap((shard) => [...shard.replicas, ...(shard.learners ?? [])].map((node) => ({ shard: shard.name, node, address: addresses.get(node) ?? null })));
      const answers = await mapBounded(asks, REPLICA_STATUS_CONCURRENCY, async ({ shard, node, address }): Promise<ReplicaAnswer & { shard: string }> => {
        if (address === null) return { shard, node, address, error: 'placement knows no journal address for this node' };
        try {
          return { shard, node, address, status: await source.status(address, shard) };
        } catch (error) {
          return { shard, node, address, error: describe(error) };
        }
      });
      const byShard = new Map<string, ReplicaAnswer[]>();
      for (const answer of answers) byShard.set(answer.shard, [...(byShard.get(answer.shard) ?? []), answer]);
      const items = page.map((shard) => replicaSetView(shard, byShard.get(shard.name) ?? []));
      return { origin: source.origin, total: matching.length, items };
    });
  };
}
