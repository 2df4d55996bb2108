// Broker extras through real `shardline start` processes with mqtt.js: delayed publish
// (`$delayed/{seconds}/{topic}`, its bounds, and its schedule surviving kill -9), auto-subscribe
// and topic rewrite rules from a config file, `$SYS/brokers/{node}/...` statistics, and the 5.0
// Request Response Information / Response Information exchange.
//
// Goal: each feature does what docs/mqtt.md says, seen from a client: a delayed message arrives
// on its target topic no earlier than its delay and exactly once, also when the broker was
// SIGKILLed while holding it (and when it fell due while the broker was down); refusals carry
// 5.0 reason codes; rules apply on connect / publish / subscribe; `$SYS` is not matched by `#`.
// Method: one broker per topology for the features, one with tight delayed bounds, and a
// kill -9 scenario per topology that restarts the node on the same data directory and port.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanup, killBroker, requireShardline, runCli, scratchDirectory, startBroker, stopBroker, usingMosquitto, waitForLogField, type BrokerProcess, type Topology } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, subscriber, uniqueClientId, uniqueTopic, type TestClient } from './support/mqtt-client.js';

const TOPOLOGIES: Topology[] = ['single', 'split'];
/** How long the $SYS test waits for a full round at --sys-interval 1 (a loaded machine is slow). */
const SYS_ROUND_WAIT_MS = 30_000;
const ADMIN_TOKEN = 'extras-test-token';

const RULES_TOML = `
# \${username} is the authenticated user name: anonymous clients have none.
[[users]]
username = "bob"
password = "builder"

[[auto-subscribe]]
filter = "auto/\${clientid}/inbox"
qos = 1

[[auto-subscribe]]
filter = "auto/users/\${username}"
qos = 0

[[rewrite]]
action = "publish"
source = "legacy/#"
re = "^legacy/(.*)$"
dest = "modern/$1"

[[rewrite]]
action = "subscribe"
source = "mine/#"
re = "^mine/(.*)$"
dest = "devices/\${clientid}/$1"
`;

function ackCode(result: { ack?: { reasonCode?: number } }): number | undefined {
  return result.ack?.reasonCode;
}

/** Waits until `client` received a message on `topic`; returns when (ms since epoch). */
async function arrival(client: TestClient, topic: string, timeoutMs: number): Promise<number> {
  await client.waitForMessages(1, { topic, timeoutMs });
  return Date.now();
}

/** Polls the admin API until `shardline_mqtt_delayed_messages` is `held`. */
async function eventuallyDelayedHeld(broker: BrokerProcess, held: number, timeoutMs = 10_000): Promise<void> {
  const admin = String((await waitForLogField(broker.broker, 'admin')).admin);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await fetch(`http://${admin}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(reply.status, 200);
    const match = /^shardline_mqtt_delayed_messages(?:\{[^}]*\})? (\S+)$/m.exec(await reply.text());
    assert.ok(match !== null, 'shardline_mqtt_delayed_messages in /metrics');
    const last = match[1] as string;
    if (Number(last) === held) return;
    assert.ok(Date.now() < deadline, `shardline_mqtt_delayed_messages still ${last} after ${timeoutMs} ms, waiting for ${held}`);
    await sleep(50);
  }
}

async function writeConfig(text: string): Promise<string> {
  const directory = await scratchDirectory('shardline-extras-config-');
  const file = join(directory, 'shardline.toml');
  await writeFile(file, text);
  return file;
}

if (!usingMosquitto()) {
  for (const topology of TOPOLOGIES) {
    describe(`broker extras (${topology})`, () => {
      let broker: BrokerProcess;
      before(async () => {
        const config = await writeConfig(RULES_TOML);
        broker = await startBroker({ topology, args: ['--config', config, '--sys-interval', '1', '--node-name', 'it/node'] });
      });
      after(async () => {
        closeAllClients();
        try {
          await stopBroker(broker);
        } finally {
          await cleanup();
        }
      });

      describe('delayed publish', { concurrency: true }, () => {
        for (const version of [4, 5] as const) {
          it(`${version === 5 ? '5.0' : '3.1.1'}: $delayed/2/{topic} arrives on {topic} after 2 s, not before, once`, async () => {
            const topic = uniqueTopic('delayed');
            const watcher = await subscriber(broker.url, topic, { version, qos: 1 });
            const publisher = await connectClient(broker.url, { version });
            const sentAt = Date.now();
            const result = await publisher.publish(`$delayed/2/${topic}`, 'later', { qos: 1, ...(version === 5 ? { properties: { userProperties: { why: 'test' } } } : {}) });
            if (version === 5) assert.equal(ackCode(result), 0, 'accepted: PUBACK 0x00, not 0x10 (the target may have subscribers by then)');
            // "Not before" is the arrival time itself: watched from the PUBACK on, so an early
            // delivery resolves this at once and fails the 2 s bound below.
            const arrivedAt = await arrival(watcher, topic, 5000);
            assert.ok(arrivedAt - sentAt >= 2000, `arrived after ${arrivedAt - sentAt} ms`);
            assert.equal(watcher.messages[0]?.payload.toString(), 'later');
            if (version === 5) assert.deepEqual({ ...watcher.messages[0]?.packet.properties?.userProperties }, { why: 'test' });
            // Barrier: a second release or a second fan-out of the first would be on the topic's
            // shard before a marker published now.
            await watcher.expectNothingBeforeMarker(publisher, topic, { from: 1, what: 'exactly one delivery' });
            await Promise.all([watcher.end(), publisher.end()]);
          });
        }

        it('5.0: a malformed $delayed topic gets PUBACK 0x90 and nothing is published', async () => {
          const publisher = await connectClient(broker.url, { version: 5 });
          const result = await publisher.publish('$delayed/soon/x', 'bad', { qos: 1 });
          assert.equal(ackCode(result), 0x90);
          await publisher.end();
        });
      });

      describe('auto-subscribe rules', () => {
        it('a connecting client is subscribed to its ${clientid} and ${username} filters and gets their retained messages', async () => {
          const clientId = uniqueClientId('auto');
          const publisher = await connectClient(broker.url, { version: 5 });
          await publisher.publish(`auto/${clientId}/inbox`, 'kept', { qos: 1, retain: true });
          const client = await connectClient(broker.url, { version: 5, clientId, username: 'bob', password: Buffer.from('builder') });
          const [retained] = await client.waitForMessages(1);
          assert.equal(retained?.payload.toString(), 'kept');
          assert.equal(retained?.packet.retain, true);
          await publisher.publish(`auto/${clientId}/inbox`, 'live', { qos: 1 });
          await publisher.publish('auto/users/bob', 'to bob', { qos: 1 });
          const messages = await client.waitForMessages(3);
          assert.deepEqual(messages.slice(1).map((m) => `${m.topic}=${m.payload.toString()}`).sort(), [`auto/${clientId}/inbox=live`, 'auto/users/bob=to bob']);
          await Promise.all([client.end(), publisher.end()]);
        });

        it('a client without a user name gets only the rules it can fill', async () => {
          const clientId = uniqueClientId('anon');
          const client = await connectClient(broker.url, { version: 4, clientId });
          // 5.0: its PUBACK says whether any subscription matched (the barrier below).
          const publisher = await connectClient(broker.url, { version: 5 });
          await publisher.publish(`auto/${clientId}/inbox`, 'yes', { qos: 1 });
          const [message] = await client.waitForMessages(1);
          assert.equal(message?.payload.toString(), 'yes');
          // Auto-subscriptions are made before CONNACK: had the ${username} rule been filled with
          // "undefined" or "", the broker would find a match here and answer 0x00.
          for (const topic of ['auto/users/undefined', 'auto/users/']) {
            assert.equal(ackCode(await publisher.publish(topic, 'no', { qos: 1 })), 0x10, `PUBACK 0x10 (no matching subscribers) for ${topic}`);
          }
          assert.deepEqual(client.messages.map((m) => m.topic), [`auto/${clientId}/inbox`]);
          await Promise.all([client.end(), publisher.end()]);
        });
      });

      describe('topic rewrite rules', () => {
        it('publish: legacy/... is stored and delivered as modern/...', async () => {
          const suffix = uniqueTopic('rw').replaceAll('/', '-');
          const old = await subscriber(broker.url, `legacy/${suffix}`, { version: 5, qos: 1 });
          const publisher = await connectClient(broker.url, { version: 5 });
          // Barrier: with only the old name subscribed, PUBACK 0x10 (no matching subscribers)
          // says the message was routed by a topic the old filter does not match.
          assert.equal(ackCode(await publisher.publish(`legacy/${suffix}`, 'unseen', { qos: 1 })), 0x10, 'nothing stays on the old name');
          const watcher = await subscriber(broker.url, `modern/${suffix}`, { version: 5, qos: 1 });
          assert.equal(ackCode(await publisher.publish(`legacy/${suffix}`, 'moved', { qos: 1 })), 0);
          const [message] = await watcher.waitForMessages(1);
          assert.equal(message?.topic, `modern/${suffix}`);
          assert.equal(message?.payload.toString(), 'moved');
          assert.deepEqual(old.messages, []);
          await Promise.all([watcher.end(), old.end(), publisher.end()]);
        });

        it('will: a will on legacy/... is published to modern/...', async () => {
          const suffix = uniqueTopic('rwwill').replaceAll('/', '-');
          const watcher = await subscriber(broker.url, `modern/${suffix}`, { version: 4, qos: 1 });
          const dying = await connectClient(broker.url, { version: 4, will: { topic: `legacy/${suffix}`, payload: Buffer.from('gone'), qos: 1, retain: false } });
          dying.destroy();
          const [message] = await watcher.waitForMessages(1);
          assert.equal(message?.payload.toString(), 'gone');
          await watcher.end();
        });

        it('subscribe: mine/... means devices/{clientid}/...; UNSUBSCRIBE of the same filter removes it', async () => {
          const clientId = uniqueClientId('dev');
          const device = await connectClient(broker.url, { version: 5, clientId });
          await device.subscribe('mine/status', { qos: 1 });
          const publisher = await connectClient(broker.url, { version: 5 });
          await publisher.publish(`devices/${clientId}/status`, 'on', { qos: 1 });
          const [message] = await device.waitForMessages(1);
          assert.equal(message?.topic, `devices/${clientId}/status`);
          const unsuback = await device.unsubscribe('mine/status');
          assert.deepEqual(unsuback.granted, [0], 'the rewritten subscription existed');
          // PUBACK 0x10 (no matching subscribers) proves the rewritten subscription is gone: the
          // barrier instead of watching the device for a while.
          assert.equal((await publisher.publish(`devices/${clientId}/status`, 'off', { qos: 1 })).ack?.reasonCode, 0x10);
          assert.deepEqual(device.messages.map((m) => m.payload.toString()), ['on']);
          await Promise.all([device.end(), publisher.end()]);
        });
      });

      describe('$SYS topics', () => {
        it('$SYS/brokers/{node}/... carry version, uptime, clients and message counts every --sys-interval; # does not match them', async () => {
          const everything = await subscriber(broker.url, '#', { version: 5, qos: 0 });
          const ops = await subscriber(broker.url, '$SYS/brokers/it_node/#', { version: 5, qos: 0 });
          const wanted = ['version', 'uptime', 'clients/connected', 'subscriptions/count', 'messages/received', 'messages/sent', 'bytes/received', 'bytes/sent'];
          const prefix = '$SYS/brokers/it_node/';
          // A round published after both subscribed (live deliveries carry RETAIN 0; the retained
          // copies sent on SUBSCRIBE are from an earlier round, with fewer clients connected).
          // Waited for as events; the deadline is generous since a loaded machine delays rounds.
          const live = (): typeof ops.messages => ops.messages.filter((m) => !m.packet.retain);
          const deadline = Date.now() + SYS_ROUND_WAIT_MS;
          for (const suffix of wanted) {
            await ops.waitForPacket((p) => p.cmd === 'publish' && !p.retain && p.topic === prefix + suffix, { timeoutMs: Math.max(1, deadline - Date.now()), what: `a live ${prefix}${suffix}` });
          }
          const latest = new Map(live().map((m) => [m.topic, m.payload.toString()]));
          for (const suffix of wanted) assert.ok(latest.has(prefix + suffix), `${suffix} published`);
          const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
          assert.equal(latest.get(`${prefix}version`), manifest.version);
          assert.ok(Number(latest.get(`${prefix}clients/connected`)) >= 2);
          // Seconds since start, unclamped: a negative or fractional value fails here.
          assert.match(latest.get(`${prefix}uptime`) ?? '', /^\d+$/);
          // Barrier: the round ops saw was offered to `everything` (if # matched it) in the same
          // dispatch, before a marker published now; once the marker is there, nothing $SYS came.
          const publisher = await connectClient(broker.url, { version: 5 });
          await everything.expectNothingBeforeMarker(publisher, uniqueTopic('sys-marker'), { from: 0, what: 'a leading # never matches $SYS', unwanted: (m) => m.topic.startsWith('$SYS/') });
          await publisher.end();
          await Promise.all([everything.end(), ops.end()]);
        });
      });

      describe('Response Information', () => {
        it('5.0: CONNACK carries Response Information only when the client asks for it', async () => {
          const clientId = uniqueClientId('rr');
          const asking = await connectClient(broker.url, { version: 5, clientId, properties: { requestResponseInformation: true } });
          assert.equal(asking.connack.properties?.responseInformation, `reply/${clientId}`);
          const silent = await connectClient(broker.url, { version: 5 });
          assert.equal(silent.connack.properties?.responseInformation, undefined);
          await Promise.all([asking.end(), silent.end()]);
        });
      });
    });
  }

  describe('delayed publish bounds (--max-delay-seconds 60 --max-delayed-messages 2)', () => {
    let broker: BrokerProcess;
    before(async () => {
      broker = await startBroker({ args: ['--max-delay-seconds', '60', '--max-delayed-messages', '2', '--admin-token', ADMIN_TOKEN] });
    });
    after(async () => {
      closeAllClients();
      try {
        await stopBroker(broker);
      } finally {
        await cleanup();
      }
    });

    it('5.0: a delay over the maximum gets PUBACK 0x97; past the count PUBACK 0x97 until one is delivered', async () => {
      const topic = uniqueTopic('bounds');
      const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
      const publisher = await connectClient(broker.url, { version: 5 });
      assert.equal(ackCode(await publisher.publish(`$delayed/61/${topic}`, 'x', { qos: 1 })), 0x97);
      assert.equal(ackCode(await publisher.publish(`$delayed/1/${topic}`, 'one', { qos: 1 })), 0);
      assert.equal(ackCode(await publisher.publish(`$delayed/60/${topic}`, 'two', { qos: 1 })), 0);
      assert.equal(ackCode(await publisher.publish(`$delayed/1/${topic}`, 'three', { qos: 1 })), 0x97);
      // Instead of sleeping past the 1 s delay: "one" arrives, and the broker's held count
      // (admin API) drops to 1 once its release is recorded, which is when its slot is free.
      const [one] = await watcher.waitForMessages(1, { timeoutMs: 10_000 });
      assert.equal(one?.payload.toString(), 'one');
      await eventuallyDelayedHeld(broker, 1);
      assert.equal(ackCode(await publisher.publish(`$delayed/1/${topic}`, 'four', { qos: 1 })), 0, 'room again once "one" was delivered');
      await Promise.all([publisher.end(), watcher.end()]);
    });

    it('3.1.1: a refused delayed publish closes the connection (3.1.1 has no negative PUBACK)', async () => {
      const publisher = await connectClient(broker.url, { version: 4 });
      void publisher.publish('$delayed/999/x', 'too long', { qos: 1 }).catch(() => undefined);
      await publisher.waitForClose();
    });
  });

  describe('rule sections are checked at start', () => {
    it('a bad rewrite entry: exit 2 naming the file and the entry', async () => {
      const config = await writeConfig('[[rewrite]]\nsource = "a/#"\nre = "("\ndest = "b"\n');
      const dataDir = await scratchDirectory();
      const cli = runCli(['start', '--config', config, '--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0']);
      const { code, stderr } = await cli.exited;
      assert.equal(code, 2);
      assert.ok(stderr.includes(config) && stderr.includes('rewrite[0].re'), stderr);
      await cleanup();
    });
  });
}

for (const topology of TOPOLOGIES) {
  describe(`delayed publish across kill -9 (${topology})`, () => {
    after(async () => {
      closeAllClients();
      await cleanup();
    });

    it('messages held when the broker is SIGKILLed are published after the restart: on time if still pending, at once if due while it was down; each once', async (t) => {
      if (!requireShardline(t)) return;
      const first = await startBroker({ topology });
      const topic = uniqueTopic('crash');
      const clientId = uniqueClientId('keep');
      const persistent = { version: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 600 } };
      const watcher = await subscriber(first.url, topic, { ...persistent, qos: 1 });
      await watcher.end();
      const publisher = await connectClient(first.url, { version: 5 });
      const sentAt = Date.now();
      assert.equal(ackCode(await publisher.publish(`$delayed/3/${topic}`, 'due-while-down', { qos: 1 })), 0);
      assert.equal(ackCode(await publisher.publish(`$delayed/10/${topic}`, 'pending', { qos: 1 })), 0);
      publisher.destroy();
      await killBroker(first);
      assert.ok(Date.now() - sentAt < 3000, 'killed before the first message was due');
      // Down until the first one is due.
      await sleep(sentAt + 3500 - Date.now());
      const second = await startBroker({ topology, dataDir: first.dataDir, mqttPort: first.port, ...(first.journal !== undefined && first.journalAddress !== undefined ? { journal: { process: first.journal, address: first.journalAddress } } : {}) });
      const back = await connectClient(second.url, persistent);
      assert.equal(back.connack.sessionPresent, true);
      const [overdue] = await back.waitForMessages(1, { timeoutMs: 5000 });
      assert.equal(overdue?.payload.toString(), 'due-while-down');
      const [, pending] = await back.waitForMessages(2, { timeoutMs: 15_000 });
      assert.equal(pending?.payload.toString(), 'pending');
      assert.ok(Date.now() - sentAt >= 10_000, `"pending" arrived ${Date.now() - sentAt} ms after it was sent, before its 10 s delay`);
      // Barrier: a marker on the topic comes after any second copy the restarted broker
      // published or replayed into the session.
      const marker = await connectClient(second.url, { version: 5 });
      await back.expectNothingBeforeMarker(marker, topic, { from: 2, what: 'each delayed message once' });
      await marker.end();
      await back.end();
      await stopBroker(second);
    });
  });
}
