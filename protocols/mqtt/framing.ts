// Cuts an MQTT byte stream into whole packets, checking the fixed header before buffering the
// body: a remaining length that is malformed (more than four length bytes, MQTT-1.5.5) or
// larger than the broker's maximum packet size is refused as soon as its header arrives, so a
// client cannot make the broker hold more than one maximum-size packet per connection.
// Pure: bytes in, packets or a refusal out.

export type FrameResult =
  | { kind: 'packets'; packets: Buffer[] }
  | { kind: 'malformed'; detail: string }
  | { kind: 'too-large'; size: number };

/** Never pushed to (push replaces it first). */
const NO_CHUNKS: Buffer[] = [];

export class PacketFramer {
  /** Unparsed bytes; shared empty list while there are none (idle connections). */
  #chunks: Buffer[] = NO_CHUNKS;
  #buffered = 0;
  /** Total size of the packet at the head once its header is known; 0 while unknown. */
  #needed = 0;

  constructor(private maxPacketSize: number) {}

  setMaxPacketSize(bytes: number): void {
    this.maxPacketSize = bytes;
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Total size of the packet being received, once its fixed header is in; 0 otherwise. */
  get partialPacketBytes(): number {
    return this.#needed;
  }

  push(chunk: Buffer): FrameResult {
    if (this.#chunks === NO_CHUNKS) this.#chunks = [chunk];
    else this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const packets: Buffer[] = [];
    // Waiting for the rest of a packet whose size is known: do not concatenate yet.
    if (this.#needed > 0 && this.#buffered < this.#needed) return { kind: 'packets', packets };
    const buffer = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#buffered);
    let position = 0;
    this.#needed = 0;
    for (;;) {
      const available = buffer.length - position;
      if (available < 2) break;
      const header = readRemainingLength(buffer, position + 1, available - 1);
      if (header === 'malformed') return { kind: 'malformed', detail: 'remaining length uses more than four bytes' };
      if (header === undefined) break;
      const total = 1 + header.lengthBytes + header.remaining;
      if (total > this.maxPacketSize) return { kind: 'too-large', size: total };
      if (available < total) {
        this.#needed = total;
        break;
      }
      packets.push(buffer.subarray(position, position + total));
      position += total;
    }
    const rest = buffer.subarray(position);
    this.#chunks = rest.length === 0 ? NO_CHUNKS : [rest];
    this.#buffered = rest.length;
    return { kind: 'packets', packets };
  }
}

/** The variable-byte remaining length at `at`; undefined while incomplete. */
function readRemainingLength(buffer: Buffer, at: number, available: number): { remaining: number; lengthBytes: number } | 'malformed' | undefined {
  let remaining = 0;
  let multiplier = 1;
  for (let lengthBytes = 0; lengthBytes < 4; lengthBytes += 1) {
    if (lengthBytes >= available) return undefined;
    const byte = buffer[at + lengthBytes] as number;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) return { remaining, lengthBytes: lengthBytes + 1 };
  }
  return 'malformed';
}
