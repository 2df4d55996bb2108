// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka's record batch v2.
// Every produced batch is checked and many fetched ones are framed, so it is on the hot path:
// @node-rs/crc32 (prebuilt for each platform, the CPU's CRC32 instruction) does it at memory
// speed. Where its prebuilt binary is missing, this table-driven one does the same work:
// "slicing-by-8" (eight 256-entry tables, eight input bytes per step), about 1 GB/s in V8.
import { createRequire } from 'node:module';

type NativeCrc32c = (input: Uint8Array, initialState?: number) => number;

const native: NativeCrc32c | undefined = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return undefined;
  }
})();

/** Which implementation computes CRC-32C in this process (docs/benchmarks.md; the tests check both). */
export const CRC32C_IMPLEMENTATION: 'native' | 'javascript' = native === undefined ? 'javascript' : 'native';
const TABLES = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t0[n] = c >>> 0;
  }
  // tables[k][n]: the CRC of byte n followed by k zero bytes, so eight bytes fold in one step.
  for (let k = 1; k < 8; k++) {
    const previous = tables[k - 1]!;
    const table = tables[k]!;
    for (let n = 0; n < 256; n++) table[n] = ((previous[n]! >>> 8) ^ t0[previous[n]! & 0xff]!) >>> 0;
  }
  return tables;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** CRC-32C of `bytes[start, end)`, as an unsigned 32-bit number ("123456789" gives 0xE3069283). */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (native !== undefined) return native(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)) >>> 0;
  return crc32cJs(bytes, start, end);
}

/** The table-driven CRC-32C, used when the native one cannot load. */
export function crc32cJs(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    crc ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    crc = T7[crc & 0xff]! ^ T6[(crc >>> 8) & 0xff]! ^ T5[(crc >>> 16) & 0xff]! ^ T4[crc >>> 24]!
      ^ T3[bytes[i + 4]!]! ^ T2[bytes[i + 5]!]! ^ T1[bytes[i + 6]!]! ^ T0[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = T0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
