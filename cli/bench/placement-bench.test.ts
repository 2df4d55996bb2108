// Goal: `shardline bench placement` runs end to end within its bounds and reports what it says:
// commits counted and timed, percentiles in order, the journal floor measured in the same run,
// the ratio of the two, and a report naming them. Method: one tiny run (3 voters on durable
// storage in a scratch directory, 2 writers, a 400 ms time bound on an unreachable count, 10
// floor appends) with 20 ms ticks so the first election is quick. Figures are not asserted.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { formatPlacementReport } from '../commands/bench-placement.js';
import { runPlacementBench } from './placement-bench.js';

test('a short run: commits bounded by time, the floor by count, percentiles in order, the ratio of the two', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'placement-bench-test-'));
  try {
    let progress = 0;
    const started = performance.now();
    const result = await runPlacementBench({
      directory,
      voters: 3,
      writers: 2,
      proposals: 1_000_000,
      durationMs: 400,
      valueBytes: 50,
      floorAppends: 10,
      floorDurationMs: 10_000,
      tickMs: 20,
      now: () => performance.now(),
      signal: new AbortController().signal,
      onProgress: () => progress++,
    });
    assert.ok(performance.now() - started < 30_000, 'bounded');
    assert.ok(result.commit.count > 0 && result.commit.count < 1_000_000, `commits ${result.commit.count}`);
    assert.ok(result.seconds >= 0.4 && result.seconds < 10, `measured ${result.seconds} s`);
    assert.equal(result.floor.count, 10);
    assert.equal(progress, result.commit.count + result.floor.count);
    for (const latency of [result.commit, result.floor]) {
      assert.ok(latency.p50Ms > 0 && latency.p50Ms <= latency.p90Ms && latency.p90Ms <= latency.p99Ms && latency.p99Ms <= latency.maxMs, JSON.stringify(latency));
    }
    assert.ok(Math.abs(result.commitsPerSecond - result.commit.count / result.seconds) < 1e-6);
    assert.ok(Math.abs(result.ratio.p50 - result.commit.p50Ms / result.floor.p50Ms) < 1e-9);
    assert.ok(result.leaderChanges >= 1);
    assert.deepEqual((await readdir(directory)).sort(), ['floor', 'voter-1', 'voter-2', 'voter-3'], 'durable storage for each voter and the floor journal, on the same disk');
    const report = formatPlacementReport(result, { directory, startedAt: '2026-01-01T00:00:00.000Z' });
    assert.match(report, /^ {2}commit latency {3}p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}max [\d.]+ ms$/m);
    assert.match(report, /^ {2}journal floor {4}p50 .*\(10 appends of 114 B, fsync, 1 appender\)$/m);
    assert.match(report, /^ {2}commit \/ floor {3}p50 [\d.]+x {2}p99 [\d.]+x$/m);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
