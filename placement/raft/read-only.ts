// The leader's queue of ReadIndex requests waiting for a heartbeat round to confirm that it is
// still the leader (thesis §6.4). A request is keyed by its context bytes; a quorum of acks for
// one request also confirms every request queued before it.
import type { Message } from './types.js';

export interface ReadIndexStatus {
  readonly request: Message;
  /** The commit index when the request arrived: the read must see at least this. */
  readonly index: number;
  readonly acks: Set<number>;
}

function contextKey(context: Uint8Array): string {
  return Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString('hex');
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private readonly queue: string[] = [];

  add(index: number, request: Message): void {
    if (request.context === null) throw new Error('raft: read index request without context');
    const key = contextKey(request.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records an ack for the request with this context; returns who acked, or undefined if unknown. */
  recvAck(id: number, context: Uint8Array): ReadonlySet<number> | undefined {
    const status = this.pending.get(contextKey(context));
    if (status === undefined) return undefined;
    status.acks.add(id);
    return status.acks;
  }

  /** Removes and returns the requests up to and including the one with this context. */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const at = this.queue.indexOf(contextKey(context));
    if (at < 0) return [];
    const keys = this.queue.splice(0, at + 1);
    const released: ReadIndexStatus[] = [];
    for (const key of keys) {
      released.push(this.pending.get(key)!);
      this.pending.delete(key);
    }
    return released;
  }

  lastPendingContext(): Uint8Array | null {
    const key = this.queue.at(-1);
    return key === undefined ? null : this.pending.get(key)!.request.context;
  }
}
