// A node whose data directory fills up, through `shardline start` with mqtt.js.
//
// Goal: below the disk watermark the node refuses publishes that need the journal (MQTT 5.0
// QoS 1: PUBACK 0x97 Quota exceeded), keeps delivering and taking acknowledgements, reports the
// condition (metric shardline_disk_low, /api/overview, one warning in the log), does not crash,
// loses nothing it acknowledged, and resumes by itself when space is freed. With the watermark
// off, a real ENOSPC does the same: the failed append is refused with 0x97 too, and the node
// resumes once space returns.
// Method: the data directory on a real 8 MiB tmpfs (tests/support/small-filesystem.ts); a filler
// file takes the space down to just above the watermark (5 % of 8 MiB, about 400 KiB) or, for
// ENOSPC, to almost nothing; a durable subscriber receives every accepted message; afterwards
// the node restarts and every acknowledged message is read back from the journal. Waits are for
// states (a 0x97, a 0x00 after freeing, a metric value), polled with a deadline, never sleeps.
import assert from 'node:assert/strict';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanup, startBroker, stopBroker, usingMosquitto, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic, type TestClient } from './support/mqtt-client.js';
import { mountSmallFilesystem, type SmallFilesystem } from './support/small-filesystem.js';

const TOKEN = 'disk-full-test-token-77c2';
const QUOTA_EXCEEDED = 0x97;
/** Accepted: 0x00, or 0x10 No matching subscribers (5.0) when nobody subscribed. */
const ACCEPTED = new Set([0x00, 0x10]);
const PAYLOAD_BYTES = 2048;
const payload = (i: number): string => `${String(i).padStart(6, '0')}-${'p'.repeat(PAYLOAD_BYTES - 7)}`;

async function freeBytes(directory: string): Promise<number> {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function adminGet(admin: string, path: string): Promise<string> {
  const response = await fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200, path);
  return response.text();
}

interface Run {
  acknowledged: number[];
  refused: number;
  next: number;
}

/** Publishes QoS 1 one at a time until `refusals` publishes were refused with 0x97 in a row. */
async function publishUntilRefused(client: TestClient, topic: string, run: Run, refusals: number, limit = 4000): Promise<void> {
  let inARow = 0;
  while (inARow < refusals) {
    assert.ok(run.next < limit, 'the disk never filled up');
    const index = run.next++;
    const result = await client.publish(topic, payload(index), { qos: 1 });
    const code = (result.ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
    if (ACCEPTED.has(code)) {
      run.acknowledged.push(index);
      inARow = 0;
    } else {
      assert.equal(code, QUOTA_EXCEEDED, `publish ${index}: reason code 0x${code.toString(16)}`);
      run.refused += 1;
      inARow += 1;
    }
  }
}

/** Publishes QoS 1 (a fresh index each time) until one is accepted again. */
async function publishUntilAccepted(client: TestClient, topic: string, run: Run): Promise<void> {
  await waitFor('publishes to be accepted again', async () => {
    const index = run.next++;
    const result = await client.publish(topic, payload(index), { qos: 1 });
    const code = (result.ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
    if (!ACCEPTED.has(code)) {
      assert.equal(code, QUOTA_EXCEEDED, `reason code 0x${code.toString(16)}`);
      return undefined;
    }
    run.acknowledged.push(index);
    return true;
  });
}

/** Every message of `topic` in the data shard, read back through the admin API. */
async function storedPayloadIndexes(admin: string, topic: string): Promise<number[]> {
  const found: number[] = [];
  let fromOffset = 0;
  for (;;) {
    const page = JSON.parse(await adminGet(admin, `/api/shards/mqtt.0/records?fromOffset=${fromOffset}&limit=500`)) as { items: Array<{ offset: number; key: string | null; value: string | null }> };
    if (page.items.length === 0) return found;
    for (const item of page.items) if (item.key === topic && item.value !== null) found.push(Number(item.value.slice(0, 6)));
    fromOffset = (page.items[page.items.length - 1]?.offset ?? fromOffset) + 1;
  }
}

if (!usingMosquitto()) {
  describe('a node whose disk fills up', () => {
    let filesystem: SmallFilesystem;
    before(async () => {
      filesystem = await mountSmallFilesystem(8 * 1024 * 1024);
    });
    after(async () => {
      closeAllClients();
      await cleanup();
      await filesystem.unmount();
    });

    async function start(dataDir: string, extra: string[] = []): Promise<{ broker: BrokerProcess; admin: string }> {
      const broker = await startBroker({
        dataDir,
        args: ['--data-shards', '1', '--sys-interval', '0', '--data-segment-bytes', '65536', '--data-retention', '0', '--disk-check-ms', '100', '--admin-token', TOKEN, ...extra],
      });
      return { broker, admin: `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}` };
    }

    it('refuses publishes below the watermark with 0x97, keeps delivering, and resumes when space is freed', async () => {
      const dataDir = join(filesystem.directory, 'watermark');
      let { broker, admin } = await start(dataDir);
      const topic = uniqueTopic('disk');
      const subscriberId = uniqueClientId('sub');
      const subscriber = await connectClient(broker.url, { clientId: subscriberId, clean: false, version: 5, properties: { sessionExpiryInterval: 600 } });
      await subscriber.subscribe(topic, { qos: 1 });
      const publisher = await connectClient(broker.url, { version: 5 });

      // Down to about 300 KiB above the watermark (5 % of 8 MiB): a hundred or so messages fit.
      const threshold = Math.floor((8 * 1024 * 1024 * 5) / 100);
      const filler = join(filesystem.directory, 'filler-watermark');
      await writeFile(filler, Buffer.alloc(Math.max(0, (await freeBytes(filesystem.directory)) - threshold - 300 * 1024)));
      const run: Run = { acknowledged: [], refused: 0, next: 0 };
      await publishUntilRefused(publisher, topic, run, 5);
      assert.ok(run.acknowledged.length > 10, `accepted ${run.acknowledged.length} before the watermark`);

      // Reported: the metric, the overview, one warning; the process is alive.
      const metrics = await waitFor('shardline_disk_low 1', async () => {
        const text = await adminGet(admin, '/metrics');
        return /^shardline_disk_low\{[^}]*\} 1$/m.test(text) ? text : undefined;
      });
      assert.match(metrics, /^shardline_disk_free_bytes\{[^}]*path="[^"]+"[^}]*\} \d+$/m);
      const overview = JSON.parse(await adminGet(admin, '/api/overview')) as { disks: Array<{ low: boolean; thresholdBytes: number }> };
      assert.equal(overview.disks[0]?.low, true);
      assert.equal(overview.disks[0]?.thresholdBytes, threshold);
      assert.equal(broker.broker.lines.filter((line) => line.includes('disk space low')).length, 1, 'one warning');
      assert.equal(broker.broker.child.exitCode, null, 'no crash');

      // Deliveries and acknowledgements go on: the subscriber gets (and acks) everything accepted.
      const delivered = await subscriber.waitForMessages(run.acknowledged.length, { topic });
      assert.deepEqual(delivered.map((message) => Number(message.payload.toString().slice(0, 6))), run.acknowledged);

      // Space returns: the node resumes by itself.
      await rm(filler);
      await publishUntilAccepted(publisher, topic, run);
      await subscriber.waitForMessages(run.acknowledged.length, { topic });
      assert.ok(broker.broker.lines.some((line) => line.includes('publishes are accepted again')));

      // Nothing acknowledged was lost, nothing refused was stored.
      await publisher.end();
      await subscriber.end();
      await stopBroker(broker);
      ({ broker, admin } = await start(dataDir));
      assert.deepEqual(await storedPayloadIndexes(admin, topic), run.acknowledged);
      await stopBroker(broker);
    });

    it('with the watermark off, refuses the publish that hit ENOSPC like the watermark does and resumes once space returns', async () => {
      const dataDir = join(filesystem.directory, 'enospc');
      let { broker } = await start(dataDir, ['--disk-free-min-percent', '0']);
      const topic = uniqueTopic('enospc');
      const publisher = await connectClient(broker.url, { version: 5 });
      const filler = join(filesystem.directory, 'filler-enospc');
      await writeFile(filler, Buffer.alloc(Math.max(0, (await freeBytes(filesystem.directory)) - 200 * 1024)));
      const run: Run = { acknowledged: [], refused: 0, next: 0 };
      await publishUntilRefused(publisher, topic, run, 3);
      assert.ok(broker.broker.lines.some((line) => line.includes('SL_JOURNAL_DISK_FULL') || line.includes('file system is full')), 'the ENOSPC is logged');
      assert.equal(broker.broker.child.exitCode, null, 'no crash');

      await rm(filler);
      await publishUntilAccepted(publisher, topic, run);
      await publisher.end();
      await stopBroker(broker);
      const restarted = await start(dataDir, ['--disk-free-min-percent', '0']);
      broker = restarted.broker;
      assert.deepEqual(await storedPayloadIndexes(restarted.admin, topic), run.acknowledged);
      await stopBroker(broker);
    });
  });
}
