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
  if (version !== 5 || code === 0) return Buffer.from([first, 2, id >> 8, id & 0xff]);
  if (code === undefined) return undefined;
  // 5.0 with a failure code and no properties: the code, then a zero property length.
  return Buffer.from([first, 4, id >> 8, id & 0xff, code, 0]);
}
