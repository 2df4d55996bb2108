// Unit tests of replay range parsing (replay-request.ts).
// Goal: both time forms give the right epoch ms; impossible dates, offsets other than Z, empty
// or reversed ranges and malformed `$replay/…` filters are refused with a sentence; the filter
// keeps its own levels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReplayFilter, parseReplayRange, parseReplayTime } from './replay-request.js';

test('times: epoch ms and ISO-8601 UTC forms; others refused', () => {
  assert.equal(parseReplayTime('0'), 0);
  assert.equal(parseReplayTime('1700000000000'), 1_700_000_000_000);
  assert.equal(parseReplayTime('2026-01-31'), Date.UTC(2026, 0, 31));
  assert.equal(parseReplayTime('2026-01-31T12:05Z'), Date.UTC(2026, 0, 31, 12, 5));
  assert.equal(parseReplayTime('2026-01-31T12:05:07Z'), Date.UTC(2026, 0, 31, 12, 5, 7));
  assert.equal(parseReplayTime('2026-01-31T12:05:07.25Z'), Date.UTC(2026, 0, 31, 12, 5, 7, 250));
  for (const bad of ['', '-5', '1.5', '12345678901234567', '2026-02-30', '2026-13-01', '2026-01-31T24:00Z', '2026-01-31T12:05:07', '2026-01-31T12:05:07+01:00', 'now', '2026-1-31']) {
    assert.equal(parseReplayTime(bad), undefined, bad);
  }
});

test('ranges: to after from, or live; empty and reversed ranges refused', () => {
  assert.deepEqual(parseReplayRange('10', '20'), { ok: true, value: { from: 10, to: 20 } });
  assert.deepEqual(parseReplayRange('10', 'live'), { ok: true, value: { from: 10, to: 'live' } });
  assert.deepEqual(parseReplayRange('10', undefined), { ok: true, value: { from: 10, to: 'live' } });
  assert.match((parseReplayRange('20', '20') as { detail: string }).detail, /empty/);
  assert.match((parseReplayRange('20', '10') as { detail: string }).detail, /empty/);
  assert.match((parseReplayRange('yesterday', '10') as { detail: string }).detail, /replay start 'yesterday'/);
  assert.match((parseReplayRange('10', 'later') as { detail: string }).detail, /replay end 'later'/);
});

test('$replay filters: from, to and the rest as the filter', () => {
  assert.deepEqual(parseReplayFilter('$replay/0/live/a/b/#'), { ok: true, value: { from: 0, to: 'live', filter: 'a/b/#' } });
  assert.deepEqual(parseReplayFilter('$replay/2026-01-01/2026-01-02T00:00Z/+'), { ok: true, value: { from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2), filter: '+' } });
  assert.deepEqual(parseReplayFilter('$replay/0/1//x'), { ok: true, value: { from: 0, to: 1, filter: '/x' } });
  for (const bad of ['$replay/0/live', '$replay/0/live/', '$replay/0', '$replay/x/live/a', '$replay/5/1/a', 'a/b']) assert.equal(parseReplayFilter(bad).ok, false, bad);
});
