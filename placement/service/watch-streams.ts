// The Watch streams of one placement node, fed from its replica's watch history (changes as
// this node applied them; ordered, not linearizable).
//
// Each stream remembers `next`, the first revision it has not been sent. After every Ready
// cycle (and when a stream opens or drains) it gets the history's changes from `next` on, in
// batches of at most batchChanges. Bounds: a stream writes only while gRPC says it can take
// more (call.write returns true); once it says stop, the stream is blocked and takes nothing
// until 'drain', so what a stream buffers is at most the stream's high-water mark plus one
// history answer, and the history itself is bounded (watchHistoryChanges). A stream blocked
// for longer than stallMs, or one the history moved past while it was blocked, is cut off with
// SL_PLACEMENT_WATCH_TOO_SLOW. One the history moved past otherwise (a snapshot installed
// here) ends with SL_PLACEMENT_REVISION_COMPACTED: the client re-reads and watches again.
import type { ServerWritableStream, StatusObject } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ShardlineError } from '../../base/index.js';
import type { WatchAnswer } from '../replica/index.js';
import { PlacementErrors } from './errors.js';
import { shardlineErrorToStatus } from './grpc-status.js';
import type { WatchBatch, WatchRequest } from './placement-proto.js';

type WatchCall = ServerWritableStream<WatchRequest, WatchBatch>;

interface Stream {
  readonly call: WatchCall;
  next: number;
  blocked: boolean;
  stallTimer: NodeJS.Timeout | null;
}

export interface WatchStreamsOptions {
  readonly watch: (fromRevision: number) => WatchAnswer;
  readonly logger: Logger;
  readonly batchChanges: number;
  readonly stallMs: number;
  readonly maxStreams: number;
}

export class WatchStreams {
  private readonly streams = new Set<Stream>();

  constructor(private readonly options: WatchStreamsOptions) {}

  get size(): number {
    return this.streams.size;
  }

  open(call: WatchCall): void {
    if (this.streams.size >= this.options.maxStreams) {
      call.emit('error', shardlineErrorToStatus(PlacementErrors.watchTooSlow.create({ streams: this.streams.size }, `${this.streams.size} watch streams are open, limit ${this.options.maxStreams} (maxWatchStreams)`)));
      return;
    }
    const stream: Stream = { call, next: Math.max(1, call.request.fromRevision), blocked: false, stallTimer: null };
    this.streams.add(stream);
    const forget = (): void => this.forget(stream);
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.on('drain', () => {
      if (!this.streams.has(stream)) return;
      stream.blocked = false;
      if (stream.stallTimer !== null) clearTimeout(stream.stallTimer);
      stream.stallTimer = null;
      this.push(stream, true, true);
    });
    this.push(stream, false, true);
  }

  /** After a cycle: every unblocked stream gets what it has not seen. */
  pushAll(): void {
    for (const stream of this.streams) if (!stream.blocked) this.push(stream, false, false);
  }

  /** Ends every stream with `error` (the server is stopping). */
  endAll(error: ShardlineError): void {
    for (const stream of [...this.streams]) this.end(stream, shardlineErrorToStatus(error));
  }

  private push(stream: Stream, afterBlock: boolean, first: boolean): void {
    const answer = this.options.watch(stream.next);
    if (answer.status === 'revision-compacted') {
      const error = afterBlock
        ? PlacementErrors.watchTooSlow.create({ fromRevision: stream.next, oldestRevision: answer.oldestRevision }, `changes from revision ${stream.next} were dropped from the watch history while the stream was blocked`)
        : PlacementErrors.revisionCompacted.create({ fromRevision: stream.next, oldestRevision: answer.oldestRevision }, stream.next, answer.oldestRevision);
      this.end(stream, shardlineErrorToStatus(error));
      return;
    }
    // The first batch goes even when empty: it tells the client the stream is set up and where
    // this node stands. Later ones go when the revision moved (refusals move it without a change).
    if (!first && answer.revision < stream.next) return;
    const changes = answer.changes;
    let writable = true;
    for (let start = 0; start < changes.length || (start === 0 && changes.length === 0); start += this.options.batchChanges) {
      const part = changes.slice(start, start + this.options.batchChanges);
      const last = start + this.options.batchChanges >= changes.length;
      // A cut batch names the revision of its last change, so a client resuming after it
      // never skips the rest of the command it was cut in (whole revisions stay whole).
      const revision = last ? answer.revision : (part.at(-1)?.revision ?? answer.revision) - 1;
      writable = stream.call.write({ changes: part.map((c) => ({ revision: c.revision, kind: c.kind, key: c.key, op: c.op })), revision });
      if (changes.length === 0) break;
    }
    stream.next = Math.max(stream.next, answer.revision + 1);
    if (!writable) this.block(stream);
  }

  private block(stream: Stream): void {
    stream.blocked = true;
    stream.stallTimer = setTimeout(() => {
      const error = PlacementErrors.watchTooSlow.create({ fromRevision: stream.next, stallMs: this.options.stallMs }, `the stream took no data for ${this.options.stallMs} ms (watchStallMs)`);
      this.options.logger.warn({ peer: stream.call.getPeer(), next: stream.next }, error.message);
      this.end(stream, shardlineErrorToStatus(error));
    }, this.options.stallMs);
  }

  private end(stream: Stream, status: StatusObject): void {
    this.forget(stream);
    stream.call.emit('error', status);
  }

  private forget(stream: Stream): void {
    if (stream.stallTimer !== null) clearTimeout(stream.stallTimer);
    stream.stallTimer = null;
    this.streams.delete(stream);
  }
}
