// What every route plugin of the admin API shares: the error body and the status each SL_ADMIN_*
// code answers with, the bearer-security marker, paging, and the plugin type itself. A protocol's
// routes (mqtt-routes.ts) are a plugin: the node runtime hands createAdminApp one per front end.
import type { FastifyInstance } from 'fastify';
import { AdminErrors } from './admin-errors.js';

/**
 * Registers a group of routes on the admin app. Registered after the core routes, so the auth
 * hook and the error handling already apply; every route it adds must carry a schema.
 */
export type AdminRoutePlugin = (app: FastifyInstance) => void;

export const PAGE_LIMIT_MAX = 1000;

export const STATUS_OF: Record<string, number> = {
  [AdminErrors.badRequest.code]: 400,
  [AdminErrors.unauthorized.code]: 401,
  [AdminErrors.notFound.code]: 404,
  [AdminErrors.notLive.code]: 409,
  [AdminErrors.notLeader.code]: 409,
  [AdminErrors.changeInProgress.code]: 409,
  // The placement service's refusal of a second membership change: the caller retries later.
  SL_PLACEMENT_CHANGE_IN_PROGRESS: 409,
  SL_PLACEMENT_QUORUM_AT_RISK: 409,
  [AdminErrors.internal.code]: 500,
  [AdminErrors.notAvailable.code]: 503,
  [AdminErrors.clusterUnavailable.code]: 503,
};

export const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

/** Response schemas for the given error statuses, each described by the code it carries. */
export function errors(...statuses: number[]): Record<number, typeof errorBody & { description: string }> {
  const out: Record<number, typeof errorBody & { description: string }> = {};
  for (const status of statuses) {
    const code = Object.keys(STATUS_OF).find((candidate) => STATUS_OF[candidate] === status) ?? AdminErrors.badRequest.code;
    out[status] = { ...errorBody, description: code };
  }
  return out;
}

export const secured = { security: [{ bearer: [] }] };
export const noContent = { type: 'null', description: 'done' } as const;

export const pageQuery = {
  type: 'object',
  properties: {
    offset: { type: 'integer', minimum: 0, default: 0, description: 'items to skip' },
    limit: { type: 'integer', minimum: 1, maximum: PAGE_LIMIT_MAX, default: 100, description: 'items to return, 1..1000' },
    prefix: { type: 'string', default: '', description: 'only items whose key (client id, topic) starts with this' },
  },
} as const;

export function pageOf(item: object): object {
  return {
    type: 'object',
    required: ['total', 'offset', 'limit', 'items'],
    properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: item } },
  };
}

export interface PageQuery {
  offset: number;
  limit: number;
  prefix: string;
}

/** One page of `all`, filtered by the query's prefix on `key`. */
export function page<T>(all: readonly T[], query: PageQuery, key: (item: T) => string): { total: number; offset: number; limit: number; items: T[] } {
  const matching = query.prefix === '' ? all : all.filter((item) => key(item).startsWith(query.prefix));
  return { total: matching.length, offset: query.offset, limit: query.limit, items: matching.slice(query.offset, query.offset + query.limit) };
}
