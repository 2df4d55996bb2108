// Goal: an operator's value for a placement setting is stored as what the controller and the
// stores read it as, and a value they could not use (which they would take for the default) is
// refused with a message. Method: each setting's parse and describe, case by case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGraceMs, replaceAfterMs, replicationFactor } from './controller-core.js';
import { placementSetting } from './placement-settings.js';

test('replication.replace-after-ms: milliseconds, a unit, or off; anything else refused', () => {
  const spec = placementSetting('replication.replace-after-ms');
  assert.ok(spec !== undefined);
  const cases: [unknown, unknown][] = [[1, 1], [600_000, 600_000], ['250', 250], ['90s', 90_000], ['10m', 600_000], ['2h', 7_200_000], ['15ms', 15], [0, 'never'], ['0', 'never'], ['never', 'never']];
  for (const [raw, stored] of cases) {
    assert.deepEqual(spec.parse(raw as never), { value: stored }, JSON.stringify(raw));
    // What the controller reads back is what was meant.
    assert.equal(replaceAfterMs(stored), stored === 'never' ? Infinity : stored);
  }
  for (const raw of [-1, 1.5, 'soon', '10d', '', '1e3', 'Never', null, true, [1], Number.MAX_SAFE_INTEGER + 1]) assert.ok('error' in spec.parse(raw as never), JSON.stringify(raw));
  assert.equal(spec.describe(undefined), 'a journal node gone 10 m is replaced');
  assert.equal(spec.describe(1_500), 'a journal node gone 1500 ms is replaced');
  assert.equal(spec.describe('never'), 'journal nodes are never replaced automatically');
});

test('replication.factor: an integer from 1 to 5', () => {
  const spec = placementSetting('replication.factor');
  assert.ok(spec !== undefined);
  for (const raw of [1, 3, 5, '2']) assert.equal(replicationFactor((spec.parse(raw as never) as { value: unknown }).value), Number(raw));
  for (const raw of [0, 6, 2.5, 'three', null]) assert.ok('error' in spec.parse(raw as never), JSON.stringify(raw));
  assert.equal(placementSetting('replication.speed'), undefined);
});

test('replication.create-grace-ms: milliseconds (0 creates at once) or with a unit; anything else refused', () => {
  const spec = placementSetting('replication.create-grace-ms');
  assert.ok(spec !== undefined);
  for (const [raw, stored] of [[0, 0], ['0', 0], [500, 500], ['500ms', 500], ['10s', 10_000]] as const) {
    assert.deepEqual(spec.parse(raw), { value: stored }, JSON.stringify(raw));
    assert.equal(createGraceMs(stored), stored);
  }
  for (const raw of [-1, 1.5, 'soon', 'never', '', null, true]) assert.ok('error' in spec.parse(raw as never), JSON.stringify(raw));
  assert.equal(spec.describe(undefined), 'a missing replica of a shard is created after 10 s');
  assert.equal(spec.describe(0), 'a missing replica of a shard is created after 0 s');
});
