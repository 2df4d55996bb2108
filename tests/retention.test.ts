// Retention of the MQTT data shards through `shardline start`, with mqtt.js and the admin API.
//
// Goal: with a small size limit the node deletes old segments and its disk use stays bounded
// while messages keep coming; across the retention edge things behave as docs/operations.md
// ("Retention") says: a durable session whose position was deleted resumes at the oldest kept
// message, and its gap is counted in its session info; a `$replay` whose range begins before the
// oldest kept message starts there and says so (5.0 SUBACK reason string and user property
// replay-oldest-kept); the system shards keep their own rules (no retention limits: retained
// messages and sessions survive); the settings show in the admin API, `ctl shard list` and
// change live.
// Method: one data shard (`--data-shards 1`, `--sys-interval 0`) so offsets are the publish
// order of the one topic; 4 KiB segments and a 16 KiB limit per shard, retention checked every
// 100 ms. Waits are for a state reached (polling the admin API with a deadline), never a sleep.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ISubackPacket } from 'mqtt-packet';
import { brokerForSuite, cleanup, runCli, usingMosquitto, waitForLogField } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

const TOKEN = 'retention-test-token-5b1e';
const SEGMENT_BYTES = 4096;
const RETENTION_BYTES = 16_384;
const PAYLOAD = (i: number): string => `m${String(i).padStart(5, '0')}-${'x'.repeat(150)}`;

interface ShardView {
  name: string;
  startOffset: number;
  nextOffset: number;
  sizeBytes: number;
  retentionMs: number | null;
  retentionBytes: number | null;
  compacted: boolean;
}

async function api<T>(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
  return (await response.json()) as T;
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

async function logBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory)) {
    // Retention may delete a segment between the listing and the stat.
    if (entry.endsWith('.log')) total += (await stat(join(directory, entry)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

const RETENTION_ARGS = ['--data-segment-bytes', String(SEGMENT_BYTES), '--data-retention-bytes', String(RETENTION_BYTES), '--retention-check-ms', '100', '--admin-token', TOKEN];

if (!usingMosquitto()) {
  for (const topology of ['single', 'split'] as const) {
    // Split: retention is the journal node's business (its settings, its shard policy); the broker
    // reads the shards over gRPC and meets the retention edge there.
    describe(`retention of the MQTT data shards (${topology})`, () => {
      const broker = brokerForSuite({ topology, args: ['--data-shards', '1', '--sys-interval', '0', '--admin-token', TOKEN, ...(topology === 'single' ? RETENTION_ARGS : [])], journalArgs: RETENTION_ARGS });
      let admin = '';
      /** The admin API of the node that runs the journal (where retention settings live). */
      let journalAdmin = '';
      const topic = uniqueTopic('retention');
      const sessionId = uniqueClientId('durable');
      let published = 0;
      let shard: ShardView | undefined;
      after(async () => {
        closeAllClients();
        await cleanup();
      });

      it('shows the data shards with the node\'s retention and the system shards without', async () => {
        admin = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
        journalAdmin = broker.journal === undefined ? admin : `http://${String((await waitForLogField(broker.journal, 'admin')).admin)}`;
        const { items } = await api<{ items: ShardView[] }>(admin, '/api/shards');
        const data = items.find((item) => item.name === 'mqtt.0');
        assert.equal(data?.retentionBytes, RETENTION_BYTES);
        assert.equal(data?.retentionMs, 7 * 24 * 3600 * 1000, 'the default data-retention is 7 days');
        for (const name of ['$sessions', '$retained']) {
          const system = items.find((item) => item.name === name);
          assert.equal(system?.compacted, true, name);
          assert.equal(system?.retentionMs, null, `${name} has no age limit`);
          assert.equal(system?.retentionBytes, null, `${name} has no size limit`);
        }
        const listing = runCli(['ctl', 'shard', 'list', '--server', admin, '--token', TOKEN]);
        const exit = await listing.exited;
        assert.equal(exit.code, 0, exit.stderr);
        const text = listing.lines.join('\n');
        assert.match(text, /mqtt\.0.*7d.*16\.0 KiB/, text);
      });

      it('deletes old segments as messages keep coming, so the shard stays bounded', async () => {
        // A durable session that subscribed at the start and then went away, and a retained message.
        const durable = await connectClient(broker.url, { clientId: sessionId, clean: false, version: 5, properties: { sessionExpiryInterval: 3600 } });
        await durable.subscribe(topic, { qos: 1 });
        await durable.end();
        const publisher = await connectClient(broker.url, { version: 5 });
        await publisher.publish(`${topic}/state`, 'kept', { qos: 1, retain: true });
        published = 1;
        let largest = 0;
        const shardDirectory = join(broker.dataDir, 'shards', 'mqtt.0');
        for (let round = 0; round < 6; round += 1) {
          await publisher.publishMany(topic, Array.from({ length: 100 }, (_, i) => PAYLOAD(published + i)), { qos: 1 });
          published += 100;
          largest = Math.max(largest, await logBytes(shardDirectory));
        }
        await publisher.end();
        shard = await waitFor('retention to delete segments', async () => {
          const view = await api<ShardView>(admin, '/api/shards/mqtt.0');
          // Settled: nothing is published any more, so once the shard is within its limit no
          // later run deletes anything (the tests below rely on a stable start offset).
          // The files go just after the shard's list changes: wait for the disk too.
          return view.startOffset > 0 && view.sizeBytes <= RETENTION_BYTES && (await logBytes(shardDirectory)) <= RETENTION_BYTES ? view : undefined;
        });
        assert.equal(shard.nextOffset, published);
        // About 100 KiB were written; while they were, the shard never held all of them.
        assert.ok(published * 150 > 5 * RETENTION_BYTES, 'wrote well past the limit');
        assert.ok(largest < published * 150, `disk use stayed bounded (largest seen ${largest} bytes)`);
      });

      it('resumes a durable session whose position was deleted at the oldest kept message and counts the gap', async () => {
        const view = shard as ShardView;
        const durable = await connectClient(broker.url, { clientId: sessionId, clean: false, version: 5, properties: { sessionExpiryInterval: 3600 } });
        assert.equal(durable.connack.sessionPresent, true, 'retention never deletes a session');
        // Everything from the shard's start offset to the end, nothing before it, in order.
        const expected = Array.from({ length: view.nextOffset - view.startOffset }, (_, i) => PAYLOAD(view.startOffset + i));
        const received = await durable.waitForMessages(expected.length, { topic });
        assert.deepEqual(received.map((message) => message.payload.toString()), expected);
        const sessions = await api<{ items: Array<{ clientId: string; retentionGap?: { messages: number; lastAt: number } }> }>(admin, `/api/mqtt/sessions?prefix=${encodeURIComponent(sessionId)}`);
        const gap = sessions.items.find((item) => item.clientId === sessionId)?.retentionGap;
        assert.equal(gap?.messages, view.startOffset, 'the gap is the deleted offsets since the session position');
        assert.ok(broker.broker.lines.some((line) => line.includes('a session resumes past a retention gap') && line.includes(sessionId)), 'the gap is logged');
        const metrics = await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((response) => response.text());
        assert.match(metrics, new RegExp(`shardline_session_retention_gap_messages_total\\{[^}]*\\} ${view.startOffset}\\b`));
        await durable.end();
      });

      it('starts a replay whose range begins before the oldest kept message there, and says so', async () => {
        const view = shard as ShardView;
        const client = await connectClient(broker.url, { version: 5 });
        const from = client.packets.length;
        await client.subscribe(`$replay/0/${Date.now() + 60_000}/${topic}`, { qos: 1 });
        const suback = await client.waitForPacket<ISubackPacket>((packet) => packet.cmd === 'suback', { from });
        assert.deepEqual(suback.granted, [1]);
        assert.match(String(suback.properties?.reasonString), /starts at the oldest kept message/);
        const note = suback.properties?.userProperties?.['replay-oldest-kept'];
        assert.ok(note !== undefined, 'the user property replay-oldest-kept');
        const expected = Array.from({ length: view.nextOffset - view.startOffset }, (_, i) => PAYLOAD(view.startOffset + i));
        const received = await client.waitForMessages(expected.length, { topic });
        assert.deepEqual(received.map((message) => message.payload.toString()), expected);
        await client.end();
      });

      it('keeps retained messages: the system shards are not subject to retention', async () => {
        const client = await connectClient(broker.url, { version: 5 });
        await client.subscribe(`${topic}/state`, { qos: 1 });
        const [retained] = await client.waitForMessages(1);
        assert.equal(retained?.payload.toString(), 'kept');
        await client.end();
      });

      it('changes the retention of the data shards live', async () => {
        const changed = await api<{ settings: Record<string, unknown> }>(journalAdmin, '/api/config', { method: 'PATCH', body: { 'data-retention': 3600, 'data-retention-bytes': 0 } });
        assert.equal(changed.settings['data-retention'], 3600);
        const view = await api<ShardView>(admin, '/api/shards/mqtt.0');
        assert.equal(view.retentionMs, 3_600_000);
        assert.equal(view.retentionBytes, null);
        const sessions = await api<ShardView>(admin, `/api/shards/${encodeURIComponent('$sessions')}`);
        assert.equal(sessions.retentionMs, null);
      });
    });
  }
}
