import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { segmentsBelow, segmentsToDelete } from './retention.js';

const segments = [
  { sizeBytes: 100, maxTimestamp: 1000 },
  { sizeBytes: 100, maxTimestamp: 2000 },
  { sizeBytes: 100, maxTimestamp: 3000 },
  { sizeBytes: 100, maxTimestamp: 4000 },
];

describe('retention planning', () => {
  it('deletes sealed segments whose newest record is older than the age limit', () => {
    assert.equal(segmentsToDelete(segments, { retentionMs: 1500, retentionBytes: null }, 4000), 2);
    assert.equal(segmentsToDelete(segments, { retentionMs: 10, retentionBytes: null }, 99_999), 3, 'never the active segment');
  });

  it('deletes the oldest segments while the shard is over the size limit', () => {
    assert.equal(segmentsToDelete(segments, { retentionMs: null, retentionBytes: 250 }, 0), 2);
    assert.equal(segmentsToDelete(segments, { retentionMs: null, retentionBytes: 400 }, 0), 0);
  });

  it('applies both limits and keeps everything without limits', () => {
    assert.equal(segmentsToDelete(segments, { retentionMs: 2500, retentionBytes: 350 }, 4000), 1);
    assert.equal(segmentsToDelete(segments, { retentionMs: null, retentionBytes: null }, 1e12), 0);
  });
});

describe('deletion below an offset', () => {
  const bases = [{ baseOffset: 0 }, { baseOffset: 10 }, { baseOffset: 20 }, { baseOffset: 30 }];
  it('deletes a segment only when the next one starts at or below the offset', () => {
    assert.equal(segmentsBelow(bases, 9), 0);
    assert.equal(segmentsBelow(bases, 10), 1);
    assert.equal(segmentsBelow(bases, 25), 2);
    assert.equal(segmentsBelow(bases, 1_000), 3, 'never the active segment');
  });
});
