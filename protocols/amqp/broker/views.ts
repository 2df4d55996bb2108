// Plain-object views of the broker's exchanges, queues and bindings for the admin API and the
// dashboard: field tables as JSON values, counts read from the queues' runtime state.
import type { FieldTable, FieldValue } from '../codec/field-table.js';
import type { AmqpBroker, QueueRuntime } from './broker.js';
import type { Binding, ExchangeDef } from './topology.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A field value as JSON: long strings as UTF-8 text, 64-bit integers as numbers (as strings past 2^53), byte strings as base64. */
export function fieldValueJson(field: FieldValue): JsonValue {
  switch (field.type) {
    case 'longstr':
      return Buffer.from(field.value).toString('utf8');
    case 'bytes':
      return Buffer.from(field.value).toString('base64');
    case 'int64':
    case 'timestamp':
      return field.value >= BigInt(Number.MIN_SAFE_INTEGER) && field.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(field.value) : field.value.toString();
    case 'decimal':
      return field.value / 10 ** field.scale;
    case 'array':
      return field.value.map(fieldValueJson);
    case 'table':
      return fieldTableJson(field.value);
    case 'void':
      return null;
    default:
      return field.value;
  }
}

export function fieldTableJson(table: FieldTable): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [key, value] of table) Object.defineProperty(out, key, { value: fieldValueJson(value), enumerable: true, writable: true, configurable: true });
  return out;
}

export interface ExchangeView {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: { [key: string]: JsonValue };
  /** Bindings whose source is this exchange. */
  bindings: number;
}

export interface QueueView {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: { [key: string]: JsonValue };
  /** The shard holding its persistent messages (durable, non-exclusive queues). */
  shard: string | undefined;
  ready: number;
  readyBytes: number;
  unacked: number;
  consumers: number;
  published: number;
  delivered: number;
  acked: number;
}

export interface BindingView {
  source: string;
  destinationKind: 'queue' | 'exchange';
  destination: string;
  routingKey: string;
  arguments: { [key: string]: JsonValue };
}

export function exchangeView(broker: AmqpBroker, exchange: ExchangeDef): ExchangeView {
  return { name: exchange.name, type: exchange.type, durable: exchange.durable, autoDelete: exchange.autoDelete, internal: exchange.internal, arguments: fieldTableJson(exchange.arguments), bindings: broker.topology.bindingsFrom(exchange.name).length };
}

export function queueView(runtime: QueueRuntime): QueueView {
  const { def, queue, counters } = runtime;
  return {
    name: def.name,
    durable: def.durable,
    exclusive: def.owner !== undefined,
    autoDelete: def.autoDelete,
    arguments: fieldTableJson(def.arguments),
    shard: def.shard,
    ready: queue.messageCount,
    readyBytes: queue.readyBytes,
    unacked: counters.unacked,
    consumers: queue.consumerCount,
    published: counters.published,
    delivered: counters.delivered,
    acked: counters.acked,
  };
}

export function bindingView(binding: Binding): BindingView {
  return { source: binding.source, destinationKind: binding.kind, destination: binding.destination, routingKey: binding.routingKey, arguments: fieldTableJson(binding.arguments) };
}

/** Exchanges sorted by name (the default exchange, named "", first). */
export function exchangeViews(broker: AmqpBroker): ExchangeView[] {
  return [...broker.topology.exchanges.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((exchange) => exchangeView(broker, exchange));
}

/** Queues sorted by name. */
export function queueViews(broker: AmqpBroker): QueueView[] {
  return broker.queues().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(queueView);
}

export function bindingViews(broker: AmqpBroker): BindingView[] {
  return broker.topology.allBindings().map(bindingView);
}
