// Goal: the watermark decision as documented in disk-watermark.ts: the smaller of the two
// thresholds, off when either is 0, hysteresis on the way back, a floor after ENOSPC.
// Method: example cases, plus a property that the decision never flips while free space stays
// between the threshold and the resume level.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { diskIsLow, lowWatermarkBytes, RESUME_AFTER_FULL_MIN_BYTES } from './disk-watermark.js';

const GiB = 1024 ** 3;
const defaults = { freeMinPercent: 5, freeMinBytes: 2 * GiB };

describe('disk watermark', () => {
  it('takes the smaller of the share and the amount, and is off when either is 0', () => {
    assert.equal(lowWatermarkBytes(1000 * GiB, defaults), 2 * GiB);
    assert.equal(lowWatermarkBytes(8 * 1024 * 1024, defaults), Math.floor(8 * 1024 * 1024 * 0.05));
    assert.equal(lowWatermarkBytes(1000 * GiB, { freeMinPercent: 0, freeMinBytes: 2 * GiB }), 0);
    assert.equal(lowWatermarkBytes(1000 * GiB, { freeMinPercent: 5, freeMinBytes: 0 }), 0);
  });

  it('goes low below the threshold and resumes only a tenth above it', () => {
    const total = 100 * 1024 * 1024;
    const threshold = lowWatermarkBytes(total, defaults);
    assert.equal(diskIsLow({ totalBytes: total, freeBytes: threshold }, defaults, false, false), false);
    assert.equal(diskIsLow({ totalBytes: total, freeBytes: threshold - 1 }, defaults, false, false), true);
    assert.equal(diskIsLow({ totalBytes: total, freeBytes: threshold + 1 }, defaults, true, false), true);
    assert.equal(diskIsLow({ totalBytes: total, freeBytes: threshold + Math.ceil(threshold / 10) }, defaults, true, false), false);
  });

  it('after ENOSPC waits for a floor of free space even with the watermark off', () => {
    const off = { freeMinPercent: 0, freeMinBytes: 0 };
    assert.equal(diskIsLow({ totalBytes: GiB, freeBytes: 10 }, off, false, false), false);
    assert.equal(diskIsLow({ totalBytes: GiB, freeBytes: RESUME_AFTER_FULL_MIN_BYTES - 1 }, off, true, true), true);
    assert.equal(diskIsLow({ totalBytes: GiB, freeBytes: RESUME_AFTER_FULL_MIN_BYTES }, off, true, true), false);
  });

  it('never flips while free space stays inside the hysteresis band', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1024 * 1024, max: 2 ** 45 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (total, percent, bytes, where, wasLow) => {
        const settings = { freeMinPercent: percent, freeMinBytes: bytes };
        const threshold = lowWatermarkBytes(total, settings);
        const free = threshold + Math.floor(where * Math.ceil(threshold / 10));
        const resumeLevel = threshold + Math.ceil(threshold / 10);
        if (free >= resumeLevel) return;
        assert.equal(diskIsLow({ totalBytes: total, freeBytes: free }, settings, wasLow, false), wasLow);
      }),
      { numRuns: 500 },
    );
  });
});
