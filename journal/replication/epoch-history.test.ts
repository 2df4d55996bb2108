// EpochHistory against a model: a log written as runs of batches, each run in a newer epoch;
// the epoch-end answer and the epoch at each offset must match a scan of the log, before and
// after truncation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EpochHistory } from './epoch-history.js';

/** The log as one epoch per offset. */
function endByScan(epochs: readonly number[], asked: number): { epoch: number; endOffset: number } {
  let found = -1;
  for (const epoch of epochs) if (epoch <= asked) found = Math.max(found, epoch);
  if (found < 0) return { epoch: -1, endOffset: 0 };
  let end = 0;
  epochs.forEach((epoch, offset) => {
    if (epoch <= found) end = offset + 1;
  });
  return { epoch: found, endOffset: end };
}

describe('EpochHistory', () => {
  it('answers the epoch-end query as a scan of the log would, also after truncation', () => {
    const runs = fc.array(fc.record({ gap: fc.integer({ min: 1, max: 3 }), length: fc.integer({ min: 1, max: 5 }) }), { maxLength: 8 });
    fc.assert(
      fc.property(runs, fc.nat(45), fc.nat(30), (written, cut, asked) => {
        const epochs: number[] = [];
        const history = new EpochHistory();
        let epoch = 0;
        for (const run of written) {
          epoch += run.gap;
          history.assign(epoch, epochs.length);
          for (let i = 0; i < run.length; i++) {
            history.assign(epoch, epochs.length);
            epochs.push(epoch);
          }
        }
        assert.deepEqual(history.endOf(asked, epochs.length), endByScan(epochs, asked));
        epochs.forEach((expected, offset) => assert.equal(history.epochAt(offset), expected, `epoch at ${offset}`));
        const kept = epochs.slice(0, Math.min(cut, epochs.length));
        history.truncateFrom(kept.length);
        assert.deepEqual(history.endOf(asked, kept.length), endByScan(kept, asked));
        assert.equal(history.latestEpoch, kept.at(-1) ?? -1);
        kept.forEach((expected, offset) => assert.equal(history.epochAt(offset), expected, `epoch at ${offset} after the cut`));
      }),
    );
  });

  it('refuses an epoch older than the latest', () => {
    const history = EpochHistory.from([{ epoch: 3, startOffset: 0 }]);
    assert.throws(() => history.assign(2, 5), /epoch 2 appended after epoch 3/);
  });
});
