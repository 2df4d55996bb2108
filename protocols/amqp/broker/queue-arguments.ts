// The queue arguments the broker acts on, read from queue.declare's table: a bad value is 406
// (RabbitMQ's PRECONDITION_FAILED "invalid arg"), an argument not built is 540 naming it. Pure.
import type { FieldTable, FieldValue } from '../codec/field-table.js';
import { ReplyCodes } from '../codec/reply-codes.js';
import { fieldText } from './matching.js';
import { amqpRefusal } from './topology.js';

export interface QueuePolicy {
  /** x-max-length: ready messages kept; the oldest go past it (drop-head). */
  readonly maxLength?: number;
  /** x-max-length-bytes: body bytes of ready messages kept; the oldest go past it. */
  readonly maxLengthBytes?: number;
  /** x-message-ttl, milliseconds. */
  readonly messageTtl?: number;
  /** x-dead-letter-exchange: where rejected, expired and dropped messages are published. */
  readonly deadLetterExchange?: string;
  /** x-dead-letter-routing-key: their routing key there (default: their own). */
  readonly deadLetterRoutingKey?: string;
  /** x-overflow other than drop-head: past a bound, new publishes are refused (nacked), and with `-dlx` dead-lettered. */
  readonly overflow?: 'reject-publish' | 'reject-publish-dlx';
  /** x-expires, milliseconds (> 0): the queue is deleted once unused (no consumer, no declare, no get) that long. */
  readonly expires?: number;
}

/** An integer of any integer field type (or a float holding one); undefined otherwise. */
export function integer(value: FieldValue): number | undefined {
  switch (value.type) {
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
      return value.value;
    case 'int64':
      return Number(value.value);
    case 'float':
    case 'double':
      return Number.isInteger(value.value) ? value.value : undefined;
    default:
      return undefined;
  }
}

/** The policy of a queue declared with `args`; throws the refusal for a bad or unbuilt argument. */
export function queuePolicy(queue: string, args: FieldTable): QueuePolicy {
  const policy: { -readonly [K in keyof QueuePolicy]: QueuePolicy[K] } = {};
  const invalid = (key: string, why: string) => amqpRefusal(ReplyCodes.preconditionFailed, `invalid arg '${key}' for queue '${queue}' in vhost '/': ${why}`, 'queue.declare');
  const nonNegative = (key: string, value: FieldValue): number => {
    const number = integer(value);
    if (number === undefined) throw invalid(key, 'not an integer');
    if (number < 0) throw invalid(key, `value_negative ${number}`);
    return number;
  };
  const text = (key: string, value: FieldValue): string => {
    const found = fieldText(value);
    if (found === undefined) throw invalid(key, 'not a string');
    return found;
  };
  for (const [key, value] of args) {
    switch (key) {
      case 'x-max-length':
        policy.maxLength = nonNegative(key, value);
        break;
      case 'x-max-length-bytes':
        policy.maxLengthBytes = nonNegative(key, value);
        break;
      case 'x-message-ttl':
        policy.messageTtl = nonNegative(key, value);
        break;
      case 'x-dead-letter-exchange':
        policy.deadLetterExchange = text(key, value);
        break;
      case 'x-dead-letter-routing-key':
        policy.deadLetterRoutingKey = text(key, value);
        break;
      case 'x-overflow': {
        const overflow = text(key, value);
        if (overflow === 'drop-head') break;
        if (overflow === 'reject-publish' || overflow === 'reject-publish-dlx') policy.overflow = overflow;
        else throw invalid(key, `unknown overflow ${overflow}`);
        break;
      }
      case 'x-expires': {
        const expires = nonNegative(key, value);
        if (expires === 0) throw invalid(key, 'value_zero');
        policy.expires = expires;
        break;
      }
      case 'x-queue-type':
        if (fieldText(value) === 'classic') break;
        throw amqpRefusal(ReplyCodes.notImplemented, `queue argument x-queue-type=${fieldText(value) ?? '?'} is not implemented yet by this server (classic and stream are)`, 'queue.declare');
      default:
        if (key.startsWith('x-')) throw amqpRefusal(ReplyCodes.notImplemented, `queue argument '${key}' is not implemented yet by this server (docs/amqp.md)`, 'queue.declare');
    }
  }
  if (policy.deadLetterRoutingKey !== undefined && policy.deadLetterExchange === undefined) throw invalid('x-dead-letter-routing-key', 'needs x-dead-letter-exchange');
  return policy;
}

/** A message's own TTL from its expiration property (milliseconds as text); undefined when absent or not a number. */
export function messageExpiration(expiration: string | undefined): number | undefined {
  if (expiration === undefined || !/^\d{1,15}$/.test(expiration)) return undefined;
  return Number(expiration);
}
