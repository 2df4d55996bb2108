// Real crash test of a placement voter's storage (node/placement-storage): a child process
// saves Raft-legal operations (appends, overwrites of an uncommitted suffix, hard states,
// snapshots from a leader, local snapshots, compactions) and is killed with SIGKILL at a random
// moment, again and again on the same directory.
//
// Goal: every save the child reported complete is there exactly after the kill (entries with
// their terms and data, the hard state, the snapshot, the compacted prefix); the one save in
// flight is either wholly there or wholly absent (never half visible: no hole, no entry of a
// wrong term, no hard state without its entries); indices stay dense; and the applied state in
// LevelDB never gets ahead of the log (openPlacementStorage's cross-checks pass).
// Method: the child (tests/fixtures/placement-storage-writer.ts) prints "begin <op>" before
// and "done" after each operation. The parent keeps a model (the Raft core's MemoryStorage)
// with every completed operation applied; after the kill it opens the storage itself and its
// view must equal the model, or the model plus the operation in flight. That view is the next
// round's model. Kill delays come from a printed seed (PLACEMENT_CRASH_SEED replays them; the
// kill timing against the child's fsyncs is not deterministic), rounds from
// PLACEMENT_CRASH_ROUNDS.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openPlacementStorage } from '../node/placement-storage/index.js';
import { ModelLog, decodeOp, dumpStorage, type RaftLogOp } from '../node/placement-storage/testing.js';
import { runAndKill } from './support/kill-child.js';
import { seededRandom } from './support/seeded-random.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'placement-storage-writer.ts');
const ROUNDS = Number(process.env.PLACEMENT_CRASH_ROUNDS ?? 12);

interface ChildRun {
  done: RaftLogOp[];
  pending: RaftLogOp | null;
}

async function runChild(directory: string, seed: number, delayMs: number): Promise<ChildRun> {
  const run: ChildRun = { done: [], pending: null };
  const unexpected: string[] = [];
  await runAndKill({
    script: CHILD,
    args: [directory, String(seed)],
    delayMs,
    label: `seed ${seed}`,
    onLine: (line) => {
      if (line === 'ready') return true;
      if (line.startsWith('begin ')) run.pending = decodeOp(line.slice('begin '.length));
      else if (line === 'done' && run.pending !== null) {
        run.done.push(run.pending);
        run.pending = null;
      } else unexpected.push(line);
      return false;
    },
  });
  assert.deepEqual(unexpected, [], 'the child printed only its protocol');
  return run;
}

test('every completed save survives SIGKILL exactly; the save in flight is all or nothing', { timeout: 180_000 }, async (t) => {
  const seed = Number(process.env.PLACEMENT_CRASH_SEED ?? Date.now() % 2 ** 31);
  t.diagnostic(`PLACEMENT_CRASH_SEED=${seed}`);
  const next = seededRandom(seed);
  const directory = await mkdtemp(join(tmpdir(), 'shardline-placement-crash-'));
  const counts = { saves: 0, overwrites: 0, installs: 0, snapshots: 0, compactions: 0, inFlightKept: 0, inFlightLost: 0 };
  try {
    let model = new ModelLog();
    for (let round = 0; round < ROUNDS; round += 1) {
      const delayMs = 20 + Math.floor(next() * 400);
      const run = await runChild(directory, seed * 100 + round, delayMs);
      for (const op of run.done) {
        countOp(op, model, counts);
        model.apply(op);
      }
      const storage = await openPlacementStorage({ directory });
      try {
        const recovered = dumpStorage(storage.log.storage);
        const withoutPending = dumpStorage(model.storage);
        let withPending: unknown = null;
        let modelWithPending: ModelLog | null = null;
        if (run.pending !== null) {
          modelWithPending = ModelLog.from(model.storage);
          modelWithPending.apply(run.pending);
          withPending = dumpStorage(modelWithPending.storage);
        }
        if (modelWithPending !== null && isDeepStrictEqual(recovered, withPending) && !isDeepStrictEqual(recovered, withoutPending)) {
          counts.inFlightKept += 1;
        } else {
          assert.deepEqual(recovered, withoutPending, `round ${round}: the recovered log is neither the completed saves nor them plus the one in flight (${run.pending?.kind ?? 'none'})`);
          if (run.pending !== null) counts.inFlightLost += 1;
        }
        // The view just checked equal to one of the candidates is the next round's model.
        model = ModelLog.from(storage.log.storage);
        t.diagnostic(`round ${round}: killed after ${delayMs} ms, ${run.done.length} operations done; log ${storage.log.storage.firstIndex()}..${storage.log.storage.lastIndex()}, applied ${storage.restart.appliedIndex}, ${storage.log.shardInfo().segmentCount} segments`);
      } finally {
        await storage.applied.close();
        await storage.log.close();
      }
    }
    t.diagnostic(JSON.stringify(counts));
    console.log(`placement-storage-crash: ${ROUNDS} kills, ${JSON.stringify(counts)}`);
    assert.ok(counts.saves > 0 && counts.overwrites > 0 && counts.compactions > 0, `the children saved, overwrote and compacted: ${JSON.stringify(counts)}`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

function countOp(op: RaftLogOp, model: ModelLog, counts: Record<string, number>): void {
  if (op.kind === 'snapshot') counts.snapshots! += 1;
  else if (op.kind === 'compact') counts.compactions! += op.index > model.storage.firstIndex() - 1 ? 1 : 0;
  else {
    counts.saves! += 1;
    if (op.update.snapshot !== undefined) counts.installs! += 1;
    const first = op.update.entries[0];
    if (first !== undefined && first.index <= model.storage.lastIndex()) counts.overwrites! += 1;
  }
}

function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
