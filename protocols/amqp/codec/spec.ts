// Every class and method of AMQP 0-9-1 with RabbitMQ's extensions, as data. Written by hand from
// the machine-readable definition (RabbitMQ's rabbitmq-codegen amqp-rabbitmq-0.9.1.json and
// amqp0-9-1.extended.xml) and the spec PDF; one generic encoder and decoder (methods.ts) is
// driven by this table, and the TypeScript types of each method's arguments are derived from it,
// so a method added here is encoded, decoded, typed and round-trip tested with no other change.
//
// Argument names are the definition's names in camelCase. Where 0-9-1 renamed an obsolete
// argument to reserved-N, we keep the name RabbitMQ's definition (and amqplib, pika) still use
// (ticket, outOfBand, channelId, knownHosts, capabilities, insist, clusterId): they say what
// the bytes once were, and peers still send them (always 0 or empty).
//
// RabbitMQ extensions (not in the 0-9-1 PDF): connection.blocked / unblocked (10.60, 10.61),
// connection.update-secret / -ok (10.70, 10.71), exchange.bind / unbind (40.30, 40.40; unbind-ok
// is 40.51, not 40.41, as RabbitMQ ships it), basic.nack (60.120), the confirm class (85),
// basic.ack and basic.nack sent by the server (publisher confirms), basic.cancel sent by the
// server (consumer cancel notification). The access class (30) was dropped from 0-9-1 but
// RabbitMQ still parses access.request from old clients, so it is here too.

/** Argument domains, reduced to their wire types (spec 4.2.5 / 4.2.6). */
export type Domain = 'bit' | 'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'timestamp' | 'table';

/** Who may receive the method: the server, the client, or both. */
export type AcceptedBy = 'server' | 'client' | 'both';

export type ArgumentDef = readonly [name: string, domain: Domain];

export interface MethodDef {
  readonly classId: number;
  readonly methodId: number;
  /** class.method, e.g. basic.publish. */
  readonly name: string;
  readonly args: readonly ArgumentDef[];
  readonly acceptedBy: AcceptedBy;
  /** A synchronous request: the sender waits for one of `responses` (unless no-wait is set). */
  readonly synchronous: boolean;
  readonly responses: readonly string[];
  /** Followed by a content header and body frames. */
  readonly content: boolean;
}

export interface ClassDef {
  readonly id: number;
  readonly name: string;
  /** Content header properties, in flag order (the first is bit 15 of the first flag word). */
  readonly properties: readonly ArgumentDef[];
}

function method<const N extends string, const A extends readonly ArgumentDef[]>(
  classId: number,
  methodId: number,
  name: N,
  args: A,
  acceptedBy: AcceptedBy,
  options: { responses?: readonly string[]; content?: boolean } = {},
) {
  const responses = options.responses ?? [];
  return { classId, methodId, name, args, acceptedBy, synchronous: responses.length > 0, responses, content: options.content ?? false } as const;
}

const closeArgs = [['replyCode', 'short'], ['replyText', 'shortstr'], ['classId', 'short'], ['methodId', 'short']] as const;

export const CLASSES = [
  { id: 10, name: 'connection', properties: [] },
  { id: 20, name: 'channel', properties: [] },
  { id: 30, name: 'access', properties: [] },
  { id: 40, name: 'exchange', properties: [] },
  { id: 50, name: 'queue', properties: [] },
  {
    id: 60,
    name: 'basic',
    properties: [
      ['contentType', 'shortstr'],
      ['contentEncoding', 'shortstr'],
      ['headers', 'table'],
      ['deliveryMode', 'octet'],
      ['priority', 'octet'],
      ['correlationId', 'shortstr'],
      ['replyTo', 'shortstr'],
      ['expiration', 'shortstr'],
      ['messageId', 'shortstr'],
      ['timestamp', 'timestamp'],
      ['type', 'shortstr'],
      ['userId', 'shortstr'],
      ['appId', 'shortstr'],
      ['clusterId', 'shortstr'],
    ],
  },
  { id: 85, name: 'confirm', properties: [] },
  { id: 90, name: 'tx', properties: [] },
] as const satisfies readonly ClassDef[];

export const METHODS = [
  // connection (10)
  method(10, 10, 'connection.start', [['versionMajor', 'octet'], ['versionMinor', 'octet'], ['serverProperties', 'table'], ['mechanisms', 'longstr'], ['locales', 'longstr']], 'client', { responses: ['connection.start-ok'] }),
  method(10, 11, 'connection.start-ok', [['clientProperties', 'table'], ['mechanism', 'shortstr'], ['response', 'longstr'], ['locale', 'shortstr']], 'server'),
  method(10, 20, 'connection.secure', [['challenge', 'longstr']], 'client', { responses: ['connection.secure-ok'] }),
  method(10, 21, 'connection.secure-ok', [['response', 'longstr']], 'server'),
  method(10, 30, 'connection.tune', [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']], 'client', { responses: ['connection.tune-ok'] }),
  method(10, 31, 'connection.tune-ok', [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']], 'server'),
  method(10, 40, 'connection.open', [['virtualHost', 'shortstr'], ['capabilities', 'shortstr'], ['insist', 'bit']], 'server', { responses: ['connection.open-ok'] }),
  method(10, 41, 'connection.open-ok', [['knownHosts', 'shortstr']], 'client'),
  method(10, 50, 'connection.close', closeArgs, 'both', { responses: ['connection.close-ok'] }),
  method(10, 51, 'connection.close-ok', [], 'both'),
  method(10, 60, 'connection.blocked', [['reason', 'shortstr']], 'both'),
  method(10, 61, 'connection.unblocked', [], 'both'),
  method(10, 70, 'connection.update-secret', [['newSecret', 'longstr'], ['reason', 'shortstr']], 'server', { responses: ['connection.update-secret-ok'] }),
  method(10, 71, 'connection.update-secret-ok', [], 'client'),
  // channel (20)
  method(20, 10, 'channel.open', [['outOfBand', 'shortstr']], 'server', { responses: ['channel.open-ok'] }),
  method(20, 11, 'channel.open-ok', [['channelId', 'longstr']], 'client'),
  method(20, 20, 'channel.flow', [['active', 'bit']], 'both', { responses: ['channel.flow-ok'] }),
  method(20, 21, 'channel.flow-ok', [['active', 'bit']], 'both'),
  method(20, 40, 'channel.close', closeArgs, 'both', { responses: ['channel.close-ok'] }),
  method(20, 41, 'channel.close-ok', [], 'both'),
  // access (30): obsolete in 0-9-1, still parsed by RabbitMQ
  method(30, 10, 'access.request', [['realm', 'shortstr'], ['exclusive', 'bit'], ['passive', 'bit'], ['active', 'bit'], ['write', 'bit'], ['read', 'bit']], 'server', { responses: ['access.request-ok'] }),
  method(30, 11, 'access.request-ok', [['ticket', 'short']], 'client'),
  // exchange (40)
  method(40, 10, 'exchange.declare', [['ticket', 'short'], ['exchange', 'shortstr'], ['type', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['autoDelete', 'bit'], ['internal', 'bit'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['exchange.declare-ok'] }),
  method(40, 11, 'exchange.declare-ok', [], 'client'),
  method(40, 20, 'exchange.delete', [['ticket', 'short'], ['exchange', 'shortstr'], ['ifUnused', 'bit'], ['noWait', 'bit']], 'server', { responses: ['exchange.delete-ok'] }),
  method(40, 21, 'exchange.delete-ok', [], 'client'),
  method(40, 30, 'exchange.bind', [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['exchange.bind-ok'] }),
  method(40, 31, 'exchange.bind-ok', [], 'client'),
  method(40, 40, 'exchange.unbind', [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['exchange.unbind-ok'] }),
  method(40, 51, 'exchange.unbind-ok', [], 'client'),
  // queue (50)
  method(50, 10, 'queue.declare', [['ticket', 'short'], ['queue', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['exclusive', 'bit'], ['autoDelete', 'bit'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['queue.declare-ok'] }),
  method(50, 11, 'queue.declare-ok', [['queue', 'shortstr'], ['messageCount', 'long'], ['consumerCount', 'long']], 'client'),
  method(50, 20, 'queue.bind', [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['queue.bind-ok'] }),
  method(50, 21, 'queue.bind-ok', [], 'client'),
  method(50, 30, 'queue.purge', [['ticket', 'short'], ['queue', 'shortstr'], ['noWait', 'bit']], 'server', { responses: ['queue.purge-ok'] }),
  method(50, 31, 'queue.purge-ok', [['messageCount', 'long']], 'client'),
  method(50, 40, 'queue.delete', [['ticket', 'short'], ['queue', 'shortstr'], ['ifUnused', 'bit'], ['ifEmpty', 'bit'], ['noWait', 'bit']], 'server', { responses: ['queue.delete-ok'] }),
  method(50, 41, 'queue.delete-ok', [['messageCount', 'long']], 'client'),
  // queue.unbind has no no-wait flag: it is always synchronous.
  method(50, 50, 'queue.unbind', [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['arguments', 'table']], 'server', { responses: ['queue.unbind-ok'] }),
  method(50, 51, 'queue.unbind-ok', [], 'client'),
  // basic (60)
  method(60, 10, 'basic.qos', [['prefetchSize', 'long'], ['prefetchCount', 'short'], ['global', 'bit']], 'server', { responses: ['basic.qos-ok'] }),
  method(60, 11, 'basic.qos-ok', [], 'client'),
  method(60, 20, 'basic.consume', [['ticket', 'short'], ['queue', 'shortstr'], ['consumerTag', 'shortstr'], ['noLocal', 'bit'], ['noAck', 'bit'], ['exclusive', 'bit'], ['noWait', 'bit'], ['arguments', 'table']], 'server', { responses: ['basic.consume-ok'] }),
  method(60, 21, 'basic.consume-ok', [['consumerTag', 'shortstr']], 'client'),
  method(60, 30, 'basic.cancel', [['consumerTag', 'shortstr'], ['noWait', 'bit']], 'both', { responses: ['basic.cancel-ok'] }),
  method(60, 31, 'basic.cancel-ok', [['consumerTag', 'shortstr']], 'both'),
  method(60, 40, 'basic.publish', [['ticket', 'short'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['mandatory', 'bit'], ['immediate', 'bit']], 'server', { content: true }),
  method(60, 50, 'basic.return', [['replyCode', 'short'], ['replyText', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], 'client', { content: true }),
  method(60, 60, 'basic.deliver', [['consumerTag', 'shortstr'], ['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], 'client', { content: true }),
  method(60, 70, 'basic.get', [['ticket', 'short'], ['queue', 'shortstr'], ['noAck', 'bit']], 'server', { responses: ['basic.get-ok', 'basic.get-empty'] }),
  method(60, 71, 'basic.get-ok', [['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['messageCount', 'long']], 'client', { content: true }),
  method(60, 72, 'basic.get-empty', [['clusterId', 'shortstr']], 'client'),
  method(60, 80, 'basic.ack', [['deliveryTag', 'longlong'], ['multiple', 'bit']], 'both'),
  method(60, 90, 'basic.reject', [['deliveryTag', 'longlong'], ['requeue', 'bit']], 'server'),
  method(60, 100, 'basic.recover-async', [['requeue', 'bit']], 'server'),
  method(60, 110, 'basic.recover', [['requeue', 'bit']], 'server', { responses: ['basic.recover-ok'] }),
  method(60, 111, 'basic.recover-ok', [], 'client'),
  method(60, 120, 'basic.nack', [['deliveryTag', 'longlong'], ['multiple', 'bit'], ['requeue', 'bit']], 'both'),
  // confirm (85): RabbitMQ's publisher confirms
  method(85, 10, 'confirm.select', [['noWait', 'bit']], 'server', { responses: ['confirm.select-ok'] }),
  method(85, 11, 'confirm.select-ok', [], 'client'),
  // tx (90)
  method(90, 10, 'tx.select', [], 'server', { responses: ['tx.select-ok'] }),
  method(90, 11, 'tx.select-ok', [], 'client'),
  method(90, 20, 'tx.commit', [], 'server', { responses: ['tx.commit-ok'] }),
  method(90, 21, 'tx.commit-ok', [], 'client'),
  method(90, 30, 'tx.rollback', [], 'server', { responses: ['tx.rollback-ok'] }),
  method(90, 31, 'tx.rollback-ok', [], 'client'),
] as const satisfies readonly MethodDef[];

export type MethodName = (typeof METHODS)[number]['name'];

export const METHOD_BY_NAME: ReadonlyMap<string, MethodDef> = new Map(METHODS.map((def) => [def.name, def]));
export const METHOD_BY_ID: ReadonlyMap<number, MethodDef> = new Map(METHODS.map((def) => [methodKey(def.classId, def.methodId), def]));
export const CLASS_BY_ID: ReadonlyMap<number, ClassDef> = new Map(CLASSES.map((def) => [def.id, def]));

export function methodKey(classId: number, methodId: number): number {
  return classId * 0x10000 + methodId;
}

export function methodDef(name: MethodName): MethodDef {
  return METHOD_BY_NAME.get(name) as MethodDef;
}
