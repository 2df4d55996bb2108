// Time-range replay through `shardline start` (both topologies), with mqtt.js.
//
// Goal: `$replay/{from}/{to}/{filter}` delivers the stored messages of {filter} published in
// [from, to) (times in epoch ms or ISO-8601 UTC) in publish order, then nothing more; with
// `live` the subscriber then receives new messages, and under a publisher that keeps going
// across the switch nothing is lost or doubled; the 5.0 user properties replay-from / replay-to
// on a normal SUBSCRIBE do the same; a bad range is refused per filter (5.0 SUBACK 0x8F with a
// reason string, 3.1.1 0x80) while the other filters of the SUBSCRIBE are granted; UNSUBSCRIBE
// of a live replay ends its live part.
// With ACL rules (a config file's `acl` section): a replay of a forbidden area is refused at
// SUBSCRIBE, and a wildcard replay over it delivers only what the subscriber may read, from the
// history and from the live part alike.
// Method: the broker stamps messages with its clock, which is this machine's: the test takes
// Date.now() between batches (with a few ms of margin on each side) as range bounds. A small
// --max-queued-bytes makes the replay wait for the client several times, so the concurrent
// publisher's messages reach the broker while the replay is still reading.
// "Nothing more" checks on live subscriptions end with a barrier (a QoS 1 marker on the same
// topic or data shard); after an UNSUBSCRIBE or a fixed range, a 5.0 PUBACK 0x10 (no matching
// subscription) shows that no live subscription was left. The end of a fixed range itself has
// no barrier a client can see (a finished replay job leaves no trace), so those checks still
// watch for a while (the engine tests check that end exactly).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ISubackPacket } from 'mqtt-packet';
import { brokerForSuite, cleanup, startBroker, stopBroker, usingMosquitto, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { expectNothingBeforeShardMarkers } from './support/data-shards.js';
import { closeAllClients, connectClient, sleep, uniqueTopic, type TestClient } from './support/mqtt-client.js';

const TOPOLOGIES = ['single', 'split'] as const;

/** Publishes `payloads` one after another (each acknowledged before the next), then waits a little. */
async function publishBatch(client: TestClient, topicOf: (i: number) => string, payloads: string[], gapMs = 0): Promise<void> {
  for (const [i, payload] of payloads.entries()) {
    await client.publish(topicOf(i), payload, { qos: 1 });
    if (gapMs > 0) await sleep(gapMs);
  }
}

/** A range bound between two batches: the broker's stamps before it are < it, after it >= it. */
async function mark(): Promise<number> {
  await sleep(5);
  const at = Date.now();
  await sleep(5);
  return at;
}

/** Received payloads, markers (payload "marker …") left out. */
function payloadsOf(client: TestClient): string[] {
  return client.messages.map((m) => m.payload.toString()).filter((payload) => !payload.startsWith('marker '));
}

/** Publishes with a 5.0 client and asserts PUBACK 0x10: no subscription matched the topic. */
async function expectNoSubscriber(url: string, topic: string, payload: string, what: string): Promise<void> {
  const probe = await connectClient(url, { version: 5 });
  const result = await probe.publish(topic, payload, { qos: 1 });
  assert.equal(result.ack?.reasonCode, 0x10, `PUBACK 0x10 no matching subscribers: ${what}`);
  await probe.end();
}

/** Subscribes and resolves with the SUBACK's codes as sent (mqtt.js's grants echo the request). */
async function grants(client: TestClient, filter: string | string[], options: Parameters<TestClient['subscribe']>[1]): Promise<number[]> {
  const from = client.packets.length;
  await client.subscribe(filter, options).catch(() => undefined);
  const suback = await client.waitForPacket<ISubackPacket>((packet) => packet.cmd === 'suback', { from });
  return suback.granted as number[];
}

function subackOf(client: TestClient): ISubackPacket {
  const suback = [...client.packets].reverse().find((packet) => packet.cmd === 'suback');
  assert.ok(suback !== undefined, 'a SUBACK');
  return suback as ISubackPacket;
}

if (!usingMosquitto()) {
  for (const topology of TOPOLOGIES) {
    describe(`MQTT time-range replay (${topology})`, () => {
      const broker = brokerForSuite({ topology, args: ['--max-queued-bytes', '65536', '--data-shards', '4'] }, closeAllClients);

      for (const version of [4, 5] as const) {
        it(`${version === 5 ? '5.0' : '3.1.1'}: epoch ms range: exactly the messages published in [from, to), in publish order across topics, then nothing`, async () => {
          const base = uniqueTopic('ms');
          const topicOf = (i: number): string => `${base}/${i % 4}`;
          const pub = await connectClient(broker.url, { version });
          await publishBatch(pub, topicOf, ['before-0', 'before-1', 'before-2']);
          const from = await mark();
          // 2 ms apart: distinct stamps, so the expected order is the publish order exactly.
          const inside = Array.from({ length: 12 }, (_, i) => `in-${i}`);
          await publishBatch(pub, topicOf, inside, 2);
          const to = await mark();
          await publishBatch(pub, topicOf, ['after-0', 'after-1']);
          const sub = await connectClient(broker.url, { version });
          assert.deepEqual(await grants(sub, `$replay/${from}/${to}/${base}/#`, { qos: 1 }), [1]);
          await sub.waitForMessages(inside.length);
          await sub.expectNoMoreMessages(300, 'nothing outside the range');
          assert.deepEqual(payloadsOf(sub), inside);
          assert.deepEqual(sub.messages.map((m) => m.topic), inside.map((_, i) => topicOf(i)));
          // A fixed range is not a subscription: nothing matches a new message.
          await expectNoSubscriber(broker.url, topicOf(0), 'later', 'a fixed range leaves no live subscription');
          assert.deepEqual(payloadsOf(sub), inside);
          await Promise.all([pub.end(), sub.end()]);
        });
      }

      it('ISO-8601 UTC range (milliseconds and whole seconds) selects the same messages as epoch ms', async () => {
        const topic = uniqueTopic('iso');
        const pub = await connectClient(broker.url, { version: 5 });
        await publishBatch(pub, () => topic, ['a0']);
        const from = await mark();
        await publishBatch(pub, () => topic, ['b0', 'b1', 'b2']);
        const to = await mark();
        await publishBatch(pub, () => topic, ['c0']);
        const iso = await connectClient(broker.url, { version: 5 });
        assert.deepEqual(await grants(iso, `$replay/${new Date(from).toISOString()}/${new Date(to).toISOString()}/${topic}`, { qos: 1 }), [1]);
        await iso.waitForMessages(3);
        await iso.expectNoMoreMessages(200);
        assert.deepEqual(payloadsOf(iso), ['b0', 'b1', 'b2']);
        // Whole seconds: a range around everything published so far.
        const wide = await connectClient(broker.url, { version: 4 });
        const start = new Date(from - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        const end = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        assert.deepEqual(await grants(wide, `$replay/${start}/${end}/${topic}`, { qos: 1 }), [1]);
        await wide.waitForMessages(5);
        assert.deepEqual(payloadsOf(wide), ['a0', 'b0', 'b1', 'b2', 'c0']);
        await Promise.all([pub.end(), iso.end(), wide.end()]);
      });

      for (const version of [4, 5] as const) {
        it(`${version === 5 ? '5.0' : '3.1.1'}: live under a concurrent publisher: history, then every new message, none lost, none twice`, async () => {
          const base = uniqueTopic('live');
          const topics = Array.from({ length: 5 }, (_, i) => `${base}/${i}`);
          const pub = await connectClient(broker.url, { version: 5 });
          // History before the range start, then history inside it: ~200 KB, more than the
          // 64 KiB queue bound, so the replay pauses for the client several times. Per topic in
          // publish order (one connection), across topics in any order.
          await pub.publishMany(topics[0] as string, ['too-early'], { qos: 1 });
          const from = await mark();
          let sequence = 0;
          const next = (): { topic: string; payload: string } => {
            const n = sequence;
            sequence += 1;
            return { topic: topics[n % topics.length] as string, payload: `${n}:${'h'.repeat(400)}` };
          };
          for (let i = 0; i < 50; i += 1) {
            const batch = Array.from({ length: 10 }, next);
            await Promise.all(batch.map(({ topic, payload }) => pub.publish(topic, payload, { qos: 1 })));
          }
          const history = sequence;
          // The concurrent publisher: starts before the SUBSCRIBE and goes on until well after
          // the history has been replayed (so across the switch to live); bounded in count and time.
          let stop = false;
          const publishing = (async () => {
            const startedAt = Date.now();
            while (!stop && sequence < 5000 && Date.now() - startedAt < 20_000) {
              const batch = Array.from({ length: 5 }, next);
              await Promise.all(batch.map(({ topic, payload }) => pub.publish(topic, payload, { qos: 1 })));
            }
          })();
          await sleep(50);
          const sub = await connectClient(broker.url, { version });
          assert.deepEqual(await grants(sub, `$replay/${from}/live/${base}/#`, { qos: 1 }), [1]);
          await sub.waitForMessages(history, { timeoutMs: 20_000 });
          const afterHistory = sequence;
          for (let waited = 0; sequence < afterHistory + 50 && waited < 10_000; waited += 20) await sleep(20);
          await sleep(300);
          stop = true;
          await publishing;
          const total = sequence;
          assert.ok(total >= afterHistory + 50, `the concurrent publisher went on after the history was replayed (${total - history} messages in all)`);
          await sub.waitForMessages(total, { timeoutMs: 30_000 });
          // Barrier: markers on the topics' data shards, through the live subscription (the
          // replay queued everything it had before the switch made it).
          await expectNothingBeforeShardMarkers(broker, pub, sub, topics, (n) => `${base}/m${n}`, { from: total, what: 'no duplicate' });
          const numbers = payloadsOf(sub).map((payload) => Number(payload.split(':')[0]));
          assert.equal(new Set(numbers).size, numbers.length, 'no duplicate');
          assert.deepEqual([...numbers].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i), 'no gap');
          for (const [t, topic] of topics.entries()) {
            const ofTopic = sub.messages.filter((m) => m.topic === topic && !m.payload.toString().startsWith('marker ')).map((m) => Number(m.payload.toString().split(':')[0]));
            assert.deepEqual(ofTopic, [...ofTopic].sort((a, b) => a - b), `publish order on topic ${t}`);
          }
          // Live after the switch: a message published now arrives once.
          const received = sub.messages.length;
          await pub.publish(topics[2] as string, 'after-switch', { qos: 1 });
          await sub.waitForMessages(received + 1);
          assert.equal(sub.messages.at(-1)?.payload.toString(), 'after-switch');
          await Promise.all([pub.end(), sub.end()]);
        });
      }

      it('5.0: user properties replay-from (live by default) and replay-to on a normal SUBSCRIBE', async () => {
        const topic = uniqueTopic('props');
        const pub = await connectClient(broker.url, { version: 5 });
        await publishBatch(pub, () => topic, ['old']);
        const from = await mark();
        await publishBatch(pub, () => topic, ['p0', 'p1']);
        const to = await mark();
        await publishBatch(pub, () => topic, ['p2']);
        const live = await connectClient(broker.url, { version: 5 });
        assert.deepEqual(await grants(live, topic, { qos: 1, properties: { userProperties: { 'replay-from': new Date(from).toISOString() } } }), [1]);
        await live.waitForMessages(3);
        await pub.publish(topic, 'p3', { qos: 1 });
        await live.waitForMessages(4);
        await live.expectNothingBeforeMarker(pub, topic, { from: 4, what: 'each message once' });
        assert.deepEqual(payloadsOf(live), ['p0', 'p1', 'p2', 'p3']);
        const fixed = await connectClient(broker.url, { version: 5 });
        assert.deepEqual(await grants(fixed, topic, { qos: 1, properties: { userProperties: { 'replay-from': String(from), 'replay-to': String(to) } } }), [1]);
        await fixed.waitForMessages(2);
        await live.end();
        await expectNoSubscriber(broker.url, topic, 'p4', 'replay-to leaves no live subscription');
        // The end of the range (p2 not replayed): no barrier to be had, see the top.
        await fixed.expectNoMoreMessages(300, 'nothing past replay-to');
        assert.deepEqual(payloadsOf(fixed), ['p0', 'p1']);
        await Promise.all([pub.end(), fixed.end()]);
      });

      it('bad ranges are refused per filter: 5.0 SUBACK 0x8F with a reason string, 3.1.1 0x80; the other filters are granted', async () => {
        const topic = uniqueTopic('bad');
        const v5 = await connectClient(broker.url, { version: 5 });
        const bad = [`$replay/yesterday/live/${topic}`, `$replay/2000/1000/${topic}`, `$replay/1000/1000/${topic}`, `$replay/2026-02-30T00:00Z/live/${topic}`, `$replay/0/live/$share/g/${topic}`, `$replay/0/live`];
        for (const filter of bad) {
          assert.deepEqual(await grants(v5, [filter, topic], { qos: 1 }), [0x8f, 1], filter);
          const reason = subackOf(v5).properties?.reasonString ?? '';
          assert.ok(reason.length > 0, `a reason string for ${filter}`);
        }
        assert.match(subackOf(v5).properties?.reasonString ?? '', /\$replay\/\{from\}\/\{to\}\/\{filter\}/);
        assert.deepEqual(await grants(v5, topic, { qos: 1, properties: { userProperties: { 'replay-from': '5', 'replay-to': '1' } } }), [0x8f]);
        assert.match(subackOf(v5).properties?.reasonString ?? '', /empty/);
        assert.deepEqual(await grants(v5, topic, { qos: 1, properties: { userProperties: { 'replay-to': '5' } } }), [0x8f]);
        const v4 = await connectClient(broker.url, { version: 4 });
        assert.deepEqual(await grants(v4, [`$replay/abc/live/${topic}`, topic], { qos: 1 }), [0x80, 1]);
        // Still connected and working.
        await v4.publish(topic, 'ok', { qos: 1 });
        await v4.waitForMessages(1);
        await Promise.all([v5.end(), v4.end()]);
      });

      it('UNSUBSCRIBE of a live replay ends its live part', async () => {
        const topic = uniqueTopic('unsub');
        const pub = await connectClient(broker.url, { version: 5 });
        const from = await mark();
        await publishBatch(pub, () => topic, ['h0']);
        const sub = await connectClient(broker.url, { version: 5 });
        const filter = `$replay/${from}/live/${topic}`;
        assert.deepEqual(await grants(sub, filter, { qos: 1 }), [1]);
        await sub.waitForMessages(1);
        await pub.publish(topic, 'l0', { qos: 1 });
        await sub.waitForMessages(2);
        const unsuback = await sub.unsubscribe(filter);
        assert.deepEqual(unsuback.granted, [0]);
        // Nothing matches a new message any more (PUBACK 0x10 from the 5.0 publisher).
        assert.equal((await pub.publish(topic, 'l1', { qos: 1 })).ack?.reasonCode, 0x10, 'no subscription left');
        assert.deepEqual(payloadsOf(sub), ['h0', 'l0']);
        await Promise.all([pub.end(), sub.end()]);
      });
    });
  }
}

// Everyone may subscribe to anything except secret/#; only "admin" may read and write there.
const ACL_RULES = `
acl-default = "allow"

[[users]]
username = "admin"
password = "admin-password"

[[users]]
username = "mallory"
password = "mallory-password"

[[acl]]
permission = "allow"
action = "all"
topic = "secret/#"
username = "admin"

[[acl]]
permission = "deny"
action = "subscribe"
topic = "secret/#"
`;

describe('MQTT time-range replay under ACL rules', { skip: usingMosquitto() ? 'Shardline-only: replay and ACL rules' : false }, () => {
  let broker: BrokerProcess;

  before(async () => {
    const config = await writeConfigFile(ACL_RULES, 'acl.toml');
    broker = await startBroker({ args: ['--config', config] });
  });

  after(async () => {
    closeAllClients();
    try {
      if (broker !== undefined) await stopBroker(broker);
    } finally {
      await cleanup();
    }
  });

  for (const version of [4, 5] as const) {
    it(`${version === 5 ? '5.0' : '3.1.1'}: a replay of a forbidden area is refused (SUBACK ${version === 5 ? '0x87' : '0x80'}); admin may replay it`, async () => {
      const t = uniqueTopic('acl').replaceAll('/', '-');
      const admin = await connectClient(broker.url, { version, username: 'admin', password: 'admin-password' });
      await admin.publish(`secret/${t}/a`, 's0', { qos: 1 });
      const mallory = await connectClient(broker.url, { version, username: 'mallory', password: 'mallory-password' });
      assert.deepEqual(await grants(mallory, `$replay/0/live/secret/${t}/#`, { qos: 1 }), [version === 5 ? 0x87 : 0x80]);
      assert.deepEqual(await grants(admin, `$replay/0/live/secret/${t}/#`, { qos: 1 }), [1]);
      await admin.waitForMessages(1);
      assert.equal(admin.messages[0]?.payload.toString(), 's0');
      if (version === 5) {
        // A replay started despite the refusal would still run, or have become a subscription:
        // either way its UNSUBSCRIBE would get 0x00.
        assert.deepEqual((await mallory.unsubscribe(`$replay/0/live/secret/${t}/#`)).granted, [0x11], 'no replay runs for the refused SUBSCRIBE');
      } else await mallory.expectNoMoreMessages(200, 'nothing replayed (3.1.1 has no UNSUBACK codes to tell)');
      assert.equal(mallory.messages.length, 0);
      await Promise.all([admin.end(), mallory.end()]);
    });
  }

  it('a wildcard replay over a forbidden area delivers only readable topics, from the history and live ($replay and user-property forms)', async () => {
    const t = uniqueTopic('aclw').replaceAll('/', '-');
    const admin = await connectClient(broker.url, { version: 5, username: 'admin', password: 'admin-password' });
    const from = await mark();
    for (let i = 0; i < 3; i += 1) {
      await admin.publish(`secret/${t}/x`, `secret-${i}`, { qos: 1 });
      await admin.publish(`public/${t}/x`, `public-${i}`, { qos: 1 });
    }
    const byFilter = await connectClient(broker.url, { version: 5, username: 'mallory', password: 'mallory-password' });
    assert.deepEqual(await grants(byFilter, `$replay/${from}/live/+/${t}/#`, { qos: 1 }), [1]);
    const byProperty = await connectClient(broker.url, { version: 5, username: 'mallory', password: 'mallory-password' });
    assert.deepEqual(await grants(byProperty, `+/${t}/#`, { qos: 1, properties: { userProperties: { 'replay-from': String(from) } } }), [1]);
    const adminReplay = await connectClient(broker.url, { version: 5, username: 'admin', password: 'admin-password' });
    assert.deepEqual(await grants(adminReplay, `$replay/${from}/live/+/${t}/#`, { qos: 1 }), [1]);
    await Promise.all([byFilter, byProperty, adminReplay].map((client) => client.waitForMessages(client === adminReplay ? 6 : 3)));
    // Live: a secret message, then a public one as the positive control behind it.
    await admin.publish(`secret/${t}/x`, 'secret-live', { qos: 1 });
    await admin.publish(`public/${t}/x`, 'public-live', { qos: 1 });
    await adminReplay.waitForMessages(8);
    for (const client of [byFilter, byProperty]) {
      await client.waitForMessages(4);
      // Barrier for secret-live: markers on its data shard, after it (both replays are live).
      await expectNothingBeforeShardMarkers(broker, admin, client, [`secret/${t}/x`], (n) => `public/${t}/${client.clientId}/m${n}`, { from: 4, what: 'no secret', unwanted: (m) => m.topic.startsWith('secret/') });
      assert.deepEqual(payloadsOf(client), ['public-0', 'public-1', 'public-2', 'public-live']);
    }
    assert.deepEqual(payloadsOf(adminReplay), ['secret-0', 'public-0', 'secret-1', 'public-1', 'secret-2', 'public-2', 'secret-live', 'public-live']);
    await Promise.all([admin, byFilter, byProperty, adminReplay].map((client) => client.end()));
  });
});
