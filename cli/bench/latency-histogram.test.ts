// Goal: the histogram's percentiles agree with exact nearest-rank percentiles within its stated
// relative error. Method: feed known and pseudo-random samples, compare with a sorted copy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from './latency-histogram.js';

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

test('an empty histogram reports zero', () => {
  const histogram = new LatencyHistogram();
  assert.equal(histogram.count, 0);
  assert.equal(histogram.quantileNs(0.5), 0);
});

test('small values are exact', () => {
  const histogram = new LatencyHistogram();
  for (let value = 1; value <= 100; value += 1) histogram.record(value);
  assert.equal(histogram.quantileNs(0.5), 50);
  assert.equal(histogram.quantileNs(0.99), 99);
  assert.equal(histogram.quantileNs(1), 100);
  assert.equal(histogram.quantileNs(0), 1);
});

test('percentiles of spread-out samples are within 1% of the exact ones', () => {
  const histogram = new LatencyHistogram();
  const samples: number[] = [];
  let state = 12345;
  for (let i = 0; i < 50_000; i += 1) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const value = Math.floor(1000 * 2 ** ((state / 2 ** 31) * 20));
    samples.push(value);
    histogram.record(value);
  }
  samples.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = exactQuantile(samples, q);
    const approximate = histogram.quantileNs(q);
    assert.ok(Math.abs(approximate - exact) / exact < 0.01, `q=${q}: ${approximate} vs ${exact}`);
  }
});

test('huge values are clamped, not lost', () => {
  const histogram = new LatencyHistogram();
  histogram.record(2 ** 45);
  histogram.record(10);
  assert.equal(histogram.count, 2);
  assert.equal(histogram.quantileNs(1), 2 ** 45);
  assert.equal(histogram.quantileNs(0.5), 10);
});
