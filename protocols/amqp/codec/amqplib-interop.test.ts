// Interoperability with amqplib, the Node client the AMQP front end will be tested with: its own
// method and content-header codec (lib/defs.js, generated from RabbitMQ's definition) is an
// independent implementation, so agreeing with it both ways checks the table and the encoders
// against what a real client sends and expects, not against our own reading of the spec.
// amqplib's field tables decode to plain values (numbers lose their wire type), so methods with
// a table are compared by value; the rest must be byte-identical.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeContentHeaderPayload, encodeContentHeaderPayload, encodeMethodFrame } from './content.js';
import { type FieldTable, type FieldValue } from './field-table.js';
import { FrameSplitter } from './frames.js';
import { type AmqpMethod, decodeMethodPayload } from './methods.js';
import { METHODS } from './spec.js';

const require = createRequire(import.meta.url);
// lib/defs.js is not in amqplib's exports map: load it by path.
const defs = require(join(dirname(require.resolve('amqplib')), 'lib', 'defs.js')) as {
  info(id: number): { args: { name: string; type: string }[] } | undefined;
  decode(id: number, args: Buffer): Record<string, unknown>;
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(classId: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
};

const bare = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

// Values amqplib can carry without guessing: it encodes a JS number by its magnitude, so
// integral doubles and 64-bit values near the limits would come back as other types.
const valueArb: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.string({ maxLength: 8 }).map((text) => ({ type: 'longstr', value: new TextEncoder().encode(text) }) as const),
  fc.boolean().map((value) => ({ type: 'bool', value }) as const),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ type: 'int32', value }) as const),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map((value) => ({ type: 'int64', value: BigInt(value) }) as const),
  fc.integer({ min: -128, max: 127 }).map((value) => ({ type: 'int8', value }) as const),
  fc.integer({ min: -32768, max: 32767 }).map((value) => ({ type: 'int16', value }) as const),
  fc.double({ noNaN: true, min: -1e12, max: 1e12 }).map((value) => ({ type: 'double', value }) as const),
  fc.bigInt({ min: 0n, max: 2n ** 40n }).map((value) => ({ type: 'timestamp', value }) as const),
  fc.constant({ type: 'void' } as const),
  fc.uint8Array({ maxLength: 5 }).map((value) => ({ type: 'bytes', value }) as const),
);
const tableArb: fc.Arbitrary<FieldTable> = fc
  // '!' marks amqplib's typed values ({'!': type, value}); keep it out of keys.
  .dictionary(fc.string({ minLength: 1, maxLength: 6 }).filter((key) => !key.includes('!')), fc.oneof(valueArb, fc.array(valueArb, { maxLength: 3 }).map((value) => ({ type: 'array', value }) as const)), { maxKeys: 4 })
  .map((entries) => new Map(Object.entries(entries)));

const domainArb: Record<string, fc.Arbitrary<unknown>> = {
  bit: fc.boolean(),
  octet: fc.integer({ min: 0, max: 255 }),
  short: fc.integer({ min: 0, max: 65535 }),
  long: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  longlong: fc.bigInt({ min: 0n, max: 2n ** 50n }),
  timestamp: fc.bigInt({ min: 0n, max: 2n ** 50n }),
  shortstr: fc.string({ maxLength: 30 }),
  longstr: fc.uint8Array({ maxLength: 30 }),
  table: tableArb,
};

/** Our value as amqplib decodes it: plain JS values, numbers for 64-bit integers. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, field]) => [key, plainField(field as FieldValue)]));
  if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1');
  return value;
}
function plainField(field: FieldValue): unknown {
  switch (field.type) {
    case 'longstr':
      return Buffer.from(field.value).toString('utf8');
    case 'array':
      return field.value.map(plainField);
    case 'void':
      return null;
    case 'bytes':
      return Buffer.from(field.value).toString('latin1');
    case 'table':
      return plain(field.value);
    case 'decimal':
      return { digits: field.value, places: field.scale };
    default:
      return typeof field.value === 'bigint' ? Number(field.value) : field.value;
  }
}
/** amqplib's decoded value with its typed wrappers ({'!': 'timestamp', value}) removed. */
function unwrap(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (Array.isArray(value)) return value.map(unwrap);
  if (value !== null && typeof value === 'object') {
    if ('!' in value) return unwrap((value as unknown as { value: unknown }).value);
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, unwrap(inner)]));
  }
  return value;
}

test('amqplib knows every method with the same argument names and types', () => {
  for (const def of METHODS) {
    const info = defs.info((def.classId << 16) | def.methodId);
    assert.ok(info, `${def.name} ${def.classId}.${def.methodId}`);
    assert.deepEqual(
      info.args.map((arg) => `${bare(arg.name)}:${arg.type}`),
      def.args.map(([name, domain]) => `${bare(name)}:${domain}`),
      def.name,
    );
  }
});

test('every method: our frames decode in amqplib to the same values, and amqplib frames decode here', () => {
  for (const def of METHODS) {
    const id = (def.classId << 16) | def.methodId;
    const theirNames = new Map((defs.info(id)?.args ?? []).map((arg) => [bare(arg.name), arg.name]));
    fc.assert(
      fc.property(fc.record(Object.fromEntries(def.args.map(([name, domain]) => [name, domainArb[domain] as fc.Arbitrary<unknown>]))), (args) => {
        const method = { name: def.name, args: { ...args } } as AmqpMethod;
        const frame = encodeMethodFrame(1, method);
        const theirs = defs.decode(id, frame.subarray(11, frame.length - 1));
        for (const [name] of def.args) {
          assert.deepEqual(unwrap(theirs[theirNames.get(bare(name)) as string]), plain((args as Record<string, unknown>)[name]), `${def.name} ${name}`);
        }
        const theirFrame = defs.encodeMethod(id, 1, theirs);
        if (def.args.every(([, domain]) => domain !== 'table')) assert.deepEqual(theirFrame, frame, `${def.name}: same bytes`);
        const split = new FrameSplitter(0).push(theirFrame);
        assert.equal(split.error, undefined);
        const back = decodeMethodPayload((split.frames[0] as { payload: Buffer }).payload);
        assert.equal(back.name, def.name);
      }),
      { numRuns: 8 },
    );
  }
});

test('content headers: amqplib reads ours and we read amqplib headers', () => {
  fc.assert(
    fc.property(
      fc.record({ contentType: fc.string({ maxLength: 10 }), deliveryMode: fc.integer({ min: 1, max: 2 }), priority: fc.integer({ min: 0, max: 9 }), messageId: fc.string({ maxLength: 10 }), timestamp: fc.bigInt({ min: 0n, max: 2n ** 40n }) }, { requiredKeys: [] }),
      fc.integer({ min: 0, max: 1e9 }),
      (properties, size) => {
        const ours = encodeContentHeaderPayload(60, BigInt(size), { ...properties });
        const theirs = defs.decode(60, ours.subarray(12));
        for (const [name, value] of Object.entries(properties)) assert.deepEqual(unwrap(theirs[name]), plain(value), name);
        const fields: Record<string, unknown> = { ...properties, timestamp: properties.timestamp === undefined ? undefined : Number(properties.timestamp) };
        const theirFrame = defs.encodeProperties(60, 1, size, fields);
        const decoded = decodeContentHeaderPayload(theirFrame.subarray(7, theirFrame.length - 1));
        assert.equal(decoded.bodySize, BigInt(size));
        assert.deepStrictEqual(decoded.properties, { ...properties });
      },
    ),
    { numRuns: 150 },
  );
});
