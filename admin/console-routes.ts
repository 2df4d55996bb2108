// The web dashboard's part of the admin server: the static files of console/ at / and
// /console/* (no token: the page itself asks for the token and sends it on every /api call),
// and GET /api/shards/:name/records, the shard browser's (audit view's) read of a shard.
//
// console/ is plain HTML, CSS and ES modules with no build step, so the files in the
// repository are what browsers get; nothing is fetched from the internet.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isShardlineError } from '../base/index.js';
import type { JournalRecord } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { AdminErrors } from './admin-errors.js';

export const RECORDS_LIMIT_MAX = 500;

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** console/ beside the sources (admin → ../console) or beside dist/ (dist/admin → ../../console). */
export function consoleDirectory(): string | undefined {
  for (const relative of ['../console', '../../console']) {
    const candidate = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(join(candidate, 'index.html'))) return candidate;
  }
  return undefined;
}

interface RecordsQuery {
  fromOffset?: number;
  fromTime?: number;
  toTime?: number;
  limit: number;
}

function recordView(record: JournalRecord): Record<string, unknown> {
  const value = record.value;
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === null ? null : isUtf8(record.key) ? record.key.toString('utf8') : null,
    value: value === null ? null : isUtf8(value) ? value.toString('utf8') : null,
    valueBase64: value === null ? null : value.toString('base64'),
    headers: record.headers.map((header) => ({
      key: header.key,
      value: isUtf8(header.value) ? header.value.toString('utf8') : null,
    })),
  };
}

const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

const recordItem = {
  type: 'object',
  required: ['offset', 'timestamp', 'key', 'value', 'valueBase64', 'headers'],
  properties: {
    offset: { type: 'integer' },
    timestamp: { type: 'integer', description: 'epoch ms' },
    key: { type: ['string', 'null'], description: 'UTF-8 text, null if absent or not UTF-8' },
    value: { type: ['string', 'null'], description: 'UTF-8 text, null if absent or not UTF-8' },
    valueBase64: { type: ['string', 'null'] },
    headers: { type: 'array', items: { type: 'object', properties: { key: { type: 'string' }, value: { type: ['string', 'null'] } } } },
  },
} as const;

export function registerConsole(app: FastifyInstance, options: { store: ShardStore | undefined }): void {
  const directory = consoleDirectory();

  const sendFile = async (file: string, reply: FastifyReply): Promise<unknown> => {
    // Only plain names of this one folder: no traversal, no dot files.
    if (directory === undefined || !/^[a-z0-9][a-z0-9-]*\.(html|js|css|svg)$/.test(file)) {
      throw AdminErrors.notFound.create({}, `dashboard file ${JSON.stringify(file)}`);
    }
    let body: Buffer;
    try {
      body = await readFile(join(directory, file));
    } catch {
      throw AdminErrors.notFound.create({}, `dashboard file ${JSON.stringify(file)}`);
    }
    const extension = file.slice(file.lastIndexOf('.') + 1);
    return reply.type(CONTENT_TYPES[extension] ?? 'application/octet-stream').header('cache-control', 'no-cache').send(body);
  };

  app.get('/', { schema: { hide: true } }, async (_request, reply) => sendFile('index.html', reply));
  app.get('/console', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/'));
  app.get<{ Params: { file: string } }>('/console/:file', { schema: { hide: true } }, async (request, reply) => sendFile(request.params.file, reply));

  app.get<{ Params: { name: string }; Querystring: RecordsQuery }>('/api/shards/:name/records', {
    schema: {
      tags: ['shards'],
      summary: 'Records of a shard from an offset or a time range (the dashboard\'s shard browser)',
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
      querystring: {
        type: 'object',
        properties: {
          fromOffset: { type: 'integer', minimum: 0, description: 'first offset (default: the shard\'s start); ignored when fromTime is given' },
          fromTime: { type: 'integer', minimum: 0, description: 'epoch ms: records from the first one at or after it' },
          toTime: { type: 'integer', minimum: 0, description: 'epoch ms: only records before it' },
          limit: { type: 'integer', minimum: 1, maximum: RECORDS_LIMIT_MAX, default: 100, description: `records to return, 1..${RECORDS_LIMIT_MAX}` },
        },
      },
      response: {
        200: { type: 'object', required: ['shard', 'items'], properties: { shard: { type: 'string' }, items: { type: 'array', items: recordItem } } },
        400: errorBody, 401: errorBody, 404: errorBody, 503: errorBody,
      },
    },
  }, async (request) => {
    const store = options.store;
    if (store === undefined) throw AdminErrors.notAvailable.create({}, 'the shard store');
    const { name } = request.params;
    const { fromOffset, fromTime, toTime, limit } = request.query;
    if (fromTime !== undefined && toTime !== undefined && toTime < fromTime) {
      throw AdminErrors.badRequest.create({}, 'toTime is before fromTime');
    }
    try {
      const info = await store.info(name);
      let records: JournalRecord[];
      if (fromTime !== undefined) {
        records = await store.readByTime(name, fromTime, { maxRecords: limit });
      } else {
        const start = Math.max(fromOffset ?? info.startOffset, info.startOffset);
        records = start >= info.nextOffset ? [] : await store.read(name, start, { maxRecords: limit });
      }
      if (toTime !== undefined) records = records.filter((record) => record.timestamp < toTime);
      return { shard: name, items: records.slice(0, limit).map(recordView) };
    } catch (error) {
      if (isShardlineError(error, 'SL_JOURNAL_SHARD_NOT_FOUND') || isShardlineError(error, 'SL_JOURNAL_INVALID_SHARD_NAME')) {
        throw AdminErrors.notFound.create({ shard: name }, `shard ${JSON.stringify(name)}`);
      }
      throw error;
    }
  });
}
