// Goal: a command retried under the same client id and sequence number takes effect once and
// answers with its first result; a snapshot carries the session table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvStateMachine } from './kv-state-machine.js';

describe('KvStateMachine', () => {
  it('applies a retried command once and repeats its result', () => {
    const kv = new KvStateMachine();
    assert.equal(kv.apply({ client: 1, seq: 1, op: 'cas', key: 'x', expected: null, value: 'a' }), true);
    kv.apply({ client: 2, seq: 1, op: 'write', key: 'x', value: 'b' });
    // The retry would now fail (x is b), but it already succeeded: same answer, no effect.
    assert.equal(kv.apply({ client: 1, seq: 1, op: 'cas', key: 'x', expected: null, value: 'a' }), true);
    assert.equal(kv.read('x'), 'b');
    assert.deepEqual(kv.executed, ['c1#1', 'c2#1']);
    assert.equal(kv.apply({ client: 1, seq: 0, op: 'write', key: 'x', value: 'old' }), null);
  });

  it('restores values and sessions from a snapshot', () => {
    const kv = new KvStateMachine();
    kv.apply({ client: 1, seq: 1, op: 'write', key: 'x', value: 'a' });
    const copy = new KvStateMachine(kv.snapshot());
    assert.equal(copy.read('x'), 'a');
    assert.equal(copy.apply({ client: 1, seq: 1, op: 'write', key: 'x', value: 'a' }), 'ok');
    assert.deepEqual(copy.executed, ['c1#1']);
  });
});
