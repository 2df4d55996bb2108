// Node-wide bounds on what AMQP clients may create: exchanges, queues and bindings (each durable
// queue is a shard, each binding is scanned per publish) and consumers per channel. Checked by
// the session before a declare, bind or consume changes anything; 0 turns a bound off.
//
// Reply codes: a queue, exchange or binding over its bound is 406 PRECONDITION_FAILED on the
// channel (RabbitMQ answers its vhost max-queues limit so); too many consumers on one channel is
// 530 NOT_ALLOWED, a connection exception (RabbitMQ's consumer_max_per_channel answer).
import { ReplyCodes } from '../codec/reply-codes.js';
import type { MethodName } from '../codec/spec.js';
import { amqpRefusal, PREDECLARED, type Topology } from './topology.js';
import type { AmqpCodecError } from '../codec/errors.js';

export interface AmqpResourceLimits {
  /** Queues on the node (exclusive and server-named ones included). */
  maxQueues: number;
  /** Exchanges clients declared (the predeclared amq.* and the default one not counted). */
  maxExchanges: number;
  /** Bindings on the node, queue and exchange-to-exchange ones together. */
  maxBindings: number;
  /** Consumers one channel may hold at once. */
  maxConsumersPerChannel: number;
}

export const DEFAULT_AMQP_RESOURCE_LIMITS: Readonly<AmqpResourceLimits> = { maxQueues: 10_000, maxExchanges: 10_000, maxBindings: 100_000, maxConsumersPerChannel: 1000 };

const over = (count: number, limit: number): boolean => limit > 0 && count >= limit;

/** A refusal when one more queue would pass maxQueues, else undefined. */
export function queueLimitRefusal(topology: Topology, limits: AmqpResourceLimits, name: string): AmqpCodecError | undefined {
  if (!over(topology.queues.size, limits.maxQueues)) return undefined;
  return amqpRefusal(ReplyCodes.preconditionFailed, `cannot declare queue '${name}' in vhost '/': queue limit (${limits.maxQueues}) is reached (setting amqp-max-queues)`, 'queue.declare');
}

/** A refusal when one more exchange would pass maxExchanges, else undefined. */
export function exchangeLimitRefusal(topology: Topology, limits: AmqpResourceLimits, name: string): AmqpCodecError | undefined {
  if (!over(topology.exchanges.size - PREDECLARED.length, limits.maxExchanges)) return undefined;
  return amqpRefusal(ReplyCodes.preconditionFailed, `cannot declare exchange '${name}' in vhost '/': exchange limit (${limits.maxExchanges}) is reached (setting amqp-max-exchanges)`, 'exchange.declare');
}

/** A refusal when one more binding would pass maxBindings, else undefined. */
export function bindingLimitRefusal(topology: Topology, limits: AmqpResourceLimits, method: Extract<MethodName, 'queue.bind' | 'exchange.bind'>): AmqpCodecError | undefined {
  if (!over(topology.bindingCount, limits.maxBindings)) return undefined;
  return amqpRefusal(ReplyCodes.preconditionFailed, `cannot add a binding in vhost '/': binding limit (${limits.maxBindings}) is reached (setting amqp-max-bindings)`, method);
}

/** A refusal when a channel holding `consumers` may not take one more, else undefined. */
export function consumerLimitRefusal(consumers: number, limits: AmqpResourceLimits): AmqpCodecError | undefined {
  if (!over(consumers, limits.maxConsumersPerChannel)) return undefined;
  return amqpRefusal(ReplyCodes.notAllowed, `reached maximum (${limits.maxConsumersPerChannel}) of consumers per channel (setting amqp-max-consumers-per-channel)`, 'basic.consume');
}
