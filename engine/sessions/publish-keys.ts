// Publish keys: an idempotent producer's publishes across a crash. A front end names a publish
// with a key of its own (an integer per session; MQTT: the packet id of a QoS 2 PUBLISH, whose
// flow is protocols/mqtt/inbound-qos2.ts) and the engine stores the message once per key until
// the front end releases the key. A persistent session's keys are `q:` markers in `$sessions`
// (session-events.ts), so a publish the producer sends again after a broker crash is recognised
// and not stored twice.
//
// The message and its marker live in different shards, so no append makes them one. Order
// (Broker.publishOnce, Broker.releasePublishKey):
//   1. marker `pending` {shard, from, timestamp} appended to `$sessions` and durable;
//   2. the message appended to its data shard, its record carrying the key (with its publisher);
//   3. the front end told it is stored, and the marker rewritten as stored (`{}`), not waited for;
//   4. on release: the marker's tombstone durable before the release resolves.
// Crash windows, and what the restarted broker does:
//   - before 1 is durable: no marker, the producer was told nothing; it sends again and the
//     message is stored;
//   - between 1 and 2: a pending marker, no record; the start-up scan (below) finds no record
//     and drops the marker, so the resend is stored (once);
//   - after 2, before 3 is durable: the scan finds the record and keeps the marker, so the
//     resend is known and not stored again, whether or not the producer was told;
//   - after 3: the marker says stored; the resend is known;
//   - during 4: the marker is there until the release resolves, so a front end that lets the
//     producer reuse a key only after that never has a new publish swallowed by a stale marker.
// Writing the marker first costs one `$sessions` append (group-committed) before the message's
// append, for keyed publishes of persistent sessions only.
//
// The scan: a pending marker's message, if it was appended, is in data shard `shard` at or after
// `from` (the shard's dispatch frontier when the marker was written, which the append can only
// be past), with the marker's publisher, key and timestamp. Only records appended between
// the marker and the crash are read, so the scan is short.
import type { Logger } from 'pino';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { publishKeyOf, type Message } from '../messages/message.js';
import { publishKeyRecord, type PublishKeyMarker, type SessionTable } from './session-events.js';
import type { Session } from './session.js';

export interface PendingPublishKey {
  clientId: string;
  key: number;
  pending: NonNullable<PublishKeyMarker['pending']>;
}

/** The markers of the table whose message may not have reached the journal. */
export function pendingPublishKeys(table: SessionTable): PendingPublishKey[] {
  const out: PendingPublishKey[] = [];
  for (const session of table.sessions.values()) {
    for (const [key, marker] of session.publishKeys) if (marker.pending !== undefined) out.push({ clientId: session.clientId, key, pending: marker.pending });
  }
  return out;
}

/** The pending markers of one data shard that a page of its records shows stored. */
export function storedPublishKeys(pending: readonly PendingPublishKey[], records: readonly JournalRecord[]): PendingPublishKey[] {
  const byPublisher = new Map<string, PendingPublishKey>();
  for (const entry of pending) byPublisher.set(`${entry.clientId}\u0000${entry.key}`, entry);
  const found: PendingPublishKey[] = [];
  for (const record of records) {
    const origin = publishKeyOf(record);
    if (origin === undefined) continue;
    const entry = byPublisher.get(`${origin.publisherId}\u0000${origin.key}`);
    // Offset and timestamp tell this message from an earlier one with the same key.
    if (entry === undefined || record.offset < entry.pending.from || record.timestamp !== entry.pending.timestamp) continue;
    found.push(entry);
  }
  return found;
}

/** What the publish key store needs of the broker. */
export interface PublishKeysHost {
  readonly table: SessionTable;
  readonly logger: Logger;
  readonly shardCount: number;
  /** Whether a keyed publish gets a pending marker first (a persistent session; not while closing, blocked, or for a delayed message). */
  marks(session: Session, message: Message): boolean;
  isDurable(clientId: string): boolean;
  /** The session is the live one of its client id (not ended, not replaced). */
  isCurrent(session: Session): boolean;
  shardOf(topic: string): number;
  /** The dispatch frontier of a data shard: a message appended now lands at or after it. */
  frontier(shard: number): number;
  /** Appends `$sessions` records (the broker's session writes: group-committed, applied to the projection when durable). */
  write(records: RecordInput[]): Promise<void>;
  /** Appends `$sessions` records at start, before the session writes run. */
  appendNow(records: RecordInput[]): Promise<void>;
  publish(message: Message, publishKey: number | undefined, stored: ((matched: boolean) => void) | undefined): Promise<{ matched: boolean }>;
  /** The error a failed append is refused with (writes blocked, or as it was). */
  publishFailure(error: unknown): unknown;
  readFrom(shard: number, offset: number, limits: { maxRecords: number; maxBytes: number }): Promise<JournalRecord[]>;
}

const SCAN_MAX_RECORDS = 10_000;
const SCAN_MAX_BYTES = 1024 * 1024;

/** The broker's side of publish keys: markers in `$sessions` around each keyed publish, and the start-up scan. */
export class PublishKeyStore {
  constructor(private readonly host: PublishKeysHost) {}

  /**
   * After a crash, publish key markers may still be pending: each is kept (as stored) when its
   * message's record is in the data shard, and dropped otherwise (engine/sessions/publish-keys.ts).
   */
  async settle(): Promise<void> {
    const pending = pendingPublishKeys(this.host.table);
    if (pending.length === 0) return;
    const stored = new Set<PendingPublishKey>();
    for (let shard = 0; shard < this.host.shardCount; shard += 1) {
      const here = pending.filter((entry) => entry.pending.shard === shard);
      if (here.length === 0) continue;
      let offset = Math.min(...here.map((entry) => entry.pending.from));
      for (;;) {
        const records = await this.host.readFrom(shard, offset, { maxRecords: SCAN_MAX_RECORDS, maxBytes: SCAN_MAX_BYTES });
        if (records.length === 0) break;
        for (const entry of storedPublishKeys(here, records)) stored.add(entry);
        offset = (records[records.length - 1] as JournalRecord).offset + 1;
      }
    }
    const writes = pending.map((entry) => publishKeyRecord(entry.clientId, entry.key, stored.has(entry) ? {} : null));
    for (const record of writes) this.host.table.apply(record);
    await this.host.appendNow(writes);
    this.host.logger.info({ pending: pending.length, stored: stored.size }, 'publish key markers (MQTT: inbound QoS 2 packet ids) left pending by a crash settled against the data shards');
  }

  /**
   * An idempotent producer's publish: stored once per key (a protocol's integer, 0 to 65535,
   * MQTT's QoS 2 packet id) until release(). For a persistent session the key's marker
   * is durable in `$sessions` before the message is appended, so a crash at any point leaves the
   * restarted broker able to tell whether the message was stored (engine/sessions/publish-keys.ts);
   * the front end keeps the in-memory state (session.publishKeys) and answers the producer.
   * A message to `$delayed/` goes to the delayed schedule, not a data shard, where the start-up scan does not look: it gets no pending
   * marker, only the stored one, so a crash between the two may store its resend again.
   */
  async publishOnce(session: Session, key: number, message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }> {
    const marked = this.host.marks(session, message);
    // Marked stored as soon as it is durable, before the fan-out, like the publisher's ack.
    const onStored = (matched: boolean): void => {
      this.#markStored(session, key);
      stored?.(matched);
    };
    if (!marked) return this.host.publish(message, undefined, onStored);
    const shard = this.host.shardOf(message.topic);
    const pending = publishKeyRecord(session.clientId, key, { pending: { shard, from: this.host.frontier(shard), timestamp: message.timestamp } });
    this.host.table.apply(pending);
    try {
      await this.host.write([pending]);
    } catch (error) {
      // The marker never became durable: nothing is stored, the publish is refused as a data
      // append failing the same way would be.
      if (this.#ownsMarker(session, key)) this.host.table.apply(publishKeyRecord(session.clientId, key, null));
      throw this.host.publishFailure(error);
    }
    let result: { matched: boolean };
    try {
      result = await this.host.publish(message, key, onStored);
    } catch (error) {
      // Not stored: the marker goes, so a resend is stored. Should this write not happen, the
      // next start settles the marker against the data shard.
      if (this.#ownsMarker(session, key)) {
        const release = publishKeyRecord(session.clientId, key, null);
        this.host.table.apply(release);
        void this.host.write([release]).catch((writeError: unknown) => this.host.logger.error({ err: writeError, clientId: session.clientId, key }, 'removing a publish key marker failed'));
      }
      throw error;
    }
    return result;
  }

  /**
   * Marks a publish key stored in `$sessions` (not waited for: until it is durable, a restart
   * finds the record by the pending marker). Also records the keys a session held before it
   * became persistent.
   */
  #markStored(session: Session, key: number): void {
    if (session.ended || !this.host.isCurrent(session) || !this.host.isDurable(session.clientId)) return;
    if (!this.host.table.sessions.has(session.clientId)) return;
    const record = publishKeyRecord(session.clientId, key, {});
    this.host.table.apply(record);
    void this.host.write([record]).catch((error: unknown) => this.host.logger.error({ err: error, clientId: session.clientId, key }, 'recording a keyed publish as stored failed; a restart finds it by its pending marker'));
  }

  /** Whether the table's marker for this packet id belongs to this live session (not a newer one). */
  #ownsMarker(session: Session, key: number): boolean {
    return !session.ended && this.host.isCurrent(session) && this.host.table.sessions.get(session.clientId)?.publishKeys.has(key) === true;
  }

  /**
   * PUBREL for an inbound QoS 2 packet id: resolves once its marker's tombstone is durable.
   * PUBCOMP must wait for it: after PUBCOMP the client may reuse the packet id, and a marker a
   * crash left behind would then swallow the new message as a duplicate.
   */
  async release(session: Session, key: number): Promise<void> {
    if (!this.#ownsMarker(session, key)) return;
    const release = publishKeyRecord(session.clientId, key, null);
    this.host.table.apply(release);
    await this.host.write([release]);
  }
}
