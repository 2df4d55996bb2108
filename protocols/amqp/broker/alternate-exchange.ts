// The alternate-exchange exchange argument (RabbitMQ's): a message the exchange routes to no
// queue is routed by its alternate exchange instead, and on along that exchange's own alternate,
// until a queue takes it, an alternate is missing, or the chain comes back to an exchange it
// passed. Pure.
import type { FieldTable } from '../codec/field-table.js';
import { ReplyCodes } from '../codec/reply-codes.js';
import { fieldText } from './matching.js';
import { amqpRefusal, type ExchangeDef, type Topology } from './topology.js';

export const ALTERNATE_EXCHANGE = 'alternate-exchange';

/** exchange.declare's check of the argument: a string naming an exchange (it need not exist yet), else 406. */
export function checkExchangeArguments(exchange: string, args: FieldTable): void {
  const value = args.get(ALTERNATE_EXCHANGE);
  if (value !== undefined && fieldText(value) === undefined) {
    throw amqpRefusal(ReplyCodes.preconditionFailed, `invalid arg '${ALTERNATE_EXCHANGE}' for exchange '${exchange}' in vhost '/': not a string`, 'exchange.declare');
  }
}

function alternateOf(exchange: ExchangeDef): string | undefined {
  const value = exchange.arguments.get(ALTERNATE_EXCHANGE);
  return value === undefined ? undefined : fieldText(value);
}

/** The queues a message published to `exchange` reaches, through its alternate exchanges when it reaches none. */
export function routeWithAlternates(topology: Topology, exchange: ExchangeDef, routingKey: string, headers: FieldTable | undefined): Set<string> {
  let targets = topology.route(exchange, routingKey, headers);
  const passed = new Set([exchange.name]);
  let current = exchange;
  while (targets.size === 0) {
    const name = alternateOf(current);
    const next = name === undefined || passed.has(name) ? undefined : topology.exchanges.get(name);
    if (next === undefined) break;
    passed.add(next.name);
    current = next;
    targets = topology.route(next, routingKey, headers);
  }
  return targets;
}
