// The `$sessions` system shard: every change to a durable session is a record, and the session
// table is their projection (SessionTable below, pure: no I/O). The shard is compacted, so each
// record carries the whole new value of one key and a tombstone removes it; replaying the shard
// from offset 0, compacted or not, gives the same table as the live run.
//
// Keys (client ids and filters cannot hold U+0000 — the protocol layer refuses it — so it is a
// safe separator):
//   s:<clientId>                 session meta (expiry, connected, will, ...); tombstone = ended
//   u:<clientId>\0<filter>       one subscription's options; tombstone = unsubscribed
//   c:<clientId>                 delivery cursors, per data shard by name: `acked`, the offset
//                                below which every message has been delivered and acknowledged,
//                                and `sent`, the offset below which every message was sent at least
//                                once (so a resend after a crash carries DUP); release 0.1.0's
//                                arrays by shard position are read too (./shard-cursors.ts)
//   q:<clientId>\0<key>          a publish key: a keyed publish of the client's producer (MQTT: a
//                                QoS 2 PUBLISH by packet id) not yet released; tombstone =
//                                released. Value `{}` once its message is stored,
//                                `{"pending":{shard,from,timestamp}}` while it may not be: the
//                                marker is written before the message is appended, so after a
//                                crash a pending marker is settled by looking for the message's
//                                record (engine/sessions/publish-keys.ts)
//   o:<clientId>                 a claim (always a tombstone, so compaction drops it): a broker
//                                that shares the journal with others takes the client over; the
//                                one holding it lets go (engine/peers, docs/deployment.md)
//   b:<brokerId>                 a broker sharing the journal is alive (its heartbeat, epoch ms);
//                                tombstone = it stopped, or another broker adopted its sessions
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { userPropertyList, type Message, type MessageProperties, type QoS } from '../messages/message.js';
import type { ProjectionCodec } from '../projection/projection.js';
import type { ClientIdentity } from '../security/access.js';
import { emptyCursors, readStoredCursors, storedCursorsValue, type ShardCursors } from './shard-cursors.js';
import { loadSubscription, storedSubscription, type StoredSubscription, type SubscriptionOptions } from './subscription-options.js';

export type { SubscriptionOptions } from './subscription-options.js';

export const SESSIONS_SHARD = '$sessions';

/** Session expiry interval meaning "never" (MQTT 5.0: 0xFFFFFFFF). */
export const SESSION_NEVER_EXPIRES = 0xffff_ffff;

export interface WillMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: MessageProperties | undefined;
  /** Seconds to wait after an abrupt disconnect before publishing (5.0 Will Delay Interval). */
  delaySeconds: number;
  /** Who set the will: its publish is checked against the access policy as this client's. */
  publisher?: ClientIdentity;
}

export interface SessionMeta {
  /** Seconds the session outlives its connection; SESSION_NEVER_EXPIRES for never. */
  expirySeconds: number;
  connected: boolean;
  /** Epoch ms of the last disconnect, while disconnected. */
  disconnectedAt?: number;
  will?: WillMessage;
  /** The front end's protocol version at the last connect (kept for the admin API); absent until a connect recorded it. */
  protocolVersion?: number;
  /** The broker that wrote this meta, when brokers share the journal (engine/peers): it holds the connection and the timers. */
  broker?: string;
}

export interface DeliveryCursors {
  acked: number[];
  sent: number[];
  /** QoS 2 deliveries the client has received (PUBREC), awaiting PUBCOMP: [packetId, shard, offset]. */
  released?: Array<[number, number, number]>;
  /**
   * Per shard, offsets at or above `acked` whose deliveries are acknowledged (an earlier one was
   * still outstanding): a read back from `acked` skips them. Absent when every shard has none.
   */
  ackedAbove?: number[][];
}

/** The state of one publish key, as `$sessions` keeps it. */
export interface PublishKeyMarker {
  /**
   * Set while the message may not be in the journal yet: where its record would be (data shard,
   * at or after offset `from`, with this record timestamp). Absent once it is stored.
   */
  pending?: { shard: number; from: number; timestamp: number };
}

export interface DurableSession {
  clientId: string;
  meta: SessionMeta;
  subscriptions: Map<string, SubscriptionOptions>;
  /** Per data shard by name; shards without an entry start at the shard's start. */
  cursors: ShardCursors;
  /** Publish keys awaiting their release, by key. */
  publishKeys: Map<number, PublishKeyMarker>;
}

interface StoredWill extends Omit<WillMessage, 'payload' | 'properties'> {
  payload: string;
  properties?: Omit<MessageProperties, 'correlationData' | 'userProperties'> & { correlationData?: string; userProperties?: Parameters<typeof userPropertyList>[0] };
}

interface StoredMeta extends Omit<SessionMeta, 'will'> {
  will?: StoredWill;
}

const SEPARATOR = '\u0000';

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function storeWill(will: WillMessage): StoredWill {
  const { correlationData, ...rest } = will.properties ?? {};
  const properties = will.properties === undefined ? undefined : { ...rest, ...(correlationData === undefined ? {} : { correlationData: correlationData.toString('base64') }) };
  return { topic: will.topic, payload: will.payload.toString('base64'), qos: will.qos, retain: will.retain, delaySeconds: will.delaySeconds, ...(properties === undefined ? {} : { properties }), ...(will.publisher === undefined ? {} : { publisher: will.publisher }) };
}

function loadWill(stored: StoredWill): WillMessage {
  const { correlationData, userProperties, ...rest } = stored.properties ?? {};
  // Sessions recorded before user properties kept their order hold them as an object.
  const properties: MessageProperties | undefined =
    stored.properties === undefined
      ? undefined
      : { ...rest, ...(userProperties === undefined ? {} : { userProperties: userPropertyList(userProperties) }), ...(correlationData === undefined ? {} : { correlationData: Buffer.from(correlationData, 'base64') }) };
  return { topic: stored.topic, payload: Buffer.from(stored.payload, 'base64'), qos: stored.qos, retain: stored.retain, delaySeconds: stored.delaySeconds, properties, ...(stored.publisher === undefined ? {} : { publisher: stored.publisher }) };
}

export function metaRecord(clientId: string, meta: SessionMeta): RecordInput {
  const stored: StoredMeta = { ...meta, will: meta.will === undefined ? undefined : storeWill(meta.will) };
  return { key: Buffer.from(`s:${clientId}`), value: json(stored) };
}

export function subscriptionRecord(clientId: string, filter: string, options: SubscriptionOptions | null): RecordInput {
  return { key: Buffer.from(`u:${clientId}${SEPARATOR}${filter}`), value: options === null ? null : json(storedSubscription(options)) };
}

export function cursorRecord(clientId: string, cursors: ShardCursors | null): RecordInput {
  return { key: Buffer.from(`c:${clientId}`), value: cursors === null ? null : storedCursorsValue(cursors) };
}

export function publishKeyRecord(clientId: string, key: number, marker: PublishKeyMarker | null): RecordInput {
  return { key: Buffer.from(`q:${clientId}${SEPARATOR}${key}`), value: marker === null ? null : json(marker) };
}

/** A broker claims the client (brokers sharing one journal): a tombstone that only says who wrote it, by its offset. */
export function claimRecord(clientId: string): RecordInput {
  return { key: Buffer.from(`o:${clientId}`), value: null };
}

/** A heartbeat of a broker sharing the journal; `alive` false: it is gone (a tombstone). */
export function brokerRecord(brokerId: string, at: number, alive = true): RecordInput {
  return { key: Buffer.from(`b:${brokerId}`), value: alive ? Buffer.from(String(at)) : null };
}

/** The kind ('s:', 'u:', 'c:', 'q:', 'o:') and client id a `$sessions` key is about; undefined for a key of none. */
export function sessionKeyOf(key: Buffer | null): { kind: string; clientId: string } | undefined {
  if (key === null) return undefined;
  const text = key.toString('utf8');
  const kind = text.slice(0, 2);
  const rest = text.slice(2);
  if (kind === 'u:' || kind === 'q:') {
    const at = rest.indexOf(SEPARATOR);
    return at < 0 ? undefined : { kind, clientId: rest.slice(0, at) };
  }
  if (kind === 's:' || kind === 'c:' || kind === 'o:') return { kind, clientId: rest };
  return undefined;
}

/** Tombstones for every key of a session: it ends. */
export function endRecords(session: DurableSession): RecordInput[] {
  return [
    ...[...session.subscriptions.keys()].map((filter) => subscriptionRecord(session.clientId, filter, null)),
    // Markers too: a marker left behind would be the latest record of its key, and a replay
    // would bring back a session that ended.
    ...[...session.publishKeys.keys()].map((key) => publishKeyRecord(session.clientId, key, null)),
    cursorRecord(session.clientId, null),
    { key: Buffer.from(`s:${session.clientId}`), value: null },
  ];
}

/** The projection of `$sessions`: durable sessions by client id. */
export class SessionTable {
  readonly sessions = new Map<string, DurableSession>();
  /**
   * Brokers sharing the journal whose last `b:` record is a heartbeat (not a tombstone), with its
   * time. Not in snapshots: a start hears of the brokers that wrote since the last one, and of
   * the others at their next heartbeat.
   */
  readonly brokers = new Map<string, number>();

  #entry(clientId: string): DurableSession {
    let session = this.sessions.get(clientId);
    if (session === undefined) {
      session = { clientId, meta: { expirySeconds: 0, connected: false }, subscriptions: new Map(), cursors: emptyCursors(), publishKeys: new Map() };
      this.sessions.set(clientId, session);
    }
    return session;
  }

  apply(record: Pick<JournalRecord, 'key' | 'value'> | RecordInput): void {
    if (record.key === null || record.key === undefined) return;
    const key = record.key.toString('utf8');
    const kind = key.slice(0, 2);
    const rest = key.slice(2);
    const value = record.value;
    if (kind === 's:') {
      if (value === null) {
        this.sessions.delete(rest);
        return;
      }
      const stored = JSON.parse(value.toString('utf8')) as StoredMeta;
      const { will, ...meta } = stored;
      this.#entry(rest).meta = will === undefined ? meta : { ...meta, will: loadWill(will) };
    } else if (kind === 'u:') {
      const at = rest.indexOf(SEPARATOR);
      if (at < 0) return;
      const clientId = rest.slice(0, at);
      const filter = rest.slice(at + 1);
      if (value === null) this.sessions.get(clientId)?.subscriptions.delete(filter);
      else this.#entry(clientId).subscriptions.set(filter, loadSubscription(JSON.parse(value.toString('utf8')) as StoredSubscription));
    } else if (kind === 'c:') {
      if (value === null) {
        const session = this.sessions.get(rest);
        if (session !== undefined) session.cursors = emptyCursors();
      } else this.#entry(rest).cursors = readStoredCursors(value);
    } else if (kind === 'b:') {
      if (value === null) this.brokers.delete(rest);
      else this.brokers.set(rest, Number(value.toString('utf8')));
    } else if (kind === 'q:') {
      const at = rest.indexOf(SEPARATOR);
      const key = Number(rest.slice(at + 1));
      if (at < 0 || !Number.isInteger(key)) return;
      const clientId = rest.slice(0, at);
      if (value === null) this.sessions.get(clientId)?.publishKeys.delete(key);
      else this.#entry(clientId).publishKeys.set(key, JSON.parse(value.toString('utf8')) as PublishKeyMarker);
    }
  }

  /** A comparable plain form, for tests that check replay against the live run. */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [clientId, session] of [...this.sessions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out[clientId] = {
        meta: { ...session.meta, will: session.meta.will === undefined ? undefined : storeWill(session.meta.will) },
        subscriptions: Object.fromEntries([...session.subscriptions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
        cursors: session.cursors,
        publishKeys: Object.fromEntries([...session.publishKeys].sort(([a], [b]) => a - b)),
      };
    }
    return out;
  }
}

/** One session in a snapshot: [clientId, meta as stored, subscriptions, cursors, publish key markers]. */
type SnapshotSession = [string, StoredMeta, Array<[string, StoredSubscription]>, ShardCursors, Array<[number, PublishKeyMarker]>];

/**
 * The session table as snapshot bytes (engine/projection): JSON, every value in the form its
 * `$sessions` record holds it, sessions and their maps in the table's own order, so a table
 * read back from a snapshot is the one a replay builds, to the iteration order.
 */
export const sessionTableCodec: ProjectionCodec<SessionTable> = {
  // 2: cursors by shard name (./shard-cursors.ts).
  version: 2,
  encode: (table) => {
    const sessions: SnapshotSession[] = [];
    for (const session of table.sessions.values()) {
      const meta: StoredMeta = { ...session.meta, will: session.meta.will === undefined ? undefined : storeWill(session.meta.will) };
      sessions.push([session.clientId, meta, [...session.subscriptions].map(([filter, options]) => [filter, storedSubscription(options)]), session.cursors, [...session.publishKeys]]);
    }
    return Buffer.from(JSON.stringify(sessions));
  },
  decode: (bytes) => {
    const table = new SessionTable();
    for (const [clientId, stored, subscriptions, cursors, publishKeys] of JSON.parse(bytes.toString('utf8')) as SnapshotSession[]) {
      const { will, ...meta } = stored;
      table.sessions.set(clientId, { clientId, meta: will === undefined ? meta : { ...meta, will: loadWill(will) }, subscriptions: new Map(subscriptions.map(([filter, stored]) => [filter, loadSubscription(stored)])), cursors, publishKeys: new Map(publishKeys) });
    }
    return table;
  },
};

/** The message a will becomes when it is published. */
export function willToMessage(will: WillMessage, publisherId: string, now: number): Message {
  return { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, publisherId, timestamp: now, properties: will.properties };
}
