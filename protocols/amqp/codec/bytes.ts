// Bounds-checked reading and growable writing of AMQP's big-endian primitives. Every read checks
// its length first, so a truncated or lying payload becomes an AmqpCodecError naming the reply
// code (501 frame-error: the frame could not be decoded), never a RangeError from a DataView.
import { AmqpCodecError } from './errors.js';
import { ReplyCodes } from './reply-codes.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

export class Reader {
  readonly #view: DataView;
  #offset: number;
  readonly #end: number;

  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
    end = bytes.length,
  ) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
    this.#end = end;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#end - this.#offset;
  }

  #need(count: number, what: string): number {
    if (count > this.#end - this.#offset) {
      throw new AmqpCodecError(ReplyCodes.frameError, `${what} needs ${count} bytes at offset ${this.#offset}, ${this.#end - this.#offset} left`);
    }
    const at = this.#offset;
    this.#offset += count;
    return at;
  }

  u8(what = 'octet'): number {
    return this.#view.getUint8(this.#need(1, what));
  }
  i8(what = 'int8'): number {
    return this.#view.getInt8(this.#need(1, what));
  }
  u16(what = 'short'): number {
    return this.#view.getUint16(this.#need(2, what));
  }
  i16(what = 'int16'): number {
    return this.#view.getInt16(this.#need(2, what));
  }
  u32(what = 'long'): number {
    return this.#view.getUint32(this.#need(4, what));
  }
  i32(what = 'int32'): number {
    return this.#view.getInt32(this.#need(4, what));
  }
  u64(what = 'longlong'): bigint {
    return this.#view.getBigUint64(this.#need(8, what));
  }
  i64(what = 'int64'): bigint {
    return this.#view.getBigInt64(this.#need(8, what));
  }
  f32(what = 'float'): number {
    return this.#view.getFloat32(this.#need(4, what));
  }
  f64(what = 'double'): number {
    return this.#view.getFloat64(this.#need(8, what));
  }

  /** A copy of the next `count` bytes: decoded values outlive the frame buffer they came from. */
  take(count: number, what: string): Uint8Array {
    const at = this.#need(count, what);
    // A plain Uint8Array copy (Buffer#slice would be a view of the frame, and a Buffer).
    return new Uint8Array(this.bytes.subarray(at, at + count));
  }

  /** A short string: one length octet and UTF-8 text (RabbitMQ's names, keys and tags). */
  shortstr(what = 'shortstr'): string {
    const length = this.u8(what);
    const at = this.#need(length, what);
    try {
      return utf8.decode(this.bytes.subarray(at, at + length));
    } catch {
      throw new AmqpCodecError(ReplyCodes.syntaxError, `${what} is not valid UTF-8`);
    }
  }

  /** A long string: a 32-bit length and raw bytes (SASL responses are binary). */
  longstr(what = 'longstr'): Uint8Array {
    const length = this.u32(what);
    return this.take(length, what);
  }

  /** A reader over the next `count` bytes (a field table's own extent), advancing past them. */
  sub(count: number, what: string): Reader {
    const at = this.#need(count, what);
    return new Reader(this.bytes, at, at + count);
  }
}

/** Appends big-endian values to a buffer that doubles when full. */
export class Writer {
  #bytes: Buffer;
  #view: DataView;
  #length = 0;

  constructor(initial = 256) {
    this.#bytes = Buffer.allocUnsafe(initial);
    this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.byteLength);
  }

  get length(): number {
    return this.#length;
  }

  // Callers take the position first and then write through this.#view: growing replaces the
  // view, so `this.#view.setX(this.#room(n), ...)` would write into the old, too-small buffer.
  #room(count: number): number {
    if (this.#length + count > this.#bytes.length) {
      let size = this.#bytes.length * 2;
      while (size < this.#length + count) size *= 2;
      const bigger = Buffer.allocUnsafe(size);
      this.#bytes.copy(bigger, 0, 0, this.#length);
      this.#bytes = bigger;
      this.#view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
    }
    const at = this.#length;
    this.#length += count;
    return at;
  }

  u8(value: number, what = 'octet'): void {
    checkInteger(value, 0, 0xff, what);
    const at = this.#room(1);
    this.#view.setUint8(at, value);
  }
  i8(value: number, what = 'int8'): void {
    checkInteger(value, -0x80, 0x7f, what);
    const at = this.#room(1);
    this.#view.setInt8(at, value);
  }
  u16(value: number, what = 'short'): void {
    checkInteger(value, 0, 0xffff, what);
    const at = this.#room(2);
    this.#view.setUint16(at, value);
  }
  i16(value: number, what = 'int16'): void {
    checkInteger(value, -0x8000, 0x7fff, what);
    const at = this.#room(2);
    this.#view.setInt16(at, value);
  }
  u32(value: number, what = 'long'): void {
    checkInteger(value, 0, 0xffffffff, what);
    const at = this.#room(4);
    this.#view.setUint32(at, value);
  }
  i32(value: number, what = 'int32'): void {
    checkInteger(value, -0x80000000, 0x7fffffff, what);
    const at = this.#room(4);
    this.#view.setInt32(at, value);
  }
  u64(value: bigint, what = 'longlong'): void {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`${what} must be a bigint from 0 to 2^64-1, got ${String(value)}`);
    const at = this.#room(8);
    this.#view.setBigUint64(at, value);
  }
  i64(value: bigint, what = 'int64'): void {
    if (typeof value !== 'bigint' || value < -0x8000000000000000n || value > 0x7fffffffffffffffn) throw new RangeError(`${what} must be a bigint from -2^63 to 2^63-1, got ${String(value)}`);
    const at = this.#room(8);
    this.#view.setBigInt64(at, value);
  }
  f32(value: number): void {
    const at = this.#room(4);
    this.#view.setFloat32(at, value);
  }
  f64(value: number): void {
    const at = this.#room(8);
    this.#view.setFloat64(at, value);
  }

  bytes(value: Uint8Array): void {
    const at = this.#room(value.length);
    this.#bytes.set(value, at);
  }

  shortstr(value: string, what = 'shortstr'): void {
    if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
    const encoded = utf8Bytes(value);
    if (encoded.length > 0xff) throw new RangeError(`${what} is ${encoded.length} bytes of UTF-8; a short string holds at most 255`);
    this.u8(encoded.length);
    this.bytes(encoded);
  }

  longstr(value: Uint8Array, what = 'longstr'): void {
    if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be bytes (a Uint8Array or Buffer)`);
    this.u32(value.length, what);
    this.bytes(value);
  }

  /** Reserves a 32-bit length to fill in later (a field table's size comes after its content). */
  reserveU32(): number {
    return this.#room(4);
  }

  patchU32(at: number, value: number): void {
    this.#view.setUint32(at, value);
  }

  /** The written bytes (a view; the writer is not used after). */
  finish(): Buffer {
    return this.#bytes.subarray(0, this.#length);
  }
}

// Encoding refuses out-of-range values with RangeError: they are bugs in the broker's own
// replies, never input from a peer, so they do not carry a reply code.
function checkInteger(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
}
