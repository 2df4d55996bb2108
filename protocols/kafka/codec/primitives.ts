// Kafka's primitive wire types (the protocol guide's "Protocol Primitive Types"): fixed-width
// big-endian integers, zigzag varints, strings and byte arrays with int16/int32 length prefixes or
// (flexible versions) unsigned-varint "compact" prefixes holding length + 1, arrays likewise, UUIDs,
// and tagged-field sections. Pure: no sockets, files or timers.
//
// Every read checks the bytes are there first and fails with SL_KAFKA_DECODE, never with the
// RangeError a Buffer read would throw. A declared length is checked against the bytes actually
// present before anything is allocated or looped over, so a hostile length prefix (2^31 - 1, a
// five-byte varint) costs nothing.
import { KafkaErrors } from './errors.js';

const INT8_MIN = -0x80, INT8_MAX = 0x7f;
const INT16_MIN = -0x8000, INT16_MAX = 0x7fff;
const INT32_MIN = -0x80000000, INT32_MAX = 0x7fffffff;
const INT64_MIN = -(1n << 63n), INT64_MAX = (1n << 63n) - 1n;

/** A decode error naming what was being read and the byte position. */
function decodeError(what: string, detail: string, position: number) {
  return KafkaErrors.decode.create({ position }, what, `${detail} (at byte ${position})`);
}

export class Reader {
  private position: number;
  private readonly end: number;

  constructor(private readonly buffer: Buffer, start = 0, end = buffer.length) {
    this.position = start;
    this.end = end;
  }

  get offset(): number { return this.position; }
  get remaining(): number { return this.end - this.position; }

  /** Fails unless `count` more bytes are present. */
  need(count: number, what: string): void {
    if (count > this.end - this.position) throw decodeError(what, `needs ${count} bytes, ${this.end - this.position} left`, this.position);
  }

  /** Fails unless the whole input was consumed: trailing bytes mean a version mix-up. */
  expectEnd(what: string): void {
    if (this.position !== this.end) throw decodeError(what, `${this.end - this.position} bytes left over`, this.position);
  }

  int8(what = 'int8'): number { this.need(1, what); const v = this.buffer.readInt8(this.position); this.position += 1; return v; }
  int16(what = 'int16'): number { this.need(2, what); const v = this.buffer.readInt16BE(this.position); this.position += 2; return v; }
  uint16(what = 'uint16'): number { this.need(2, what); const v = this.buffer.readUInt16BE(this.position); this.position += 2; return v; }
  int32(what = 'int32'): number { this.need(4, what); const v = this.buffer.readInt32BE(this.position); this.position += 4; return v; }
  uint32(what = 'uint32'): number { this.need(4, what); const v = this.buffer.readUInt32BE(this.position); this.position += 4; return v; }
  int64(what = 'int64'): bigint { this.need(8, what); const v = this.buffer.readBigInt64BE(this.position); this.position += 8; return v; }
  float64(what = 'float64'): number { this.need(8, what); const v = this.buffer.readDoubleBE(this.position); this.position += 8; return v; }

  bool(what = 'bool'): boolean {
    const v = this.int8(what);
    // Kafka reads any non-zero byte as true; so do we, but the value re-encodes as 1.
    return v !== 0;
  }

  /** Unsigned varint of at most 32 bits (5 bytes), as Kafka's ByteUtils.readUnsignedVarint. */
  uvarint(what = 'unsigned varint'): number {
    // Hot: several per record of every produced batch, so no call per byte.
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (this.position >= this.end) this.need(1, what);
      const byte = this.buffer[this.position++]!;
      if (i === 4 && byte > 0x0f) throw decodeError(what, 'varint longer than 32 bits', this.position - 1);
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 0x80;
    }
    throw decodeError(what, 'varint longer than 5 bytes', this.position);
  }

  /** Zigzag varint (signed 32 bits). */
  varint(what = 'varint'): number {
    const raw = this.uvarint(what);
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** Zigzag varlong (signed 64 bits, up to 10 bytes). */
  varlong(what = 'varlong'): bigint {
    let raw = 0n;
    for (let i = 0; i < 10; i++) {
      this.need(1, what);
      const byte = this.buffer[this.position++]!;
      if (i === 9 && byte > 0x01) throw decodeError(what, 'varlong longer than 64 bits', this.position - 1);
      raw |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return (raw >> 1n) ^ -(raw & 1n);
    }
    throw decodeError(what, 'varlong longer than 10 bytes', this.position);
  }

  uuid(what = 'uuid'): string {
    this.need(16, what);
    const hex = this.buffer.toString('hex', this.position, this.position + 16);
    this.position += 16;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** `count` raw bytes as a view into the input (no copy: the frame owns the memory). */
  raw(count: number, what = 'bytes'): Buffer {
    this.need(count, what);
    const v = this.buffer.subarray(this.position, this.position + count);
    this.position += count;
    return v;
  }

  private text(length: number, what: string): string {
    this.need(length, what);
    const v = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return v;
  }

  /** STRING / NULLABLE_STRING: int16 length, -1 for null. */
  string(what = 'string', nullable = false): string | null {
    const length = this.int16(what);
    if (length === -1 && nullable) return null;
    if (length < 0) throw decodeError(what, `length ${length} is not allowed here`, this.position - 2);
    return this.text(length, what);
  }

  /** COMPACT_STRING / COMPACT_NULLABLE_STRING: uvarint length + 1, 0 for null. */
  compactString(what = 'compact string', nullable = false): string | null {
    const lengthPlusOne = this.uvarint(what);
    if (lengthPlusOne === 0) {
      if (nullable) return null;
      throw decodeError(what, 'null is not allowed here', this.position - 1);
    }
    return this.text(lengthPlusOne - 1, what);
  }

  /** BYTES / NULLABLE_BYTES: int32 length, -1 for null. */
  bytes(what = 'bytes', nullable = false): Buffer | null {
    const length = this.int32(what);
    if (length === -1 && nullable) return null;
    if (length < 0) throw decodeError(what, `length ${length} is not allowed here`, this.position - 4);
    return this.raw(length, what);
  }

  /** COMPACT_BYTES / COMPACT_NULLABLE_BYTES: uvarint length + 1, 0 for null. */
  compactBytes(what = 'compact bytes', nullable = false): Buffer | null {
    const lengthPlusOne = this.uvarint(what);
    if (lengthPlusOne === 0) {
      if (nullable) return null;
      throw decodeError(what, 'null is not allowed here', this.position - 1);
    }
    return this.raw(lengthPlusOne - 1, what);
  }

  /**
   * An array's element count (int32, or uvarint count + 1 when compact); null for a null array.
   * Every element takes at least one byte in every message we define, so a count above the bytes
   * left is refused here, before the caller loops over it.
   */
  arrayLength(what: string, compact: boolean, nullable: boolean): number | null {
    const start = this.position;
    let count: number;
    if (compact) {
      const plusOne = this.uvarint(what);
      count = plusOne - 1;
    } else {
      count = this.int32(what);
    }
    if (count === -1) {
      if (nullable) return null;
      throw decodeError(what, 'null array is not allowed here', start);
    }
    if (count < 0) throw decodeError(what, `array length ${count} is not allowed`, start);
    if (count > this.remaining) throw decodeError(what, `array of ${count} elements cannot fit in ${this.remaining} bytes`, start);
    return count;
  }
}

/**
 * A growable output buffer. Encoding errors (a value out of range) are SL_KAFKA_ENCODE.
 * With `shareFrom`, byte arrays of at least that many bytes are not copied in but kept as
 * chunks of their own (finishChunks): a Fetch response's record batches go to the socket as
 * they are. Such a Writer's earlier bytes must not be patched.
 */
export class Writer {
  private buffer: Buffer;
  private position = 0;
  /** Where the bytes not yet in `chunks` start in `buffer`. */
  private chunkStart = 0;
  private readonly chunks: Buffer[] = [];

  constructor(initial = 256, private readonly shareFrom = Number.POSITIVE_INFINITY) {
    this.buffer = Buffer.allocUnsafe(initial);
  }

  get length(): number { return this.position; }

  private room(count: number): void {
    if (this.position + count <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.position + count) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buffer.copy(next, 0, 0, this.position);
    this.buffer = next;
  }

  /** Forgets what was written, keeping the memory: a scratch Writer reused in a loop. */
  reset(): void { this.position = 0; }

  /** The bytes written so far (a copy-free view; the Writer must not be used afterwards). */
  finish(): Buffer { return this.buffer.subarray(0, this.position); }

  /** Everything written, in order: runs of this Writer's buffer and the arrays kept by reference. */
  finishChunks(): Buffer[] {
    const chunks = [...this.chunks];
    if (this.position > this.chunkStart) chunks.push(this.buffer.subarray(this.chunkStart, this.position));
    return chunks;
  }

  /** Overwrites an int32 written earlier (sizes and CRCs known only at the end). */
  patchInt32(at: number, value: number): void { this.buffer.writeInt32BE(value, at); }
  patchUint32(at: number, value: number): void { this.buffer.writeUInt32BE(value, at); }
  /** A view of bytes already written, e.g. to checksum them. */
  view(start: number, end = this.position): Buffer { return this.buffer.subarray(start, end); }

  private checkInt(value: number, min: number, max: number, what: string): void {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw KafkaErrors.encode.create({ value }, what, `${String(value)} is not an integer in ${min}..${max}`);
    }
  }

  int8(v: number, what = 'int8'): void { this.checkInt(v, INT8_MIN, INT8_MAX, what); this.room(1); this.buffer.writeInt8(v, this.position); this.position += 1; }
  int16(v: number, what = 'int16'): void { this.checkInt(v, INT16_MIN, INT16_MAX, what); this.room(2); this.buffer.writeInt16BE(v, this.position); this.position += 2; }
  uint16(v: number, what = 'uint16'): void { this.checkInt(v, 0, 0xffff, what); this.room(2); this.buffer.writeUInt16BE(v, this.position); this.position += 2; }
  int32(v: number, what = 'int32'): void { this.checkInt(v, INT32_MIN, INT32_MAX, what); this.room(4); this.buffer.writeInt32BE(v, this.position); this.position += 4; }
  uint32(v: number, what = 'uint32'): void { this.checkInt(v, 0, 0xffffffff, what); this.room(4); this.buffer.writeUInt32BE(v, this.position); this.position += 4; }
  int64(v: bigint, what = 'int64'): void {
    if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) throw KafkaErrors.encode.create({}, what, `${String(v)} is not a 64-bit bigint`);
    this.room(8); this.buffer.writeBigInt64BE(v, this.position); this.position += 8;
  }
  float64(v: number, what = 'float64'): void {
    if (typeof v !== 'number') throw KafkaErrors.encode.create({}, what, `${String(v)} is not a number`);
    this.room(8); this.buffer.writeDoubleBE(v, this.position); this.position += 8;
  }
  bool(v: boolean, what = 'bool'): void {
    if (typeof v !== 'boolean') throw KafkaErrors.encode.create({}, what, `${String(v)} is not a boolean`);
    this.int8(v ? 1 : 0);
  }

  uvarint(v: number, what = 'unsigned varint'): void {
    this.checkInt(v, 0, 0xffffffff, what);
    this.room(5);
    let rest = v;
    while (rest >= 0x80) {
      this.buffer[this.position++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.position++] = rest;
  }

  varint(v: number, what = 'varint'): void {
    this.checkInt(v, INT32_MIN, INT32_MAX, what);
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  varlong(v: bigint, what = 'varlong'): void {
    if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) throw KafkaErrors.encode.create({}, what, `${String(v)} is not a 64-bit bigint`);
    let rest = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.room(10);
    while (rest >= 0x80n) {
      this.buffer[this.position++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buffer[this.position++] = Number(rest);
  }

  uuid(v: string, what = 'uuid'): void {
    const hex = typeof v === 'string' ? v.replace(/-/g, '') : '';
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw KafkaErrors.encode.create({}, what, `${String(v)} is not a UUID`);
    this.raw(Buffer.from(hex, 'hex'));
  }

  raw(bytes: Uint8Array): void {
    if (bytes.length >= this.shareFrom) {
      if (this.position > this.chunkStart) this.chunks.push(this.buffer.subarray(this.chunkStart, this.position));
      this.chunks.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      this.chunkStart = this.position;
      return;
    }
    this.room(bytes.length);
    this.buffer.set(bytes, this.position);
    this.position += bytes.length;
  }

  string(v: string | null, what = 'string', nullable = false): void {
    if (v === null) {
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null is not allowed in this version');
      this.int16(-1);
      return;
    }
    if (typeof v !== 'string') throw KafkaErrors.encode.create({}, what, `${String(v)} is not a string`);
    const bytes = Buffer.from(v, 'utf8');
    if (bytes.length > INT16_MAX) throw KafkaErrors.encode.create({}, what, `${bytes.length} bytes is longer than a STRING allows (32767)`);
    this.int16(bytes.length);
    this.raw(bytes);
  }

  compactString(v: string | null, what = 'compact string', nullable = false): void {
    if (v === null) {
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null is not allowed in this version');
      this.uvarint(0);
      return;
    }
    if (typeof v !== 'string') throw KafkaErrors.encode.create({}, what, `${String(v)} is not a string`);
    const bytes = Buffer.from(v, 'utf8');
    // Kafka caps compact strings at the same 32767 bytes as the int16 form.
    if (bytes.length > INT16_MAX) throw KafkaErrors.encode.create({}, what, `${bytes.length} bytes is longer than a STRING allows (32767)`);
    this.uvarint(bytes.length + 1);
    this.raw(bytes);
  }

  bytes(v: Uint8Array | null, what = 'bytes', nullable = false): void {
    if (v === null) {
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null is not allowed in this version');
      this.int32(-1);
      return;
    }
    if (!(v instanceof Uint8Array)) throw KafkaErrors.encode.create({}, what, 'not a byte array');
    this.int32(v.length);
    this.raw(v);
  }

  compactBytes(v: Uint8Array | null, what = 'compact bytes', nullable = false): void {
    if (v === null) {
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null is not allowed in this version');
      this.uvarint(0);
      return;
    }
    if (!(v instanceof Uint8Array)) throw KafkaErrors.encode.create({}, what, 'not a byte array');
    this.uvarint(v.length + 1);
    this.raw(v);
  }

  arrayLength(count: number | null, what: string, compact: boolean, nullable: boolean): void {
    if (count === null) {
      if (!nullable) throw KafkaErrors.encode.create({}, what, 'null array is not allowed in this version');
      if (compact) this.uvarint(0); else this.int32(-1);
      return;
    }
    if (compact) this.uvarint(count + 1); else this.int32(count);
  }
}
