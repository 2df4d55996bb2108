// Goal: scenario names round-trip as specs, filters pick what they say, medians are per metric,
// and each kind of workload runs end to end within its bounds. Method: pure checks, then a
// tiny run (a few ms, 1 MiB) of one append and one read scenario on a scratch journal.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../../journal/index.js';
import { defaultScenarios, median, medianMetrics, parseScenario, rateScenario, runScenario, selectScenarios } from './journal-bench.js';

test('every default scenario name parses back to the same scenario', () => {
  const all = defaultScenarios();
  assert.equal(new Set(all.map((scenario) => scenario.name)).size, all.length);
  for (const scenario of all) assert.deepEqual(parseScenario(scenario.name), scenario);
});

test('the defaults cover the issue: sizes x durability x appenders, batched, group commit, reads', () => {
  const names = defaultScenarios().map((scenario) => scenario.name);
  for (const size of ['100B', '1KiB']) {
    for (const durability of ['fsync', 'interval', 'none']) {
      for (const appenders of [1, 16]) assert.ok(names.includes(`append-${size}-${durability}-c${appenders}-b1`));
    }
  }
  assert.ok(names.includes('append-100B-none-c1-b1000'));
  assert.ok(names.includes('append-1KiB-fsync-c16-b100'));
  assert.ok(names.includes('read-1KiB-b100'));
});

test('rate specs parse back, and out-of-range ones are refused', () => {
  const scenario = rateScenario(1024, 'fsync', 5000, 1);
  assert.equal(scenario.name, 'rate-1KiB-fsync-r5000-c1');
  assert.deepEqual(parseScenario(scenario.name), scenario);
  const windowed = rateScenario(100, 'fsync', 5000, 16, 1);
  assert.equal(windowed.name, 'rate-100B-fsync-r5000-c16-w1');
  assert.deepEqual(parseScenario(windowed.name), windowed);
  for (const name of ['rate-1KiB-fsync-r5000-c1-w0', 'rate-1KiB-fsync-r0-c1', 'rate-1KiB-fsync-r5000-c0', 'rate-1KiB-often-r5000-c1', 'rate-1KiB-fsync-r99999999-c1']) assert.equal(parseScenario(name), null, name);
});

test('a fixed-rate scenario issues its slots, reports ack latency and the disk probe beside it', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-bench-test-'));
  const journal = await Journal.open(join(directory, 'journal'), { retentionCheckMs: 0 });
  const fractions: number[] = [];
  try {
    // 200/s for 100 ms: 20 slots.
    const context = { journal, limits: { durationMs: 100, warmupMs: 0, maxBytes: 1024 * 1024 }, now: () => performance.now(), signal: new AbortController().signal, shardName: 'rate', probeDirectory: directory, onProgress: (fraction: number) => fractions.push(fraction) };
    const metrics = await runScenario(rateScenario(100, 'fsync', 200, 1), context);
    assert.equal(metrics.appends, 20);
    assert.ok((metrics.p50Us ?? 0) > 0 && (metrics.p50Us ?? 0) <= (metrics.p999Us ?? 0));
    assert.ok((metrics.diskSyncs ?? 0) >= 200 && (metrics.diskSyncP50Us ?? 0) > 0);
    assert.ok(fractions.length > 0 && fractions.every((fraction) => fraction > 0 && fraction <= 1));
    // 4 clients with one append in flight each: every slot is still issued.
    const windowed = await runScenario(rateScenario(100, 'fsync', 200, 4, 1), { ...context, shardName: 'windowed' });
    assert.equal(windowed.appends, 20);
    assert.deepEqual(journal.listShards(), []);
  } finally {
    await journal.close();
    await rm(directory, { recursive: true, force: true });
  }
});

test('parseScenario refuses malformed and oversized specs', () => {
  for (const name of ['append-100B-sometimes-c1-b1', 'append-100B-none-c0-b1', 'append-100X-none-c1-b1', 'append-1KiB-none-c1-b1000000', 'read-1KiB', 'read-0B-b1']) {
    assert.equal(parseScenario(name), null, name);
  }
});

test('filters: substrings, wildcards, exact specs outside the defaults, and unmatched patterns', () => {
  const all = defaultScenarios();
  assert.equal(selectScenarios(all, []).selected.length, all.length);
  assert.deepEqual(selectScenarios(all, ['read-']).selected.map((scenario) => scenario.name), ['read-100B-b100', 'read-1KiB-b100']);
  assert.equal(selectScenarios(all, ['append-*-fsync-c16-*']).selected.length, 4);
  assert.deepEqual(selectScenarios(all, ['read-1KiB-b10']).selected.map((scenario) => scenario.name), ['read-1KiB-b10']);
  assert.deepEqual(selectScenarios(all, ['no-such-thing']).unmatched, ['no-such-thing']);
});

test('medians are taken per metric', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.deepEqual(medianMetrics([{ a: 1, b: 30 }, { a: 3, b: 10 }, { a: 2, b: 20 }]), { a: 2, b: 20 });
});

test('an append and a read scenario run end to end and report their metrics', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-bench-test-'));
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const limits = { durationMs: 30, warmupMs: 5, maxBytes: 1024 * 1024 };
  const context = { journal, limits, now: () => performance.now(), signal: new AbortController().signal };
  try {
    const append = await runScenario(parseScenario('append-100B-fsync-c4-b10') ?? assert.fail(), { ...context, shardName: 'a' });
    assert.ok((append.records ?? 0) > 0 && (append.recordsPerSecond ?? 0) > 0);
    assert.ok((append.p50Us ?? 0) > 0 && (append.p50Us ?? 0) <= (append.p999Us ?? 0));
    const read = await runScenario(parseScenario('read-1KiB-b10') ?? assert.fail(), { ...context, shardName: 'r' });
    // The fill stops before the batch that would pass maxBytes (1 MiB).
    assert.ok((read.logBytes ?? 0) > 1000 * 1024 && (read.logBytes ?? 0) <= 1024 * 1024, `logBytes ${read.logBytes}`);
    assert.ok((read.logMBps ?? 0) > 0 && (read.rawReadMBps ?? 0) > 0 && (read.rawChecksumMBps ?? 0) > 0);
    assert.deepEqual(journal.listShards(), [], 'scenario shards are deleted afterwards');
  } finally {
    await journal.close();
    await rm(directory, { recursive: true, force: true });
  }
});
