// Inbound QoS 2 across a crash: the packet ids of QoS 2 messages a persistent session's client
// sent and has not released (PUBREL) are `q:` markers in `$sessions` (session-events.ts), so a
// PUBLISH the client resends with DUP after a broker crash is recognised and stored once (MQTT
// 4.3.3, method B: the receiver keeps the packet id from PUBREC until PUBREL).
//
// The message and its marker live in different shards, so no append makes them one. Order:
//   1. marker `pending` {shard, from, timestamp} appended to `$sessions` and durable;
//   2. the message appended to its data shard, its record carrying the `q2` header (packet id);
//   3. PUBREC to the client, and the marker rewritten as stored (`{}`), not waited for;
//   4. on PUBREL: the marker's tombstone durable, then PUBCOMP.
// Crash windows, and what the restarted broker does:
//   - before 1 is durable: no marker, no PUBREC; the client resends and the message is stored;
//   - between 1 and 2: a pending marker, no record; the start-up scan (below) finds no record
//     and drops the marker, so the resend is stored (once);
//   - after 2, before 3 is durable: the scan finds the record and keeps the marker, so the
//     resend gets PUBREC and is not stored again, whether or not the first PUBREC went out;
//   - after 3: the marker says stored; the resend gets PUBREC, PUBREL gets PUBCOMP;
//   - during 4: the marker is there until PUBCOMP can go out, so the client, which resends
//     PUBREL until it gets PUBCOMP, never reuses the packet id while a marker could still
//     claim it (a stale marker would swallow the next message with that id).
// Writing the marker first costs one `$sessions` append (group-committed) before the message's
// append, for QoS 2 publishes of persistent sessions only.
//
// The scan: a pending marker's message, if it was appended, is in data shard `shard` at or after
// `from` (the shard's dispatch frontier when the marker was written, which the append can only
// be past), with the marker's publisher, packet id and timestamp. Only records appended between
// the marker and the crash are read, so the scan is short.
import type { JournalRecord } from '../../journal/index.js';
import { inboundPacketIdOf } from '../messages/message.js';
import type { InboundQos2Marker, SessionTable } from './session-events.js';

export interface PendingInboundQos2 {
  clientId: string;
  packetId: number;
  pending: NonNullable<InboundQos2Marker['pending']>;
}

/** The markers of the table whose message may not have reached the journal. */
export function pendingInboundQos2(table: SessionTable): PendingInboundQos2[] {
  const out: PendingInboundQos2[] = [];
  for (const session of table.sessions.values()) {
    for (const [packetId, marker] of session.inboundQos2) if (marker.pending !== undefined) out.push({ clientId: session.clientId, packetId, pending: marker.pending });
  }
  return out;
}

/** The pending markers of one data shard that a page of its records shows stored. */
export function storedInboundQos2(pending: readonly PendingInboundQos2[], records: readonly JournalRecord[]): PendingInboundQos2[] {
  const byPublisher = new Map<string, PendingInboundQos2>();
  for (const entry of pending) byPublisher.set(`${entry.clientId}\u0000${entry.packetId}`, entry);
  const found: PendingInboundQos2[] = [];
  for (const record of records) {
    const origin = inboundPacketIdOf(record);
    if (origin === undefined) continue;
    const entry = byPublisher.get(`${origin.publisherId}\u0000${origin.packetId}`);
    // Offset and timestamp tell this message from an earlier one with the same packet id.
    if (entry === undefined || record.offset < entry.pending.from || record.timestamp !== entry.pending.timestamp) continue;
    found.push(entry);
  }
  return found;
}
