// Output side shared by the MQTT transports (TCP, TLS, WebSocket): packets written in one tick
// are gathered into one buffer and handed to the socket once. A write (and its bookkeeping) per
// delivered message is what limits fan-in and fan-out otherwise.

/** Bytes a connection may hold unsent before its session stops sending (per connection). */
export const SOCKET_BUFFER_BYTES = 256 * 1024;
/** Packets are gathered up to this many bytes per write. */
export const GATHER_BYTES = 64 * 1024;

export abstract class GatheringWriter {
  #gathered: Buffer[] | undefined;
  #gatheredBytes = 0;
  #flushScheduled = false;

  /** Hands bytes to the underlying socket (nothing when it is gone). */
  protected abstract sendNow(data: Buffer): void;

  /** Bytes the underlying socket holds unsent. */
  protected abstract get unsentBytes(): number;

  write(data: Buffer): boolean {
    if (data.length >= GATHER_BYTES) {
      // Large payloads go out as they are, after whatever was gathered before them.
      this.flush();
      this.sendNow(data);
    } else {
      (this.#gathered ??= []).push(data);
      this.#gatheredBytes += data.length;
      if (this.#gatheredBytes >= GATHER_BYTES) this.flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(flushWriter, this);
      }
    }
    // Backpressure past a quarter MiB, not Node's 16 KiB high-water mark: one large message
    // would otherwise stall a fast reader until the next 'drain' (which fires, since any write
    // that leaves this much buffered has returned false).
    return this.unsentBytes + this.#gatheredBytes < SOCKET_BUFFER_BYTES;
  }

  flush(): void {
    this.#flushScheduled = false;
    const gathered = this.#gathered;
    if (gathered === undefined || gathered.length === 0) return;
    const data = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, this.#gatheredBytes);
    this.#gathered = undefined;
    this.#gatheredBytes = 0;
    this.sendNow(data);
  }
}

// One shared function rather than a closure per connection.
function flushWriter(writer: GatheringWriter): void {
  writer.flush();
}
