// Goal: a follower's copy of its leader's batches is byte-identical (append-as-stored keeps the
// leader's offsets, epochs and checksums), the epoch history follows appends and truncations and
// is rebuilt identically from the files after a reopen, and bad stored batches are refused
// without touching the log. Method: two real journals on disk, one playing leader, one follower.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Journal } from '../journal.js';
import { readBatchHeader } from '../segment/batch-format.js';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';
import { EPOCH_CHECKPOINT_FILE } from './epoch-checkpoint.js';
import { ReplicaLog } from './replica-log.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function journal(): Promise<Journal> {
  const directory = await mkdtemp(join(tmpdir(), 'sl-replica-log-'));
  directories.push(directory);
  return Journal.open(directory, { retentionCheckMs: 0 });
}

function records(...values: string[]) {
  return values.map((value) => ({ key: null, value: Buffer.from(value), headers: [] }));
}

async function allBatches(journal: Journal, shard: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < journal.info(shard).nextOffset) {
    const page = await journal.readBatches(shard, offset);
    out.push(...page.batches);
    offset = page.next;
  }
  return out;
}

test('stored batches are copied byte for byte; the epoch history follows appends, truncation and reopen', async () => {
  const leader = await journal();
  await leader.createShard('s');
  const leaderLog = await ReplicaLog.open(leader.shard('s'));
  await leaderLog.append(records('a', 'b'), 1);
  await leaderLog.append(records('c'), 1);
  await leaderLog.append(records('d', 'e', 'f'), 3);
  assert.deepEqual(leaderLog.history.list(), [{ epoch: 1, startOffset: 0 }, { epoch: 3, startOffset: 3 }]);

  const follower = await journal();
  await follower.createShard('s');
  const followerLog = await ReplicaLog.open(follower.shard('s'));
  await followerLog.appendStored(await allBatches(leader, 's'));
  assert.deepEqual(await allBatches(follower, 's'), await allBatches(leader, 's'), 'the same bytes, checksums included');
  assert.deepEqual(followerLog.history.list(), leaderLog.history.list());
  assert.equal(followerLog.end, 6);

  // The divergent suffix goes; the history loses the epoch that started in it.
  await followerLog.truncateTo(3);
  assert.equal(followerLog.end, 3);
  assert.deepEqual(followerLog.history.list(), [{ epoch: 1, startOffset: 0 }]);

  // A new epoch appended past the cut, then a reopen rebuilds the same history from the files.
  const other = await journal();
  await other.createShard('s');
  const otherLog = await ReplicaLog.open(other.shard('s'));
  await otherLog.appendStored((await allBatches(follower, 's')));
  await otherLog.append(records('x'), 5);
  const [, , fifth] = await allBatches(other, 's');
  await followerLog.appendStored([fifth as Buffer]);
  assert.deepEqual(followerLog.history.list(), [{ epoch: 1, startOffset: 0 }, { epoch: 5, startOffset: 3 }]);
  const directory = follower.shard('s').directory;
  await follower.close();
  const reopened = await Journal.open(join(directory, '..', '..'), { retentionCheckMs: 0 });
  const reopenedLog = await ReplicaLog.open(reopened.shard('s'));
  assert.deepEqual(reopenedLog.history.list(), [{ epoch: 1, startOffset: 0 }, { epoch: 5, startOffset: 3 }]);
  assert.deepEqual((await reopened.read('s', 0)).map((record) => record.value?.toString()), ['a', 'b', 'c', 'x']);
  await Promise.all([leader.close(), reopened.close(), other.close()]);
});

test('a stored batch that does not start at the log end, is damaged, or has an older epoch is refused and not written', async () => {
  const leader = await journal();
  await leader.createShard('s');
  const leaderLog = await ReplicaLog.open(leader.shard('s'));
  await leaderLog.append(records('a'), 2);
  await leaderLog.append(records('b'), 2);
  const [first, second] = await allBatches(leader, 's');

  const follower = await journal();
  await follower.createShard('s');
  const followerLog = await ReplicaLog.open(follower.shard('s'));
  await assert.rejects(followerLog.appendStored([second as Buffer]), { code: 'SL_JOURNAL_INVALID_ARGUMENT' }, 'offset 1 on an empty log');
  const damaged = Buffer.from(first as Buffer);
  damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 0xff, damaged.length - 1);
  await assert.rejects(followerLog.appendStored([damaged]), { code: 'SL_JOURNAL_CORRUPT_BATCH' });
  assert.equal(followerLog.end, 0);
  assert.deepEqual(followerLog.history.list(), []);

  await followerLog.append(records('z'), 4);
  await assert.rejects(followerLog.appendStored([second as Buffer]), { code: 'SL_JOURNAL_STALE_EPOCH' }, 'epoch 2 after epoch 4');
  assert.equal(followerLog.end, 1);
  await Promise.all([leader.close(), follower.close()]);
});

test('opening reads the epoch history from the checkpoint and scans only the log past it; a checkpoint that does not match the log is not trusted', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'sl-replica-log-'));
  directories.push(directory);
  let owner = await Journal.open(directory, { retentionCheckMs: 0 });
  await owner.createShard('s', { segmentBytes: 64 * 1024 });
  const log = await ReplicaLog.open(owner.shard('s'));
  const body = 'x'.repeat(1_000);
  for (let i = 0; i < 150; i += 1) await log.append(records(body), 1);
  await log.append(records('epoch 2 starts'), 2, true);
  for (let i = 0; i < 150; i += 1) await log.append(records(body), 2);
  await log.append(records('epoch 4 starts'), 4, true);
  await log.append(records(body), 4);
  const expected = [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 150 }, { epoch: 4, startOffset: 301 }];
  assert.deepEqual(log.history.list(), expected);
  await owner.close();

  /** Opens the replica log over a fresh journal, counting the batch bytes it reads. */
  const openCounting = async (): Promise<{ log: ReplicaLog; bytesRead: number; shardBytes: number }> => {
    owner = await Journal.open(directory, { retentionCheckMs: 0 });
    const shard = owner.shard('s');
    const read = shard.readBatches.bind(shard);
    let bytesRead = 0;
    shard.readBatches = async (from, options) => {
      const page = await read(from, options);
      for (const batch of page.batches) bytesRead += batch.length;
      return page;
    };
    // The writer table's scan of the log's tail (bounded by bytes, not by the checkpoint) is
    // left out: this counts what the epoch history costs.
    const opened = await ReplicaLog.open(shard, undefined, 0);
    shard.readBatches = read;
    return { log: opened, bytesRead, shardBytes: owner.info('s').sizeBytes };
  };

  let opened = await openCounting();
  assert.deepEqual(opened.log.history.list(), expected);
  assert.ok(opened.bytesRead < opened.shardBytes / 20, `read ${opened.bytesRead} of ${opened.shardBytes} bytes`);
  // Appends that start no epoch leave the checkpoint behind; the open scans just that tail.
  for (let i = 0; i < 5; i += 1) await opened.log.append(records(body), 4);
  await owner.close();
  opened = await openCounting();
  assert.deepEqual(opened.log.history.list(), expected);
  assert.ok(opened.bytesRead < opened.shardBytes / 20, `read ${opened.bytesRead} of ${opened.shardBytes} bytes`);
  // A cut rewrites the checkpoint first; the reopened history is the cut one.
  await opened.log.truncateTo(200);
  assert.deepEqual(opened.log.history.list(), expected.slice(0, 2));
  await owner.close();
  opened = await openCounting();
  assert.deepEqual(opened.log.history.list(), expected.slice(0, 2));
  await owner.close();

  // A checkpoint that names an epoch the log does not have at that offset: the whole log is read.
  await writeFile(join(directory, 'shards', 's', EPOCH_CHECKPOINT_FILE), JSON.stringify({ version: 1, through: 200, entries: [{ epoch: 1, startOffset: 0 }, { epoch: 3, startOffset: 150 }] }));
  opened = await openCounting();
  assert.deepEqual(opened.log.history.list(), expected.slice(0, 2));
  assert.ok(opened.bytesRead >= opened.shardBytes * 0.9, `read ${opened.bytesRead} of ${opened.shardBytes} bytes`);
  await owner.close();
});

test('the epoch history an open loads equals a scan of the log after a power cut at any step of a cut and of the next epoch start', async () => {
  const scanned = async (owner: Journal): Promise<{ epoch: number; startOffset: number }[]> => {
    const out: { epoch: number; startOffset: number }[] = [];
    for (const batch of await allBatches(owner, 's')) {
      const header = readBatchHeader(batch, 0);
      if (out.at(-1)?.epoch !== header.leaderEpoch) out.push({ epoch: header.leaderEpoch, startOffset: header.baseOffset });
    }
    return out;
  };
  let cutsThatStruck = 0;
  for (let seed = 0; seed < 12; seed++) {
    for (let operations = 1; operations <= 24; operations++) {
      const { disk, open } = await journalOnSimulatedDisk(seed);
      const owner = await open();
      await owner.createShard('s', { durability: 'fsync', segmentBytes: 1024 });
      const log = await ReplicaLog.open(owner.shard('s'));
      for (const epoch of [1, 2, 3]) for (let i = 0; i < 5; i += 1) await log.append(records('v'.repeat(100)), epoch, i === 0);
      disk.powerCutAfterOperations(operations);
      const done = await (async () => {
        await log.truncateTo(7);
        await log.append(records('epoch 4 starts'), 4, true);
        await log.append(records('after'), 4);
      })().then(() => true, () => false);
      if (done) disk.powerCut();
      else cutsThatStruck += 1;
      const reopened = await open();
      const history = (await ReplicaLog.open(reopened.shard('s'))).history.list();
      assert.deepEqual(history, await scanned(reopened), `seed ${seed}, power cut after ${operations} operations${done ? ' (after the steps)' : ''}\n${disk.describe()}`);
      await reopened.close();
    }
  }
  assert.ok(cutsThatStruck > 100, `power cuts struck inside the steps (${cutsThatStruck})`);
});

test("a compacted shard's follower takes the leader's compacted batches, gaps and all, at the same offsets", async () => {
  const leader = await journal();
  await leader.createShard('c', { compacted: true, segmentBytes: 1024 });
  const leaderLog = await ReplicaLog.open(leader.shard('c'));
  await leaderLog.append([{ key: null, value: null, headers: [] }], 1, true);
  for (let i = 0; i < 40; i += 1) await leaderLog.append([{ key: Buffer.from(`k${i % 4}`), value: Buffer.alloc(100, i), headers: [] }], 1);
  await leader.shard('c').rollNow();
  await leader.compact('c');
  const batches = await allBatches(leader, 'c');
  const bases = batches.map((batch) => readBatchHeader(batch, 0).baseOffset);
  assert.ok(bases.some((base, index) => index > 0 && base > readBatchHeader(batches[index - 1] as Buffer, 0).baseOffset + 1), `compaction left a gap: ${bases.join(',')}`);

  const follower = await journal();
  await follower.createShard('c', { compacted: true, segmentBytes: 1024 });
  const followerLog = await ReplicaLog.open(follower.shard('c'));
  await followerLog.appendStored(batches);
  assert.deepEqual(await allBatches(follower, 'c'), batches);
  assert.equal(followerLog.end, leaderLog.end);
  assert.deepEqual(followerLog.history.list(), leaderLog.history.list());
  // Not in a shard with dense offsets: a batch past the end is refused there.
  const plain = await journal();
  await plain.createShard('p');
  await assert.rejects(plain.shard('p').appendStored(batches.at(-1) as Buffer), (error: unknown) => (error as { code?: string }).code === 'SL_JOURNAL_INVALID_ARGUMENT');
});
