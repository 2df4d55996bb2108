// Goal: the record envelope reads back exactly what it wrote, and reads a record of release 0.1.0
// as the same message 0.1.0 read from it, so a data directory written by that release serves the
// same messages after an upgrade. The 0.1.0 writer and reader below are that release's
// engine/messages/message.ts (commit e8ce08f), reduced to what the layout needs: the oracle.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { isShardlineError } from '../../base/index.js';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION, type RecordEnvelope } from './envelope.js';
import { publishKeyOf, messageToRecord, recordToMessage, type Message, type MessageProperties, type QoS } from './message.js';
import { numRuns, replay } from '../../tests/support/fast-check.js';

function stored(input: RecordInput, offset = 0): JournalRecord {
  return { offset, epoch: 0, timestamp: input.timestamp ?? 0, key: input.key ?? null, value: input.value, headers: input.headers ?? [] };
}

/** Bytes the record takes in a batch (docs/journal-format.md, "Record batch"). */
function recordBytes(input: RecordInput): number {
  let bytes = 4 + 4 + 8 + 4 + (input.key?.length ?? 0) + 4 + (input.value?.length ?? 0) + 2;
  for (const header of input.headers ?? []) bytes += 2 + Buffer.byteLength(header.key) + 4 + header.value.length;
  return bytes;
}

/** Drops properties that are undefined, so objects compare by what they hold. */
function defined<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([k, v]) => [k, defined(v)])) as T;
}

// --- release 0.1.0's layout: key = topic; headers pub (flags), from, props (JSON), q2 ---

function releaseRecord(message: Message, inboundPacketId?: number): RecordInput {
  const headers = [
    { key: 'pub', value: Buffer.from([message.qos | (message.retain ? 4 : 0)]) },
    { key: 'from', value: Buffer.from(message.publisherId) },
  ];
  const properties = message.properties;
  if (properties !== undefined && Object.values(properties).some((value) => value !== undefined)) {
    const json = { ...properties, correlationData: properties.correlationData?.toString('base64') };
    headers.push({ key: 'props', value: Buffer.from(JSON.stringify(json)) });
  }
  if (inboundPacketId !== undefined) {
    const value = Buffer.alloc(2);
    value.writeUInt16BE(inboundPacketId);
    headers.push({ key: 'q2', value });
  }
  return { key: Buffer.from(message.topic), value: message.payload, headers, timestamp: message.timestamp };
}

function releaseMessage(record: JournalRecord): Message {
  let flags = 0;
  let publisherId = '';
  let properties: MessageProperties | undefined;
  for (const header of record.headers) {
    if (header.key === 'pub') flags = header.value[0] ?? 0;
    else if (header.key === 'from') publisherId = header.value.toString('utf8');
    else if (header.key === 'props') {
      const { correlationData, ...rest } = JSON.parse(header.value.toString('utf8')) as Omit<MessageProperties, 'correlationData'> & { correlationData?: string };
      properties = correlationData === undefined ? rest : { ...rest, correlationData: Buffer.from(correlationData, 'base64') };
    }
  }
  return { topic: (record.key as Buffer).toString('utf8'), payload: record.value ?? Buffer.alloc(0), qos: (flags & 3) as QoS, retain: (flags & 4) !== 0, publisherId, timestamp: record.timestamp, properties };
}

// --- generators ---

const text = fc.string({ maxLength: 12, unit: 'grapheme' });
const userProperties = fc.array(fc.tuple(text, text), { maxLength: 4 });
const properties: fc.Arbitrary<MessageProperties> = fc.record(
  {
    payloadFormatIndicator: fc.boolean(),
    messageExpiryInterval: fc.integer({ min: 0, max: 0xffffffff }),
    contentType: text,
    responseTopic: text,
    correlationData: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
    userProperties,
  },
  { requiredKeys: [] },
);
const message: fc.Arbitrary<Message> = fc.record({
  topic: fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' }),
  payload: fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
  qos: fc.constantFrom<QoS>(0, 1, 2),
  retain: fc.boolean(),
  publisherId: text,
  timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  properties: fc.option(properties, { nil: undefined }),
});
const envelope: fc.Arbitrary<RecordEnvelope> = fc.record(
  {
    subject: fc.string({ maxLength: 20, unit: 'grapheme' }),
    key: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
    value: fc.option(
      fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
      { nil: null },
    ),
    headers: fc.record({ contentType: text, userProperties, timeToLiveMs: fc.integer({ min: 0, max: 2 ** 48 - 1 }), correlation: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)) }, { requiredKeys: [] }),
    timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
    producer: fc.record({ id: fc.maxSafeNat(), sequence: fc.integer({ min: 0, max: 0xffffffff }) }),
    mqtt: fc.record(
      {
        qos: fc.constantFrom<QoS>(0, 1, 2),
        retain: fc.boolean(),
        publisherId: text,
        payloadFormatIndicator: fc.boolean(),
        responseTopic: text,
        inboundPacketId: fc.integer({ min: 1, max: 0xffff }),
      },
      { requiredKeys: ['qos', 'retain', 'publisherId'] },
    ),
  },
  { requiredKeys: ['subject', 'value', 'headers', 'timestamp'] },
);

/** A message as it reads back: properties that hold nothing are no properties. */
function normalized(message: Message): Message {
  const properties = message.properties === undefined ? undefined : defined(message.properties);
  return { ...message, properties: properties === undefined || Object.keys(properties).length === 0 ? undefined : properties };
}

describe('record envelope', () => {
  test('every envelope reads back as written (property)', () => {
    fc.assert(
      fc.property(envelope, (written) => {
        assert.deepEqual(defined(decodeEnvelope(stored(encodeEnvelope(written)))), defined(written));
      }),
      { numRuns: numRuns(300), ...replay },
    );
  });

  test('every message reads back as written, with its inbound QoS 2 packet id (property)', () => {
    fc.assert(
      fc.property(message, fc.option(fc.integer({ min: 1, max: 0xffff }), { nil: undefined }), (written, inboundPacketId) => {
        const record = stored(messageToRecord(written, { publishKey: inboundPacketId }));
        assert.deepEqual(recordToMessage(record), normalized(written));
        assert.deepEqual(publishKeyOf(record), inboundPacketId === undefined ? undefined : { publisherId: written.publisherId, key: inboundPacketId });
      }),
      { numRuns: numRuns(300), ...replay },
    );
  });

  test('a record of release 0.1.0 reads as the message that release read from it (property)', () => {
    fc.assert(
      fc.property(message, fc.option(fc.integer({ min: 1, max: 0xffff }), { nil: undefined }), (written, inboundPacketId) => {
        const record = stored(releaseRecord(written, inboundPacketId));
        assert.deepEqual(recordToMessage(record), normalized(releaseMessage(record)));
        assert.deepEqual(publishKeyOf(record), inboundPacketId === undefined ? undefined : { publisherId: written.publisherId, key: inboundPacketId });
      }),
      { numRuns: numRuns(300), ...replay },
    );
  });

  test('a message without properties is the key, the value and two headers, no larger than release 0.1.0 wrote it', () => {
    const plain: Message = { topic: 'sensors/7/temp', payload: Buffer.from('21.5'), qos: 1, retain: true, publisherId: 'device-7', timestamp: 1_000, properties: undefined };
    const record = messageToRecord(plain);
    assert.deepEqual(record.key, Buffer.from('sensors/7/temp'));
    assert.deepEqual(
      record.headers?.map((header) => header.key),
      ['v', 'mqtt'],
    );
    assert.deepEqual(record.headers?.[0]?.value, Buffer.from([ENVELOPE_VERSION]));
    assert.deepEqual(record.headers?.[1]?.value, Buffer.concat([Buffer.from([1 | 4]), Buffer.from('device-7')]));
    assert.ok(recordBytes(record) <= recordBytes(releaseRecord(plain)), `${recordBytes(record)} > ${recordBytes(releaseRecord(plain))} bytes`);
  });

  test('an application key is the record key and the subject moves to a header', () => {
    const record = encodeEnvelope({ subject: 'orders', key: Buffer.from('order-17'), value: Buffer.from('{}'), headers: {}, timestamp: 5 });
    assert.deepEqual(record.key, Buffer.from('order-17'));
    assert.deepEqual(
      record.headers?.find((header) => header.key === 'subj')?.value,
      Buffer.from('orders'),
    );
    const read = decodeEnvelope(stored(record));
    assert.equal(read?.subject, 'orders');
    assert.equal(read?.mqtt, undefined, 'a record without the mqtt namespace has no MQTT properties');
    assert.deepEqual(recordToMessage(stored(record)), { topic: 'orders', payload: Buffer.from('{}'), qos: 0, retain: false, publisherId: '', timestamp: 5, properties: undefined });
  });

  test('a record without a key is not an envelope; headers a later version adds are skipped', () => {
    assert.equal(decodeEnvelope({ offset: 0, epoch: 0, timestamp: 0, key: null, value: Buffer.from('x'), headers: [] }), undefined);
    const record = stored(encodeEnvelope({ subject: 't', value: Buffer.from('x'), headers: {}, timestamp: 1, mqtt: { qos: 2, retain: false, publisherId: 'p' } }));
    record.headers.push({ key: 'later', value: Buffer.from([9, 9]) });
    assert.equal(recordToMessage(record)?.qos, 2);
  });

  test('a newer version and malformed headers are refused with coded errors', () => {
    const base = stored(encodeEnvelope({ subject: 't', value: Buffer.from('x'), headers: {}, timestamp: 1, mqtt: { qos: 1, retain: false, publisherId: 'p' } }));
    const withHeader = (key: string, value: Buffer): JournalRecord => ({ ...base, headers: [...base.headers.filter((header) => header.key !== key), { key, value }] });
    const refusal = (record: JournalRecord, code: string) => () =>
      assert.throws(
        () => decodeEnvelope(record),
        (error: unknown) => isShardlineError(error, code),
      );
    refusal(withHeader('v', Buffer.from([2])), 'SL_ENVELOPE_UNSUPPORTED_VERSION')();
    refusal(withHeader('mqtt', Buffer.from([3])), 'SL_ENVELOPE_MALFORMED')();
    refusal(withHeader('mqtt', Buffer.alloc(0)), 'SL_ENVELOPE_MALFORMED')();
    refusal(withHeader('ttl', Buffer.alloc(4)), 'SL_ENVELOPE_MALFORMED')();
    refusal(withHeader('up', Buffer.from([0, 0, 0, 200, 0, 0, 0, 1])), 'SL_ENVELOPE_MALFORMED')();
    refusal(withHeader('prod', Buffer.alloc(11)), 'SL_ENVELOPE_MALFORMED')();
    refusal(withHeader('props', Buffer.from('{not json')), 'SL_ENVELOPE_MALFORMED')();
    assert.throws(
      () => encodeEnvelope({ subject: 't', value: null, headers: { timeToLiveMs: 2 ** 48 }, timestamp: 1 }),
      (error: unknown) => isShardlineError(error, 'SL_ENVELOPE_MALFORMED'),
    );
  });
});
