import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { messageToRecord, type Message, type MessageProperties } from '../../../engine/index.js';
import type { JournalRecord } from '../../../journal/index.js';
import { numRuns, replay } from '../../../tests/support/fast-check.js';
import type { KafkaRecord } from '../codec/index.js';
import { DEFAULT_PRODUCED_QOS, kafkaRecordToMqtt, MqttHeader, mqttRecordToKafka } from './mqtt-records.js';

function stored(message: Message, offset = 7): JournalRecord {
  const input = messageToRecord(message);
  return { offset, timestamp: message.timestamp, key: input.key ?? null, value: input.value ?? null, headers: input.headers ?? [], epoch: 0 };
}

function asProduced(record: { key: Buffer | null; value: Buffer | null; headers: KafkaRecord['headers'] }): KafkaRecord {
  return { attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: record.key, value: record.value, headers: record.headers };
}

const level = fc.stringMatching(/^[a-z0-9 _-]{0,6}$/);
const topicName = fc.array(level, { minLength: 1, maxLength: 4 }).map((levels) => levels.join('/')).filter((topic) => topic.length > 0);
const text = fc.string({ maxLength: 12 }).filter((value) => !value.includes('\u0000'));
const properties: fc.Arbitrary<MessageProperties | undefined> = fc.option(
  fc.record(
    {
      contentType: text,
      responseTopic: topicName,
      correlationData: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
      messageExpiryInterval: fc.integer({ min: 0, max: 0xffffffff }),
      payloadFormatIndicator: fc.constant(false),
      // Names outside the mqtt.* headers: those would be read as the MQTT fields.
      userProperties: fc.array(fc.tuple(text.filter((name) => !name.startsWith('mqtt.')), text), { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
).map((chosen) => (chosen === undefined || Object.keys(chosen).length === 0 ? undefined : chosen));

const message: fc.Arbitrary<Message> = fc.record({
  topic: topicName,
  payload: fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
  qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
  retain: fc.boolean(),
  publisherId: fc.constant('kafka:p'),
  timestamp: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  properties,
});

test('an MQTT message read as a Kafka record and produced back is the same message', () => {
  fc.assert(
    fc.property(message, (original) => {
      const read = mqttRecordToKafka(stored(original));
      assert.ok(read !== undefined);
      assert.equal(read.topic, original.topic);
      assert.equal(read.record.key?.toString(), original.topic);
      assert.equal(read.record.offset, 7);
      const back = kafkaRecordToMqtt(asProduced(read.record), 'kafka:p', original.timestamp);
      assert.ok(back.ok, back.ok ? '' : back.reason);
      // fast-check's records have no prototype; deepStrictEqual compares prototypes.
      assert.deepEqual(back.message, { ...original, properties: original.properties === undefined ? undefined : { ...original.properties } });
    }),
    { ...replay, numRuns: numRuns(300) },
  );
});

test('reading shows MQTT fields as mqtt.* headers and user properties under their own names', () => {
  const read = mqttRecordToKafka(stored({ topic: 'a/b', payload: Buffer.from('hi'), qos: 2, retain: true, publisherId: 'dev-1', timestamp: 1_700_000_000_000, properties: { contentType: 'text/plain', userProperties: [['unit', 'C'], ['unit', 'F']] } }));
  assert.ok(read !== undefined);
  assert.deepEqual(read.record.headers.map((h) => [h.key, h.value?.toString()]), [
    [MqttHeader.qos, '2'],
    [MqttHeader.retain, 'true'],
    [MqttHeader.publisher, 'dev-1'],
    [MqttHeader.contentType, 'text/plain'],
    ['unit', 'C'],
    ['unit', 'F'],
  ]);
  assert.equal(mqttRecordToKafka({ offset: 1, timestamp: 1, key: null, value: Buffer.from('x'), headers: [], epoch: 0 }), undefined, 'a record that is no message');
});

test('producing: defaults, and every malformed record refused with a reason', () => {
  const header = (key: string, value: string | null): KafkaRecord['headers'][number] => ({ key, value: value === null ? null : Buffer.from(value) });
  const produce = (key: string | Buffer | null, headers: KafkaRecord['headers'] = [], value: Buffer | null = Buffer.from('v')) =>
    kafkaRecordToMqtt(asProduced({ key: typeof key === 'string' ? Buffer.from(key) : key, value, headers }), 'kafka:c', 5);

  const plain = produce('sensors/1');
  assert.ok(plain.ok);
  assert.deepEqual(plain.message, { topic: 'sensors/1', payload: Buffer.from('v'), qos: DEFAULT_PRODUCED_QOS, retain: false, publisherId: 'kafka:c', timestamp: 5, properties: undefined });
  const empty = produce('t', [], null);
  assert.ok(empty.ok && empty.message.payload.length === 0, 'a null value is an empty payload');
  const claimed = produce('t', [header(MqttHeader.publisher, 'someone-else'), header(MqttHeader.qos, '0'), header(MqttHeader.qos, '2'), header('x', null)]);
  assert.ok(claimed.ok);
  assert.equal(claimed.message.publisherId, 'kafka:c', 'a producer cannot claim another publisher');
  assert.equal(claimed.message.qos, 0, 'the first mqtt.qos decides');
  assert.deepEqual(claimed.message.properties?.userProperties, [[MqttHeader.qos, '2'], ['x', '']], 'a repeated field header and a null header are user properties');

  const refusals: Array<[ReturnType<typeof produce>, RegExp]> = [
    [produce(null), /needs a key/],
    [produce(Buffer.from([0xc3, 0x28])), /not valid UTF-8/],
    [produce(''), /at least one character|empty/],
    [produce('a/+/b'), /wildcard/],
    [produce('$SYS/x'), /\$ namespace/],
    [produce('t', [header(MqttHeader.qos, '3')]), /must be 0, 1 or 2/],
    [produce('t', [header(MqttHeader.retain, 'yes')]), /true or false/],
    [produce('t', [header(MqttHeader.messageExpiryInterval, '-1')]), /whole seconds/],
    [produce('t', [header(MqttHeader.responseTopic, 'a/#')]), /wildcard/],
    [produce('t', [header(MqttHeader.payloadFormatIndicator, '1')], Buffer.from([0xff])), /not valid UTF-8/],
    [produce('t', [{ key: MqttHeader.contentType, value: Buffer.from([0xff]) }]), /not valid UTF-8/],
  ];
  for (const [outcome, reason] of refusals) {
    assert.ok(!outcome.ok, `refused: ${String(reason)}`);
    assert.match(outcome.reason, reason);
  }
});
