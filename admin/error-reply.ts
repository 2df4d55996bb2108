// Every failure answers {"error":{"code","message"}} with an SL_ADMIN_* code: the admin's own
// errors keep theirs, the lower layers' known codes and fastify's own failures (validation, bad
// JSON, unknown route) are mapped onto the same codes, so clients handle one shape.
import type { FastifyError, FastifyInstance } from 'fastify';
import { isShardlineError } from '../base/index.js';
import { AdminErrors } from './admin-errors.js';
import { STATUS_OF } from './route-kit.js';

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

/** Installs the error handler and the not-found handler that answer in the API's error shape. */
export function installErrorReplies(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const { status, code, message } = classify(error);
    if (status >= 500 && status !== 503) request.log.error({ err: error, method: request.method, url: request.url }, 'admin request failed');
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    void reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: AdminErrors.notFound.code, message: `route ${request.method} ${request.url.split('?')[0] ?? ''}` } });
  });
}
