// A session's life in the broker: connect (takeover, session present, becoming durable), resume
// from `$sessions`, disconnect, the end (trie entries, timers, memory, tombstones), recovery at
// start, expiry timers, and the periodic flush of durable sessions' delivery cursors. The broker
// owns one and delegates to it; it reads and changes the broker's state only through
// SessionLifecycleHost (no inheritance), so the publish and dispatch path stays in broker.ts.
import type { Logger } from 'pino';
import type { Clock } from '../../base/index.js';
import type { RecordInput } from '../../journal/index.js';
import type { ConnectRequest, DisconnectRequest } from '../broker-types.js';
import type { DeliverySink } from '../delivery/delivery.js';
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js';
import type { JournalRecord } from '../../journal/index.js';
import {
  brokerRecord,
  claimRecord,
  cursorRecord,
  endRecords,
  metaRecord,
  publishKeyRecord,
  SESSION_NEVER_EXPIRES,
  sessionKeyOf,
  subscriptionRecord,
  type DurableSession,
  type SessionMeta,
  type SessionTable,
  type SubscriptionOptions,
} from './session-events.js';
import { Session, type SessionHost } from './session.js';
import { cursorsByName, cursorsByPosition, type ShardCursors } from './shard-cursors.js';
import { MAX_TIMER_MS, type Wills } from './wills.js';

/** What the session lifecycle needs of the broker. */
export interface SessionLifecycleHost {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly closed: boolean;
  /** The `$sessions` projection's state; records are applied to it before they are durable. */
  readonly table: SessionTable;
  /** Data shard names by position (set at start, before any session exists). */
  readonly shardNames: readonly string[];
  /** Sessions in memory: online ones and durable ones that were online since start. */
  readonly sessions: Map<string, Session>;
  /** What each Session is made with (the broker's side of a session). */
  readonly sessionHost: SessionHost;
  readonly wills: Wills;
  readonly shared: SharedSubscriptions;
  dispatchFrontier(shard: number): number;
  route(filter: string, clientId: string, options: SubscriptionOptions): void;
  unroute(filter: string, clientId: string): void;
  /** Drops what the shard reads keep about a session (its retention gap). */
  forgetReads(clientId: string): void;
  /** Appends `$sessions` records in the batched writer. */
  write(records: RecordInput[]): Promise<void>;
  /** Appends `$sessions` records, waiting out a journal outage. */
  persist(records: RecordInput[]): Promise<void>;
  /** Appends `$sessions` records at once, outside the batched writer (start-up only). */
  appendNow(records: RecordInput[]): Promise<void>;
  /** Each cursor-flush tick, before the flush: the broker's periodic chores. */
  beforeCursorFlush(): void;
  /** Set when brokers share the journal (engine/peers): this broker's id and how long a takeover waits for the holder. */
  readonly peers: PeerSettings | undefined;
  /** Another broker's record was applied to the table: from now on it is no fold of this broker's writes alone. */
  otherApplied(): void;
  /** Another broker sharing the journal is known (heard of, or named by a session): its messages are to be followed. */
  peerHeard(): void;
}

export interface PeerSettings {
  brokerId: string;
  takeoverWaitMs: number;
}

export class SessionLifecycle {
  /**
   * Session expiry interval of each session with one above 0; an in-memory session missing
   * here has 0 (most connections: an entry each would cost tens of bytes per idle client).
   */
  readonly #expiry = new Map<string, number>();
  readonly #expiryTimers = new Map<string, unknown>();
  readonly #dirtyCursors = new Set<Session>();
  #cursorTimer: unknown;
  #cursorWrite: Promise<void> = Promise.resolve();
  /** Takeovers waiting for another broker to let a client go, by client id. */
  readonly #releaseWaiters = new Map<string, Array<() => void>>();
  /** Other brokers sharing the journal, by id: when this broker last heard of each (its clock). */
  readonly #peerSeen = new Map<string, number>();
  #heartbeatTimer: unknown;

  constructor(
    private readonly host: SessionLifecycleHost,
    private readonly cursorFlushMs: number,
  ) {}

  isDurable(clientId: string): boolean {
    return (this.#expiry.get(clientId) ?? 0) > 0;
  }

  expiryOf(clientId: string): number | undefined {
    return this.#expiry.get(clientId) ?? (this.host.sessions.has(clientId) ? 0 : undefined);
  }

  #setExpiry(clientId: string, seconds: number): void {
    if (seconds > 0) this.#expiry.set(clientId, seconds);
    else this.#expiry.delete(clientId);
  }

  /** A session's delivery cursors moved: a durable one's are written at the next flush. */
  cursorsMoved(session: Session): void {
    if (this.isDurable(session.clientId)) this.#dirtyCursors.add(session);
  }

  /**
   * Opens or resumes a session for a connection (MQTT CONNECT). The returned session is claimed
   * by the sink but sends nothing until session.attach(sink), which the front end calls after
   * its connection acknowledgement is out.
   */
  async connect(request: ConnectRequest): Promise<{ session: Session; sessionPresent: boolean }> {
    const { host } = this;
    const { clientId } = request;
    if (host.peers !== undefined) await this.#claim(clientId, host.peers);
    host.wills.cancel(clientId);
    this.#cancelExpiry(clientId);
    const writes: RecordInput[] = [];
    const record = (input: RecordInput): void => {
      host.table.apply(input);
      writes.push(input);
    };
    let session = host.sessions.get(clientId);
    if (session?.sink !== undefined) {
      // Session takeover (MQTT-3.1.4-3): the older connection is closed; the session moves. Its
      // connection ended without DISCONNECT, so a will without delay is due (a delayed one is
      // cancelled by this new connection, MQTT 5.0 3.1.3.2.2).
      const previous = session.sink;
      const previousWill = host.wills.connectedWill(clientId);
      session.detach();
      host.shared.presenceChanged(session);
      previous.close('session-taken-over');
      if (previousWill !== undefined && previousWill.delaySeconds === 0) host.wills.publish(clientId, previousWill);
      // A session that was to end with its connection (3.1.1 clean session, 5.0 expiry 0) ends
      // with it here too: the new connection gets no session present and none of its state.
      if ((this.#expiry.get(clientId) ?? 0) === 0) {
        for (const input of this.#end(clientId)) writes.push(input);
        session = undefined;
      }
    }
    let durable = host.table.sessions.get(clientId);
    let sessionPresent = false;
    if (request.cleanStart) {
      if (session !== undefined || durable !== undefined) for (const input of this.#end(clientId)) writes.push(input);
      session = undefined;
      durable = undefined;
    } else if (session !== undefined) {
      sessionPresent = true;
    } else if (durable !== undefined) {
      session = this.#resume(durable);
      sessionPresent = true;
    }
    session ??= new Session(clientId, host.sessionHost, []);
    host.sessions.set(clientId, session);
    this.#setExpiry(clientId, request.expirySeconds);
    session.claim(request.sink);
    const identity = request.identity ?? { clientId, username: undefined, remoteAddress: '', protocol: 'mqtt' };
    session.identity = identity;
    // The will remembers who set it: it is checked when published, maybe after a restart.
    const will = request.will === undefined ? undefined : { ...request.will, publisher: identity };
    if (request.expirySeconds > 0) {
      record(metaRecord(clientId, { expirySeconds: request.expirySeconds, connected: true, protocolVersion: request.protocolVersion, ...(will === undefined ? {} : { will }), ...this.#brokerField() }));
      if (durable === undefined) {
        // Newly durable (a new session, or one that lived in memory only until now): everything
        // it has goes to the journal, with cursors at the present position.
        for (const [filter, options] of session.subscriptions) record(subscriptionRecord(clientId, filter, options));
        record(cursorRecord(clientId, this.storedCursors(session)));
        // Keys still being stored are recorded when their store completes (#markKeyStored).
        for (const [key, state] of session.publishKeyEntries()) if (state === true) record(publishKeyRecord(clientId, key, {}));
      }
    } else if (durable !== undefined) {
      // Resumed with expiry 0: the session now ends with this connection, so nothing of it may
      // outlive a crash (it stays in memory until the disconnect).
      for (const input of endRecords(durable)) record(input);
    }
    host.wills.setConnected(clientId, will);
    if (writes.length > 0) {
      try {
        await host.write(writes);
      } catch (error) {
        // Not connected after all: let go of the session so it is not left online for nobody.
        if (session.sink === request.sink) session.detach();
        throw error;
      }
    }
    host.shared.presenceChanged(session);
    return { session, sessionPresent };
  }

  /** A session's cursors as the journal keeps them: by data shard name. */
  storedCursors(session: Session): ShardCursors {
    return cursorsByName(session.cursors(), this.host.shardNames);
  }

  #resume(durable: DurableSession): Session {
    const cursors = cursorsByPosition(durable.cursors, this.host.shardNames);
    const session = new Session(durable.clientId, this.host.sessionHost, cursors.acked, cursors.sent, cursors.released, cursors.ackedAbove);
    for (const [filter, options] of durable.subscriptions) session.setSubscription(filter, options, true);
    // Pending markers were settled at start; every one left is a stored message awaiting its release.
    for (const key of durable.publishKeys.keys()) session.publishKeys.set(key, true);
    return session;
  }

  /** Forgets a session: trie entries, timers, memory; returns the tombstones if it was durable. */
  #end(clientId: string): RecordInput[] {
    const { host } = this;
    const session = host.sessions.get(clientId);
    const durable = host.table.sessions.get(clientId);
    const filters = new Set([...(session?.subscriptions.keys() ?? []), ...(durable?.subscriptions.keys() ?? [])]);
    for (const filter of filters) host.unroute(filter, clientId);
    session?.end();
    if (session !== undefined) this.#dirtyCursors.delete(session);
    host.sessions.delete(clientId);
    this.#expiry.delete(clientId);
    host.forgetReads(clientId);
    host.wills.forgetConnected(clientId);
    this.#cancelExpiry(clientId);
    if (durable === undefined) return [];
    const records = endRecords({ ...durable, subscriptions: new Map([...filters].map((filter) => [filter, durable.subscriptions.get(filter) ?? ({} as SubscriptionOptions)])) });
    for (const record of records) host.table.apply(record);
    return records;
  }

  /** The connection of a session closed. Ignored when the session has moved to another one. */
  async disconnect(session: Session, sink: DeliverySink, request: DisconnectRequest): Promise<void> {
    if (session.sink !== sink || session.ended) return;
    const { host } = this;
    const { clientId } = session;
    session.detach();
    host.shared.presenceChanged(session);
    const will = request.publishWill ? host.wills.connectedWill(clientId) : undefined;
    host.wills.forgetConnected(clientId);
    const expirySeconds = request.expirySeconds ?? this.#expiry.get(clientId) ?? 0;
    this.#setExpiry(clientId, expirySeconds);
    if (expirySeconds === 0) {
      const writes = this.#end(clientId);
      if (will !== undefined) host.wills.publish(clientId, will);
      if (writes.length > 0) await host.persist(writes);
      return;
    }
    const now = host.clock.now();
    const delayed = will !== undefined && will.delaySeconds > 0 ? will : undefined;
    const protocolVersion = host.table.sessions.get(clientId)?.meta.protocolVersion;
    const meta: SessionMeta = { expirySeconds, connected: false, disconnectedAt: now, ...(protocolVersion === undefined ? {} : { protocolVersion }), ...(delayed === undefined ? {} : { will: delayed }), ...this.#brokerField() };
    const record = metaRecord(clientId, meta);
    host.table.apply(record);
    this.#dirtyCursors.delete(session);
    const writes = [record, cursorRecord(clientId, this.storedCursors(session))];
    host.table.apply(writes[1] as RecordInput);
    if (will !== undefined) host.wills.schedule(clientId, will, will.delaySeconds * 1000);
    this.#scheduleExpiry(clientId, expirySeconds, now);
    await host.persist(writes);
  }

  /** After a start: subscriptions back into the trie, wills of crashed connections, expiry timers. */
  async recover(): Promise<void> {
    const { host } = this;
    const now = host.clock.now();
    const writes: RecordInput[] = [];
    for (const session of [...host.table.sessions.values()]) {
      for (const [filter, options] of session.subscriptions) host.route(filter, session.clientId, options);
      this.#setExpiry(session.clientId, session.meta.expirySeconds);
      // Another broker's session (connected there, or disconnected there with its timers there):
      // left as it is; a connect here takes it over (#claim).
      if (!this.#heldHere(session.meta)) continue;
      this.#recoverSession(session, now, writes, false);
    }
    for (const record of writes) host.table.apply(record);
    if (writes.length === 0) return;
    await host.appendNow(writes);
  }

  /**
   * A session whose connection ended with the process that held it (this broker before a
   * restart, or another that died: `adopt`): marked disconnected, its will and expiry scheduled
   * here; adopted, it names this broker as the one holding its timers.
   */
  #recoverSession(session: DurableSession, now: number, writes: RecordInput[], adopt: boolean): void {
    const { host } = this;
    if (session.meta.connected) {
      // The process ended while this client was connected: to the client that is an abrupt
      // disconnect, so its will is due, counted from now.
      const meta: SessionMeta = { ...session.meta, connected: false, disconnectedAt: now, ...(adopt ? this.#brokerField() : {}) };
      // Into the table before the will is scheduled: a will due at once is then recorded as
      // published (removed from the meta) and not published again at the next start.
      const record = metaRecord(session.clientId, meta);
      host.table.apply(record);
      writes.push(record);
      // Which messages were sent before the crash is not known past the last cursor flush:
      // any of them up to the end of the journal might have been, so their resends carry DUP
      // ("might be a re-delivery", MQTT 3.3.1.1).
      const sent = Object.fromEntries(host.shardNames.map((name, shard) => [name, Math.max(host.dispatchFrontier(shard), session.cursors.sent[name] ?? 0)]));
      writes.push(cursorRecord(session.clientId, { ...session.cursors, sent }));
    } else if (adopt) {
      const record = metaRecord(session.clientId, { ...session.meta, ...this.#brokerField() });
      host.table.apply(record);
      writes.push(record);
    }
    const disconnectedAt = session.meta.disconnectedAt ?? now;
    if (session.meta.will !== undefined) host.wills.schedule(session.clientId, session.meta.will, disconnectedAt + session.meta.will.delaySeconds * 1000 - now);
    this.#scheduleExpiry(session.clientId, session.meta.expirySeconds, disconnectedAt);
  }

  /**
   * Brokers sharing the journal, after recover(): every broker named by a session or by a
   * heartbeat in `$sessions` is taken as alive from now, and this broker's heartbeat starts (a `b:` record every third of
   * takeoverWaitMs). A broker not heard of for takeoverWaitMs is gone: the live broker with the
   * smallest id adopts its sessions (#peerGone).
   */
  startPeers(): void {
    const { host } = this;
    const peers = host.peers;
    if (peers === undefined) return;
    const now = host.clock.now();
    for (const session of host.table.sessions.values()) {
      const broker = session.meta.broker;
      if (broker !== undefined && broker !== peers.brokerId && !this.#peerSeen.has(broker)) this.#heard(broker, now);
    }
    for (const broker of host.table.brokers.keys()) if (broker !== peers.brokerId && !this.#peerSeen.has(broker)) this.#heard(broker, now);
    this.#heartbeat(peers);
  }

  #heartbeat(peers: PeerSettings): void {
    const { host } = this;
    if (host.closed) return;
    const now = host.clock.now();
    host.write([brokerRecord(peers.brokerId, now)]).catch((error: unknown) => host.logger.warn({ err: error }, 'writing this broker\'s heartbeat failed'));
    for (const [id, seen] of [...this.#peerSeen]) {
      if (now - seen <= peers.takeoverWaitMs) continue;
      this.#peerSeen.delete(id);
      this.#peerGone(id, peers);
    }
    this.#heartbeatTimer = host.clock.setTimeout(() => this.#heartbeat(peers), Math.max(100, Math.floor(peers.takeoverWaitMs / 3)));
  }

  #heard(id: string, now: number): void {
    this.#peerSeen.set(id, now);
    this.host.peerHeard();
  }

  /** Another broker stopped or went silent: the live broker with the smallest id takes its sessions' timers and wills (#recoverSession). */
  #peerGone(id: string, peers: PeerSettings): void {
    const { host } = this;
    if ([...this.#peerSeen.keys()].some((other) => other < peers.brokerId)) return;
    const now = host.clock.now();
    const writes: RecordInput[] = [];
    let adopted = 0;
    for (const session of [...host.table.sessions.values()]) {
      if (session.meta.broker !== id || host.sessions.has(session.clientId)) continue;
      this.#recoverSession(session, now, writes, true);
      adopted += 1;
    }
    writes.push(brokerRecord(id, now, false));
    host.logger.info({ broker: id, sessions: adopted }, 'a broker sharing the journal is gone; its sessions\' wills and expiry are handled here now');
    host.persist(writes).catch((error: unknown) => host.logger.error({ err: error, broker: id }, 'recording the adopted sessions failed'));
  }

  /** The meta's `broker` field for this broker's writes, when brokers share the journal. */
  #brokerField(): { broker?: string } {
    return this.host.peers === undefined ? {} : { broker: this.host.peers.brokerId };
  }

  /** Whether this broker is the one to act on a session's meta (always, when it is the only broker). */
  #heldHere(meta: SessionMeta): boolean {
    return this.host.peers === undefined || meta.broker === undefined || meta.broker === this.host.peers.brokerId;
  }

  /**
   * Brokers sharing the journal: a connect claims the client in `$sessions` before anything
   * else. The broker that holds it sees the claim and lets go (#handOver): its connection is
   * closed as taken over, and its last cursors and a disconnected meta are written. When the
   * table says another broker holds the client connected, this waits for that meta, at most
   * takeoverWaitMs: a broker that died never answers, and the session is then taken from its
   * last durable state (cursors as last flushed: QoS 1 messages in flight are sent again; QoS 2
   * state is in the stored cursors and publish keys, so nothing is delivered twice).
   */
  async #claim(clientId: string, peers: PeerSettings): Promise<void> {
    const { host } = this;
    const before = host.table.sessions.get(clientId)?.meta;
    await host.write([claimRecord(clientId)]);
    const holder = before?.connected === true ? before.broker : undefined;
    if (holder === undefined || holder === peers.brokerId) return;
    const released = await this.#released(clientId, holder, peers.takeoverWaitMs);
    if (!released) host.logger.warn({ clientId, holder, waitedMs: peers.takeoverWaitMs }, 'the broker holding this client did not let it go in time; taking the session over from its last durable state');
  }

  #releasedBy(clientId: string, holder: string): boolean {
    const meta = this.host.table.sessions.get(clientId)?.meta;
    return meta === undefined || !meta.connected || meta.broker !== holder;
  }

  #released(clientId: string, holder: string, waitMs: number): Promise<boolean> {
    const { host } = this;
    if (this.#releasedBy(clientId, holder)) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiter: () => void = () => undefined;
      const timer = host.clock.setTimeout(() => {
        this.#dropWaiter(clientId, waiter);
        resolve(false);
      }, waitMs);
      waiter = (): void => {
        if (!this.#releasedBy(clientId, holder)) return;
        host.clock.clearTimeout(timer);
        this.#dropWaiter(clientId, waiter);
        resolve(true);
      };
      const list = this.#releaseWaiters.get(clientId) ?? [];
      list.push(waiter);
      this.#releaseWaiters.set(clientId, list);
    });
  }

  #dropWaiter(clientId: string, waiter: () => void): void {
    const list = (this.#releaseWaiters.get(clientId) ?? []).filter((entry) => entry !== waiter);
    if (list.length === 0) this.#releaseWaiters.delete(clientId);
    else this.#releaseWaiters.set(clientId, list);
  }

  /**
   * A `$sessions` record another broker wrote (brokers sharing the journal). A claim makes this
   * broker let the client go; any other record goes into the table, unless this broker holds the
   * client online (a late write of a broker that was taken over after the wait ran out), and
   * the client's routes follow its subscriptions, so a publish here knows it has subscribers.
   * Its timers are the other broker's now.
   */
  otherBrokerRecord(record: JournalRecord): void {
    const { host } = this;
    const key = record.key?.toString('utf8');
    if (key?.startsWith('b:') === true && host.peers !== undefined) {
      const id = key.slice(2);
      if (id === host.peers.brokerId) return;
      if (record.value !== null) this.#heard(id, host.clock.now());
      else if (this.#peerSeen.delete(id)) this.#peerGone(id, host.peers);
      return;
    }
    const about = sessionKeyOf(record.key);
    if (about === undefined) return;
    const { kind, clientId } = about;
    if (kind === 'o:') {
      this.#handOver(clientId).catch((error: unknown) => host.logger.error({ err: error, clientId }, 'handing a client over to another broker failed'));
      return;
    }
    const local = host.sessions.get(clientId);
    if (local !== undefined && local.online) return;
    const before = host.table.sessions.get(clientId)?.subscriptions;
    const previous = before === undefined ? [] : [...before];
    host.table.apply(record);
    host.otherApplied();
    // The broker a meta names wrote it: heard of now, so its silence from here on is timed (#heartbeat).
    const writer = kind === 's:' ? host.table.sessions.get(clientId)?.meta.broker : undefined;
    if (writer !== undefined && host.peers !== undefined && writer !== host.peers.brokerId) this.#heard(writer, host.clock.now());
    if (local === undefined) {
      host.wills.cancel(clientId);
      this.#cancelExpiry(clientId);
      const after = host.table.sessions.get(clientId)?.subscriptions;
      for (const [filter] of previous) if (after?.has(filter) !== true) host.unroute(filter, clientId);
      if (after !== undefined) for (const [filter, options] of after) host.route(filter, clientId, options);
    }
    for (const waiter of [...(this.#releaseWaiters.get(clientId) ?? [])]) waiter();
  }

  /** Another broker claimed the client: its connection here closes as taken over, and this broker forgets it (no tombstones: the session goes on there). */
  async #handOver(clientId: string): Promise<void> {
    const { host } = this;
    host.wills.cancel(clientId);
    this.#cancelExpiry(clientId);
    const session = host.sessions.get(clientId);
    if (session === undefined) return;
    const writes: RecordInput[] = [];
    const sink = session.sink;
    if (sink !== undefined) {
      const will = host.wills.connectedWill(clientId);
      session.detach();
      host.shared.presenceChanged(session);
      sink.close('session-taken-over');
      // As for a takeover on one broker: the connection ended without DISCONNECT (a will without delay is due; a delayed one is cancelled by the new connection).
      if (will !== undefined && will.delaySeconds === 0) host.wills.publish(clientId, will);
      const meta = host.table.sessions.get(clientId)?.meta;
      if (this.isDurable(clientId) && meta !== undefined) {
        // Cursors first: the new holder waits for the meta, and has the cursors by then.
        writes.push(cursorRecord(clientId, this.storedCursors(session)));
        writes.push(metaRecord(clientId, { ...meta, will: undefined, connected: false, disconnectedAt: host.clock.now(), ...this.#brokerField() }));
      }
    }
    for (const filter of session.subscriptions.keys()) host.unroute(filter, clientId);
    session.end();
    this.#dirtyCursors.delete(session);
    host.sessions.delete(clientId);
    this.#expiry.delete(clientId);
    host.forgetReads(clientId);
    host.wills.forgetConnected(clientId);
    for (const input of writes) host.table.apply(input);
    // Still a session with subscriptions, held elsewhere now: routed here as any other broker's.
    const durable = host.table.sessions.get(clientId);
    if (durable !== undefined) for (const [filter, options] of durable.subscriptions) host.route(filter, clientId, options);
    if (writes.length > 0) await host.persist(writes);
  }

  #scheduleExpiry(clientId: string, expirySeconds: number, disconnectedAt: number): void {
    const { host } = this;
    this.#cancelExpiry(clientId);
    if (expirySeconds === SESSION_NEVER_EXPIRES) return;
    const due = disconnectedAt + expirySeconds * 1000 - host.clock.now();
    const fire = (): void => {
      this.#expiryTimers.delete(clientId);
      if (host.sessions.get(clientId)?.online === true) return;
      const remaining = disconnectedAt + expirySeconds * 1000 - host.clock.now();
      if (remaining > 0) {
        this.#expiryTimers.set(clientId, host.clock.setTimeout(fire, Math.min(remaining, MAX_TIMER_MS)));
        return;
      }
      // A will still waiting for its delay is published when the session ends (MQTT-3.1.3-9).
      const pendingWill = host.wills.isWaiting(clientId) ? host.table.sessions.get(clientId)?.meta.will : undefined;
      host.wills.cancel(clientId);
      if (pendingWill !== undefined) host.wills.publish(clientId, pendingWill);
      const writes = this.#end(clientId);
      host.logger.debug({ clientId }, 'session expired');
      if (writes.length > 0) host.persist(writes).catch((error: unknown) => host.logger.error({ err: error, clientId }, 'recording a session expiry failed'));
    };
    this.#expiryTimers.set(clientId, host.clock.setTimeout(fire, Math.max(0, Math.min(due, MAX_TIMER_MS))));
  }

  #cancelExpiry(clientId: string): void {
    const timer = this.#expiryTimers.get(clientId);
    if (timer === undefined) return;
    this.host.clock.clearTimeout(timer);
    this.#expiryTimers.delete(clientId);
  }

  /** Arms the next cursor-flush tick; each tick arms the next once its writes settle, until close. */
  scheduleCursorFlush(): void {
    const { host } = this;
    if (host.closed) return;
    this.#cursorTimer = host.clock.setTimeout(() => {
      host.beforeCursorFlush();
      // Both catch their own failures; a journal outage makes them wait (persist), which only
      // delays the next round.
      Promise.all([this.flushCursors(), host.shared.flush()])
        .catch((error: unknown) => host.logger.error({ err: error }, 'flushing cursors failed'))
        .finally(() => this.scheduleCursorFlush());
    }, this.cursorFlushMs);
  }

  /**
   * Resolves once a QoS 2 delivery the client acknowledged with PUBREC is recorded as released
   * (durable sessions), so the PUBREL that follows is never contradicted by a PUBLISH resent
   * after a crash: that is what keeps QoS 2 exactly-once across a restart.
   */
  async recordRelease(session: Session): Promise<void> {
    const { shared } = this.host;
    // The PUBREC may have settled a shared group's delivery: its cursor is saved first too.
    if (shared.groupCount > 0 && shared.isMember(session)) await shared.flush();
    if (!this.isDurable(session.clientId)) return;
    await this.flushCursors();
  }

  /** Writes the cursors of durable sessions that moved since the last flush. */
  flushCursors(): Promise<void> {
    if (this.#dirtyCursors.size === 0) return this.#cursorWrite;
    const writes: RecordInput[] = [];
    for (const session of this.#dirtyCursors) {
      if (session.ended || !this.isDurable(session.clientId)) continue;
      const record = cursorRecord(session.clientId, this.storedCursors(session));
      this.host.table.apply(record);
      writes.push(record);
    }
    this.#dirtyCursors.clear();
    if (writes.length === 0) return this.#cursorWrite;
    // persist: an unreachable journal delays the write (and a PUBREL waiting on it) until the
    // journal is back, rather than dropping the cursors.
    this.#cursorWrite = this.host.persist(writes).catch((error: unknown) => this.host.logger.error({ err: error }, 'writing session cursors failed; they are retried on the next change'));
    return this.#cursorWrite;
  }

  /** Disconnects a client (5.0: DISCONNECT 0x98); its session stays as its expiry says. */
  kick(clientId: string): boolean {
    const sink = this.host.sessions.get(clientId)?.sink;
    if (sink === undefined) return false;
    sink.close('administrative-action');
    return true;
  }

  /** At shutdown: no more cursor-flush ticks or expiries. */
  stopTimers(): void {
    if (this.#cursorTimer !== undefined) this.host.clock.clearTimeout(this.#cursorTimer);
    if (this.#heartbeatTimer !== undefined) this.host.clock.clearTimeout(this.#heartbeatTimer);
    for (const timer of this.#expiryTimers.values()) this.host.clock.clearTimeout(timer);
    this.#expiryTimers.clear();
  }

  /**
   * At shutdown: every connection is told the server is going away and let go of; returns the
   * records that leave durable sessions disconnected (no will: the client did nothing wrong)
   * with their cursors, for the broker to write once its appends have drained.
   */
  closeConnections(): RecordInput[] {
    const { host } = this;
    const writes: RecordInput[] = [];
    const now = host.clock.now();
    for (const session of host.sessions.values()) {
      const sink = session.sink;
      if (sink === undefined) continue;
      if (this.isDurable(session.clientId)) {
        const meta = host.table.sessions.get(session.clientId)?.meta;
        if (meta !== undefined) writes.push(metaRecord(session.clientId, { ...meta, connected: false, disconnectedAt: now, will: undefined }));
      }
      session.detach();
      if (this.isDurable(session.clientId)) writes.push(cursorRecord(session.clientId, this.storedCursors(session)));
      sink.close('server-shutting-down');
    }
    // Gone: another broker takes the timers of the sessions left here (#peerGone).
    if (host.peers !== undefined) writes.push(brokerRecord(host.peers.brokerId, now, false));
    return writes;
  }
}
