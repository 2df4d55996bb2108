// Exchanges, queues and bindings: the broker's routing table, pure. Validation (the reply code
// each refusal names) is separate from change, so the broker can make a durable change durable
// in `$amqp.topology` between the two; the records of that shard are made and read here too.
import { Reader, Writer } from '../codec/bytes.js';
import { AmqpCodecError } from '../codec/errors.js';
import { readFieldTable, writeFieldTable, type FieldTable } from '../codec/field-table.js';
import { methodIds, type AmqpMethod } from '../codec/methods.js';
import { ReplyCodes, type ReplyCode } from '../codec/reply-codes.js';
import type { ClientIdentity } from '../../../engine/index.js';
import { headersMatch, headersMatchMode, topicMatches } from './matching.js';

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';
export const EXCHANGE_TYPES: readonly ExchangeType[] = ['direct', 'fanout', 'topic', 'headers'];

export interface ExchangeDef {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

export interface QueueDef {
  readonly name: string;
  readonly durable: boolean;
  /** The owning connection's id for an exclusive queue. */
  readonly owner: string | undefined;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
  /** The shard holding a durable queue's persistent messages (`amqp.q.<id>`). */
  readonly shard: string | undefined;
}

export interface Binding {
  readonly source: string;
  /** A queue, or an exchange (exchange.bind, RabbitMQ's exchange-to-exchange bindings). */
  readonly kind: 'queue' | 'exchange';
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
  /**
   * Who made a binding out of amq.topic: the access policy's reader of the MQTT topics it
   * brings (mqtt-bridge.ts). Not part of the binding's equality.
   */
  binder?: ClientIdentity;
}

/** The exchanges every virtual host has (RabbitMQ's), besides the default one. */
export const PREDECLARED: readonly ExchangeDef[] = [
  { name: '', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: new Map() },
  { name: 'amq.direct', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: new Map() },
  { name: 'amq.fanout', type: 'fanout', durable: true, autoDelete: false, internal: false, arguments: new Map() },
  { name: 'amq.topic', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: new Map() },
  { name: 'amq.headers', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: new Map() },
  { name: 'amq.match', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: new Map() },
];

/** A channel or connection exception naming the method it answers. */
export function amqpRefusal(code: ReplyCode, text: string, method: AmqpMethod['name']): AmqpCodecError {
  return new AmqpCodecError(code, text, methodIds(method));
}

const NAME_PREFIX_RESERVED = 'amq.';

export class Topology {
  readonly exchanges = new Map<string, ExchangeDef>();
  readonly queues = new Map<string, QueueDef>();
  /** Bindings by source exchange. */
  readonly #bySource = new Map<string, Binding[]>();
  /** Whether a matching binding may take a message with this routing key (the access policy on amq.topic); default: every one. */
  admit: (binding: Binding, routingKey: string) => boolean = () => true;

  constructor() {
    for (const exchange of PREDECLARED) this.exchanges.set(exchange.name, exchange);
  }

  bindingsFrom(exchange: string): readonly Binding[] {
    return this.#bySource.get(exchange) ?? [];
  }

  bindingsTo(kind: Binding['kind'], destination: string): Binding[] {
    const found: Binding[] = [];
    for (const list of this.#bySource.values()) for (const binding of list) if (binding.kind === kind && binding.destination === destination) found.push(binding);
    return found;
  }

  allBindings(): Binding[] {
    return [...this.#bySource.values()].flat();
  }

  /** How many bindings there are (queue and exchange ones). */
  get bindingCount(): number {
    let count = 0;
    for (const list of this.#bySource.values()) count += list.length;
    return count;
  }

  /** exchange.declare's checks: the existing exchange when equivalent, undefined to create. */
  checkExchangeDeclare(args: { exchange: string; type: string; passive: boolean; durable: boolean; autoDelete: boolean; internal: boolean }): ExchangeDef | undefined {
    const method = 'exchange.declare';
    const existing = this.exchanges.get(args.exchange);
    if (args.passive) {
      if (existing === undefined) throw amqpRefusal(ReplyCodes.notFound, `no exchange '${args.exchange}' in vhost '/'`, method);
      return existing;
    }
    if (args.exchange === '') throw amqpRefusal(ReplyCodes.accessRefused, `operation not permitted on the default exchange`, method);
    if (existing !== undefined) {
      for (const [field, received, current] of [
        ['type', args.type, existing.type],
        ['durable', args.durable, existing.durable],
        ['auto_delete', args.autoDelete, existing.autoDelete],
        ['internal', args.internal, existing.internal],
      ] as const) {
        if (received !== current) throw amqpRefusal(ReplyCodes.preconditionFailed, `inequivalent arg '${field}' for exchange '${args.exchange}' in vhost '/': received '${String(received)}' but current is '${String(current)}'`, method);
      }
      return existing;
    }
    if (args.exchange.startsWith(NAME_PREFIX_RESERVED)) throw amqpRefusal(ReplyCodes.accessRefused, `exchange name '${args.exchange}' contains reserved prefix 'amq.*'`, method);
    if (!(EXCHANGE_TYPES as readonly string[]).includes(args.type)) throw amqpRefusal(ReplyCodes.commandInvalid, `unknown exchange type '${args.type}'`, method);
    return undefined;
  }

  putExchange(exchange: ExchangeDef): void {
    this.exchanges.set(exchange.name, exchange);
  }

  checkExchangeDelete(name: string, ifUnused: boolean): ExchangeDef | undefined {
    const method = 'exchange.delete';
    if (name === '' || name.startsWith(NAME_PREFIX_RESERVED)) throw amqpRefusal(ReplyCodes.accessRefused, `operation not permitted on exchange '${name}'`, method);
    const existing = this.exchanges.get(name);
    // Deleting a missing exchange is a success (RabbitMQ 3.x on: delete is idempotent).
    if (existing === undefined) return undefined;
    if (ifUnused && this.bindingsFrom(name).length > 0) throw amqpRefusal(ReplyCodes.preconditionFailed, `exchange '${name}' in vhost '/' in use`, method);
    return existing;
  }

  /** Removes an exchange and its bindings, both ways; returns the bindings removed. */
  removeExchange(name: string): Binding[] {
    this.exchanges.delete(name);
    const removed = this.#bySource.get(name) ?? [];
    this.#bySource.delete(name);
    return [...removed, ...this.#removeBindingsTo('exchange', name)];
  }

  putQueue(queue: QueueDef): void {
    this.queues.set(queue.name, queue);
  }

  /** Removes a queue and its bindings; returns the bindings removed. */
  removeQueue(name: string): Binding[] {
    this.queues.delete(name);
    return this.#removeBindingsTo('queue', name);
  }

  #removeBindingsTo(kind: Binding['kind'], name: string): Binding[] {
    const removed: Binding[] = [];
    for (const [source, list] of this.#bySource) {
      const kept = list.filter((binding) => {
        if (binding.kind !== kind || binding.destination !== name) return true;
        removed.push(binding);
        return false;
      });
      if (kept.length === 0) this.#bySource.delete(source);
      else this.#bySource.set(source, kept);
    }
    return removed;
  }

  /** The checks of a binding's source exchange (a queue destination's are the broker's: exclusivity). */
  checkBind(source: string, routingKey: string, bindingArguments: FieldTable, method: 'queue.bind' | 'queue.unbind' | 'exchange.bind' | 'exchange.unbind'): ExchangeDef {
    if (source === '') throw amqpRefusal(ReplyCodes.accessRefused, `operation not permitted on the default exchange`, method);
    const exchange = this.exchanges.get(source);
    if (exchange === undefined) throw amqpRefusal(ReplyCodes.notFound, `no exchange '${source}' in vhost '/'`, method);
    if (exchange.type === 'headers' && headersMatchMode(bindingArguments) === undefined) {
      throw amqpRefusal(ReplyCodes.preconditionFailed, `invalid x-match field value for binding of '${routingKey}' to exchange '${source}'`, method);
    }
    return exchange;
  }

  findBinding(binding: Binding): Binding | undefined {
    const key = bindingKey(binding);
    return this.bindingsFrom(binding.source).find((existing) => bindingKey(existing) === key);
  }

  /** Adds a binding; false when an equal one exists (bind is idempotent). */
  addBinding(binding: Binding): boolean {
    if (this.findBinding(binding) !== undefined) return false;
    const list = this.#bySource.get(binding.source) ?? [];
    list.push(binding);
    this.#bySource.set(binding.source, list);
    return true;
  }

  removeBinding(binding: Binding): boolean {
    const key = bindingKey(binding);
    const list = this.#bySource.get(binding.source);
    if (list === undefined) return false;
    const at = list.findIndex((existing) => bindingKey(existing) === key);
    if (at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.#bySource.delete(binding.source);
    return true;
  }

  /**
   * The queues a message published to `exchange` reaches (the exchange must exist), through
   * exchange-to-exchange bindings too; an exchange already passed is not entered again, so a
   * cycle of bindings ends.
   */
  route(exchange: ExchangeDef, routingKey: string, headers: FieldTable | undefined, queues = new Set<string>(), passed = new Set<string>()): Set<string> {
    passed.add(exchange.name);
    if (exchange.name === '') {
      if (this.queues.has(routingKey)) queues.add(routingKey);
      return queues;
    }
    for (const binding of this.bindingsFrom(exchange.name)) {
      if (binding.kind === 'queue' ? queues.has(binding.destination) : passed.has(binding.destination)) continue;
      let matched: boolean;
      switch (exchange.type) {
        case 'direct':
          matched = binding.routingKey === routingKey;
          break;
        case 'fanout':
          matched = true;
          break;
        case 'topic':
          matched = topicMatches(binding.routingKey, routingKey);
          break;
        case 'headers':
          matched = headersMatch(binding.arguments, headers);
          break;
      }
      if (!matched || !this.admit(binding, routingKey)) continue;
      if (binding.kind === 'queue') queues.add(binding.destination);
      else {
        const next = this.exchanges.get(binding.destination);
        if (next !== undefined) this.route(next, routingKey, headers, queues, passed);
      }
    }
    return queues;
  }
}

/** Bindings are equal when source, queue, routing key and arguments are (the arguments by their bytes). */
export function bindingKey(binding: Binding): string {
  return `${binding.source}\0${binding.kind}\0${binding.destination}\0${binding.routingKey}\0${tableBytes(binding.arguments).toString('base64')}`;
}

function tableBytes(table: FieldTable): Buffer {
  const writer = new Writer(64);
  writeFieldTable(writer, table);
  return writer.finish();
}

function tableFrom(base64: string): FieldTable {
  return readFieldTable(new Reader(Buffer.from(base64, 'base64')));
}

// Records of `$amqp.topology`, a compacted shard: key `e:NAME`, `q:NAME` or `b:` + bindingKey;
// value JSON (field tables as base64 of their wire bytes); a tombstone removes the entry.

export type TopologyEntry = { kind: 'exchange'; exchange: ExchangeDef } | { kind: 'queue'; queue: QueueDef } | { kind: 'binding'; binding: Binding };

export function topologyRecordKey(entry: TopologyEntry): Buffer {
  switch (entry.kind) {
    case 'exchange':
      return Buffer.from(`e:${entry.exchange.name}`);
    case 'queue':
      return Buffer.from(`q:${entry.queue.name}`);
    case 'binding':
      return Buffer.from(`b:${bindingKey(entry.binding)}`);
  }
}

export function topologyRecordValue(entry: TopologyEntry): Buffer {
  switch (entry.kind) {
    case 'exchange': {
      const { name, type, durable, autoDelete, internal } = entry.exchange;
      return Buffer.from(JSON.stringify({ name, type, durable, autoDelete, internal, arguments: tableBytes(entry.exchange.arguments).toString('base64') }));
    }
    case 'queue': {
      const { name, autoDelete, shard } = entry.queue;
      return Buffer.from(JSON.stringify({ name, autoDelete, shard, arguments: tableBytes(entry.queue.arguments).toString('base64') }));
    }
    case 'binding': {
      const { source, kind, destination, routingKey, binder } = entry.binding;
      return Buffer.from(JSON.stringify({ source, kind, destination, routingKey, arguments: tableBytes(entry.binding.arguments).toString('base64'), binder }));
    }
  }
}

/** Applies one `$amqp.topology` record to a topology being rebuilt at start. */
export function applyTopologyRecord(topology: Topology, key: Buffer, value: Buffer | null): void {
  const text = key.toString('utf8');
  const kind = text.slice(0, 2);
  const rest = text.slice(2);
  if (value === null) {
    if (kind === 'e:') topology.exchanges.delete(rest);
    else if (kind === 'q:') topology.queues.delete(rest);
    else if (kind === 'b:') {
      const [source = '', kind = '', destination = '', routingKey = '', table = ''] = rest.split('\0');
      topology.removeBinding({ source, kind: kind === 'exchange' ? 'exchange' : 'queue', destination, routingKey, arguments: tableFrom(table) });
    }
    return;
  }
  const json = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
  const args = tableFrom(String(json.arguments ?? ''));
  if (kind === 'e:') {
    topology.putExchange({ name: String(json.name), type: json.type as ExchangeType, durable: true, autoDelete: json.autoDelete === true, internal: json.internal === true, arguments: args });
  } else if (kind === 'q:') {
    topology.putQueue({ name: String(json.name), durable: true, owner: undefined, autoDelete: json.autoDelete === true, arguments: args, shard: String(json.shard) });
  } else if (kind === 'b:') {
    const binding: Binding = { source: String(json.source), kind: json.kind === 'exchange' ? 'exchange' : 'queue', destination: String(json.destination), routingKey: String(json.routingKey), arguments: args };
    const binder = json.binder as ClientIdentity | undefined;
    if (typeof binder === 'object' && binder !== null && typeof binder.clientId === 'string') binding.binder = binder;
    // A binding stored again (a new binder) replaces the one read before it.
    topology.removeBinding(binding);
    topology.addBinding(binding);
  }
}
