// /api/replication/*: this journal node's view of each shard it replicates (role, epoch, leader,
// HW, log start and end, whether it votes) and, on the leader, each follower's catch-up progress
// (its reported log end and durable end, how many offsets and about how many bytes it is
// behind). For the dashboard and scripts; `shardline ctl replica status` shows the same over
// the journal gRPC port. A route plugin the runtime registers on every journal node; one that
// replicates nothing (not in a placement cluster, no --replica-peers) answers 503.
import type { FastifyInstance } from 'fastify';
import { isShardlineError, type ReplicationNode } from '../journal/index.js';
import { AdminErrors } from './admin-errors.js';
import { errors, secured, type AdminRoutePlugin } from './route-kit.js';

const offset = { type: 'integer', minimum: 0 } as const;

const progressItem = {
  type: 'object',
  required: ['node', 'fetched', 'durable', 'recordsBehind', 'bytesBehind'],
  properties: {
    node: { type: 'string' },
    fetched: { ...offset, description: "the follower's log end, as its last fetch reported it" },
    durable: { ...offset, description: "the follower's durable end, as its last fetch reported it" },
    recordsBehind: { ...offset, description: "the leader's log end minus fetched (offsets; epoch starts included)" },
    bytesBehind: { ...offset, description: "about how many bytes of the leader's log lie past fetched" },
  },
} as const;

const statusItem = {
  type: 'object',
  required: ['shard', 'node', 'role', 'epoch', 'leader', 'replicas', 'highWatermark', 'logStart', 'logEnd', 'lastEpoch', 'voter', 'followers'],
  properties: {
    shard: { type: 'string' },
    node: { type: 'string' },
    role: { type: 'string', enum: ['leader', 'follower', 'idle'] },
    epoch: { type: 'integer' },
    leader: { type: 'string', description: "the leader this node knows; '' when none" },
    replicas: { type: 'array', items: { type: 'string' } },
    highWatermark: offset,
    logStart: offset,
    logEnd: offset,
    lastEpoch: { type: 'integer' },
    voter: { type: 'boolean', description: 'false while the node rejoins without the replica state it lost' },
    followers: { type: 'array', items: progressItem, description: 'on the leader: each follower; elsewhere empty' },
  },
} as const;

const retiredItem = {
  type: 'object',
  required: ['shard', 'epoch', 'logEnd', 'at'],
  properties: {
    shard: { type: 'string' },
    epoch: { type: 'integer', description: 'the epoch this node held for the shard when it deleted its copy' },
    logEnd: offset,
    at: { type: 'string', format: 'date-time' },
  },
} as const;

export function replicationAdminRoutes(replication: ReplicationNode | undefined): AdminRoutePlugin {
  const needReplication = (): ReplicationNode => {
    if (replication === undefined) throw AdminErrors.notAvailable.create({}, 'replication (this journal node replicates nothing: it is not in a placement cluster and has no --replica-peers)');
    return replication;
  };
  const view = (node: ReplicationNode, shard: string): Record<string, unknown> => ({ shard, ...node.status(shard) });
  return (app: FastifyInstance) => {
    app.get('/api/replication/shards', {
      schema: { tags: ['replication'], summary: 'Every shard this journal node replicates, with its replication state', ...secured, response: { 200: { type: 'object', required: ['items', 'removed'], properties: { items: { type: 'array', items: statusItem }, removed: { type: 'array', items: retiredItem, description: 'copies this node deleted since it started because placement removed it from their replica sets, newest first (at most 100)' } } }, ...errors(401, 503) } },
    }, async () => {
      const node = needReplication();
      return { items: node.shards().map((shard) => view(node, shard)), removed: node.retiredCopies().map((copy) => ({ ...copy, at: new Date(copy.at).toISOString() })) };
    });

    app.get<{ Params: { name: string } }>('/api/replication/shards/:name', {
      schema: {
        tags: ['replication'],
        summary: "One replicated shard's state on this node; on its leader, each follower's catch-up progress",
        ...secured,
        params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
        response: { 200: statusItem, ...errors(401, 404, 503) },
      },
    }, async (request) => {
      const node = needReplication();
      try {
        return view(node, request.params.name);
      } catch (error) {
        if (isShardlineError(error, 'SL_JOURNAL_SHARD_NOT_FOUND') || isShardlineError(error, 'SL_REPL_NOT_REPLICATED') || isShardlineError(error, 'SL_JOURNAL_INVALID_SHARD_NAME')) {
          throw AdminErrors.notFound.create({ shard: request.params.name }, `replicated shard ${JSON.stringify(request.params.name)}`);
        }
        throw error;
      }
    });
  };
}
