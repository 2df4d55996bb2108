// A journal in another process, reached over gRPC (journal/server/journal.proto), behind the
// ShardStore interface.
//
// Errors: a failed call whose status carries `sl-code` becomes the same ShardlineError the
// journal raised (code, message, context), so callers cannot tell this adapter from the local
// one. A status without it is a transport failure and gets a shard-model code (errors.ts):
// UNAVAILABLE/CANCELLED → SL_REMOTE_UNAVAILABLE, DEADLINE_EXCEEDED → SL_REMOTE_TIMEOUT,
// RESOURCE_EXHAUSTED → SL_REMOTE_MESSAGE_TOO_LARGE, anything else → SL_REMOTE_SERVER_ERROR.
//
// Calls never wait for a server that is down: grpc-js fails a call at once when the channel
// cannot connect (waitForReady is false), and every unary call has a deadline (callTimeoutMs).
// Tails have no deadline; they end when the consumer stops iterating or its signal aborts,
// which cancels the call, and the server then stops its journal tail.
//
// Security: every call carries the credentials' cluster token, and the channel speaks mutual
// TLS when they hold TLS material (journal/server/journal-credentials.ts). A TLS handshake the
// server refuses looks like an unreachable server: connect() fails with SL_REMOTE_UNAVAILABLE.
import { Metadata, status as GrpcStatus, connectivityState, type Client, type ClientReadableStream, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import {
  JournalErrors,
  journalCallMetadata,
  journalClient,
  NO_JOURNAL_CREDENTIALS,
  journalService,
  journalWire as wire,
  statusToShardlineError,
  validateShardName,
  type AppendOptions,
  type AppendResult,
  type CompactionReport,
  type JournalCredentials,
  type JournalMethods,
  type JournalRecord,
  type ReadOptions,
  type RecordInput,
  type ShardConfig,
  type ShardInfo,
  type WriterStamp,
} from '../../journal/index.js';
import type { ShardlineError } from '../../base/index.js';
import { ShardModelErrors } from '../errors.js';
import type { BatchRead, BatchReadOptions, ShardStore, TailOptions } from '../shard-store.js';

/** Append options of a journal server: an idempotent append carries its writer stamp. */
export interface RemoteAppendOptions extends AppendOptions {
  writer?: WriterStamp;
}

export interface RemoteShardStoreOptions {
  /** The cluster token every call carries and mutual TLS; default none (plaintext, no token). */
  credentials?: JournalCredentials;
  /** Deadline of each call except Tail, in ms; default 30 000 (an fsync-mode append under load can take seconds). */
  callTimeoutMs?: number;
  /** How long connect() waits for the server to accept a connection, in ms; default 5 000. */
  connectTimeoutMs?: number;
  /**
   * Longest wait between reconnection attempts after the server went away, in ms; default
   * 2 000. Calls made while the server is unreachable fail at once with SL_REMOTE_UNAVAILABLE,
   * so this bounds how long after the server is back they keep failing (grpc-js would
   * otherwise back off to 120 s).
   */
  reconnectBackoffMaxMs?: number;
}

export const DEFAULT_REMOTE_CALL_TIMEOUT_MS = 30_000;
export const DEFAULT_REMOTE_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS = 2_000;
const RECONNECT_BACKOFF_INITIAL_MS = 100;

const ADDRESS_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

type UnaryMethod = Exclude<keyof JournalMethods, 'tail'>;
type RequestOf<M extends keyof JournalMethods> = Parameters<JournalMethods[M]['requestSerialize']>[0];
type ResponseOf<M extends keyof JournalMethods> = ReturnType<JournalMethods[M]['responseDeserialize']>;

export class RemoteShardStore implements ShardStore {
  private closed = false;
  /** Cancels of the tails in progress, so close() ends them. */
  private readonly tails = new Set<() => void>();
  private readonly methods = journalService().methods;

  private constructor(
    private readonly client: Client,
    readonly address: string,
    private readonly callTimeoutMs: number,
    private readonly credentials: JournalCredentials,
  ) {}

  /**
   * Connects to a journal server at host:port. Resolves once a connection is up; rejects with
   * SL_REMOTE_UNAVAILABLE when the server refuses or does not answer within connectTimeoutMs.
   * A later loss of the connection is repaired by the next call.
   */
  static async connect(address: string, options: RemoteShardStoreOptions = {}): Promise<RemoteShardStore> {
    const match = ADDRESS_PATTERN.exec(address);
    const port = Number(match?.[2]);
    if (match === null || port < 1 || port > 65_535) throw ShardModelErrors.invalidAddress.create({ address }, address);
    const backoffMaxMs = options.reconnectBackoffMaxMs ?? DEFAULT_REMOTE_RECONNECT_BACKOFF_MAX_MS;
    const credentials = options.credentials ?? NO_JOURNAL_CREDENTIALS;
    const client = journalClient(address, credentials, {
      'grpc.initial_reconnect_backoff_ms': Math.min(RECONNECT_BACKOFF_INITIAL_MS, backoffMaxMs),
      'grpc.max_reconnect_backoff_ms': backoffMaxMs,
    });
    try {
      // A refused TLS handshake looks like a refused connection: say which side to check.
      const failure = credentials.tls === undefined ? 'connection refused or failed (a journal with journal-tls refuses plaintext)' : 'connection or TLS handshake failed (check journal-tls and both ends\' certificates and CA)';
      await waitUntilConnected(client, address, options.connectTimeoutMs ?? DEFAULT_REMOTE_CONNECT_TIMEOUT_MS, failure);
    } catch (error) {
      client.close();
      throw error;
    }
    return new RemoteShardStore(client, address, options.callTimeoutMs ?? DEFAULT_REMOTE_CALL_TIMEOUT_MS, credentials);
  }

  async create(name: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    const request = { name: checkName(name), configJson: wire.configToWire(config) };
    return wire.shardInfoFromWire(await this.call('createShard', request, name));
  }

  async delete(name: string): Promise<void> {
    await this.call('deleteShard', { name: checkName(name) }, name);
  }

  async list(): Promise<ShardInfo[]> {
    return (await this.call('listShards', {}, '')).shards.map(wire.shardInfoFromWire);
  }

  /** With `writer`, an idempotent append to a replicated shard (PlacedShardStore sends it). */
  async append(name: string, records: readonly RecordInput[], options: RemoteAppendOptions = {}): Promise<AppendResult> {
    const { writer } = options;
    const request = {
      shard: checkName(name),
      records: wire.recordsToWire(records, name),
      ...(options.epoch === undefined ? {} : { epoch: wire.wireInteger('epoch', options.epoch, name) }),
      ...(writer === undefined ? {} : { writerId: writer.id, writerSequence: writer.sequence, writerAckedBelow: writer.ackedBelow }),
    };
    const { baseOffset, lastOffset } = await this.call('append', request, name);
    return { baseOffset, lastOffset };
  }

  async read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]> {
    const request = { shard: checkName(name), fromOffset: wire.wireInteger('fromOffset', fromOffset, name), ...wire.readLimitsToWire(options, name) };
    return (await this.call('read', request, name)).records.map(wire.recordFromWire);
  }

  /** One page: the server also bounds it (16 MiB after the first batch), so `next` may fall short of maxBytes. */
  async readBatches(name: string, fromOffset: number, options?: BatchReadOptions): Promise<BatchRead> {
    const request = {
      shard: checkName(name),
      fromOffset: wire.wireInteger('fromOffset', fromOffset, name),
      ...(options?.maxBytes === undefined ? {} : { maxBytes: wire.wireInteger('maxBytes', options.maxBytes, name) }),
    };
    const { batches, next } = await this.call('readBatches', request, name);
    return { batches, next };
  }

  async highWatermark(name: string): Promise<number> {
    return (await this.call('highWatermark', { shard: checkName(name) }, name)).highWatermark;
  }

  async readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]> {
    const request = { shard: checkName(name), timestamp: wire.wireInteger('timestamp', timestamp, name), ...wire.readLimitsToWire(options, name) };
    return (await this.call('readByTime', request, name)).records.map(wire.recordFromWire);
  }

  /**
   * Streams records from the server. The call starts on the first next(); breaking out of the
   * loop, aborting the signal or closing the store cancels it (and the server's tail with it).
   */
  async *tail(name: string, fromOffset: number, options: TailOptions = {}): AsyncGenerator<JournalRecord> {
    const request = { shard: checkName(name), fromOffset: wire.wireInteger('fromOffset', fromOffset, name) };
    this.assertOpen(name);
    const { signal } = options;
    const aborted = (): boolean => signal?.aborted === true;
    if (aborted()) return;
    const method = this.methods.tail;
    const call: ClientReadableStream<wire.RecordMessage> = this.client.makeServerStreamRequest(
      method.path, method.requestSerialize, method.responseDeserialize, request, journalCallMetadata(this.credentials), {},
    );
    let cancelled = false;
    const cancel = (): void => {
      cancelled = true;
      call.cancel();
    };
    // Defensive: the async iterator below reports errors, but grpc-js emits the CANCELLED
    // status of a call we cancel after the iterator may have let go of the stream, and an
    // 'error' event with no listener would throw. (Not observed in the tests; cheap to keep.)
    call.on('error', () => undefined);
    signal?.addEventListener('abort', cancel, { once: true });
    this.tails.add(cancel);
    try {
      for await (const message of call as AsyncIterable<wire.RecordMessage>) yield wire.recordFromWire(message);
    } catch (error) {
      if (cancelled && (error as ServiceError).code === GrpcStatus.CANCELLED) {
        // Cancelled by the signal: the tail ends quietly. Cancelled by close(): say so.
        if (aborted()) return;
        throw JournalErrors.closed.create({ shard: name }, `remote shard store for ${this.address}`);
      }
      throw this.toShardlineError(error as ServiceError, 'Tail');
    } finally {
      signal?.removeEventListener('abort', cancel);
      this.tails.delete(cancel);
      if (!cancelled) cancel();
    }
  }

  /**
   * The journal service has no compact call: the journal server compacts its shards in the
   * background on its own schedule. Refused rather than faked, so a caller never believes a
   * shard was compacted when it was not.
   */
  async compact(name: string): Promise<CompactionReport> {
    checkName(name);
    throw ShardModelErrors.remoteUnsupported.create({ address: this.address, shard: name }, this.address, 'compact', 'the journal server compacts in the background on its own schedule');
  }

  async truncateAfter(name: string, offset: number): Promise<void> {
    await this.call('truncateAfter', { shard: checkName(name), offset: wire.wireInteger('offset', offset, name) }, name);
  }

  async info(name: string): Promise<ShardInfo> {
    return wire.shardInfoFromWire(await this.call('info', { name: checkName(name) }, name));
  }

  /** Ends this store's tails and closes the connection; calls after close fail with SL_JOURNAL_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of this.tails) cancel();
    this.client.close();
  }

  private call<M extends UnaryMethod>(method: M, request: RequestOf<M>, shard: string): Promise<ResponseOf<M>> {
    this.assertOpen(shard);
    const definition = this.methods[method] as unknown as MethodDefinition<RequestOf<M>, ResponseOf<M>>;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path, definition.requestSerialize, definition.responseDeserialize, request, journalCallMetadata(this.credentials),
        { deadline: Date.now() + this.callTimeoutMs },
        (error, response) => {
          if (error !== null || response === undefined) reject(this.toShardlineError(error ?? missingResponse(method), definition.path.slice(definition.path.lastIndexOf('/') + 1)));
          else resolve(response);
        },
      );
    });
  }

  private toShardlineError(error: ServiceError, method: string): ShardlineError {
    const coded = statusToShardlineError(error);
    if (coded !== null) return coded;
    const context = { address: this.address, method, grpcStatus: GrpcStatus[error.code] };
    switch (error.code) {
      case GrpcStatus.UNAVAILABLE:
      case GrpcStatus.CANCELLED:
        return ShardModelErrors.remoteUnavailable.withCause(error, context, this.address, error.details);
      case GrpcStatus.DEADLINE_EXCEEDED:
        return ShardModelErrors.remoteTimeout.withCause(error, context, this.address, method, this.callTimeoutMs);
      case GrpcStatus.RESOURCE_EXHAUSTED:
        return ShardModelErrors.remoteMessageTooLarge.withCause(error, context, this.address, method, error.details);
      default:
        return ShardModelErrors.remoteServerError.withCause(error, context, this.address, method, String(GrpcStatus[error.code]), error.details);
    }
  }

  private assertOpen(shard: string): void {
    if (this.closed) throw JournalErrors.closed.create({ shard }, `remote shard store for ${this.address}`);
  }
}

/** Names go as they are (the journal checks them); only a non-string, which protobuf would coerce, is refused here. */
function checkName(name: string): string {
  return typeof name === 'string' ? name : validateShardName(name);
}

function missingResponse(method: string): ServiceError {
  return Object.assign(new Error(`${method}: call ended without a response`), { code: GrpcStatus.INTERNAL, details: 'call ended without a response', metadata: new Metadata() });
}

/**
 * Resolves when the channel is READY. Fails fast when the first connection attempt fails
 * (TRANSIENT_FAILURE, e.g. connection refused), rather than retrying until the deadline.
 */
function waitUntilConnected(client: Client, address: string, timeoutMs: number, failure: string): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.READY) return resolve();
      if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) {
        return reject(ShardModelErrors.remoteUnavailable.create({ address }, address, failure));
      }
      channel.watchConnectivityState(state, deadline, (error) => {
        if (error === undefined) check();
        else reject(ShardModelErrors.remoteUnavailable.create({ address }, address, `no connection within ${timeoutMs} ms`));
      });
    };
    check();
  });
}
