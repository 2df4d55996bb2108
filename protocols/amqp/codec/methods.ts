// The one method encoder and decoder, driven by spec.ts. A method frame's payload is
// class-id (short), method-id (short), then the arguments in order. Consecutive bit arguments
// share octets, the first bit in the least significant position, eight to an octet; any other
// argument ends the run (spec 4.2.5.2), so queue.declare's passive, durable, exclusive,
// auto-delete and no-wait are one octet.
import { Reader, Writer } from './bytes.js';
import { AmqpCodecError } from './errors.js';
import { type FieldTable, readFieldTable, writeFieldTable } from './field-table.js';
import { ReplyCodes } from './reply-codes.js';
import type { METHODS} from './spec.js';
import { type ArgumentDef, type Domain, METHOD_BY_ID, METHOD_BY_NAME, type MethodDef, type MethodName, methodKey } from './spec.js';

/** The TypeScript value of each wire type. 64-bit integers are bigint so none is rounded. */
export interface DomainValue {
  bit: boolean;
  octet: number;
  short: number;
  long: number;
  longlong: bigint;
  timestamp: bigint;
  shortstr: string;
  longstr: Uint8Array;
  table: FieldTable;
}

type ArgsOfDef<D> = D extends { readonly args: infer A extends readonly ArgumentDef[] }
  ? { -readonly [E in A[number] as E[0]]: DomainValue[E[1]] }
  : never;

/** The arguments of a method, typed from the table: ArgsOf<'basic.publish'>['routingKey'] is string. */
export type ArgsOf<N extends MethodName> = ArgsOfDef<Extract<(typeof METHODS)[number], { name: N }>>;

/** A decoded method: its name and arguments; the name narrows the arguments. */
export type AmqpMethod = { [N in MethodName]: { name: N; args: ArgsOf<N> } }[MethodName];

/** Builds a method value with its arguments checked by the compiler. */
export function amqpMethod<N extends MethodName>(name: N, args: ArgsOf<N>): Extract<AmqpMethod, { name: N }> {
  return { name, args } as unknown as Extract<AmqpMethod, { name: N }>;
}

/** Writes class id, method id and arguments. Wrong values are the broker's bug: RangeError / TypeError. */
export function writeMethod(writer: Writer, method: AmqpMethod): void {
  const def = METHOD_BY_NAME.get(method.name);
  if (def === undefined) throw new TypeError(`unknown AMQP method ${String(method.name)}`);
  writer.u16(def.classId);
  writer.u16(def.methodId);
  const args = method.args as Record<string, unknown>;
  let bits = 0;
  let bitCount = 0;
  const flushBits = () => {
    if (bitCount > 0) writer.u8(bits);
    bits = 0;
    bitCount = 0;
  };
  for (const [name, domain] of def.args) {
    const value = args[name];
    const what = `${def.name} ${name}`;
    if (domain === 'bit') {
      if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean`);
      if (bitCount === 8) flushBits();
      if (value) bits |= 1 << bitCount;
      bitCount += 1;
      continue;
    }
    flushBits();
    writeArgument(writer, domain, value, what);
  }
  flushBits();
}

export function encodeMethodPayload(method: AmqpMethod): Buffer {
  const writer = new Writer(64);
  writeMethod(writer, method);
  return writer.finish();
}

export function writeArgument(writer: Writer, domain: Exclude<Domain, 'bit'>, value: unknown, what: string): void {
  switch (domain) {
    case 'octet':
      return writer.u8(value as number, what);
    case 'short':
      return writer.u16(value as number, what);
    case 'long':
      return writer.u32(value as number, what);
    case 'longlong':
    case 'timestamp':
      return writer.u64(value as bigint, what);
    case 'shortstr':
      return writer.shortstr(value as string, what);
    case 'longstr':
      return writer.longstr(value as Uint8Array, what);
    case 'table':
      if (!(value instanceof Map)) throw new TypeError(`${what} must be a field table (a Map)`);
      return writeFieldTable(writer, value as FieldTable);
  }
}

/**
 * Decodes a method frame's payload. Refusals are AmqpCodecError: an unknown class or method is
 * 540 not-implemented; a payload too short for the arguments, or with bytes left over, is 501
 * frame-error (RabbitMQ refuses a method frame it cannot decode exactly with frame_error); an
 * illegal value inside (a bad field-table tag, a short string that is not UTF-8) is 502
 * syntax-error. Errors carry the class and method ids once they are known.
 */
export function decodeMethodPayload(payload: Uint8Array): AmqpMethod {
  const reader = new Reader(payload);
  const classId = reader.u16('class id');
  const methodId = reader.u16('method id');
  const def = METHOD_BY_ID.get(methodKey(classId, methodId));
  if (def === undefined) throw new AmqpCodecError(ReplyCodes.notImplemented, `unknown method ${classId}.${methodId}`, { classId, methodId });
  try {
    const args = readArguments(reader, def);
    if (reader.remaining !== 0) throw new AmqpCodecError(ReplyCodes.frameError, `${reader.remaining} bytes after the last argument`);
    return { name: def.name, args } as AmqpMethod;
  } catch (error) {
    if (error instanceof AmqpCodecError) {
      error.classId = classId;
      error.methodId = methodId;
      error.message = `${def.name}: ${error.message}`;
    }
    throw error;
  }
}

function readArguments(reader: Reader, def: MethodDef): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  let bits = 0;
  let bitIndex = 8;
  for (const [name, domain] of def.args) {
    if (domain === 'bit') {
      if (bitIndex === 8) {
        bits = reader.u8(`${name} (bit octet)`);
        bitIndex = 0;
      }
      args[name] = (bits & (1 << bitIndex)) !== 0;
      bitIndex += 1;
      continue;
    }
    bitIndex = 8;
    args[name] = readArgument(reader, domain, name);
  }
  return args;
}

export function readArgument(reader: Reader, domain: Exclude<Domain, 'bit'>, what: string): unknown {
  switch (domain) {
    case 'octet':
      return reader.u8(what);
    case 'short':
      return reader.u16(what);
    case 'long':
      return reader.u32(what);
    case 'longlong':
    case 'timestamp':
      return reader.u64(what);
    case 'shortstr':
      return reader.shortstr(what);
    case 'longstr':
      return reader.longstr(what);
    case 'table':
      return readFieldTable(reader);
  }
}

export function methodIds(name: MethodName): { classId: number; methodId: number } {
  const def = METHOD_BY_NAME.get(name) as MethodDef;
  return { classId: def.classId, methodId: def.methodId };
}
