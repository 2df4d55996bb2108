// Kafka's framing: every request and response is a 4-byte big-endian size followed by that many
// bytes. FrameSplitter turns a TCP byte stream (chunks cut anywhere) into whole frames. Pure.
//
// The size is checked the moment its 4 bytes arrive, before any of the frame is buffered: a
// negative size, or one above maxFrameBytes, is refused with SL_KAFKA_FRAME_SIZE and the splitter
// stays failed (the stream has lost its framing; the connection must close). Kafka's broker does
// the same with socket.request.max.bytes (default 100 MiB).
import { KafkaErrors } from './errors.js';
import type { ShardlineError } from '../../../base/index.js';

export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;

export type SplitResult = { ok: true; frames: Buffer[] } | { ok: false; error: ShardlineError };

export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: ShardlineError | undefined;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number { return this.buffered; }

  /** The size of the frame being received, once its size prefix is in and until it is complete; undefined otherwise. */
  get incompleteFrameBytes(): number | undefined {
    if (this.failed || this.buffered < 4) return undefined;
    const size = this.peekSize();
    return this.buffered < 4 + size ? size : undefined;
  }

  /** Adds a chunk; returns the frames it completed (bodies, without the size prefix). */
  push(chunk: Buffer): SplitResult {
    if (this.failed) return { ok: false, error: this.failed };
    if (chunk.length > 0) { this.chunks.push(chunk); this.buffered += chunk.length; }
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const size = this.peekSize();
      if (size < 0 || size > this.maxFrameBytes) {
        this.failed = KafkaErrors.frameSize.create({ size, max: this.maxFrameBytes }, size, this.maxFrameBytes);
        this.chunks = [];
        this.buffered = 0;
        return { ok: false, error: this.failed };
      }
      if (this.buffered < 4 + size) break;
      const all = this.take(4 + size);
      frames.push(all.subarray(4));
    }
    return { ok: true, frames };
  }

  private peekSize(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(this.buffered, 8)).subarray(0, 4);
    return head.readInt32BE(0);
  }

  /** Removes and returns the first `count` buffered bytes (one copy only when they span chunks). */
  private take(count: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= count) {
      const out = first.subarray(0, count);
      if (first.length === count) this.chunks.shift(); else this.chunks[0] = first.subarray(count);
      this.buffered -= count;
      return out;
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0]!;
      const n = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift(); else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= count;
    return out;
  }
}

/** Prefixes a frame body with its 4-byte size. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}
