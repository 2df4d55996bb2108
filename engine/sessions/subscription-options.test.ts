// The neutral subscription options and the layout `$sessions` keeps them in (release 0.1.0's,
// MQTT's names and numbers): records and snapshots written before the split read the same.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { SessionTable, sessionTableCodec, subscriptionRecord } from './session-events.js';
import { loadSubscription, sendsRetained, storedSubscription, type SubscriptionOptions } from './subscription-options.js';

const optionsArb: fc.Arbitrary<SubscriptionOptions> = fc.record(
  {
    qos: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
    noLocal: fc.boolean(),
    keepRetainFlag: fc.boolean(),
    sendRetained: fc.constantFrom('always' as const, 'if-new' as const, 'never' as const),
    subscriptionId: fc.integer({ min: 1, max: 268_435_455 }),
  },
  { requiredKeys: ['qos', 'noLocal', 'keepRetainFlag', 'sendRetained'], noNullPrototype: true },
);

it('a subscription record written before the split loads as the neutral options', () => {
  const table = new SessionTable();
  const old = { qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 7 };
  table.apply({ key: Buffer.from('u:c\u0000a/#'), value: Buffer.from(JSON.stringify(old)) });
  assert.deepEqual(table.sessions.get('c')?.subscriptions.get('a/#'), { qos: 1, noLocal: true, keepRetainFlag: true, sendRetained: 'if-new', subscriptionId: 7 });
});

it('a subscription record is written in the release 0.1.0 layout', () => {
  const record = subscriptionRecord('c', 't', { qos: 2, noLocal: false, keepRetainFlag: true, sendRetained: 'never' });
  assert.deepEqual(JSON.parse(String(record.value)), { qos: 2, noLocal: false, retainAsPublished: true, retainHandling: 2 });
});

it('options survive the stored layout, a record and a snapshot unchanged', () => {
  fc.assert(
    fc.property(optionsArb, (options) => {
      assert.deepEqual(loadSubscription(storedSubscription(options)), options);
      const table = new SessionTable();
      table.apply(subscriptionRecord('c', 'f', options));
      assert.deepEqual(table.sessions.get('c')?.subscriptions.get('f'), options);
      const decoded = sessionTableCodec.decode(sessionTableCodec.encode(table));
      assert.deepEqual(decoded.sessions.get('c')?.subscriptions.get('f'), options);
    }),
  );
});

it('sendsRetained: always on every subscribe, if-new on a new subscription only, never never', () => {
  const with_ = (sendRetained: SubscriptionOptions['sendRetained']): SubscriptionOptions => ({ qos: 1, noLocal: false, keepRetainFlag: false, sendRetained });
  assert.deepEqual([sendsRetained(with_('always'), true), sendsRetained(with_('always'), false)], [true, true]);
  assert.deepEqual([sendsRetained(with_('if-new'), true), sendsRetained(with_('if-new'), false)], [true, false]);
  assert.deepEqual([sendsRetained(with_('never'), true), sendsRetained(with_('never'), false)], [false, false]);
});
