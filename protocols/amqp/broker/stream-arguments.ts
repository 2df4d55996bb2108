// Stream queues' (x-queue-type=stream) rules, pure: the declare flags and arguments they take,
// what a consumer must set (prefetch, acknowledgements) and where it starts reading
// (x-stream-offset). Refusals carry RabbitMQ's reply codes and wording (rabbit_stream_queue).
import type { FieldTable, FieldValue } from '../codec/field-table.js';
import { ReplyCodes } from '../codec/reply-codes.js';
import { fieldText } from './matching.js';
import { integer } from './queue-arguments.js';
import { amqpRefusal } from './topology.js';

/** A stream's retention and segment size, mapped onto its shard's settings. */
export interface StreamPolicy {
  /** Marks the policy a stream's, so a redeclare as a classic queue (whose policy may also be empty) is inequivalent. */
  readonly type: 'stream';
  /** x-max-age: the shard's retentionMs. */
  readonly maxAgeMs?: number;
  /** x-max-length-bytes: the shard's retentionBytes. */
  readonly maxLengthBytes?: number;
  /** x-stream-max-segment-size-bytes: the shard's segmentBytes. */
  readonly maxSegmentSizeBytes?: number;
}

/** Where a stream consumer starts. `last` is the first record of the shard's last batch (RabbitMQ's last chunk). */
export type StreamOffsetSpec = { readonly kind: 'first' } | { readonly kind: 'last' } | { readonly kind: 'next' } | { readonly kind: 'offset'; readonly offset: number } | { readonly kind: 'timestamp'; readonly ms: number };

/** The journal's bounds of a segment (journal/shard/shard-config.ts). */
const MIN_SEGMENT_BYTES = 1024;
const MAX_SEGMENT_BYTES = 2 ** 31;

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  Y: 365 * 24 * 3600 * 1000,
  M: 30 * 24 * 3600 * 1000,
  D: 24 * 3600 * 1000,
  h: 3600 * 1000,
  m: 60 * 1000,
  s: 1000,
};

/** Whether queue.declare's arguments ask for a stream queue. */
export function isStreamDeclare(args: FieldTable): boolean {
  return fieldText(args.get('x-queue-type')) === 'stream';
}

/** RabbitMQ's duration text (x-max-age, an x-stream-offset interval): a positive count and one of Y M D h m s. Milliseconds, or undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,12})([YMDhms])$/.exec(text);
  if (match === null) return undefined;
  const ms = Number(match[1]) * (DURATION_UNIT_MS[match[2] as string] as number);
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}

const rs = (queue: string): string => `queue '${queue}' in vhost '/'`;

/**
 * A stream's policy from queue.declare's arguments; throws the refusal: a bad value 406, an
 * argument streams do not take (x-message-ttl, x-max-length, dead-lettering, ...) 406 as
 * RabbitMQ, one RabbitMQ streams take but this server does not 540.
 */
export function streamPolicy(queue: string, args: FieldTable): StreamPolicy {
  const policy: { -readonly [K in keyof StreamPolicy]: StreamPolicy[K] } = { type: 'stream' };
  const invalid = (key: string, why: string) => amqpRefusal(ReplyCodes.preconditionFailed, `invalid arg '${key}' for ${rs(queue)}: ${why}`, 'queue.declare');
  const positive = (key: string, value: FieldValue): number => {
    const number = integer(value);
    if (number === undefined || !Number.isSafeInteger(number)) throw invalid(key, 'not an integer');
    if (number <= 0) throw invalid(key, `not positive ${number}`);
    return number;
  };
  for (const [key, value] of args) {
    switch (key) {
      case 'x-queue-type':
        break;
      case 'x-max-length-bytes':
        policy.maxLengthBytes = positive(key, value);
        break;
      case 'x-max-age': {
        const ms = parseDuration(fieldText(value) ?? '');
        if (ms === undefined) throw invalid(key, `not a duration such as 7D, 12h or 30m`);
        policy.maxAgeMs = ms;
        break;
      }
      case 'x-stream-max-segment-size-bytes': {
        const bytes = positive(key, value);
        if (bytes < MIN_SEGMENT_BYTES || bytes > MAX_SEGMENT_BYTES) throw invalid(key, `must be in [${MIN_SEGMENT_BYTES}, ${MAX_SEGMENT_BYTES}]`);
        policy.maxSegmentSizeBytes = bytes;
        break;
      }
      case 'x-initial-cluster-size':
      case 'x-queue-leader-locator':
      case 'x-stream-filter-size-bytes':
        throw amqpRefusal(ReplyCodes.notImplemented, `stream argument '${key}' is not implemented yet by this server (docs/amqp.md)`, 'queue.declare');
      default:
        if (key.startsWith('x-')) throw amqpRefusal(ReplyCodes.preconditionFailed, `invalid arg '${key}' for ${rs(queue)} of queue type stream`, 'queue.declare');
    }
  }
  return policy;
}

/** A new stream's declare flags: durable, not exclusive, not auto-delete (RabbitMQ's wording), then its arguments. */
export function checkStreamDeclare(queue: string, flags: { durable: boolean; exclusive: boolean; autoDelete: boolean }, args: FieldTable): StreamPolicy {
  const property = (name: string) => amqpRefusal(ReplyCodes.preconditionFailed, `invalid property '${name}' for ${rs(queue)}`, 'queue.declare');
  if (flags.autoDelete) throw property('auto-delete');
  if (flags.exclusive) throw property('exclusive-owner');
  if (!flags.durable) throw property('non-durable');
  return streamPolicy(queue, args);
}

/**
 * Where a consumer of a stream starts, from basic.consume's x-stream-offset (absent: next):
 * `first`, `last`, `next`, an offset (any integer type), a timestamp (AMQP timestamp, seconds)
 * or an interval text (`1h`: from `now` minus it). 406 for anything else.
 */
export function parseStreamOffset(queue: string, value: FieldValue | undefined, now: number): StreamOffsetSpec {
  if (value === undefined) return { kind: 'next' };
  const invalid = (why: string) => amqpRefusal(ReplyCodes.preconditionFailed, `invalid x-stream-offset for ${rs(queue)}: ${why}`, 'basic.consume');
  if (value.type === 'timestamp') {
    const ms = Number(value.value) * 1000;
    if (!Number.isSafeInteger(ms)) throw invalid(`timestamp ${value.value} out of range`);
    return { kind: 'timestamp', ms };
  }
  const text = fieldText(value);
  if (text !== undefined) {
    if (text === 'first' || text === 'last' || text === 'next') return { kind: text };
    const interval = parseDuration(text);
    if (interval === undefined) throw invalid(`'${text}' is none of first, last, next or an interval such as 1h`);
    return { kind: 'timestamp', ms: Math.max(0, now - interval) };
  }
  const offset = value.type === 'float' || value.type === 'double' ? undefined : integer(value);
  if (offset === undefined) throw invalid(`a ${value.type} is not an offset`);
  if (offset < 0 || !Number.isSafeInteger(offset)) throw invalid(`offset ${offset} out of range`);
  return { kind: 'offset', offset };
}

/** What basic.consume on a stream must carry; returns where the consumer starts. */
export function checkStreamConsume(queue: string, request: { noAck: boolean; arguments: FieldTable; consumerPrefetch: number; channelPrefetch: number }, now: number): StreamOffsetSpec {
  const method = 'basic.consume';
  if (request.channelPrefetch > 0) throw amqpRefusal(ReplyCodes.preconditionFailed, `global qos is not supported for ${rs(queue)} of queue type stream`, method);
  if (request.consumerPrefetch === 0) throw amqpRefusal(ReplyCodes.preconditionFailed, `consumer prefetch count is not set for stream ${rs(queue)}`, method);
  if (request.noAck) throw amqpRefusal(ReplyCodes.notImplemented, `automatic acknowledgement not supported by stream ${rs(queue)}`, method);
  const others = [...request.arguments.keys()].filter((key) => key.startsWith('x-') && key !== 'x-stream-offset');
  if (others.length > 0) throw amqpRefusal(ReplyCodes.notImplemented, `consumer arguments (${others.join(', ')}) are not implemented yet by this server`, method);
  return parseStreamOffset(queue, request.arguments.get('x-stream-offset'), now);
}
