// `shardline ctl amqp exchanges|queues|queue|bindings|connections|close`: the AMQP front end of a
// node over the admin API (/api/amqp): its exchanges, queues with depth, consumers and rates,
// bindings, connections, and closing one (320 CONNECTION_FORCED).
import type { Command } from '../command.js';
import { ctlCommand } from '../ctl/ctl-command.js';
import { formatBytes, formatFields, formatTime } from '../ctl/format.js';
import { formatTable } from '../table.js';

interface QueueItem {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
  shard?: string;
  ready: number;
  readyBytes: number;
  unacked: number;
  consumers: number;
  published: number;
  delivered: number;
  acked: number;
  rates: { publishPerSecond: number; deliverPerSecond: number; ackPerSecond: number };
}

interface BindingItem {
  source: string;
  destinationKind: 'queue' | 'exchange';
  destination: string;
  routingKey: string;
  arguments: Record<string, unknown>;
}

interface ExchangeItem {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
  bindings: number;
}

interface ConnectionItem {
  id: string;
  remoteAddress: string;
  user?: string;
  channels: number;
  since: number;
  blocked: boolean;
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

/** Flags of a queue or exchange as one cell: D durable, E exclusive, AD auto-delete, I internal. */
function flags(item: { durable: boolean; exclusive?: boolean; autoDelete: boolean; internal?: boolean }): string {
  const parts = [item.durable ? 'D' : '', item.exclusive === true ? 'E' : '', item.autoDelete ? 'AD' : '', item.internal === true ? 'I' : ''].filter(Boolean);
  return parts.join(' ') || '-';
}

function args(table: Record<string, unknown>): string {
  return Object.keys(table).length === 0 ? '' : JSON.stringify(table);
}

const rate = (value: number): string => `${value}/s`;

const FLAG_HELP = 'Flags: D durable, E exclusive, AD auto-delete, I internal.';

const exchangesCommand = ctlCommand({
  words: ['amqp', 'exchanges'],
  summary: 'AMQP exchanges with type, flags, arguments and bindings',
  description: `
Lists the node's AMQP exchanges (--amqp-port), the default exchange ("") and amq.* included:
type, flags, arguments and how many bindings start at each. ${FLAG_HELP}
A node without the AMQP listener exits 1 with the API's answer (503).`,
  details: '--json prints GET /api/amqp/exchanges: {items: [{name, type, durable, autoDelete, internal, arguments, bindings}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: ExchangeItem[] }>('/api/amqp/exchanges');
    if (context.json) return json(answer);
    return formatTable(
      [{ title: 'exchange' }, { title: 'type' }, { title: 'flags' }, { title: 'bindings', align: 'right' }, { title: 'arguments' }],
      answer.items.map((exchange) => [exchange.name === '' ? '(default)' : exchange.name, exchange.type, flags(exchange), String(exchange.bindings), args(exchange.arguments)]),
    );
  },
});

const queuesCommand = ctlCommand({
  words: ['amqp', 'queues'],
  summary: 'AMQP queues with depth, consumers and rates',
  description: `
Lists the node's AMQP queues: flags, ready and unacknowledged messages, bytes ready,
consumers, and publish / deliver / ack rates over the last ~10 seconds. ${FLAG_HELP}`,
  details: '--json prints GET /api/amqp/queues: {items: [{name, durable, exclusive, autoDelete, arguments, shard?, ready, readyBytes, unacked, consumers, published, delivered, acked, rates: {publishPerSecond, deliverPerSecond, ackPerSecond}}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: QueueItem[] }>('/api/amqp/queues');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no AMQP queues';
    return formatTable(
      [{ title: 'queue' }, { title: 'flags' }, { title: 'ready', align: 'right' }, { title: 'unacked', align: 'right' }, { title: 'bytes', align: 'right' }, { title: 'consumers', align: 'right' }, { title: 'publish', align: 'right' }, { title: 'deliver', align: 'right' }, { title: 'ack', align: 'right' }],
      answer.items.map((queue) => [queue.name, flags(queue), String(queue.ready), String(queue.unacked), formatBytes(queue.readyBytes), String(queue.consumers), rate(queue.rates.publishPerSecond), rate(queue.rates.deliverPerSecond), rate(queue.rates.ackPerSecond)]),
    );
  },
});

const queueCommand = ctlCommand({
  words: ['amqp', 'queue'],
  summary: 'One AMQP queue: counts, totals, rates, arguments and its bindings',
  args: 'NAME',
  positionals: 1,
  description: 'Prints one AMQP queue: flags, arguments, its shard (durable queues), ready and unacknowledged messages, consumers, totals and rates since start, and the bindings to it. Unknown queue: exit 1 with the API message.',
  details: '--json prints GET /api/amqp/queues/NAME (the queue item plus bindings: [{source, destinationKind, destination, routingKey, arguments}]).',
  async run(context, _values, [name]) {
    const queue = await context.client.get<QueueItem & { bindings: BindingItem[] }>(`/api/amqp/queues/${encodeURIComponent(name!)}`);
    if (context.json) return json(queue);
    const fields = formatFields([
      ['queue', queue.name],
      ['flags', flags(queue)],
      ['arguments', args(queue.arguments) || '-'],
      ['shard', queue.shard ?? '- (messages in memory only)'],
      ['ready', `${queue.ready} (${formatBytes(queue.readyBytes)})`],
      ['unacked', String(queue.unacked)],
      ['consumers', String(queue.consumers)],
      ['totals', `${queue.published} published, ${queue.delivered} delivered, ${queue.acked} acked`],
      ['rates', `publish ${rate(queue.rates.publishPerSecond)}, deliver ${rate(queue.rates.deliverPerSecond)}, ack ${rate(queue.rates.ackPerSecond)}`],
    ]);
    const bindings = queue.bindings.length === 0 ? 'no bindings (the default exchange routes to it by name)' : formatTable([{ title: 'exchange' }, { title: 'routing key' }, { title: 'arguments' }], queue.bindings.map((binding) => [binding.source, binding.routingKey, args(binding.arguments)]));
    return `${fields}\n\n${bindings}`;
  },
});

const bindingsCommand = ctlCommand({
  words: ['amqp', 'bindings'],
  summary: 'AMQP bindings: source exchange, destination, routing key, arguments',
  description: 'Lists the node\'s AMQP bindings, queue and exchange-to-exchange ones (the default exchange\'s implicit bindings are not listed).',
  details: '--json prints GET /api/amqp/bindings: {items: [{source, destinationKind, destination, routingKey, arguments}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: BindingItem[] }>('/api/amqp/bindings');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no AMQP bindings';
    return formatTable(
      [{ title: 'source' }, { title: 'kind' }, { title: 'destination' }, { title: 'routing key' }, { title: 'arguments' }],
      answer.items.map((binding) => [binding.source, binding.destinationKind, binding.destination, binding.routingKey, args(binding.arguments)]),
    );
  },
});

const connectionsCommand = ctlCommand({
  words: ['amqp', 'connections'],
  summary: 'Open AMQP connections: id, address, user, channels, since',
  description: 'Lists the open AMQP connections, oldest first: the id `ctl amqp close` takes, the client address, the user, open channels, when it connected, and whether it is blocked (not read while the node is under a resource alarm).',
  details: '--json prints GET /api/amqp/connections: {items: [{id, remoteAddress, user?, channels, since, blocked}]}.',
  async run(context) {
    const answer = await context.client.get<{ items: ConnectionItem[] }>('/api/amqp/connections');
    if (context.json) return json(answer);
    if (answer.items.length === 0) return 'no AMQP connections';
    return formatTable(
      [{ title: 'id' }, { title: 'address' }, { title: 'user' }, { title: 'channels', align: 'right' }, { title: 'since' }, { title: 'blocked' }],
      answer.items.map((connection) => [connection.id, connection.remoteAddress, connection.user ?? '-', String(connection.channels), formatTime(connection.since), connection.blocked ? 'yes' : 'no']),
    );
  },
});

const closeCommand = ctlCommand({
  words: ['amqp', 'close'],
  summary: 'Close an AMQP connection (320 CONNECTION_FORCED)',
  args: 'ID',
  positionals: 1,
  description: 'Closes one AMQP connection by its id (from `ctl amqp connections`): the client gets connection.close 320 CONNECTION_FORCED; its unacknowledged messages are requeued and its exclusive queues deleted. Unknown id: exit 1 with the API message.',
  details: '--json prints {"closed": ID} (the API answers 204 with no body).',
  async run(context, _values, [id]) {
    await context.client.delete(`/api/amqp/connections/${encodeURIComponent(id!)}`);
    return context.json ? json({ closed: id }) : `closed ${id}`;
  },
});

export const amqpCtlCommands: Command[] = [exchangesCommand, queuesCommand, queueCommand, bindingsCommand, connectionsCommand, closeCommand];
