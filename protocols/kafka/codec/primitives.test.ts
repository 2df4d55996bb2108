// Unit tests of the primitive readers and writers (primitives.ts) and CRC-32C (crc32c.ts).
//
// Goal: known encodings from the protocol guide (zigzag varints, compact lengths) come out byte
// for byte; every value of each type survives write→read; every short, overlong or hostile input
// fails with SL_KAFKA_DECODE and never allocates from a declared length.
// Method: hand-made byte sequences, fast-check round trips (FC_SEED/FC_PATH replay a failure).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../../../base/index.js';
import { CRC32C_IMPLEMENTATION, crc32c, crc32cJs } from './crc32c.js';
import { Reader, Writer } from './primitives.js';
import { numRuns, replay } from '../../../tests/support/fast-check.js';

const bytes = (...values: number[]) => Buffer.from(values);
const written = (fill: (w: Writer) => void) => { const w = new Writer(1); fill(w); return w.finish(); };
const decodeFails = (fn: () => unknown) => assert.throws(fn, (error: unknown) => isShardlineError(error, 'SL_KAFKA_DECODE'));

describe('varints', () => {
  test('zigzag varints match the protocol guide', () => {
    // 0 → 0, -1 → 1, 1 → 2, -2 → 3, 63 → 126, -64 → 127, 64 → 128 (two bytes)
    const cases: Array<[number, number[]]> = [[0, [0]], [-1, [1]], [1, [2]], [-2, [3]], [63, [126]], [-64, [127]], [64, [0x80, 0x01]], [300, [0xd8, 0x04]],
      [2147483647, [0xfe, 0xff, 0xff, 0xff, 0x0f]], [-2147483648, [0xff, 0xff, 0xff, 0xff, 0x0f]]];
    for (const [value, encoding] of cases) {
      assert.deepEqual([...written((w) => w.varint(value))], encoding, `varint ${value}`);
      assert.equal(new Reader(bytes(...encoding)).varint(), value);
    }
  });

  test('unsigned varints: compact lengths are length + 1', () => {
    assert.deepEqual([...written((w) => w.compactString('abc'))], [4, 0x61, 0x62, 0x63]);
    assert.deepEqual([...written((w) => w.compactString(null, 's', true))], [0]);
    assert.deepEqual([...written((w) => w.uvarint(0xffffffff))], [0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  test('varlongs cover the 64-bit range', () => {
    for (const value of [0n, -1n, 1n, (1n << 63n) - 1n, -(1n << 63n), 1234567890123n]) {
      const encoded = written((w) => w.varlong(value));
      assert.equal(new Reader(encoded).varlong(), value);
    }
    assert.equal(written((w) => w.varlong(-(1n << 63n))).length, 10);
  });

  test('overlong varints are refused, not wrapped', () => {
    decodeFails(() => new Reader(bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)).uvarint());
    decodeFails(() => new Reader(bytes(0xff, 0xff, 0xff, 0xff, 0x1f)).uvarint()); // 33 bits
    decodeFails(() => new Reader(bytes(...Array(10).fill(0xff), 0x01)).varlong());
    decodeFails(() => new Reader(bytes(0x80)).varint()); // cut short
  });

  test('round trips (property)', () => {
    fc.assert(fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.bigInt(-(1n << 63n), (1n << 63n) - 1n), fc.nat({ max: 0xffffffff }), (i, l, u) => {
      const r = new Reader(written((w) => { w.varint(i); w.varlong(l); w.uvarint(u); }));
      assert.equal(r.varint(), i);
      assert.equal(r.varlong(), l);
      assert.equal(r.uvarint(), u);
      r.expectEnd('varints');
    }), { numRuns: numRuns(300), ...replay });
  });
});

describe('fixed-width, strings, bytes, arrays', () => {
  test('every type round-trips, classic and compact', () => {
    const buffer = written((w) => {
      w.int8(-5); w.int16(-300); w.uint16(65535); w.int32(-70000); w.uint32(0xfffffffe); w.int64(-(1n << 62n)); w.float64(1.5); w.bool(true);
      w.uuid('0123abcd-4567-89ef-0123-456789abcdef');
      w.string('héllo'); w.string(null, 's', true); w.compactString('ok'); w.bytes(Buffer.from([1, 2])); w.compactBytes(null, 'b', true);
      w.arrayLength(2, 'a', false, false); w.arrayLength(null, 'a', true, true);
    });
    const r = new Reader(buffer);
    assert.equal(r.int8(), -5); assert.equal(r.int16(), -300); assert.equal(r.uint16(), 65535); assert.equal(r.int32(), -70000);
    assert.equal(r.uint32(), 0xfffffffe); assert.equal(r.int64(), -(1n << 62n)); assert.equal(r.float64(), 1.5); assert.equal(r.bool(), true);
    assert.equal(r.uuid(), '0123abcd-4567-89ef-0123-456789abcdef');
    assert.equal(r.string(), 'héllo'); assert.equal(r.string('s', true), null); assert.equal(r.compactString(), 'ok');
    assert.deepEqual(r.bytes(), Buffer.from([1, 2])); assert.equal(r.compactBytes('b', true), null);
    // Two elements of one byte each would need 2 more bytes; none are left, so the count is refused.
    decodeFails(() => r.arrayLength('a', false, false));
  });

  test('null where the version forbids it fails both ways', () => {
    assert.throws(() => written((w) => w.string(null)), (e: unknown) => isShardlineError(e, 'SL_KAFKA_ENCODE'));
    decodeFails(() => new Reader(bytes(0xff, 0xff)).string());
    decodeFails(() => new Reader(bytes(0)).compactString());
    decodeFails(() => new Reader(bytes(0xff, 0xff, 0xff, 0xff)).bytes());
    decodeFails(() => new Reader(bytes(0xff, 0xff, 0xff, 0xff)).arrayLength('a', false, false));
  });

  test('hostile lengths are refused from the bytes present, not allocated', () => {
    // int32 2^31-1 byte array, 2^31-1 element array, compact 2^32-2 length: each with 3 bytes behind it.
    decodeFails(() => new Reader(bytes(0x7f, 0xff, 0xff, 0xff, 1, 2, 3)).bytes());
    decodeFails(() => new Reader(bytes(0x7f, 0xff, 0xff, 0xff, 1, 2, 3)).arrayLength('a', false, false));
    decodeFails(() => new Reader(bytes(0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3)).compactBytes());
    decodeFails(() => new Reader(bytes(0x7f, 0xff, 1)).string());
    decodeFails(() => new Reader(bytes(0x80 - 2)).compactString()); // length 125 of 0 bytes
  });

  test('encode refuses out-of-range numbers', () => {
    for (const fill of [(w: Writer) => w.int8(128), (w: Writer) => w.int16(1.5), (w: Writer) => w.int32(2 ** 31), (w: Writer) => w.int64(1n << 63n), (w: Writer) => w.uuid('nope')]) {
      assert.throws(() => written(fill), (e: unknown) => isShardlineError(e, 'SL_KAFKA_ENCODE'));
    }
  });
});

describe('CRC-32C', () => {
  for (const [name, crc] of [['crc32c', crc32c], ['crc32cJs', crc32cJs]] as const) {
    test(`check values (the CRC catalogue and RFC 3720 B.4): ${name}`, () => {
      assert.equal(crc(Buffer.from('123456789')), 0xe3069283);
      assert.equal(crc(Buffer.alloc(32, 0)), 0x8a9136aa);
      assert.equal(crc(Buffer.alloc(32, 0xff)), 0x62a8ab43);
      assert.equal(crc(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
      assert.equal(crc(Buffer.from('xx123456789'), 2), 0xe3069283);
      assert.equal(crc(Buffer.from('xx123456789yy'), 2, 11), 0xe3069283);
    });
  }

  test('the native and the JavaScript CRC agree on any bytes and range', () => {
    // On this machine's platform the prebuilt binary is installed (package-lock): the fast one is in use.
    assert.equal(CRC32C_IMPLEMENTATION, 'native');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), (array, a, b) => {
        const bytes = Buffer.from(array);
        const start = bytes.length === 0 ? 0 : a % bytes.length;
        const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
        assert.equal(crc32c(bytes, start, end), crc32cJs(bytes, start, end));
      }),
      { numRuns: 300 },
    );
  });
});
