// The strict validator: one example per rule (the verdict and its reason code), no false
// refusals of anything mqtt-packet's generate() produces from valid random fields in 3.1, 3.1.1
// and 5.0, never an exception on random or mutated bytes, and User Properties read in the
// order sent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { hasAuthenticationMethod, MALFORMED_PACKET, type Collected, PROTOCOL_ERROR, publishUserProperties, validatePacket, willUserProperties } from './packet-validation.js';

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out.push(byte);
  } while (rest > 0);
  return out;
}

function str(text: string | number[]): number[] {
  const bytes = typeof text === 'string' ? [...Buffer.from(text, 'utf8')] : text;
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

function packet(firstByte: number, body: number[]): Buffer {
  return Buffer.from([firstByte, ...varint(body.length), ...body]);
}

function props(bytes: number[]): number[] {
  return [...varint(bytes.length), ...bytes];
}

/** A 5.0 PUBLISH QoS 1 (id 1) to a/b with the given property bytes. */
function publish5(properties: number[]): Buffer {
  return packet(0x32, [...str('a/b'), 0, 1, ...props(properties), 0x78]);
}

function connect(version: 4 | 5, options: { flags?: number; properties?: number[]; clientId?: string | number[]; willProperties?: number[]; tail?: number[] } = {}): Buffer {
  const body = [...str('MQTT'), version, options.flags ?? 0x02, 0, 60];
  if (version === 5) body.push(...props(options.properties ?? []));
  body.push(...str(options.clientId ?? 'c'));
  if (((options.flags ?? 0x02) & 0x04) !== 0) {
    if (version === 5) body.push(...props(options.willProperties ?? []));
    body.push(...str('will/t'), ...str('bye'));
  }
  body.push(...(options.tail ?? []));
  return packet(0x10, body);
}

const M = MALFORMED_PACKET;
const P = PROTOCOL_ERROR;

describe('examples, one per rule', () => {
  const cases: Array<{ name: string; raw: Buffer; version: number; expected: number | undefined }> = [
    // Fixed-header flags (MQTT-2.1.3-1).
    { name: 'PUBREL with flags 0000', raw: Buffer.from([0x60, 2, 0, 1]), version: 4, expected: M },
    { name: 'PUBREL with flags 0010 (control)', raw: Buffer.from([0x62, 2, 0, 1]), version: 4, expected: undefined },
    { name: 'SUBSCRIBE with flags 0000', raw: packet(0x80, [0, 1, ...str('a'), 0]), version: 4, expected: M },
    { name: 'UNSUBSCRIBE with flags 0000', raw: packet(0xa0, [0, 1, ...str('a')]), version: 4, expected: M },
    { name: 'PUBACK with flags 0001', raw: Buffer.from([0x41, 2, 0, 1]), version: 5, expected: M },
    { name: 'PINGREQ with flags 1000', raw: Buffer.from([0xc8, 0]), version: 4, expected: M },
    { name: 'DISCONNECT with flags 0001', raw: Buffer.from([0xe1, 0]), version: 4, expected: M },
    { name: 'CONNECT with flags 0001', raw: Buffer.from([0x11, ...connect(4).subarray(1)]), version: 4, expected: M },
    { name: 'AUTH with flags 0001', raw: Buffer.from([0xf1, 0]), version: 5, expected: M },
    { name: 'PUBLISH QoS 3', raw: packet(0x36, [...str('a'), 0, 1, 0x78]), version: 4, expected: M },
    { name: 'PUBLISH QoS 0 with DUP', raw: packet(0x38, [...str('a'), 0x78]), version: 4, expected: M },
    { name: 'reserved packet type 0', raw: Buffer.from([0x00, 0]), version: 5, expected: M },
    { name: 'AUTH in 3.1.1', raw: Buffer.from([0xf0, 0]), version: 4, expected: M },
    { name: 'CONNACK from a client', raw: Buffer.from([0x20, 2, 0, 0]), version: 4, expected: P },
    // Packet identifiers (MQTT-2.2.1-3).
    { name: 'PUBLISH QoS 1 with packet id 0', raw: packet(0x32, [...str('a'), 0, 0, 0x78]), version: 4, expected: P },
    { name: 'PUBACK with packet id 0', raw: Buffer.from([0x40, 2, 0, 0]), version: 4, expected: P },
    { name: 'PUBREL with packet id 0 and a reason code', raw: Buffer.from([0x62, 3, 0, 0, 0]), version: 5, expected: P },
    { name: 'SUBSCRIBE with packet id 0', raw: packet(0x82, [0, 0, ...str('a'), 0]), version: 4, expected: P },
    { name: 'UNSUBSCRIBE with packet id 0', raw: packet(0xa2, [0, 0, 0, ...str('a')]), version: 5, expected: P },
    // Trailing bytes.
    { name: 'PINGREQ with a body', raw: Buffer.from([0xc0, 1, 0]), version: 4, expected: M },
    { name: '3.1.1 DISCONNECT with a body', raw: Buffer.from([0xe0, 1, 0]), version: 4, expected: M },
    { name: '3.1.1 PUBACK with a reason code', raw: Buffer.from([0x40, 3, 0, 1, 0]), version: 4, expected: M },
    { name: '5.0 PUBACK with bytes after its properties', raw: Buffer.from([0x40, 5, 0, 1, 0, 0, 0]), version: 5, expected: M },
    { name: 'CONNECT with extra bytes', raw: connect(4, { tail: [1, 2] }), version: 4, expected: M },
    { name: '5.0 DISCONNECT with reason and empty properties (control)', raw: Buffer.from([0xe0, 2, 0, 0]), version: 5, expected: undefined },
    // CONNECT flags.
    { name: 'CONNECT reserved bit 0', raw: connect(4, { flags: 0x03 }), version: 4, expected: M },
    { name: 'CONNECT will QoS 3', raw: connect(4, { flags: 0x1e }), version: 4, expected: M },
    { name: 'CONNECT will QoS 1 without will flag', raw: connect(4, { flags: 0x0a }), version: 4, expected: M },
    { name: 'CONNECT will retain without will flag', raw: connect(5, { flags: 0x22 }), version: 5, expected: M },
    { name: 'CONNECT will with QoS 2 and retain (control)', raw: connect(5, { flags: 0x36 }), version: 5, expected: undefined },
    { name: '3.1.1 CONNECT password without user name', raw: connect(4, { flags: 0x42, tail: str('pw') }), version: 4, expected: M },
    { name: '5.0 CONNECT password without user name (allowed)', raw: connect(5, { flags: 0x42, tail: str('pw') }), version: 5, expected: undefined },
    // SUBSCRIBE / UNSUBSCRIBE.
    { name: '3.1.1 SUBSCRIBE requested QoS byte 0x04', raw: packet(0x82, [0, 1, ...str('a'), 4]), version: 4, expected: M },
    { name: '3.1.1 SUBSCRIBE requested QoS 3', raw: packet(0x82, [0, 1, ...str('a'), 3]), version: 4, expected: M },
    { name: '5.0 SUBSCRIBE options bit 6', raw: packet(0x82, [0, 1, 0, ...str('a'), 0x40]), version: 5, expected: M },
    { name: '5.0 SUBSCRIBE retain handling 3', raw: packet(0x82, [0, 1, 0, ...str('a'), 0x30]), version: 5, expected: P },
    { name: '5.0 SUBSCRIBE maximum QoS 3', raw: packet(0x82, [0, 1, 0, ...str('a'), 0x03]), version: 5, expected: P },
    { name: '5.0 SUBSCRIBE all options (control)', raw: packet(0x82, [0, 1, 0, ...str('a'), 0x2e]), version: 5, expected: undefined },
    { name: 'SUBSCRIBE with no topic filter', raw: packet(0x82, [0, 1]), version: 4, expected: P },
    { name: 'UNSUBSCRIBE with no topic filter', raw: packet(0xa2, [0, 1, 0]), version: 5, expected: P },
    { name: 'SUBSCRIBE filter without its options byte', raw: packet(0x82, [0, 1, ...str('a')]), version: 4, expected: M },
    // UTF-8 (MQTT-1.5.4-1/2).
    { name: 'client id with C3 28', raw: connect(4, { clientId: [0x63, 0xc3, 0x28] }), version: 4, expected: M },
    { name: 'client id with U+0000', raw: connect(5, { clientId: [0x63, 0x00] }), version: 5, expected: M },
    { name: 'client id with a surrogate (ED A0 80)', raw: connect(4, { clientId: [0xed, 0xa0, 0x80] }), version: 4, expected: M },
    { name: 'client id with an overlong slash (C0 AF)', raw: connect(4, { clientId: [0xc0, 0xaf] }), version: 4, expected: M },
    { name: 'user name with a surrogate', raw: connect(4, { flags: 0x82, tail: str([0xed, 0xbf, 0xbf]) }), version: 4, expected: M },
    { name: 'client id with U+0001 and U+009F (accepted, documented)', raw: connect(4, { clientId: '\u0001x\u009f' }), version: 4, expected: undefined },
    { name: 'topic filter with U+0000', raw: packet(0xa2, [0, 1, ...str([0x61, 0])]), version: 4, expected: M },
    { name: 'Content Type with invalid UTF-8', raw: publish5([0x03, ...str([0xff])]), version: 5, expected: M },
    { name: 'User Property value with U+0000', raw: publish5([0x26, ...str('k'), ...str([0])]), version: 5, expected: M },
    { name: 'User Property name with a surrogate', raw: publish5([0x26, ...str([0xed, 0xa0, 0x80]), ...str('v')]), version: 5, expected: M },
    // Properties.
    { name: 'Payload Format Indicator 0xED', raw: publish5([0x01, 0xed]), version: 5, expected: P },
    { name: 'Payload Format Indicator 1 (control)', raw: publish5([0x01, 1]), version: 5, expected: undefined },
    { name: 'Payload Format Indicator twice', raw: publish5([0x01, 0, 0x01, 0]), version: 5, expected: P },
    { name: 'Message Expiry Interval twice', raw: publish5([0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]), version: 5, expected: P },
    { name: 'Subscription Identifier in a client PUBLISH', raw: publish5([0x0b, 1]), version: 5, expected: P },
    { name: 'Session Expiry Interval in PUBLISH', raw: publish5([0x11, 0, 0, 0, 1]), version: 5, expected: M },
    { name: 'unknown property 0x7F', raw: publish5([0x7f, 0]), version: 5, expected: M },
    { name: 'property length past the packet', raw: packet(0x32, [...str('a'), 0, 1, 20, 0x01, 0]), version: 5, expected: M },
    { name: 'property value past the property length', raw: packet(0x32, [...str('a'), 0, 1, 2, 0x02, 0, 0, 0, 0x78]), version: 5, expected: M },
    { name: 'property length of five bytes', raw: packet(0x32, [...str('a'), 0, 1, 0x80, 0x80, 0x80, 0x80, 0x00, 0x78]), version: 5, expected: M },
    { name: 'two User Properties with one name (allowed)', raw: publish5([0x26, ...str('k'), ...str('1'), 0x26, ...str('k'), ...str('2')]), version: 5, expected: undefined },
    { name: 'Receive Maximum 0 in CONNECT', raw: connect(5, { properties: [0x21, 0, 0] }), version: 5, expected: P },
    { name: 'Maximum Packet Size 0 in CONNECT', raw: connect(5, { properties: [0x27, 0, 0, 0, 0] }), version: 5, expected: P },
    { name: 'Request Problem Information 2', raw: connect(5, { properties: [0x17, 2] }), version: 5, expected: P },
    { name: 'Request Response Information 2', raw: connect(5, { properties: [0x19, 2] }), version: 5, expected: P },
    { name: 'Maximum QoS in CONNECT (a CONNACK property)', raw: connect(5, { properties: [0x24, 0] }), version: 5, expected: M },
    { name: 'Retain Available in CONNECT (a CONNACK property)', raw: connect(5, { properties: [0x25, 1] }), version: 5, expected: M },
    { name: 'Will Delay Interval in CONNECT properties (a will property)', raw: connect(5, { properties: [0x18, 0, 0, 0, 1] }), version: 5, expected: M },
    { name: 'Will Payload Format Indicator 2', raw: connect(5, { flags: 0x06, willProperties: [0x01, 2] }), version: 5, expected: P },
    { name: 'Session Expiry Interval in will properties', raw: connect(5, { flags: 0x06, willProperties: [0x11, 0, 0, 0, 1] }), version: 5, expected: M },
    { name: 'Subscription Identifier 0 in SUBSCRIBE', raw: packet(0x82, [0, 1, ...props([0x0b, 0]), ...str('a'), 0]), version: 5, expected: P },
    { name: 'Subscription Identifier twice in SUBSCRIBE', raw: packet(0x82, [0, 1, ...props([0x0b, 1, 0x0b, 2]), ...str('a'), 0]), version: 5, expected: P },
    { name: 'Subscription Identifier of five bytes', raw: packet(0x82, [0, 1, ...props([0x0b, 0xff, 0xff, 0xff, 0xff, 0x01]), ...str('a'), 0]), version: 5, expected: M },
    { name: 'Reason String in UNSUBSCRIBE', raw: packet(0xa2, [0, 1, ...props([0x1f, ...str('r')]), ...str('a')]), version: 5, expected: M },
    { name: 'PUBACK reason code 0x05 (not defined)', raw: Buffer.from([0x40, 3, 0, 1, 5]), version: 5, expected: M },
    { name: 'DISCONNECT reason code 0x8E (a server code)', raw: Buffer.from([0xe0, 1, 0x8e]), version: 5, expected: M },
    { name: 'AUTH with Authentication Method twice', raw: packet(0xf0, [0x19, ...props([0x15, ...str('A'), 0x15, ...str('B')])]), version: 5, expected: P },
  ];
  for (const { name, raw, version, expected } of cases) {
    it(`${name}: ${expected === undefined ? 'accepted' : `0x${expected.toString(16)}`}`, () => {
      const verdict = validatePacket(raw, version);
      assert.equal(verdict?.code, expected, `verdict ${JSON.stringify(verdict)} for ${raw.toString('hex')}`);
    });
  }
});

// ---- random valid packets ----------------------------------------------------------------

/** Strings the spec allows: any code point but U+0000 (fast-check's binary unit never yields lone surrogates). */
const text = (maxLength = 12): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength }).filter((value) => !value.includes('\u0000'));
const nonEmptyText = text().filter((value) => value.length > 0);
const packetId = fc.integer({ min: 1, max: 65_535 });
const bytes = fc.uint8Array({ maxLength: 16 }).map((array) => Buffer.from(array));
const u32 = fc.integer({ min: 0, max: 4_294_967_295 });
const userProperties = fc.dictionary(nonEmptyText, fc.oneof(text(), fc.array(text(), { minLength: 1, maxLength: 3 })), { minKeys: 1, maxKeys: 3 });

function optional<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arbitrary, { nil: undefined });
}

/** Properties object without the undefined entries (mqtt-packet writes what is present). */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}

const publishProperties = fc
  .record({
    payloadFormatIndicator: optional(fc.boolean()),
    messageExpiryInterval: optional(u32),
    topicAlias: optional(fc.integer({ min: 1, max: 65_535 })),
    responseTopic: optional(nonEmptyText),
    correlationData: optional(bytes),
    userProperties: optional(userProperties),
    contentType: optional(text()),
  })
  .map(defined);

function packetsFor(version: 3 | 4 | 5): fc.Arbitrary<Packet> {
  const v5 = version === 5;
  const connectPacket = fc
    .record({
      // mqtt-packet refuses an empty 3.1 client id.
      clientId: version === 3 ? text(23).filter((id) => id.length > 0) : text(23),
      clean: fc.boolean(),
      keepalive: fc.integer({ min: 0, max: 65_535 }),
      username: optional(text()),
      password: optional(bytes),
      will: optional(
        fc.record({
          topic: nonEmptyText,
          payload: bytes,
          qos: fc.constantFrom(0, 1, 2),
          retain: fc.boolean(),
          properties: v5 ? fc.record({ willDelayInterval: optional(u32), payloadFormatIndicator: optional(fc.boolean()), userProperties: optional(userProperties), contentType: optional(text()) }).map(defined) : fc.constant(undefined),
        }),
      ),
      properties: v5
        ? fc
            .record({
              sessionExpiryInterval: optional(u32),
              receiveMaximum: optional(fc.integer({ min: 1, max: 65_535 })),
              maximumPacketSize: optional(fc.integer({ min: 1, max: 4_294_967_295 })),
              topicAliasMaximum: optional(fc.integer({ min: 0, max: 65_535 })),
              requestResponseInformation: optional(fc.boolean()),
              requestProblemInformation: optional(fc.boolean()),
              userProperties: optional(userProperties),
              authenticationMethod: optional(text()),
            })
            .map(defined)
        : fc.constant(undefined),
    })
    .map(({ will, properties, username, password, clean, ...rest }) => ({
      cmd: 'connect' as const,
      protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: version,
      ...rest,
      // mqtt-packet refuses to write an empty client id without a clean session.
      clean: clean || rest.clientId === '',
      // mqtt-packet writes a password only with a user name (5.0 allows one alone: an example above).
      ...(username === undefined ? {} : { username, ...(password === undefined ? {} : { password }) }),
      ...(will === undefined ? {} : { will: defined({ ...will, properties: will.properties }) }),
      ...(properties === undefined ? {} : { properties }),
    }));
  const publish = fc.record({ topic: nonEmptyText, payload: bytes, qos: fc.constantFrom(0, 1, 2), retain: fc.boolean(), dup: fc.boolean(), messageId: packetId, properties: v5 ? publishProperties : fc.constant(undefined) }).map(({ qos, dup, messageId, properties, ...rest }) => ({
    cmd: 'publish' as const,
    ...rest,
    qos: qos as 0 | 1 | 2,
    dup: qos > 0 && dup,
    ...(qos > 0 ? { messageId } : {}),
    ...(properties === undefined ? {} : { properties }),
  }));
  const ack = fc.record({ cmd: fc.constantFrom('puback' as const, 'pubrec' as const, 'pubrel' as const, 'pubcomp' as const), messageId: packetId, withReason: fc.boolean(), reasonString: optional(text()), userProperties: optional(userProperties) }).map(({ cmd, messageId, withReason, reasonString, userProperties: pairs }) => {
    const reasonCode = cmd === 'pubrel' || cmd === 'pubcomp' ? 0x92 : 0x10;
    return { cmd, messageId, ...(v5 && withReason ? { reasonCode, properties: defined({ reasonString, userProperties: pairs }) } : {}) } as Packet;
  });
  const subscribe = fc
    .record({
      messageId: packetId,
      subscriptions: fc.array(fc.record({ topic: nonEmptyText, qos: fc.constantFrom(0, 1, 2), nl: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom(0, 1, 2) }), { minLength: 1, maxLength: 4 }),
      properties: v5 ? fc.record({ subscriptionIdentifier: optional(fc.integer({ min: 1, max: 268_435_455 })), userProperties: optional(userProperties) }).map(defined) : fc.constant(undefined),
    })
    .map(({ subscriptions, properties, messageId }) => ({
      cmd: 'subscribe' as const,
      messageId,
      subscriptions: subscriptions.map(({ topic, qos, nl, rap, rh }) => (v5 ? { topic, qos: qos as 0 | 1 | 2, nl, rap, rh } : { topic, qos: qos as 0 | 1 | 2 })),
      ...(properties === undefined ? {} : { properties }),
    }));
  const unsubscribe = fc.record({ messageId: packetId, unsubscriptions: fc.array(nonEmptyText, { minLength: 1, maxLength: 4 }), properties: v5 ? fc.record({ userProperties: optional(userProperties) }).map(defined) : fc.constant(undefined) }).map(({ properties, ...rest }) => ({
    cmd: 'unsubscribe' as const,
    ...rest,
    ...(properties === undefined ? {} : { properties }),
  }));
  const simple = fc.constantFrom<Packet>({ cmd: 'pingreq' }, { cmd: 'disconnect' });
  const disconnect5 = fc.record({ reasonCode: fc.constantFrom(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99), properties: fc.record({ sessionExpiryInterval: optional(u32), reasonString: optional(text()), userProperties: optional(userProperties) }).map(defined) }).map((fields) => ({ cmd: 'disconnect' as const, ...fields }));
  const auth5 = fc.record({ reasonCode: fc.constantFrom(0x00, 0x18, 0x19), properties: fc.record({ authenticationMethod: text(), authenticationData: optional(bytes), reasonString: optional(text()), userProperties: optional(userProperties) }).map(defined) }).map((fields) => ({ cmd: 'auth' as const, ...fields }));
  const all: Array<fc.Arbitrary<Packet>> = [connectPacket as fc.Arbitrary<Packet>, publish as fc.Arbitrary<Packet>, ack, subscribe as fc.Arbitrary<Packet>, unsubscribe as fc.Arbitrary<Packet>, simple];
  if (v5) all.push(disconnect5 as fc.Arbitrary<Packet>, auth5 as fc.Arbitrary<Packet>);
  return fc.oneof(...all);
}

describe('properties', () => {
  for (const version of [3, 4, 5] as const) {
    it(`no false refusals: every packet mqtt-packet generates from valid fields is accepted (level ${version})`, () => {
      fc.assert(
        fc.property(packetsFor(version), (generated) => {
          const raw = mqttPacket.generate(generated, { protocolVersion: version });
          const verdict = validatePacket(raw, version);
          assert.equal(verdict, undefined, `${JSON.stringify(verdict)} for ${generated.cmd} ${raw.toString('hex')}`);
        }),
        { numRuns: 400 },
      );
    });
  }

  it('never throws on random bytes or on valid packets with bytes changed, cut or added', () => {
    const mutated = fc.constantFrom(3, 4, 5).chain((version) =>
      fc.tuple(
        fc.constant(version),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array)),
          fc
            .tuple(packetsFor(version as 3 | 4 | 5), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')), { minLength: 1, maxLength: 4 }))
            .map(([generated, edits]) => {
              let raw = Buffer.from(mqttPacket.generate(generated, { protocolVersion: version as 3 | 4 | 5 }));
              for (const [position, byte, edit] of edits) {
                const at = position % Math.max(1, raw.length);
                if (edit === 'set') raw[at] = byte;
                else if (edit === 'cut') raw = raw.subarray(0, at);
                else raw = Buffer.concat([raw.subarray(0, at), Buffer.from([byte]), raw.subarray(at)]);
              }
              return raw;
            }),
        ),
      ),
    );
    fc.assert(
      fc.property(mutated, ([version, raw]) => {
        const verdict = validatePacket(raw, version);
        if (verdict !== undefined) assert.ok(verdict.code === MALFORMED_PACKET || verdict.code === PROTOCOL_ERROR);
        publishUserProperties(raw);
        willUserProperties(raw);
        hasAuthenticationMethod(raw);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('User Properties in the order sent', () => {
  it('a PUBLISH: (k1,v1), (k2,v2), (k1,v3) stay in that order, duplicates kept', () => {
    const raw = publish5([0x26, ...str('k1'), ...str('v1'), 0x01, 1, 0x26, ...str('k2'), ...str('v2'), 0x26, ...str('k1'), ...str('v3')]);
    const collected: Collected = {};
    assert.equal(validatePacket(raw, 5, collected), undefined);
    const expected = [
      ['k1', 'v1'],
      ['k2', 'v2'],
      ['k1', 'v3'],
    ];
    assert.deepEqual(collected.userProperties, expected, 'read during validation');
    assert.deepEqual(publishUserProperties(raw), expected);
  });

  it('a QoS 0 PUBLISH without user properties has none', () => {
    assert.equal(publishUserProperties(packet(0x30, [...str('a'), ...props([0x01, 1]), 0x78])), undefined);
  });

  it("a CONNECT's will, not the CONNECT's own user properties", () => {
    const raw = connect(5, { flags: 0x06, properties: [0x26, ...str('c'), ...str('x')], willProperties: [0x26, ...str('b'), ...str('1'), 0x26, ...str('a'), ...str('2'), 0x26, ...str('b'), ...str('3')] });
    const collected: Collected = {};
    assert.equal(validatePacket(raw, 5, collected), undefined);
    assert.deepEqual(collected.userProperties, willUserProperties(raw), 'read during validation');
    assert.deepEqual(willUserProperties(raw), [
      ['b', '1'],
      ['a', '2'],
      ['b', '3'],
    ]);
    assert.equal(willUserProperties(connect(5, { properties: [0x26, ...str('c'), ...str('x')] })), undefined);
  });

  it('AUTH: the short form and an AUTH without a method have no Authentication Method', () => {
    assert.equal(hasAuthenticationMethod(Buffer.from([0xf0, 0])), false);
    assert.equal(hasAuthenticationMethod(packet(0xf0, [0x19, ...props([0x1f, ...str('r')])])), false);
    assert.equal(hasAuthenticationMethod(packet(0xf0, [0x19, ...props([0x1f, ...str('r'), 0x15, ...str('SCRAM-SHA-256')])])), true);
  });
});
