// The AMQP front end's admin routes (/api/amqp/*): a summary, exchanges, queues (depth,
// consumers, totals and rates), bindings, connections and closing one. A route plugin
// (route-kit.ts) registered on every node; without the AMQP listener (--amqp-port unset, or no
// broker role) every route answers 503, as /api/kafka does.
import type { FastifyInstance } from 'fastify';
import { bindingViews, exchangeViews, queueView, queueViews, type AmqpServer, type QueueView } from '../protocols/amqp/index.js';
import { AdminErrors } from './admin-errors.js';
import { errors, noContent, secured, type AdminRoutePlugin } from './route-kit.js';

const RATE_WINDOW_MS = 10_000;
const RATE_SAMPLE_MS = 1_000;

type AmqpSource = Pick<AmqpServer, 'broker' | 'connections' | 'closeConnection' | 'blockedReason' | 'openChannels'>;

const table = { type: 'object', additionalProperties: true, description: 'an AMQP field table as JSON (long strings as text, byte strings as base64)' } as const;

const rates = {
  type: 'object',
  required: ['publishPerSecond', 'deliverPerSecond', 'ackPerSecond'],
  description: 'over the last ~10 s',
  properties: { publishPerSecond: { type: 'number' }, deliverPerSecond: { type: 'number' }, ackPerSecond: { type: 'number' } },
} as const;

const queueItem = {
  type: 'object',
  required: ['name', 'durable', 'exclusive', 'autoDelete', 'arguments', 'ready', 'readyBytes', 'unacked', 'consumers', 'published', 'delivered', 'acked', 'rates'],
  properties: {
    name: { type: 'string' },
    durable: { type: 'boolean' },
    exclusive: { type: 'boolean' },
    autoDelete: { type: 'boolean' },
    arguments: table,
    shard: { type: 'string', description: 'the shard holding its persistent messages (durable, non-exclusive queues only)' },
    ready: { type: 'integer', description: 'messages ready for delivery' },
    readyBytes: { type: 'integer', description: 'body bytes of the ready messages' },
    unacked: { type: 'integer', description: 'deliveries waiting for an acknowledgement' },
    consumers: { type: 'integer' },
    published: { type: 'integer', description: 'messages that entered the queue since start (dead-lettered ones included)' },
    delivered: { type: 'integer', description: 'messages handed to consumers or basic.get since start' },
    acked: { type: 'integer', description: 'deliveries acknowledged since start' },
    rates,
  },
} as const;

const exchangeItem = {
  type: 'object',
  required: ['name', 'type', 'durable', 'autoDelete', 'internal', 'arguments', 'bindings'],
  properties: {
    name: { type: 'string', description: "'' is the default exchange" },
    type: { type: 'string', enum: ['direct', 'fanout', 'topic', 'headers'] },
    durable: { type: 'boolean' },
    autoDelete: { type: 'boolean' },
    internal: { type: 'boolean' },
    arguments: table,
    bindings: { type: 'integer', description: 'bindings whose source it is' },
  },
} as const;

const bindingItem = {
  type: 'object',
  required: ['source', 'destinationKind', 'destination', 'routingKey', 'arguments'],
  properties: { source: { type: 'string' }, destinationKind: { type: 'string', enum: ['queue', 'exchange'] }, destination: { type: 'string' }, routingKey: { type: 'string' }, arguments: table },
} as const;

const connectionItem = {
  type: 'object',
  required: ['id', 'remoteAddress', 'channels', 'since', 'blocked'],
  properties: {
    id: { type: 'string', description: 'the id DELETE /api/amqp/connections/ID takes' },
    remoteAddress: { type: 'string' },
    user: { type: 'string', description: 'absent until authenticated' },
    channels: { type: 'integer' },
    since: { type: 'integer', description: 'epoch ms the socket was accepted' },
    blocked: { type: 'boolean', description: 'not being read now: the node is under a resource alarm and this connection publishes' },
  },
} as const;

const summary = {
  type: 'object',
  required: ['connections', 'channels', 'exchanges', 'queues', 'bindings', 'ready', 'unacked', 'heldBytes', 'blockedReason', 'totals'],
  properties: {
    connections: { type: 'integer' },
    channels: { type: 'integer' },
    exchanges: { type: 'integer' },
    queues: { type: 'integer' },
    bindings: { type: 'integer' },
    ready: { type: 'integer' },
    unacked: { type: 'integer' },
    heldBytes: { type: 'integer', description: 'message bytes the queues hold in memory (ready and unacknowledged): what amqp-memory-limit-bytes bounds' },
    blockedReason: { type: ['string', 'null'], description: 'why publishing connections are blocked now (connection.blocked), null when they are not' },
    totals: {
      type: 'object',
      required: ['publishes', 'deliveries', 'acks', 'confirmsAcked', 'confirmsNacked'],
      properties: { publishes: { type: 'integer' }, deliveries: { type: 'integer' }, acks: { type: 'integer' }, confirmsAcked: { type: 'integer' }, confirmsNacked: { type: 'integer' } },
    },
  },
} as const;

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', description: 'URL-encoded queue name' } } } as const;
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

interface Sample {
  at: number;
  published: number;
  delivered: number;
  acked: number;
}

/** Each queue's counters sampled every second, so a rate covers the last ~10 s at no per-message cost. */
export class QueueRates {
  readonly #samples = new Map<string, Sample[]>();
  #lastAt: number | undefined;

  sample(queues: readonly QueueView[], now: number): void {
    const seen = new Set<string>();
    for (const queue of queues) {
      seen.add(queue.name);
      // A queue not there at the last sample was created since, with its counters at zero.
      const list = this.#samples.get(queue.name) ?? [{ at: this.#lastAt ?? now, published: 0, delivered: 0, acked: 0 }];
      list.push({ at: now, published: queue.published, delivered: queue.delivered, acked: queue.acked });
      while (list.length > 1 && (list[0] as Sample).at < now - RATE_WINDOW_MS) list.shift();
      this.#samples.set(queue.name, list);
    }
    for (const name of this.#samples.keys()) if (!seen.has(name)) this.#samples.delete(name);
    this.#lastAt = now;
  }

  rates(queue: QueueView, now: number): { publishPerSecond: number; deliverPerSecond: number; ackPerSecond: number } {
    const oldest = this.#samples.get(queue.name)?.[0];
    if (oldest === undefined) return { publishPerSecond: 0, deliverPerSecond: 0, ackPerSecond: 0 };
    // Under a second of history counts as one second, so a burst right after a declare reads as its count.
    const seconds = Math.max(1, (now - oldest.at) / 1000);
    const round = (value: number): number => Math.round((Math.max(0, value) / seconds) * 100) / 100;
    return { publishPerSecond: round(queue.published - oldest.published), deliverPerSecond: round(queue.delivered - oldest.delivered), ackPerSecond: round(queue.acked - oldest.acked) };
  }
}

/** The /api/amqp routes over the AMQP listener (undefined on a node without one: 503). */
export function amqpAdminRoutes(amqp: AmqpSource | undefined): AdminRoutePlugin {
  const running = (): { server: AmqpSource; broker: NonNullable<AmqpSource['broker']> } => {
    if (amqp === undefined || amqp.broker === undefined) throw AdminErrors.notAvailable.create({}, 'the AMQP listener (--amqp-port)');
    return { server: amqp, broker: amqp.broker };
  };
  const sampler = new QueueRates();
  return (app: FastifyInstance) => {
    if (amqp?.broker !== undefined) {
      const broker = amqp.broker;
      sampler.sample(queueViews(broker), Date.now());
      const timer = setInterval(() => sampler.sample(queueViews(broker), Date.now()), RATE_SAMPLE_MS);
      timer.unref();
      app.addHook('onClose', async () => clearInterval(timer));
    }
    const withRates = (queue: QueueView): QueueView & { rates: ReturnType<QueueRates['rates']> } => ({ ...queue, rates: sampler.rates(queue, Date.now()) });

    app.get('/api/amqp/overview', {
      schema: { tags: ['amqp'], summary: 'AMQP counts, node totals since start and the resource alarm', ...secured, response: { 200: summary, ...errors(401, 503) } },
    }, async () => {
      const { server, broker } = running();
      const queues = broker.queues();
      return {
        connections: server.connections().length,
        channels: server.openChannels,
        exchanges: broker.topology.exchanges.size,
        queues: queues.length,
        bindings: broker.topology.bindingCount,
        ready: queues.reduce((total, runtime) => total + runtime.queue.messageCount, 0),
        unacked: queues.reduce((total, runtime) => total + runtime.counters.unacked, 0),
        heldBytes: broker.heldBytes(),
        blockedReason: server.blockedReason ?? null,
        totals: { ...broker.stats },
      };
    });
    app.get('/api/amqp/exchanges', {
      schema: { tags: ['amqp'], summary: 'Exchanges, sorted by name (the default one, "", first)', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: exchangeItem } } }, ...errors(401, 503) } },
    }, async () => ({ items: exchangeViews(running().broker) }));
    app.get('/api/amqp/queues', {
      schema: { tags: ['amqp'], summary: 'Queues with depth, consumers, totals and rates, sorted by name', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: queueItem } } }, ...errors(401, 503) } },
    }, async () => ({ items: queueViews(running().broker).map(withRates) }));
    app.get<{ Params: { name: string } }>('/api/amqp/queues/:name', {
      schema: {
        tags: ['amqp'],
        summary: 'One queue and the bindings to it',
        ...secured,
        params: nameParams,
        response: { 200: { ...queueItem, required: [...queueItem.required, 'bindings'], properties: { ...queueItem.properties, bindings: { type: 'array', items: bindingItem } } }, ...errors(401, 404, 503) },
      },
    }, async (request) => {
      const { broker } = running();
      const runtime = broker.queue(request.params.name);
      if (runtime === undefined) throw AdminErrors.notFound.create({ queue: request.params.name }, `AMQP queue ${JSON.stringify(request.params.name)}`);
      const bindings = bindingViews(broker).filter((binding) => binding.destinationKind === 'queue' && binding.destination === runtime.name);
      return { ...withRates(queueView(runtime)), bindings };
    });
    app.get('/api/amqp/bindings', {
      schema: { tags: ['amqp'], summary: 'Bindings (queue and exchange-to-exchange), by source exchange', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: bindingItem } } }, ...errors(401, 503) } },
    }, async () => ({ items: bindingViews(running().broker) }));
    app.get('/api/amqp/connections', {
      schema: { tags: ['amqp'], summary: 'Open AMQP connections, oldest first', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: connectionItem } } }, ...errors(401, 503) } },
    }, async () => ({ items: running().server.connections().sort((a, b) => a.since - b.since) }));
    app.delete<{ Params: { id: string } }>('/api/amqp/connections/:id', {
      schema: { tags: ['amqp'], summary: 'Close a connection: connection.close 320 CONNECTION_FORCED; its channels\' unacknowledged messages are requeued, its exclusive queues deleted', ...secured, params: idParams, response: { 204: noContent, ...errors(401, 404, 503) } },
    }, async (request, reply) => {
      const { id } = request.params;
      if (!running().server.closeConnection(id, 'closed by an operator (admin API)')) throw AdminErrors.notFound.create({ connection: id }, `AMQP connection ${JSON.stringify(id)}`);
      return reply.code(204).send();
    });
  };
}
