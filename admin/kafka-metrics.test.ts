// The Kafka consumer-group metrics (metrics.ts), rendered from a node-shaped source of groups:
// groups per state (every state present, zeros included), one lag series per partition with a
// known lag, the cap on lag series with the omitted count, and nothing left of a group once it
// is gone (read at scrape time). tests/kafka-ops.test.ts checks the same series on a real node.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GroupDetail, GroupSummary } from '../protocols/kafka/index.js';
import { createMetrics, KAFKA_LAG_SERIES_MAX } from './metrics.js';

function group(groupId: string, partitions: number, lag: (partition: number) => number | null): GroupDetail {
  return {
    groupId, groupState: 'Empty', protocolType: 'consumer', protocolName: 'range', generation: 1, memberCount: 0, members: [], totalLag: 0,
    partitions: Array.from({ length: partitions }, (_, partition) => ({ topic: 't', partition, committedOffset: 0, logEndOffset: lag(partition), lag: lag(partition), memberId: null })),
  };
}

function source(groups: GroupDetail[], failing = false): { kafka: { onRequest: () => () => void; connectionCount: number; consumerGroups: () => GroupSummary[]; consumerGroupDetails: () => Promise<GroupDetail[]> } } {
  return {
    kafka: {
      onRequest: () => () => undefined,
      connectionCount: 0,
      consumerGroups: () => groups.map(({ members: _m, partitions: _p, totalLag: _t, ...summary }) => summary),
      consumerGroupDetails: async () => {
        if (failing) throw new Error('journal unreachable');
        return groups;
      },
    },
  };
}

function lines(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

test('groups per state, lag per partition, and nothing left once a group is gone', async () => {
  const groups = [group('a', 2, (p) => (p === 0 ? 5 : null)), { ...group('b', 1, () => 3), groupState: 'Stable' as const, memberCount: 1 }];
  const metrics = createMetrics({ node: 'n', ...source(groups) });
  let text = await metrics.render();
  assert.match(text, /shardline_kafka_consumer_groups\{state="Empty",node="n"\} 1\n/);
  assert.match(text, /shardline_kafka_consumer_groups\{state="Stable",node="n"\} 1\n/);
  assert.match(text, /shardline_kafka_consumer_groups\{state="PreparingRebalance",node="n"\} 0\n/);
  assert.deepEqual(lines(text, 'shardline_kafka_consumer_group_lag'), [
    'shardline_kafka_consumer_group_lag{group="a",topic="t",partition="0",node="n"} 5',
    'shardline_kafka_consumer_group_lag{group="b",topic="t",partition="0",node="n"} 3',
  ], 'a partition without a known lag has no series');
  groups.shift();
  text = await metrics.render();
  assert.deepEqual(lines(text, 'shardline_kafka_consumer_group_lag'), ['shardline_kafka_consumer_group_lag{group="b",topic="t",partition="0",node="n"} 3']);
  assert.match(text, /shardline_kafka_consumer_groups\{state="Empty",node="n"\} 0\n/);
});

test('lag series are capped per scrape and the rest counted', async () => {
  const metrics = createMetrics({ node: 'n', ...source([group('big', KAFKA_LAG_SERIES_MAX + 7, () => 1)]) });
  const text = await metrics.render();
  assert.equal(lines(text, 'shardline_kafka_consumer_group_lag').length, KAFKA_LAG_SERIES_MAX);
  assert.match(text, /shardline_kafka_consumer_group_lag_series_omitted\{node="n"\} 7\n/);
});

test('high watermarks that cannot be read leave the lag series out of that scrape, not the page', async () => {
  const metrics = createMetrics({ node: 'n', ...source([group('a', 1, () => 4)], true) });
  const text = await metrics.render();
  assert.deepEqual(lines(text, 'shardline_kafka_consumer_group_lag'), []);
  assert.match(text, /shardline_kafka_consumer_groups\{state="Empty",node="n"\} 1\n/);
  assert.match(text, /shardline_kafka_connections/);
});
