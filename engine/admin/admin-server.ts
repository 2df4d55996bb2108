// The admin HTTP API of one node: health probes, Prometheus metrics, the OpenAPI document and
// UI (local assets, no CDN), and /api/* to inspect and act on the broker and the shards.
//
// Every route carries a JSON schema (querystring, params, body, response), so /docs/json is
// generated from what the server really validates and serializes. /api/* and /metrics need
// `Authorization: Bearer <token>`; the compare is constant-time over SHA-256 digests (so the
// token's length does not leak either). Every error is {"error":{"code","message"}} with an
// SL_ADMIN_* code (admin-errors.ts); fastify's own failures (validation, bad JSON, unknown
// route) are mapped onto the same codes, so clients handle one shape.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { AddressInfo } from 'node:net';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isShardlineError } from '../../base/index.js';
import type { ShardInfo } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import type { Broker } from '../broker.js';
import type { Message } from '../messages/message.js';
import { checkTopicFilter, checkTopicName } from '../routing/topic-name.js';
import { AdminErrors } from './admin-errors.js';
import type { AclStore } from '../security/acl-store.js';
import { registerAclRoutes } from './acl-routes.js';
import { registerConsole } from './console-routes.js';
import { registerUserRoutes } from './user-routes.js';
import type { UserStore } from '../security/user-store.js';
import type { DiskStatus } from '../availability/disk-watermark.js';

export interface AdminNode {
  id: string;
  roles: string[];
  version: string;
  addresses: Record<string, string>;
}

export interface AdminOptions {
  /** undefined on a journal-only node: the /api/mqtt routes answer 503. */
  broker: Broker | undefined;
  /** undefined where the node reaches no shard store: /api/shards answers 503. */
  store: ShardStore | undefined;
  node: AdminNode;
  /** Bearer token every /api call and /metrics needs. */
  token: string;
  metrics?: { contentType: string; render(): Promise<string> };
  logger: Logger;
  /** Effective settings, for GET /api/config. */
  settings: () => Record<string, unknown>;
  /**
   * Applies PATCH /api/config changes (all or none): throws SL_ADMIN_BAD_REQUEST for a bad value
   * and SL_ADMIN_NOT_LIVE for a setting that needs a restart. Absent: nothing is live-settable.
   */
  changeSettings?: (changes: Record<string, unknown>) => void | Promise<void>;
  /** Free and used space of the node's data directories (none on a broker-only node). */
  disks?: () => DiskStatus[];
  /** MQTT users, for /api/users; undefined on a node without a broker (503). */
  users?: UserStore;
  /** Run-time ACL rules (/api/acl); undefined on a node without a broker: 503. */
  acl?: AclStore;
}

const STATUS_OF: Record<string, number> = {
  [AdminErrors.badRequest.code]: 400,
  [AdminErrors.unauthorized.code]: 401,
  [AdminErrors.notFound.code]: 404,
  [AdminErrors.notLive.code]: 409,
  [AdminErrors.internal.code]: 500,
  [AdminErrors.notAvailable.code]: 503,
};

const RATE_WINDOW_MS = 10_000;
const RATE_SAMPLE_MS = 1_000;
const READY_CHECK_TIMEOUT_MS = 2_000;
const PAGE_LIMIT_MAX = 1000;
/** Topics and client ids travel URL-encoded in the path; MQTT allows 65535 bytes, encoded up to 3x. */
const PARAM_LENGTH_MAX = 3 * 65_535;

// ---- schemas -------------------------------------------------------------------------------

const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

function errors(...statuses: number[]): Record<number, typeof errorBody & { description: string }> {
  const out: Record<number, typeof errorBody & { description: string }> = {};
  for (const status of statuses) {
    const code = Object.keys(STATUS_OF).find((candidate) => STATUS_OF[candidate] === status) ?? AdminErrors.badRequest.code;
    out[status] = { ...errorBody, description: code };
  }
  return out;
}

const secured = { security: [{ bearer: [] }] };

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

const pageQuery = {
  type: 'object',
  properties: {
    offset: { type: 'integer', minimum: 0, default: 0, description: 'items to skip' },
    limit: { type: 'integer', minimum: 1, maximum: PAGE_LIMIT_MAX, default: 100, description: 'items to return, 1..1000' },
    prefix: { type: 'string', default: '', description: 'only items whose key (client id, topic) starts with this' },
  },
} as const;

function pageOf(item: object): object {
  return {
    type: 'object',
    required: ['total', 'offset', 'limit', 'items'],
    properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: item } },
  };
}

const clientInfo = {
  type: 'object',
  required: ['clientId', 'subscriptions', 'inflight', 'queued', 'expirySeconds'],
  properties: {
    clientId: { type: 'string' },
    protocol: { type: 'string' },
    protocolVersion: { type: 'integer' },
    remoteAddress: { type: 'string' },
    connectedAt: { type: 'integer', description: 'epoch ms' },
    keepAliveSeconds: { type: 'integer' },
    subscriptions: { type: 'integer', description: 'number of subscriptions' },
    inflight: { type: 'integer', description: 'QoS 1/2 deliveries awaiting acknowledgement' },
    queued: { type: 'integer', description: 'deliveries queued for the connection' },
    expirySeconds: { type: 'integer', description: 'session expiry interval; 0 ends the session with the connection' },
  },
} as const;

const subscriptionOptions = {
  type: 'object',
  required: ['qos', 'noLocal', 'retainAsPublished', 'retainHandling'],
  properties: {
    qos: { type: 'integer', enum: [0, 1, 2] },
    noLocal: { type: 'boolean' },
    retainAsPublished: { type: 'boolean' },
    retainHandling: { type: 'integer', enum: [0, 1, 2] },
    subscriptionId: { type: 'integer' },
  },
} as const;

const sessionInfo = {
  type: 'object',
  required: ['clientId', 'online', 'durable', 'expirySeconds', 'subscriptions'],
  properties: {
    clientId: { type: 'string' },
    online: { type: 'boolean' },
    durable: { type: 'boolean' },
    expirySeconds: { type: 'integer' },
    subscriptions: { type: 'integer' },
    disconnectedAt: { type: 'integer', description: 'epoch ms of the last disconnect (offline durable sessions only)' },
    retentionGap: {
      type: 'object',
      required: ['messages', 'lastAt'],
      description: 'present when retention deleted messages before this session read them (since the node started): it resumed at the oldest kept message',
      properties: { messages: { type: 'integer', description: 'messages skipped in the data shards (any topic of those shards)' }, lastAt: { type: 'integer', description: 'epoch ms of the latest gap' } },
    },
  },
} as const;

const subscriptionInfo = {
  type: 'object',
  required: ['clientId', 'filter', 'options'],
  properties: { clientId: { type: 'string' }, filter: { type: 'string' }, options: subscriptionOptions },
} as const;

const retainedItem = {
  type: 'object',
  required: ['topic', 'payload', 'payloadBase64', 'qos', 'publisherId', 'timestamp'],
  properties: {
    topic: { type: 'string' },
    payload: { type: ['string', 'null'], description: 'the payload as text, null when it is not valid UTF-8' },
    payloadBase64: { type: 'string' },
    qos: { type: 'integer', enum: [0, 1, 2] },
    publisherId: { type: 'string', description: "client id of the publisher ('' for the broker itself)" },
    timestamp: { type: 'integer', description: 'epoch ms of the publish' },
  },
} as const;

const shardItem = {
  type: 'object',
  required: ['name', 'startOffset', 'nextOffset', 'sizeBytes', 'segmentCount', 'durability', 'retentionMs', 'retentionBytes', 'compacted'],
  properties: {
    name: { type: 'string' },
    startOffset: { type: 'integer' },
    nextOffset: { type: 'integer' },
    sizeBytes: { type: 'integer' },
    segmentCount: { type: 'integer' },
    durability: { type: 'string' },
    retentionMs: { type: ['integer', 'null'] },
    retentionBytes: { type: ['integer', 'null'] },
    compacted: { type: 'boolean' },
  },
} as const;

const nodeItem = {
  type: 'object',
  required: ['id', 'roles', 'version', 'addresses', 'self'],
  properties: {
    id: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    version: { type: 'string' },
    addresses: { type: 'object', additionalProperties: { type: 'string' } },
    self: { type: 'boolean' },
  },
} as const;

const nullableCount = { type: ['integer', 'null'], description: 'null on a node without the MQTT broker' } as const;

const overviewBody = {
  type: 'object',
  required: ['node', 'version', 'uptimeSeconds', 'connections', 'sessions', 'subscriptions', 'retained', 'messagesIn', 'messagesOut', 'bytesIn', 'dropped', 'rates', 'disks', 'shardBytes', 'sys'],
  description: 'retained, messagesIn, messagesOut, bytesIn and rates count client traffic only; the broker\'s own $SYS statistics messages are in sys',
  properties: {
    disks: {
      type: 'array',
      description: "the node's data directories (none on a broker-only node): file system size, free and used bytes, bytes the journal holds, the watermark below which publishes are refused, and whether the node is below it",
      items: {
        type: 'object',
        required: ['path', 'totalBytes', 'freeBytes', 'usedBytes', 'journalBytes', 'thresholdBytes', 'low', 'checkedAt'],
        properties: {
          path: { type: 'string' },
          totalBytes: { type: 'integer' },
          freeBytes: { type: 'integer' },
          usedBytes: { type: 'integer' },
          journalBytes: { type: 'integer' },
          thresholdBytes: { type: 'integer', description: '0: the watermark is off' },
          low: { type: 'boolean' },
          checkedAt: { type: 'integer', description: 'epoch ms of the measurement' },
        },
      },
    },
    shardBytes: { type: ['object', 'null'], additionalProperties: { type: 'integer' }, description: 'bytes each shard holds, by name; null when the node has no shard store' },
    node: { type: 'string', description: 'node id' },
    version: { type: 'string' },
    uptimeSeconds: { type: 'integer' },
    connections: nullableCount,
    sessions: nullableCount,
    subscriptions: nullableCount,
    retained: nullableCount,
    messagesIn: nullableCount,
    messagesOut: nullableCount,
    bytesIn: nullableCount,
    dropped: {
      type: ['object', 'null'],
      properties: { 'queue-full': { type: 'integer' }, expired: { type: 'integer' }, 'too-large': { type: 'integer' } },
    },
    rates: {
      type: 'object',
      required: ['messagesInPerSecond', 'messagesOutPerSecond'],
      description: 'over the last ~10 s',
      properties: { messagesInPerSecond: { type: 'number' }, messagesOutPerSecond: { type: 'number' } },
    },
    sys: {
      type: ['object', 'null'],
      description: 'the broker\'s own $SYS/... statistics messages, not counted in the fields above; null on a node without the MQTT broker',
      required: ['messagesIn', 'messagesOut', 'bytesIn', 'bytesOut', 'retained'],
      properties: { messagesIn: { type: 'integer' }, messagesOut: { type: 'integer' }, bytesIn: { type: 'integer' }, bytesOut: { type: 'integer' }, retained: { type: 'integer' } },
    },
  },
} as const;

const clientIdParams = { type: 'object', required: ['clientId'], properties: { clientId: { type: 'string', description: 'URL-encoded client id' } } } as const;
const topicParams = { type: 'object', required: ['topic'], properties: { topic: { type: 'string', description: 'URL-encoded topic name (a/b is a%2Fb)' } } } as const;
const noContent = { type: 'null', description: 'done' } as const;

interface PageQuery {
  offset: number;
  limit: number;
  prefix: string;
}

interface PublishBody {
  topic: string;
  payload?: string;
  payloadBase64?: string;
  qos: 0 | 1 | 2;
  retain: boolean;
}

// ---- helpers -------------------------------------------------------------------------------

function page<T>(all: readonly T[], query: PageQuery, key: (item: T) => string): { total: number; offset: number; limit: number; items: T[] } {
  const matching = query.prefix === '' ? all : all.filter((item) => key(item).startsWith(query.prefix));
  return { total: matching.length, offset: query.offset, limit: query.limit, items: matching.slice(query.offset, query.offset + query.limit) };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function shardView(info: ShardInfo): Record<string, unknown> {
  return {
    name: info.name,
    startOffset: info.startOffset,
    nextOffset: info.nextOffset,
    sizeBytes: info.sizeBytes,
    segmentCount: info.segmentCount,
    durability: info.config.durability,
    retentionMs: info.config.retentionMs,
    retentionBytes: info.config.retentionBytes,
    compacted: info.config.compacted,
  };
}

function retainedView(message: Message): Record<string, unknown> {
  return {
    topic: message.topic,
    payload: isUtf8(message.payload) ? message.payload.toString('utf8') : null,
    payloadBase64: message.payload.toString('base64'),
    qos: message.qos,
    publisherId: message.publisherId,
    timestamp: message.timestamp,
  };
}

/** Maps any failure to the API's error shape and status. */
function classify(error: unknown): { status: number; code: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (isShardlineError(error)) {
    const status = STATUS_OF[error.code];
    if (status !== undefined) return { status, code: error.code, message };
    if (error.code === 'SL_JOURNAL_SHARD_NOT_FOUND' || error.code === 'SL_JOURNAL_INVALID_SHARD_NAME') return { status: 404, code: AdminErrors.notFound.code, message };
    if (error.code === 'SL_JOURNAL_RECORD_TOO_LARGE' || error.code === 'SL_JOURNAL_INVALID_ARGUMENT') return { status: 400, code: AdminErrors.badRequest.code, message };
    if (['SL_JOURNAL_OVERLOADED', 'SL_JOURNAL_CLOSED', 'SL_REMOTE_UNAVAILABLE', 'SL_REMOTE_TIMEOUT'].includes(error.code)) {
      return { status: 503, code: AdminErrors.notAvailable.code, message };
    }
  }
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation !== undefined) return { status: 400, code: AdminErrors.badRequest.code, message };
  const statusCode = fastifyError.statusCode;
  // fastify's own client errors (bad JSON, wrong content type, body too large) keep their status.
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return { status: statusCode, code: AdminErrors.badRequest.code, message };
  if (statusCode === 503) return { status: 503, code: AdminErrors.notAvailable.code, message };
  return { status: 500, code: AdminErrors.internal.code, message: `internal error: ${message}` };
}

/** Counters sampled each second, so rates cover the last ~10 s without a per-message cost. */
class RateSampler {
  readonly #samples: Array<{ at: number; messagesIn: number; messagesOut: number }> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(readonly broker: Broker) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), RATE_SAMPLE_MS);
    this.#timer.unref();
  }

  #sample(): void {
    const now = Date.now();
    this.#samples.push({ at: now, messagesIn: this.broker.stats.messagesIn, messagesOut: this.broker.stats.messagesOut });
    while (this.#samples.length > 1 && (this.#samples[0] as { at: number }).at < now - RATE_WINDOW_MS) this.#samples.shift();
  }

  rates(): { messagesInPerSecond: number; messagesOutPerSecond: number } {
    const oldest = this.#samples[0];
    if (oldest === undefined) return { messagesInPerSecond: 0, messagesOutPerSecond: 0 };
    // Under a second of history (just started) counts as one second, so a burst right after
    // start reads as its count per second rather than an inflated rate.
    const seconds = Math.max(1, (Date.now() - oldest.at) / 1000);
    const round = (value: number): number => Math.round(value * 100) / 100;
    return {
      messagesInPerSecond: round((this.broker.stats.messagesIn - oldest.messagesIn) / seconds),
      messagesOutPerSecond: round((this.broker.stats.messagesOut - oldest.messagesOut) / seconds),
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

// ---- the app -------------------------------------------------------------------------------

export async function createAdminApp(options: AdminOptions): Promise<FastifyInstance> {
  if (options.token.length === 0) throw new Error('the admin token must not be empty');
  const { broker, store, node } = options;
  const expected = digest(options.token);
  const createdAt = Date.now();
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'admin' }),
    // Per-request lines would drown the node log; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: PARAM_LENGTH_MAX },
  }) as unknown as FastifyInstance;
  const sampler = broker === undefined ? undefined : new RateSampler(broker);
  app.addHook('onClose', async () => sampler?.stop());

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Shardline admin API', version: node.version, description: 'Inspect and operate one Shardline node. /api/* and /metrics need `Authorization: Bearer <admin token>`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((error, request, reply) => {
    const { status, code, message } = classify(error);
    if (status >= 500 && status !== 503) request.log.error({ err: error, method: request.method, url: request.url }, 'admin request failed');
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    void reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: AdminErrors.notFound.code, message: `route ${request.method} ${request.url.split('?')[0] ?? ''}` } });
  });

  // Runs for unknown routes too, so /api/* does not reveal which paths exist without a token.
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '';
    const route = request.routeOptions.url ?? '';
    const guarded = path === '/metrics' || path === '/api' || path.startsWith('/api/') || route === '/metrics' || route.startsWith('/api/');
    if (!guarded) return;
    const header = request.headers.authorization;
    if (header === undefined) throw AdminErrors.unauthorized.create({}, 'no Authorization header; send "Authorization: Bearer <token>"');
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (match === null) throw AdminErrors.unauthorized.create({}, 'the Authorization header is not "Bearer <token>"');
    if (!timingSafeEqual(digest(match[1] as string), expected)) throw AdminErrors.unauthorized.create({}, 'the token is not the admin token');
  });

  const needBroker = (): Broker => {
    if (broker === undefined) throw AdminErrors.notAvailable.create({}, 'the MQTT broker');
    if (broker.closed) throw AdminErrors.notAvailable.create({}, 'the MQTT broker (closed)');
    return broker;
  };
  const needStore = (): ShardStore => {
    if (store === undefined) throw AdminErrors.notAvailable.create({}, 'the shard store');
    return store;
  };

  // ---- probes and metrics ----

  app.get('/healthz', {
    schema: { tags: ['probes'], summary: 'Liveness: the process answers', response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags: ['probes'],
      summary: 'Readiness: the broker is open and accepts publishes, and the shard store answers',
      response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ready'] } } }, 503: notReadyBody },
    },
  }, async (_request, reply) => {
    if (broker === undefined && store === undefined) throw AdminErrors.notAvailable.create({}, 'neither the MQTT broker nor the shard store');
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
    return { status: 'ready' };
  });

  app.get('/metrics', {
    schema: { tags: ['probes'], summary: 'Prometheus metrics (text exposition format)', ...secured, response: { 200: { type: 'string' }, ...errors(401, 404) } },
  }, async (_request, reply) => {
    if (options.metrics === undefined) throw AdminErrors.notFound.create({}, 'metrics');
    const text = await options.metrics.render();
    return reply.type(options.metrics.contentType).send(text);
  });

  // ---- node and shards ----

  app.get('/api/overview', {
    schema: { tags: ['node'], summary: 'Counts, totals and rates of this node', ...secured, response: { 200: overviewBody, ...errors(401) } },
  }, async () => {
    const stats = broker?.stats;
    const retained = broker?.retainedCounts();
    return {
      node: node.id,
      version: node.version,
      uptimeSeconds: Math.floor((Date.now() - (broker?.startedAt ?? createdAt)) / 1000),
      connections: broker === undefined ? null : broker.onlineCount,
      sessions: broker === undefined ? null : broker.sessions().length,
      subscriptions: broker === undefined ? null : broker.subscriptions().length,
      retained: retained?.client ?? null,
      messagesIn: stats?.messagesIn ?? null,
      messagesOut: stats?.messagesOut ?? null,
      bytesIn: stats?.bytesIn ?? null,
      dropped: stats === undefined ? null : { ...stats.dropped },
      rates: sampler?.rates() ?? { messagesInPerSecond: 0, messagesOutPerSecond: 0 },
      disks: options.disks?.() ?? [],
      shardBytes: store === undefined ? null : Object.fromEntries((await store.list().catch(() => [])).map((shard) => [shard.name, shard.sizeBytes])),
      sys: stats === undefined || retained === undefined ? null : { ...stats.sys, retained: retained.sys },
    };
  });

  app.get('/api/nodes', {
    schema: { tags: ['node'], summary: 'Nodes of the cluster (today: this node)', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: nodeItem } } }, ...errors(401) } },
  }, async () => ({ items: [{ id: node.id, roles: node.roles, version: node.version, addresses: node.addresses, self: true }] }));

  app.get('/api/shards', {
    schema: { tags: ['shards'], summary: 'Every shard, sorted by name', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: shardItem } } }, ...errors(401, 503) } },
  }, async () => ({ items: (await needStore().list()).map(shardView) }));

  app.get<{ Params: { name: string } }>('/api/shards/:name', {
    schema: {
      tags: ['shards'],
      summary: 'One shard',
      ...secured,
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
      response: { 200: shardItem, ...errors(401, 404, 503) },
    },
  }, async (request) => {
    const shards = needStore();
    try {
      return shardView(await shards.info(request.params.name));
    } catch (error) {
      if (isShardlineError(error, 'SL_JOURNAL_SHARD_NOT_FOUND') || isShardlineError(error, 'SL_JOURNAL_INVALID_SHARD_NAME')) {
        throw AdminErrors.notFound.create({ shard: request.params.name }, `shard ${JSON.stringify(request.params.name)}`);
      }
      throw error;
    }
  });

  // ---- MQTT ----

  app.get<{ Querystring: PageQuery }>('/api/mqtt/clients', {
    schema: { tags: ['mqtt'], summary: 'Connected clients, sorted by client id', ...secured, querystring: pageQuery, response: { 200: pageOf(clientInfo), ...errors(400, 401, 503) } },
  }, async (request) => page(needBroker().clients(), request.query, (client) => client.clientId));

  app.get<{ Params: { clientId: string } }>('/api/mqtt/clients/:clientId', {
    schema: {
      tags: ['mqtt'],
      summary: 'One connected client and its subscriptions',
      ...secured,
      params: clientIdParams,
      response: {
        200: {
          ...clientInfo,
          required: [...clientInfo.required, 'filters'],
          properties: {
            ...clientInfo.properties,
            filters: { type: 'array', description: 'the subscriptions', items: { type: 'object', required: ['filter', 'options'], properties: { filter: { type: 'string' }, options: subscriptionOptions } } },
          },
        },
        ...errors(401, 404, 503),
      },
    },
  }, async (request) => {
    const mqtt = needBroker();
    const { clientId } = request.params;
    const client = mqtt.clients().find((candidate) => candidate.clientId === clientId);
    if (client === undefined) throw AdminErrors.notFound.create({ clientId }, `connected client ${JSON.stringify(clientId)}`);
    const filters = mqtt.subscriptions().filter((entry) => entry.clientId === clientId).map(({ filter, options: subscription }) => ({ filter, options: subscription }));
    return { ...client, filters };
  });

  app.delete<{ Params: { clientId: string } }>('/api/mqtt/clients/:clientId', {
    schema: { tags: ['mqtt'], summary: 'Disconnect a client (MQTT 5: DISCONNECT 0x98); its session stays as its expiry says', ...secured, params: clientIdParams, response: { 204: noContent, ...errors(401, 404, 503) } },
  }, async (request, reply) => {
    const { clientId } = request.params;
    if (!needBroker().kick(clientId)) throw AdminErrors.notFound.create({ clientId }, `connected client ${JSON.stringify(clientId)}`);
    return reply.code(204).send();
  });

  app.get<{ Querystring: PageQuery }>('/api/mqtt/sessions', {
    schema: { tags: ['mqtt'], summary: 'Sessions: online ones and durable offline ones, sorted by client id', ...secured, querystring: pageQuery, response: { 200: pageOf(sessionInfo), ...errors(400, 401, 503) } },
  }, async (request) => page(needBroker().sessions(), request.query, (session) => session.clientId));

  app.get<{ Querystring: PageQuery }>('/api/mqtt/subscriptions', {
    schema: { tags: ['mqtt'], summary: 'Subscriptions of every session, sorted by client id then filter (prefix: on the client id)', ...secured, querystring: pageQuery, response: { 200: pageOf(subscriptionInfo), ...errors(400, 401, 503) } },
  }, async (request) => page(needBroker().subscriptions(), request.query, (entry) => entry.clientId));

  app.get<{ Querystring: PageQuery }>('/api/mqtt/topics', {
    schema: {
      tags: ['mqtt'],
      summary: 'Messages published per topic since start (prefix: on the topic)',
      ...secured,
      querystring: pageQuery,
      response: { 200: pageOf({ type: 'object', required: ['topic', 'messages'], properties: { topic: { type: 'string' }, messages: { type: 'integer' } } }), ...errors(400, 401, 503) },
    },
  }, async (request) => page(needBroker().topicCounts(), request.query, (entry) => entry.topic));

  app.get<{ Querystring: { offset: number; limit: number; filter: string } }>('/api/mqtt/retained', {
    schema: {
      tags: ['mqtt'],
      summary: 'Retained messages matching an MQTT topic filter, oldest publish first',
      ...secured,
      querystring: {
        type: 'object',
        properties: { offset: pageQuery.properties.offset, limit: pageQuery.properties.limit, filter: { type: 'string', default: '#', description: 'MQTT topic filter' } },
      },
      response: { 200: pageOf(retainedItem), ...errors(400, 401, 503) },
    },
  }, async (request) => {
    const mqtt = needBroker();
    const { filter, offset, limit } = request.query;
    const check = checkTopicFilter(filter);
    if (!check.ok) throw AdminErrors.badRequest.create({}, `invalid filter: ${check.detail}`);
    const all = mqtt.retained.matching(filter);
    return { total: all.length, offset, limit, items: all.slice(offset, offset + limit).map(retainedView) };
  });

  app.get<{ Params: { topic: string } }>('/api/mqtt/retained/:topic', {
    schema: { tags: ['mqtt'], summary: 'One retained message', ...secured, params: topicParams, response: { 200: retainedItem, ...errors(401, 404, 503) } },
  }, async (request) => {
    const { topic } = request.params;
    const message = needBroker().retained.get(topic);
    if (message === undefined) throw AdminErrors.notFound.create({ topic }, `retained message on ${JSON.stringify(topic)}`);
    return retainedView(message);
  });

  app.delete<{ Params: { topic: string } }>('/api/mqtt/retained/:topic', {
    schema: { tags: ['mqtt'], summary: 'Clear a retained message (nothing is delivered)', ...secured, params: topicParams, response: { 204: noContent, ...errors(401, 404, 503) } },
  }, async (request, reply) => {
    const { topic } = request.params;
    if (!(await needBroker().clearRetained(topic))) throw AdminErrors.notFound.create({ topic }, `retained message on ${JSON.stringify(topic)}`);
    return reply.code(204).send();
  });

  app.post<{ Body: PublishBody }>('/api/mqtt/publish', {
    schema: {
      tags: ['mqtt'],
      summary: 'Publish a message as the broker (publisher id empty); resolves once durable',
      ...secured,
      body: {
        type: 'object',
        required: ['topic'],
        properties: {
          topic: { type: 'string', description: 'MQTT topic name (no wildcards)' },
          payload: { type: 'string', description: 'payload as UTF-8 text' },
          payloadBase64: { type: 'string', pattern: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$', description: 'payload as base64 (instead of payload)' },
          qos: { type: 'integer', enum: [0, 1, 2], default: 0 },
          retain: { type: 'boolean', default: false },
        },
      },
      response: { 200: { type: 'object', required: ['matched'], properties: { matched: { type: 'boolean', description: 'whether any subscription (online or not) matched' } } }, ...errors(400, 401, 503) },
    },
  }, async (request) => {
    const mqtt = needBroker();
    const body = request.body;
    if (body.payload !== undefined && body.payloadBase64 !== undefined) throw AdminErrors.badRequest.create({}, 'give payload or payloadBase64, not both');
    const check = checkTopicName(body.topic);
    if (!check.ok) throw AdminErrors.badRequest.create({}, `invalid topic: ${check.detail}`);
    const payload = body.payloadBase64 !== undefined ? Buffer.from(body.payloadBase64, 'base64') : Buffer.from(body.payload ?? '', 'utf8');
    return mqtt.publish({ topic: body.topic, payload, qos: body.qos, retain: body.retain, publisherId: '', timestamp: Date.now(), properties: undefined });
  });

  // ---- config ----

  app.get('/api/config', {
    schema: {
      tags: ['node'],
      summary: 'Effective settings of this node',
      ...secured,
      response: { 200: { type: 'object', required: ['settings'], properties: { settings: { type: 'object', additionalProperties: true } } }, ...errors(401) },
    },
  }, async () => ({ settings: options.settings() }));

  app.patch<{ Body: Record<string, unknown> }>('/api/config', {
    schema: {
      tags: ['node'],
      summary: 'Change settings while running (this process only; not written to the config file). Settings that need a restart answer 409; the change is all or nothing',
      ...secured,
      body: { type: 'object', minProperties: 1, additionalProperties: true },
      response: { 200: { type: 'object', required: ['settings'], properties: { settings: { type: 'object', additionalProperties: true } } }, ...errors(400, 401, 409) },
    },
  }, async (request) => {
    const known = options.settings();
    const keys = Object.keys(request.body);
    const unknown = keys.find((key) => !Object.hasOwn(known, key));
    if (unknown !== undefined) throw AdminErrors.badRequest.create({}, `unknown setting ${JSON.stringify(unknown)}`);
    if (options.changeSettings === undefined) throw AdminErrors.notLive.create({ setting: keys[0] }, keys[0] as string);
    await options.changeSettings(request.body);
    request.log.info({ changes: request.body }, 'settings changed through the admin API');
    return { settings: options.settings() };
  });

  registerUserRoutes(app, options.users, broker);
  registerAclRoutes(app, options.acl, { secured, errors, noContent });
  registerConsole(app, { store });

  return app;
}

/** The admin API listening on a TCP address; stop() closes it and its connections. */
export class AdminServer {
  readonly #app: FastifyInstance;
  /** "host:port" as bound ("[::1]:8080" for IPv6). */
  readonly address: string;
  readonly port: number;
  /** http://address */
  readonly url: string;

  private constructor(app: FastifyInstance, host: string, port: number) {
    this.#app = app;
    this.port = port;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.url = `http://${this.address}`;
  }

  /** `portSetting`: the setting named when the port is in use (default --admin-port). */
  static async start(options: AdminOptions & { host: string; port: number; portSetting?: string }): Promise<AdminServer> {
    const app = await createAdminApp(options);
    try {
      await app.listen({ host: options.host, port: options.port });
    } catch (error) {
      await app.close();
      const code = (error as NodeJS.ErrnoException).code;
      const detail = error instanceof Error ? `${code ?? error.name}: ${error.message}` : String(error);
      // Every node serves the admin API, so two nodes on one machine meet here first.
      const reason = code === 'EADDRINUSE' ? `${detail}; another node on this machine? pick another with ${options.portSetting ?? '--admin-port'}` : detail;
      throw AdminErrors.listenFailed.withCause(error, {}, `${options.host}:${options.port}`, reason);
    }
    const bound = app.server.address() as AddressInfo;
    return new AdminServer(app, bound.address, bound.port);
  }

  stop(): Promise<void> {
    return this.#app.close();
  }
}
