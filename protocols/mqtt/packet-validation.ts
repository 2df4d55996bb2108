// Strict validation of one inbound MQTT packet, over its raw bytes, before the lenient parse.
//
// mqtt-packet decodes leniently: it merges repeated properties into one, coerces a Payload
// Format Indicator of 0xED to `true`, ignores reserved bits and bytes after the last field, and
// decodes ill-formed UTF-8 with replacement characters. This module walks every field of a
// packet the way the spec defines it and says what is wrong, with the reason code the spec
// gives; the connection answers (5.0 DISCONNECT, or CONNACK before CONNECT is accepted) and
// closes. Only a packet this module accepts reaches mqtt-packet.
//
// Pure: bytes and the protocol level in, a verdict out. It never throws on any input (a
// property test feeds it random and mutated bytes). `raw` is one whole packet as the framer cut
// it, so the remaining length in its fixed header matches its size.
//
// Choices where the spec leaves room (docs/mqtt.md, "Behaviour where the spec leaves room"):
// the control characters U+0001..U+001F and U+007F..U+009F are accepted in every string (the
// spec says SHOULD NOT, MQTT 1.5.4); a Topic Alias of 0 is left to the connection, which answers
// 0x94 Topic Alias invalid as it does for an alias above the maximum.
import { isUtf8 } from 'node:buffer';

/** Reason codes a violation carries (MQTT 5.0 table 2-6); 3.x connections just close. */
export const MALFORMED_PACKET = 0x81;
export const PROTOCOL_ERROR = 0x82;

export interface Violation {
  code: typeof MALFORMED_PACKET | typeof PROTOCOL_ERROR;
  detail: string;
}

export type UserProperty = [name: string, value: string];

/** Packet types by their number (MQTT 2.1.2). */
const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 4;
const PUBREC = 5;
const PUBREL = 6;
const PUBCOMP = 7;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;
const PINGREQ = 12;
const DISCONNECT = 14;
const AUTH = 15;
const PACKET_NAMES = ['reserved type 0', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

/** Where a property may appear: the packet types, plus the CONNECT's will properties. */
const WILL = 16;

type PropertyType = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';

interface PropertyRule {
  name: string;
  type: PropertyType;
  /** Packet types (WILL for will properties) it may appear in, as seen from a client. */
  in: readonly number[];
  /** May appear more than once (User Property). */
  repeatable?: boolean;
  /** For numbers: the allowed values, with the spec's verdict for others. */
  range?: { min: number; max: number; code: Violation['code']; rule: string };
}

const ZERO_ONE = (rule: string): PropertyRule['range'] => ({ min: 0, max: 1, code: PROTOCOL_ERROR, rule });

/**
 * MQTT 5.0 table 2-4. Properties only a server sends (CONNACK's, Server Keep Alive, Assigned
 * Client Identifier, Response Information, Subscription Identifier in PUBLISH) are listed with
 * the packets a server sends them in, which a client never may: from a client they are refused.
 */
const PROPERTIES = new Map<number, PropertyRule>([
  [0x01, { name: 'Payload Format Indicator', type: 'byte', in: [PUBLISH, WILL], range: ZERO_ONE('0 or 1 (MQTT 3.3.2.3.2)') }],
  [0x02, { name: 'Message Expiry Interval', type: 'u32', in: [PUBLISH, WILL] }],
  [0x03, { name: 'Content Type', type: 'string', in: [PUBLISH, WILL] }],
  [0x08, { name: 'Response Topic', type: 'string', in: [PUBLISH, WILL] }],
  [0x09, { name: 'Correlation Data', type: 'binary', in: [PUBLISH, WILL] }],
  // In PUBLISH only from a server (MQTT-3.3.4-6); in SUBSCRIBE 1..268,435,455 (3.8.2.1.2).
  [0x0b, { name: 'Subscription Identifier', type: 'varint', in: [SUBSCRIBE], range: { min: 1, max: 268_435_455, code: PROTOCOL_ERROR, rule: 'not 0 (MQTT 3.8.2.1.2)' } }],
  [0x11, { name: 'Session Expiry Interval', type: 'u32', in: [CONNECT, DISCONNECT] }],
  [0x12, { name: 'Assigned Client Identifier', type: 'string', in: [2] }],
  [0x13, { name: 'Server Keep Alive', type: 'u16', in: [2] }],
  [0x15, { name: 'Authentication Method', type: 'string', in: [CONNECT, AUTH] }],
  [0x16, { name: 'Authentication Data', type: 'binary', in: [CONNECT, AUTH] }],
  [0x17, { name: 'Request Problem Information', type: 'byte', in: [CONNECT], range: ZERO_ONE('0 or 1 (MQTT 3.1.2.11.7)') }],
  [0x18, { name: 'Will Delay Interval', type: 'u32', in: [WILL] }],
  [0x19, { name: 'Request Response Information', type: 'byte', in: [CONNECT], range: ZERO_ONE('0 or 1 (MQTT 3.1.2.11.6)') }],
  [0x1a, { name: 'Response Information', type: 'string', in: [2] }],
  [0x1c, { name: 'Server Reference', type: 'string', in: [2, DISCONNECT] }],
  [0x1f, { name: 'Reason String', type: 'string', in: [2, PUBACK, PUBREC, PUBREL, PUBCOMP, 9, 11, DISCONNECT, AUTH] }],
  [0x21, { name: 'Receive Maximum', type: 'u16', in: [CONNECT, 2], range: { min: 1, max: 65_535, code: PROTOCOL_ERROR, rule: 'not 0 (MQTT 3.1.2.11.3)' } }],
  [0x22, { name: 'Topic Alias Maximum', type: 'u16', in: [CONNECT, 2] }],
  [0x23, { name: 'Topic Alias', type: 'u16', in: [PUBLISH] }],
  [0x24, { name: 'Maximum QoS', type: 'byte', in: [2], range: ZERO_ONE('0 or 1 (MQTT 3.2.2.3.4)') }],
  [0x25, { name: 'Retain Available', type: 'byte', in: [2], range: ZERO_ONE('0 or 1 (MQTT 3.2.2.3.5)') }],
  [0x26, { name: 'User Property', type: 'pair', in: [CONNECT, 2, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, 9, UNSUBSCRIBE, 11, DISCONNECT, AUTH, WILL], repeatable: true }],
  [0x27, { name: 'Maximum Packet Size', type: 'u32', in: [CONNECT, 2], range: { min: 1, max: 4_294_967_295, code: PROTOCOL_ERROR, rule: 'not 0 (MQTT 3.1.2.11.4)' } }],
  [0x28, { name: 'Wildcard Subscription Available', type: 'byte', in: [2], range: ZERO_ONE('0 or 1') }],
  [0x29, { name: 'Subscription Identifier Available', type: 'byte', in: [2], range: ZERO_ONE('0 or 1') }],
  [0x2a, { name: 'Shared Subscription Available', type: 'byte', in: [2], range: ZERO_ONE('0 or 1') }],
]);

/** Reason codes a client may put in each packet (MQTT 5.0 sections 3.4.2.1 ... 3.15.2.1). */
const CLIENT_REASON_CODES = new Map<number, ReadonlySet<number>>([
  [PUBACK, new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99])],
  [PUBREC, new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99])],
  [PUBREL, new Set([0x00, 0x92])],
  [PUBCOMP, new Set([0x00, 0x92])],
  [DISCONNECT, new Set([0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99])],
  [AUTH, new Set([0x00, 0x18, 0x19])],
]);

/** Thrown inside the walk and caught at its top: a cursor that runs off the packet, or a bad field. */
class Refusal {
  constructor(readonly violation: Violation) {}
}

function malformed(detail: string): Refusal {
  return new Refusal({ code: MALFORMED_PACKET, detail });
}

function protocolError(detail: string): Refusal {
  return new Refusal({ code: PROTOCOL_ERROR, detail });
}

/** A read position over one packet; every read checks the bytes are there. */
class Cursor {
  at: number;
  constructor(
    readonly raw: Buffer,
    at: number,
    public end: number,
  ) {
    this.at = at;
  }

  get left(): number {
    return this.end - this.at;
  }

  need(bytes: number, what: string): void {
    if (this.end - this.at < bytes) throw malformed(`${what} runs past the end of the packet`);
  }

  byte(what: string): number {
    this.need(1, what);
    return this.raw[this.at++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.raw.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.raw.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }

  /** MQTT 1.5.5: at most four bytes. */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i += 1) {
      const byte = this.byte(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw malformed(`${what}: a variable byte integer of more than four bytes (MQTT 1.5.5)`);
  }

  binary(what: string): Buffer {
    const length = this.u16(what);
    this.need(length, what);
    const bytes = this.raw.subarray(this.at, this.at + length);
    this.at += length;
    return bytes;
  }

  /** MQTT-1.5.4-1/2: well-formed UTF-8 (no surrogates, no overlong forms) without U+0000. */
  string(what: string): Buffer {
    const bytes = this.binary(what);
    checkUtf8(bytes, what);
    return bytes;
  }
}

function checkUtf8(bytes: Buffer, what: string): void {
  if (!isUtf8(bytes)) throw malformed(`${what} is not well-formed UTF-8 (MQTT-1.5.4-1)`);
  if (bytes.includes(0)) throw malformed(`${what} contains U+0000 (MQTT-1.5.4-2)`);
}

/** A fixed header's flags must be these (MQTT 2.1.3); PUBLISH has its own. */
function expectFlags(flags: number, wanted: number, type: number): void {
  if (flags !== wanted) throw malformed(`${PACKET_NAMES[type]} with fixed-header flags ${flags.toString(2).padStart(4, '0')}, must be ${wanted.toString(2).padStart(4, '0')} (MQTT-2.1.3-1)`);
}

function expectEnd(cursor: Cursor, what: string): void {
  if (cursor.left !== 0) throw malformed(`${cursor.left} bytes after the last field of ${what}`);
}

function packetId(cursor: Cursor, what: string): number {
  const id = cursor.u16(`${what} packet identifier`);
  if (id === 0) throw protocolError(`${what} with packet identifier 0 (MQTT-2.2.1-3)`);
  return id;
}

/**
 * Walks a property block (length, then properties) for packet type `where`; returns the User
 * Properties in the order sent when `collect` is set.
 */
function properties(cursor: Cursor, where: number, what: string, collect: boolean): UserProperty[] | undefined {
  const length = cursor.varint(`${what} property length`);
  cursor.need(length, `${what} properties (${length} bytes)`);
  const end = cursor.at + length;
  const outer = cursor.end;
  cursor.end = end;
  // Identifiers seen so far, as bits (all defined identifiers are below 64).
  let seenLow = 0;
  let seenHigh = 0;
  let pairs: UserProperty[] | undefined;
  while (cursor.at < end) {
    const id = cursor.varint(`${what} property identifier`);
    const rule = PROPERTIES.get(id);
    if (rule === undefined) throw malformed(`${what}: unknown property identifier 0x${id.toString(16)} (MQTT 2.2.2.2)`);
    if (!rule.in.includes(where)) {
      if (id === 0x0b && where === PUBLISH) throw protocolError(`${what}: a client PUBLISH must not carry a Subscription Identifier (MQTT-3.3.4-6)`);
      throw malformed(`${what}: property ${rule.name} is not allowed there (MQTT 2.2.2.2)`);
    }
    if (rule.repeatable !== true) {
      const bit = 1 << (id & 31);
      const seen = id < 32 ? seenLow : seenHigh;
      if ((seen & bit) !== 0) throw protocolError(`${what}: property ${rule.name} appears more than once`);
      if (id < 32) seenLow |= bit;
      else seenHigh |= bit;
    }
    const label = `${what} ${rule.name}`;
    let value: number | undefined;
    switch (rule.type) {
      case 'byte':
        value = cursor.byte(label);
        break;
      case 'u16':
        value = cursor.u16(label);
        break;
      case 'u32':
        value = cursor.u32(label);
        break;
      case 'varint':
        value = cursor.varint(label);
        break;
      case 'string':
        cursor.string(label);
        break;
      case 'binary':
        cursor.binary(label);
        break;
      case 'pair': {
        const name = cursor.string(`${label} name`);
        const text = cursor.string(`${label} value`);
        if (collect) (pairs ??= []).push([name.toString('utf8'), text.toString('utf8')]);
        break;
      }
    }
    const range = rule.range;
    if (value !== undefined && range !== undefined && (value < range.min || value > range.max)) {
      const verdict = `${label} is ${value}, must be ${range.rule}`;
      throw new Refusal({ code: range.code, detail: verdict });
    }
  }
  cursor.end = outer;
  return pairs;
}

/** Where the variable header starts: after the type byte and the remaining length. */
function bodyStart(raw: Buffer): number {
  let at = 1;
  while (at < raw.length && at < 5 && ((raw[at] as number) & 0x80) !== 0) at += 1;
  return at + 1;
}

/** Where validatePacket puts the User Properties it read, in order (PUBLISH, or a CONNECT's will). */
export interface Collected {
  userProperties?: UserProperty[] | undefined;
}

function validateConnect(cursor: Cursor, version: number, collected: Collected | undefined): void {
  cursor.string('CONNECT protocol name');
  cursor.byte('CONNECT protocol level');
  const flags = cursor.byte('CONNECT flags');
  if ((flags & 0x01) !== 0) throw malformed('CONNECT flags: the reserved bit 0 is set (MQTT-3.1.2-3)');
  const will = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  if (!will && (willQos !== 0 || willRetain)) throw malformed('CONNECT flags: will QoS or will retain set without the will flag (MQTT-3.1.2-11, MQTT-3.1.2-13)');
  if (willQos === 3) throw malformed('CONNECT flags: will QoS 3 (MQTT-3.1.2-12)');
  const hasUsername = (flags & 0x80) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  if (version !== 5 && hasPassword && !hasUsername) throw malformed('CONNECT flags: a password without a user name (MQTT-3.1.2-22)');
  cursor.u16('CONNECT keep alive');
  if (version === 5) properties(cursor, CONNECT, 'CONNECT', false);
  cursor.string('CONNECT client identifier');
  if (will) {
    if (version === 5) {
      const pairs = properties(cursor, WILL, 'CONNECT will', collected !== undefined);
      if (collected !== undefined) collected.userProperties = pairs;
    }
    cursor.string('CONNECT will topic');
    cursor.binary('CONNECT will payload');
  }
  if (hasUsername) cursor.string('CONNECT user name');
  if (hasPassword) cursor.binary('CONNECT password');
  expectEnd(cursor, 'CONNECT');
}

function validatePublish(cursor: Cursor, flags: number, version: number, collected: Collected | undefined): void {
  const qos = (flags >> 1) & 3;
  if (qos === 3) throw malformed('PUBLISH with QoS 3 (MQTT-3.3.1-4)');
  if (qos === 0 && (flags & 0x08) !== 0) throw malformed('DUP must be 0 on a QoS 0 PUBLISH (MQTT-3.3.1-2)');
  cursor.string('PUBLISH topic name');
  if (qos > 0) packetId(cursor, 'PUBLISH');
  if (version === 5) {
    const pairs = properties(cursor, PUBLISH, 'PUBLISH', collected !== undefined);
    if (collected !== undefined) collected.userProperties = pairs;
  }
  // The rest is the payload, any bytes.
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id, and in 5.0 an optional reason code and properties. */
function validateAck(cursor: Cursor, type: number, version: number): void {
  const name = PACKET_NAMES[type] as string;
  packetId(cursor, name);
  if (version === 5 && cursor.left > 0) {
    const code = cursor.byte(`${name} reason code`);
    if (!(CLIENT_REASON_CODES.get(type) as ReadonlySet<number>).has(code)) throw malformed(`${name} with reason code 0x${code.toString(16)}, not one the spec defines for it`);
    if (cursor.left > 0) properties(cursor, type, name, false);
  }
  expectEnd(cursor, name);
}

function validateSubscribe(cursor: Cursor, version: number): void {
  packetId(cursor, 'SUBSCRIBE');
  if (version === 5) properties(cursor, SUBSCRIBE, 'SUBSCRIBE', false);
  if (cursor.left === 0) throw protocolError('SUBSCRIBE with no topic filter (MQTT-3.8.3-2)');
  while (cursor.left > 0) {
    cursor.string('SUBSCRIBE topic filter');
    const options = cursor.byte('SUBSCRIBE options');
    if (version === 5) {
      if ((options & 0xc0) !== 0) throw malformed(`SUBSCRIBE options 0x${options.toString(16)}: reserved bits 6-7 set (MQTT-3.8.3-5)`);
      if ((options & 3) === 3) throw protocolError('SUBSCRIBE options: maximum QoS 3 (MQTT 3.8.3.1)');
      if (((options >> 4) & 3) === 3) throw protocolError('SUBSCRIBE options: retain handling 3 (MQTT 3.8.3.1)');
    } else {
      if ((options & 0xfc) !== 0) throw malformed(`SUBSCRIBE requested QoS byte 0x${options.toString(16)}: the upper six bits are reserved (MQTT-3.8.3-4)`);
      if (options === 3) throw malformed('SUBSCRIBE requested QoS 3 (MQTT-3.8.3-4)');
    }
  }
}

function validateUnsubscribe(cursor: Cursor, version: number): void {
  packetId(cursor, 'UNSUBSCRIBE');
  if (version === 5) properties(cursor, UNSUBSCRIBE, 'UNSUBSCRIBE', false);
  if (cursor.left === 0) throw protocolError('UNSUBSCRIBE with no topic filter (MQTT-3.10.3-2)');
  while (cursor.left > 0) cursor.string('UNSUBSCRIBE topic filter');
}

/** DISCONNECT and AUTH in 5.0: nothing (reason 0x00), a reason code, or a reason code and properties. */
function validateReasonAndProperties(cursor: Cursor, type: number): void {
  const name = PACKET_NAMES[type] as string;
  if (cursor.left === 0) return;
  const code = cursor.byte(`${name} reason code`);
  if (!(CLIENT_REASON_CODES.get(type) as ReadonlySet<number>).has(code)) throw malformed(`${name} with reason code 0x${code.toString(16)}, not one a client may send`);
  if (cursor.left > 0) properties(cursor, type, name, false);
  expectEnd(cursor, name);
}

function walk(raw: Buffer, version: number, collected: Collected | undefined): void {
  const type = (raw[0] as number) >> 4;
  const flags = (raw[0] as number) & 0x0f;
  const cursor = new Cursor(raw, bodyStart(raw), raw.length);
  if (cursor.at > raw.length) throw malformed('fixed header cut short');
  switch (type) {
    case CONNECT:
      expectFlags(flags, 0, type);
      return validateConnect(cursor, version, collected);
    case PUBLISH:
      return validatePublish(cursor, flags, version, collected);
    case PUBACK:
    case PUBREC:
    case PUBCOMP:
      expectFlags(flags, 0, type);
      return validateAck(cursor, type, version);
    case PUBREL:
      expectFlags(flags, 2, type);
      return validateAck(cursor, type, version);
    case SUBSCRIBE:
      expectFlags(flags, 2, type);
      return validateSubscribe(cursor, version);
    case UNSUBSCRIBE:
      expectFlags(flags, 2, type);
      return validateUnsubscribe(cursor, version);
    case PINGREQ:
      expectFlags(flags, 0, type);
      return expectEnd(cursor, 'PINGREQ');
    case DISCONNECT:
      expectFlags(flags, 0, type);
      if (version === 5) return validateReasonAndProperties(cursor, type);
      return expectEnd(cursor, 'DISCONNECT');
    case AUTH:
      if (version !== 5) throw malformed('packet type 15 is reserved before MQTT 5.0');
      expectFlags(flags, 0, type);
      return validateReasonAndProperties(cursor, type);
    case 0:
      throw malformed('packet type 0 is reserved (MQTT 2.1.2)');
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP: a server's packets.
      expectFlags(flags, 0, type);
      throw protocolError(`a client must not send ${PACKET_NAMES[type]}`);
  }
}

/**
 * What is wrong with `raw` (one whole packet from a client speaking protocol level `version`:
 * 3 = 3.1, 4 = 3.1.1, 5 = 5.0), or undefined when it is well-formed. Rules that depend on the
 * connection's state (first packet CONNECT, a second CONNECT, AUTH outside an exchange, topic
 * alias maximum, receive maximum) are the connection's. With `collected`, the User Properties
 * of a 5.0 PUBLISH (or of a CONNECT's will) are read in the same pass, in the order sent, for
 * MQTT-3.3.2-18 (mqtt-packet's decoder groups them by name).
 */
export function validatePacket(raw: Buffer, version: number, collected?: Collected): Violation | undefined {
  try {
    walk(raw, version, collected);
    return undefined;
  } catch (error) {
    if (error instanceof Refusal) return error.violation;
    // Cannot happen (every read is bounds-checked); a refusal is still the safe answer.
    return { code: MALFORMED_PACKET, detail: `undecodable packet (${String(error)})` };
  }
}

/**
 * The User Properties of a well-formed 5.0 PUBLISH (`raw` passed validatePacket), in the order
 * sent, duplicates kept (MQTT-3.3.2-18); undefined when it has none.
 */
export function publishUserProperties(raw: Buffer): UserProperty[] | undefined {
  try {
    const flags = (raw[0] as number) & 0x0f;
    const cursor = new Cursor(raw, bodyStart(raw), raw.length);
    cursor.binary('topic');
    if (((flags >> 1) & 3) > 0) cursor.u16('packet identifier');
    return properties(cursor, PUBLISH, 'PUBLISH', true);
  } catch {
    return undefined;
  }
}

/** The will's User Properties of a well-formed 5.0 CONNECT, in the order sent; undefined when none. */
export function willUserProperties(raw: Buffer): UserProperty[] | undefined {
  try {
    const cursor = new Cursor(raw, bodyStart(raw), raw.length);
    cursor.binary('protocol name');
    cursor.byte('level');
    const flags = cursor.byte('flags');
    if ((flags & 0x04) === 0) return undefined;
    cursor.u16('keep alive');
    properties(cursor, CONNECT, 'CONNECT', false);
    cursor.binary('client identifier');
    return properties(cursor, WILL, 'CONNECT will', true);
  } catch {
    return undefined;
  }
}

/** Whether a well-formed 5.0 AUTH carries an Authentication Method (the short form has none). */
export function hasAuthenticationMethod(raw: Buffer): boolean {
  try {
    const cursor = new Cursor(raw, bodyStart(raw), raw.length);
    if (cursor.left === 0) return false;
    cursor.byte('reason code');
    if (cursor.left === 0) return false;
    const length = cursor.varint('property length');
    cursor.end = Math.min(cursor.end, cursor.at + length);
    while (cursor.left > 0) {
      const id = cursor.varint('property identifier');
      if (id === 0x15) return true;
      const rule = PROPERTIES.get(id);
      if (rule === undefined) return false;
      if (rule.type === 'byte') cursor.byte(rule.name);
      else if (rule.type === 'u16') cursor.u16(rule.name);
      else if (rule.type === 'u32') cursor.u32(rule.name);
      else if (rule.type === 'varint') cursor.varint(rule.name);
      else if (rule.type === 'pair') {
        cursor.binary(rule.name);
        cursor.binary(rule.name);
      } else cursor.binary(rule.name);
    }
    return false;
  } catch {
    return false;
  }
}
