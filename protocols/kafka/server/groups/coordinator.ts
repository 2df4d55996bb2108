// The group coordinator of Kafka's classic group protocol, as a pure state machine: requests and
// the time in, answers out through reply callbacks (a JoinGroup or SyncGroup may be answered
// later, when its rebalance completes). No sockets, timers, clock or randomness: the driver
// (groups/service.ts) passes `now`, calls tick() on a timer and supplies the member id source.
// Committed offsets are held here too (the projection of the offsets shard), so a group's life
// (members or offsets keep it) is decided in one place; the driver makes them durable first.
//
// States as Kafka names them: Empty (no members), PreparingRebalance (waiting for members to
// join), CompletingRebalance (joined, waiting for the leader's SyncGroup), Stable.
import { KafkaErrorCode } from '../../codec/index.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export interface GroupLimits {
  /** Live groups (with members or committed offsets) on this node; beyond it a new group gets COORDINATOR_NOT_AVAILABLE. */
  maxGroups: number;
  /** Members plus members-to-be (issued a member id, not yet joined) per group; beyond it GROUP_MAX_SIZE_REACHED. */
  maxMembersPerGroup: number;
  /** Kafka's group.min.session.timeout.ms and group.max.session.timeout.ms. */
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** Largest rebalance timeout honoured (larger asks are cut to it), so a join never waits longer. */
  maxRebalanceTimeoutMs: number;
  /** Kafka's group.initial.rebalance.delay.ms: the first rebalance of an empty group waits this long for more members. */
  initialRebalanceDelayMs: number;
  /** Kafka's offset.metadata.max.bytes. */
  maxOffsetMetadataBytes: number;
  /** Largest protocol metadata (all of a member's protocols) and largest assignment one member may hold; beyond it INVALID_REQUEST. */
  maxMemberBytes: number;
  /** Metadata and assignments held for all members on this node; beyond it a join or an assignment gets COORDINATOR_NOT_AVAILABLE. */
  maxHeldBytes: number;
}

export const DEFAULT_GROUP_LIMITS: GroupLimits = {
  maxGroups: 10_000,
  maxMembersPerGroup: 1000,
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1_800_000,
  maxRebalanceTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 3000,
  maxOffsetMetadataBytes: 4096,
  maxMemberBytes: 1024 * 1024,
  maxHeldBytes: 64 * 1024 * 1024,
};

export interface Protocol {
  name: string;
  metadata: Buffer;
}

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  /** -1 (JoinGroup v0): the session timeout. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  /** JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id. */
  requireKnownMemberId: boolean;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  /** The leader alone gets every member with its metadata for the chosen protocol. */
  members: Array<{ memberId: string; groupInstanceId: string | null; metadata: Buffer }>;
}

export interface MemberRef {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface SyncRequest extends MemberRef {
  protocolType: string | null;
  protocolName: string | null;
  assignments: Array<{ memberId: string; assignment: Buffer }>;
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export interface LeaveResult {
  errorCode: number;
  members: Array<{ memberId: string; groupInstanceId: string | null; errorCode: number }>;
}

export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestamp: number;
}

export interface GroupDescription {
  errorCode: number;
  groupId: string;
  groupState: GroupState | 'Dead';
  protocolType: string;
  protocolData: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }>;
}

export interface GroupSummary {
  groupId: string;
  groupState: GroupState;
  protocolType: string;
  /** The protocol chosen at the last completed join ('' before the first). */
  protocolName: string;
  generation: number;
  memberCount: number;
}

/** An answer the coordinator gives now or later; called exactly once per request. */
export type Reply<T> = (result: T) => void;

interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: Protocol[];
  assignment: Buffer;
  /** Session deadline; not enforced while a join waits on us. */
  expiresAt: number;
  awaitingJoin: Reply<JoinResult> | undefined;
  awaitingSync: Reply<SyncResult> | undefined;
  /** Its protocols' metadata and its assignment, as counted in the node's held bytes. */
  heldBytes: number;
}

interface Group {
  id: string;
  state: GroupState;
  generation: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string | null;
  /** In join order: the first one becomes leader when the leader is gone. */
  members: Map<string, Member>;
  /** Member ids handed out with MEMBER_ID_REQUIRED → when they lapse unused. */
  pending: Map<string, number>;
  /** group.instance.id → its current member id. */
  staticMembers: Map<string, string>;
  rebalanceDeadline: number;
  /** The earliest a rebalance may complete (the initial delay of an empty group). */
  completeNotBefore: number;
  /** topic \0 partition → the latest commit. */
  offsets: Map<string, CommittedOffset>;
}

const EMPTY = Buffer.alloc(0);

function joinError(errorCode: number, memberId: string): JoinResult {
  return { errorCode, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, members: [] };
}

function syncError(errorCode: number): SyncResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

function offsetKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

function protocolBytes(protocols: readonly Protocol[]): number {
  return protocols.reduce((sum, protocol) => sum + protocol.metadata.length, 0);
}

function sameProtocols(a: readonly Protocol[], b: readonly Protocol[]): boolean {
  return a.length === b.length && a.every((protocol, i) => protocol.name === b[i]!.name && protocol.metadata.equals(b[i]!.metadata));
}

export class GroupCoordinator {
  readonly #groups = new Map<string, Group>();
  /** Groups with members or members-to-be: the only ones tick() has work in. */
  readonly #active = new Set<Group>();
  #heldBytes = 0;

  constructor(
    private readonly newMemberId: (clientId: string) => string,
    readonly limits: GroupLimits = DEFAULT_GROUP_LIMITS,
  ) {}

  get groupCount(): number {
    return this.#groups.size;
  }

  /** Member metadata and assignment bytes held now (bounded by limits.maxHeldBytes). */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  join(request: JoinRequest, now: number, reply: Reply<JoinResult>): void {
    const { groupId, memberId } = request;
    if (groupId === '') return reply(joinError(KafkaErrorCode.INVALID_GROUP_ID, memberId));
    if (request.sessionTimeoutMs < this.limits.minSessionTimeoutMs || request.sessionTimeoutMs > this.limits.maxSessionTimeoutMs) {
      return reply(joinError(KafkaErrorCode.INVALID_SESSION_TIMEOUT, memberId));
    }
    if (request.protocolType === '' || request.protocols.length === 0) return reply(joinError(KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL, memberId));
    const bytes = protocolBytes(request.protocols);
    if (bytes > this.limits.maxMemberBytes) return reply(joinError(KafkaErrorCode.INVALID_REQUEST, memberId));
    let group = this.#groups.get(groupId);
    // What the member already holds is replaced, so only the growth counts against the node's bytes.
    const known = group?.members.get(memberId) ?? (request.groupInstanceId === null ? undefined : group?.members.get(group.staticMembers.get(request.groupInstanceId) ?? ''));
    if (this.#heldBytes - protocolBytes(known?.protocols ?? []) + bytes > this.limits.maxHeldBytes) return reply(joinError(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, memberId));
    if (group === undefined) {
      if (memberId !== '') return reply(joinError(KafkaErrorCode.UNKNOWN_MEMBER_ID, memberId));
      group = this.#createGroup(groupId);
      if (group === undefined) return reply(joinError(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, memberId));
    }
    try {
      this.#join(group, request, now, reply);
    } finally {
      this.#dropIfUnused(group);
    }
  }

  #join(group: Group, request: JoinRequest, now: number, reply: Reply<JoinResult>): void {
    const { memberId, groupInstanceId } = request;
    if (group.members.size > 0 && (request.protocolType !== group.protocolType || !this.#fits(group, memberId, request.protocols))) {
      return reply(joinError(KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL, memberId));
    }
    if (memberId === '') {
      const previous = groupInstanceId === null ? undefined : group.staticMembers.get(groupInstanceId);
      if (previous !== undefined) return this.#replaceStaticMember(group, group.members.get(previous)!, request, now, reply);
      if (group.members.size + group.pending.size >= this.limits.maxMembersPerGroup) return reply(joinError(KafkaErrorCode.GROUP_MAX_SIZE_REACHED, memberId));
      const id = this.newMemberId(request.clientId);
      if (request.requireKnownMemberId && groupInstanceId === null) {
        group.pending.set(id, now + request.sessionTimeoutMs);
        this.#active.add(group);
        return reply(joinError(KafkaErrorCode.MEMBER_ID_REQUIRED, id));
      }
      return this.#addMember(group, id, request, now, reply);
    }
    if (group.pending.delete(memberId)) return this.#addMember(group, memberId, request, now, reply);
    const fenced = this.#fenced(group, memberId, groupInstanceId);
    if (fenced !== 0) return reply(joinError(fenced, memberId));
    const member = group.members.get(memberId)!;
    const changed = !sameProtocols(member.protocols, request.protocols);
    switch (group.state) {
      case 'PreparingRebalance':
        this.#updateMember(member, request, now);
        this.#awaitJoin(member, reply);
        this.#tryCompleteJoin(group, now);
        return;
      case 'CompletingRebalance':
      case 'Stable':
        // A member rejoining with what it had gets the current generation again; the leader
        // (it assigns from the members' metadata) or a changed member starts a rebalance.
        if (!changed && (group.state === 'CompletingRebalance' || group.leader !== memberId)) {
          member.expiresAt = now + member.sessionTimeoutMs;
          return reply(this.#joinResult(group, member));
        }
        this.#updateMember(member, request, now);
        this.#awaitJoin(member, reply);
        this.#prepareRebalance(group, now);
        this.#tryCompleteJoin(group, now);
        return;
      case 'Empty':
        throw new Error(`group ${group.id} is Empty yet holds member ${memberId}`);
    }
  }

  /** 0, or the error of a member reference that is not (or no longer) this group's member. */
  #fenced(group: Group, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const current = group.staticMembers.get(groupInstanceId);
      if (current !== undefined && current !== memberId) return KafkaErrorCode.FENCED_INSTANCE_ID;
    }
    return group.members.has(memberId) ? 0 : KafkaErrorCode.UNKNOWN_MEMBER_ID;
  }

  /** Whether the protocols share one with every other member (what the group could choose). */
  #fits(group: Group, memberId: string, protocols: readonly Protocol[]): boolean {
    return protocols.some((protocol) => [...group.members.values()].every((other) => other.memberId === memberId || other.protocols.some((p) => p.name === protocol.name)));
  }

  #addMember(group: Group, memberId: string, request: JoinRequest, now: number, reply: Reply<JoinResult>): void {
    const member: Member = {
      memberId, groupInstanceId: request.groupInstanceId, clientId: request.clientId, clientHost: request.clientHost,
      sessionTimeoutMs: 0, rebalanceTimeoutMs: 0, protocols: [], assignment: EMPTY, expiresAt: 0, awaitingJoin: undefined, awaitingSync: undefined, heldBytes: 0,
    };
    this.#updateMember(member, request, now);
    group.members.set(memberId, member);
    if (group.protocolType === null || group.members.size === 1) group.protocolType = request.protocolType;
    if (request.groupInstanceId !== null) group.staticMembers.set(request.groupInstanceId, memberId);
    this.#active.add(group);
    this.#awaitJoin(member, reply);
    if (group.state !== 'PreparingRebalance') this.#prepareRebalance(group, now);
    this.#tryCompleteJoin(group, now);
  }

  /** A known group.instance.id joining without a member id: a restarted static member takes its place under a new id. */
  #replaceStaticMember(group: Group, old: Member, request: JoinRequest, now: number, reply: Reply<JoinResult>): void {
    const id = this.newMemberId(request.clientId);
    old.awaitingJoin?.(joinError(KafkaErrorCode.FENCED_INSTANCE_ID, old.memberId));
    old.awaitingSync?.(syncError(KafkaErrorCode.FENCED_INSTANCE_ID));
    const changed = !sameProtocols(old.protocols, request.protocols);
    const member: Member = { ...old, memberId: id, awaitingJoin: undefined, awaitingSync: undefined };
    this.#updateMember(member, request, now);
    // Same place in join order, so leadership stays put.
    const entries = [...group.members.entries()].map(([key, value]) => (key === old.memberId ? [id, member] as const : [key, value] as const));
    group.members = new Map(entries);
    group.staticMembers.set(request.groupInstanceId!, id);
    if (group.leader === old.memberId) group.leader = id;
    if (group.state === 'Stable' && !changed && group.leader !== id) return reply(this.#joinResult(group, member));
    this.#awaitJoin(member, reply);
    if (group.state !== 'PreparingRebalance') this.#prepareRebalance(group, now);
    this.#tryCompleteJoin(group, now);
  }

  #updateMember(member: Member, request: JoinRequest, now: number): void {
    member.clientId = request.clientId;
    member.clientHost = request.clientHost;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    const rebalance = request.rebalanceTimeoutMs < 0 ? request.sessionTimeoutMs : request.rebalanceTimeoutMs;
    member.rebalanceTimeoutMs = Math.min(rebalance, this.limits.maxRebalanceTimeoutMs);
    member.protocols = request.protocols;
    member.expiresAt = now + request.sessionTimeoutMs;
    this.#account(member);
  }

  /** Brings the node's held bytes up to date with what the member holds now. */
  #account(member: Member): void {
    const bytes = protocolBytes(member.protocols) + member.assignment.length;
    this.#heldBytes += bytes - member.heldBytes;
    member.heldBytes = bytes;
  }

  #awaitJoin(member: Member, reply: Reply<JoinResult>): void {
    // A second join from the same member replaces the first, which is told to retry.
    member.awaitingJoin?.(joinError(KafkaErrorCode.REBALANCE_IN_PROGRESS, member.memberId));
    member.awaitingJoin = reply;
  }

  #prepareRebalance(group: Group, now: number): void {
    if (group.state === 'CompletingRebalance') {
      for (const member of group.members.values()) {
        member.assignment = EMPTY;
        this.#account(member);
        const waiting = member.awaitingSync;
        member.awaitingSync = undefined;
        waiting?.(syncError(KafkaErrorCode.REBALANCE_IN_PROGRESS));
      }
    }
    this.#active.add(group);
    const wasEmpty = group.state === 'Empty';
    const timeout = Math.max(0, ...[...group.members.values()].map((member) => member.rebalanceTimeoutMs));
    group.state = 'PreparingRebalance';
    group.rebalanceDeadline = now + timeout;
    group.completeNotBefore = wasEmpty ? now + Math.min(this.limits.initialRebalanceDelayMs, timeout) : now;
  }

  #tryCompleteJoin(group: Group, now: number): void {
    if (group.state !== 'PreparingRebalance') return;
    if (this.#allJoined(group) && (now >= group.completeNotBefore || group.members.size === 0)) this.#completeJoin(group, now);
    else if (now >= group.rebalanceDeadline) this.#completeJoin(group, now);
  }

  #allJoined(group: Group): boolean {
    return group.pending.size === 0 && [...group.members.values()].every((member) => member.awaitingJoin !== undefined);
  }

  #completeJoin(group: Group, now: number): void {
    // Who did not rejoin in time is out, as are ids handed out but never used.
    for (const member of [...group.members.values()]) if (member.awaitingJoin === undefined) this.#removeMember(group, member);
    group.pending.clear();
    group.generation += 1;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = null;
      group.leader = null;
      return;
    }
    const members = [...group.members.values()];
    group.protocolName = selectProtocol(members);
    if (group.leader === null || !group.members.has(group.leader)) group.leader = members[0]!.memberId;
    group.state = 'CompletingRebalance';
    for (const member of members) {
      const waiting = member.awaitingJoin!;
      member.awaitingJoin = undefined;
      member.expiresAt = now + member.sessionTimeoutMs;
      waiting(this.#joinResult(group, member));
    }
  }

  #joinResult(group: Group, member: Member): JoinResult {
    const members = member.memberId !== group.leader ? [] : [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
    }));
    return { errorCode: 0, generationId: group.generation, protocolType: group.protocolType, protocolName: group.protocolName, leader: group.leader ?? '', memberId: member.memberId, members };
  }

  /** Takes a member out, answers what it waits for, and moves the group on (a rebalance for the rest). */
  #removeMember(group: Group, member: Member): void {
    group.members.delete(member.memberId);
    this.#heldBytes -= member.heldBytes;
    member.heldBytes = 0;
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) group.staticMembers.delete(member.groupInstanceId);
    const join = member.awaitingJoin;
    const sync = member.awaitingSync;
    member.awaitingJoin = undefined;
    member.awaitingSync = undefined;
    join?.(joinError(KafkaErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
    sync?.(syncError(KafkaErrorCode.UNKNOWN_MEMBER_ID));
  }

  #memberLeft(group: Group, member: Member, now: number): void {
    this.#removeMember(group, member);
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') this.#prepareRebalance(group, now);
    this.#tryCompleteJoin(group, now);
  }

  sync(request: SyncRequest, now: number, reply: Reply<SyncResult>): void {
    const group = this.#groups.get(request.groupId);
    if (group === undefined) return reply(syncError(KafkaErrorCode.UNKNOWN_MEMBER_ID));
    const error = this.#checkMember(group, request);
    if (error !== 0) return reply(syncError(error));
    if ((request.protocolType !== null && request.protocolType !== group.protocolType) || (request.protocolName !== null && request.protocolName !== group.protocolName)) {
      return reply(syncError(KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    const member = group.members.get(request.memberId)!;
    member.expiresAt = now + member.sessionTimeoutMs;
    if (group.state === 'PreparingRebalance') return reply(syncError(KafkaErrorCode.REBALANCE_IN_PROGRESS));
    if (group.state === 'Stable') return reply(this.#syncResult(group, member));
    if (group.leader === member.memberId) {
      const refused = this.#checkAssignments(group, request.assignments);
      if (refused !== 0) return reply(syncError(refused));
    }
    member.awaitingSync?.(syncError(KafkaErrorCode.REBALANCE_IN_PROGRESS));
    member.awaitingSync = reply;
    if (group.leader !== member.memberId) return;
    // The leader's assignment: members it names get theirs (unknown names are ignored), the rest an empty one.
    const assigned = new Map(request.assignments.map((entry) => [entry.memberId, entry.assignment]));
    group.state = 'Stable';
    for (const each of group.members.values()) {
      each.assignment = assigned.get(each.memberId) ?? EMPTY;
      this.#account(each);
      const waiting = each.awaitingSync;
      each.awaitingSync = undefined;
      waiting?.(this.#syncResult(group, each));
    }
  }

  /** The leader's assignments must fit the per-member and the node's byte bounds (the members' current ones are replaced). */
  #checkAssignments(group: Group, assignments: SyncRequest['assignments']): number {
    let growth = 0;
    for (const { memberId, assignment } of assignments) {
      if (assignment.length > this.limits.maxMemberBytes) return KafkaErrorCode.INVALID_REQUEST;
      const member = group.members.get(memberId);
      if (member !== undefined) growth += assignment.length - member.assignment.length;
    }
    return this.#heldBytes + growth > this.limits.maxHeldBytes ? KafkaErrorCode.COORDINATOR_NOT_AVAILABLE : 0;
  }

  #syncResult(group: Group, member: Member): SyncResult {
    return { errorCode: 0, protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment };
  }

  /** Kafka's order of checks for a request naming a member and a generation. */
  #checkMember(group: Group, request: MemberRef): number {
    const fenced = this.#fenced(group, request.memberId, request.groupInstanceId);
    if (fenced !== 0) return fenced;
    if (request.generationId !== group.generation) return KafkaErrorCode.ILLEGAL_GENERATION;
    return 0;
  }

  heartbeat(request: MemberRef, now: number): number {
    const group = this.#groups.get(request.groupId);
    if (group === undefined) return KafkaErrorCode.UNKNOWN_MEMBER_ID;
    const error = this.#checkMember(group, request);
    if (error !== 0) return error;
    const member = group.members.get(request.memberId)!;
    member.expiresAt = now + member.sessionTimeoutMs;
    return group.state === 'PreparingRebalance' ? KafkaErrorCode.REBALANCE_IN_PROGRESS : 0;
  }

  /** LeaveGroup: by member id, or (v3+) by group.instance.id for static members. */
  leave(groupId: string, members: ReadonlyArray<{ memberId: string; groupInstanceId: string | null }>, now: number): LeaveResult {
    const group = this.#groups.get(groupId);
    if (group === undefined) return { errorCode: 0, members: members.map((m) => ({ ...m, errorCode: KafkaErrorCode.UNKNOWN_MEMBER_ID })) };
    const results = members.map(({ memberId, groupInstanceId }) => {
      let errorCode = 0;
      if (groupInstanceId !== null) {
        const current = group.staticMembers.get(groupInstanceId);
        if (current === undefined) errorCode = KafkaErrorCode.UNKNOWN_MEMBER_ID;
        else if (memberId !== '' && memberId !== current) errorCode = KafkaErrorCode.FENCED_INSTANCE_ID;
        else this.#memberLeft(group, group.members.get(current)!, now);
      } else if (group.pending.delete(memberId)) {
        this.#tryCompleteJoin(group, now);
      } else {
        const member = group.members.get(memberId);
        if (member === undefined) errorCode = KafkaErrorCode.UNKNOWN_MEMBER_ID;
        else this.#memberLeft(group, member, now);
      }
      return { memberId, groupInstanceId, errorCode };
    });
    this.#dropIfUnused(group);
    return { errorCode: 0, members: results };
  }

  /** Session timeouts, lapsed member ids, rebalance deadlines and initial delays that are due at `now`. */
  tick(now: number): void {
    for (const group of [...this.#active]) {
      for (const [id, expiresAt] of group.pending) if (expiresAt <= now) group.pending.delete(id);
      for (const member of [...group.members.values()]) {
        if (member.awaitingJoin === undefined && member.expiresAt <= now && group.members.get(member.memberId) === member) this.#memberLeft(group, member, now);
      }
      this.#tryCompleteJoin(group, now);
      this.#dropIfUnused(group);
    }
  }

  /** The next time tick() has something to do; undefined: nothing pending. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    const consider = (at: number): void => {
      if (next === undefined || at < next) next = at;
    };
    for (const group of this.#active) {
      for (const expiresAt of group.pending.values()) consider(expiresAt);
      for (const member of group.members.values()) if (member.awaitingJoin === undefined) consider(member.expiresAt);
      if (group.state === 'PreparingRebalance') consider(this.#allJoined(group) ? Math.min(group.completeNotBefore, group.rebalanceDeadline) : group.rebalanceDeadline);
    }
    return next;
  }

  // --- Committed offsets -------------------------------------------------------------------

  /**
   * May this OffsetCommit go ahead? 0, or the error every partition gets. A commit with
   * generation -1 (a "simple" commit, no group membership) is taken by a group with no members
   * and creates the group when unknown; the caller drops it again (dropIfUnused) if the commit
   * fails. Counts as a heartbeat for a member in the current generation.
   */
  checkCommit(request: MemberRef, now: number): number {
    let group = this.#groups.get(request.groupId);
    if (group === undefined) {
      if (request.generationId >= 0) return KafkaErrorCode.ILLEGAL_GENERATION;
      group = this.#createGroup(request.groupId);
      return group === undefined ? KafkaErrorCode.COORDINATOR_NOT_AVAILABLE : 0;
    }
    if (request.generationId < 0 && group.state === 'Empty') return 0;
    if (group.state === 'CompletingRebalance') {
      const fenced = this.#fenced(group, request.memberId, request.groupInstanceId);
      return fenced === KafkaErrorCode.FENCED_INSTANCE_ID ? fenced : KafkaErrorCode.REBALANCE_IN_PROGRESS;
    }
    const error = this.#checkMember(group, request);
    if (error !== 0) return error;
    const member = group.members.get(request.memberId)!;
    member.expiresAt = now + member.sessionTimeoutMs;
    return 0;
  }

  /** Committed offsets made durable (or read back at start) become the group's. */
  applyOffsets(groupId: string, offsets: readonly CommittedOffset[]): void {
    const group = this.#groups.get(groupId) ?? this.#createGroup(groupId, true)!;
    for (const offset of offsets) group.offsets.set(offsetKey(offset.topic, offset.partition), offset);
  }

  /** One committed offset removed (a tombstone read back at start). */
  removeOffset(groupId: string, topic: string, partition: number): void {
    const group = this.#groups.get(groupId);
    if (group === undefined) return;
    group.offsets.delete(offsetKey(topic, partition));
    this.#dropIfUnused(group);
  }

  offsets(groupId: string): CommittedOffset[] {
    return [...(this.#groups.get(groupId)?.offsets.values() ?? [])];
  }

  /** Forgets an unknown group made for a commit that failed. */
  dropIfUnused(groupId: string): void {
    const group = this.#groups.get(groupId);
    if (group !== undefined) this.#dropIfUnused(group);
  }

  /** DeleteGroups: 0 when the group may go (no members), else its Kafka error. */
  checkDelete(groupId: string): number {
    if (groupId === '') return KafkaErrorCode.INVALID_GROUP_ID;
    const group = this.#groups.get(groupId);
    if (group === undefined) return KafkaErrorCode.GROUP_ID_NOT_FOUND;
    return group.state === 'Empty' && group.pending.size === 0 ? 0 : KafkaErrorCode.NON_EMPTY_GROUP;
  }

  /** After the offsets' tombstones are durable: the offsets go, and the group with them unless a member came meanwhile. */
  deleteGroup(groupId: string): void {
    const group = this.#groups.get(groupId);
    if (group === undefined) return;
    group.offsets.clear();
    this.#dropIfUnused(group);
  }

  // --- Views -------------------------------------------------------------------------------

  describe(groupId: string): GroupDescription {
    const group = this.#groups.get(groupId);
    if (group === undefined) {
      return { errorCode: groupId === '' ? KafkaErrorCode.INVALID_GROUP_ID : 0, groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [] };
    }
    // As Kafka: metadata and assignments only once the group is Stable.
    const stable = group.state === 'Stable';
    return {
      errorCode: 0,
      groupId,
      groupState: group.state,
      protocolType: group.protocolType ?? '',
      protocolData: stable ? (group.protocolName ?? '') : '',
      members: [...group.members.values()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
        clientHost: member.clientHost,
        metadata: stable ? (member.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY) : EMPTY,
        assignment: stable ? member.assignment : EMPTY,
      })),
    };
  }

  /** Every group for operators (admin API, metrics), sorted by id; unlike describe(), the protocol name in any state. */
  summaries(): GroupSummary[] {
    return [...this.#groups.values()].map(summaryOf).sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  summary(groupId: string): GroupSummary | undefined {
    const group = this.#groups.get(groupId);
    return group === undefined ? undefined : summaryOf(group);
  }

  list(): Array<{ groupId: string; protocolType: string; groupState: GroupState }> {
    return [...this.#groups.values()].map((group) => ({ groupId: group.id, protocolType: group.protocolType ?? '', groupState: group.state }));
  }

  #createGroup(groupId: string, force = false): Group | undefined {
    if (!force && this.#groups.size >= this.limits.maxGroups) return undefined;
    const group: Group = {
      id: groupId, state: 'Empty', generation: 0, protocolType: null, protocolName: null, leader: null,
      members: new Map(), pending: new Map(), staticMembers: new Map(), rebalanceDeadline: 0, completeNotBefore: 0, offsets: new Map(),
    };
    this.#groups.set(groupId, group);
    return group;
  }

  #dropIfUnused(group: Group): void {
    if (group.members.size > 0 || group.pending.size > 0 || group.state === 'PreparingRebalance') return;
    this.#active.delete(group);
    if (group.state === 'Empty' && group.offsets.size === 0 && this.#groups.get(group.id) === group) this.#groups.delete(group.id);
  }
}

function summaryOf(group: Group): GroupSummary {
  return { groupId: group.id, groupState: group.state, protocolType: group.protocolType ?? '', protocolName: group.protocolName ?? '', generation: group.generation, memberCount: group.members.size };
}

/** Kafka's choice: among the protocols every member supports, the one most members list first. */
function selectProtocol(members: readonly Member[]): string {
  const candidates = members[0]!.protocols.map((p) => p.name).filter((name) => members.every((member) => member.protocols.some((p) => p.name === name)));
  // Join refuses a member that shares no protocol with the others, so there is always a candidate.
  if (candidates.length === 0) throw new Error('no protocol common to every member');
  const votes = new Map<string, number>();
  for (const member of members) {
    const vote = member.protocols.find((p) => candidates.includes(p.name))!.name;
    votes.set(vote, (votes.get(vote) ?? 0) + 1);
  }
  return candidates.reduce((best, name) => ((votes.get(name) ?? 0) > (votes.get(best) ?? 0) ? name : best));
}
