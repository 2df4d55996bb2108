// One connection's view of the broker: its channels (delivery tags, unacknowledged messages,
// prefetch, consumers, publisher confirms) and the exchange, queue and basic methods. The
// connection state machine (connection-state.ts) hands it each assembled command of an open
// channel and sends what it answers; refusals are thrown as AmqpCodecError with the reply code
// (a channel exception closes the channel, a connection exception the connection).
import { randomBytes } from 'node:crypto';
import type { ClientIdentity } from '../../../engine/index.js';
import type { BasicProperties, Command } from '../codec/content.js';
import { AmqpCodecError } from '../codec/errors.js';
import { amqpMethod, type AmqpMethod, type ArgsOf } from '../codec/methods.js';
import type { MethodName } from '../codec/spec.js';
import { ReplyCodes, replyCodeInfo } from '../codec/reply-codes.js';
import type { AmqpBroker, BrokerConsumer, QueueRuntime } from './broker.js';
import { checkExchangeArguments } from './alternate-exchange.js';
import { ANONYMOUS_AMQP } from './mqtt-bridge.js';
import { MQTT_EXCHANGE } from './mqtt-mapping.js';
import { bindingLimitRefusal, consumerLimitRefusal, exchangeLimitRefusal, queueLimitRefusal } from './limits.js';
import { messageExpiration, queuePolicy } from './queue-arguments.js';
import { PublishRejected } from './queue-limits.js';
import type { QueuedMessage } from './queue.js';
import { checkStreamConsume, checkStreamDeclare, isStreamDeclare, streamPolicy } from './stream-arguments.js';
import { StreamQueue } from './stream-queue.js';
import { amqpRefusal, type Binding, type ExchangeDef, type TopologyEntry } from './topology.js';

/** What a session needs from its connection. */
export interface SessionHost {
  /** A unique id of the connection (the owner of its exclusive queues). */
  readonly connectionId: string;
  sendMethod(channel: number, method: AmqpMethod): void;
  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Buffer): void;
  /** A channel exception raised later than the command (an append that failed): channel.close. */
  closeChannel(channel: number, error: AmqpCodecError): void;
  /** Whether the client asked for basic.cancel when its queue goes (capability consumer_cancel_notify). */
  readonly cancelNotify: boolean;
  /** Whether the socket has room for more deliveries; false pauses them until `resume`. */
  writable(): boolean;
  /** Who the client is to the access policy (amq.topic's MQTT traffic); absent: anonymous. */
  readonly identity?: ClientIdentity;
}

/** The methods a session serves; any other channel method is refused 540 by the connection. */
export const SESSION_METHODS: ReadonlySet<string> = new Set<MethodName>([
  'exchange.declare',
  'exchange.delete',
  'exchange.bind',
  'exchange.unbind',
  'queue.declare',
  'queue.bind',
  'queue.unbind',
  'queue.purge',
  'queue.delete',
  'basic.qos',
  'basic.consume',
  'basic.cancel',
  'basic.publish',
  'basic.get',
  'basic.ack',
  'basic.reject',
  'basic.nack',
  'basic.recover',
  'basic.recover-async',
  'confirm.select',
  'tx.select',
  'tx.commit',
  'tx.rollback',
]);

function notFoundQueue(name: string, method: MethodName): AmqpCodecError {
  return amqpRefusal(ReplyCodes.notFound, `no queue '${name}' in vhost '/'`, method);
}

function tagNumber(tag: bigint): number {
  return Number(tag);
}

interface Unacked {
  readonly queue: QueueRuntime;
  readonly message: QueuedMessage;
  readonly consumer: Consumer | undefined;
}

class Consumer implements BrokerConsumer {
  unacked = 0;

  constructor(
    readonly channel: Channel,
    readonly queue: QueueRuntime,
    readonly tag: string,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    readonly prefetch: number,
  ) {}

  hasRoom(): boolean {
    if (!this.channel.session.writable()) return false;
    if (this.noAck) return true;
    return (this.prefetch === 0 || this.unacked < this.prefetch) && this.channel.hasRoom();
  }

  deliver(message: QueuedMessage): void {
    this.channel.deliver(this, message);
  }

  cancelledByServer(): void {
    this.channel.consumerGone(this);
  }
}

/**
 * Publisher confirms of one channel: sequence numbers settle in any order (each waits for its
 * queues' appends). A run of settled numbers from the lowest one not yet told goes as one
 * multiple ack or nack per run of equal outcomes; a number settled while an earlier one still
 * waits is told on its own (multiple = false) at once, as RabbitMQ does, so a message that needs
 * no disk write (consumed and acknowledged before it was written, or transient) is not held
 * behind one waiting for an fdatasync. A multiple ack never covers a number already told.
 */
class Confirms {
  #next = 1;
  /** Every number up to this one was told. */
  #told = 0;
  /** Numbers above #told told on their own. */
  readonly #toldAhead = new Set<number>();
  #scheduled = false;
  readonly #settled = new Map<number, boolean>();

  constructor(private readonly send: (tag: number, multiple: boolean, ok: boolean) => void) {}

  take(): number {
    const seq = this.#next;
    this.#next += 1;
    return seq;
  }

  settle(seq: number, ok: boolean): void {
    this.#settled.set(seq, ok);
    // Told after the current turn, so the publishes one append made durable go as one ack.
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    for (;;) {
      const first = this.#told + 1;
      const result = this.#settled.get(first);
      if (result === undefined) break;
      this.#settled.delete(first);
      let last = first;
      while (this.#settled.get(last + 1) === result) {
        last += 1;
        this.#settled.delete(last);
      }
      this.send(last, last > first, result);
      this.#told = last;
      while (this.#toldAhead.delete(this.#told + 1)) this.#told += 1;
    }
    // What is left settled after a number still waiting.
    for (const [seq, ok] of [...this.#settled].sort(([a], [b]) => a - b)) {
      this.#settled.delete(seq);
      this.#toldAhead.add(seq);
      this.send(seq, false, ok);
    }
  }
}

class Channel {
  #nextTag = 1;
  readonly unacked = new Map<number, Unacked>();
  readonly consumers = new Map<string, Consumer>();
  /** basic.qos global=false: the prefetch of consumers created from now on. */
  consumerPrefetch = 0;
  /** basic.qos global=true: one limit over all of the channel's consumers. */
  channelPrefetch = 0;
  /** Unacknowledged deliveries to consumers (basic.get's are not counted against prefetch). */
  consumerUnacked = 0;
  confirms: Confirms | undefined;
  /** In tx mode: the publishes and acknowledgements held for the next commit, in order. */
  tx: Array<() => Promise<boolean> | void> | undefined;
  /** The queue this channel declared last: an empty queue name in later methods means it. */
  lastQueue = '';
  open = true;
  #busy = false;
  readonly #waiting: Command[] = [];

  constructor(
    readonly session: AmqpSession,
    readonly id: number,
  ) {}

  hasRoom(): boolean {
    return this.channelPrefetch === 0 || this.consumerUnacked < this.channelPrefetch;
  }

  deliver(consumer: Consumer, message: QueuedMessage): void {
    const tag = this.#nextTag;
    this.#nextTag += 1;
    countDelivery(this.session.broker, consumer.queue, message, consumer.noAck);
    if (consumer.noAck) consumer.queue.settle(message);
    else {
      this.unacked.set(tag, { queue: consumer.queue, message, consumer });
      consumer.unacked += 1;
      this.consumerUnacked += 1;
    }
    this.session.host.sendContent(
      this.id,
      amqpMethod('basic.deliver', { consumerTag: consumer.tag, deliveryTag: BigInt(tag), redelivered: message.redelivered, exchange: message.exchange, routingKey: message.routingKey }),
      message.properties,
      message.body,
    );
  }

  /** basic.get: a tag outside any consumer. */
  nextTag(): number {
    const tag = this.#nextTag;
    this.#nextTag += 1;
    return tag;
  }

  consumerGone(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    if (this.open && this.session.host.cancelNotify) this.session.host.sendMethod(this.id, amqpMethod('basic.cancel', { consumerTag: consumer.tag, noWait: true }));
  }

  /** Runs commands one after another: one that waits (a declare being stored) holds back the next. */
  run(command: Command): void {
    if (this.#busy) {
      this.#waiting.push(command);
      return;
    }
    this.#step(command);
  }

  #step(command: Command): void {
    let result: Promise<void> | void;
    try {
      result = this.session.handle(this, command);
    } catch (error) {
      this.session.failed(this, error);
      return;
    }
    if (result === undefined) return;
    this.#busy = true;
    result.then(
      () => this.#resume(),
      (error: unknown) => {
        this.session.failed(this, error);
        this.#resume();
      },
    );
  }

  #resume(): void {
    this.#busy = false;
    while (!this.#busy && this.#waiting.length > 0 && this.open) this.#step(this.#waiting.shift() as Command);
    if (!this.open) this.#waiting.length = 0;
  }
}

export class AmqpSession {
  readonly #channels = new Map<number, Channel>();
  #closed = false;

  constructor(
    readonly broker: AmqpBroker,
    readonly host: SessionHost,
  ) {}

  writable(): boolean {
    return this.host.writable();
  }

  get #identity(): ClientIdentity {
    return this.host.identity ?? ANONYMOUS_AMQP;
  }

  /**
   * A binding out of amq.topic is an MQTT subscription to its key: the ACL's subscribe decides
   * (403), and its binder is who later reads each message it takes. Undefined for other bindings.
   */
  #mqttBinder(source: string, bindingKey: string, method: MethodName): ClientIdentity | undefined {
    const bridge = this.broker.mqtt;
    if (bridge === undefined || source !== MQTT_EXCHANGE) return undefined;
    const identity = this.#identity;
    if (!bridge.maySubscribe(identity, bindingKey)) throw amqpRefusal(ReplyCodes.accessRefused, `read access to topic '${bindingKey}' in exchange '${MQTT_EXCHANGE}' in vhost '/' refused for user '${identity.username ?? ''}'`, method);
    return identity;
  }

  /** Adds a binding, or gives an equal one its new binder; stored when durable. */
  async #addBinding(binding: Binding, durable: boolean): Promise<void> {
    const existing = this.broker.topology.findBinding(binding);
    if (existing !== undefined && (binding.binder === undefined || JSON.stringify(existing.binder) === JSON.stringify(binding.binder))) return;
    if (durable) await this.broker.persist([{ kind: 'binding', binding }]);
    if (existing !== undefined) existing.binder = binding.binder;
    else this.broker.topology.addBinding(binding);
  }

  /** A command of an open channel (whose method is in SESSION_METHODS). */
  command(channelId: number, command: Command): void {
    let channel = this.#channels.get(channelId);
    if (channel === undefined) {
      channel = new Channel(this, channelId);
      this.#channels.set(channelId, channel);
    }
    channel.run(command);
  }

  /** The socket drained: deliveries paused by `writable()` go on. */
  resume(): void {
    const queues = new Set<QueueRuntime>();
    for (const channel of this.#channels.values()) for (const consumer of channel.consumers.values()) queues.add(consumer.queue);
    for (const runtime of queues) runtime.queue.dispatch();
  }

  /** The channel closed (by the client, or by a channel exception): consumers go, unacknowledged messages are requeued. */
  channelClosed(channelId: number): void {
    const channel = this.#channels.get(channelId);
    if (channel === undefined) return;
    this.#channels.delete(channelId);
    channel.open = false;
    for (const consumer of [...channel.consumers.values()]) this.#cancel(channel, consumer);
    this.#requeue(channel, [...channel.unacked.keys()]);
  }

  /** The connection ended: every channel closes, the exclusive queues it owned are deleted. */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#channels.keys()]) this.channelClosed(id);
    for (const def of [...this.broker.topology.queues.values()]) {
      if (def.owner !== this.host.connectionId) continue;
      const runtime = this.broker.queue(def.name);
      if (runtime !== undefined) void this.broker.serialized(() => this.broker.deleteQueue(runtime)).catch((error: unknown) => this.broker.logger.error({ err: error, queue: def.name }, 'AMQP: deleting an exclusive queue failed'));
    }
  }

  failed(channel: Channel, error: unknown): void {
    if (!(error instanceof AmqpCodecError)) {
      this.broker.logger.error({ err: error, channel: channel.id }, 'AMQP: a channel method failed');
      error = new AmqpCodecError(ReplyCodes.internalError, `${error instanceof Error ? error.message : String(error)}`, {});
    }
    if (channel.open) this.host.closeChannel(channel.id, error as AmqpCodecError);
  }

  handle(channel: Channel, command: Command): Promise<void> | void {
    const { method } = command;
    switch (method.name) {
      case 'exchange.declare':
        return this.#exchangeDeclare(channel, method.args);
      case 'exchange.delete':
        return this.#exchangeDelete(channel, method.args);
      case 'exchange.bind':
        return this.#exchangeBind(channel, method.args, 'exchange.bind');
      case 'exchange.unbind':
        return this.#exchangeBind(channel, method.args, 'exchange.unbind');
      case 'queue.declare':
        return this.#queueDeclare(channel, method.args);
      case 'queue.bind':
        return this.#bind(channel, method.args, 'queue.bind');
      case 'queue.unbind':
        return this.#bind(channel, { ...method.args, noWait: false }, 'queue.unbind');
      case 'queue.purge':
        return this.#purge(channel, method.args);
      case 'queue.delete':
        return this.#queueDelete(channel, method.args);
      case 'basic.qos':
        return this.#qos(channel, method.args);
      case 'basic.consume':
        return this.#consume(channel, method.args);
      case 'basic.cancel':
        return this.#cancelMethod(channel, method.args);
      case 'basic.publish': {
        const content = command.content as NonNullable<Command['content']>;
        if (channel.tx === undefined) return this.#publish(channel, method.args, content);
        // Refusals come at once; the routing waits for the commit.
        this.#checkPublish(method.args, content);
        channel.tx.push(() => new Promise<boolean>((resolve) => this.#publish(channel, method.args, content, resolve)));
        return;
      }
      case 'basic.get':
        return this.#get(channel, method.args);
      case 'basic.ack': {
        const { deliveryTag, multiple } = method.args;
        return this.#held(channel, tagNumber(deliveryTag), multiple, 'basic.ack', () => this.#ack(channel, tagNumber(deliveryTag), multiple, 'basic.ack'));
      }
      case 'basic.nack': {
        const { deliveryTag, multiple, requeue } = method.args;
        return this.#held(channel, tagNumber(deliveryTag), multiple, 'basic.nack', () => this.#nack(channel, tagNumber(deliveryTag), multiple, requeue, 'basic.nack'));
      }
      case 'basic.reject': {
        const { deliveryTag, requeue } = method.args;
        return this.#held(channel, tagNumber(deliveryTag), false, 'basic.reject', () => this.#nack(channel, tagNumber(deliveryTag), false, requeue, 'basic.reject'));
      }
      case 'tx.select':
        if (channel.confirms !== undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `cannot switch from confirm to tx mode`, 'tx.select');
        channel.tx ??= [];
        this.host.sendMethod(channel.id, amqpMethod('tx.select-ok', {}));
        return;
      case 'tx.commit':
        return this.#commit(channel);
      case 'tx.rollback':
        if (channel.tx === undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `channel is not transactional`, 'tx.rollback');
        channel.tx = [];
        this.host.sendMethod(channel.id, amqpMethod('tx.rollback-ok', {}));
        return;
      case 'basic.recover':
      case 'basic.recover-async':
        return this.#recover(channel, method.args.requeue, method.name);
      case 'confirm.select':
        if (channel.tx !== undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `cannot switch from tx to confirm mode`, 'confirm.select');
        channel.confirms ??= new Confirms((tag, multiple, ok) => {
          if (channel.open) this.host.sendMethod(channel.id, ok ? amqpMethod('basic.ack', { deliveryTag: BigInt(tag), multiple }) : amqpMethod('basic.nack', { deliveryTag: BigInt(tag), multiple, requeue: false }));
        });
        if (!method.args.noWait) this.host.sendMethod(channel.id, amqpMethod('confirm.select-ok', {}));
        return;
      default:
        throw amqpRefusal(ReplyCodes.notImplemented, `${method.name} is not implemented yet by this server`, method.name);
    }
  }

  /** An acknowledgement now, or in tx mode held for the commit (a tag not outstanding is refused at once). */
  #held(channel: Channel, tag: number, multiple: boolean, method: MethodName, run: () => void): void {
    if (channel.tx === undefined) {
      run();
      return;
    }
    this.#tags(channel, tag, multiple, method);
    channel.tx.push(run);
  }

  /**
   * tx.commit: the held publishes are routed and the held acknowledgements applied, in order;
   * commit-ok once every publish is in its queues, durably where stored. Not atomic against a
   * crash: the queues' shards are written separately (docs/amqp.md).
   */
  async #commit(channel: Channel): Promise<void> {
    if (channel.tx === undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `channel is not transactional`, 'tx.commit');
    const pending: Array<Promise<boolean>> = [];
    for (const op of channel.tx.splice(0)) {
      const result = op();
      if (result !== undefined) pending.push(result);
    }
    const outcomes = await Promise.all(pending);
    if (outcomes.includes(false)) throw amqpRefusal(ReplyCodes.internalError, `a publish of the transaction could not be stored`, 'tx.commit');
    this.#reply(channel, false, amqpMethod('tx.commit-ok', {}));
  }

  #reply(channel: Channel, noWait: boolean, method: AmqpMethod): void {
    if (!noWait && channel.open) this.host.sendMethod(channel.id, method);
  }

  #queueName(channel: Channel, name: string, method: MethodName): string {
    if (name !== '') return name;
    if (channel.lastQueue === '') throw amqpRefusal(ReplyCodes.notFound, `no previously declared queue`, method);
    return channel.lastQueue;
  }

  /** The queue by name, refused 404 when missing and 405 when another connection owns it. */
  #usableQueue(name: string, method: MethodName): QueueRuntime {
    const runtime = this.broker.queue(name);
    if (runtime === undefined) throw notFoundQueue(name, method);
    if (runtime.def.owner !== undefined && runtime.def.owner !== this.host.connectionId) {
      throw amqpRefusal(ReplyCodes.resourceLocked, `cannot obtain exclusive access to locked queue '${name}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`, method);
    }
    return runtime;
  }

  #exchangeDeclare(channel: Channel, args: ArgsOf<'exchange.declare'>): Promise<void> {
    return this.broker.serialized(async () => {
      const existing = this.broker.topology.checkExchangeDeclare(args);
      if (existing === undefined) {
        checkExchangeArguments(args.exchange, args.arguments);
        const limited = exchangeLimitRefusal(this.broker.topology, this.broker.limits, args.exchange);
        if (limited !== undefined) throw limited;
        const exchange: ExchangeDef = { name: args.exchange, type: args.type as ExchangeDef['type'], durable: args.durable, autoDelete: args.autoDelete, internal: args.internal, arguments: args.arguments };
        if (exchange.durable) await this.broker.persist([{ kind: 'exchange', exchange }]);
        this.broker.topology.putExchange(exchange);
      }
      this.#reply(channel, args.noWait, amqpMethod('exchange.declare-ok', {}));
    });
  }

  #exchangeDelete(channel: Channel, args: ArgsOf<'exchange.delete'>): Promise<void> {
    return this.broker.serialized(async () => {
      const existing = this.broker.topology.checkExchangeDelete(args.exchange, args.ifUnused);
      if (existing !== undefined) {
        const bindings = [...this.broker.topology.bindingsFrom(existing.name), ...this.broker.topology.bindingsTo('exchange', existing.name)];
        if (existing.durable) await this.broker.persist([], [{ kind: 'exchange', exchange: existing }, ...bindings.filter((binding) => this.#durableBinding(binding)).map((binding) => ({ kind: 'binding', binding }) as const)]);
        this.broker.topology.removeExchange(existing.name);
        for (const binding of bindings) if (binding.destination === existing.name) await this.broker.afterUnbind(binding.source);
      }
      this.#reply(channel, args.noWait, amqpMethod('exchange.delete-ok', {}));
    });
  }

  /** exchange.bind / unbind: both exchanges must exist (404), neither may be the default one (403). */
  #exchangeBind(channel: Channel, args: ArgsOf<'exchange.bind'>, method: 'exchange.bind' | 'exchange.unbind'): Promise<void> {
    return this.broker.serialized(async () => {
      const topology = this.broker.topology;
      if (args.destination === '') throw amqpRefusal(ReplyCodes.accessRefused, `operation not permitted on the default exchange`, method);
      if (!topology.exchanges.has(args.destination)) throw amqpRefusal(ReplyCodes.notFound, `no exchange '${args.destination}' in vhost '/'`, method);
      topology.checkBind(args.source, args.routingKey, args.arguments, method);
      const binding: Binding = { source: args.source, kind: 'exchange', destination: args.destination, routingKey: args.routingKey, arguments: args.arguments };
      const entry: TopologyEntry = { kind: 'binding', binding };
      const durable = this.#durableBinding(binding);
      if (method === 'exchange.bind') {
        if (this.broker.topology.findBinding(binding) === undefined) {
          const limited = bindingLimitRefusal(this.broker.topology, this.broker.limits, method);
          if (limited !== undefined) throw limited;
        }
        const binder = this.#mqttBinder(args.source, args.routingKey, method);
        await this.#addBinding(binder === undefined ? binding : { ...binding, binder }, durable);
        this.#reply(channel, args.noWait, amqpMethod('exchange.bind-ok', {}));
        return;
      }
      if (topology.findBinding(binding) !== undefined) {
        if (durable) await this.broker.persist([], [entry]);
        topology.removeBinding(binding);
        await this.broker.afterUnbind(args.source);
      }
      this.#reply(channel, args.noWait, amqpMethod('exchange.unbind-ok', {}));
    });
  }

  #durableBinding(binding: Binding): boolean {
    const destinationDurable = binding.kind === 'queue' ? this.broker.queue(binding.destination)?.def.shard !== undefined : this.broker.topology.exchanges.get(binding.destination)?.durable === true;
    return this.broker.topology.exchanges.get(binding.source)?.durable === true && destinationDurable;
  }

  #queueDeclare(channel: Channel, args: ArgsOf<'queue.declare'>): Promise<void> {
    return this.broker.serialized(async () => {
      const method = 'queue.declare';
      let name = args.queue;
      let runtime = name === '' ? undefined : this.broker.queue(name);
      if (args.passive) {
        if (name === '') name = this.#queueName(channel, name, method);
        runtime = this.#usableQueue(name, method);
      } else if (runtime !== undefined) {
        this.#usableQueue(name, method);
        const def = runtime.def;
        for (const [field, received, current] of [
          ['durable', args.durable, def.durable],
          ['exclusive', args.exclusive, def.owner !== undefined],
          ['auto_delete', args.autoDelete, def.autoDelete],
        ] as const) {
          if (received !== current) throw amqpRefusal(ReplyCodes.preconditionFailed, `inequivalent arg '${field}' for queue '${name}' in vhost '/': received '${String(received)}' but current is '${String(current)}'`, method);
        }
        const received = JSON.stringify(isStreamDeclare(args.arguments) ? streamPolicy(name, args.arguments) : queuePolicy(name, args.arguments));
        const current = JSON.stringify(runtime.streamPolicy ?? runtime.policy);
        if (received !== current) throw amqpRefusal(ReplyCodes.preconditionFailed, `inequivalent queue arguments for queue '${name}' in vhost '/': received ${received} but current is ${current}`, method);
      } else {
        if (name === '') name = `amq.gen-${randomBytes(16).toString('base64url')}`;
        else if (name.startsWith('amq.')) throw amqpRefusal(ReplyCodes.accessRefused, `queue name '${name}' contains reserved prefix 'amq.*'`, method);
        if (isStreamDeclare(args.arguments)) checkStreamDeclare(name, args, args.arguments);
        else queuePolicy(name, args.arguments);
        const limited = queueLimitRefusal(this.broker.topology, this.broker.limits, name);
        if (limited !== undefined) throw limited;
        // An exclusive queue goes with its connection, and a crash ends every connection, so it
        // is never stored, durable or not.
        const persistent = args.durable && !args.exclusive;
        runtime = await this.broker.createQueue({ name, durable: args.durable, owner: args.exclusive ? this.host.connectionId : undefined, autoDelete: args.autoDelete, arguments: args.arguments }, persistent);
      }
      channel.lastQueue = name;
      // A redeclare renews x-expires; a passive one only looks (monitoring keeps no queue alive).
      if (!args.passive) runtime.use.touch(this.broker.now());
      this.#reply(channel, args.noWait, amqpMethod('queue.declare-ok', { queue: name, messageCount: runtime.queue.messageCount, consumerCount: runtime.queue.consumerCount }));
    });
  }

  #bind(channel: Channel, args: ArgsOf<'queue.bind'>, method: 'queue.bind' | 'queue.unbind'): Promise<void> {
    return this.broker.serialized(async () => {
      const queue = this.#queueName(channel, args.queue, method);
      const binding: Binding = { source: args.exchange, kind: 'queue', destination: queue, routingKey: args.routingKey, arguments: args.arguments };
      const runtime = this.#usableQueue(queue, method);
      this.broker.topology.checkBind(args.exchange, args.routingKey, args.arguments, method);
      const durable = runtime.def.shard !== undefined && this.broker.topology.exchanges.get(args.exchange)?.durable === true;
      const entry: TopologyEntry = { kind: 'binding', binding };
      if (method === 'queue.bind') {
        if (this.broker.topology.findBinding(binding) === undefined) {
          const limited = bindingLimitRefusal(this.broker.topology, this.broker.limits, method);
          if (limited !== undefined) throw limited;
        }
        const binder = this.#mqttBinder(args.exchange, args.routingKey, method);
        await this.#addBinding(binder === undefined ? binding : { ...binding, binder }, durable);
        this.#reply(channel, args.noWait, amqpMethod('queue.bind-ok', {}));
        return;
      }
      if (this.broker.topology.findBinding(binding) !== undefined) {
        if (durable) await this.broker.persist([], [entry]);
        this.broker.topology.removeBinding(binding);
        await this.broker.afterUnbind(args.exchange);
      }
      this.#reply(channel, false, amqpMethod('queue.unbind-ok', {}));
    });
  }

  #purge(channel: Channel, args: ArgsOf<'queue.purge'>): void {
    const runtime = this.#usableQueue(this.#queueName(channel, args.queue, 'queue.purge'), 'queue.purge');
    if (runtime.streamPolicy !== undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `purge not supported by stream queue '${runtime.name}' in vhost '/'`, 'queue.purge');
    const removed = runtime.queue.drain();
    for (const message of removed) runtime.settle(message);
    this.#reply(channel, args.noWait, amqpMethod('queue.purge-ok', { messageCount: removed.length }));
  }

  #queueDelete(channel: Channel, args: ArgsOf<'queue.delete'>): Promise<void> {
    return this.broker.serialized(async () => {
      const name = this.#queueName(channel, args.queue, 'queue.delete');
      const runtime = this.broker.queue(name);
      // Deleting a queue that is not there succeeds (RabbitMQ's idempotent delete).
      if (runtime === undefined) {
        this.#reply(channel, args.noWait, amqpMethod('queue.delete-ok', { messageCount: 0 }));
        return;
      }
      this.#usableQueue(name, 'queue.delete');
      if (args.ifUnused && runtime.queue.consumerCount > 0) throw amqpRefusal(ReplyCodes.preconditionFailed, `queue '${name}' in vhost '/' in use`, 'queue.delete');
      if (args.ifEmpty && runtime.queue.messageCount > 0) throw amqpRefusal(ReplyCodes.preconditionFailed, `queue '${name}' in vhost '/' is not empty`, 'queue.delete');
      const count = await this.broker.deleteQueue(runtime);
      this.#reply(channel, args.noWait, amqpMethod('queue.delete-ok', { messageCount: count }));
    });
  }

  #qos(channel: Channel, args: ArgsOf<'basic.qos'>): void {
    if (args.prefetchSize !== 0) throw amqpRefusal(ReplyCodes.notImplemented, `prefetch_size!=0 (${args.prefetchSize})`, 'basic.qos');
    if (args.global) channel.channelPrefetch = args.prefetchCount;
    else channel.consumerPrefetch = args.prefetchCount;
    this.host.sendMethod(channel.id, amqpMethod('basic.qos-ok', {}));
    // A larger channel limit gives room at once.
    for (const consumer of channel.consumers.values()) consumer.queue.queue.dispatch();
  }

  #consume(channel: Channel, args: ArgsOf<'basic.consume'>): void {
    const method = 'basic.consume';
    const name = this.#queueName(channel, args.queue, method);
    const runtime = this.#usableQueue(name, method);
    const stream = runtime.queue instanceof StreamQueue ? runtime.queue : undefined;
    const start = stream === undefined ? undefined : checkStreamConsume(name, { ...args, consumerPrefetch: channel.consumerPrefetch, channelPrefetch: channel.channelPrefetch }, this.broker.now());
    if (stream === undefined && Array.from(args.arguments.keys()).some((key) => key.startsWith('x-'))) {
      throw amqpRefusal(ReplyCodes.notImplemented, `consumer arguments (${[...args.arguments.keys()].join(', ')}) are not implemented yet by this server`, method);
    }
    const tag = args.consumerTag === '' ? `amq.ctag-${randomBytes(16).toString('base64url')}` : args.consumerTag;
    if (channel.consumers.has(tag)) throw amqpRefusal(ReplyCodes.notAllowed, `attempt to reuse consumer tag '${tag}'`, method);
    const limited = consumerLimitRefusal(channel.consumers.size, this.broker.limits);
    if (limited !== undefined) throw limited;
    const others = runtime.queue.consumers;
    if ((args.exclusive && others.length > 0) || others.some((consumer) => consumer.exclusive)) {
      throw amqpRefusal(ReplyCodes.accessRefused, `queue '${name}' in vhost '/' in exclusive use`, method);
    }
    const consumer = new Consumer(channel, runtime, tag, args.noAck, args.exclusive, channel.consumerPrefetch);
    channel.consumers.set(tag, consumer);
    runtime.hadConsumer = true;
    // consume-ok goes before the first delivery: clients register the tag on it.
    this.#reply(channel, args.noWait, amqpMethod('basic.consume-ok', { consumerTag: tag }));
    if (stream !== undefined && start !== undefined) stream.consume(consumer, start);
    else runtime.queue.addConsumer(consumer);
  }

  #cancelMethod(channel: Channel, args: ArgsOf<'basic.cancel'>): void {
    const consumer = channel.consumers.get(args.consumerTag);
    if (consumer !== undefined) this.#cancel(channel, consumer);
    this.#reply(channel, args.noWait, amqpMethod('basic.cancel-ok', { consumerTag: args.consumerTag }));
  }

  /** A consumer goes (its unacknowledged messages stay with the channel); an auto-delete queue goes with its last consumer. */
  #cancel(channel: Channel, consumer: Consumer): void {
    channel.consumers.delete(consumer.tag);
    const runtime = consumer.queue;
    runtime.queue.removeConsumer(consumer.tag, (candidate) => candidate === consumer);
    if (runtime.def.autoDelete && runtime.hadConsumer && runtime.queue.consumerCount === 0 && !runtime.deleted) {
      void this.broker.serialized(() => this.broker.deleteQueue(runtime)).catch((error: unknown) => this.broker.logger.error({ err: error, queue: runtime.name }, 'AMQP: deleting an auto-delete queue failed'));
    }
  }

  /** basic.publish's refusals: a missing (404) or internal (403) exchange, immediate (540), a bad expiration (406). */
  #checkPublish(args: ArgsOf<'basic.publish'>, content: NonNullable<Command['content']>): ExchangeDef {
    const method = 'basic.publish';
    const exchange = this.broker.topology.exchanges.get(args.exchange);
    if (exchange === undefined) throw amqpRefusal(ReplyCodes.notFound, `no exchange '${args.exchange}' in vhost '/'`, method);
    if (exchange.internal) throw amqpRefusal(ReplyCodes.accessRefused, `cannot publish to internal exchange '${args.exchange}' in vhost '/'`, method);
    if (args.immediate) throw amqpRefusal(ReplyCodes.notImplemented, `immediate=true`, method);
    if (exchange.name === MQTT_EXCHANGE && this.broker.mqtt !== undefined && !this.broker.mqtt.mayPublish(this.#identity, args.routingKey)) {
      throw amqpRefusal(ReplyCodes.accessRefused, `write access to topic '${args.routingKey}' in exchange '${MQTT_EXCHANGE}' in vhost '/' refused for user '${this.#identity.username ?? ''}'`, method);
    }
    const { expiration } = content.header.properties;
    if (expiration !== undefined && messageExpiration(expiration) === undefined) throw amqpRefusal(ReplyCodes.preconditionFailed, `invalid expiration '${expiration}'`, method);
    return exchange;
  }

  /** Routes a publish; `stored` is told whether every target queue has it (durably where stored). */
  #publish(channel: Channel, args: ArgsOf<'basic.publish'>, content: NonNullable<Command['content']>, stored?: (ok: boolean) => void): void {
    const exchange = this.#checkPublish(args, content);
    const { properties } = content.header;
    const seq = channel.confirms?.take();
    this.broker.stats.publishes += 1;
    // One count for the routing itself, so a queue that has the message at once (calling
    // back inside publish) cannot confirm it before every target was given it.
    let waiting = 1;
    let failed = false;
    // A queue that refused it (x-overflow reject-publish): nacked, but no failure of a transaction's commit.
    let rejected = false;
    const finish = (): void => {
      if (waiting !== 0) return;
      if (seq !== undefined) {
        const confirmed = !failed && !rejected;
        channel.confirms?.settle(seq, confirmed);
        if (confirmed) this.broker.stats.confirmsAcked += 1;
        else this.broker.stats.confirmsNacked += 1;
      }
      stored?.(!failed);
    };
    const reached = this.broker.publish(exchange, args.routingKey, properties, content.body, () => {
      waiting += 1;
      return (error) => {
        if (error instanceof PublishRejected) rejected = true;
        else if (error !== undefined) failed = true;
        waiting -= 1;
        finish();
      };
    });
    const unroutable = (): void => {
      if (args.mandatory) this.host.sendContent(channel.id, amqpMethod('basic.return', { replyCode: ReplyCodes.noRoute, replyText: 'NO_ROUTE', exchange: args.exchange, routingKey: args.routingKey }), properties, content.body);
    };
    // A publish to amq.topic is an MQTT publish too: its confirm waits for the MQTT append, and
    // it is routed when a queue or an MQTT subscription takes it.
    waiting += 1;
    const crossing =
      exchange.name === MQTT_EXCHANGE &&
      this.broker.mqtt?.toMqtt(args.routingKey, properties, content.body, this.#identity, this.broker.now(), (matched) => {
        if (matched === undefined) failed = true;
        else if (!matched && reached === 0) unroutable();
        waiting -= 1;
        finish();
      }) === true;
    if (!crossing) {
      waiting -= 1;
      if (reached === 0) unroutable();
    }
    // Unroutable messages are confirmed at once, as RabbitMQ does.
    waiting -= 1;
    finish();
  }

  #get(channel: Channel, args: ArgsOf<'basic.get'>): void {
    const runtime = this.#usableQueue(this.#queueName(channel, args.queue, 'basic.get'), 'basic.get');
    if (runtime.streamPolicy !== undefined) throw amqpRefusal(ReplyCodes.notImplemented, `basic.get not supported by stream queues queue '${runtime.name}' in vhost '/'`, 'basic.get');
    runtime.use.touch(this.broker.now());
    const message = runtime.queue.take();
    if (message === undefined) {
      this.host.sendMethod(channel.id, amqpMethod('basic.get-empty', { clusterId: '' }));
      return;
    }
    const tag = channel.nextTag();
    countDelivery(this.broker, runtime, message, args.noAck);
    if (args.noAck) runtime.settle(message);
    else channel.unacked.set(tag, { queue: runtime, message, consumer: undefined });
    this.host.sendContent(
      channel.id,
      amqpMethod('basic.get-ok', { deliveryTag: BigInt(tag), redelivered: message.redelivered, exchange: message.exchange, routingKey: message.routingKey, messageCount: runtime.queue.messageCount }),
      message.properties,
      message.body,
    );
  }

  /** The tags an ack / nack names: one (which must be outstanding), or every one up to it (0: all). */
  #tags(channel: Channel, tag: number, multiple: boolean, method: MethodName): number[] {
    if (multiple) return [...channel.unacked.keys()].filter((outstanding) => tag === 0 || outstanding <= tag);
    if (!channel.unacked.has(tag)) throw amqpRefusal(ReplyCodes.preconditionFailed, `unknown delivery tag ${tag}`, method);
    return [tag];
  }

  #ack(channel: Channel, tag: number, multiple: boolean, method: MethodName): void {
    const queues = new Set<QueueRuntime>();
    for (const settled of this.#tags(channel, tag, multiple, method)) {
      const entry = this.#release(channel, settled);
      entry.queue.settle(entry.message);
      entry.queue.counters.acked += 1;
      this.broker.stats.acks += 1;
      queues.add(entry.queue);
    }
    this.#dispatchAfterRelease(channel, queues);
  }

  #nack(channel: Channel, tag: number, multiple: boolean, requeue: boolean, method: MethodName): void {
    const tags = this.#tags(channel, tag, multiple, method);
    if (requeue) {
      this.#requeue(channel, tags);
      return;
    }
    const queues = new Set<QueueRuntime>();
    for (const settled of tags) {
      const entry = this.#release(channel, settled);
      entry.queue.discard(entry.message, 'rejected');
      queues.add(entry.queue);
    }
    this.#dispatchAfterRelease(channel, queues);
  }

  #recover(channel: Channel, requeue: boolean, method: 'basic.recover' | 'basic.recover-async'): void {
    if (!requeue) throw amqpRefusal(ReplyCodes.notImplemented, `${method} with requeue=false`, method);
    this.#requeue(channel, [...channel.unacked.keys()]);
    if (method === 'basic.recover') this.host.sendMethod(channel.id, amqpMethod('basic.recover-ok', {}));
  }

  #release(channel: Channel, tag: number): Unacked {
    const entry = channel.unacked.get(tag) as Unacked;
    channel.unacked.delete(tag);
    entry.queue.counters.unacked -= 1;
    entry.queue.counters.unackedBytes -= entry.message.body.length;
    if (entry.consumer !== undefined) {
      entry.consumer.unacked -= 1;
      channel.consumerUnacked -= 1;
    }
    return entry;
  }

  #requeue(channel: Channel, tags: readonly number[]): void {
    const byQueue = new Map<QueueRuntime, QueuedMessage[]>();
    for (const tag of tags) {
      const entry = this.#release(channel, tag);
      const list = byQueue.get(entry.queue) ?? [];
      list.push(entry.message);
      byQueue.set(entry.queue, list);
    }
    for (const [runtime, messages] of byQueue) runtime.requeue(messages);
    this.#dispatchAfterRelease(channel, new Set(byQueue.keys()));
  }

  /** Room came free: the queues of the released messages, and with a channel-wide prefetch every queue the channel consumes. */
  #dispatchAfterRelease(channel: Channel, queues: Set<QueueRuntime>): void {
    if (channel.channelPrefetch > 0) for (const consumer of channel.consumers.values()) queues.add(consumer.queue);
    for (const runtime of queues) runtime.queue.dispatch();
  }
}

/** A message handed out: node and queue counters; one to be acknowledged counts as unacked until then. */
function countDelivery(broker: AmqpBroker, queue: QueueRuntime, message: QueuedMessage, noAck: boolean): void {
  broker.stats.deliveries += 1;
  queue.counters.delivered += 1;
  if (noAck) return;
  queue.counters.unacked += 1;
  queue.counters.unackedBytes += message.body.length;
}

/** Whether a reply code closes the channel (else the connection). */
export function closesChannel(code: number): boolean {
  return replyCodeInfo(code)?.scope !== 'connection';
}
