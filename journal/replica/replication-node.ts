// The replication driver of one journal node (docs/replication.md, "What is built"): it runs the
// pure cores of journal/replication/ against the node's real shards and carries out what they
// decide. Per replicated shard the node is idle (holds an epoch, leads and follows nobody), the
// leader (ReplicaLeader: serves fetches and epoch-end queries, computes the high watermark,
// acknowledges quorum appends once the HW passes them) or a follower (ReplicaFollower in a loop:
// truncate by epoch history, fetch, append as stored, report the durable end).
//
// Who leads comes from an election run outside the node (`shardline ctl replica elect`, the
// interim stand-in for placement): ReplicaAnnounce makes the node take a newer epoch and stop
// leading and following before it answers its durable position; ReplicaLead names the leader.
// Both are written to replica.json before the node acts on them.
import type { Logger } from 'pino';
import { ShardlineError } from '../errors.js';
import type { Journal } from '../journal.js';
import type { Shard } from '../shard/shard.js';
import type { AppendResult, RecordInput } from '../record.js';
import { DEFAULT_RECENT_PER_WRITER, ReplicaFollower, ReplicaLeader, type EpochEndQuery, type FetchRequest, type FollowerAction, type FollowerLogView, type StoredExtent, type ToFollower, type WriterStamp } from '../replication/index.js';
import { readBatchHeader } from '../segment/batch-format.js';
import type { ReplicaFetchRequest, ReplicaFetchResponse, ReplicaEpochEndRequest, ReplicaEpochEndResponse, ReplicaStatusResponse } from '../server/wire.js';
import type { JournalCredentials } from '../server/journal-credentials.js';
import { ReplicaClient } from './replica-client.js';
import { ReplicaErrors } from './replica-errors.js';
import { readReplicaFile, writeReplicaFile, type ReplicaRecord } from './replica-file.js';
import { ReplicaLog } from './replica-log.js';

/**
 * A caught-up fetch waits at the leader for new records this long before it answers empty,
 * when the follower already has the leader's HW: there is nothing to tell it. Every follower of
 * every shard holds one such fetch, so an idle cluster's calls are set by this.
 */
const IDLE_FETCH_WAIT_MS = 5_000;
/**
 * ...and this long when the HW moved past what the follower was last told: the new HW reaches
 * it soon even when no record follows (an idle shard's followers serve readers and elections
 * with it).
 */
const HW_NEWS_FETCH_WAIT_MS = 100;
/** Most bytes of batches one fetch answer carries (at least one batch always goes). */
const FETCH_MAX_BYTES = 1024 * 1024;
const FETCH_CALL_TIMEOUT_MS = IDLE_FETCH_WAIT_MS + 4_000;
/** A follower whose call failed (leader unreachable, not yet leading) waits this long before it asks again. */
const RETRY_MS = 200;
/**
 * How long an append that arrived before an earlier one of its writer waits at the leader for
 * it (the writer's calls may overtake each other), before it is refused SL_REPL_OUT_OF_SEQUENCE
 * and the writer sends it again.
 */
const PARK_MS = 2_000;
/**
 * How far (offsets) a follower may trail the HW its leader last sent and count as caught up
 * (readiness): records in flight under load, not a replica still copying a backlog.
 */
const CATCH_UP_LAG = 1_000;
/** The header of the epoch-start batch's one record (the batch is marked control; the header names it in dumps). */
export const EPOCH_START_HEADER = 'sl-epoch-start';

export type AcksMode = 'quorum' | 'leader';

/** A stored batch with the extent the cores need. */
interface StoredBatch {
  baseOffset: number;
  count: number;
  epoch: number;
  bytes: Buffer;
}

/** An append waiting at the leader for an earlier sequence of its writer. */
interface ParkedAppend {
  writer: number;
  wake: () => void;
}

interface HighWatermarkWaiter {
  offset: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The leader's answer to a fetch below its log start (the driver's, not the core's: the cores know no log start). */
interface BelowLogStart {
  type: 'below-log-start';
  logStart: number;
}

type Role =
  | { kind: 'idle' }
  | { kind: 'leader'; core: ReplicaLeader }
  | { kind: 'follower'; core: ReplicaFollower<StoredBatch>; stop: AbortController; done: Promise<void> };

class ShardReplica {
  role: Role = { kind: 'idle' };
  /** The HW this node serves readers up to (the leader's, or what its leader told it). */
  hw = 0;
  /** Quorum appends waiting for the HW; they fail when the node stops leading. */
  readonly waiters = new Set<HighWatermarkWaiter>();
  /**
   * Readers waiting for the HW. A role change does not end them: a deposed leader still in the
   * set follows again once an election reaches it, and its HW moves on. Leaving the set does
   * (readerScope).
   */
  readonly readers = new Set<HighWatermarkWaiter>();
  /**
   * Aborted, with the coded error readers get as its reason, once this node can no longer serve
   * the shard's readers: its copy is deleted, or it is out of the replica set and follows no
   * leader, so its log and HW never move again and a tail here would wait for ever. A tail
   * (the journal server's) ends with that error, and a broker re-opens it on the leader.
   * Replaced by a fresh one when the node serves readers again (it rejoins as a learner).
   */
  private readerScope = new AbortController();
  /** Appends waiting for an earlier sequence of their writer; woken by each append and by a role change. */
  readonly parked = new Set<ParkedAppend>();
  /** Elections and role changes of this shard run one at a time. */
  changing: Promise<void> = Promise.resolve();
  /**
   * Told to lead and writing its epoch-start batch (an fsync): status says 'starting', so a
   * controller does not take it for a leader that restarted and cannot lead its epoch again.
   */
  startingToLead = false;
  /**
   * Caught up since this node opened it (readiness, docs/deployment.md): it leads, or as a
   * follower holds its leader's HW less CATCH_UP_LAG, or it has never had a leader. Once true it
   * stays true: a replica that falls behind under load later is not a restart to wait for.
   */
  caughtUp: boolean;
  /** The HW in the leader's last fetch answer (undefined until one arrives). */
  leaderHw: number | undefined;
  /** The learners of a replica-set change, as the last ReplicaLead named them (the leader serves them). */
  learners: string[] = [];
  /** Leading: the HW the last fetch answer to each follower carried. */
  readonly hwSent = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly log: ReplicaLog,
    public record: ReplicaRecord,
  ) {
    this.caughtUp = record.leader === '' && record.voter;
    // Retention and compaction stay below what is committed: a record above the HW may still
    // be truncated, so it may neither be deleted nor supersede an older value of its key.
    log.shard.limitMaintenance(() => this.hw);
  }

  setHighWatermark(hw: number): void {
    if (hw <= this.hw) return;
    this.hw = hw;
    for (const set of [this.waiters, this.readers]) {
      for (const waiter of set) {
        if (waiter.offset <= hw) {
          set.delete(waiter);
          waiter.resolve();
        }
      }
    }
  }

  get readersSignal(): AbortSignal {
    return this.readerScope.signal;
  }

  endReaders(error: Error): void {
    if (!this.readerScope.signal.aborted) this.readerScope.abort(error);
  }

  resumeReaders(): void {
    if (this.readerScope.signal.aborted) this.readerScope = new AbortController();
  }

  rejectWaiters(error: Error): void {
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
    this.wakeParked(null);
  }

  /** Wakes the parked appends of `writer` (all of them for null): each decides again. */
  wakeParked(writer: number | null): void {
    for (const parked of this.parked) {
      if (writer === null || parked.writer === writer) {
        this.parked.delete(parked);
        parked.wake();
      }
    }
  }
}

export interface ReplicationNodeOptions {
  journal: Journal;
  /** This node's id, as the replica sets name it. */
  self: string;
  /**
   * Every journal node's id → the HOST:PORT of its journal gRPC server: --replica-peers, or a
   * map the node keeps up to date from placement's node records (read at each use).
   */
  peers: ReadonlyMap<string, string>;
  /** What this node's calls to its peers carry: the cluster token, and mutual TLS when on. */
  credentials: JournalCredentials;
  logger: Logger;
}

/** A shard copy this node deleted after placement removed it from the shard's replica set. */
export interface RetiredCopy {
  readonly shard: string;
  /** The epoch this node held for the shard when it deleted it. */
  readonly epoch: number;
  /** Its log end then. */
  readonly logEnd: number;
  /** When (ms since the epoch, this node's clock). */
  readonly at: number;
}

/** How many deleted copies the node remembers for its status. */
const RETIRED_KEPT = 100;

export class ReplicationNode {
  private readonly replicas = new Map<string, ShardReplica>();
  private readonly retired: RetiredCopy[] = [];
  private readonly clients = new Map<string, ReplicaClient>();
  private closed = false;

  private constructor(private readonly options: ReplicationNodeOptions) {}

  /** Opens the replica state of every shard that has one; followers resume following. */
  static async open(options: ReplicationNodeOptions): Promise<ReplicationNode> {
    const node = new ReplicationNode(options);
    for (const info of options.journal.listShards()) {
      const shard = options.journal.shard(info.name);
      const record = await readReplicaFile(shard.fs, shard.directory, info.name);
      if (record === null) continue;
      const replica = new ShardReplica(info.name, await ReplicaLog.open(shard, options.logger), record);
      node.replicas.set(info.name, replica);
      // A leader that restarted does not lead its epoch again (its lost tail may differ from
      // what followers hold under it): it waits, idle, for the next election.
      if (record.leader !== '' && record.leader !== options.self) node.startFollowing(replica);
      node.checkReaders(replica);
    }
    return node;
  }

  get self(): string {
    return this.options.self;
  }

  /** The shards replicated on this node, sorted by name. */
  shards(): string[] {
    return [...this.replicas.keys()].sort();
  }

  /** Whether the shard is replicated on this node (it has taken an epoch). */
  isReplicated(shard: string): boolean {
    return this.replicas.has(shard);
  }

  /** The end of what readers may see on this node: the HW; null for a shard that is not replicated. */
  highWatermark(shard: string): number | null {
    return this.replicas.get(shard)?.hw ?? null;
  }

  /**
   * The epoch of the batch that holds `offset` (below the log end, e.g. below the HW) in this
   * node's log now (its epoch history, no I/O); null for a shard that is not replicated. A
   * record read earlier at `offset` with this
   * epoch is the one the log holds: an epoch has one leader, which writes each offset once and
   * never leads that epoch again, and followers copy its batches as stored.
   */
  epochAt(shard: string, offset: number): number | null {
    return this.replicas.get(shard)?.log.history.epochAt(offset) ?? null;
  }

  /**
   * Resolves true once the HW passes `offset` (a record at `offset` is readable); false when
   * `signal` aborts. Rejects with the coded error of readerSignal once this node stops serving
   * the shard's readers (at once when it does not serve them now).
   */
  waitForHighWatermark(shard: string, offset: number, signal: AbortSignal): Promise<boolean> {
    const replica = this.replica(shard);
    if (replica.hw > offset) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    const scope = replica.readersSignal;
    if (scope.aborted) return Promise.reject(scope.reason as Error);
    return new Promise<boolean>((resolve, reject) => {
      const settle = (): void => {
        signal.removeEventListener('abort', onAbort);
        scope.removeEventListener('abort', onEnd);
        replica.readers.delete(waiter);
      };
      const waiter: HighWatermarkWaiter = {
        offset: offset + 1,
        resolve: () => {
          settle();
          resolve(true);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      const onAbort = (): void => {
        settle();
        resolve(false);
      };
      const onEnd = (): void => waiter.reject(scope.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      scope.addEventListener('abort', onEnd, { once: true });
      replica.readers.add(waiter);
    });
  }

  /**
   * Aborted once this node stops serving the shard's readers (its reason: the coded error to
   * give them): the copy was deleted, or the node is out of the replica set and follows no
   * leader, so its HW never moves again. A tail ends with it rather than wait for ever; the
   * signal of a shard that is not replicated here is SL_REPL_NOT_REPLICATED, as for any call.
   */
  readerSignal(shard: string): AbortSignal {
    return this.replica(shard).readersSignal;
  }

  // ---- client appends on the leader ---------------------------------------------------------

  /**
   * A client's append to a replicated shard: only the leader of the current epoch takes it,
   * under its epoch. acks=quorum (the default) answers once the HW passes the batch, i.e. it is
   * durable on a majority; acks=leader answers once the leader alone synced it (UNSAFE: a
   * failover can lose it). An append whose leader is deposed while it waits fails with
   * SL_REPL_NOT_LEADER: it may or may not be kept.
   *
   * With a writer stamp the append is idempotent (docs/replication.md, "Idempotent appends";
   * the rule is WriterTable's): the next sequence of its writer is written; a sequence the log
   * holds already is answered with that batch's offsets, once the HW passes it, and not written
   * again; one that arrived before an earlier sequence of its writer waits here for it up to
   * PARK_MS; otherwise SL_REPL_OUT_OF_SEQUENCE, which the writer retries.
   */
  async append(shard: string, records: readonly RecordInput[], acks: AcksMode, writer?: WriterStamp): Promise<AppendResult> {
    const replica = this.replica(shard);
    if (writer === undefined) return this.appendAndWait(replica, this.leading(replica), records, acks);
    const parkedUntil = Date.now() + PARK_MS;
    for (;;) {
      const core = this.leading(replica);
      const decision = replica.log.writers.decide(writer);
      if (decision.kind === 'append') return this.appendAndWait(replica, core, records, acks, writer);
      if (decision.kind === 'duplicate') return this.answerDuplicate(replica, core, decision.extent, acks);
      const early = decision.kind === 'out-of-sequence' && writer.sequence > decision.expected && writer.sequence - decision.expected < DEFAULT_RECENT_PER_WRITER;
      const wait = parkedUntil - Date.now();
      if (!early || wait <= 0) {
        const expected = decision.kind === 'out-of-sequence' ? decision.expected : writer.sequence + 1;
        throw ReplicaErrors.outOfSequence.create({ shard, writer: writer.id, sequence: writer.sequence, expected }, shard, writer.id, writer.sequence, expected);
      }
      await this.park(replica, writer.id, wait);
    }
  }

  /** Waits until the writer's next append begins, the role changes, or `ms` pass. */
  private park(replica: ShardReplica, writer: number, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const parked: ParkedAppend = {
        writer,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        replica.parked.delete(parked);
        resolve();
      }, ms);
      replica.parked.add(parked);
    });
  }

  /** A resent append the log holds: its offsets, once committed (acks=quorum). */
  private async answerDuplicate(replica: ShardReplica, core: ReplicaLeader, extent: StoredExtent, acks: AcksMode): Promise<AppendResult> {
    const result = { baseOffset: extent.baseOffset, lastOffset: extent.lastOffset };
    if (acks === 'leader' || replica.hw > extent.lastOffset) return result;
    if (replica.role.kind !== 'leader' || replica.role.core !== core) throw this.notLeader(replica);
    await new Promise<void>((resolve, reject) => {
      replica.waiters.add({ offset: extent.lastOffset + 1, resolve, reject });
    });
    return result;
  }

  private async appendAndWait(replica: ShardReplica, core: ReplicaLeader, records: readonly RecordInput[], acks: AcksMode, writer?: WriterStamp): Promise<AppendResult> {
    const appended = replica.log.append(records, core.epoch, false, writer);
    // The sequence is taken: a later append of the writer parked here may go now (behind this one in the log).
    if (writer !== undefined) replica.wakeParked(writer.id);
    const result = await appended;
    this.onLocalLog(replica, core);
    if (acks === 'leader') return result;
    if (replica.role.kind !== 'leader' || replica.role.core !== core) throw this.notLeader(replica);
    replica.setHighWatermark(Math.min(core.highWatermark, replica.log.end));
    if (replica.hw > result.lastOffset) return result;
    await new Promise<void>((resolve, reject) => {
      replica.waiters.add({ offset: result.lastOffset + 1, resolve, reject });
    });
    return result;
  }

  // ---- the leader's side of the protocol ----------------------------------------------------

  async fetch(request: ReplicaFetchRequest, signal: AbortSignal): Promise<ReplicaFetchResponse> {
    const replica = this.replica(request.shard);
    const role = replica.role;
    if (role.kind !== 'leader') {
      // Fencing also when not leading: an older epoch is told it is stale.
      if (request.leaderEpoch !== replica.record.epoch) throw ReplicaErrors.staleEpoch.create({ shard: replica.name, leaderEpoch: replica.record.epoch, requestEpoch: request.leaderEpoch }, replica.name, request.leaderEpoch, replica.record.epoch);
      throw this.notLeader(replica);
    }
    const core = role.core;
    const { decision, highWatermarkMoved } = core.onFetch({ type: 'fetch', from: request.fromNode, leaderEpoch: request.leaderEpoch, fetchOffset: request.fetchOffset, durableOffset: request.durableOffset });
    if (core.fencedByEpoch !== null) this.stepDown(replica, core);
    if (highWatermarkMoved !== null) replica.setHighWatermark(highWatermarkMoved);
    if (decision.kind === 'reply') {
      const message = decision.message;
      if (message.type === 'offset-out-of-range') throw ReplicaErrors.fetchOutOfRange.create({ shard: replica.name, leaderEpoch: message.leaderEpoch, logEnd: message.logEnd }, replica.name, request.fetchOffset, message.logEnd);
      throw ReplicaErrors.staleEpoch.create({ shard: replica.name, leaderEpoch: message.leaderEpoch, requestEpoch: message.requestEpoch }, replica.name, message.requestEpoch, message.leaderEpoch);
    }
    const shard = replica.log.shard;
    if (decision.fromOffset < shard.startOffset) {
      // Retention deleted what this follower would copy next: it starts over at our log start.
      throw ReplicaErrors.fetchBelowLogStart.create({ shard: replica.name, leaderEpoch: core.epoch, logStart: shard.startOffset }, replica.name, decision.fromOffset, shard.startOffset);
    }
    if (decision.fromOffset >= replica.log.end) {
      // Caught up: hold the fetch until the leader has more (a long poll), so an append reaches
      // followers without waiting for a polling interval.
      const told = replica.hwSent.get(request.fromNode) ?? -1;
      await waitForAppend(shard, decision.fromOffset, signal, told >= Math.min(core.highWatermark, replica.log.end) ? IDLE_FETCH_WAIT_MS : HW_NEWS_FETCH_WAIT_MS);
    }
    const end = replica.log.end;
    const batches = end > decision.fromOffset ? (replica.log.recent.read(decision.fromOffset, FETCH_MAX_BYTES, end) ?? (await shard.readBatches(decision.fromOffset, { maxBytes: FETCH_MAX_BYTES })).batches) : [];
    const highWatermark = Math.min(core.highWatermark, replica.log.end);
    if (replica.role.kind === 'leader' && replica.role.core === core) replica.hwSent.set(request.fromNode, highWatermark);
    return { leaderEpoch: core.epoch, fetchOffset: decision.fromOffset, batches, highWatermark };
  }

  epochEnd(request: ReplicaEpochEndRequest): ReplicaEpochEndResponse {
    const replica = this.replica(request.shard);
    const role = replica.role;
    if (role.kind !== 'leader') throw this.notLeader(replica);
    const reply = role.core.onEpochEndQuery({ type: 'epoch-end-query', from: request.fromNode, leaderEpoch: request.leaderEpoch, epoch: request.epoch }, replica.log.history);
    if (role.core.fencedByEpoch !== null) this.stepDown(replica, role.core);
    if (reply.type === 'epoch-mismatch') throw ReplicaErrors.staleEpoch.create({ shard: replica.name, leaderEpoch: reply.leaderEpoch, requestEpoch: reply.requestEpoch }, replica.name, reply.requestEpoch, reply.leaderEpoch);
    return { leaderEpoch: reply.leaderEpoch, askedEpoch: reply.askedEpoch, epoch: reply.epoch, endOffset: reply.endOffset };
  }

  // ---- elections ----------------------------------------------------------------------------

  /**
   * Takes `epoch` (newer than any this node holds for the shard): stops leading and following
   * first, then records the epoch durably, then answers the durable position (the election's
   * rule compares it). A shard without replica state gets one here.
   */
  announce(shard: string, epoch: number, replicas: readonly string[], ledBefore = false, learner = false): Promise<{ lastEpoch: number; durableEnd: number }> {
    return this.serialised(shard, async (replica) => {
      if (epoch <= replica.record.epoch) throw ReplicaErrors.staleEpoch.create({ shard, leaderEpoch: replica.record.epoch, requestEpoch: epoch }, shard, epoch, replica.record.epoch);
      await this.stopRole(replica);
      // No replica state here for a shard that has been led: this node may have held (and been
      // counted for) records it no longer has, so its answer must not make a majority until it
      // has caught up. It still takes the epoch, so it is fenced and can follow.
      // A learner may hold an old copy (it was a replica long ago): it must not vote either.
      const fresh = replica.record.epoch < 0;
      const voter = learner ? false : fresh ? !ledBefore : replica.record.voter;
      // A replica that lost the shard's history has a backlog to copy before it counts as caught up.
      if (!voter) replica.caughtUp = false;
      const record: ReplicaRecord = { epoch, leader: '', replicas: [...replicas], ledEpoch: replica.record.ledEpoch, voter };
      await this.persist(replica, record);
      this.checkReaders(replica);
      this.options.logger.info({ shard, epoch, voter }, 'took a new epoch; waiting for the election');
      if (!voter) throw ReplicaErrors.notVoter.create({ shard, epoch }, shard, epoch);
      return { lastEpoch: replica.log.history.latestEpoch, durableEnd: replica.log.end };
    }, true);
  }

  /** Who leads `epoch` (the one this node took by announce). */
  lead(shard: string, epoch: number, leader: string, replicas: readonly string[], learners: readonly string[] = []): Promise<void> {
    return this.serialised(shard, async (replica) => {
      try {
        await this.takeLeader(replica, epoch, leader, replicas, learners);
      } finally {
        this.checkReaders(replica);
      }
    });
  }

  /** lead()'s work, under the shard's election lock. */
  private async takeLeader(replica: ShardReplica, epoch: number, leader: string, replicas: readonly string[], learners: readonly string[]): Promise<void> {
    const shard = replica.name;
    if (epoch !== replica.record.epoch) throw ReplicaErrors.staleEpoch.create({ shard, leaderEpoch: replica.record.epoch, requestEpoch: epoch }, shard, epoch, replica.record.epoch);
    const learning = !replicas.includes(this.self);
    if (learning && (!learners.includes(this.self) || leader === this.self)) throw ReplicaErrors.notReplicated.create({ shard }, shard, `node ${this.self} is not in the replica set ${replicas.join(',')}`);
    replica.learners = [...learners];
    if (replica.role.kind === 'leader' && leader === this.self) replica.role.core.setLearners(learners);
    // A learner that still votes (it took this epoch as a replica the change removes, or held an old copy) stops first.
    if (replica.role.kind !== 'idle' && replica.record.leader === leader && !(learning && replica.record.voter)) return;
    await this.stopRole(replica);
    if (leader !== this.self) {
      // A learner never votes, whatever it holds, until it has copied the shard as a member.
      await this.persist(replica, { ...replica.record, leader, replicas: [...replicas], voter: learning ? false : replica.record.voter });
      this.startFollowing(replica);
      return;
    }
    if (replica.record.ledEpoch >= epoch) throw ReplicaErrors.staleEpoch.create({ shard, leaderEpoch: replica.record.ledEpoch, requestEpoch: epoch }, shard, epoch, replica.record.ledEpoch);
    replica.startingToLead = true;
    try {
      await this.persist(replica, { ...replica.record, leader, replicas: [...replicas], ledEpoch: epoch });
      await this.startLeading(replica);
    } finally {
      replica.startingToLead = false;
    }
  }

  status(shard: string): ReplicaStatusResponse {
    const replica = this.replica(shard);
    const role = replica.role;
    const end = replica.log.end;
    const log = replica.log.shard;
    const learners = role.kind === 'leader' ? role.core.learners : [];
    const followers = role.kind !== 'leader' ? [] : [...replica.record.replicas.filter((node) => node !== this.self), ...learners].map((node) => {
      const { fetched, durable } = role.core.followerProgress(node) ?? { fetched: 0, durable: 0 };
      return { node, fetched, durable, recordsBehind: Math.max(0, end - fetched), bytesBehind: fetched >= end ? 0 : log.approximateBytesFrom(Math.max(fetched, log.startOffset)), learner: learners.includes(node) };
    });
    return { node: this.self, role: replica.startingToLead ? 'starting' : role.kind, epoch: replica.record.epoch, leader: replica.record.leader, replicas: replica.record.replicas, highWatermark: replica.hw, logEnd: replica.log.end, lastEpoch: replica.log.history.latestEpoch, voter: replica.record.voter, logStart: replica.log.shard.startOffset, followers, epochStartOffset: role.kind === 'leader' ? role.core.epochStartOffset : 0 };
  }

  /**
   * Deletes this node's copy of `shard` (its segments and replica state) once `confirm` says the
   * node is neither in the shard's replica set nor a learner of a change (docs/replication.md,
   * "A removed replica's copy"). `confirm` runs under the shard's election lock with the node's
   * epoch for it, so no announce or lead of the shard can interleave with the check and the
   * delete; it must read placement afresh (linearizably): a copy created for a learner exists
   * here only after placement committed the change that made it one, so a read that starts
   * after the copy exists sees that change. True when the copy was deleted.
   */
  retire(shard: string, confirm: (epoch: number) => Promise<boolean>): Promise<boolean> {
    if (!this.replicas.has(shard)) return Promise.resolve(false);
    return this.serialised(shard, async (replica) => {
      if (this.closed) return false;
      if (!(await confirm(replica.record.epoch))) return false;
      await this.stopRole(replica);
      this.replicas.delete(shard);
      replica.rejectWaiters(this.notLeader(replica));
      // Before the delete: a tail waiting here for the HW or for a record would otherwise wait
      // for ever on a replica that is gone (a broker's tail must move to the leader).
      replica.endReaders(ReplicaErrors.notReplicated.create({ shard, epoch: replica.record.epoch }, shard, `node ${this.self} deleted its copy (placement moved its replica elsewhere); read from the leader`));
      const logEnd = replica.log.end;
      await this.options.journal.deleteShard(shard);
      this.retired.unshift({ shard, epoch: replica.record.epoch, logEnd, at: Date.now() });
      this.retired.length = Math.min(this.retired.length, RETIRED_KEPT);
      this.options.logger.warn({ shard, epoch: replica.record.epoch, logEnd, replicas: replica.record.replicas }, 'deleted the copy of a shard this node no longer replicates (placement moved its replica elsewhere)');
      return true;
    });
  }

  /** The copies this node deleted by `retire` since it started, newest first (at most RETIRED_KEPT). */
  retiredCopies(): readonly RetiredCopy[] {
    return this.retired;
  }

  /**
   * The replicas on this node that have not caught up since it opened, each with why (empty:
   * all have). /readyz of a journal node is not ready while any is listed.
   */
  notCaughtUp(): string[] {
    const behind: string[] = [];
    for (const replica of this.replicas.values()) {
      if (replica.caughtUp) continue;
      const role = replica.role.kind;
      if (!replica.record.voter) behind.push(`${replica.name}: rejoined without its history, copying it from leader ${replica.record.leader || '(not named yet)'}`);
      else if (role === 'follower' && replica.leaderHw !== undefined) behind.push(`${replica.name}: log end ${replica.log.end}, leader ${replica.record.leader}'s HW ${replica.leaderHw}`);
      else if (role === 'follower') behind.push(`${replica.name}: no answer from leader ${replica.record.leader} yet`);
      else behind.push(`${replica.name}: waiting to be told its leader (epoch ${replica.record.epoch})`);
    }
    return behind.sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const replica of this.replicas.values()) await this.stopRole(replica);
    for (const client of this.clients.values()) client.close();
  }

  // ---- roles --------------------------------------------------------------------------------

  /**
   * Ends the replica's readers once it is out of the replica set with no leader to follow (a
   * change removed it, or it took a learner's epoch and is not told its leader yet), and lets
   * new ones in again once it is in the set or follows. A deposed leader still in the set keeps
   * its readers: an election reaches it, it follows, and its HW moves on.
   */
  private checkReaders(replica: ShardReplica): void {
    if (replica.record.replicas.includes(this.self) || replica.role.kind === 'follower') {
      replica.resumeReaders();
      return;
    }
    const { name, record } = replica;
    replica.endReaders(ReplicaErrors.notReplicated.create({ shard: name, epoch: record.epoch }, name, `node ${this.self} is not in the replica set ${record.replicas.join(',') || '(none)'} of epoch ${record.epoch} and follows no leader; read from the leader`));
  }

  private async startLeading(replica: ShardReplica): Promise<void> {
    const epoch = replica.record.epoch;
    // The epoch-start batch: older epochs' records commit with it (the HW only passes records
    // of the current epoch), without waiting for a client write.
    // It is a control batch: stored and replicated, never shown to readers of the shard.
    const start = await replica.log.append([{ key: null, value: null, headers: [{ key: EPOCH_START_HEADER, value: Buffer.from(String(epoch)) }] }], epoch, true);
    const core = new ReplicaLeader({ self: this.self, replicas: replica.record.replicas, learners: replica.learners, epoch, epochStartOffset: start.baseOffset, highWatermark: replica.hw });
    replica.hwSent.clear();
    replica.role = { kind: 'leader', core };
    replica.caughtUp = true;
    this.onLocalLog(replica, core);
    this.options.logger.info({ shard: replica.name, epoch, epochStartOffset: start.baseOffset }, 'leading');
  }

  private onLocalLog(replica: ShardReplica, core: ReplicaLeader): void {
    const end = replica.log.end;
    const moved = core.onLocalLog(end, end);
    if (moved !== null && replica.role.kind === 'leader' && replica.role.core === core) replica.setHighWatermark(moved);
  }

  /** A newer epoch reached this leader: it refuses appends from now on and its waiting appends fail. */
  private stepDown(replica: ShardReplica, core: ReplicaLeader): void {
    if (replica.role.kind !== 'leader' || replica.role.core !== core) return;
    replica.role = { kind: 'idle' };
    this.options.logger.warn({ shard: replica.name, epoch: core.epoch, fencedBy: core.fencedByEpoch }, 'fenced by a newer epoch; no longer leading');
    replica.rejectWaiters(this.notLeader(replica));
  }

  private startFollowing(replica: ShardReplica): void {
    const core = new ReplicaFollower<StoredBatch>({ self: this.self, leader: replica.record.leader, epoch: replica.record.epoch, retryAfter: 0 }, replica.hw);
    const stop = new AbortController();
    const done = this.follow(replica, core, stop.signal).catch((error: unknown) => {
      if (!stop.signal.aborted) this.options.logger.error({ shard: replica.name, err: error }, 'follower stopped on an error');
    });
    replica.role = { kind: 'follower', core, stop, done };
    this.options.logger.info({ shard: replica.name, epoch: core.epoch, leader: core.leader }, 'following');
  }

  private async stopRole(replica: ShardReplica): Promise<void> {
    const role = replica.role;
    replica.role = { kind: 'idle' };
    if (role.kind === 'leader') replica.rejectWaiters(this.notLeader(replica));
    if (role.kind === 'follower') {
      role.stop.abort();
      await role.done;
    }
  }

  /** The follower loop, until the role ends. */
  private async follow(replica: ShardReplica, core: ReplicaFollower<StoredBatch>, signal: AbortSignal): Promise<void> {
    const view = (): FollowerLogView => ({ logEnd: replica.log.end, durableEnd: replica.log.end, history: replica.log.history });
    let actions: FollowerAction<StoredBatch>[] = core.start(view(), Date.now());
    while (!signal.aborted && !this.closed) {
      try {
        actions = await this.followStep(replica, core, actions, view, signal);
      } catch (error) {
        // A failed append or truncation (a full disk, a shard cut back after a failed sync):
        // the log may not be where the core thinks, so start over with the truncation step.
        if (signal.aborted) return;
        this.options.logger.warn({ shard: replica.name, err: error }, 'follower step failed; starting over from truncation');
        await sleep(RETRY_MS, signal);
        actions = core.start(view(), Date.now());
      }
    }
  }

  /**
   * One step of the follower loop: carries out the core's actions one by one. Appends are
   * awaited to their fdatasync, so the fetch that follows reports them durable; a failed call
   * waits RETRY_MS and asks again (the core resends its outstanding request on a tick).
   */
  private async followStep(replica: ShardReplica, core: ReplicaFollower<StoredBatch>, actions: FollowerAction<StoredBatch>[], view: () => FollowerLogView, signal: AbortSignal): Promise<FollowerAction<StoredBatch>[]> {
    let next: FollowerAction<StoredBatch>[] = [];
    let appended = false;
    for (const action of actions) {
      if (signal.aborted) return [];
      if (action.kind === 'truncate') {
        this.options.logger.info({ shard: replica.name, offset: action.offset, logEnd: replica.log.end }, 'truncating a divergent suffix');
        await replica.log.truncateTo(action.offset);
      } else if (action.kind === 'append') {
        await replica.log.appendStored(action.batches.map((batch) => batch.bytes));
        appended = true;
      } else if (!appended) {
        // A send after an append in the same step carries a stale durable end; onDurable below sends a fresh one.
        const answer = await this.send(replica, core, action.message, signal);
        if (answer !== null && answer.type === 'below-log-start') {
          this.options.logger.warn({ shard: replica.name, logEnd: replica.log.end, leaderLogStart: answer.logStart }, "the leader's retention deleted what this replica would copy next; emptying the log to start at the leader's log start");
          await replica.log.restartAt(answer.logStart);
          next = core.start(view(), Date.now());
        } else if (answer === null) {
          await sleep(RETRY_MS, signal);
          next = core.onTick(view(), Date.now());
        } else {
          if (answer.type === 'fetch-response' && answer.leaderEpoch === core.epoch) replica.leaderHw = answer.highWatermark;
          next = core.onMessage(answer, view(), Date.now());
          if (answer.type === 'epoch-mismatch') await sleep(RETRY_MS, signal);
        }
      }
    }
    // The core's HW counts the batches of the answer it just took, which the next step appends:
    // until then they are not in the log, and the offsets they will fill may still hold this
    // replica's own records above the HW (a suffix the step before cut only if it truncated),
    // so readers are never shown past the log end.
    replica.setHighWatermark(Math.min(core.highWatermark, replica.log.end));
    // Only as a member: a learner holding its leader's epoch has not caught up with what the set
    // acknowledged. Checked at every step, not only after an append: a replica may have copied
    // the batch while it was not a member yet (or before this check), and a shard with no
    // writes since would otherwise never let it vote again.
    if (!replica.record.voter && replica.record.replicas.includes(this.self) && replica.log.end > replica.log.shard.startOffset && replica.log.history.latestEpoch === core.epoch) {
      // It holds a batch of its leader's epoch, so the leader's whole log up to that epoch's
      // start: every record committed before. It may vote again.
      await this.persist(replica, { ...replica.record, voter: true });
      this.options.logger.info({ shard: replica.name, epoch: core.epoch, logEnd: replica.log.end }, 'caught up after rejoining; votes again');
    }
    if (!replica.caughtUp && replica.record.voter && replica.leaderHw !== undefined && replica.log.end + CATCH_UP_LAG >= replica.leaderHw) {
      replica.caughtUp = true;
      this.options.logger.info({ shard: replica.name, epoch: core.epoch, logEnd: replica.log.end, leaderHighWatermark: replica.leaderHw }, 'caught up with the leader');
    }
    if (appended) next = core.onDurable(view(), Date.now());
    // Caught up (an empty answer leaves nothing outstanding): the next fetch goes at once, and
    // the leader holds it until it has more.
    if (next.length === 0) next = core.onTick(view(), Date.now());
    return next;
  }

  /** One request to the leader, its answer as the core's message; null when the call failed. */
  private async send(replica: ShardReplica, core: ReplicaFollower<StoredBatch>, message: FetchRequest | EpochEndQuery, signal: AbortSignal): Promise<ToFollower<StoredBatch> | BelowLogStart | null> {
    const client = this.client(core.leader);
    if (client === null) return null;
    try {
      if (message.type === 'fetch') {
        const response = await client.call('replicaFetch', { shard: replica.name, fromNode: this.self, leaderEpoch: message.leaderEpoch, fetchOffset: message.fetchOffset, durableOffset: message.durableOffset }, FETCH_CALL_TIMEOUT_MS, signal);
        const batches = response.batches.map((bytes): StoredBatch => {
          const header = readBatchHeader(bytes, 0);
          return { baseOffset: header.baseOffset, count: header.lastOffsetDelta + 1, epoch: header.leaderEpoch, bytes };
        });
        return { type: 'fetch-response', from: core.leader, leaderEpoch: response.leaderEpoch, fetchOffset: response.fetchOffset, batches, highWatermark: response.highWatermark };
      }
      const response = await client.call('replicaEpochEnd', { shard: replica.name, fromNode: this.self, leaderEpoch: message.leaderEpoch, epoch: message.epoch }, FETCH_CALL_TIMEOUT_MS);
      return { type: 'epoch-end-reply', from: core.leader, leaderEpoch: response.leaderEpoch, askedEpoch: response.askedEpoch, epoch: response.epoch, endOffset: response.endOffset };
    } catch (error) {
      if (signal.aborted) return null;
      if (error instanceof ShardlineError) {
        const context = error.context as { leaderEpoch?: number; requestEpoch?: number; logEnd?: number; logStart?: number };
        if (error.code === ReplicaErrors.fetchBelowLogStart.code && Number(context.leaderEpoch) === core.epoch) return { type: 'below-log-start', logStart: Number(context.logStart) };
        if (error.code === ReplicaErrors.fetchOutOfRange.code) return { type: 'offset-out-of-range', from: core.leader, leaderEpoch: Number(context.leaderEpoch), logEnd: Number(context.logEnd) };
        if (error.code === ReplicaErrors.staleEpoch.code) return { type: 'epoch-mismatch', from: core.leader, leaderEpoch: Number(context.leaderEpoch), requestEpoch: Number(context.requestEpoch) };
      }
      this.options.logger.debug({ shard: replica.name, leader: core.leader, err: error }, 'replication call failed; retrying');
      return null;
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  private client(node: string): ReplicaClient | null {
    const address = this.options.peers.get(node);
    if (address === undefined) {
      this.options.logger.warn({ node }, 'the leader\'s journal address is unknown (not in --replica-peers, or not registered with placement yet)');
      return null;
    }
    let client = this.clients.get(node);
    // Peers learned from placement change when a node restarts on another port.
    if (client !== undefined && client.address !== address) {
      client.close();
      client = undefined;
    }
    if (client === undefined) {
      client = new ReplicaClient(address, this.options.credentials);
      this.clients.set(node, client);
    }
    return client;
  }

  private replica(shard: string): ShardReplica {
    this.options.journal.shard(shard); // SL_JOURNAL_SHARD_NOT_FOUND for an unknown shard
    const replica = this.replicas.get(shard);
    if (replica === undefined) throw ReplicaErrors.notReplicated.create({ shard }, shard, 'no election has reached this node for it');
    return replica;
  }

  private leading(replica: ShardReplica): ReplicaLeader {
    const role = replica.role;
    if (role.kind !== 'leader' || !role.core.acceptsAppends) throw this.notLeader(replica);
    return role.core;
  }

  private notLeader(replica: ShardReplica): ShardlineError {
    return ReplicaErrors.notLeader.create({ shard: replica.name, epoch: replica.record.epoch, leader: replica.record.leader }, replica.name, replica.record.epoch, replica.record.leader);
  }

  private async persist(replica: ShardReplica, record: ReplicaRecord): Promise<void> {
    const shard = replica.log.shard;
    await writeReplicaFile(shard.fs, shard.directory, replica.name, record);
    replica.record = record;
  }

  /** Runs `work` after the shard's previous election step; `create` makes the shard's replica state first. */
  private serialised<T>(shard: string, work: (replica: ShardReplica) => Promise<T>, create = false): Promise<T> {
    const existing = this.replicas.get(shard);
    const run = async (): Promise<T> => {
      let replica = this.replicas.get(shard);
      if (replica === undefined) {
        if (!create) return work(this.replica(shard));
        const opened = this.options.journal.shard(shard);
        if (opened.config.durability !== 'fsync') throw ReplicaErrors.needsFsync.create({ shard }, shard, opened.config.durability);
        replica = new ShardReplica(shard, await ReplicaLog.open(opened, this.options.logger), { epoch: -1, leader: '', replicas: [], ledEpoch: -1, voter: true });
        this.replicas.set(shard, replica);
      }
      return work(replica);
    };
    if (existing === undefined) return run();
    const result = existing.changing.then(run);
    existing.changing = result.then(() => undefined, () => undefined);
    return result;
  }
}

/** Ends a long poll's wait without an error object: an abort() without a reason builds a DOMException, with its stack. */
const LONG_POLL_OVER = Symbol('long poll over');

/**
 * Waits until the shard has a record at `offset`, the call is cancelled or `ms` pass. A timer
 * and one listener rather than AbortSignal.any over AbortSignal.timeout: every caught-up
 * follower's fetch waits here, and those built and threw away a DOMException on each timeout.
 */
function waitForAppend(shard: Shard, offset: number, cancelled: AbortSignal, ms: number): Promise<void> {
  const over = new AbortController();
  const end = (): void => over.abort(LONG_POLL_OVER);
  const timer = setTimeout(end, ms);
  if (cancelled.aborted) end();
  else cancelled.addEventListener('abort', end, { once: true });
  return shard.waitForAppend(offset, over.signal).then(
    () => undefined,
    () => undefined,
  ).finally(() => {
    clearTimeout(timer);
    cancelled.removeEventListener('abort', end);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
