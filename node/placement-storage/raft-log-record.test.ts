// Goal: the Raft log record codec is lossless and never fails on bad bytes with anything but
// RecordDecodeError (which the open turns into a coded error). Method: fast-check over random
// records (round trip) and random byte strings, plus every truncation of a valid record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { numRuns, replay } from '../../tests/support/fast-check.js';
import { RecordDecodeError, decodeRecord, encodeRecord, type RaftLogRecord } from './raft-log-record.js';

const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const data = fc.uint8Array({ maxLength: 64 });
const snapshot = fc.record({
  metadata: fc.record({ index: count, term: count, confState: fc.record({ voters: fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { maxLength: 7 }) }) }),
  data,
});
const record: fc.Arbitrary<RaftLogRecord> = fc.oneof(
  fc.record({ kind: fc.constant('entry' as const), entry: fc.record({ index: count, term: count, type: fc.constantFrom('normal' as const, 'conf' as const), data }) }),
  fc.record({ kind: fc.constant('hardState' as const), hardState: fc.record({ term: count, vote: count, commit: count }) }),
  fc.record({ kind: fc.constant('snapshotInstall' as const), snapshot }),
  fc.record({ kind: fc.constant('snapshotLocal' as const), snapshot }),
  fc.record({ kind: fc.constant('checkpoint' as const), index: count, term: count }),
);

const decodesOrRefuses = (bytes: Buffer): void => {
  try {
    decodeRecord(bytes);
  } catch (error) {
    assert.ok(error instanceof RecordDecodeError, `only RecordDecodeError, got ${String(error)}`);
  }
};

test('every record decodes to itself, and every truncation of it decodes or is refused cleanly', () => {
  fc.assert(
    fc.property(record, (r) => {
      const bytes = encodeRecord(r);
      // structuredClone: fast-check builds records without a prototype, the decoder plain objects.
      assert.deepEqual(decodeRecord(bytes), structuredClone(r));
      for (let length = 0; length < bytes.length; length += 1) decodesOrRefuses(bytes.subarray(0, length));
    }),
    { numRuns: numRuns(300), ...replay },
  );
});

test('random bytes decode or fail with RecordDecodeError only; unknown versions say so', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => decodesOrRefuses(Buffer.from(bytes))), { numRuns: numRuns(1000), ...replay });
  assert.throws(() => decodeRecord(Buffer.from([2, 1])), (error: RecordDecodeError) => error.unsupported?.version === 2);
  assert.throws(() => decodeRecord(Buffer.from([1, 9])), (error: RecordDecodeError) => error.unsupported?.kind === 9);
  assert.throws(() => decodeRecord(null), RecordDecodeError);
});
