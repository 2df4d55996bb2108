// The protocol header a client sends before any frame: "AMQP", 0, 0, 9, 1 (spec 4.2.2). A server
// that does not speak what the client asked for answers with the header it does speak and closes
// the socket, so an AMQP 1.0 or 0-8 client learns why, and a client of another protocol (an HTTP
// request on the AMQP port) gets the same bytes. Decided at the first byte that differs, so a
// peer that sends "GET / HTTP/1.1" is answered without waiting for eight bytes.

export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

export type ProtocolHeaderCheck =
  /** Eight bytes matched; the frames start at byte 8. */
  | { kind: 'ok' }
  /** A prefix of the header so far: wait for more bytes. */
  | { kind: 'incomplete' }
  /**
   * Not AMQP 0-9-1: write `reply` and close. `reason` says whether it was AMQP at all (and
   * `version` the four bytes the client asked for, when it was).
   */
  | { kind: 'wrong'; reason: 'not-amqp' | 'other-version'; version?: readonly number[]; reply: Buffer };

export function checkProtocolHeader(bytes: Uint8Array): ProtocolHeaderCheck {
  const length = Math.min(bytes.length, PROTOCOL_HEADER.length);
  for (let index = 0; index < length; index += 1) {
    if (bytes[index] === PROTOCOL_HEADER[index]) continue;
    if (index < 4) return { kind: 'wrong', reason: 'not-amqp', reply: PROTOCOL_HEADER };
    // "AMQP" then another version; it is only known in full once all eight bytes are here,
    // but the answer does not depend on it.
    return { kind: 'wrong', reason: 'other-version', version: [...bytes.subarray(4, length)], reply: PROTOCOL_HEADER };
  }
  return bytes.length >= PROTOCOL_HEADER.length ? { kind: 'ok' } : { kind: 'incomplete' };
}
