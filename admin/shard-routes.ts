// /api/shards: every shard of the node's shard store (journal or remote), and one by name.
import type { FastifyInstance } from 'fastify';
import { isShardlineError } from '../base/index.js';
import type { ShardInfo } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { AdminErrors } from './admin-errors.js';
import { errors, secured } from './route-kit.js';

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

export function registerShardRoutes(app: FastifyInstance, store: ShardStore | undefined): void {
  const needStore = (): ShardStore => {
    if (store === undefined) throw AdminErrors.notAvailable.create({}, 'the shard store');
    return store;
  };

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
}
