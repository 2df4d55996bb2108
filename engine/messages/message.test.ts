// User properties in journal records: kept as ordered pairs (MQTT-3.3.2-18), and records written
// before that, which hold them as an object of name to value(s), still read.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { JournalRecord } from '../../journal/index.js';
import { messageToRecord, recordToMessage, type Message } from './message.js';

function asStored(message: Message): JournalRecord {
  const input = messageToRecord(message);
  return { offset: 0, epoch: 0, timestamp: input.timestamp ?? 0, key: input.key ?? null, value: input.value ?? null, headers: input.headers ?? [] };
}

const base: Message = { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, publisherId: 'p', timestamp: 1_000, properties: undefined };

it('user properties round-trip through a record in order, duplicates kept', () => {
  const userProperties: Array<[string, string]> = [
    ['k1', 'v1'],
    ['k2', 'v2'],
    ['k1', 'v3'],
  ];
  const message = recordToMessage(asStored({ ...base, properties: { contentType: 'text/plain', userProperties, correlationData: Buffer.from([1, 2]) } }));
  assert.deepEqual(message?.properties, { contentType: 'text/plain', userProperties, correlationData: Buffer.from([1, 2]) });
});

it('a record written before the order was kept (user properties as an object) reads as pairs grouped by name', () => {
  const old = JSON.stringify({ payloadFormatIndicator: true, userProperties: { k1: ['v1', 'v3'], k2: 'v2' }, correlationData: Buffer.from('c').toString('base64') });
  const record: JournalRecord = {
    offset: 0,
    epoch: 0,
    timestamp: 1_000,
    key: Buffer.from('t'),
    value: Buffer.from('x'),
    headers: [
      { key: 'pub', value: Buffer.from([1]) },
      { key: 'from', value: Buffer.from('p') },
      { key: 'props', value: Buffer.from(old) },
    ],
  };
  assert.deepEqual(recordToMessage(record)?.properties, {
    payloadFormatIndicator: true,
    userProperties: [
      ['k1', 'v1'],
      ['k1', 'v3'],
      ['k2', 'v2'],
    ],
    correlationData: Buffer.from('c'),
  });
});
