// Goal: every subject maps to exactly one shard of its namespace, the same one in every version
// (the shard holds the subject's history), and shard names parse back to their parts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../base/index.js';
import { formatShardName, MqttShardMap, mqttShardCount, parseShardName } from './index.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

describe('shard map', () => {
  test('every MQTT topic maps to one data shard, the same for every map of that size, whose name parses back (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1024 }), fc.string({ maxLength: 40, unit: 'grapheme' }), (count, topic) => {
        const map = new MqttShardMap(count);
        const shard = map.shardOf(topic);
        assert.ok(Number.isInteger(shard) && shard >= 0 && shard < count, `shard ${shard} of ${count}`);
        assert.equal(new MqttShardMap(count).shardOf(topic), shard);
        assert.deepEqual(parseShardName(map.names[shard] as string), { namespace: 'mqtt', index: shard });
      }),
      { numRuns: numRuns(300), ...replay },
    );
  });

  test('a name parses back only when it is the name of its parts (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 12 }), fc.nat().map((n) => `mqtt.${n}`), fc.stringMatching(/^mqtt\.[0-9]{0,4}$/)), (name) => {
        const parts = parseShardName(name);
        if (parts !== undefined) assert.equal(formatShardName(parts), name);
      }),
      { numRuns: numRuns(300), ...replay },
    );
  });

  test('the topic-to-shard rule is pinned (a change would look for history in the wrong shard)', () => {
    const eight = new MqttShardMap(8);
    assert.deepEqual(
      ['sensors/1/temp', 'a', '', 'fx/v5/status'].map((topic) => eight.shardOf(topic)),
      [3, 4, 5, 4],
    );
    assert.deepEqual(new MqttShardMap(3).names, ['mqtt.0', 'mqtt.1', 'mqtt.2']);
  });

  test('system shards and other names are not MQTT data shards', () => {
    for (const name of ['$sessions', '$retained', 'mqtt.', 'mqtt.x', 'mqtt.01', 'mqtt.-1', 'orders', 'mqtt.1.2']) assert.equal(parseShardName(name), undefined, name);
    assert.equal(mqttShardCount(['$sessions', 'mqtt.0', 'mqtt.1', 'mqtt.x', 'orders', 'mqtt.2']), 3);
    assert.equal(mqttShardCount(['$sessions']), 0);
  });

  test('a map of no shards, or of part of one, is refused with a coded error', () => {
    for (const count of [0, -1, 1.5, Number.NaN])
      assert.throws(
        () => new MqttShardMap(count),
        (error: unknown) => isShardlineError(error, 'SL_SHARD_MAP_INVALID_COUNT'),
      );
  });
});
