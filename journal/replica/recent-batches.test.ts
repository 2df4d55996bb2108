// Goal: a fetch answered from the batches a replica keeps in memory (RecentBatches) is exactly
// what the segment files answer: the same batches, byte for byte, from the same offset, within
// the same byte budget and never past the visible end, also after truncations that rewrite the
// same offsets and after old batches were dropped for room. Method: fast-check runs random
// appends and truncations on a real shard on disk, fed to RecentBatches by the shard's write
// observer; after each step every offset of the log is read both ways.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { Journal } from '../journal.js';
import { readBatchHeader } from '../segment/batch-format.js';
import { RecentBatches } from './recent-batches.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

type Step = { kind: 'append'; values: string[] } | { kind: 'truncate'; back: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 5 }).map((values): Step => ({ kind: 'append', values })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }).map((back): Step => ({ kind: 'truncate', back })) },
);

test('reads from RecentBatches equal readBatches from the files, whatever appends and truncations came before', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.integer({ min: 200, max: 2_000 }), fc.integer({ min: 1, max: 1_500 }), async (steps, keepBytes, fetchBytes) => {
      const directory = await mkdtemp(join(tmpdir(), 'sl-recent-batches-'));
      directories.push(directory);
      const journal = await Journal.open(directory, { retentionCheckMs: 0 });
      try {
        await journal.createShard('s', { durability: 'none' });
        const shard = journal.shard('s');
        const recent = new RecentBatches(keepBytes);
        shard.observeWrites((batches) => recent.add(batches));
        for (const next of steps) {
          const end = shard.info().nextOffset;
          if (next.kind === 'append') await shard.append(next.values.map((value) => ({ key: null, value: Buffer.from(value), headers: [] })));
          else if (end > 0) {
            const cut = Math.max(0, end - next.back);
            await shard.truncateAfter(cut - 1);
            recent.dropFrom(cut);
          }
          const visible = shard.info().nextOffset;
          for (let from = 0; from < visible; from += 1) {
            const cached = recent.read(from, fetchBytes, visible);
            if (cached === null) continue;
            const stored = (await shard.readBatches(from, { maxBytes: fetchBytes })).batches;
            assert.ok(cached.length >= 1 && cached.length <= stored.length, `from ${from}: ${cached.length} cached batches, ${stored.length} stored`);
            assert.deepEqual(cached, stored.slice(0, cached.length), `from ${from}: the cached batches are the stored ones`);
          }
          // Bounded by the visible end it is given (a leader's durable end, below what it wrote).
          for (let limit = 0; limit < visible; limit += 1) {
            for (const batch of recent.read(0, fetchBytes, limit) ?? []) assert.ok(readBatchHeader(batch, 0).baseOffset + readBatchHeader(batch, 0).lastOffsetDelta < limit, `a batch ending past ${limit} was served`);
          }
          // The batch just written is held: a caught-up follower's next fetch is answered from
          // memory. (A truncation that shortens a batch rewrites it on disk only: reads of it go there.)
          if (next.kind === 'append') assert.ok(recent.read(visible - 1, fetchBytes, visible) !== null, 'the last batch is held');
          if (visible === 0) assert.equal(recent.read(0, fetchBytes, 0), null, 'an empty log holds nothing');
          assert.equal(recent.read(visible, fetchBytes, visible), null, 'nothing at the log end');
        }
      } finally {
        await journal.close();
      }
    }),
    { numRuns: 40 },
  );
});
