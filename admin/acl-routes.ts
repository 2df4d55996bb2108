// Admin API routes for the run-time ACL rules (the `$acl` shard): list, add, delete. A change
// is in effect on every broker over the journal when the call returns (AclStore resolves once
// the record has come back through the shard's tail).
import type { FastifyInstance } from 'fastify';
import { AdminErrors } from './admin-errors.js';
import { AclErrors, type AclStore } from '../engine/index.js';

export interface AclRouteHelpers {
  /** The route's security requirement (bearer token). */
  secured: object;
  /** Error response schemas by status. */
  errors: (...statuses: number[]) => object;
  noContent: object;
}

const stringOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } as const;

const ruleProperties = {
  permission: { type: 'string', enum: ['allow', 'deny'] },
  action: { type: 'string', enum: ['publish', 'subscribe', 'all'] },
  topic: { type: 'string', description: 'topic filter; ${clientid} and ${username} are replaced by the client\'s values' },
  username: stringOrList,
  clientid: stringOrList,
  ipaddr: { ...stringOrList, description: 'addresses or CIDR blocks (IPv4 or IPv6)' },
} as const;

const ruleSchema = { type: 'object', required: ['permission', 'action', 'topic'], properties: ruleProperties } as const;

const storedRule = {
  type: 'object',
  required: ['id', 'position', 'rule'],
  properties: { id: { type: 'string' }, position: { type: 'number', description: 'rules apply in ascending position (ties: by id)' }, rule: ruleSchema },
} as const;

interface AddBody {
  id?: string;
  position?: number;
  permission: string;
  action: string;
  topic: string;
  username?: string | string[];
  clientid?: string | string[];
  ipaddr?: string | string[];
}

export function registerAclRoutes(app: FastifyInstance, acl: AclStore | undefined, helpers: AclRouteHelpers): void {
  const { secured, errors, noContent } = helpers;
  const needAcl = (): AclStore => {
    if (acl === undefined) throw AdminErrors.notAvailable.create({}, 'this node runs no broker, so it keeps no ACL');
    return acl;
  };

  app.get('/api/acl', {
    schema: { tags: ['acl'], summary: 'Run-time ACL rules (the $acl shard), in the order they apply; they come before the config file\'s rules', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: storedRule } } }, ...errors(401, 503) } },
  }, async () => ({ items: needAcl().list() }));

  app.post<{ Body: AddBody }>('/api/acl', {
    schema: {
      tags: ['acl'],
      summary: 'Add a run-time ACL rule (or replace the one with this id); in effect when the call returns',
      ...secured,
      body: { type: 'object', required: ['permission', 'action', 'topic'], additionalProperties: false, properties: { id: { type: 'string', minLength: 1, maxLength: 200 }, position: { type: 'number' }, ...ruleProperties } },
      response: { 201: storedRule, ...errors(400, 401, 503) },
    },
  }, async (request, reply) => {
    const { id, position, ...rule } = request.body;
    try {
      const stored = await needAcl().add(rule, { ...(id === undefined ? {} : { id }), ...(position === undefined ? {} : { position }) });
      return await reply.code(201).send(stored);
    } catch (error) {
      if ((error as { code?: string }).code === AclErrors.invalidRule.code) throw AdminErrors.badRequest.create({}, (error as Error).message);
      throw error;
    }
  });

  app.delete<{ Params: { id: string } }>('/api/acl/:id', {
    schema: { tags: ['acl'], summary: 'Delete a run-time ACL rule; in effect when the call returns', ...secured, params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1 } } }, response: { 204: noContent, ...errors(401, 404, 503) } },
  }, async (request, reply) => {
    if (!(await needAcl().remove(request.params.id))) throw AdminErrors.notFound.create({}, `ACL rule ${JSON.stringify(request.params.id)}`);
    return reply.code(204).send();
  });
}
