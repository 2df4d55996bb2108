// The compression hook of record batches: attribute bits 0-2 name a codec, and this table maps
// each id to a compress and a decompress function. gzip is node:zlib; snappy, lz4 and zstd are
// pure-JS npm codecs (snappyjs, lz4js, fzstd: no install scripts, no native code). zstd is
// decompression only (fzstd has no compressor): the broker never compresses, it serves fetched
// records uncompressed, so only a producer's batches need inflating.
//
// Decompression takes a byte limit: a small compressed payload can expand a thousand-fold, so
// the output is capped before or while inflating, never checked afterwards. Each library is
// handed only input whose output size it cannot overrun: snappy declares its length up front
// (snappyjs checks it before allocating); for lz4 and zstd the framing around the compressed
// blocks is walked here first (block sizes, frame header, window size), which costs one pass over
// the headers and bounds what the library allocates and writes.
import { gunzipSync, gzipSync } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import * as lz4 from 'lz4js';
import * as snappy from 'snappyjs';
import { isShardlineError } from '../../../base/index.js';
import { KafkaErrors } from './errors.js';

export const CompressionType = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export interface CompressionCodec {
  readonly name: string;
  /** Fails with SL_KAFKA_COMPRESSION for a codec this build only decompresses (zstd). */
  compress(data: Buffer): Buffer;
  /** Inflates `data`; fails with SL_KAFKA_COMPRESSION past `maxBytes` or on corrupt input. */
  decompress(data: Buffer, maxBytes: number): Buffer;
}

export type CompressionCodecs = ReadonlyMap<number, CompressionCodec>;

function failed(codec: string, detail: string, cause?: unknown) {
  const message = `${codec} payload does not inflate: ${detail}`;
  return cause === undefined ? KafkaErrors.compression.create({ codec }, message) : KafkaErrors.compression.withCause(cause, { codec }, message);
}

const gzip: CompressionCodec = {
  name: 'gzip',
  compress: (data) => gzipSync(data),
  decompress: (data, maxBytes) => {
    try {
      return gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) });
    } catch (error) {
      throw failed('gzip', `not within ${maxBytes} bytes: ${(error as Error).message}`, error);
    }
  },
};

// Kafka's Java client writes snappy in the xerial stream format (an 8-byte magic, two version
// words, then chunks of [int32 length][raw snappy block]); other clients send one raw block.
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16;

function snappyBlock(block: Buffer, maxBytes: number): Buffer {
  try {
    const out = snappy.uncompress(block, maxBytes);
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    throw failed('snappy', (error as Error).message, error);
  }
}

const snappyCodec: CompressionCodec = {
  name: 'snappy',
  compress: (data) => {
    const block = Buffer.from(snappy.compress(data));
    const header = Buffer.alloc(XERIAL_HEADER + 4);
    XERIAL_MAGIC.copy(header);
    header.writeInt32BE(1, 8);
    header.writeInt32BE(1, 12);
    header.writeInt32BE(block.length, 16);
    return Buffer.concat([header, block]);
  },
  decompress: (data, maxBytes) => {
    if (data.length < XERIAL_HEADER || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappyBlock(data, maxBytes);
    const parts: Buffer[] = [];
    let total = 0;
    let at = XERIAL_HEADER;
    while (at < data.length) {
      if (at + 4 > data.length) throw failed('snappy', 'a xerial chunk length is cut');
      const length = data.readInt32BE(at);
      at += 4;
      if (length < 0 || at + length > data.length) throw failed('snappy', `a xerial chunk of ${length} bytes runs past the payload`);
      const part = snappyBlock(data.subarray(at, at + length), maxBytes - total);
      at += length;
      total += part.length;
      parts.push(part);
    }
    return Buffer.concat(parts, total);
  },
};

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

/**
 * The decompressed size of an LZ4 frame, from its headers and the length fields of its block
 * sequences (no bytes are copied): lz4js trusts its input, so a match length that runs past a
 * block's maximum, or a total past `maxBytes`, is refused here before it runs.
 */
function lz4FrameSize(src: Buffer, maxBytes: number): number {
  const cut = (): never => {
    throw failed('lz4', 'the frame is cut or malformed');
  };
  if (src.length < 7 || src.readUInt32LE(0) !== LZ4_MAGIC) throw failed('lz4', 'not an LZ4 frame (magic)');
  const flags = src[4]!;
  if ((flags & 0xc0) !== 0x40) throw failed('lz4', 'unknown LZ4 frame version');
  const blockMax = LZ4_BLOCK_MAX[(src[5]! >> 4) & 7] ?? 0;
  if (blockMax === 0) throw failed('lz4', 'invalid LZ4 block size');
  const blockChecksum = (flags & 0x10) !== 0;
  const contentChecksum = (flags & 0x04) !== 0;
  let at = 6 + ((flags & 0x08) !== 0 ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0) + 1;
  let total = 0;
  for (;;) {
    if (at + 4 > src.length) cut();
    const word = src.readUInt32LE(at);
    at += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    if (at + size > src.length) cut();
    let produced = 0;
    if ((word & 0x80000000) !== 0) produced = size;
    else {
      // A sequence: token, literal length (+255 runs), literals, then (unless last) a 2-byte offset and match length (+255 runs, +4).
      const end = at + size;
      let i = at;
      while (i < end) {
        const token = src[i++]!;
        let literals = token >> 4;
        if (literals === 15) for (let b = 255; b === 255 && i < end; literals += b) b = src[i++]!;
        i += literals;
        produced += literals;
        if (i >= end) break;
        if (i + 2 > end) cut();
        i += 2;
        let match = token & 15;
        if (match === 15) for (let b = 255; b === 255 && i < end; match += b) b = src[i++]!;
        produced += match + 4;
        if (produced > blockMax) break;
      }
      if (i > end) cut();
    }
    if (produced > blockMax) throw failed('lz4', `a block inflates past its ${blockMax}-byte maximum`);
    total += produced;
    if (total > maxBytes) throw failed('lz4', `not within ${maxBytes} bytes`);
    at += size + (blockChecksum ? 4 : 0);
  }
  if (at + (contentChecksum ? 4 : 0) > src.length) cut();
  return total;
}

const lz4Codec: CompressionCodec = {
  name: 'lz4',
  compress: (data) => Buffer.from(lz4.compress(data)),
  decompress: (data, maxBytes) => {
    const size = lz4FrameSize(data, maxBytes);
    const out = Buffer.alloc(size);
    try {
      if (lz4.decompressFrame(data, out) !== size) throw new Error('block sizes disagree with the frame');
    } catch (error) {
      throw failed('lz4', (error as Error).message, error);
    }
    return out;
  },
};

const ZSTD_MAGIC = 0xfd2fb528;
/** A frame's window is what fzstd allocates before any output: refused past this (or maxBytes, if larger). */
const ZSTD_MAX_WINDOW = 8 * 1024 * 1024;

/** Walks every frame header (and block header) so no frame makes fzstd allocate a window past the limit. */
function checkZstdFrames(src: Buffer, maxWindow: number): void {
  const cut = (): never => {
    throw failed('zstd', 'the frame is cut or malformed');
  };
  let at = 0;
  while (at < src.length) {
    if (at + 8 > src.length) cut();
    const magic = src.readUInt32LE(at);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      at += 8 + src.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw failed('zstd', 'not a zstd frame (magic)');
    const descriptor = src[at + 4]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    const sizeFieldFlag = descriptor >> 6;
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
    const sizeBytes = sizeFieldFlag === 0 ? (singleSegment ? 1 : 0) : 1 << sizeFieldFlag;
    let header = at + 5;
    let window = 0;
    if (!singleSegment) {
      const w = src[header++]!;
      const base = 2 ** (10 + (w >> 3));
      window = base + (base / 8) * (w & 7);
    }
    header += dictionaryBytes;
    if (header + sizeBytes > src.length) cut();
    if (singleSegment) {
      // The window is the content size (read as fzstd does; 2-byte sizes are offset by 256).
      for (let b = 0; b < Math.min(sizeBytes, 6); b += 1) window += src[header + b]! * 2 ** (8 * b);
      if (sizeBytes === 8 && src.readUInt16LE(header + 6) !== 0) window = Number.MAX_SAFE_INTEGER;
      if (sizeBytes === 2) window += 256;
    }
    if (window > maxWindow) throw failed('zstd', `a frame needs a ${window}-byte window (allowed: ${maxWindow})`);
    at = header + sizeBytes;
    for (let last = false; !last;) {
      if (at + 3 > src.length) cut();
      const block = src.readUIntLE(at, 3);
      last = (block & 1) === 1;
      const type = (block >> 1) & 3;
      at += 3 + (type === 1 ? 1 : block >> 3);
    }
    if ((descriptor & 0x04) !== 0) at += 4;
    if (at > src.length) cut();
  }
}

const zstdCodec: CompressionCodec = {
  name: 'zstd',
  compress: () => {
    throw KafkaErrors.compression.create({ codec: 'zstd' }, 'zstd compression is not built (this build decompresses zstd only)');
  },
  decompress: (data, maxBytes) => {
    checkZstdFrames(data, Math.max(maxBytes, ZSTD_MAX_WINDOW));
    const parts: Buffer[] = [];
    let total = 0;
    const stream = new ZstdDecompress((chunk) => {
      total += chunk.length;
      if (total > maxBytes) throw failed('zstd', `not within ${maxBytes} bytes`);
      parts.push(Buffer.from(chunk));
    });
    try {
      stream.push(data, true);
    } catch (error) {
      if (isShardlineError(error, 'SL_KAFKA_COMPRESSION')) throw error;
      throw failed('zstd', (error as Error).message, error);
    }
    return Buffer.concat(parts, total);
  },
};

/** The codecs this build has: gzip, snappy, lz4 (both ways), zstd (decompression only). */
export const DEFAULT_CODECS: CompressionCodecs = new Map<number, CompressionCodec>([
  [CompressionType.gzip, gzip],
  [CompressionType.snappy, snappyCodec],
  [CompressionType.lz4, lz4Codec],
  [CompressionType.zstd, zstdCodec],
]);

export function codecFor(id: number, codecs: CompressionCodecs): CompressionCodec {
  const codec = codecs.get(id);
  if (codec === undefined) {
    const name = COMPRESSION_NAMES[id] ?? `codec ${id}`;
    throw KafkaErrors.compression.create({ codec: id }, `record batch compression ${name} is not supported by this build`);
  }
  return codec;
}
