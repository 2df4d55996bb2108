// FNV-1a (32-bit), the one non-cryptographic hash of the code base. It must give the same value
// in every version and process: shard-model/shard-map.ts maps a topic to its data shard with it,
// so a changed result would look for existing history in the wrong shard. base/hash.test.ts pins
// it against the copies it replaced.

const OFFSET_BASIS = 0x811c9dc5;
const PRIME = 0x01000193;

/** FNV-1a over the string's UTF-16 code units (not its UTF-8 bytes), as an unsigned 32-bit integer. */
export function fnv1a(text: string): number {
  let hash = OFFSET_BASIS;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, PRIME);
  }
  return hash >>> 0;
}

/** FNV-1a over bytes, as an unsigned 32-bit integer. */
export function fnv1aBytes(bytes: Uint8Array): number {
  let hash = OFFSET_BASIS;
  for (let i = 0; i < bytes.length; i += 1) {
    hash ^= bytes[i] as number;
    hash = Math.imul(hash, PRIME);
  }
  return hash >>> 0;
}
