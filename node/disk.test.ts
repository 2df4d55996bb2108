// Goal: the node runtime's disk parts do what docs/operations.md says: the shard policy gives
// the node's retention to the MQTT data shards only (never a system shard), and the disk watch
// blocks and unblocks the broker's write gate as the watermark says, with one warning per
// episode, and blocks at once on ENOSPC.
// Method: the policy as a function; the watch over a real journal directory (statfs of /tmp)
// with watermark settings that make it low (100 % of the disk) or not (0: off), changed
// between checks the way a live setting change does.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Broker } from '../engine/index.js';
import { DEFAULT_SHARD_CONFIG, Journal } from '../journal/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { recordingLogger } from '../tests/support/recording-logger.js';
import { dataShardPolicy, DiskWatch } from './disk.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

describe('the data shard policy', () => {
  const policy = dataShardPolicy({ dataRetention: 3600, dataRetentionBytes: 0, dataSegmentBytes: 4096 });

  it('gives the MQTT data shards the node\'s retention and segment size', () => {
    assert.deepEqual(policy('mqtt.0', DEFAULT_SHARD_CONFIG), { retentionMs: 3_600_000, retentionBytes: null, segmentBytes: 4096 });
    assert.deepEqual(dataShardPolicy({ dataRetention: 0, dataRetentionBytes: 10, dataSegmentBytes: 4096 })('mqtt.17', DEFAULT_SHARD_CONFIG), { retentionMs: null, retentionBytes: 10, segmentBytes: 4096 });
  });

  it('leaves every other shard alone: system shards, compacted shards, look-alike names', () => {
    for (const name of ['$sessions', '$retained', '$users', '$acl', '$delayed', '$shared', 'mqtt.x', 'mqtt.', 'orders']) assert.equal(policy(name, DEFAULT_SHARD_CONFIG), undefined, name);
    assert.equal(policy('mqtt.0', { ...DEFAULT_SHARD_CONFIG, compacted: true }), undefined);
  });
});

describe('the disk watch', () => {
  it('blocks publishes below the watermark with one warning, resumes when it no longer holds, and blocks at once on ENOSPC', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shardline-disk-watch-'));
    directories.push(directory);
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    const { logger, messages } = recordingLogger('info');
    const broker = await Broker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), dataShards: 1, maxQueuedBytes: 1024 * 1024 });
    // 100 % of the disk (capped at 1 PiB): always below. 0: off.
    const settings = { freeMinPercent: 100, freeMinBytes: 2 ** 50 };
    const watch = await DiskWatch.start({ journal, settings: () => settings, intervalMs: 60_000, logger, broker });
    try {
      assert.equal(watch.status?.low, true);
      assert.equal(broker.writeGate.open, false);
      assert.deepEqual(broker.writeGate.blocks.map((block) => block.reason), ['disk-low']);
      await assert.rejects(broker.publish({ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, publisherId: 'p', timestamp: 1, properties: undefined }), (error: { code?: string }) => error.code === 'SL_BROKER_WRITES_BLOCKED');
      await watch.check();
      assert.equal(messages().filter((message) => message.includes('disk space low')).length, 1, 'one warning per episode');
      assert.ok((watch.status?.totalBytes ?? 0) > 0 && (watch.status?.freeBytes ?? 0) > 0);
      assert.equal(watch.status?.path, journal.directory);

      settings.freeMinPercent = 0;
      await watch.check();
      assert.equal(broker.writeGate.open, true);
      assert.equal(watch.status?.low, false);
      assert.equal(messages().filter((message) => message.includes('publishes are accepted again')).length, 1);

      // ENOSPC with the watermark off: blocked at once; the next check finds more than 1 MiB free.
      let blockedMeanwhile = false;
      const unsubscribe = broker.writeGate.onChange((open) => {
        if (!open) blockedMeanwhile = true;
      });
      broker.onDiskFull?.();
      assert.equal(blockedMeanwhile, true);
      await watch.check();
      assert.equal(broker.writeGate.open, true);
      unsubscribe();
    } finally {
      watch.stop();
      await broker.close();
      await journal.close();
    }
  });
});
