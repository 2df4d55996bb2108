// /api/* and /metrics need `Authorization: Bearer <token>`. The compare is constant-time over
// SHA-256 digests, so neither the token nor its length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AdminErrors } from './admin-errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Requires the token on every guarded path, answering 401 SL_ADMIN_UNAUTHORIZED otherwise. */
export function requireBearerToken(app: FastifyInstance, token: string): void {
  const expected = digest(token);
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
}
