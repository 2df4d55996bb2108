// What an MQTT client is told when the broker refuses a publish because writes are blocked
// (SL_BROKER_WRITES_BLOCKED: the node's write gate is closed; engine/availability/). One table
// from the gate's conditions to 5.0 PUBACK/PUBREC reason codes; the connection applies it the
// same way whatever the condition, so a new one only needs a row here.
//
// - 5.0, QoS 1/2: PUBACK/PUBREC at once with the code below and the condition as reason string.
//   journal-unavailable → 0x80 Unspecified error: a server-side failure the client did not
//   cause, worth retrying later (5.0 has no "server unavailable" code for PUBACK).
//   disk-low → 0x97 Quota exceeded: an administratively imposed limit is reached.
//   Both at once: 0x80 (the journal being away is the condition that clears the other too).
// - 3.x, QoS 1/2: 3.x acks have no failure code, so the publish is held unacknowledged and
//   stored when the gate opens (then acknowledged); held past writes-blocked-disconnect-seconds,
//   the connection is closed and the client resends it after reconnecting (MQTT-4.4.0-1).
// - QoS 0 (any version): dropped, counted in shardline_publishes_refused_total.
//
// A refused delayed publish (`$delayed/...`, engine/delayed/delayed-errors.ts) has its own
// 5.0 codes, below; 3.x closes the connection.
import { DelayedErrors, WriteGateErrors } from '../../engine/index.js';
import { ReasonCode } from './reason-codes.js';

const REASON_CODES: Record<string, ReasonCode> = {
  'journal-unavailable': ReasonCode.UnspecifiedError,
  'disk-low': ReasonCode.QuotaExceeded,
};

export function isWritesBlocked(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === WriteGateErrors.writesBlocked.code;
}

/** The 5.0 PUBACK/PUBREC reason code for a writes-blocked refusal (by the conditions in its context). */
export function writesBlockedReasonCode(error: unknown): ReasonCode {
  const reasons = ((error as { context?: { reasons?: unknown } }).context?.reasons ?? []) as string[];
  if (reasons.includes('journal-unavailable')) return ReasonCode.UnspecifiedError;
  for (const reason of reasons) {
    const code = REASON_CODES[reason];
    if (code !== undefined) return code;
  }
  return ReasonCode.UnspecifiedError;
}

/** The 5.0 reason code for a refused delayed publish (see engine/delayed/delayed-errors.ts). */
export function delayedRefusal(code: string | undefined): ReasonCode | undefined {
  switch (code) {
    case DelayedErrors.invalidTopic.code:
      return ReasonCode.TopicNameInvalid;
    case DelayedErrors.delayTooLong.code:
    case DelayedErrors.full.code:
      return ReasonCode.QuotaExceeded;
    case DelayedErrors.notAuthorized.code:
      return ReasonCode.NotAuthorized;
    default:
      return undefined;
  }
}
