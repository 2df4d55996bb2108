// xxhash64 (xxhash-wasm) for batch and index checksums. The wasm module is instantiated once
// at import; its hash functions are synchronous afterwards.
import xxhash from 'xxhash-wasm';

const hasher = await xxhash();

export const CHECKSUM_SEED = 0n;

export function checksum64(bytes: Uint8Array): bigint {
  return hasher.h64Raw(bytes, CHECKSUM_SEED);
}
