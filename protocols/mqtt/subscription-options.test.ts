// MQTT SUBSCRIBE options onto the engine's neutral ones and back (the admin API shows MQTT's).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mqttSubscriptionOptions, subscriptionOptionsOf } from './subscription-options.js';

it('5.0 options map onto the neutral ones and back', () => {
  for (const rh of [0, 1, 2] as const) {
    const options = subscriptionOptionsOf({ topic: 't', qos: 1, nl: true, rap: true, rh }, true, 9);
    assert.deepEqual(options, { qos: 1, noLocal: true, keepRetainFlag: true, sendRetained: (['always', 'if-new', 'never'] as const)[rh], subscriptionId: 9 });
    assert.deepEqual(mqttSubscriptionOptions(options), { qos: 1, noLocal: true, retainAsPublished: true, retainHandling: rh, subscriptionId: 9 });
  }
});

it('3.1.1 has none of the 5.0 options: their defaults, whatever the packet carries', () => {
  assert.deepEqual(subscriptionOptionsOf({ topic: 't', qos: 2, nl: true, rap: true, rh: 2 }, false, undefined), { qos: 2, noLocal: false, keepRetainFlag: false, sendRetained: 'always' });
});
