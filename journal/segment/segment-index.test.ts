import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SegmentIndex } from './segment-index.js';

describe('segment index', () => {
  // Batches of 100 bytes each at positions 0, 100, 200, ...; offsets 10 apart; timestamps rise.
  function build(intervalBytes: number): SegmentIndex {
    const index = new SegmentIndex(1000, intervalBytes);
    for (let batch = 0; batch < 50; batch += 1) index.addBatch(batch * 100, 1000 + batch * 10, 100, 5000 + batch * 7);
    return index;
  }

  it('finds the last indexed batch at or before an offset', () => {
    const index = build(250);
    for (let offset = 1000; offset < 1500; offset += 3) {
      const position = index.lookupOffset(offset);
      const batchOfOffset = Math.floor((offset - 1000) / 10) * 100;
      assert.ok(position <= batchOfOffset, `offset ${offset}: position ${position} is after its batch at ${batchOfOffset}`);
      assert.ok(batchOfOffset - position < 400, 'the index is sparse, not absent');
    }
    assert.equal(index.lookupOffset(0), 0);
  });

  it('never points past the first batch that holds a timestamp', () => {
    const index = build(250);
    for (let timestamp = 4990; timestamp < 5400; timestamp += 5) {
      const firstBatch = Math.max(0, Math.ceil((timestamp - 5000) / 7));
      assert.ok(index.lookupTime(timestamp) <= firstBatch * 100, `timestamp ${timestamp}`);
    }
  });

  it('round-trips through its file encoding and refuses stale or damaged files', () => {
    const index = build(250);
    const summary = { coveredLogBytes: 5000, nextOffset: 1500, maxTimestamp: index.maxTimestamp, epoch: 3 };
    const offsetFile = index.encodeOffsetIndex(summary);
    const timeFile = index.encodeTimeIndex(summary);
    const decoded = SegmentIndex.decode(1000, 250, offsetFile, timeFile, 5000);
    assert.ok(decoded !== null);
    assert.deepEqual(decoded.summary, summary);
    assert.equal(decoded.index.lookupOffset(1333), index.lookupOffset(1333));
    assert.equal(decoded.index.lookupTime(5200), index.lookupTime(5200));
    assert.equal(SegmentIndex.decode(1000, 250, offsetFile, timeFile, 5100), null, 'log size differs: stale');
    const damaged = Buffer.from(offsetFile);
    damaged.writeUInt8((damaged[60] ?? 0) ^ 1, 60);
    assert.equal(SegmentIndex.decode(1000, 250, damaged, timeFile, 5000), null, 'checksum mismatch');
    assert.equal(SegmentIndex.decode(1000, 250, offsetFile.subarray(0, 20), timeFile, 5000), null, 'short file');
  });

  it('forgets entries beyond a truncation point', () => {
    const index = build(100);
    index.truncateTo(1000, 5063);
    assert.equal(index.lookupOffset(1400), 900);
    assert.equal(index.maxTimestamp, 5063);
  });

  it('suggests read chunk ends only at indexed batch starts', () => {
    // Every batch indexed (interval 1): batch starts are the multiples of 100 below 5000.
    const dense = build(1);
    assert.equal(dense.batchBoundaryNear(0, 350), 300, 'the last batch start inside the window');
    assert.equal(dense.batchBoundaryNear(300, 350), 400, 'the batch at the position runs past the window: its end');
    assert.equal(dense.batchBoundaryNear(300, 400), 400);
    assert.equal(dense.batchBoundaryNear(4900, 4950), null, 'no batch start after the last one');
    // Sparse index (interval 250): batch starts 0, 300, 600, ... are indexed.
    const sparse = build(250);
    for (let position = 0; position < 4900; position += 300) {
      for (const limit of [position + 1, position + 299, position + 300, position + 1000]) {
        const boundary = sparse.batchBoundaryNear(position, limit);
        if (boundary === null) continue;
        assert.equal(boundary % 100, 0, 'a batch start');
        assert.ok(boundary > position, `after the position ${position}`);
        assert.ok(boundary <= limit || boundary - limit <= 300, `near the limit ${limit}: ${boundary}`);
      }
    }
  });
});
