// Probes and metrics: /healthz (the process answers), /readyz (the broker takes publishes, the
// shard store answers, a placement voter is in quorum and caught up, and a journal node's
// replicas have caught up with their leaders; a load balancer or Kubernetes reads it), /metrics
// (Prometheus, behind the token).
import type { FastifyInstance } from 'fastify';
import { isShardlineError } from '../base/index.js';
import type { Broker } from '../engine/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { AdminErrors } from './admin-errors.js';
import type { PlacementAdmin } from './placement-admin.js';
import { placementNotReady } from './placement-readiness.js';
import { errorBody, errors, secured } from './route-kit.js';

const READY_CHECK_TIMEOUT_MS = 2_000;

/** /readyz's 503: the error, and the write gate's conditions when those are why. */
const notReadyBody = {
  ...errorBody,
  description: AdminErrors.notAvailable.code,
  properties: {
    ...errorBody.properties,
    blocks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['reason', 'detail', 'since'],
        properties: { reason: { type: 'string', enum: ['journal-unavailable', 'disk-low'] }, detail: { type: 'string' }, since: { type: 'integer', description: 'epoch ms the condition started' } },
      },
    },
  },
} as const;

export interface ProbeOptions {
  broker: Broker | undefined;
  store: ShardStore | undefined;
  metrics: { contentType: string; render(): Promise<string> } | undefined;
  /** The placement voter whose quorum and catch-up /readyz requires; undefined where none runs (or only the single node's embedded one). */
  placement?: PlacementAdmin | undefined;
  /** A journal node's replicas, which /readyz requires caught up; undefined on a node that replicates nothing. */
  replication?: ReplicationReadiness | undefined;
}

export interface ReplicationReadiness {
  /** Each replica on the node that has not caught up since it (re)started, with why; empty when all have. */
  notCaughtUp(): string[];
}

/** How many lagging replicas a 503's message names before it only counts the rest. */
const NAMED_LAGGING_MAX = 5;

export function registerProbeRoutes(app: FastifyInstance, { broker, store, metrics, placement, replication }: ProbeOptions): void {
  app.get('/healthz', {
    schema: { tags: ['probes'], summary: 'Liveness: the process answers', response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags: ['probes'],
      summary: 'Readiness: the broker is open and accepts publishes, the shard store answers, a placement voter is in quorum and has applied what the leader committed, and every replica on a journal node has caught up with its leader since the node started',
      response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ready'] } } }, 503: notReadyBody },
    },
  }, async (_request, reply) => {
    if (broker === undefined && store === undefined && placement === undefined) throw AdminErrors.notAvailable.create({}, 'neither the MQTT broker, the shard store nor a placement voter');
    if (broker?.closed === true) throw AdminErrors.notAvailable.create({}, 'the MQTT broker (closed)');
    // Not ready while the broker refuses publishes, whatever the reason (journal unreachable,
    // disk low): a load balancer should send publishers elsewhere. The reasons are listed.
    if (broker !== undefined && !broker.writeGate.open) {
      const blocks = broker.writeGate.blocks;
      const message = `the MQTT broker refuses publishes: ${blocks.map((block) => `${block.reason} (${block.detail})`).join('; ')}`;
      return reply.code(503).send({ error: { code: AdminErrors.notAvailable.code, message }, blocks });
    }
    if (store !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(AdminErrors.notAvailable.create({}, `the shard store (no answer within ${READY_CHECK_TIMEOUT_MS} ms)`)), READY_CHECK_TIMEOUT_MS);
      });
      try {
        await Promise.race([store.list(), timeout]);
      } catch (error) {
        if (isShardlineError(error, AdminErrors.notAvailable.code)) throw error;
        throw AdminErrors.notAvailable.withCause(error, {}, `the shard store (${error instanceof Error ? error.message : String(error)})`);
      } finally {
        clearTimeout(timer);
      }
    }
    if (placement !== undefined) {
      const reason = await placementNotReady(placement);
      if (reason !== null) throw AdminErrors.notAvailable.create({}, `the placement voter (${reason})`);
    }
    const lagging = replication?.notCaughtUp() ?? [];
    if (lagging.length > 0) {
      const named = lagging.slice(0, NAMED_LAGGING_MAX).join('; ');
      const more = lagging.length > NAMED_LAGGING_MAX ? `; and ${lagging.length - NAMED_LAGGING_MAX} more` : '';
      throw AdminErrors.notAvailable.create({}, `the journal's replicas (${lagging.length} not caught up with their leaders: ${named}${more})`);
    }
    return { status: 'ready' };
  });

  app.get('/metrics', {
    schema: { tags: ['probes'], summary: 'Prometheus metrics (text exposition format)', ...secured, response: { 200: { type: 'string' }, ...errors(401, 404) } },
  }, async (_request, reply) => {
    if (metrics === undefined) throw AdminErrors.notFound.create({}, 'metrics');
    const text = await metrics.render();
    return reply.type(metrics.contentType).send(text);
  });
}
