// WatchHistory unit tests.
// Goal: a watcher gets every change from its revision on or a clear revision-compacted, never
// part of one: trimming drops whole revisions, and a reset (snapshot, restart) forgets
// everything before it. Method: record hand-made changes and ask from each revision.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Change } from '../metadata/index.js';
import { WatchHistory } from './watch-history.js';

const change = (revision: number, key: string): Change => ({ revision, kind: 'node', key, op: 'put' });

describe('WatchHistory', () => {
  it('answers every change from a revision on, and the current revision after a refusal', () => {
    const history = new WatchHistory(10, 0);
    history.record([change(1, 'a')], 1);
    history.record([], 2);
    history.record([change(3, 'b'), change(3, 'c')], 3);
    assert.deepEqual(history.since(0), { status: 'ok', changes: [change(1, 'a'), change(3, 'b'), change(3, 'c')], revision: 3 });
    assert.deepEqual(history.since(2), { status: 'ok', changes: [change(3, 'b'), change(3, 'c')], revision: 3 });
    assert.deepEqual(history.since(4), { status: 'ok', changes: [], revision: 3 });
  });

  it('trims whole revisions: a revision is never cut in half', () => {
    const history = new WatchHistory(2, 0);
    history.record([change(1, 'a')], 1);
    history.record([change(2, 'b'), change(2, 'c')], 2);
    history.record([change(3, 'd')], 3);
    // Keeping the last two changes would keep half of revision 2; it goes whole.
    assert.deepEqual(history.since(2), { status: 'revision-compacted', fromRevision: 2, oldestRevision: 3 });
    assert.deepEqual(history.since(3), { status: 'ok', changes: [change(3, 'd')], revision: 3 });
  });

  it('after a reset, anything before the reset revision is compacted', () => {
    const history = new WatchHistory(10, 0);
    history.record([change(1, 'a')], 1);
    history.reset(7);
    assert.equal(history.since(1).status, 'revision-compacted');
    assert.equal(history.since(7).status, 'revision-compacted');
    assert.deepEqual(history.since(8), { status: 'ok', changes: [], revision: 7 });
  });
});
