// Unit tests of the node metrics (metrics.ts) over a real Broker on a MemoryShardStore.
//
// Goal: GET /metrics shows what the broker and its shards hold at scrape time: connections,
// sessions, subscriptions, retained messages, in/out/bytes counters and drops (counters equal
// the broker's totals on every scrape, not a sum of scrapes), one series per shard with its size,
// next offset and segments, the node label on every series, process metrics, and only the
// families a node has (no MQTT series on a journal-only node, no shard series without a store).
// Method: publish through the engine to a recording sink, render, parse the exposition text.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../shard-model/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { ManualClock, settle } from '../tests/support/manual-clock.js';
import { createMetrics } from './metrics.js';
import { RecordingSink } from '../tests/support/recording-sink.js';
import { Broker, type Message } from '../engine/index.js';

const logger = pino({ level: 'silent' });

function message(topic: string, payload: string, retain = false): Message {
  return { topic, payload: Buffer.from(payload), qos: 0, retain, publisherId: 'pub', timestamp: 1_700_000_000_000, properties: undefined };
}

/** The value of the one sample of `name` whose labels include `labels`; undefined if none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found: number[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => have[key] === value)) found.push(Number(match[3]));
  }
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0];
}

async function openBroker(store: ShardStore): Promise<Broker> {
  return Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock: new ManualClock(), cursorFlushMs: 1000 });
}

describe('createMetrics', () => {
  test('$SYS statistics messages are counted in their own series, not in the client ones', async () => {
    const store = new MemoryShardStore();
    const clock = new ManualClock();
    const broker = await Broker.open({ store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock, cursorFlushMs: 1000 });
    try {
      const sink = new RecordingSink();
      const { session } = await broker.connect({ clientId: 'ops', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
      session.attach(sink);
      await broker.subscribe(session, [{ filter: '$SYS/#', options: { qos: 0, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
      await broker.publish(message('$SYS/brokers/n/uptime', '5', true));
      await broker.publish(message('$SYS/brokers/n/version', '1', true));
      await broker.publish(message('client/t', 'hello', true));
      await settle();
      const text = await createMetrics({ broker, store, node: 'node-1' }).render();
      assert.equal(sample(text, 'shardline_messages_in_total', { protocol: 'mqtt' }), 1, 'the client publish only');
      assert.equal(sample(text, 'shardline_messages_out_total', { protocol: 'mqtt' }), 0, 'no client message was delivered');
      assert.equal(sample(text, 'shardline_bytes_in_total', { protocol: 'mqtt' }), 5);
      assert.equal(sample(text, 'shardline_mqtt_retained_messages'), 1);
      assert.equal(sample(text, 'shardline_sys_retained_messages'), 2);
      assert.equal(sample(text, 'shardline_sys_messages_total', { direction: 'in' }), 2);
      assert.equal(sample(text, 'shardline_sys_messages_total', { direction: 'out' }), 2, 'delivered to the $SYS/# subscriber');
    } finally {
      await broker.close();
    }
  });

  test('broker and shard values at scrape time, with the node label; counters are totals on every scrape', async () => {
    const store = new MemoryShardStore();
    const broker = await openBroker(store);
    try {
      const metrics = createMetrics({ broker, store, node: 'node-1' });
      assert.match(metrics.contentType, /^text\/plain/);

      const before = await metrics.render();
      assert.equal(sample(before, 'shardline_mqtt_connections', { node: 'node-1' }), 0);
      assert.equal(sample(before, 'shardline_messages_in_total', { protocol: 'mqtt' }), 0);

      const sink = new RecordingSink();
      const { session } = await broker.connect({ clientId: 'sub', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
      session.attach(sink);
      const options = { qos: 0 as const, noLocal: false, keepRetainFlag: false, sendRetained: 'always' as const };
      await broker.subscribe(session, [{ filter: 'a/#', options }, { filter: 'b', options }]);
      for (let i = 0; i < 3; i += 1) await broker.publish(message('a/1', 'hello'));
      await broker.publish(message('r/x', 'kept', true));
      await settle();
      assert.equal(sink.deliveries.length, 3, 'the subscriber got the three a/1 messages');

      const text = await metrics.render();
      assert.equal(sample(text, 'shardline_mqtt_connections'), 1);
      assert.equal(sample(text, 'shardline_mqtt_sessions'), 1);
      assert.equal(sample(text, 'shardline_mqtt_subscriptions'), 2);
      assert.equal(sample(text, 'shardline_mqtt_retained_messages'), 1);
      assert.equal(sample(text, 'shardline_messages_in_total', { protocol: 'mqtt', node: 'node-1' }), 4);
      assert.equal(sample(text, 'shardline_messages_out_total', { protocol: 'mqtt' }), 3);
      assert.equal(sample(text, 'shardline_bytes_in_total', { protocol: 'mqtt' }), 3 * 5 + 4);
      for (const reason of ['queue-full', 'expired', 'too-large']) assert.equal(sample(text, 'shardline_dropped_messages_total', { reason }), 0, reason);
      assert.match(text, /# TYPE shardline_messages_in_total counter/);
      assert.match(text, /# TYPE shardline_mqtt_connections gauge/);

      const shards = await store.list();
      assert.ok(shards.length >= 2, 'data shards and the broker shards exist');
      for (const shard of shards) {
        assert.equal(sample(text, 'shardline_shard_next_offset', { shard: shard.name, node: 'node-1' }), shard.nextOffset, shard.name);
        assert.equal(sample(text, 'shardline_shard_size_bytes', { shard: shard.name }), shard.sizeBytes, shard.name);
        assert.equal(sample(text, 'shardline_shard_segments', { shard: shard.name }), shard.segmentCount, shard.name);
      }
      const dataOffsets = broker.dataShardNames.map((name) => sample(text, 'shardline_shard_next_offset', { shard: name }) ?? 0);
      assert.ok(dataOffsets.reduce((a, b) => a + b, 0) >= 4, `the four publishes are in the data shards: ${dataOffsets.join(', ')}`);
      assert.ok((sample(text, 'process_cpu_user_seconds_total', { node: 'node-1' }) ?? 0) > 0, 'process metrics are collected (this process has used CPU)');

      // A second scrape does not add the totals again; a new publish moves them on.
      assert.equal(sample(await metrics.render(), 'shardline_messages_in_total'), 4);
      await broker.publish(message('a/2', 'xy'));
      await settle();
      const later = await metrics.render();
      assert.equal(sample(later, 'shardline_messages_in_total'), 5);
      assert.equal(sample(later, 'shardline_bytes_in_total'), 3 * 5 + 4 + 2);

      // What the MQTT front end does when its connection closes.
      await broker.disconnect(session, sink, { publishWill: false });
      await settle();
      assert.equal(sample(await metrics.render(), 'shardline_mqtt_connections'), 0);
    } finally {
      await broker.close();
    }
  });

  test('the data directory\'s space and the watermark, read from the disk watch at every scrape', async () => {
    const disk = { path: '/data', totalBytes: 8_388_608, freeBytes: 300_000, usedBytes: 8_088_608, journalBytes: 5_000_000, thresholdBytes: 419_430, low: true, checkedAt: 1 };
    const metrics = createMetrics({ node: 'n', disks: () => [disk] });
    let text = await metrics.render();
    assert.match(text, /^shardline_disk_free_bytes\{path="\/data",node="n"\} 300000$/m);
    assert.match(text, /^shardline_disk_total_bytes\{path="\/data",node="n"\} 8388608$/m);
    assert.match(text, /^shardline_disk_used_bytes\{path="\/data",node="n"\} 8088608$/m);
    assert.match(text, /^shardline_disk_journal_bytes\{path="\/data",node="n"\} 5000000$/m);
    assert.match(text, /^shardline_disk_low_watermark_bytes\{path="\/data",node="n"\} 419430$/m);
    assert.match(text, /^shardline_disk_low\{path="\/data",node="n"\} 1$/m);
    disk.low = false;
    text = await metrics.render();
    assert.match(text, /^shardline_disk_low\{path="\/data",node="n"\} 0$/m);
  });

  test('a deleted shard leaves the next scrape', async () => {
    const store = new MemoryShardStore();
    await store.create('orders');
    await store.append('orders', [{ value: Buffer.from('x') }]);
    const metrics = createMetrics({ store, node: 'n' });
    assert.equal(sample(await metrics.render(), 'shardline_shard_next_offset', { shard: 'orders' }), 1);
    await store.delete('orders');
    assert.equal(sample(await metrics.render(), 'shardline_shard_next_offset', { shard: 'orders' }), undefined);
  });

  test('only the families the node has: a journal-only node has no MQTT series, a store-less one no shard series', async () => {
    const store = new MemoryShardStore();
    await store.create('s');
    const journalOnly = await createMetrics({ store, node: 'j' }).render();
    assert.equal(sample(journalOnly, 'shardline_shard_next_offset', { shard: 's' }), 0);
    assert.doesNotMatch(journalOnly, /shardline_mqtt_|shardline_messages_/);

    const broker = await openBroker(new MemoryShardStore());
    try {
      const brokerOnly = await createMetrics({ broker, node: 'b' }).render();
      assert.equal(sample(brokerOnly, 'shardline_mqtt_connections'), 0);
      assert.doesNotMatch(brokerOnly, /shardline_shard_/);
    } finally {
      await broker.close();
    }
  });

  test('a store that cannot be listed drops the shard series from that scrape only', async () => {
    const store = new MemoryShardStore();
    await store.create('s');
    let failing = true;
    const flaky = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'list' && failing) return () => Promise.reject(Object.assign(new Error('journal down'), { code: 'SL_REMOTE_UNAVAILABLE' }));
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const metrics = createMetrics({ store: flaky, node: 'n' });
    const down = await metrics.render();
    assert.equal(sample(down, 'shardline_shard_next_offset', { shard: 's' }), undefined);
    assert.match(down, /process_cpu_user_seconds_total/);
    failing = false;
    assert.equal(sample(await metrics.render(), 'shardline_shard_next_offset', { shard: 's' }), 0);
  });

  test('two nodes in one process keep separate registries', async () => {
    const one = new MemoryShardStore();
    const two = new MemoryShardStore();
    await one.create('only-one');
    const first = createMetrics({ store: one, node: 'one' });
    const second = createMetrics({ store: two, node: 'two' });
    assert.equal(sample(await first.render(), 'shardline_shard_next_offset', { shard: 'only-one', node: 'one' }), 0);
    assert.equal(sample(await second.render(), 'shardline_shard_next_offset', { shard: 'only-one' }), undefined);
  });
});

describe('journal metrics', () => {
  test('append latency and group-commit sizes come from the journal in this process', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { Journal } = await import('../journal/index.js');
    const directory = await mkdtemp(join(tmpdir(), 'shardline-metrics-journal-'));
    const journal = await Journal.open(directory, { logger: pino({ level: 'silent' }), retentionCheckMs: 0 });
    try {
      const metrics = createMetrics({ node: 'n1', journal });
      await journal.createShard('m', { durability: 'fsync' });
      // Three appends queued together: at least two go out in one group commit behind the first.
      await Promise.all([0, 1, 2].map((i) => journal.append('m', [{ value: Buffer.alloc(100, i) }])));
      const text = await metrics.render();
      const count = /shardline_journal_append_latency_seconds_count\{node="n1",shard="m"\} (\d+)/.exec(text);
      assert.equal(count?.[1], '3', 'one latency observation per append');
      const commits = /shardline_journal_commit_appends_count\{node="n1",shard="m"\} (\d+)/.exec(text);
      const appendsSum = /shardline_journal_commit_appends_sum\{node="n1",shard="m"\} (\d+)/.exec(text);
      assert.equal(appendsSum?.[1], '3', 'the group sizes add up to the appends');
      assert.ok(Number(commits?.[1]) >= 1 && Number(commits?.[1]) <= 3, `group commits: ${commits?.[1]}`);
      assert.match(text, /shardline_journal_commit_bytes_sum\{node="n1",shard="m"\} \d+/);
    } finally {
      await journal.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('MQTT workers (--workers N)', () => {
  test('the node-wide connection count is the workers\' sum; each worker has its own series', async () => {
    const workers = [
      { index: 1, pid: 101, restarts: 0, connections: 3, messagesIn: 10, messagesOut: 20 },
      { index: 2, pid: undefined, restarts: 2, connections: 4, messagesIn: 5, messagesOut: 6 },
    ];
    const metrics = createMetrics({ node: 'n1', workers: () => workers });
    const text = await metrics.render();
    assert.equal(sample(text, 'shardline_mqtt_connections'), 7);
    assert.equal(sample(text, 'shardline_worker_mqtt_connections', { worker: '1' }), 3);
    assert.equal(sample(text, 'shardline_worker_mqtt_connections', { worker: '2' }), 4);
    assert.equal(sample(text, 'shardline_worker_mqtt_messages', { worker: '1', direction: 'in' }), 10);
    assert.equal(sample(text, 'shardline_worker_mqtt_messages', { worker: '2', direction: 'out' }), 6);
    assert.equal(sample(text, 'shardline_worker_up', { worker: '1' }), 1);
    assert.equal(sample(text, 'shardline_worker_up', { worker: '2' }), 0, 'being restarted');
    assert.equal(sample(text, 'shardline_worker_restarts', { worker: '2' }), 2);
    // A later scrape reads the figures again.
    workers[0] = { ...workers[0]!, connections: 0 };
    assert.equal(sample(await metrics.render(), 'shardline_mqtt_connections'), 4);
  });
});
