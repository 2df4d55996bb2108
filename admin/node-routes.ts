// The node's own routes: /api/overview (counts, totals, rates, disks), /api/nodes, and
// /api/config (the effective settings; live changes through the node runtime's hook).
import type { FastifyInstance } from 'fastify';
import type { Broker, DiskStatus } from '../engine/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { AdminErrors } from './admin-errors.js';
import { RateSampler } from './rate-sampler.js';
import { errors, secured } from './route-kit.js';

export interface AdminNode {
  id: string;
  roles: string[];
  version: string;
  addresses: Record<string, string>;
}

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

export interface NodeRouteOptions {
  broker: Broker | undefined;
  store: ShardStore | undefined;
  node: AdminNode;
  disks: (() => DiskStatus[]) | undefined;
}

/** /api/overview and /api/nodes. */
export function registerNodeRoutes(app: FastifyInstance, { broker, store, node, disks }: NodeRouteOptions): void {
  const createdAt = Date.now();
  const sampler = broker === undefined ? undefined : new RateSampler(broker);
  app.addHook('onClose', async () => sampler?.stop());

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
      disks: disks?.() ?? [],
      shardBytes: store === undefined ? null : Object.fromEntries((await store.list().catch(() => [])).map((shard) => [shard.name, shard.sizeBytes])),
      sys: stats === undefined || retained === undefined ? null : { ...stats.sys, retained: retained.sys },
    };
  });

  app.get('/api/nodes', {
    schema: { tags: ['node'], summary: 'Nodes of the cluster (today: this node)', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: nodeItem } } }, ...errors(401) } },
  }, async () => ({ items: [{ id: node.id, roles: node.roles, version: node.version, addresses: node.addresses, self: true }] }));
}

export interface ConfigRouteOptions {
  settings: () => Record<string, unknown>;
  changeSettings: ((changes: Record<string, unknown>) => void | Promise<void>) | undefined;
}

/** GET and PATCH /api/config. */
export function registerConfigRoutes(app: FastifyInstance, options: ConfigRouteOptions): void {
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
}
