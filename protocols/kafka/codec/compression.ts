// The compression hook of record batches: attribute bits 0-2 name a codec, and this table maps
// each id to a compress and a decompress function. gzip is built on node:zlib; snappy (2), lz4
// (3) and zstd (4) need libraries that are not dependencies yet (Node 20's zlib has no zstd), so
// a batch using them fails with SL_KAFKA_COMPRESSION, which a server turns into Kafka's
// UNSUPPORTED_COMPRESSION_TYPE (76) rather than a closed connection.
//
// Decompression takes a byte limit: a small compressed payload can expand a thousand-fold, so
// the output is capped while inflating, not checked afterwards.
import { gunzipSync, gzipSync } from 'node:zlib';
import { KafkaErrors } from './errors.js';

export const CompressionType = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export interface CompressionCodec {
  readonly name: string;
  compress(data: Buffer): Buffer;
  /** Inflates `data`; fails with SL_KAFKA_COMPRESSION past `maxBytes` or on corrupt input. */
  decompress(data: Buffer, maxBytes: number): Buffer;
}

export type CompressionCodecs = ReadonlyMap<number, CompressionCodec>;

const gzip: CompressionCodec = {
  name: 'gzip',
  compress: (data) => gzipSync(data),
  decompress: (data, maxBytes) => {
    try {
      return gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) });
    } catch (error) {
      throw KafkaErrors.compression.withCause(error, { codec: 'gzip' }, `gzip payload does not inflate within ${maxBytes} bytes: ${(error as Error).message}`);
    }
  },
};

/** The codecs this build has: gzip. Pass a larger map to add snappy, lz4 or zstd. */
export const DEFAULT_CODECS: CompressionCodecs = new Map([[CompressionType.gzip, gzip]]);

export function codecFor(id: number, codecs: CompressionCodecs): CompressionCodec {
  const codec = codecs.get(id);
  if (codec === undefined) {
    const name = COMPRESSION_NAMES[id] ?? `codec ${id}`;
    throw KafkaErrors.compression.create({ codec: id }, `record batch compression ${name} is not supported by this build`);
  }
  return codec;
}
