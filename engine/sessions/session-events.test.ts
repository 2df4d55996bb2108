// A will's user properties in `$sessions` records: ordered pairs now; records written before
// (an object of name to value(s)) still load.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { metaRecord, SessionTable } from './session-events.js';

it("a will's user properties keep their order through a $sessions record", () => {
  const userProperties: Array<[string, string]> = [
    ['b', '1'],
    ['a', '2'],
    ['b', '3'],
  ];
  const table = new SessionTable();
  table.apply(metaRecord('c', { expirySeconds: 60, connected: true, protocolVersion: 5, will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false, delaySeconds: 5, properties: { userProperties } } }));
  assert.deepEqual(table.sessions.get('c')?.meta.will?.properties?.userProperties, userProperties);
});

it('a will recorded with user properties as an object loads as pairs grouped by name', () => {
  const old = { expirySeconds: 60, connected: true, protocolVersion: 5, will: { topic: 'w', payload: Buffer.from('bye').toString('base64'), qos: 1, retain: false, delaySeconds: 5, properties: { userProperties: { b: ['1', '3'], a: '2' } } } };
  const table = new SessionTable();
  table.apply({ key: Buffer.from('s:c'), value: Buffer.from(JSON.stringify(old)) });
  assert.deepEqual(table.sessions.get('c')?.meta.will?.properties?.userProperties, [
    ['b', '1'],
    ['b', '3'],
    ['a', '2'],
  ]);
});
