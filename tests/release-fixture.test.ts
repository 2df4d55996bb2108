// Old data stays readable: each tests/fixtures/release-*/ holds a data directory written by a
// real node of that release (scripts/make-release-fixture.ts) and a manifest of what it wrote.
// The current `shardline start` opens a copy and must serve it as the release did: persistent
// sessions resume (session present) with their queued and in-flight deliveries and working
// subscriptions, retained messages (5.0 properties included) reach a new subscriber and a
// cleared one does not, a will left pending fires, the data shards replay every stored message,
// the run-time user and ACL rule still apply, and `shard verify` finds nothing wrong. A format
// change that breaks one of these breaks a node upgraded in place (docs/journal-format.md).
import assert from 'node:assert/strict';
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { QoS } from 'mqtt-packet';
import { cleanup, REPO_ROOT, runCli, scratchDirectory, startBroker, stopBroker, usingMosquitto, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, DEFAULT_WAIT_MS, RawClient, type Received } from './support/mqtt-client.js';

interface Queued {
  topic: string;
  payload: string;
  qos: QoS;
  subscriptionIdentifier?: number;
  dup?: boolean;
  messageId?: number;
}

interface Manifest {
  producedBy: { packageVersion: string; commit: string };
  writtenUntil: number;
  adminToken: string;
  shards: string[];
  users: Array<{ username: string; password: string; source: string }>;
  acl: Array<{ id: string; permission: string; action: string; topic: string }>;
  sessions: Array<{
    clientId: string;
    protocolVersion: 4 | 5;
    sessionExpiryInterval?: number;
    subscriptions: Array<{ filter: string; qos: QoS; subscriptionIdentifier?: number }>;
    queued: Queued[];
    will?: { topic: string; payload: string; qos: QoS; retain: boolean; willDelayInterval: number };
  }>;
  retained: {
    present: Array<{ topic: string; payload: string; qos: QoS; properties?: { contentType: string; payloadFormatIndicator: boolean; responseTopic: string; correlationData: string; userProperties: Record<string, string>; messageExpiryInterval: number } }>;
    cleared: string[];
    fromWill: { topic: string; payload: string; qos: QoS };
  };
  stored: Array<{ topic: string; payload: string; qos: QoS; retain: boolean }>;
}

const FIXTURES = join(REPO_ROOT, 'tests', 'fixtures');
const releases = (await readdir(FIXTURES, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith('release-')).map((e) => e.name).sort();

/** Per topic, the sequence of (payload, qos): the order the journal promises (one topic is one shard). */
function byTopic(messages: Array<{ topic: string; payload: string; qos: number }>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of messages) (out[m.topic] ??= []).push(`${m.payload} @qos${m.qos}`);
  return out;
}

/** `promise`, or undefined once `ms` passed; the timer is cleared so it never holds the process open. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((done) => (timer = setTimeout(done, ms, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

const received = (m: Received): { topic: string; payload: string; qos: number } => ({ topic: m.topic, payload: m.payload.toString(), qos: m.packet.qos });

/** A topic a filter matches, to prove the subscription still routes new publishes. */
const topicFor = (filter: string): string => filter.replace('+', 'probe').replace('#', 'probe');

describe('release fixtures: data written by earlier releases is served by this code', { skip: usingMosquitto() && 'Shardline data directories' }, () => {
  assert.ok(releases.length > 0, 'at least one committed release fixture');
  after(async () => {
    closeAllClients();
    await cleanup();
  });

  for (const release of releases) {
    describe(release, () => {
      let manifest: Manifest;
      let copy: string;
      let broker: BrokerProcess;
      let adminBase: string;

      const admin = async (path: string): Promise<unknown> => {
        const response = await fetch(`${adminBase}${path}`, { headers: { authorization: `Bearer ${manifest.adminToken}` }, signal: AbortSignal.timeout(DEFAULT_WAIT_MS) });
        assert.equal(response.status, 200, `GET ${path}`);
        return response.json();
      };

      before(async () => {
        manifest = JSON.parse(await readFile(join(FIXTURES, release, 'release-fixture.json'), 'utf8')) as Manifest;
        // The committed files are never opened in place: a start rewrites indexes and appends.
        copy = join(await scratchDirectory('shardline-release-fixture-'), 'data');
        await cp(join(FIXTURES, release, 'data'), copy, { recursive: true });
      });

      it('shard verify finds no problem in the files as the release left them', async () => {
        const cli = runCli(['shard', 'verify', '--data-dir', copy, '--json']);
        const exit = await within(cli.exited, 30_000);
        assert.ok(exit !== undefined, 'shard verify ended within 30 s');
        assert.equal(exit.code, 0, exit.stderr);
        const report = JSON.parse(cli.lines.join('\n')) as { shards: number; errors: number; warnings: number; problems: unknown[] };
        assert.deepEqual(report.problems, []);
        assert.equal(report.shards, manifest.shards.length);
        assert.deepEqual((await readdir(join(copy, 'shards'))).sort(), manifest.shards);
      });

      it('starts on the copy', async () => {
        // Retention off: the fixture's messages are older than any default retention.
        broker = await startBroker({ dataDir: copy, args: ['--data-retention', '0', '--sys-interval', '0', '--admin-token', manifest.adminToken] });
        adminBase = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
      });

      it('persistent sessions resume with session present, their queued messages, and subscriptions that still route', async () => {
        const publisher = await connectClient(broker.url, { clientId: 'fx-test-publisher', version: 5 });
        for (const session of manifest.sessions.filter((s) => s.clientId !== 'fx-v311-inflight')) {
          const client = await connectClient(broker.url, {
            clientId: session.clientId,
            clean: false,
            version: session.protocolVersion,
            ...(session.sessionExpiryInterval === undefined ? {} : { properties: { sessionExpiryInterval: session.sessionExpiryInterval } }),
          });
          assert.equal(client.connack.sessionPresent, true, `${session.clientId}: session present`);
          const queued = await client.waitForMessages(session.queued.length);
          assert.deepEqual(byTopic(queued.map(received)), byTopic(session.queued), `${session.clientId}: queued messages`);
          for (const expected of session.queued.filter((q) => q.subscriptionIdentifier !== undefined)) {
            const got = queued.find((m) => m.topic === expected.topic && m.payload.toString() === expected.payload);
            assert.deepEqual([got?.packet.properties?.subscriptionIdentifier].flat(), [expected.subscriptionIdentifier], `${session.clientId}: subscription identifier on ${expected.topic}`);
          }
          for (const [index, subscription] of session.subscriptions.entries()) {
            const payload = `after upgrade ${session.clientId} ${index}`;
            await publisher.publish(topicFor(subscription.filter), payload, { qos: 1 });
            const [got] = (await client.waitForMessages(session.queued.length + index + 1)).slice(-1);
            assert.equal(got?.payload.toString(), payload, `${session.clientId}: ${subscription.filter} still routes`);
            assert.equal(got?.packet.qos, Math.min(1, subscription.qos));
          }
          // Nothing beyond the queue and the probes: an old message delivered twice would be here.
          assert.equal(client.messages.length, session.queued.length + session.subscriptions.length, `${session.clientId}: ${client.messages.map((m) => m.topic).join(' ')}`);
          await client.end();
        }
        await publisher.end();
      });

      it('unacknowledged deliveries are resent with DUP and their packet ids, then the queue follows', async () => {
        const session = manifest.sessions.find((s) => s.clientId === 'fx-v311-inflight');
        assert.ok(session !== undefined);
        const { raw, connack } = await RawClient.connect(broker.port, 4, { clientId: session.clientId, clean: false });
        assert.equal(connack.sessionPresent, true);
        const publishes = await raw.waitForPublishes(session.queued.length);
        assert.deepEqual(
          publishes.map((p) => ({ topic: p.topic, payload: p.payload.toString(), qos: p.qos, ...(session.queued.find((q) => q.payload === p.payload.toString())?.dup ? { dup: p.dup, messageId: p.messageId } : {}) })),
          session.queued,
        );
        for (const p of publishes) raw.send({ cmd: 'puback', messageId: p.messageId! });
        raw.send({ cmd: 'disconnect' });
        await raw.waitForClose();
      });

      it('retained messages, with their 5.0 properties, reach a new subscriber; the cleared one does not; the pending will fired', async () => {
        const client = await connectClient(broker.url, { version: 5 });
        await client.subscribe('fx/retained/#', { qos: 1 });
        const got = await client.waitForMessages(manifest.retained.present.length);
        assert.deepEqual(byTopic(got.map(received)), byTopic(manifest.retained.present));
        for (const m of got) assert.equal(m.packet.retain, true, m.topic);
        const withProperties = manifest.retained.present.find((m) => m.properties !== undefined)!;
        const properties = got.find((m) => m.topic === withProperties.topic)!.packet.properties!;
        const want = withProperties.properties!;
        assert.equal(properties.contentType, want.contentType);
        assert.equal(properties.payloadFormatIndicator, want.payloadFormatIndicator);
        assert.equal(properties.responseTopic, want.responseTopic);
        assert.equal(Buffer.from(properties.correlationData!).toString(), want.correlationData);
        assert.deepEqual({ ...properties.userProperties }, want.userProperties);
        // The remaining lifetime: counted from the original publish, so a little less than set.
        assert.ok(properties.messageExpiryInterval! > want.messageExpiryInterval - 100 * 365 * 86_400 && properties.messageExpiryInterval! <= want.messageExpiryInterval, String(properties.messageExpiryInterval));

        // Barrier: retained messages come in the SUBSCRIBE's step, before a later publish on the same topic.
        const publisher = await connectClient(broker.url, { version: 5 });
        for (const topic of manifest.retained.cleared) {
          await client.expectNothingBeforeMarker(publisher, topic, { from: 0, what: `no retained message on ${topic}`, unwanted: (m) => m.topic === topic });
        }

        // The will is due at the first start after its delay (at once for any fixture older than
        // that); it is retained, so poll for it, bounded by when it is due.
        const will = manifest.retained.fromWill;
        const delayS = manifest.sessions.find((s) => s.will?.topic === will.topic)?.will?.willDelayInterval ?? 0;
        const deadline = Math.max(Date.now(), manifest.writtenUntil + delayS * 1000) + DEFAULT_WAIT_MS;
        let found: Received | undefined;
        while (found === undefined && Date.now() < deadline) {
          const probe = await connectClient(broker.url, { version: 4 });
          await probe.subscribe(will.topic, { qos: 1 });
          found = await probe.waitForMessages(1, { timeoutMs: 200 }).then((m) => m[0], () => undefined);
          await probe.end();
        }
        assert.ok(found !== undefined, `the pending will on ${will.topic} was published`);
        assert.equal(found.payload.toString(), will.payload);
        await publisher.end();
        await client.end();
      });

      it('the data shards replay every stored message of the release, in order per topic', async () => {
        const client = await connectClient(broker.url, { version: 4 });
        // Up to the end of the fixture's writes: what this test publishes comes later.
        await client.subscribe(`$replay/0/${manifest.writtenUntil + 1}/fx/#`, { qos: 2 });
        const got = await client.waitForMessages(manifest.stored.length);
        assert.deepEqual(byTopic(got.map(received)), byTopic(manifest.stored));
        await client.expectNoMoreMessages();
        await client.end();
      });

      it('the run-time user and ACL rule still apply', async () => {
        const users = (await admin('/api/users')) as { items: Array<{ username: string; source: string }> };
        for (const user of manifest.users) assert.ok(users.items.some((u) => u.username === user.username && u.source === user.source), JSON.stringify(users.items));
        const acl = (await admin('/api/acl')) as { items: Array<{ id: string; rule: Record<string, unknown> }> };
        for (const rule of manifest.acl) {
          const { id, ...fields } = rule;
          assert.deepEqual(acl.items.find((r) => r.id === id)?.rule, fields);
        }

        for (const user of manifest.users) {
          const client = await connectClient(broker.url, { version: 5, username: user.username, password: Buffer.from(user.password) });
          await client.end();
          await assert.rejects(connectClient(broker.url, { version: 5, username: user.username, password: Buffer.from('not the password') }), (error: { code?: number }) => error.code === 0x86);
        }
        const client = await connectClient(broker.url, { version: 5 });
        for (const rule of manifest.acl) {
          const result = await client.publish(topicFor(rule.topic), 'denied by the release\'s rule', { qos: 1 });
          assert.equal((result.ack as { reasonCode?: number } | undefined)?.reasonCode, 0x87, `publish to ${rule.topic} denied`);
        }
        await client.end();
      });

      it('stops cleanly', async () => {
        await stopBroker(broker);
      });
    });
  }
});
