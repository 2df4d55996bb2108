// PUBACK, PUBREC, PUBREL and PUBCOMP without properties, encoded without mqtt-packet: one per
// QoS 1/2 publish each way, and generate() builds a stream object, logs through `debug` and
// concatenates several buffers for these four bytes (a tenth of the broker's allocations per
// QoS 1 message, docs/benchmarks.md). Anything else (properties, a DUP PUBREL) is left to
// generate(); the property test checks the bytes against it.

const FIRST_BYTE: Record<string, number> = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 };

/** The ack packet's bytes, or undefined when it is not a plain ack (the caller uses generate()). */
export function encodePlainAck(packet: { cmd: string; messageId?: number; reasonCode?: number; properties?: unknown; dup?: boolean }, version: number): Buffer | undefined {
  const first = FIRST_BYTE[packet.cmd];
  const id = packet.messageId;
  if (first === undefined || id === undefined || packet.properties !== undefined || packet.dup === true) return undefined;
  const code = packet.reasonCode;
  const short = version !== 5 || code === 0;
  if (!short && code === undefined) return undefined;
  // 5.0 with another code and no properties: the code, then a zero property length.
  const bytes = Buffer.allocUnsafe(short ? 4 : 6);
  bytes[0] = first;
  bytes[1] = short ? 2 : 4;
  bytes.writeUInt16BE(id, 2);
  if (!short) {
    bytes[4] = code as number;
    bytes[5] = 0;
  }
  return bytes;
}
