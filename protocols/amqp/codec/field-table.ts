// Field tables and field arrays (spec 4.2.5.5) with the value types RabbitMQ uses.
//
// The 0-9-1 spec's own tag list and the one RabbitMQ (and Qpid) implement disagree, and the
// clients people run (amqplib, pika, the Java and .NET clients) follow RabbitMQ, so this codec
// does too (RabbitMQ's "AMQP 0-9-1 errata", section "field table types"):
//   - 's' is a signed 16-bit integer (the spec: a short string, which no client sends);
//   - 'l' is a signed 64-bit integer (the spec: 'l' unsigned, 'L' signed);
//   - 'u' unsigned 16-bit, 'I' signed 32-bit, 'i' unsigned 32-bit as in the spec;
//   - 'x' is a byte array (a RabbitMQ addition, 32-bit length + bytes);
//   - the spec's 'U' (int16), 'L' (int64) and 's'-as-shortstr are not accepted: RabbitMQ
//     refuses them, and a tag we cannot size would leave the rest of the table undecodable.
// A tag outside the list is refused with 502 syntax-error.
//
// Values keep their wire type ({ type: 'int32', value }) so that a table read from a client and
// written back (a message's headers, a queue's arguments) is the same bytes, and 64-bit values
// are bigint so nothing is rounded. Tables are Maps: keys are data, never object properties
// (a header named __proto__ stays a header).
import { type Reader, type Writer } from './bytes.js';
import { AmqpCodecError } from './errors.js';
import { ReplyCodes } from './reply-codes.js';

export type FieldValue =
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'int8'; readonly value: number }
  | { readonly type: 'uint8'; readonly value: number }
  | { readonly type: 'int16'; readonly value: number }
  | { readonly type: 'uint16'; readonly value: number }
  | { readonly type: 'int32'; readonly value: number }
  | { readonly type: 'uint32'; readonly value: number }
  | { readonly type: 'int64'; readonly value: bigint }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'double'; readonly value: number }
  /** value / 10^scale; scale an octet, value an unsigned 32-bit integer (RabbitMQ's layout). */
  | { readonly type: 'decimal'; readonly scale: number; readonly value: number }
  /** 'S': a long string; raw bytes, since RabbitMQ does not require them to be UTF-8. */
  | { readonly type: 'longstr'; readonly value: Uint8Array }
  | { readonly type: 'array'; readonly value: readonly FieldValue[] }
  /** Seconds since the epoch, unsigned 64-bit. */
  | { readonly type: 'timestamp'; readonly value: bigint }
  | { readonly type: 'table'; readonly value: FieldTable }
  | { readonly type: 'void' }
  | { readonly type: 'bytes'; readonly value: Uint8Array };

export type FieldTable = ReadonlyMap<string, FieldValue>;
export type FieldType = FieldValue['type'];

/** Wire tag of each value type. */
export const FIELD_TAGS = {
  bool: 't',
  int8: 'b',
  uint8: 'B',
  int16: 's',
  uint16: 'u',
  int32: 'I',
  uint32: 'i',
  int64: 'l',
  float: 'f',
  double: 'd',
  decimal: 'D',
  longstr: 'S',
  array: 'A',
  timestamp: 'T',
  table: 'F',
  void: 'V',
  bytes: 'x',
} as const satisfies Record<FieldType, string>;

const TYPE_OF_TAG = new Map<number, FieldType>(Object.entries(FIELD_TAGS).map(([type, tag]) => [tag.charCodeAt(0), type as FieldType]));

/**
 * How deep tables and arrays may nest. Decoding recurses; a 128 KiB frame of nested 'F' tags
 * would otherwise go about 25 000 levels deep and overflow the stack, an untyped RangeError.
 * RabbitMQ's own arguments and headers nest two or three levels.
 */
export const MAX_FIELD_DEPTH = 64;

/** A table from a plain object, for building the broker's own tables (server-properties). */
export function fieldTable(entries: Record<string, FieldValue>): FieldTable {
  return new Map(Object.entries(entries));
}

/** A long string value from text. */
export function longstrValue(text: string): FieldValue {
  return { type: 'longstr', value: new TextEncoder().encode(text) };
}

export function writeFieldTable(writer: Writer, table: FieldTable, depth = 0): void {
  if (depth > MAX_FIELD_DEPTH) throw new RangeError(`field table nests deeper than ${MAX_FIELD_DEPTH} levels`);
  const lengthAt = writer.reserveU32();
  const start = writer.length;
  for (const [key, value] of table) {
    writer.shortstr(key, 'field table key');
    writeFieldValue(writer, value, depth);
  }
  writer.patchU32(lengthAt, writer.length - start);
}

export function writeFieldArray(writer: Writer, values: readonly FieldValue[], depth = 0): void {
  if (depth > MAX_FIELD_DEPTH) throw new RangeError(`field array nests deeper than ${MAX_FIELD_DEPTH} levels`);
  const lengthAt = writer.reserveU32();
  const start = writer.length;
  for (const value of values) writeFieldValue(writer, value, depth);
  writer.patchU32(lengthAt, writer.length - start);
}

export function writeFieldValue(writer: Writer, field: FieldValue, depth: number): void {
  const tag = FIELD_TAGS[field.type];
  if (tag === undefined) throw new TypeError(`unknown field value type ${String((field as { type: unknown }).type)}`);
  writer.u8(tag.charCodeAt(0));
  switch (field.type) {
    case 'bool':
      writer.u8(field.value ? 1 : 0);
      return;
    case 'int8':
      return writer.i8(field.value);
    case 'uint8':
      return writer.u8(field.value);
    case 'int16':
      return writer.i16(field.value);
    case 'uint16':
      return writer.u16(field.value);
    case 'int32':
      return writer.i32(field.value);
    case 'uint32':
      return writer.u32(field.value);
    case 'int64':
      return writer.i64(field.value);
    case 'float':
      return writer.f32(field.value);
    case 'double':
      return writer.f64(field.value);
    case 'decimal':
      writer.u8(field.scale, 'decimal scale');
      return writer.u32(field.value, 'decimal value');
    case 'longstr':
      return writer.longstr(field.value);
    case 'array':
      return writeFieldArray(writer, field.value, depth + 1);
    case 'timestamp':
      return writer.u64(field.value, 'timestamp');
    case 'table':
      return writeFieldTable(writer, field.value, depth + 1);
    case 'void':
      return;
    case 'bytes':
      return writer.longstr(field.value, 'byte array');
  }
}

export function readFieldTable(reader: Reader, depth = 0): FieldTable {
  if (depth > MAX_FIELD_DEPTH) throw new AmqpCodecError(ReplyCodes.syntaxError, `field table nests deeper than ${MAX_FIELD_DEPTH} levels`);
  const length = reader.u32('field table length');
  const inner = reader.sub(length, 'field table');
  const table = new Map<string, FieldValue>();
  while (inner.remaining > 0) {
    const key = inner.shortstr('field table key');
    table.set(key, readFieldValue(inner, depth));
  }
  return table;
}

export function readFieldArray(reader: Reader, depth = 0): FieldValue[] {
  if (depth > MAX_FIELD_DEPTH) throw new AmqpCodecError(ReplyCodes.syntaxError, `field array nests deeper than ${MAX_FIELD_DEPTH} levels`);
  const length = reader.u32('field array length');
  const inner = reader.sub(length, 'field array');
  const values: FieldValue[] = [];
  while (inner.remaining > 0) values.push(readFieldValue(inner, depth));
  return values;
}

export function readFieldValue(reader: Reader, depth: number): FieldValue {
  const tag = reader.u8('field value tag');
  const type = TYPE_OF_TAG.get(tag);
  if (type === undefined) {
    const shown = tag >= 0x20 && tag < 0x7f ? `'${String.fromCharCode(tag)}'` : `0x${tag.toString(16).padStart(2, '0')}`;
    throw new AmqpCodecError(ReplyCodes.syntaxError, `unknown field value type ${shown} in a field table or array`);
  }
  switch (type) {
    case 'bool':
      // RabbitMQ reads any non-zero octet as true.
      return { type, value: reader.u8('bool') !== 0 };
    case 'int8':
      return { type, value: reader.i8() };
    case 'uint8':
      return { type, value: reader.u8() };
    case 'int16':
      return { type, value: reader.i16() };
    case 'uint16':
      return { type, value: reader.u16() };
    case 'int32':
      return { type, value: reader.i32() };
    case 'uint32':
      return { type, value: reader.u32() };
    case 'int64':
      return { type, value: reader.i64() };
    case 'float':
      return { type, value: reader.f32() };
    case 'double':
      return { type, value: reader.f64() };
    case 'decimal': {
      const scale = reader.u8('decimal scale');
      return { type, scale, value: reader.u32('decimal value') };
    }
    case 'longstr':
      return { type, value: reader.longstr('long string value') };
    case 'array':
      return { type, value: readFieldArray(reader, depth + 1) };
    case 'timestamp':
      return { type, value: reader.u64('timestamp') };
    case 'table':
      return { type, value: readFieldTable(reader, depth + 1) };
    case 'void':
      return { type };
    case 'bytes':
      return { type, value: reader.longstr('byte array') };
  }
}
