// Admin API routes for MQTT users (/api/users): list, add or replace, remove. They change the
// broker's UserStore, which writes `$users`; the next CONNECT sees the change. Removing a user
// also disconnects its open connections, so a revoked user is out at once, not at its next
// reconnect.
import type { FastifyInstance } from 'fastify';
import { isShardlineError } from '../base/index.js';
import { AdminErrors } from './admin-errors.js';
import type { Broker, UserStore } from '../engine/index.js';

const secured = { security: [{ bearer: [] }] };
const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;
const userItem = {
  type: 'object',
  required: ['username', 'source', 'scram'],
  properties: {
    username: { type: 'string' },
    source: { type: 'string', enum: ['config', 'runtime'], description: 'config: from the config file (read-only here); runtime: from $users' },
    scram: { type: 'boolean', description: 'whether the user can use SCRAM-SHA-256 (a clear password was given)' },
  },
} as const;

interface UserBody {
  username: string;
  password?: string;
  passwordHash?: string;
  scram?: string;
}

/** The SL_AUTH_* refusals of the store are the caller's mistakes: 400 with the message. */
function asBadRequest(error: unknown): unknown {
  if (isShardlineError(error) && error.code.startsWith('SL_AUTH_')) return AdminErrors.badRequest.create({ cause: error.code }, error.message);
  return error;
}

export function registerUserRoutes(app: FastifyInstance, users: UserStore | undefined, broker: Broker | undefined): void {
  const needUsers = (): UserStore => {
    if (users === undefined) throw AdminErrors.notAvailable.create({}, 'the MQTT users (this node runs no broker)');
    return users;
  };

  app.get('/api/users', {
    schema: {
      tags: ['users'],
      summary: 'MQTT users (config file and run-time), sorted by name; hashes are not shown',
      ...secured,
      response: { 200: { type: 'object', required: ['total', 'items'], properties: { total: { type: 'integer' }, items: { type: 'array', items: userItem } } }, 401: errorBody, 503: errorBody },
    },
  }, async () => {
    const items = needUsers().list();
    return { total: items.length, items };
  });

  app.post<{ Body: UserBody }>('/api/users', {
    schema: {
      tags: ['users'],
      summary: 'Add a user, or replace the password of a run-time user; applies to the next CONNECT',
      ...secured,
      body: {
        type: 'object',
        required: ['username'],
        additionalProperties: false,
        properties: {
          username: { type: 'string', minLength: 1, maxLength: 128 },
          password: { type: 'string', minLength: 1, description: 'clear password; stored as a scrypt hash and SCRAM-SHA-256 credentials' },
          passwordHash: { type: 'string', description: 'a $scrypt$… hash instead of password' },
          scram: { type: 'string', description: 'with passwordHash: $scram-sha-256$… credentials' },
        },
      },
      response: { 201: userItem, 400: errorBody, 401: errorBody, 503: errorBody },
    },
  }, async (request, reply) => {
    const { username, password, passwordHash, scram } = request.body;
    const added = await needUsers()
      .add({ username, ...(password === undefined ? {} : { password }), ...(passwordHash === undefined ? {} : { passwordHash }), ...(scram === undefined ? {} : { scram }) })
      .catch((error: unknown) => Promise.reject(asBadRequest(error)));
    request.log.info({ username }, 'MQTT user added through the admin API');
    return reply.code(201).send(added);
  });

  app.delete<{ Params: { username: string } }>('/api/users/:username', {
    schema: {
      tags: ['users'],
      summary: "Remove a run-time user and disconnect the user's open connections",
      ...secured,
      params: { type: 'object', required: ['username'], properties: { username: { type: 'string' } } },
      response: { 204: { type: 'null', description: 'removed' }, 400: errorBody, 401: errorBody, 404: errorBody, 503: errorBody },
    },
  }, async (request, reply) => {
    const { username } = request.params;
    const removed = await needUsers()
      .remove(username)
      .catch((error: unknown) => Promise.reject(asBadRequest(error)));
    if (!removed) throw AdminErrors.notFound.create({ username }, `user ${JSON.stringify(username)}`);
    let disconnected = 0;
    if (broker !== undefined && !broker.closed) {
      for (const client of broker.clients()) {
        if (broker.identityOf(client.clientId)?.username === username && broker.kick(client.clientId)) disconnected += 1;
      }
    }
    request.log.info({ username, disconnected }, 'MQTT user removed through the admin API');
    return reply.code(204).send();
  });
}
