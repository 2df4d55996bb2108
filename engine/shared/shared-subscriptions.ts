// Shared ($share/{group}/{filter}) and exclusive ($exclusive/{filter}) subscriptions, for the
// broker. The broker keeps every subscription in its sessions as the client wrote it; this
// registry decides how each one is routed:
// - plain and exclusive filters go into the broker's own trie (exclusive ones under the filter
//   after the prefix), with the exclusive lock kept here: one client holds `$exclusive/F` at a
//   time, from its SUBSCRIBE until it unsubscribes or its session ends (an offline persistent
//   session keeps it);
// - shared filters go to their group (shared-group.ts), one per (share name, filter), which
//   this registry matches on dispatch and hands each message to once.
//
// Durability. Members' subscriptions are ordinary subscription records in `$sessions`, so a
// group is rebuilt at start from its members' sessions. Each group's own delivery cursors are
// records in the compacted `$shared` shard (key `g:{group}\0{filter}`, value the cursors as in
// `$sessions`, with the offsets acknowledged above them; tombstone when the group ends), written
// when a group is made (before SUBACK), with the sessions' cursors (every cursorFlushMs) and
// before a PUBREL to a member. A group whose members all went loses its record; a record with no
// member at start is removed.
import type { Logger } from 'pino';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { createShardIfMissing, type ShardStore } from '../../shard-model/index.js';
import type { Message } from '../messages/message.js';
import { TopicTrie } from '../routing/topic-trie.js';
import type { SubscriptionOptions } from '../sessions/session-events.js';
import { Session, type SessionHost } from '../sessions/session.js';
import { cursorsByName, cursorsByPosition, readStoredCursors, storedCursorsValue, type ShardCursors } from '../sessions/shard-cursors.js';
import { Projection, type ProjectionCodec } from '../projection/projection.js';
import { ShardAppender, type RetryTimers } from '../shard-appender.js';
import { GROUP_OPTIONS, SharedGroup, type GroupEnvironment } from './shared-group.js';
import { parseSubscriptionFilter, SHARE_PREFIX } from './shared-filter.js';
import type { SharedStrategy } from './strategy.js';

export const SHARED_SHARD = '$shared';
const SEPARATOR = '\u0000';

/** The projection of `$shared`: group cursors by `{group}\0{filter}`. */
type GroupCursors = Map<string, ShardCursors>;

const groupCursorsCodec: ProjectionCodec<GroupCursors> = {
  // 2: cursors by shard name (engine/sessions/shard-cursors.ts).
  version: 2,
  encode: (groups) => Buffer.from(JSON.stringify([...groups])),
  decode: (bytes) => new Map(JSON.parse(bytes.toString('utf8')) as Array<[string, ShardCursors]>),
};

function applyGroupRecord(groups: GroupCursors, record: JournalRecord): GroupCursors {
  if (record.key === null) return groups;
  const key = record.key.toString('utf8');
  if (!key.startsWith('g:')) return groups;
  if (record.value === null) groups.delete(key.slice(2));
  else groups.set(key.slice(2), readStoredCursors(record.value));
  return groups;
}

export interface SharedSubscriptionsOptions {
  store: ShardStore;
  logger: Logger;
  /** The broker's session host (shard reads, dispatch frontier, clock). */
  host: SessionHost;
  /** The data shards' names, in the order of their positions (stored cursors are keyed by them). */
  shardNames(): readonly string[];
  strategy: SharedStrategy;
  random?: () => number;
  sessionOf(clientId: string): Session | undefined;
  mayRead(clientId: string, topic: string): boolean;
  delivered(): void;
  /** Retry timers for cursor writes during a journal outage (without: a failed write is logged and retried on the next change). */
  timers?: RetryTimers;
}

/** Why a subscription is refused before it is made. */
export type Admission = { ok: true } | { ok: false; reason: 'invalid' | 'exclusive-taken' | 'conflict'; detail: string };

export class SharedSubscriptions {
  readonly #options: SharedSubscriptionsOptions;
  readonly #env: GroupEnvironment;
  /** Groups by `{group}\0{filter}`. */
  readonly #groups = new Map<string, SharedGroup>();
  /** Group filters; the subscriber id is the group key. */
  readonly #trie = new TopicTrie<SharedGroup>();
  /** Exclusive filters (after the prefix) and the client holding each. */
  readonly #exclusive = new Map<string, string>();
  /** The `$shared` projection as read at start: group cursors by key (a copy; emptied once the sessions are recovered). */
  #stored = new Map<string, ShardCursors>();
  /** The `$shared` projection, fed with this registry's durable writes, for snapshots. */
  #projection!: Projection<GroupCursors>;
  readonly #dirty = new Set<string>();
  #writes!: ShardAppender<null, void>;
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(options: SharedSubscriptionsOptions) {
    this.#options = options;
    const host = options.host;
    this.#env = {
      strategy: options.strategy,
      random: options.random ?? Math.random,
      sessionOf: (clientId) => options.sessionOf(clientId),
      mayRead: (clientId, topic) => options.mayRead(clientId, topic),
      delivered: () => options.delivered(),
      dropped: (reason, count) => host.dropped(reason, count),
    };
  }

  get strategy(): SharedStrategy {
    return this.#options.strategy;
  }

  /** Creates `$shared` when missing and reads the group cursors (before sessions are recovered). */
  async start(): Promise<void> {
    const { store } = this.#options;
    const existing = new Set((await store.list()).map((info) => info.name));
    if (!existing.has(SHARED_SHARD)) await createShardIfMissing(store, SHARED_SHARD, { compacted: true, segmentBytes: 8 * 1024 * 1024 });
    // Group cursors wait out a journal outage (persist) like session cursors.
    this.#writes = new ShardAppender<null, void>(store, SHARED_SHARD, () => undefined, undefined, this.#options.timers, {
      durable: (baseOffset, records) => this.#projection.appended(baseOffset, records),
      // The projection holds durable records only: a failed append changes nothing in it.
      failed: () => undefined,
    });
    this.#projection = await Projection.open<GroupCursors>({ store, shard: SHARED_SHARD, logger: this.#options.logger, initial: () => new Map(), apply: applyGroupRecord, codec: groupCursorsCodec });
    this.#stored = new Map(this.#projection.state);
  }

  /** After the sessions are recovered: records of groups that no longer have members go. */
  async recovered(): Promise<void> {
    const gone = [...this.#stored.keys()].filter((key) => !this.#groups.has(key));
    this.#stored.clear();
    if (gone.length > 0) await this.#writes.addAll(gone.map((key) => groupRecord(key, null)), null);
    if (this.#groups.size > 0) this.#options.logger.info({ groups: this.#groups.size }, 'shared subscription groups rebuilt from their members\' sessions');
  }

  get groupCount(): number {
    return this.#groups.size;
  }

  /** The groups, for introspection: name, filter, members. */
  groups(): Array<{ group: string; filter: string; members: string[] }> {
    return [...this.#groups.values()].map((group) => ({ group: group.group, filter: group.filter, members: [...group.members.keys()].sort() }));
  }

  /**
   * Whether a session may make this subscription: the prefix is well-formed, an exclusive
   * filter is free (or already this client's), and the client does not hold the same filter
   * both plain and exclusive (they would route as one).
   */
  admit(session: Session, filter: string): Admission {
    const parsed = parseSubscriptionFilter(filter);
    if (!parsed.ok) return { ok: false, reason: 'invalid', detail: parsed.detail };
    const value = parsed.value;
    if (value.kind === 'exclusive') {
      const holder = this.#exclusive.get(value.filter);
      if (holder !== undefined && holder !== session.clientId) return { ok: false, reason: 'exclusive-taken', detail: `${filter} is held by another client (exclusive subscriptions allow one subscriber at a time)` };
      if (session.subscriptions.has(value.filter)) return { ok: false, reason: 'conflict', detail: `this session already subscribes to ${value.filter}; it cannot also hold ${filter}` };
    } else if (value.kind === 'plain' && session.subscriptions.has(`$exclusive/${filter}`)) {
      return { ok: false, reason: 'conflict', detail: `this session holds $exclusive/${filter}; it cannot also subscribe to ${filter}` };
    }
    return { ok: true };
  }

  /**
   * A subscription was made or restored. Returns the filter the broker's trie routes it by,
   * or undefined for a shared subscription (its group routes it).
   */
  add(filter: string, clientId: string, options: SubscriptionOptions): string | undefined {
    const parsed = parseSubscriptionFilter(filter);
    if (!parsed.ok) {
      // Only a `$share/` filter that never parsed can get here (written by an older version).
      this.#options.logger.warn({ clientId, filter, detail: parsed.detail }, 'ignoring a subscription with a malformed $share/ filter');
      return undefined;
    }
    const value = parsed.value;
    if (value.kind === 'plain') return value.filter;
    if (value.kind === 'exclusive') {
      const holder = this.#exclusive.get(value.filter);
      if (holder === undefined) this.#exclusive.set(value.filter, clientId);
      else if (holder !== clientId) this.#options.logger.warn({ clientId, holder, filter }, 'two sessions hold one exclusive subscription (restored from the journal); the first keeps the lock');
      return value.filter;
    }
    const key = groupKey(value.group, value.filter);
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = this.#newGroup(key, value.group, value.filter);
      this.#groups.set(key, group);
      this.#trie.add(value.filter, key, group);
    }
    group.setMember(clientId, options);
    return undefined;
  }

  /** A subscription was removed (UNSUBSCRIBE or the session ended); same return as add(). */
  remove(filter: string, clientId: string): string | undefined {
    const parsed = parseSubscriptionFilter(filter);
    if (!parsed.ok) return undefined;
    const value = parsed.value;
    if (value.kind === 'plain') return value.filter;
    if (value.kind === 'exclusive') {
      if (this.#exclusive.get(value.filter) === clientId) this.#exclusive.delete(value.filter);
      return value.filter;
    }
    const key = groupKey(value.group, value.filter);
    const group = this.#groups.get(key);
    if (group === undefined || !group.removeMember(clientId) || group.memberCount > 0) return undefined;
    // The last member left: the group and its position go.
    group.end();
    this.#groups.delete(key);
    this.#trie.remove(value.filter, key);
    this.#dirty.delete(key);
    // #write logs its own failure; its promise never rejects.
    this.#write([groupRecord(key, null)]).catch(() => undefined);
    return undefined;
  }

  #newGroup(key: string, name: string, filter: string): SharedGroup {
    const host = groupHost(this.#options.host, () => this.#dirty.add(key));
    const stored = this.#stored.get(key);
    let session: Session;
    if (stored !== undefined) {
      // Restored: the group resumes from its cursors, like a persistent session.
      const cursors = cursorsByPosition(stored, this.#options.shardNames());
      session = new Session(`${SHARE_PREFIX}${name}/${filter}`, host, cursors.acked, cursors.sent, [], cursors.ackedAbove);
      session.setSubscription(filter, GROUP_OPTIONS, true);
    } else {
      // New: from the present on (the subscribing member gets nothing published before).
      session = new Session(`${SHARE_PREFIX}${name}/${filter}`, host, []);
      session.setSubscription(filter, GROUP_OPTIONS);
      this.#dirty.add(key);
    }
    // Offline until a member is online (refresh() attaches it): its streams wait at the cursors.
    session.detach();
    return new SharedGroup(name, filter, session, this.#env);
  }

  /** Whether any group's filter matches the topic (without handing it out). */
  matches(topic: string): boolean {
    return this.#groups.size > 0 && this.#trie.match(topic).length > 0;
  }

  /** Hands a durable message to the groups it matches; true if any matched. */
  dispatch(message: Message, shard: number, offset: number): boolean {
    if (this.#groups.size === 0) return false;
    const matches = this.#trie.match(message.topic);
    for (const match of matches) match.value.offerLive(message, shard, offset);
    return matches.length > 0;
  }

  /** Whether a session is a member of any group (it may hold group deliveries). */
  isMember(session: Session): boolean {
    for (const filter of session.subscriptions.keys()) if (filter.startsWith(SHARE_PREFIX)) return true;
    return false;
  }

  /** A session came online or went offline: its groups attach, detach or re-route. */
  presenceChanged(session: Session): void {
    if (this.#groups.size === 0) return;
    for (const filter of session.subscriptions.keys()) {
      if (!filter.startsWith(SHARE_PREFIX)) continue;
      const parsed = parseSubscriptionFilter(filter);
      if (parsed.ok && parsed.value.kind === 'shared') this.#groups.get(groupKey(parsed.value.group, parsed.value.filter))?.refresh();
    }
  }

  /** Writes the cursors of groups that moved (and of new groups). */
  flush(): Promise<void> {
    if (this.#dirty.size === 0) return this.#lastWrite;
    const records: RecordInput[] = [];
    for (const key of this.#dirty) {
      const group = this.#groups.get(key);
      if (group !== undefined) records.push(groupRecord(key, cursorsByName(group.session.cursors(), this.#options.shardNames())));
    }
    this.#dirty.clear();
    return this.#write(records);
  }

  #write(records: RecordInput[]): Promise<void> {
    if (records.length === 0) return this.#lastWrite;
    this.#lastWrite = this.#writes.persist(records, null).catch((error: unknown) => this.#options.logger.error({ err: error }, 'writing shared subscription group cursors failed; they are retried on the next change'));
    return this.#lastWrite;
  }

  /** Shutdown: the groups' cursors are written; what was in flight to members is resent after the restart. */
  async close(): Promise<void> {
    this.#writes.stopRetrying();
    for (const key of this.#groups.keys()) this.#dirty.add(key);
    const written = this.flush();
    // Nothing more is read or routed (the store is about to close).
    for (const group of this.#groups.values()) group.end();
    await written;
    await this.#writes.drained();
    await this.#projection.close();
  }
}

function groupKey(group: string, filter: string): string {
  return `${group}${SEPARATOR}${filter}`;
}

function groupRecord(key: string, cursors: ShardCursors | null): RecordInput {
  if (cursors === null) return { key: Buffer.from(`g:${key}`), value: null };
  // A group has no QoS 2 deliveries of its own to keep (members hold them). Members acknowledge
  // independently, so offsets acknowledged above the cursor are kept, else a restart would hand
  // them out again.
  const stored: ShardCursors = { acked: cursors.acked, sent: cursors.sent };
  if (cursors.ackedAbove !== undefined) stored.ackedAbove = cursors.ackedAbove;
  return { key: Buffer.from(`g:${key}`), value: storedCursorsValue(stored) };
}

/** The broker's host, but every read is allowed (members are checked one by one) and cursor moves mark the group. */
function groupHost(base: SessionHost, moved: () => void): SessionHost {
  return {
    get shardCount() {
      return base.shardCount;
    },
    get maxQueuedBytes() {
      return base.maxQueuedBytes;
    },
    dispatchFrontier: (shard) => base.dispatchFrontier(shard),
    readBack: (shard, from, session) => base.readBack(shard, from, session),
    now: () => base.now(),
    cursorsMoved: () => moved(),
    dropped: (reason, count) => base.dropped(reason, count),
    readFailed: (session, shard, error, retryInMs) => base.readFailed(session, shard, error, retryInMs),
    later: (callback, ms) => base.later(callback, ms),
    mayRead: () => true,
  };
}
