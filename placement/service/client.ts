// PlacementClient: what journal and broker nodes (and ctl) use to talk to a placement group.
//
// - Finds the leader: starts at the first address, follows SL_PLACEMENT_NOT_LEADER hints (the
//   leader's address in the error's context), and moves to the next address when a node is
//   unreachable, stopping, or knows no leader.
// - Proposals are numbered 1, 2, 3... under one client id and sent one at a time (the state
//   machine's session keeps one outstanding command per client). A retry after a lost answer,
//   a drop or a timeout resends the same client id and sequence, which the state machine
//   applies at most once, so a retried write is applied once.
// - Every request is bounded: at most maxAttempts calls within requestTimeoutMs, each call
//   with its own deadline (attemptTimeoutMs), backoff between failed calls; past that
//   SL_PLACEMENT_UNAVAILABLE. Refusals that a retry cannot fix (bad token, wrong cluster,
//   malformed command) are thrown at once.
// - watch(from) follows the change stream across node failures: it resubscribes from the
//   revision after the last one it saw; when the node no longer has those changes it reads the
//   whole state (linearizable) and hands it over as a `reset` before going on from there.
//
// A client id must not be shared by two live clients; the default is random per instance.
import { randomUUID } from 'node:crypto';
import { Client, Metadata, status as GrpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { isShardlineError, ShardlineError } from '../../base/index.js';
import type { Change, CommandResult } from '../metadata/index.js';
import type { ProposedCommand } from '../replica/index.js';
import { channelCredentials, type PlacementTls } from './credentials.js';
import { PlacementErrors } from './errors.js';
import { statusToShardlineError } from './grpc-status.js';
import * as wire from './placement-proto.js';
import { readResultFromWire, type ReadPart, type ReadResult } from './read-parts.js';

type WithoutSession<C> = C extends unknown ? Omit<C, 'clientId' | 'sequence'> : never;
/** A command as the caller gives it: the client adds its id and the next sequence. */
export type ClientCommand = WithoutSession<ProposedCommand>;

export interface PlacementClientOptions {
  readonly addresses: readonly string[];
  readonly clusterId: string;
  readonly clusterToken: string;
  readonly clientId?: string;
  readonly tls?: PlacementTls;
  /** Whole request, every retry included, ms (default 10000). */
  readonly requestTimeoutMs?: number;
  /** One call, ms (default 6000: above the server's own 5000 ms wait, so its answer arrives). */
  readonly attemptTimeoutMs?: number;
  /** Calls per request (default 100). */
  readonly maxAttempts?: number;
  /** Wait after the first failed call of a request, ms (default 20); it doubles with each failure in a row. */
  readonly backoffMinMs?: number;
  /** Longest wait between calls, ms (default 100). */
  readonly backoffMaxMs?: number;
  /** Failed watch subscriptions in a row before a watch gives up with an error event (default 100). */
  readonly maxWatchFailures?: number;
  readonly logger?: Logger;
}

export interface ProposeResult {
  readonly index: number;
  readonly sequence: number;
  readonly result: CommandResult;
}

export type WatchEvent =
  | { readonly type: 'changes'; readonly changes: readonly Change[]; readonly revision: number }
  /** The changes since the last event are gone: here is the whole state; changes follow from its revision + 1. */
  | { readonly type: 'reset'; readonly state: ReadResult }
  /** The watch gave up (a refusal a retry cannot fix, or maxWatchFailures); no event follows. */
  | { readonly type: 'error'; readonly error: ShardlineError };

export interface WatchSubscription {
  close(): void;
  /** Settles when the watch ended (closed or gave up). */
  readonly done: Promise<void>;
}

const RETRYABLE_CODES = new Set([PlacementErrors.dropped.code, PlacementErrors.stopping.code, PlacementErrors.timeout.code]);
const RETRYABLE_STATUS = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED, GrpcStatus.UNKNOWN, GrpcStatus.INTERNAL]);

export class PlacementClient {
  readonly clientId: string;
  private readonly channels = new Map<string, Client>();
  private readonly logger: Logger;
  private target = 0;
  private leaderHint: string | null = null;
  private sequence = 0;
  private proposals: Promise<unknown> = Promise.resolve();
  private readonly watches = new Set<WatchSubscription>();
  private closed = false;

  constructor(private readonly options: PlacementClientOptions) {
    if (options.addresses.length === 0) throw PlacementErrors.invalidOptions.create({}, 'the placement client needs at least one address');
    if (options.clusterToken.length === 0) throw PlacementErrors.invalidOptions.create({}, 'the cluster token is empty');
    this.clientId = options.clientId ?? `client-${randomUUID()}`;
    this.logger = options.logger ?? pino({ level: 'silent' });
  }

  /** Proposes `command` under this client's id and next sequence; resolves with the applied result (which may be a refusal). */
  propose(command: ClientCommand): Promise<ProposeResult> {
    const run = async (): Promise<ProposeResult> => {
      const sequence = ++this.sequence;
      const body = Buffer.from(JSON.stringify({ ...command, clientId: this.clientId, sequence }));
      const method = wire.placementService().methods.propose;
      const response = await this.withLeader(`propose ${command.type}`, (client, deadline) => unary(client, method, { command: body }, this.metadata(), deadline));
      return { index: response.index, sequence, result: JSON.parse(response.resultJson) as CommandResult };
    };
    // One outstanding proposal per client id: each waits for the one before it.
    const next = this.proposals.then(run, run);
    this.proposals = next.catch(() => undefined);
    return next;
  }

  /** A linearizable read of the parts asked for (all when none). */
  read(parts: readonly ReadPart[] = []): Promise<ReadResult> {
    const method = wire.placementService().methods.read;
    return this.withLeader('read', (client, deadline) => unary(client, method, { parts: [...parts] }, this.metadata(), deadline)).then(readResultFromWire);
  }

  /** One node's status (the given address, or the node the client talks to now). */
  status(address?: string): Promise<wire.StatusResponse> {
    const method = wire.placementService().methods.status;
    const target = address ?? this.currentAddress();
    return unary(this.channel(target), method, {}, this.metadata(), Date.now() + this.attemptTimeoutMs).catch((error: unknown) => {
      throw toShardlineError(error, target);
    });
  }

  addVoter(nodeId: number): Promise<wire.MembersResponse> {
    const method = wire.placementService().methods.addVoter;
    return this.withLeader(`add voter ${nodeId}`, (client, deadline) => unary(client, method, { nodeId }, this.metadata(), deadline));
  }

  /**
   * Asks the group to add `nodeId`, reachable at `address`, as a voter (a join): the leader
   * records the address in the replicated state, then adds the voter. Done again with the same
   * id and address it changes nothing. The answer lists every peer the leader knows.
   */
  join(nodeId: number, address: string): Promise<wire.MembersResponse> {
    const method = wire.placementService().methods.addVoter;
    return this.withLeader(`join as voter ${nodeId} at ${address}`, (client, deadline) => unary(client, method, { nodeId, address }, this.metadata(), deadline));
  }

  removeVoter(nodeId: number): Promise<wire.MembersResponse> {
    const method = wire.placementService().methods.removeVoter;
    return this.withLeader(`remove voter ${nodeId}`, (client, deadline) => unary(client, method, { nodeId }, this.metadata(), deadline));
  }

  /** Asks the leader to hand over to `nodeId`; the change shows in status() once done. */
  async transferLeader(nodeId: number): Promise<void> {
    const method = wire.placementService().methods.transferLeader;
    await this.withLeader(`transfer leadership to ${nodeId}`, (client, deadline) => unary(client, method, { nodeId }, this.metadata(), deadline));
  }

  /** Changes from `fromRevision` on, across node failures; see WatchEvent. */
  watch(fromRevision: number, onEvent: (event: WatchEvent) => void): WatchSubscription {
    let stream: ClientReadableStream<wire.WatchBatch> | null = null;
    let stopped = false;
    const subscription: WatchSubscription = {
      close: () => {
        stopped = true;
        stream?.cancel();
      },
      done: Promise.resolve(),
    };
    const loop = async (): Promise<void> => {
      let next = Math.max(1, fromRevision);
      let failures = 0;
      let backoffMs = 0;
      while (!stopped && !this.closed) {
        const address = this.currentAddress();
        const method = wire.placementService().methods.watch;
        const call = this.channel(address).makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { fromRevision: next }, this.metadata(), {});
        stream = call;
        call.on('data', (batch: wire.WatchBatch) => {
          failures = 0;
          backoffMs = 0;
          // A node resumed from `next` sends nothing older; the filter keeps that true even so.
          const changes = batch.changes.filter((c) => c.revision >= next).map((c) => ({ revision: c.revision, kind: c.kind, key: c.key, op: c.op }) as Change);
          next = Math.max(next, batch.revision + 1);
          if (!stopped) onEvent({ type: 'changes', changes, revision: batch.revision });
        });
        const error = await new Promise<ShardlineError | null>((resolve) => {
          call.on('error', (e: ServiceError) => resolve(stopped ? null : toShardlineError(e, address)));
          call.on('end', () => resolve(null));
        });
        if (stopped || this.closed) break;
        if (error !== null && (error.code === PlacementErrors.revisionCompacted.code || error.code === PlacementErrors.watchTooSlow.code)) {
          this.logger.info({ address, next, code: error.code }, 'placement watch: changes gone, re-reading the state');
          try {
            const state = await this.read();
            if (stopped) break;
            onEvent({ type: 'reset', state });
            next = state.revision + 1;
            continue;
          } catch (readError) {
            onEvent({ type: 'error', error: toShardlineError(readError, address) });
            break;
          }
        }
        if (error !== null && !isRetryable(error)) {
          onEvent({ type: 'error', error });
          break;
        }
        failures++;
        if (failures >= (this.options.maxWatchFailures ?? 100)) {
          onEvent({ type: 'error', error: PlacementErrors.unavailable.create({ address }, 'watch', failures, 0, error?.message ?? 'the stream ended') });
          break;
        }
        this.logger.debug({ address, next, error: error?.message }, 'placement watch ended; resubscribing elsewhere');
        this.moveOn(address);
        backoffMs = this.nextBackoff(backoffMs);
        await sleep(backoffMs);
      }
    };
    const done = loop().finally(() => this.watches.delete(subscription));
    Object.defineProperty(subscription, 'done', { value: done });
    this.watches.add(subscription);
    return subscription;
  }

  close(): void {
    this.closed = true;
    for (const watch of this.watches) watch.close();
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }

  // ---- internals ----

  private get attemptTimeoutMs(): number {
    return this.options.attemptTimeoutMs ?? 6_000;
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(wire.TOKEN_METADATA_KEY, this.options.clusterToken);
    metadata.set(wire.CLUSTER_METADATA_KEY, this.options.clusterId);
    return metadata;
  }

  private channel(address: string): Client {
    let channel = this.channels.get(address);
    if (channel === undefined) {
      channel = new Client(address, channelCredentials(this.options.tls), wire.PLACEMENT_GRPC_CLIENT_OPTIONS);
      this.channels.set(address, channel);
    }
    return channel;
  }

  private currentAddress(): string {
    return this.leaderHint ?? (this.options.addresses[this.target % this.options.addresses.length] as string);
  }

  /** `address` failed or does not lead and knows no leader: try the next one. */
  private moveOn(address: string): void {
    if (this.leaderHint === address) this.leaderHint = null;
    else this.target++;
  }

  private nextBackoff(previous: number): number {
    // 20 → 100 ms: while a group elects, every voter answers unavailable or not-leader, and the
    // client learns of the new leader only by asking again, so the backoff's cap is added to
    // every failover (at 500 ms it was most of the client's share of it). A few cheap calls a
    // second per client is what a faster failover costs.
    return Math.min(this.options.backoffMaxMs ?? 100, previous === 0 ? (this.options.backoffMinMs ?? 20) : previous * 2);
  }

  private async withLeader<T>(what: string, attempt: (client: Client, deadline: number) => Promise<T>): Promise<T> {
    const started = Date.now();
    const budgetMs = this.options.requestTimeoutMs ?? 10_000;
    const maxAttempts = this.options.maxAttempts ?? 100;
    let attempts = 0;
    let backoffMs = 0;
    let last = 'no attempt';
    while (attempts < maxAttempts && Date.now() - started < budgetMs && !this.closed) {
      attempts++;
      const address = this.currentAddress();
      const deadline = Math.min(Date.now() + this.attemptTimeoutMs, started + budgetMs);
      try {
        return await attempt(this.channel(address), deadline);
      } catch (raw) {
        const error = toShardlineError(raw, address);
        last = `${error.code}: ${error.message}`;
        if (error.code === PlacementErrors.notLeader.code) {
          const hint = typeof error.context.leaderAddress === 'string' && error.context.leaderAddress !== '' ? error.context.leaderAddress : null;
          if (hint !== null && hint !== address) {
            // A redirect is not a failure: go there at once.
            this.leaderHint = hint;
            continue;
          }
          this.moveOn(address);
        } else if (isRetryable(error)) {
          this.moveOn(address);
        } else {
          throw error;
        }
        this.logger.debug({ what, address, attempts, error: last }, 'placement request failed; retrying');
        backoffMs = this.nextBackoff(backoffMs);
        await sleep(Math.min(backoffMs, Math.max(0, started + budgetMs - Date.now())));
      }
    }
    throw PlacementErrors.unavailable.create({ what, attempts }, what, attempts, Date.now() - started, last);
  }
}

function isRetryable(error: ShardlineError): boolean {
  if (RETRYABLE_CODES.has(error.code)) return true;
  return error.code === TRANSPORT_CODE && RETRYABLE_STATUS.has(error.context.grpcCode as GrpcStatus);
}

/** The code of an error that carried no sl-code: the transport failed or the server is not ours. */
const TRANSPORT_CODE = PlacementErrors.unavailable.code;

function toShardlineError(error: unknown, address: string): ShardlineError {
  if (isShardlineError(error)) return error;
  const status = error as Partial<ServiceError>;
  const coded = statusToShardlineError(status);
  if (coded !== null) return coded;
  return new ShardlineError(TRANSPORT_CODE, `placement node ${address}: ${status.details ?? status.message ?? String(error)}`, { address, grpcCode: status.code }, { cause: error });
}

function unary<Request, Response>(client: Client, method: { path: string; requestSerialize: (value: Request) => Buffer; responseDeserialize: (bytes: Buffer) => Response }, request: Request, metadata: Metadata, deadline: number): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, { deadline }, (error, response) => {
      if (error !== null || response === undefined) reject(error ?? new Error('empty response'));
      else resolve(response);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
