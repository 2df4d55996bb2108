// PlacementServer: one placement voter on the network. It owns the gRPC server (peer Step and
// the client RPCs of placement.proto), the outbound peer links, the watch streams, and the
// ReplicaDriver that runs the PlacementReplica's Ready cycle over the persistence it is given
// (in-memory in tests; node/ passes the durable ones: the Raft log on a journal shard, the
// applied state in LevelDB).
//
// Security, checked on every call before anything reaches Raft: the cluster token (metadata
// sl-cluster-token, compared in constant time) and the cluster id (metadata sl-cluster-id, and
// for Step the request's own cluster_id). A Step must come from a configured peer other than
// this node and be addressed to this node; every message in it is decoded and checked
// (peer-message.ts) before any is stepped, so a refused call changes nothing: it cannot vote,
// append or read. Optional mutual TLS (credentials.ts). Refusals are logged at warn.
//
// Requests: a client request becomes a replica request; its answer comes back through the
// driver. Each waits at most requestTimeoutMs (then SL_PLACEMENT_TIMEOUT: outcome unknown)
// and is forgotten when the client cancels. Only the leader takes proposals, reads and
// membership changes; others answer SL_PLACEMENT_NOT_LEADER with the leader's id and address.
//
// Peers: the configured ones (options.peers) plus the addresses recorded in the replicated
// setting PEER_ADDRESSES_SETTING. A join (AddVoter with an address) writes the new voter's
// address there before it adds the voter, so every voter, a later leader, and the new voter
// itself after a restart can dial every other; a node learns them as it applies the setting.
// Membership changes are serialized here (one in flight per leader, and none while the Raft
// core still has one unapplied) so a second one is refused clearly rather than dropped.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { Metadata, Server, status as GrpcStatus, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import type { ShardlineError } from '../../base/index.js';
import { isShardlineError } from '../../base/index.js';
import type { JsonValue } from '../metadata/index.js';
import { bootstrapEntries, bootstrapHardState, type Message } from '../raft/index.js';
import { PlacementReplica, type AppliedStatePersistence, type PlacementReplicaOptions, type ProposedCommand, type RaftPersistence, type ReplicaAnswer } from '../replica/index.js';
import { channelCredentials, serverCredentials, type PlacementTls } from './credentials.js';
import { PlacementErrors } from './errors.js';
import { shardlineErrorToStatus } from './grpc-status.js';
import { PeerLink } from './peer-link.js';
import { checkPeerMessage } from './peer-message.js';
import * as wire from './placement-proto.js';
import { decodeRaftMessage, encodeRaftMessage } from './raft-envelope.js';
import { checkParts, readResponse } from './read-parts.js';
import { ReplicaDriver } from './replica-driver.js';
import { WatchStreams } from './watch-streams.js';

type ReplicaTuning = Omit<PlacementReplicaOptions, 'id' | 'storage' | 'applied' | 'clock' | 'random' | 'unsafe'>;

export const DEFAULT_REPLICA_TUNING: ReplicaTuning = {
  // With tickMs 100: a heartbeat every 100 ms and elections 0.5–1 s after the last one heard
  // (randomised in [5, 10) ticks). Issue 12 wants a new leader taking writes within 2 s of a
  // kill; at 10 ticks the election timeout alone was 1–2 s. Five missed heartbeats in a row
  // still separate a dead leader from a slow one, and a busy event loop slows a node's ticks
  // rather than bunching them (setInterval does not catch up), so a starved follower
  // campaigns later, not sooner; check-quorum and pre-vote stay on.
  electionTick: 5,
  heartbeatTick: 1,
  preVote: true,
  checkQuorum: true,
  maxSizePerMsg: 1024 * 1024,
  maxInflightMsgs: 256,
  snapshotEntries: 10_000,
  snapshotKeepEntries: 1_000,
  watchHistoryChanges: 10_000,
  leaseCheckTicks: 10,
  maxPendingRequests: 4_096,
};

export interface PlacementServerOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  /** The shared secret every peer and client presents (metadata sl-cluster-token). */
  readonly clusterToken: string;
  /** Every placement node, this one included: Raft id → host:port its peers and clients dial. */
  readonly peers: ReadonlyMap<number, string>;
  /** Voters written as the first log entries when the Raft log is empty (a new cluster); every initial member gets the same list. */
  readonly initialVoters?: readonly number[];
  /** Bind address; default 127.0.0.1. */
  readonly host?: string;
  /** Default: the port of this node's entry in `peers`. */
  readonly port?: number;
  readonly raftPersistence: RaftPersistence;
  readonly appliedPersistence: AppliedStatePersistence;
  /** Wall time of one Raft tick, ms (default 100: elections 0.5–1 s after the leader's last heartbeat with electionTick 5). */
  readonly tickMs?: number;
  readonly replica?: Partial<ReplicaTuning>;
  /** A client request's wait for its answer, ms (default 5000). */
  readonly requestTimeoutMs?: number;
  /** A watch stream may stay blocked this long before it is cut off, ms (default 10000). */
  readonly watchStallMs?: number;
  /** Changes per watch message (default 1000). */
  readonly watchBatchChanges?: number;
  /** Open watch streams at once (default 1024). */
  readonly maxWatchStreams?: number;
  /** Messages queued per peer (default 4096). */
  readonly peerQueueMessages?: number;
  readonly peerBackoffMinMs?: number;
  readonly peerBackoffMaxMs?: number;
  /** Largest snapshot sent to a follower, bytes (default 32 MiB); larger ones are reported failed and logged. */
  readonly maxSnapshotBytes?: number;
  /** Inputs queued for the replica (default 10000). */
  readonly maxQueuedInputs?: number;
  readonly tls?: PlacementTls;
  readonly logger?: Logger;
  /** ms; stamps commands and decides leases (default Date.now). */
  readonly clock?: () => number;
  readonly random?: () => number;
  /** Called once when persistence failed and the server stopped (default: log only). */
  readonly onFatal?: (error: unknown) => void;
}

const MiB = 1024 * 1024;

/**
 * The replicated setting that maps placement node ids to the address the others dial
 * ({"4": "10.0.0.4:1228", ...}); written by the leader when a voter joins.
 */
export const PEER_ADDRESSES_SETTING = 'placement.peer-addresses';

/**
 * The replicated setting listing the ids of voters ever removed ([1, 4]). A removed id may not
 * join again: a process that joins has an empty data directory, so it does not know what the
 * removed one voted for, and a candidate whose log still lists the old voter could count its
 * vote twice in one term. etcd retires removed member ids for the same reason.
 */
export const REMOVED_VOTERS_SETTING = 'placement.removed-voters';

interface Waiter {
  readonly answer: (answer: ReplicaAnswer) => void;
  readonly fail: (error: ShardlineError) => void;
  readonly timer: NodeJS.Timeout;
}

export class PlacementServer {
  readonly nodeId: number;
  private readonly replica: PlacementReplica;
  private readonly driver: ReplicaDriver;
  private readonly links = new Map<number, PeerLink>();
  /** Ends each open StepStream call (with OK), for a stop. */
  private readonly stepStreams = new Set<() => void>();
  /** Every placement node this one can dial and accepts Steps from: configured, joined, learned. */
  private readonly peers = new Map<number, string>();
  /** The revision of PEER_ADDRESSES_SETTING last read, so a cycle reads it only when it changed. */
  private peerSettingRevision = 0;
  /** A membership change this node (as leader) is carrying out: the next one waits for it. */
  /** When each peer last sent this node a Step (performance.now()): who is running, for membership checks. */
  private readonly heardFrom = new Map<number, number>();
  /** Removed voters this leader told it is not a member of the group, logged once each. */
  private readonly warnedNonMembers = new Set<number>();
  private membershipBusy: { readonly nodeId: number; readonly change: 'add' | 'remove'; readonly address: string; readonly done: Promise<wire.MembersResponse> } | null = null;
  private readonly waiters = new Map<number, Waiter>();
  /** Requests queued for the driver and not started yet: stop() fails them (the driver drops its queue). */
  private readonly queuedRequests = new Set<(error: ShardlineError) => void>();
  private readonly watches: WatchStreams;
  private readonly logger: Logger;
  private readonly tokenDigest: Buffer;
  private readonly requestTimeoutMs: number;
  private readonly maxSnapshotBytes: number;
  private server: Server | null = null;
  private stopping: Promise<void> | null = null;
  private boundPort = 0;
  private lastLeader = 0;
  private leaderChangeCount = 0;
  private readonly proposalListeners = new Set<(latencyMs: number) => void>();

  private constructor(private readonly options: PlacementServerOptions) {
    this.nodeId = options.nodeId;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ placementNode: options.nodeId });
    this.tokenDigest = digest(options.clusterToken);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? 32 * MiB;
    this.replica = new PlacementReplica({
      ...DEFAULT_REPLICA_TUNING,
      ...options.replica,
      id: options.nodeId,
      storage: options.raftPersistence.storage,
      applied: options.appliedPersistence.load(),
      clock: options.clock ?? Date.now,
      random: options.random ?? Math.random,
    });
    this.watches = new WatchStreams({
      watch: (from) => this.replica.watch(from),
      logger: this.logger,
      batchChanges: options.watchBatchChanges ?? 1_000,
      stallMs: options.watchStallMs ?? 10_000,
      maxStreams: options.maxWatchStreams ?? 1_024,
    });
    this.driver = new ReplicaDriver({
      replica: this.replica,
      raftPersistence: options.raftPersistence,
      appliedPersistence: options.appliedPersistence,
      logger: this.logger,
      tickMs: options.tickMs ?? 100,
      maxQueuedInputs: options.maxQueuedInputs ?? 10_000,
      send: (messages) => this.send(messages),
      deliver: (answers) => this.deliver(answers),
      afterCycle: () => this.afterCycle(),
      onFatal: (error) => this.fatal(error),
    });
    for (const [id, address] of options.peers) this.setPeer(id, address);
  }

  /** Records a peer's address and (re)opens the link to it; the same address again changes nothing. */
  private setPeer(id: number, address: string): boolean {
    if (this.peers.get(id) === address) return false;
    this.peers.set(id, address);
    if (id === this.options.nodeId) return true;
    this.links.get(id)?.close();
    this.links.set(id, new PeerLink({
      from: this.options.nodeId,
      to: id,
      address,
      clusterId: this.options.clusterId,
      clusterToken: this.options.clusterToken,
      credentials: channelCredentials(this.options.tls),
      logger: this.logger,
      queueMessages: this.options.peerQueueMessages ?? 4_096,
      batchBytes: 4 * MiB,
      backoffMinMs: this.options.peerBackoffMinMs ?? 50,
      // At most about an election timeout: a voter that comes back (restarted after a kill)
      // must hear its peers before the next election needs its vote.
      backoffMaxMs: this.options.peerBackoffMaxMs ?? 500,
      callTimeoutMs: 5_000,
      onUnreachable: (to) => void this.driver.input(() => this.replica.reportUnreachable(to)),
      onSnapshotReport: (to, failed) => this.reportSnapshot(to, failed),
    }));
    return true;
  }

  /**
   * Adds peers this node did not know (a joining voter learns the group's from the join's
   * answer); an id it knows at another address takes the new one. Ignored once stopping.
   */
  learnPeers(peers: Iterable<readonly [number, string]>): void {
    if (this.stopping !== null) return;
    for (const [id, address] of peers) {
      if (id === this.nodeId) continue;
      if (this.setPeer(id, address)) this.logger.info({ peer: id, address }, `placement: node ${id} is at ${address}`);
    }
  }

  /** Every placement node this one knows: id → the address the others dial (this one included). */
  knownPeers(): ReadonlyMap<number, string> {
    const own = this.peers.get(this.nodeId);
    // A node bound to port 0 is reached at the port it got.
    return own !== undefined && portOf(own) === 0 && this.boundPort !== 0 ? new Map([...this.peers, [this.nodeId, this.address]]) : this.peers;
  }

  /**
   * Bootstraps an empty log with initialVoters, binds, and starts ticking.
   * SL_PLACEMENT_INVALID_OPTIONS, SL_PLACEMENT_LISTEN_FAILED.
   */
  static async start(options: PlacementServerOptions): Promise<PlacementServer> {
    validate(options);
    const storage = options.raftPersistence.storage;
    if (storage.lastIndex() === 0 && options.initialVoters !== undefined) {
      await options.raftPersistence.save({ snapshot: null, entries: bootstrapEntries(options.initialVoters), hardState: bootstrapHardState(options.initialVoters), mustSync: true });
    }
    const node = new PlacementServer(options);
    await node.listen();
    node.driver.start();
    node.logger.info({ address: node.address, peers: Object.fromEntries(options.peers), tls: options.tls !== undefined }, 'placement server listening');
    return node;
  }

  get address(): string {
    return wire.formatAddress(this.options.host ?? '127.0.0.1', this.boundPort);
  }

  /** False once stop() was called (or persistence failed): status() then shows the last view. */
  get running(): boolean {
    return this.stopping === null;
  }

  status(): wire.StatusResponse {
    const s = this.replica.status();
    return { id: s.id, role: s.role, term: s.term, leader: s.leader, leaderAddress: this.knownPeers().get(s.leader) ?? '', commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, revision: s.revision, voters: [...s.voters], clusterId: this.options.clusterId, peers: [...this.knownPeers()].map(([id, address]) => ({ id, address })) };
  }

  /** How many times this node learned of a new leader since it started (for the admin's metrics). */
  get leaderChanges(): number {
    return this.leaderChangeCount;
  }

  /** Calls `listener` with the wait, ms, of each proposal this node answers as applied; returns the unsubscribe. */
  onProposalApplied(listener: (latencyMs: number) => void): () => void {
    this.proposalListeners.add(listener);
    return () => this.proposalListeners.delete(listener);
  }

  /** Stops serving: ends watches and waiting requests with SL_PLACEMENT_STOPPING, closes links. Idempotent. */
  stop(graceMs = 2_000): Promise<void> {
    this.stopping ??= this.shutDown(graceMs);
    return this.stopping;
  }

  private async shutDown(graceMs: number): Promise<void> {
    await this.driver.stop();
    const stopping = PlacementErrors.stopping.create({ nodeId: this.nodeId }, this.nodeId);
    this.watches.endAll(stopping);
    for (const [id, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      this.waiters.delete(id);
      waiter.fail(stopping);
    }
    for (const fail of this.queuedRequests) fail(stopping);
    this.queuedRequests.clear();
    for (const link of this.links.values()) link.close();
    for (const end of [...this.stepStreams]) end();
    const server = this.server;
    if (server === null) return;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) server.forceShutdown();
    this.logger.info('placement server stopped');
  }

  private fatal(error: unknown): void {
    this.logger.fatal({ err: error }, 'placement persistence failed; stopping this placement node');
    this.stop().catch((stopError: unknown) => this.logger.error({ err: stopError }, 'placement server stop failed'));
    this.options.onFatal?.(error);
  }

  private async listen(): Promise<void> {
    const server = new Server(wire.PLACEMENT_GRPC_CHANNEL_OPTIONS);
    server.addService(wire.placementService().service, this.implementation());
    const host = this.options.host ?? '127.0.0.1';
    const port = this.options.port ?? portOf(this.options.peers.get(this.nodeId) ?? '');
    const requested = wire.formatAddress(host, port);
    this.boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(requested, serverCredentials(this.options.tls), (error, bound) => {
        if (error === null) resolve(bound);
        else reject(PlacementErrors.listenFailed.withCause(error, { host, port }, requested, error.message));
      });
    }).catch((error: unknown) => {
      server.forceShutdown();
      throw error;
    });
    this.server = server;
  }

  // ---- handlers ----

  private implementation(): UntypedServiceImplementation {
    return {
      step: this.unary('Step', (call: ServerUnaryCall<wire.StepRequest, wire.Empty>) => this.onStep(call.request)),
      stepStream: (call: ServerReadableStream<wire.StepRequest, wire.Empty>, callback: sendUnaryData<wire.Empty>) => this.onStepStream(call, callback),
      propose: this.unary('Propose', (call: ServerUnaryCall<wire.ProposeRequest, wire.ProposeResponse>) => this.onPropose(call)),
      read: this.unary('Read', (call: ServerUnaryCall<wire.ReadRequest, wire.ReadResponse>) => this.onRead(call)),
      watch: (call: ServerWritableStream<wire.WatchRequest, wire.WatchBatch>) => {
        const refusal = this.authenticate('Watch', call.metadata);
        if (refusal !== null) {
          this.refused('Watch', call.getPeer(), refusal);
          call.emit('error', shardlineErrorToStatus(refusal));
          return;
        }
        this.watches.open(call);
      },
      status: this.unary('Status', () => this.status()),
      addVoter: this.unary('AddVoter', (call: ServerUnaryCall<wire.MemberRequest, wire.MembersResponse>) => this.onMembership(call, 'add')),
      removeVoter: this.unary('RemoveVoter', (call: ServerUnaryCall<wire.MemberRequest, wire.MembersResponse>) => this.onMembership(call, 'remove')),
      transferLeader: this.unary('TransferLeader', (call: ServerUnaryCall<wire.MemberRequest, wire.Empty>) => this.onTransfer(call.request.nodeId)),
    };
  }

  /** Wraps a handler: authentication first, then the answer or a coded status. */
  private unary<Request, Response>(method: string, handler: (call: ServerUnaryCall<Request, Response>) => Promise<Response> | Response) {
    return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
      const refusal = this.authenticate(method, call.metadata);
      if (refusal !== null) {
        this.refused(method, call.getPeer(), refusal);
        callback(shardlineErrorToStatus(refusal));
        return;
      }
      Promise.resolve()
        .then(() => handler(call))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(this.errorStatus(method, call.getPeer(), error)),
        );
    };
  }

  private authenticate(method: string, metadata: Metadata): ShardlineError | null {
    const token = metadata.get(wire.TOKEN_METADATA_KEY)[0];
    // Digests of equal length, so the comparison takes the same time whatever the token.
    if (typeof token !== 'string' || !timingSafeEqual(digest(token), this.tokenDigest)) return PlacementErrors.unauthenticated.create({ method }, method);
    const cluster = metadata.get(wire.CLUSTER_METADATA_KEY)[0];
    if (cluster !== this.options.clusterId) return PlacementErrors.wrongCluster.create({ method }, method, String(cluster ?? ''), this.options.clusterId);
    return null;
  }

  private refused(method: string, peer: string, error: ShardlineError): void {
    this.logger.warn({ method, peer, code: error.code, context: error.context }, error.message);
  }

  private errorStatus(method: string, peer: string, error: unknown): Partial<StatusObject> {
    if (isShardlineError(error)) {
      if (error.code === PlacementErrors.badMessage.code || error.code === PlacementErrors.unknownNode.code || error.code === PlacementErrors.wrongCluster.code) this.refused(method, peer, error);
      // A removed voter asks again every election timeout: one line per node is enough.
      else if (error.code === PlacementErrors.notMember.code && !this.warnedNonMembers.has(Number(error.context.from))) {
        this.warnedNonMembers.add(Number(error.context.from));
        this.refused(method, peer, error);
      }
      else this.logger.debug({ method, code: error.code }, error.message);
      return shardlineErrorToStatus(error);
    }
    this.logger.error({ method, err: error }, 'placement call failed with an unexpected error');
    return { code: GrpcStatus.INTERNAL, details: `unexpected placement server error in ${method}: ${error instanceof Error ? error.message : String(error)}` };
  }

  /**
   * A peer's long-lived Step call: each request is stepped as a Step call's would be. The first
   * refused request ends the call with its status (the peer link backs off and opens a new one,
   * as after a failed Step); a stop ends it with OK, so tryShutdown need not wait for it.
   */
  private onStepStream(call: ServerReadableStream<wire.StepRequest, wire.Empty>, callback: sendUnaryData<wire.Empty>): void {
    const refusal = this.authenticate('StepStream', call.metadata);
    if (refusal !== null) {
      this.refused('StepStream', call.getPeer(), refusal);
      callback(shardlineErrorToStatus(refusal));
      return;
    }
    // Headers now tell the peer its stream is accepted (peer-link.ts: until then it keeps what
    // it sent, to resend by Step should this node not know StepStream).
    call.sendMetadata(new Metadata());
    let ended = false;
    const finish = (status: Partial<StatusObject> | null): void => {
      if (ended) return;
      ended = true;
      this.stepStreams.delete(endForStop);
      call.off('data', onData);
      if (status === null) callback(null, {});
      else callback(status);
    };
    const endForStop = (): void => finish(null);
    const onData = (request: wire.StepRequest): void => {
      try {
        this.onStep(request);
      } catch (error) {
        finish(this.errorStatus('StepStream', call.getPeer(), error));
      }
    };
    this.stepStreams.add(endForStop);
    call.on('data', onData);
    call.on('end', endForStop);
    // Cancelled by the peer (its link closed, or its process went away): nobody to answer.
    call.on('cancelled', () => {
      ended = true;
      this.stepStreams.delete(endForStop);
      call.off('data', onData);
    });
    call.on('error', () => undefined);
  }

  private onStep(request: wire.StepRequest): wire.Empty {
    const { clusterId, from, to } = request;
    if (clusterId !== this.options.clusterId) throw PlacementErrors.wrongCluster.create({ from }, 'Step', clusterId, this.options.clusterId);
    if (to !== this.nodeId) throw PlacementErrors.unknownNode.create({ from, to }, `a Step for node ${to} reached node ${this.nodeId}`);
    if (from === this.nodeId || !this.peers.has(from)) throw PlacementErrors.unknownNode.create({ from, to }, `node ${from} is not a placement peer of node ${this.nodeId}`);
    this.heardFrom.set(from, performance.now());
    this.links.get(from)?.heard();
    // All or nothing: one bad message refuses the whole call before any is stepped.
    const messages = request.messages.map((bytes) => {
      const m = decodeRaftMessage(bytes);
      checkPeerMessage(m, from, to);
      return m;
    });
    // A removed voter (down when it was removed, so its log still lists it) campaigns forever;
    // pre-vote and check-quorum keep it from disturbing the group, and this answer tells it why
    // (its peer link logs the refusal). Only to vote requests, and only from a node that knows
    // a live leader: the leader's voter set is the newest (a node it added is in it before that
    // node can campaign), and a follower in the leader's lease ignores vote requests anyway
    // (check-quorum), so the refusal changes no outcome. A removed voter may know only some of
    // the voters (the founders), so a follower's answer is what reaches it.
    const status = this.replica.status();
    if (status.leader !== 0 && !status.voters.includes(from) && messages.some((m) => m.type === 'preVote' || m.type === 'vote')) {
      throw PlacementErrors.notMember.create({ from, voters: [...status.voters] }, from, status.voters.join(', '));
    }
    // A full input queue drops the messages: Raft resends what matters.
    if (!this.driver.input(() => messages.forEach((m) => this.replica.step(m)))) this.logger.debug({ from, count: messages.length }, 'placement input queue full; dropped peer messages');
    return {};
  }

  private async onPropose(call: ServerUnaryCall<wire.ProposeRequest, wire.ProposeResponse>): Promise<wire.ProposeResponse> {
    let command: ProposedCommand;
    try {
      command = JSON.parse(call.request.command.toString('utf8')) as ProposedCommand;
    } catch {
      throw PlacementErrors.malformedCommand.create({}, 'the command is not JSON');
    }
    const started = performance.now();
    const answer = await this.request(call, 'proposal', () => this.replica.propose(command));
    if (answer.kind !== 'proposal') throw new Error(`placement: a proposal got a ${answer.kind} answer`);
    const outcome = answer.outcome;
    if (outcome.status === 'applied') {
      const latencyMs = performance.now() - started;
      for (const listener of this.proposalListeners) listener(latencyMs);
      return { index: outcome.index, resultJson: JSON.stringify(outcome.result) };
    }
    if (outcome.status === 'malformed') throw PlacementErrors.malformedCommand.create({}, outcome.detail);
    throw this.refusal(outcome);
  }

  private async onRead(call: ServerUnaryCall<wire.ReadRequest, wire.ReadResponse>): Promise<wire.ReadResponse> {
    const parts = checkParts(call.request.parts);
    const answer = await this.request(call, 'read', () => this.replica.read());
    if (answer.kind !== 'read') throw new Error(`placement: a read got a ${answer.kind} answer`);
    if (answer.outcome.status === 'ok') return readResponse(answer.outcome.appliedIndex, answer.outcome.state, parts);
    throw this.refusal(answer.outcome);
  }

  private async onMembership(call: ServerUnaryCall<wire.MemberRequest, wire.MembersResponse>, change: 'add' | 'remove'): Promise<wire.MembersResponse> {
    const nodeId = call.request.nodeId;
    const address = change === 'add' ? (call.request.address ?? '') : '';
    if (address === '' && !this.peers.has(nodeId)) throw PlacementErrors.unknownNode.create({ nodeId }, `node ${nodeId} is not among the known placement peers: start it with --placement-join to have it join, or list it in --placement-peers`);
    if (address !== '' && !/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(address)) throw PlacementErrors.invalidOptions.create({ nodeId }, `the joining node's address ${JSON.stringify(address)} is not HOST:PORT`);
    const s = this.replica.status();
    if (s.role !== 'leader') throw this.refusal({ status: 'not-leader', leader: s.leader === 0 ? null : s.leader });
    const busy = this.membershipBusy;
    // The same request again (a client retrying after its attempt's deadline) waits for the first.
    if (busy !== null && busy.nodeId === nodeId && busy.change === change && busy.address === address) return busy.done;
    if (busy !== null) throw PlacementErrors.changeInProgress.create({ nodeId, pendingFor: busy.nodeId }, nodeId, `the ${busy.change === 'add' ? 'addition' : 'removal'} of node ${busy.nodeId} is still in progress`);
    // A retried join (the joining node restarted, or lost the answer) finds itself done.
    if (address !== '' && s.voters.includes(nodeId) && this.peers.get(nodeId) === address) return this.membersAnswer(s.appliedIndex, s.voters);
    if (address !== '' && !s.voters.includes(nodeId) && this.removedVoters().includes(nodeId)) {
      throw PlacementErrors.joinConflict.create({ nodeId, address, removed: true }, `node id ${nodeId} was removed from this group and may not join again (a process with an empty data directory cannot know what the removed one voted for, so it could vote twice in one term); start the new voter with an unused --node-id`);
    }
    if (this.replica.membershipChangePending()) throw PlacementErrors.changeInProgress.create({ nodeId }, nodeId, `an earlier change of the voter set (voters now ${s.voters.join(', ')}) is not applied yet`);
    this.checkQuorumAfter(change, nodeId, s.voters);
    // Not tied to this call: a retry may wait on it after this caller went away, so it must end (the request timeout).
    const done = this.changeMembers(change, nodeId, address, s.voters);
    const entry = { nodeId, change, address, done };
    this.membershipBusy = entry;
    try {
      return await done;
    } finally {
      if (this.membershipBusy === entry) this.membershipBusy = null;
    }
  }

  private async changeMembers(change: 'add' | 'remove', nodeId: number, address: string, voters: readonly number[]): Promise<wire.MembersResponse> {
    if (address !== '') await this.recordJoiner(nodeId, address, voters);
    // Retired before it leaves, so no window exists in which it is out and could join again.
    if (change === 'remove' && !this.removedVoters().includes(nodeId)) await this.proposeSetting(REMOVED_VOTERS_SETTING, [...this.removedVoters(), nodeId].sort((a, b) => a - b), 'removal (retiring the id)');
    const answer = await this.request(null, 'membership change', () => (change === 'add' ? this.replica.addVoter(nodeId) : this.replica.removeVoter(nodeId)));
    if (answer.kind !== 'membership') throw new Error(`placement: a membership change got a ${answer.kind} answer`);
    if (answer.outcome.status === 'applied') {
      this.logger.info({ nodeId, change, address: this.peers.get(nodeId), voters: answer.outcome.voters }, `placement: node ${nodeId} ${change === 'add' ? 'added as a voter' : 'removed from the voters'}`);
      return this.membersAnswer(answer.outcome.index, answer.outcome.voters);
    }
    throw this.refusal(answer.outcome);
  }

  /**
   * etcd's strict reconfiguration check: after the change, the voters this leader heard from
   * within two election timeouts must still be a majority, or every write would wait for a
   * voter that is down (adding a 4th to three with one dead needs 3 of 4, and the newcomer
   * counts only once it caught up). A single voter may still add a second, as in etcd.
   */
  private checkQuorumAfter(change: 'add' | 'remove', nodeId: number, voters: readonly number[]): void {
    const after = change === 'add' ? (voters.includes(nodeId) ? [...voters] : [...voters, nodeId]) : voters.filter((id) => id !== nodeId);
    if (change === 'add' && voters.length <= 1) return;
    const windowMs = 2 * (this.options.replica?.electionTick ?? DEFAULT_REPLICA_TUNING.electionTick) * (this.options.tickMs ?? 100);
    const now = performance.now();
    const running = (id: number): boolean => id === this.nodeId || now - (this.heardFrom.get(id) ?? -Infinity) <= windowMs;
    // The joining node is not counted: it has to catch up before its acknowledgements help.
    const counted = after.filter((id) => !(change === 'add' && id === nodeId && !voters.includes(id)));
    const active = counted.filter(running);
    const needed = Math.floor(after.length / 2) + 1;
    if (active.length >= needed) return;
    const silent = voters.filter((id) => !running(id));
    const what = change === 'add' ? `adding node ${nodeId} makes ${after.length} voters` : `removing node ${nodeId} leaves ${after.length} voters (${after.join(', ')})`;
    throw PlacementErrors.quorumAtRisk.create({ nodeId, change, silent }, `${what}, which need ${needed} running for every write, and only ${active.length} of them answer now (not heard from within ${windowMs} ms: ${silent.join(', ') || 'none'}); bring ${silent.length === 1 ? 'it' : 'them'} back or remove-member the lost ${silent.length === 1 ? 'one' : 'ones'} first`);
  }

  private membersAnswer(index: number, voters: readonly number[]): wire.MembersResponse {
    return { index, voters: [...voters], peers: [...this.knownPeers()].map(([id, address]) => ({ id, address })) };
  }

  /**
   * A join's first step: the new voter's address goes into the replicated peer list (with
   * every peer this leader knows, so the list is whole), applied before the voter is added.
   * Refused when the id is a voter at another address or the address is another voter's.
   */
  private async recordJoiner(nodeId: number, address: string, voters: readonly number[]): Promise<void> {
    const known = this.knownPeers();
    const current = known.get(nodeId);
    if (current !== undefined && current !== address && voters.includes(nodeId)) {
      throw PlacementErrors.joinConflict.create({ nodeId, address, current }, `node id ${nodeId} is already a voter at ${current}, not at ${address}; pick another --node-id, or remove-member ${nodeId} first if that voter is gone`);
    }
    for (const [id, other] of known) {
      if (id !== nodeId && other === address && voters.includes(id)) throw PlacementErrors.joinConflict.create({ nodeId, address, voter: id }, `address ${address} belongs to voter ${id}; a joining node needs its own address`);
    }
    const peers: Record<string, string> = {};
    for (const [id, other] of known) peers[String(id)] = other;
    peers[String(nodeId)] = address;
    await this.proposeSetting(PEER_ADDRESSES_SETTING, peers, 'join (recording the address)');
    this.learnPeers([[nodeId, address]]);
  }

  /** The ids in REMOVED_VOTERS_SETTING, as applied on this node. */
  private removedVoters(): number[] {
    const value = this.replica.currentState.settings.get(REMOVED_VOTERS_SETTING)?.value;
    return Array.isArray(value) ? value.filter((id): id is number => Number.isInteger(id)) : [];
  }

  /** A setting written by the leader on its own behalf during a membership change, waited until applied. */
  private async proposeSetting(key: string, value: JsonValue, what: string): Promise<void> {
    // A fresh client id: the command is applied once, and a retry of the change writes it again (same value).
    const command: ProposedCommand = { type: 'set-setting', clientId: `placement-membership/${this.nodeId}/${randomUUID()}`, sequence: 1, key, value };
    const answer = await this.request(null, what, () => this.replica.propose(command));
    if (answer.kind !== 'proposal') throw new Error(`placement: a proposal got a ${answer.kind} answer`);
    if (answer.outcome.status !== 'applied') {
      if (answer.outcome.status === 'malformed') throw PlacementErrors.malformedCommand.create({}, answer.outcome.detail);
      throw this.refusal(answer.outcome);
    }
  }

  private async onTransfer(target: number): Promise<wire.Empty> {
    if (!this.peers.has(target)) throw PlacementErrors.unknownNode.create({ nodeId: target }, `node ${target} is not among the known placement peers`);
    const outcome = await new Promise<ReturnType<PlacementReplica['transferLeadership']>>((resolve, reject) => {
      if (!this.driver.input(() => resolve(this.replica.transferLeadership(target)))) reject(PlacementErrors.dropped.create({}, 'the placement node is overloaded or stopping'));
    });
    if (outcome !== null) throw this.refusal(outcome);
    return {};
  }

  /** Runs `start` on the driver's loop and waits for the answer to the request id it returns. */
  private request(call: ServerUnaryCall<unknown, unknown> | null, what: string, start: () => number): Promise<ReplicaAnswer> {
    return new Promise<ReplicaAnswer>((resolve, reject) => {
      let id = 0;
      const forget = (): void => {
        const waiter = this.waiters.get(id);
        if (waiter === undefined) return;
        clearTimeout(waiter.timer);
        this.waiters.delete(id);
      };
      const fail = (error: ShardlineError): void => reject(error);
      // Added before input(): the driver may run the input inside that call.
      this.queuedRequests.add(fail);
      const queued = this.driver.input(() => {
        this.queuedRequests.delete(fail);
        id = start();
        const timer = setTimeout(() => {
          this.waiters.delete(id);
          reject(PlacementErrors.timeout.create({ nodeId: this.nodeId }, what, this.requestTimeoutMs));
        }, this.requestTimeoutMs);
        this.waiters.set(id, { answer: resolve, fail: reject, timer });
      });
      if (!queued) this.queuedRequests.delete(fail);
      if (!queued) reject(PlacementErrors.dropped.create({ nodeId: this.nodeId }, this.stopping === null ? 'the placement node is overloaded' : 'the placement node is stopping'));
      call?.on('cancelled', forget);
    });
  }

  private refusal(outcome: { status: 'not-leader'; leader: number | null } | { status: 'dropped'; reason: string }): ShardlineError {
    if (outcome.status === 'dropped') return PlacementErrors.dropped.create({ nodeId: this.nodeId }, outcome.reason);
    const leaderAddress = outcome.leader === null ? '' : (this.knownPeers().get(outcome.leader) ?? '');
    return PlacementErrors.notLeader.create({ nodeId: this.nodeId, leaderId: outcome.leader ?? 0, leaderAddress }, this.nodeId, outcome.leader === null ? 'unknown' : `${outcome.leader} at ${leaderAddress || 'an unknown address'}`);
  }

  // ---- driver callbacks ----

  private send(messages: readonly Message[]): void {
    for (const m of messages) {
      const link = this.links.get(m.to);
      if (link === undefined) {
        this.logger.warn({ to: m.to, type: m.type }, 'placement: a message for a node that is not a configured peer was not sent');
        if (m.type === 'snap') this.reportSnapshot(m.to, true);
        continue;
      }
      const bytes = encodeRaftMessage(m);
      if (m.type === 'snap' && bytes.length > this.maxSnapshotBytes) {
        this.logger.error({ to: m.to, bytes: bytes.length, limit: this.maxSnapshotBytes }, `placement snapshot of ${bytes.length} bytes is over maxSnapshotBytes (${this.maxSnapshotBytes}); not sent`);
        this.reportSnapshot(m.to, true);
        continue;
      }
      link.send(bytes, m.type === 'snap');
    }
  }

  private reportSnapshot(to: number, failed: boolean): void {
    // Not now: this may run inside a cycle; the driver's loop runs it between cycles.
    if (!this.driver.input(() => this.replica.reportSnapshot(to, failed))) this.logger.debug({ to }, 'placement input queue full; snapshot report dropped');
  }

  private deliver(answers: readonly ReplicaAnswer[]): void {
    for (const answer of answers) {
      const waiter = this.waiters.get(answer.id);
      if (waiter === undefined) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(answer.id);
      waiter.answer(answer);
    }
  }

  private afterCycle(): void {
    this.watches.pushAll();
    this.readPeerSetting();
    const { leader, term } = this.replica.status();
    if (leader !== this.lastLeader) {
      this.lastLeader = leader;
      if (leader !== 0) this.leaderChangeCount++;
      this.logger.info({ leader, term }, leader === 0 ? 'placement: no leader known' : `placement: node ${leader} leads term ${term}`);
    }
  }

  /** Learns the addresses of the replicated peer list when it changed since the last cycle. */
  private readPeerSetting(): void {
    const setting = this.replica.currentState.settings.get(PEER_ADDRESSES_SETTING);
    if (setting === undefined || setting.revision === this.peerSettingRevision) return;
    this.peerSettingRevision = setting.revision;
    const value = setting.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    const peers: [number, string][] = [];
    for (const [key, address] of Object.entries(value)) {
      const id = Number(key);
      if (Number.isInteger(id) && id > 0 && typeof address === 'string') peers.push([id, address]);
    }
    this.learnPeers(peers);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function portOf(address: string): number {
  const port = Number(/:(\d+)$/.exec(address)?.[1]);
  return Number.isInteger(port) ? port : 0;
}

function validate(options: PlacementServerOptions): void {
  const invalid = (detail: string) => PlacementErrors.invalidOptions.create({ nodeId: options.nodeId }, detail);
  if (!Number.isInteger(options.nodeId) || options.nodeId <= 0 || options.nodeId > 0xffff_ffff) throw invalid(`node id ${options.nodeId} must be an integer in [1, 2^32)`);
  if (!options.peers.has(options.nodeId)) throw invalid(`node ${options.nodeId} is not in its own peer list (${[...options.peers.keys()].join(', ')})`);
  if (options.clusterToken.length === 0) throw invalid('the cluster token is empty');
  if (options.clusterId.length === 0) throw invalid('the cluster id is empty');
  for (const voter of options.initialVoters ?? []) if (!options.peers.has(voter)) throw invalid(`initial voter ${voter} is not in the peer list`);
  const tickMs = options.tickMs ?? 100;
  if (!Number.isInteger(tickMs) || tickMs <= 0) throw invalid(`tickMs ${tickMs} must be a positive integer`);
}
