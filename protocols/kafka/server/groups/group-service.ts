// The consumer-group APIs of this node: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups. The driver
// around the pure GroupCoordinator: it turns decoded requests into its calls and its answers
// into response bodies at the version asked, gives it the clock, runs one timer at its next
// deadline (session timeouts, rebalance timeouts, the initial delay), and makes committed
// offsets durable (OffsetLog) before they are applied and acknowledged.
//
// In a cluster (a KafkaClusterView), each group has one coordinator among the live brokers
// (cluster.ts): FindCoordinator names it, and a group request that reaches another broker is
// answered NOT_COORDINATOR, so the client finds the coordinator again. Before answering for a
// group, the coordinator reads the offsets other brokers committed since its last read (it may
// have just become the coordinator).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isShardlineError } from '../../../../base/index.js';
import type { ShardStore } from '../../../../shard-model/index.js';
import { ApiKey, KafkaErrorCode, type KafkaStruct, type RequestHeader } from '../../codec/index.js';
import { DEFAULT_GROUP_LIMITS, GroupCoordinator, type CommittedOffset, type GroupDescription, type GroupLimits, type JoinResult, type SyncResult } from './coordinator.js';
import { groupCoordinator, leaderCandidates, type KafkaClusterMember, type KafkaClusterView, type KafkaListenerName } from '../cluster.js';
import { OffsetLog } from './offset-log.js';

type Struct = KafkaStruct;

/** The API keys this module answers. */
export const GROUP_API_KEYS: readonly number[] = [
  ApiKey.FindCoordinator, ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Heartbeat, ApiKey.LeaveGroup,
  ApiKey.OffsetCommit, ApiKey.OffsetFetch, ApiKey.DescribeGroups, ApiKey.ListGroups, ApiKey.DeleteGroups,
];

/** Who sent a request, for DescribeGroups' clientHost. */
export interface KafkaClientInfo {
  host: string;
  /** Undefined: the plain listener. */
  listener?: KafkaListenerName;
}

export interface KafkaGroupServiceOptions {
  store: ShardStore;
  /** A topic's partition count; undefined: no such topic (OffsetCommit refuses it). */
  partitionsOf: (topic: string) => number | undefined;
  /** This node as a client of `listener` must dial it: the coordinator of every group outside a cluster. */
  broker: (listener: KafkaListenerName) => { nodeId: number; host: string; port: number };
  /** The live brokers of a cluster; undefined: this node coordinates every group. */
  cluster?: KafkaClusterView | undefined;
  logger: Logger;
  limits?: Partial<GroupLimits>;
  now?: () => number;
}

export class KafkaGroupService {
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #stopped = false;
  /** Per group, the tail of its offset writes (commits, deletes): they apply in the order they were appended. */
  readonly #writes = new Map<string, Promise<unknown>>();

  private constructor(private readonly options: KafkaGroupServiceOptions, readonly coordinator: GroupCoordinator, private readonly offsetLog: OffsetLog) {
    this.#now = options.now ?? Date.now;
  }

  static async open(options: KafkaGroupServiceOptions): Promise<KafkaGroupService> {
    // Kafka's member ids: the client id, a dash, a UUID.
    const coordinator = new GroupCoordinator((clientId) => `${clientId}-${randomUUID()}`, { ...DEFAULT_GROUP_LIMITS, ...options.limits });
    const offsetLog = await OffsetLog.open(options.store, coordinator, options.logger);
    return new KafkaGroupService(options, coordinator, offsetLog);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async handle(header: RequestHeader, body: Struct, client: KafkaClientInfo = { host: '' }): Promise<Struct> {
    if (this.options.cluster !== undefined) {
      const refused = this.#notCoordinator(header, body);
      if (refused !== undefined) return refused;
      if (header.apiKey !== ApiKey.FindCoordinator && header.apiKey !== ApiKey.Heartbeat) await this.offsetLog.catchUp();
    }
    try {
      switch (header.apiKey) {
        case ApiKey.FindCoordinator:
          return this.findCoordinator(header, body, client.listener ?? 'plain');
        case ApiKey.JoinGroup:
          return await this.joinGroup(header, body, client);
        case ApiKey.SyncGroup:
          return await this.syncGroup(body);
        case ApiKey.Heartbeat:
          return { throttleTimeMs: 0, errorCode: this.coordinator.heartbeat(memberRef(body, body.generationId as number), this.#now()) };
        case ApiKey.LeaveGroup:
          return this.leaveGroup(header, body);
        case ApiKey.OffsetCommit:
          return await this.offsetCommit(body);
        case ApiKey.OffsetFetch:
          return this.offsetFetch(header, body);
        case ApiKey.DescribeGroups:
          return { throttleTimeMs: 0, groups: (body.groups as string[]).map((groupId) => describeBody(this.#coordinates(groupId) ? this.coordinator.describe(groupId) : { errorCode: KafkaErrorCode.NOT_COORDINATOR, groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [] })) };
        case ApiKey.ListGroups:
          return this.listGroups(body);
        case ApiKey.DeleteGroups:
          return await this.deleteGroups(body);
        default:
          throw new Error(`API ${header.apiKey} is not a group API`);
      }
    } finally {
      this.#schedule();
    }
  }

  /** Whether this broker coordinates the group: always outside a cluster. */
  #coordinates(groupId: string): boolean {
    const cluster = this.options.cluster;
    if (cluster === undefined) return true;
    return this.#coordinatorOf(groupId)?.nodeId === cluster.selfId;
  }

  /** In a cluster, the group's coordinator: one every client can dial, whichever listener it uses (cluster.ts). */
  #coordinatorOf(groupId: string): KafkaClusterMember | undefined {
    return groupCoordinator(leaderCandidates(this.options.cluster?.brokers() ?? []), groupId);
  }

  /**
   * The NOT_COORDINATOR answer to a group request for a group this broker does not coordinate,
   * in the API's shape; undefined: serve it. A request naming several groups is refused only
   * when none of them is this broker's (per group otherwise, below).
   */
  #notCoordinator(header: RequestHeader, body: Struct): Struct | undefined {
    const code = KafkaErrorCode.NOT_COORDINATOR;
    const single = (): boolean => !this.#coordinates(body.groupId as string);
    switch (header.apiKey) {
      case ApiKey.JoinGroup:
        return single() ? joinBody({ errorCode: code, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId: body.memberId as string, members: [] }, header.apiVersion) : undefined;
      case ApiKey.SyncGroup:
        return single() ? { throttleTimeMs: 0, errorCode: code, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) } : undefined;
      case ApiKey.Heartbeat:
        return single() ? { throttleTimeMs: 0, errorCode: code } : undefined;
      case ApiKey.LeaveGroup:
        return single() ? { throttleTimeMs: 0, errorCode: code, members: [] } : undefined;
      case ApiKey.OffsetCommit:
        return single() ? { throttleTimeMs: 0, topics: (body.topics as Struct[]).map((topic) => ({ name: topic.name as string, partitions: (topic.partitions as Struct[]).map((p) => ({ partitionIndex: p.partitionIndex as number, errorCode: code })) })) } : undefined;
      case ApiKey.OffsetFetch:
        if (header.apiVersion >= 8) return undefined;
        return single() ? { throttleTimeMs: 0, errorCode: code, topics: ((body.topics as Struct[] | null) ?? []).map((topic) => ({ name: topic.name as string, partitions: (topic.partitionIndexes as number[]).map((partitionIndex) => ({ partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: code })) })) } : undefined;
      default:
        return undefined;
    }
  }

  findCoordinator(header: RequestHeader, body: Struct, listener: KafkaListenerName = 'plain'): Struct {
    const cluster = this.options.cluster;
    const coordinatorOf = (key: string): { nodeId: number; host: string; port: number } | undefined => {
      if (cluster === undefined) return this.options.broker(listener);
      const coordinator = this.#coordinatorOf(key);
      const address = coordinator?.listeners[listener];
      return coordinator === undefined || address === undefined ? undefined : { nodeId: coordinator.nodeId, ...address };
    };
    const unavailable = (): string => (cluster?.brokers() === undefined ? 'the live brokers are not known yet; retry' : 'no live broker serves every Kafka listener (plain, TLS) the brokers serve; retry');
    const found = (key: string, coordinator = coordinatorOf(key)): Struct => (coordinator === undefined
      ? { key, nodeId: -1, host: '', port: -1, errorCode: KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: unavailable() }
      : { key, ...pick(coordinator), errorCode: 0, errorMessage: null });
    // Transactions are not served, so there is no transaction coordinator to name.
    const answer = (key: string): Struct => ((body.keyType as number) === 0
      ? found(key)
      : { key, nodeId: -1, host: '', port: -1, errorCode: KafkaErrorCode.INVALID_REQUEST, errorMessage: 'only group coordinators (key type 0): transactions are not supported' });
    if (header.apiVersion >= 4) return { throttleTimeMs: 0, coordinators: (body.coordinatorKeys as string[]).map(answer) };
    const { key: _key, ...single } = answer(body.key as string);
    return { throttleTimeMs: 0, ...single };
  }

  joinGroup(header: RequestHeader, body: Struct, client: KafkaClientInfo): Promise<Struct> {
    const version = header.apiVersion;
    return new Promise((resolve) => {
      this.coordinator.join({
        groupId: body.groupId as string,
        memberId: body.memberId as string,
        groupInstanceId: body.groupInstanceId as string | null,
        clientId: header.clientId ?? '',
        clientHost: client.host,
        sessionTimeoutMs: body.sessionTimeoutMs as number,
        rebalanceTimeoutMs: body.rebalanceTimeoutMs as number,
        protocolType: body.protocolType as string,
        // Copies: decoded bytes are views into the request frame, which a held member must not pin.
        protocols: (body.protocols as Struct[]).map((p) => ({ name: p.name as string, metadata: Buffer.from(p.metadata as Buffer) })),
        requireKnownMemberId: version >= 4,
      }, this.#now(), (result) => resolve(joinBody(result, version)));
    });
  }

  syncGroup(body: Struct): Promise<Struct> {
    return new Promise((resolve) => {
      this.coordinator.sync({
        ...memberRef(body, body.generationId as number),
        protocolType: body.protocolType as string | null,
        protocolName: body.protocolName as string | null,
        assignments: (body.assignments as Struct[]).map((a) => ({ memberId: a.memberId as string, assignment: Buffer.from(a.assignment as Buffer) })),
      }, this.#now(), (result) => resolve(syncBody(result)));
    });
  }

  leaveGroup(header: RequestHeader, body: Struct): Struct {
    const members = header.apiVersion >= 3
      ? (body.members as Struct[]).map((m) => ({ memberId: m.memberId as string, groupInstanceId: m.groupInstanceId as string | null }))
      : [{ memberId: body.memberId as string, groupInstanceId: null }];
    const result = this.coordinator.leave(body.groupId as string, members, this.#now());
    // v0-2 name one member; its error is the response's.
    const errorCode = header.apiVersion >= 3 ? result.errorCode : (result.members[0]?.errorCode ?? 0);
    return { throttleTimeMs: 0, errorCode, members: result.members };
  }

  offsetCommit(body: Struct): Promise<Struct> {
    const groupId = body.groupId as string;
    return this.#serialize(groupId, async () => {
      const now = this.#now();
      const groupError = this.coordinator.checkCommit(memberRef(body, body.generationIdOrMemberEpoch as number), now);
      const accepted: CommittedOffset[] = [];
      const entries: Array<{ entry: Struct; offset?: CommittedOffset }> = [];
      const topics = (body.topics as Struct[]).map((topic) => {
        const name = topic.name as string;
        const partitions = this.options.partitionsOf(name);
        return {
          name,
          partitions: (topic.partitions as Struct[]).map((p) => {
            const partitionIndex = p.partitionIndex as number;
            const metadata = p.committedMetadata as string | null;
            const entry: Struct = { partitionIndex, errorCode: groupError };
            if (groupError === 0) {
              if (partitions === undefined || partitionIndex < 0 || partitionIndex >= partitions) entry.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
              else if (metadata !== null && Buffer.byteLength(metadata) > this.coordinator.limits.maxOffsetMetadataBytes) entry.errorCode = KafkaErrorCode.OFFSET_METADATA_TOO_LARGE;
              else {
                const offset = { topic: name, partition: partitionIndex, offset: p.committedOffset as bigint, leaderEpoch: p.committedLeaderEpoch as number, metadata, commitTimestamp: now };
                accepted.push(offset);
                entries.push({ entry, offset });
              }
            }
            return entry;
          }),
        };
      });
      try {
        if (accepted.length > 0) {
          await this.offsetLog.commit(groupId, accepted);
          this.coordinator.applyOffsets(groupId, accepted);
        }
      } catch (error) {
        this.options.logger.warn({ err: error, groupId }, 'Kafka offset commit: append failed');
        const code = isShardlineError(error, 'SL_JOURNAL_RECORD_TOO_LARGE') || isShardlineError(error, 'SL_JOURNAL_BATCH_TOO_LARGE') ? KafkaErrorCode.INVALID_COMMIT_OFFSET_SIZE : KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
        for (const { entry } of entries) entry.errorCode = code;
      } finally {
        this.coordinator.dropIfUnused(groupId);
      }
      return { throttleTimeMs: 0, topics };
    });
  }

  offsetFetch(header: RequestHeader, body: Struct): Struct {
    if (header.apiVersion >= 8) {
      const groups = (body.groups as Struct[]).map((group) => (this.#coordinates(group.groupId as string)
        ? { groupId: group.groupId as string, topics: this.#fetchOffsets(group.groupId as string, group.topics as Struct[] | null), errorCode: 0 }
        : { groupId: group.groupId as string, topics: [], errorCode: KafkaErrorCode.NOT_COORDINATOR }));
      return { throttleTimeMs: 0, groups };
    }
    return { throttleTimeMs: 0, topics: this.#fetchOffsets(body.groupId as string, body.topics as Struct[] | null), errorCode: 0 };
  }

  /** null topics: every partition the group committed. Partitions without a commit: offset -1. */
  #fetchOffsets(groupId: string, topics: Struct[] | null): Struct[] {
    const committed = this.coordinator.offsets(groupId);
    const entry = (offset: CommittedOffset | undefined, partitionIndex: number): Struct => ({
      partitionIndex,
      committedOffset: offset?.offset ?? -1n,
      committedLeaderEpoch: offset?.leaderEpoch ?? -1,
      metadata: offset === undefined ? '' : (offset.metadata ?? ''),
      errorCode: 0,
    });
    if (topics === null) {
      const byTopic = new Map<string, Struct[]>();
      for (const offset of committed) byTopic.set(offset.topic, [...(byTopic.get(offset.topic) ?? []), entry(offset, offset.partition)]);
      return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
    }
    const find = new Map(committed.map((offset) => [`${offset.topic}\0${offset.partition}`, offset]));
    return topics.map((topic) => ({
      name: topic.name as string,
      partitions: (topic.partitionIndexes as number[]).map((index) => entry(find.get(`${topic.name as string}\0${index}`), index)),
    }));
  }

  listGroups(body: Struct): Struct {
    const states = new Set((body.statesFilter as string[]).map((state) => state.toLowerCase()));
    // In a cluster each broker lists the groups it coordinates, as Kafka's brokers do (admin clients ask every broker).
    const groups = this.coordinator.list().filter((group) => (states.size === 0 || states.has(group.groupState.toLowerCase())) && this.#coordinates(group.groupId));
    return { throttleTimeMs: 0, errorCode: 0, groups: groups.map((group) => ({ ...group, groupType: 'classic' })) };
  }

  async deleteGroups(body: Struct): Promise<Struct> {
    const results = await Promise.all((body.groupsNames as string[]).map((groupId) => this.#serialize(groupId, async () => {
      const errorCode = this.#coordinates(groupId) ? this.coordinator.checkDelete(groupId) : KafkaErrorCode.NOT_COORDINATOR;
      if (errorCode !== 0) return { groupId, errorCode };
      try {
        await this.offsetLog.remove(groupId, this.coordinator.offsets(groupId));
      } catch (error) {
        this.options.logger.warn({ err: error, groupId }, 'Kafka delete group: append failed');
        return { groupId, errorCode: KafkaErrorCode.COORDINATOR_NOT_AVAILABLE };
      }
      this.coordinator.deleteGroup(groupId);
      return { groupId, errorCode: 0 };
    })));
    return { throttleTimeMs: 0, results };
  }

  /** Runs offset writes of one group one after the other, so the coordinator applies them in append order. */
  #serialize<T>(groupId: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#writes.get(groupId) ?? Promise.resolve();
    const result = previous.then(run, run);
    const tail = result.catch(() => undefined);
    this.#writes.set(groupId, tail);
    const forget = (): void => {
      if (this.#writes.get(groupId) === tail) this.#writes.delete(groupId);
    };
    tail.then(forget, forget);
    return result;
  }

  /** One timer at the coordinator's next deadline. */
  #schedule(): void {
    if (this.#stopped) return;
    const next = this.coordinator.nextDeadline();
    if (next === undefined || next >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      try {
        this.coordinator.tick(this.#now());
      } catch (error) {
        // A broken invariant in the coordinator: logged loudly, but the node's other clients go on.
        this.options.logger.error({ err: error }, 'Kafka group coordinator: tick failed');
      }
      this.#schedule();
    }, Math.max(0, next - this.#now()));
    this.#timer.unref();
  }
}

function pick({ nodeId, host, port }: { nodeId: number; host: string; port: number }): { nodeId: number; host: string; port: number } {
  return { nodeId, host, port };
}

function memberRef(body: Struct, generationId: number): { groupId: string; generationId: number; memberId: string; groupInstanceId: string | null } {
  return { groupId: body.groupId as string, generationId, memberId: body.memberId as string, groupInstanceId: (body.groupInstanceId as string | null | undefined) ?? null };
}

function joinBody(result: JoinResult, version: number): Struct {
  return {
    throttleTimeMs: 0,
    errorCode: result.errorCode,
    generationId: result.generationId,
    protocolType: result.protocolType,
    // Non-nullable before v7.
    protocolName: result.protocolName ?? (version >= 7 ? null : ''),
    leader: result.leader,
    skipAssignment: false,
    memberId: result.memberId,
    members: result.members,
  };
}

function syncBody(result: SyncResult): Struct {
  return { throttleTimeMs: 0, errorCode: result.errorCode, protocolType: result.protocolType, protocolName: result.protocolName, assignment: result.assignment };
}

function describeBody(group: GroupDescription): Struct {
  return {
    errorCode: group.errorCode,
    groupId: group.groupId,
    groupState: group.groupState,
    protocolType: group.protocolType,
    protocolData: group.protocolData,
    members: group.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost, memberMetadata: m.metadata, memberAssignment: m.assignment })),
  };
}
