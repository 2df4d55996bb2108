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
import type { JournalRecord } from '../../journal/index.js';
import { publishKeyOf } from '../messages/message.js';
import type { PublishKeyMarker, SessionTable } from './session-events.js';

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
