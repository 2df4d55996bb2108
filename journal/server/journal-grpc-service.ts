// The handlers of the journal gRPC service (journal.proto): each one decodes a request, calls
// the Journal and encodes the answer or the error (grpc-status.ts). The transport (binding,
// shutdown) lives in journal-server.ts.
//
// Tails: each Tail call runs journal.tail with its own AbortController, aborted when the client
// cancels or the call closes, so a departed reader leaves no waiter behind. Writes respect the
// stream's backpressure (wait for 'drain'). stopLongCalls() ends every tail with
// SL_JOURNAL_SERVER_STOPPING and answers held replica fetches, so a shutdown does not wait for
// readers that never finish or for long polls.
//
// Read pages are bounded twice: a request's maxBytes is capped at READ_PAGE_MAX_BYTES before
// the journal reads, and the page is cut once its protobuf size would pass that bound (the
// journal's maxBytes counts key and value bytes but not headers). The first record always goes,
// so a reader never stalls; a record over GRPC_MESSAGE_MAX_BYTES fails with RESOURCE_EXHAUSTED.
import { once } from 'node:events';
import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isShardlineError } from '../../base/index.js';
import { JournalErrors } from '../errors.js';
import type { Journal } from '../journal.js';
import type { JournalRecord } from '../record.js';
import { ReplicaErrors } from '../replica/replica-errors.js';
import type { ReplicationNode } from '../replica/replication-node.js';
import type { WriterStamp } from '../replication/index.js';
import type { ReadOptions } from '../shard/read-limits.js';
import { lastOffsetOf, readBatchHeader } from '../segment/batch-format.js';
import { shardlineErrorToStatus } from './grpc-status.js';
import { JournalServerErrors } from './server-errors.js';
import * as wire from './wire.js';

const MiB = 1024 * 1024;
/** Largest read page the server returns, in bytes of protobuf (after the first record). */
export const READ_PAGE_MAX_BYTES = 16 * MiB;

const STOPPING = Symbol('server stopping');

interface ActiveTail {
  controller: AbortController;
  call: ServerWritableStream<wire.TailRequest, wire.RecordMessage>;
}

export interface JournalGrpcServiceOptions {
  journal: Journal;
  logger: Logger;
  /** The address clients reach the server at, for messages. */
  address: () => string;
  /**
   * The node's replication driver (started with --replica-peers): replicated shards take
   * appends on their leader only and show readers records below the high watermark only.
   */
  replication?: ReplicationNode;
}

export class JournalGrpcService {
  private readonly tails = new Set<ActiveTail>();
  /** Held replica fetches (long polls): a stopping server answers them at once. */
  private readonly heldFetches = new Set<AbortController>();
  private stopping = false;

  constructor(private readonly options: JournalGrpcServiceOptions) {}

  private get journal(): Journal {
    return this.options.journal;
  }

  /** The handlers, keyed by method name, for Server.addService. */
  implementation(): UntypedServiceImplementation {
    return {
      createShard: this.unary('CreateShard', (request: wire.CreateShardRequest) =>
        this.journal.createShard(request.name, wire.configFromWire(request.configJson, request.name)).then(wire.shardInfoToWire)),
      deleteShard: this.unary('DeleteShard', async (request: wire.NameRequest) => {
        await this.journal.deleteShard(request.name);
        return {};
      }),
      listShards: this.unary('ListShards', () => ({ shards: this.journal.listShards().map(wire.shardInfoToWire) })),
      append: this.unary('Append', (request: wire.AppendRequest) => this.append(request)),
      read: this.unary('Read', async (request: wire.ReadRequest) => {
        this.refuseEndedReaders(request.shard);
        return pageResponse(this.belowHighWatermark(request.shard, await this.journal.read(request.shard, request.fromOffset, boundedReadOptions(request))));
      }),
      readByTime: this.unary('ReadByTime', async (request: wire.ReadByTimeRequest) => {
        this.refuseEndedReaders(request.shard);
        return pageResponse(this.belowHighWatermark(request.shard, await this.journal.readByTime(request.shard, request.timestamp, boundedReadOptions(request))));
      }),
      tail: (call: ServerWritableStream<wire.TailRequest, wire.RecordMessage>) => this.tail(call),
      truncateAfter: this.unary('TruncateAfter', async (request: wire.TruncateAfterRequest) => {
        if (this.options.replication?.isReplicated(request.shard) === true) throw ReplicaErrors.replicatedShard.create({ shard: request.shard }, request.shard, 'TruncateAfter');
        await this.journal.truncateAfter(request.shard, request.offset);
        return {};
      }),
      info: this.unary('Info', (request: wire.NameRequest) => wire.shardInfoToWire(this.journal.info(request.name))),
      readBatches: this.unary('ReadBatches', async (request: wire.ReadBatchesRequest) => {
        this.refuseEndedReaders(request.shard);
        return batchPageResponse(this.batchesBelowHighWatermark(request.shard, await this.journal.readBatches(request.shard, request.fromOffset, boundedBatchReadOptions(request))));
      }),
      // An unreplicated shard: everything acknowledged is readable, so the high watermark is
      // the shard's visible end. A replicated one: the majority-durable end.
      highWatermark: this.unary('HighWatermark', (request: wire.HighWatermarkRequest) => {
        this.refuseEndedReaders(request.shard);
        const end = this.journal.info(request.shard).nextOffset;
        return { highWatermark: Math.min(end, this.options.replication?.highWatermark(request.shard) ?? end) };
      }),
      replicaFetch: this.replicaCall('ReplicaFetch', (request: wire.ReplicaFetchRequest, call) => {
        // Ended by the caller cancelling, or by the server stopping: a caught-up follower's fetch
        // is held up to seconds, and the server's graceful stop would otherwise wait it out.
        const held = new AbortController();
        call.on('cancelled', () => held.abort());
        if (this.stopping) held.abort();
        this.heldFetches.add(held);
        return this.replication('ReplicaFetch', request.shard).fetch(request, held.signal).finally(() => this.heldFetches.delete(held));
      }),
      replicaEpochEnd: this.replicaCall('ReplicaEpochEnd', (request: wire.ReplicaEpochEndRequest) => this.replication('ReplicaEpochEnd', request.shard).epochEnd(request)),
      replicaAnnounce: this.replicaCall('ReplicaAnnounce', async (request: wire.ReplicaAnnounceRequest) => {
        const node = this.replication('ReplicaAnnounce', request.shard);
        return { node: node.self, ...(await node.announce(request.shard, request.epoch, request.replicas, request.ledBefore === true, request.learner === true)) };
      }),
      replicaLead: this.replicaCall('ReplicaLead', async (request: wire.ReplicaLeadRequest) => {
        await this.replication('ReplicaLead', request.shard).lead(request.shard, request.epoch, request.leader, request.replicas, request.learners ?? []);
        return {};
      }),
      replicaStatus: this.replicaCall('ReplicaStatus', (request: wire.ReplicaStatusRequest) => this.replication('ReplicaStatus', request.shard).status(request.shard)),
      replicaStatuses: this.replicaCall('ReplicaStatuses', (request: wire.ReplicaStatusesRequest) => {
        const node = this.replication('ReplicaStatuses', '');
        return { entries: request.shards.map((shard) => statusEntry(node, shard)) };
      }),
    };
  }

  /** A replicated shard's appends go through its leader's replication; others straight to the journal. */
  private append(request: wire.AppendRequest): Promise<wire.AppendResponse> {
    const replication = this.options.replication;
    const records = wire.recordsFromWire(request.records);
    if (replication?.isReplicated(request.shard) === true) {
      const acks = request.acks ?? 'quorum';
      if (acks !== 'quorum' && acks !== 'leader') throw JournalErrors.invalidArgument.create({ shard: request.shard }, 'acks', acks, 'quorum or leader');
      return replication.append(request.shard, records, acks, writerOf(request));
    }
    return this.journal.append(request.shard, records, request.epoch === undefined ? {} : { epoch: request.epoch });
  }

  private replication(method: string, shard: string): ReplicationNode {
    const replication = this.options.replication;
    if (replication === undefined) throw ReplicaErrors.notReplicated.create({ shard, method }, shard, 'this node replicates nothing (not a journal node of a placement cluster, and no --replica-peers)');
    return replication;
  }

  /**
   * A replicated shard this node no longer serves readers of (its copy deleted, or out of the
   * replica set and following no leader): its HW stays where it was, so a read here would answer
   * a correct but short prefix for as long as the copy is kept. The caller is told to read from
   * the leader instead, with the coded error its tails end with (SL_REPL_NOT_REPLICATED).
   */
  private refuseEndedReaders(shard: string): void {
    const replication = this.options.replication;
    if (replication?.isReplicated(shard) !== true) return;
    const scope = replication.readerSignal(shard);
    if (scope.aborted) throw scope.reason;
  }

  /** Records a reader of a replicated shard may see: those below the HW. */
  private belowHighWatermark(shard: string, records: JournalRecord[]): JournalRecord[] {
    const hw = this.options.replication?.highWatermark(shard) ?? null;
    return hw === null ? records : records.filter((record) => record.offset < hw);
  }

  private batchesBelowHighWatermark(shard: string, read: { batches: Buffer[]; next: number }): { batches: Buffer[]; next: number } {
    const hw = this.options.replication?.highWatermark(shard) ?? null;
    if (hw === null) return read;
    const batches = read.batches.filter((batch) => lastOffsetOf(readBatchHeader(batch, 0)) < hw);
    if (batches.length === read.batches.length) return read;
    const last = batches.at(-1);
    const first = read.batches[0];
    const next = last !== undefined ? lastOffsetOf(readBatchHeader(last, 0)) + 1 : first === undefined ? read.next : readBatchHeader(first, 0).baseOffset;
    return { batches, next };
  }

  /** A Replica* call: refused by a node without replication before the handler runs (the token was checked before any call, journal-auth.ts). */
  private replicaCall<Request, Response>(method: string, handler: (request: Request, call: ServerUnaryCall<Request, Response>) => Promise<Response> | Response) {
    return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
      Promise.resolve()
        .then(() => {
          this.replication(method, (call.request as { shard?: string }).shard ?? '');
          return handler(call.request, call);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(this.errorStatus(method, error)),
        );
    };
  }

  /** Ends every running tail with SL_JOURNAL_SERVER_STOPPING and answers held replica fetches now. */
  stopLongCalls(): void {
    this.stopping = true;
    for (const tail of this.tails) tail.controller.abort(STOPPING);
    for (const held of this.heldFetches) held.abort();
  }

  get activeTails(): number {
    return this.tails.size;
  }

  private unary<Request, Response>(method: string, handler: (request: Request) => Promise<Response> | Response) {
    return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
      // Promise.resolve().then turns a synchronous throw (an unknown shard) into a rejection.
      Promise.resolve()
        .then(() => handler(call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(this.errorStatus(method, error)),
        );
    };
  }

  private tail(call: ServerWritableStream<wire.TailRequest, wire.RecordMessage>): void {
    const controller = new AbortController();
    const entry: ActiveTail = { controller, call };
    const stop = (): void => controller.abort();
    call.on('cancelled', stop);
    call.on('close', stop);
    // Should a cancellation be processed before this handler runs, its 'cancelled' event is
    // already past; the flag still tells.
    if (call.cancelled) stop();
    this.tails.add(entry);
    // pumpTail reports its own failures to the call; the catch keeps anything else from floating.
    this.pumpTail(call, controller.signal)
      .catch((error: unknown) => this.options.logger.error({ err: error }, 'tail stream failed'))
      .finally(() => {
        this.tails.delete(entry);
        call.off('cancelled', stop);
        call.off('close', stop);
      });
  }

  /**
   * Copies records from the journal's tail to the call until either side ends it. A replicated
   * shard's tail also ends, with the coded error the replication node gives, once this node
   * stops serving the shard's readers (its copy deleted, or out of the replica set with no
   * leader to follow): its log and HW would never move again, and the client is to read on
   * from the leader (a broker's PlacedShardStore re-opens the tail there).
   */
  private async pumpTail(call: ServerWritableStream<wire.TailRequest, wire.RecordMessage>, signal: AbortSignal): Promise<void> {
    const shard = call.request.shard;
    const replication = this.options.replication;
    const replicated = replication?.isReplicated(shard) === true;
    const scope = replicated ? (replication as ReplicationNode).readerSignal(shard) : null;
    // One controller for both ends, with listeners removed at the end: the scope lives as long
    // as the replica, and AbortSignal.any would keep every tail's signal reachable from it.
    const reading = new AbortController();
    const stop = (): void => reading.abort();
    signal.addEventListener('abort', stop, { once: true });
    scope?.addEventListener('abort', stop, { once: true });
    if (signal.aborted || scope?.aborted === true) stop();
    try {
      for await (const record of this.journal.tail(shard, call.request.fromOffset, { signal: reading.signal })) {
        // A replicated shard's record goes out only once the HW passes it, and only if it is
        // still the record the log holds there: a record read above the HW (this one, or one
        // read in the same page while an earlier one waited) may have been cut by a
        // follower's truncation and replaced since. The same epoch at its offset means the
        // same record (ReplicationNode.epochAt): so it is read again only when a cut replaced
        // it, not once per record sent. Nothing at this offset any more (the cut took it, and
        // the new leader's epoch-start batch, which readers do not see, or nothing yet stands
        // there): the tail goes on.
        let next = record;
        if (replicated) {
          const node = replication as ReplicationNode;
          if ((node.highWatermark(shard) ?? -1) <= record.offset && !(await node.waitForHighWatermark(shard, record.offset, reading.signal))) break;
          if (node.epochAt(shard, record.offset) !== record.epoch) {
            const [committed] = await this.journal.read(shard, record.offset, { maxRecords: 1 });
            if (committed === undefined || committed.offset !== record.offset) continue;
            next = committed;
          }
        }
        if (!call.write(wire.recordToWire(next))) await once(call, 'drain', { signal: reading.signal }).catch(() => undefined);
      }
    } catch (error) {
      // The replica's end closes its shard too (a deleted copy): its reason says why.
      if (!signal.aborted) call.emit('error', this.errorStatus('Tail', scope?.aborted === true ? scope.reason : error));
      return;
    } finally {
      signal.removeEventListener('abort', stop);
      scope?.removeEventListener('abort', stop);
    }
    if (signal.aborted) {
      // journal.tail returns only when a signal aborted: the client left (nothing to send) or
      // the server is stopping (tell the client, so it reconnects rather than thinking it is done).
      if (signal.reason === STOPPING) call.emit('error', shardlineErrorToStatus(JournalServerErrors.stopping.create({ shard }, this.options.address())));
      return;
    }
    if (scope?.aborted === true) call.emit('error', this.errorStatus('Tail', scope.reason));
  }

  private errorStatus(method: string, error: unknown): Partial<StatusObject> {
    if (isShardlineError(error)) {
      this.options.logger.debug({ method, code: error.code, context: error.context }, `journal call refused: ${error.message}`);
      return shardlineErrorToStatus(error);
    }
    this.options.logger.error({ method, err: error }, 'journal call failed with an unexpected error');
    const message = error instanceof Error ? error.message : String(error);
    return { code: GrpcStatus.INTERNAL, details: `unexpected journal server error in ${method}: ${message}` };
  }
}

/** The caller's maxBytes for a batch read, capped like a record read's. */
function boundedBatchReadOptions(request: { maxBytes?: number }): { maxBytes?: number } {
  const { maxBytes } = boundedReadOptions({ ...(request.maxBytes === undefined ? {} : { maxBytes: request.maxBytes }) });
  return maxBytes === undefined ? {} : { maxBytes };
}

/** The caller's maxBytes, capped at READ_PAGE_MAX_BYTES; invalid values pass through for the journal to refuse. */
function boundedReadOptions(request: { maxRecords?: number; maxBytes?: number }): ReadOptions {
  const options = wire.readLimitsFromWire(request);
  const maxBytes = options.maxBytes ?? READ_PAGE_MAX_BYTES;
  if (Number.isSafeInteger(maxBytes) && maxBytes > READ_PAGE_MAX_BYTES) return { ...options, maxBytes: READ_PAGE_MAX_BYTES };
  return options;
}

/**
 * The batches that fit READ_PAGE_MAX_BYTES, and at least the first one. The journal stops once
 * maxBytes is spent but counts the batch that crosses it whole, so a page could otherwise reach
 * the cap plus a 64 MiB batch, past GRPC_MESSAGE_MAX_BYTES; `next` follows the cut.
 */
function batchPageResponse(read: { batches: Buffer[]; next: number }): wire.ReadBatchesResponse {
  const page: Buffer[] = [];
  let bytes = 0;
  for (const batch of read.batches) {
    bytes += batch.length;
    if (page.length > 0 && bytes > READ_PAGE_MAX_BYTES) {
      const last = page[page.length - 1] as Buffer;
      return { batches: page, next: lastOffsetOf(readBatchHeader(last, 0)) + 1 };
    }
    page.push(batch);
  }
  return { batches: page, next: read.next };
}

/** The records that fit READ_PAGE_MAX_BYTES of protobuf, and at least the first one. */
function pageResponse(records: JournalRecord[]): wire.ReadResponse {
  const page: wire.RecordMessage[] = [];
  let bytes = 0;
  for (const record of records) {
    bytes += wire.recordWireBytes(record);
    if (page.length > 0 && bytes > READ_PAGE_MAX_BYTES) break;
    page.push(wire.recordToWire(record));
  }
  return { records: page };
}

/** The writer stamp of an idempotent append: all three fields, or none. */
function writerOf(request: wire.AppendRequest): WriterStamp | undefined {
  const { writerId: id, writerSequence: sequence, writerAckedBelow: ackedBelow } = request;
  if (id === undefined && sequence === undefined && ackedBelow === undefined) return undefined;
  if (id === undefined || sequence === undefined || ackedBelow === undefined || !Number.isSafeInteger(id) || id < 0) {
    throw JournalErrors.invalidArgument.create({ shard: request.shard }, 'writer', `${String(id)}/${String(sequence)}/${String(ackedBelow)}`, 'writer id below 2^53, sequence and acked-below all set, or none');
  }
  return { id, sequence, ackedBelow };
}

/** One shard's entry of a ReplicaStatuses answer: what ReplicaStatus would answer, or its error's code. */
function statusEntry(node: ReplicationNode, shard: string): wire.ReplicaStatusEntry {
  try {
    return { shard, status: node.status(shard), errorCode: '', errorMessage: '' };
  } catch (error) {
    if (!isShardlineError(error)) throw error;
    return { shard, status: null, errorCode: error.code, errorMessage: error.message };
  }
}
