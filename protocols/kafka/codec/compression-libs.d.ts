// Type declarations for the two compression libraries that ship none (both CommonJS, pure JS).
declare module 'snappyjs' {
  /** Raw snappy block; fails (without allocating) when the declared length exceeds maxLength. */
  export function uncompress(compressed: Uint8Array, maxLength?: number): Uint8Array;
  export function compress(uncompressed: Uint8Array): Uint8Array;
}

declare module 'lz4js' {
  /** Decodes an LZ4 frame into dst; returns the bytes written. */
  export function decompressFrame(src: Uint8Array, dst: Uint8Array): number;
  export function compress(src: Uint8Array): Uint8Array;
}
