// The MQTT front end's admin routes (/api/mqtt/*): connected clients (and kicking one), sessions,
// subscriptions, per-topic counts, retained messages, and publishing a test message. A route
// plugin (route-kit.ts) the node runtime registers where MQTT runs; on a node without the broker
// every route answers 503.
//
// It lives here, in admin/, rather than in protocols/mqtt: it is a fastify plugin built on the
// admin layer's error codes, schemas and paging, and protocols/ sits below admin/ (a protocol
// importing admin/ would point up). What it reads is the engine's Broker, which admin/ may use.
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { checkTopicFilter, checkTopicName, type Broker, type Message } from '../engine/index.js';
import { mqttSubscriptionOptions } from '../protocols/mqtt/index.js';
import { AdminErrors } from './admin-errors.js';
import { errors, noContent, page, pageOf, pageQuery, secured, type AdminRoutePlugin, type PageQuery } from './route-kit.js';

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

const clientIdParams = { type: 'object', required: ['clientId'], properties: { clientId: { type: 'string', description: 'URL-encoded client id' } } } as const;
const topicParams = { type: 'object', required: ['topic'], properties: { topic: { type: 'string', description: 'URL-encoded topic name (a/b is a%2Fb)' } } } as const;

interface PublishBody {
  topic: string;
  payload?: string;
  payloadBase64?: string;
  qos: 0 | 1 | 2;
  retain: boolean;
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

/** The /api/mqtt routes over `broker` (undefined on a node without one: 503). */
export function mqttAdminRoutes(broker: Broker | undefined): AdminRoutePlugin {
  return (app: FastifyInstance) => {
  const needBroker = (): Broker => {
    if (broker === undefined) throw AdminErrors.notAvailable.create({}, 'the MQTT broker');
    if (broker.closed) throw AdminErrors.notAvailable.create({}, 'the MQTT broker (closed)');
    return broker;
  };

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
    const filters = mqtt.subscriptions().filter((entry) => entry.clientId === clientId).map(({ filter, options }) => ({ filter, options: mqttSubscriptionOptions(options) }));
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
  }, async (request) => page(needBroker().subscriptions().map((entry) => ({ ...entry, options: mqttSubscriptionOptions(entry.options) })), request.query, (entry) => entry.clientId));

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
  };
}
