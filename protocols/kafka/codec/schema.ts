// Messages as data, one generic codec. Each Kafka request, response and header is described by a
// MessageSpec (fields with a type, the versions they exist in, the versions they may be null in,
// and for flexible versions an optional tag), written in this project's own small vocabulary from
// Kafka's published message definitions and protocol guide. encodeStruct/decodeStruct walk a spec
// for one version, so every version rule lives in one place instead of in per-message code:
//
// - a field outside its versions is not on the wire; decoding gives its default, encoding ignores
//   it (a server fills one response object and encodes it at whatever version was asked);
// - in a message's flexible versions strings, bytes, arrays and records use the compact forms
//   (unsigned varint of length + 1) and every struct ends with a tagged-field section; a field
//   tagged in this version is written there, only when it differs from its default, as Kafka does;
//   unknown tags are skipped (that is what tags are for: old readers ignore new fields).
import { isDeepStrictEqual } from 'node:util';
import { KafkaErrors } from './errors.js';
import type { Reader, Writer } from './primitives.js';
import { Writer as BufferWriter, Reader as BufferReader } from './primitives.js';

/** Versions as Kafka writes them: "3+", "0-7", "5" or "none", parsed once into a closed range. */
export interface VersionRange { readonly min: number; readonly max: number }
export const NO_VERSIONS: VersionRange = { min: 1, max: 0 };

export function versions(text: string): VersionRange {
  if (text === 'none') return NO_VERSIONS;
  const plus = /^(\d+)\+$/.exec(text);
  if (plus) return { min: Number(plus[1]), max: Number.MAX_SAFE_INTEGER };
  const range = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!range) throw new Error(`bad version range ${text}`);
  return { min: Number(range[1]), max: Number(range[2] ?? range[1]) };
}

export function inRange(range: VersionRange, version: number): boolean {
  return version >= range.min && version <= range.max;
}

export type PrimitiveType = 'bool' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'float64' | 'string' | 'bytes' | 'uuid' | 'records';

export interface FieldSpec {
  readonly name: string;
  /** A primitive, 'struct' (fields) or 'array' (of `items`, or of structs made of `fields`). */
  readonly type: PrimitiveType | 'struct' | 'array';
  readonly versions: VersionRange;
  readonly nullable: VersionRange;
  readonly tag?: number;
  readonly tagged: VersionRange;
  readonly items?: PrimitiveType;
  readonly fields?: readonly FieldSpec[];
  readonly default?: KafkaValue;
  /** False for the one field Kafka keeps in the classic encoding inside a flexible header (ClientId). */
  readonly compactInFlexible: boolean;
}

export interface MessageSpec {
  readonly name: string;
  readonly validVersions: VersionRange;
  readonly flexibleVersions: VersionRange;
  readonly fields: readonly FieldSpec[];
}

export type KafkaValue = null | boolean | number | bigint | string | Buffer | KafkaValue[] | KafkaStruct;
export interface KafkaStruct { [field: string]: KafkaValue }

// The vocabulary the message tables are written in.
interface FieldOptions { nullable?: string; tag?: number; tagged?: string; default?: KafkaValue; classicInFlexible?: boolean }

function field(name: string, type: FieldSpec['type'], versionText: string, options: FieldOptions, extra: Partial<FieldSpec> = {}): FieldSpec {
  if ((options.tag === undefined) !== (options.tagged === undefined)) throw new Error(`${name}: tag and tagged go together`);
  return {
    name, type, versions: versions(versionText),
    nullable: versions(options.nullable ?? 'none'),
    tagged: versions(options.tagged ?? 'none'),
    compactInFlexible: options.classicInFlexible !== true,
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    ...(options.default === undefined ? {} : { default: options.default }),
    ...extra,
  };
}

export const f = {
  bool: (name: string, v: string, o: FieldOptions = {}) => field(name, 'bool', v, o),
  int8: (name: string, v: string, o: FieldOptions = {}) => field(name, 'int8', v, o),
  int16: (name: string, v: string, o: FieldOptions = {}) => field(name, 'int16', v, o),
  int32: (name: string, v: string, o: FieldOptions = {}) => field(name, 'int32', v, o),
  int64: (name: string, v: string, o: FieldOptions = {}) => field(name, 'int64', v, o),
  float64: (name: string, v: string, o: FieldOptions = {}) => field(name, 'float64', v, o),
  string: (name: string, v: string, o: FieldOptions = {}) => field(name, 'string', v, o),
  bytes: (name: string, v: string, o: FieldOptions = {}) => field(name, 'bytes', v, o),
  uuid: (name: string, v: string, o: FieldOptions = {}) => field(name, 'uuid', v, o),
  records: (name: string, v: string, o: FieldOptions = {}) => field(name, 'records', v, o),
  struct: (name: string, v: string, fields: FieldSpec[], o: FieldOptions = {}) => field(name, 'struct', v, o, { fields }),
  array: (name: string, v: string, fields: FieldSpec[], o: FieldOptions = {}) => field(name, 'array', v, o, { fields }),
  arrayOf: (name: string, items: PrimitiveType, v: string, o: FieldOptions = {}) => field(name, 'array', v, o, { items }),
};

export function message(name: string, validVersions: string, flexibleVersions: string, fields: FieldSpec[]): MessageSpec {
  return { name, validVersions: versions(validVersions), flexibleVersions: versions(flexibleVersions), fields };
}

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

function primitiveDefault(type: PrimitiveType): KafkaValue {
  switch (type) {
    case 'bool': return false;
    case 'int64': return 0n;
    case 'string': return '';
    case 'bytes': return Buffer.alloc(0);
    case 'uuid': return ZERO_UUID;
    case 'records': return null;
    default: return 0;
  }
}

/** What a field is when it is not on the wire: its declared default, else its type's zero. */
export function defaultOf(spec: FieldSpec, version: number): KafkaValue {
  if (spec.default !== undefined) return spec.default;
  if (spec.type === 'array') return [];
  if (spec.type === 'struct') return defaultStruct(spec.fields ?? [], version);
  return primitiveDefault(spec.type);
}

export function defaultStruct(fields: readonly FieldSpec[], version: number): KafkaStruct {
  const out: KafkaStruct = {};
  for (const spec of fields) out[spec.name] = defaultOf(spec, version);
  return out;
}

function isDefault(spec: FieldSpec, value: KafkaValue, version: number): boolean {
  const d = defaultOf(spec, version);
  if (value === d) return true;
  if (Array.isArray(value)) return Array.isArray(d) && value.length === 0 && d.length === 0;
  if (Buffer.isBuffer(value)) return Buffer.isBuffer(d) && value.equals(d);
  // A tagged struct is left out when every field has its default, as Kafka does.
  if (spec.type === 'struct') return isDeepStrictEqual(value, d);
  return false;
}

interface Context { version: number; flexible: boolean; path: string }

// ---------------------------------------------------------------------------------------------
// Encoding

function encodePrimitive(type: PrimitiveType, value: KafkaValue, w: Writer, compact: boolean, nullable: boolean, what: string): void {
  switch (type) {
    case 'bool': return w.bool(value as boolean, what);
    case 'int8': return w.int8(value as number, what);
    case 'int16': return w.int16(value as number, what);
    case 'uint16': return w.uint16(value as number, what);
    case 'int32': return w.int32(value as number, what);
    case 'uint32': return w.uint32(value as number, what);
    case 'int64': return w.int64(value as bigint, what);
    case 'float64': return w.float64(value as number, what);
    case 'uuid': return w.uuid(value as string, what);
    case 'string': return compact ? w.compactString(value as string | null, what, nullable) : w.string(value as string | null, what, nullable);
    case 'bytes':
    case 'records': return compact ? w.compactBytes(value as Buffer | null, what, nullable) : w.bytes(value as Buffer | null, what, nullable);
  }
}

function encodeField(spec: FieldSpec, value: KafkaValue, w: Writer, ctx: Context): void {
  const what = `${ctx.path}.${spec.name}`;
  const nullable = inRange(spec.nullable, ctx.version);
  const compact = ctx.flexible && spec.compactInFlexible;
  if (spec.type === 'struct') {
    if (value === null) {
      // A nullable struct is written as an int8 presence marker (-1 null, 1 present).
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null is not allowed in this version');
      w.int8(-1);
      return;
    }
    if (nullable) w.int8(1);
    encodeStructBody(spec.fields ?? [], value as KafkaStruct, w, { ...ctx, path: what });
    return;
  }
  if (spec.type === 'array') {
    if (value !== null && !Array.isArray(value)) throw KafkaErrors.encode.create({}, what, 'not an array');
    w.arrayLength(value === null ? null : value.length, what, compact, nullable);
    if (value === null) return;
    for (const item of value) {
      if (spec.items) encodePrimitive(spec.items, item, w, compact, false, what);
      else encodeStructBody(spec.fields ?? [], item as KafkaStruct, w, { ...ctx, path: what });
    }
    return;
  }
  encodePrimitive(spec.type, value, w, compact, nullable, what);
}

function valueOf(struct: KafkaStruct, spec: FieldSpec, ctx: Context): KafkaValue {
  if (typeof struct !== 'object' || struct === null || Array.isArray(struct)) throw KafkaErrors.encode.create({}, ctx.path, 'not a struct');
  const value = struct[spec.name];
  // A missing field encodes as its default, so callers may leave out what a version lacks.
  return value === undefined ? defaultOf(spec, ctx.version) : value;
}

function encodeStructBody(fields: readonly FieldSpec[], struct: KafkaStruct, w: Writer, ctx: Context): void {
  const tagged: FieldSpec[] = [];
  for (const spec of fields) {
    if (!inRange(spec.versions, ctx.version)) continue;
    if (ctx.flexible && spec.tag !== undefined && inRange(spec.tagged, ctx.version)) { tagged.push(spec); continue; }
    encodeField(spec, valueOf(struct, spec, ctx), w, ctx);
  }
  if (!ctx.flexible) return;
  const present = tagged
    .filter((spec) => !isDefault(spec, valueOf(struct, spec, ctx), ctx.version))
    .sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0));
  w.uvarint(present.length);
  for (const spec of present) {
    const inner = new BufferWriter(32);
    encodeField(spec, valueOf(struct, spec, ctx), inner, ctx);
    const bytes = inner.finish();
    w.uvarint(spec.tag ?? 0);
    w.uvarint(bytes.length);
    w.raw(bytes);
  }
}

export function isFlexible(spec: MessageSpec, version: number): boolean {
  return inRange(spec.flexibleVersions, version);
}

/** Writes `value` as `spec` at `version` (the body only; headers are header.ts's). */
export function encodeMessage(spec: MessageSpec, version: number, value: KafkaStruct, w: Writer): void {
  if (!inRange(spec.validVersions, version)) throw KafkaErrors.encode.create({ version }, spec.name, `version ${version} is not defined`);
  encodeStructBody(spec.fields, value, w, { version, flexible: isFlexible(spec, version), path: spec.name });
}

export function encodeMessageToBuffer(spec: MessageSpec, version: number, value: KafkaStruct): Buffer {
  const w = new BufferWriter();
  encodeMessage(spec, version, value, w);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

function decodePrimitive(type: PrimitiveType, r: Reader, compact: boolean, nullable: boolean, what: string): KafkaValue {
  switch (type) {
    case 'bool': return r.bool(what);
    case 'int8': return r.int8(what);
    case 'int16': return r.int16(what);
    case 'uint16': return r.uint16(what);
    case 'int32': return r.int32(what);
    case 'uint32': return r.uint32(what);
    case 'int64': return r.int64(what);
    case 'float64': return r.float64(what);
    case 'uuid': return r.uuid(what);
    case 'string': return compact ? r.compactString(what, nullable) : r.string(what, nullable);
    case 'bytes':
    case 'records': return compact ? r.compactBytes(what, nullable) : r.bytes(what, nullable);
  }
}

function decodeField(spec: FieldSpec, r: Reader, ctx: Context): KafkaValue {
  const what = `${ctx.path}.${spec.name}`;
  const nullable = inRange(spec.nullable, ctx.version);
  const compact = ctx.flexible && spec.compactInFlexible;
  if (spec.type === 'struct') {
    if (nullable) {
      const marker = r.int8(what);
      if (marker < 0) return null;
    }
    return decodeStructBody(spec.fields ?? [], r, { ...ctx, path: what });
  }
  if (spec.type === 'array') {
    const count = r.arrayLength(what, compact, nullable);
    if (count === null) return null;
    const out: KafkaValue[] = [];
    for (let i = 0; i < count; i++) {
      out.push(spec.items ? decodePrimitive(spec.items, r, compact, false, what) : decodeStructBody(spec.fields ?? [], r, { ...ctx, path: what }));
    }
    return out;
  }
  return decodePrimitive(spec.type, r, compact, nullable, what);
}

function decodeStructBody(fields: readonly FieldSpec[], r: Reader, ctx: Context): KafkaStruct {
  const out: KafkaStruct = {};
  const byTag = new Map<number, FieldSpec>();
  for (const spec of fields) {
    if (!inRange(spec.versions, ctx.version)) { out[spec.name] = defaultOf(spec, ctx.version); continue; }
    if (ctx.flexible && spec.tag !== undefined && inRange(spec.tagged, ctx.version)) {
      byTag.set(spec.tag, spec);
      out[spec.name] = defaultOf(spec, ctx.version);
      continue;
    }
    out[spec.name] = decodeField(spec, r, ctx);
  }
  if (!ctx.flexible) return out;
  const count = r.uvarint(`${ctx.path} tagged fields`);
  let lastTag = -1;
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    const tag = r.uvarint(`${ctx.path} tag`);
    // Kafka requires tags in strictly increasing order; this also bounds the loop by the bytes.
    if (tag <= lastTag) throw KafkaErrors.decode.create({ position: at }, ctx.path, `tag ${tag} after tag ${lastTag}`);
    lastTag = tag;
    const size = r.uvarint(`${ctx.path} tag ${tag} size`);
    const body = r.raw(size, `${ctx.path} tag ${tag}`);
    const spec = byTag.get(tag);
    if (spec === undefined) continue; // an unknown tag: a newer peer's field, skipped
    const inner = new BufferReader(body);
    out[spec.name] = decodeField(spec, inner, ctx);
    inner.expectEnd(`${ctx.path}.${spec.name} (tag ${tag})`);
  }
  return out;
}

/** Reads `spec` at `version` from `r`; fields absent in this version come back as defaults. */
export function decodeMessage(spec: MessageSpec, version: number, r: Reader): KafkaStruct {
  if (!inRange(spec.validVersions, version)) throw KafkaErrors.decode.create({ version }, spec.name, `version ${version} is not defined`);
  return decodeStructBody(spec.fields, r, { version, flexible: isFlexible(spec, version), path: spec.name });
}
