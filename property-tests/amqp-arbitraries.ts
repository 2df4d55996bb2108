// fast-check arbitraries for the AMQP 0-9-1 codec's tests: every field value type (tables and
// arrays nested a few levels) and every method of the table with random arguments. Shared by
// the codec's unit tests (protocols/amqp/codec/*.test.ts).
import fc from 'fast-check';
import { type AmqpMethod, type Domain, type FieldTable, type FieldValue, METHODS, type MethodDef } from '../protocols/amqp/index.js';

const bytes = fc.uint8Array({ maxLength: 24 });
const key = fc.string({ unit: 'binary', maxLength: 12 });

/** Every value type, tables and arrays nested a few levels. */
export const fieldValueArb: fc.Arbitrary<FieldValue> = fc.letrec<{ value: FieldValue; table: FieldTable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean().map((value) => ({ type: 'bool', value }) as const),
    fc.integer({ min: -128, max: 127 }).map((value) => ({ type: 'int8', value }) as const),
    fc.integer({ min: 0, max: 255 }).map((value) => ({ type: 'uint8', value }) as const),
    fc.integer({ min: -32768, max: 32767 }).map((value) => ({ type: 'int16', value }) as const),
    fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'uint16', value }) as const),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ type: 'int32', value }) as const),
    fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ type: 'uint32', value }) as const),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((value) => ({ type: 'int64', value }) as const),
    fc.float().map((value) => ({ type: 'float', value }) as const),
    fc.double().map((value) => ({ type: 'double', value }) as const),
    fc.record({ scale: fc.integer({ min: 0, max: 255 }), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }).map(({ scale, value }) => ({ type: 'decimal', scale, value }) as const),
    bytes.map((value) => ({ type: 'longstr', value }) as const),
    fc.array(tie('value'), { maxLength: 4 }).map((value) => ({ type: 'array', value }) as const),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((value) => ({ type: 'timestamp', value }) as const),
    tie('table').map((value) => ({ type: 'table', value }) as const),
    fc.constant({ type: 'void' } as const),
    bytes.map((value) => ({ type: 'bytes', value }) as const),
  ),
  table: fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 5, selector: ([name]) => name }).map((entries) => new Map(entries)),
}) as never).value;

export const fieldTableArb: fc.Arbitrary<FieldTable> = fc
  .uniqueArray(fc.tuple(key, fieldValueArb), { maxLength: 6, selector: ([name]) => name })
  .map((entries) => new Map(entries));

// Up to 63 code points of up to 4 bytes each: at most 252 bytes, inside a short string; plus the
// exact 255-byte edge.
const shortstrArb = fc.oneof(fc.string({ unit: 'binary', maxLength: 63 }), fc.constant('é'.repeat(127) + 'x'));

const domainArb: Record<Domain, fc.Arbitrary<unknown>> = {
  bit: fc.boolean(),
  octet: fc.integer({ min: 0, max: 255 }),
  short: fc.integer({ min: 0, max: 65535 }),
  long: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  longlong: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  shortstr: shortstrArb,
  longstr: fc.uint8Array({ maxLength: 64 }),
  table: fieldTableArb,
};

export function argsArb(def: MethodDef): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(Object.fromEntries(def.args.map(([name, domain]) => [name, domainArb[domain]])));
}

export const methodArb: fc.Arbitrary<AmqpMethod> = fc.oneof(...METHODS.map((def) => argsArb(def).map((args) => ({ name: def.name, args: { ...args } }) as AmqpMethod)));

