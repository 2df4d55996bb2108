// Goal: the pipelined group commit (issue 16) overlaps a group's writev with the previous
// group's fdatasync, yet acknowledges an append only after an fdatasync that was called once its
// write had completed, acknowledges in offset order, never lets readers see past what is
// durable, and on a failed write or sync fails exactly what was not durable, through the
// shard's failed-write path (cut back, refused until reopened, dense offsets after).
// Method: the journal over a SimulatedDisk behind a wrapper that holds each writev and
// fdatasync of the log until the test lets it finish (or fail), in any order the test picks;
// the wrapper records when each write completed and which completed writes each sync call
// covered, and that model says what is durable. fast-check picks arrivals and completion
// orders; scripted cases pin the overlap and both failure orders.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JournalFile, JournalFileSystem } from '../file-system.js';
import type { Journal } from '../journal.js';
import { diskError } from '../sim/simulated-disk.js';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';
import { RECOVERY_BACKOFF_MS } from './shard.js';

interface HeldOperation {
  kind: 'write' | 'sync';
  /** Completes the operation on the simulated disk (or fails it with EIO). */
  finish(fail: boolean): void;
}

/** Holds the log's writev and datasync calls; keeps the model of what is durable. */
class HeldLog {
  holding = false;
  readonly held: HeldOperation[] = [];
  readonly events: string[] = [];
  /** End of the log's completed writes. */
  writtenEnd = 0;
  /** Largest end a successful sync covered (the writes completed when it was called). */
  durableEnd = 0;

  wrap(fs: JournalFileSystem): JournalFileSystem {
    return { ...fs, open: async (path, mode) => this.wrapFile(await fs.open(path, mode), path) };
  }

  private wrapFile(file: JournalFile, path: string): JournalFile {
    if (!path.endsWith('.log')) return file;
    const wrapped: JournalFile = Object.create(file) as JournalFile;
    wrapped.writev = (buffers, position) => {
      if (!this.holding) return file.writev(buffers, position);
      let bytes = 0;
      for (const buffer of buffers) bytes += buffer.length;
      this.events.push(`write-call ${position}+${bytes}`);
      return new Promise((resolve, reject) => {
        this.held.push({
          kind: 'write',
          finish: (fail) => {
            if (fail) {
              this.events.push(`write-fail ${position}`);
              reject(diskError('EIO', 'writev', path));
              return;
            }
            file.writev(buffers, position).then((result) => {
              this.writtenEnd = Math.max(this.writtenEnd, position + result.bytesWritten);
              this.events.push(`write-done ${position + result.bytesWritten}`);
              resolve(result);
            }, reject);
          },
        });
      });
    };
    wrapped.datasync = () => {
      if (!this.holding) return file.datasync();
      // What this sync makes durable: the writes that had completed when it was called.
      const covers = this.writtenEnd;
      this.events.push(`sync-call ${covers}`);
      return new Promise((resolve, reject) => {
        this.held.push({
          kind: 'sync',
          finish: (fail) => {
            if (fail) {
              this.events.push('sync-fail');
              reject(diskError('EIO', 'datasync', path));
              return;
            }
            file.datasync().then(() => {
              this.durableEnd = Math.max(this.durableEnd, covers);
              this.events.push(`sync-done ${covers}`);
              resolve();
            }, reject);
          },
        });
      });
    };
    return wrapped;
  }

  /** Finishes the held operation at `index` and lets the journal react. */
  async release(index: number, fail = false): Promise<void> {
    const [operation] = this.held.splice(index, 1);
    if (operation === undefined) throw new Error(`nothing held at ${index}`);
    operation.finish(fail);
    await settle();
  }

  indexOf(kind: HeldOperation['kind']): number {
    return this.held.findIndex((operation) => operation.kind === kind);
  }
}

/** Lets every promise chain the last step started run to its end (the simulated disk resolves in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

const VALUE = Buffer.alloc(100, 7);

interface Setup {
  journal: Journal;
  log: HeldLog;
  now: { ms: number };
  /** Bytes of one append of one VALUE record (every batch has the same size). */
  batchBytes: number;
}

async function setUp(seed: number, shardConfig: { segmentBytes?: number; maxQueuedAppendBytes?: number } = {}): Promise<Setup> {
  const log = new HeldLog();
  const now = { ms: 1_000_000 };
  const { disk } = await journalOnSimulatedDisk(seed);
  const { Journal: JournalClass } = await import('../journal.js');
  const { NO_LOCK_PROBE } = await import('../sim/journal-on-simulated-disk.js');
  const journal = await JournalClass.open('/data', { fileSystem: log.wrap(disk.mount()), clock: () => now.ms, retentionCheckMs: 0, lockProbe: NO_LOCK_PROBE });
  await journal.createShard('s', { durability: 'fsync', ...shardConfig });
  await journal.append('s', [{ value: VALUE }]);
  const batchBytes = journal.info('s').sizeBytes;
  log.writtenEnd = batchBytes;
  log.durableEnd = batchBytes;
  log.holding = true;
  return { journal, log, now, batchBytes };
}

/** Tracks appends: acknowledgement order and the durability model at each acknowledgement. */
function tracker(setup: Setup) {
  const acked: number[] = [];
  const failed: string[] = [];
  const violations: string[] = [];
  const append = (): Promise<void> =>
    setup.journal.append('s', [{ value: VALUE }]).then(
      ({ lastOffset }) => {
        const end = (lastOffset + 1) * setup.batchBytes;
        if (end > setup.log.durableEnd) violations.push(`offset ${lastOffset} acknowledged with its end ${end} past the durable end ${setup.log.durableEnd}`);
        acked.push(lastOffset);
      },
      (error: { code?: string }) => {
        failed.push(error.code ?? String(error));
      },
    );
  const checkVisibility = (): void => {
    const visibleEnd = setup.journal.info('s').nextOffset * setup.batchBytes;
    if (visibleEnd > setup.log.durableEnd) violations.push(`readers see up to ${visibleEnd}, past the durable end ${setup.log.durableEnd}`);
  };
  return { acked, failed, violations, append, checkVisibility };
}

describe('pipelined group commit', () => {
  it('writes the next group during the previous fdatasync, and acknowledges it only after a sync called after its write', async () => {
    const setup = await setUp(1);
    const { log } = setup;
    const t = tracker(setup);
    const first = t.append();
    await settle();
    assert.deepEqual(log.held.map((operation) => operation.kind), ['write']);
    await log.release(0);
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync'], 'group 1 is in its fdatasync');

    const second = t.append();
    await settle();
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync', 'write'], "group 2's write is issued while group 1 syncs");
    await log.release(log.indexOf('write'));
    assert.deepEqual(t.acked, [], 'nothing acknowledged before a sync completed');

    // Group 1's sync was called before group 2's write completed: it acknowledges group 1 only.
    await log.release(log.indexOf('sync'));
    assert.deepEqual(t.acked, [1]);
    assert.equal(setup.journal.info('s').nextOffset, 2, 'readers see group 1, not group 2');
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync'], "group 2's own sync");
    await log.release(0);
    await Promise.all([first, second]);
    assert.deepEqual(t.acked, [1, 2]);
    assert.deepEqual(t.violations, []);
    assert.deepEqual(log.events, ['write-call 156+156', 'write-done 312', 'sync-call 312', 'write-call 312+156', 'write-done 468', 'sync-done 312', 'sync-call 468', 'sync-done 468'].map((event) => event.replace(/156|312|468/g, (n) => String((Number(n) / 156) * setup.batchBytes))));
    log.holding = false;
    await setup.journal.close();
  });

  it('appends arriving during a sync share the next one (adaptive group commit)', async () => {
    const setup = await setUp(2);
    const { log } = setup;
    const t = tracker(setup);
    const all = [t.append()];
    await settle();
    await log.release(0);
    // Five arrivals during group 1's sync: written as they come (one write at a time) and all
    // covered by one sync.
    for (let i = 0; i < 5; i += 1) all.push(t.append());
    await settle();
    while (log.indexOf('write') >= 0) await log.release(log.indexOf('write'));
    await log.release(log.indexOf('sync'));
    assert.deepEqual(t.acked, [1]);
    assert.equal(log.held.filter((operation) => operation.kind === 'sync').length, 1);
    await log.release(log.indexOf('sync'));
    await Promise.all(all);
    assert.deepEqual(t.acked, [1, 2, 3, 4, 5, 6]);
    assert.equal(log.events.filter((event) => event.startsWith('sync-call')).length, 2, 'two syncs for six appends');
    assert.deepEqual(t.violations, []);
    log.holding = false;
    await setup.journal.close();
  });

  it('a sync that ends while a write is in flight: the next sync waits for that write and covers it too', async () => {
    const setup = await setUp(7);
    const { log } = setup;
    const t = tracker(setup);
    const all = [t.append()];
    await settle();
    await log.release(0);
    // During group 1's sync: group 2 written, group 3 in its write.
    all.push(t.append());
    await settle();
    await log.release(log.indexOf('write'));
    all.push(t.append());
    await settle();
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync', 'write']);
    await log.release(log.indexOf('sync'));
    assert.deepEqual(t.acked, [1]);
    assert.deepEqual(log.held.map((operation) => operation.kind), ['write'], 'group 2 waits for group 3 to be written');
    await log.release(0);
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync']);
    await log.release(0);
    await Promise.all(all);
    assert.deepEqual(t.acked, [1, 2, 3]);
    assert.equal(log.events.filter((event) => event.startsWith('sync-call')).length, 2, 'groups 2 and 3 share one sync');
    assert.deepEqual(t.violations, []);
    log.holding = false;
    await setup.journal.close();
  });

  it('a failed fdatasync fails the group written during it too; the shard is cut back and takes the same offsets after its backoff', async () => {
    const setup = await setUp(3);
    const { log } = setup;
    const t = tracker(setup);
    const all = [t.append()];
    await settle();
    await log.release(0);
    all.push(t.append());
    await settle();
    await log.release(log.indexOf('write'));
    await log.release(log.indexOf('sync'), true);
    while (log.held.length > 0) await log.release(0);
    await Promise.all(all);
    assert.deepEqual(t.acked, []);
    assert.deepEqual(t.failed, ['SL_JOURNAL_IO', 'SL_JOURNAL_IO']);
    await assert.rejects(setup.journal.append('s', [{ value: VALUE }]), { code: 'SL_JOURNAL_IO' });
    log.holding = false;
    setup.now.ms += RECOVERY_BACKOFF_MS;
    assert.equal((await setup.journal.append('s', [{ value: VALUE }])).baseOffset, 1, 'offsets stay dense');
    assert.equal((await setup.journal.read('s', 0)).length, 2);
    await setup.journal.close();
  });

  it('a failed write during a sync that then succeeds: the synced group is acknowledged, the failed one and the queue fail', async () => {
    const setup = await setUp(4);
    const { log } = setup;
    const t = tracker(setup);
    const all = [t.append()];
    await settle();
    await log.release(0);
    all.push(t.append());
    await settle();
    all.push(t.append());
    await settle();
    await log.release(log.indexOf('write'), true);
    assert.deepEqual(t.acked, [], 'group 1 waits for its sync, which is still running');
    await log.release(log.indexOf('sync'));
    while (log.held.length > 0) await log.release(0);
    await Promise.all(all);
    assert.deepEqual(t.acked, [1]);
    assert.deepEqual(t.failed, ['SL_JOURNAL_IO', 'SL_JOURNAL_IO']);
    assert.deepEqual(t.violations, []);
    log.holding = false;
    setup.now.ms += RECOVERY_BACKOFF_MS;
    assert.equal((await setup.journal.append('s', [{ value: VALUE }])).baseOffset, 2);
    assert.deepEqual((await setup.journal.read('s', 0)).map((record) => record.offset), [0, 1, 2]);
    await setup.journal.close();
  });

  it('a group that rolls the segment waits for the sync in flight before the roll syncs the sealed segment', async () => {
    // 1 KiB segments hold 5 batches of 182 bytes; the first append (not held) is the first.
    const setup = await setUp(5, { segmentBytes: 1024 });
    const { log } = setup;
    const t = tracker(setup);
    const all: Promise<void>[] = [];
    for (let i = 0; i < 3; i += 1) all.push(t.append());
    await settle();
    await log.release(log.indexOf('write'));
    all.push(t.append());
    await settle();
    await log.release(log.indexOf('write'));
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync'], 'group 1 syncs; group 2 (the fifth batch) is written');
    all.push(t.append());
    await settle();
    const syncCalls = log.events.filter((event) => event.startsWith('sync-call')).length;
    assert.deepEqual(log.held.map((operation) => operation.kind), ['sync'], 'the group that rolls writes nothing and starts no sync while the sync runs');
    await log.release(0);
    assert.deepEqual(t.acked, [1, 2, 3]);
    assert.ok(log.events.filter((event) => event.startsWith('sync-call')).length > syncCalls, 'then the roll goes on');
    log.holding = false;
    while (log.held.length > 0) await log.release(0);
    await Promise.all(all);
    // (The byte model of `tracker` covers one log file; after the roll it does not apply.)
    assert.deepEqual(t.acked, [1, 2, 3, 4, 5]);
    assert.equal(setup.journal.info('s').segmentCount, 2);
    assert.deepEqual((await setup.journal.read('s', 0)).map((record) => record.offset), [0, 1, 2, 3, 4, 5]);
    await setup.journal.close();
  });

  it('maxQueuedAppendBytes bounds what is queued and what is written but not yet acknowledged', async () => {
    const setup = await setUp(6, { maxQueuedAppendBytes: 1024 });
    const { log, batchBytes } = setup;
    const t = tracker(setup);
    const fits = Math.floor(1024 / batchBytes);
    const all: Promise<void>[] = [];
    const refused = async (): Promise<void> => assert.rejects(setup.journal.append('s', [{ value: VALUE }]), { code: 'SL_JOURNAL_OVERLOADED' });
    // One in its write, the rest queued behind it, up to the bound.
    all.push(t.append());
    await settle();
    for (let i = 1; i < fits; i += 1) all.push(t.append());
    await refused();
    await log.release(log.indexOf('write'));
    await settle();
    // The first group syncs, the others are being written: nothing queued, all still counted.
    assert.deepEqual(log.held.map((operation) => operation.kind).sort(), ['sync', 'write']);
    all.push(t.append());
    await refused();
    log.holding = false;
    while (log.held.length > 0) await log.release(0);
    await Promise.all(all);
    assert.equal(t.acked.length, fits + 1);
    // Everything acknowledged frees the bound again.
    log.holding = true;
    for (let i = 0; i < fits; i += 1) all.push(t.append());
    await refused();
    log.holding = false;
    while (log.held.length > 0) await log.release(0);
    await Promise.all(all);
    assert.equal(t.acked.length, 2 * fits + 1);
    await setup.journal.close();
  });

  it('property: any arrivals and completion orders: acknowledgements in order, each after a covering sync, readers never past durable', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.oneof(fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 4 }) }), fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() })), { minLength: 1, maxLength: 40 }),
        async (seed, steps) => {
          const setup = await setUp(seed);
          const { log } = setup;
          const t = tracker(setup);
          const appends: Promise<void>[] = [];
          for (const step of steps) {
            if (step.kind === 'append') {
              for (let i = 0; i < step.count; i += 1) appends.push(t.append());
              await settle();
            } else if (log.held.length > 0) {
              await log.release(step.pick % log.held.length);
            }
            t.checkVisibility();
          }
          while (log.held.length > 0) {
            await log.release(0);
            t.checkVisibility();
          }
          await Promise.all(appends);
          assert.deepEqual(t.violations, []);
          assert.deepEqual(t.failed, []);
          assert.deepEqual(t.acked, Array.from({ length: appends.length }, (_, i) => i + 1), 'every append acknowledged, in offset order');
          // Never more than one write and one sync in flight.
          let writes = 0;
          let syncs = 0;
          for (const event of log.events) {
            if (event.startsWith('write-call')) writes += 1;
            if (event.startsWith('write-done')) writes -= 1;
            if (event.startsWith('sync-call')) syncs += 1;
            if (event.startsWith('sync-done')) syncs -= 1;
            assert.ok(writes <= 1 && syncs <= 1, log.events.join('\n'));
          }
          log.holding = false;
          await setup.journal.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
