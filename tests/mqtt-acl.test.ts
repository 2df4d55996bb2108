// Authorization (ACL) through `shardline start` with a config file's `acl` section, for 3.1,
// 3.1.1 and 5.0 clients (mqtt.js).
//
// Goal: the rules decide publish, subscribe, will and every delivery, and the ways around them
// fail: a forbidden publish gets PUBACK/PUBREC 0x87 (5.0) or is acknowledged and dropped (3.x,
// logged), a QoS 0 one is dropped; a forbidden subscription gets SUBACK 0x87 (5.0) / 0x80 (3.x)
// while the allowed filters of the same SUBSCRIBE are granted; and the escape attempts: a
// wildcard subscription over a forbidden area, a retained message on a forbidden topic, a will
// sent to a forbidden topic, a client id or user name holding '/' to step into another
// client's topics, a time-range replay over a forbidden area. Also: ${username}/${clientid}
// rules, the default, run-time rules through `shardline ctl acl`, rules from a JWT, and a bad rule
// refusing to start (exit 2, naming the file and the rule).
// Method: one broker for the suite with the rules below. "admin" may read and write secret/#,
// everyone else may subscribe to anything but read nothing under secret/ (the deny rule), and
// publish only under public/, users/<own name>/ and clients/<own id>/. The users are configured
// with passwords (rules see authenticated names only; anonymous clients have none). A second
// broker with a JWT key checks the rules a token carries. Every check that something does NOT arrive has
// a barrier: a message that does arrive on the same connection and is ordered after the
// forbidden one (the same topic, or the same data shard: tests/support/data-shards.ts; retained
// messages come in the SUBSCRIBE's step, before any later publish; a replay in publish order),
// so a forbidden delivery would be seen before it.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanup, runCli, scratchDirectory, startBroker, stopBroker, usingMosquitto, waitForLogField, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import type { ISubackPacket } from 'mqtt-packet';
import { expectNothingBeforeShardMarkers } from './support/data-shards.js';
import { closeAllClients, connectClient, sleep, uniqueClientId, type ProtocolVersion, type TestClient } from './support/mqtt-client.js';

/** Users of the suite's broker; the ACL sees authenticated user names only. */
const USERS = ['admin', 'mallory', 'alice', 'bob/esc'];

/** CONNECT credentials of a configured user. */
function user(name: string): { username: string; password: Buffer } {
  return { username: name, password: Buffer.from(`pw-${name}`) };
}

const RULES = `
acl-default = "deny"
${USERS.map((name) => `\n[[users]]\nusername = "${name}"\npassword = "pw-${name}"\n`).join('')}

[[acl]]
permission = "allow"
action = "all"
topic = "secret/#"
username = "admin"

[[acl]]
permission = "deny"
action = "all"
topic = "secret/#"

[[acl]]
permission = "allow"
action = "publish"
topic = "users/\${username}/#"

[[acl]]
permission = "allow"
action = "publish"
topic = "clients/\${clientid}/#"

[[acl]]
permission = "allow"
action = "publish"
topic = "public/#"

[[acl]]
permission = "allow"
action = "subscribe"
topic = "#"
`;

let sequence = 0;
/** A level unique to this test, so tests sharing the broker never see each other's messages. */
function tag(): string {
  sequence += 1;
  return `acl${process.pid.toString(36)}x${sequence}`;
}

function label(version: ProtocolVersion): string {
  return version === 3 ? '3.1' : version === 4 ? '3.1.1' : '5.0';
}

/** The SUBACK codes as sent (mqtt.js reports refused grants as the QoS asked for). */
async function subackCodes(client: TestClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  const from = client.packets.length;
  await client.subscribe(filters).catch(() => undefined);
  const suback = await client.waitForPacket<ISubackPacket>((packet) => packet.cmd === 'suback', { from, what: 'SUBACK' });
  return suback.granted as number[];
}

/** A client that has subscribed to `filter` and got its SUBACK. */
async function reader(url: string, filter: string, username: string | undefined, version: ProtocolVersion = 5): Promise<TestClient> {
  const client = await connectClient(url, { version, ...(username === undefined ? {} : user(username)) });
  const granted = await subackCodes(client, { [filter]: { qos: 1 } });
  assert.ok((granted[0] ?? 0x80) < 0x80, `${username ?? 'anonymous'} may subscribe to ${filter}: ${JSON.stringify(granted)}`);
  return client;
}

describe('MQTT authorization (ACL)', { skip: usingMosquitto() ? 'Shardline-only: ACL rules from a Shardline config file' : false }, () => {
  let broker: BrokerProcess;

  before(async () => {
    const config = await writeConfigFile(RULES, 'acl.toml');
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

  describe('publish', () => {
    it('5.0: a forbidden QoS 1 publish gets PUBACK 0x87, QoS 2 PUBREC 0x87, QoS 0 is dropped; none is delivered', async () => {
      const t = tag();
      const watcher = await reader(broker.url, `secret/${t}/#`, 'admin');
      const client = await connectClient(broker.url, { version: 5, ...user('mallory') });
      const qos1 = await client.publish(`secret/${t}/a`, 'q1', { qos: 1 });
      assert.equal(qos1.ack?.reasonCode, 0x87);
      const qos2 = await client.publish(`secret/${t}/a`, 'q2', { qos: 2 });
      assert.equal(qos2.ack?.cmd, 'pubrec');
      assert.equal(qos2.ack?.reasonCode, 0x87);
      await client.publish(`secret/${t}/a`, 'q0', { qos: 0 });
      // The QoS 0 publish has no ack: a round trip makes sure the broker handled it before the control.
      await client.roundTrip();
      // The positive control is the barrier: every forbidden publish was handled before it, on
      // the same topic (same shard), so had one been delivered it would have come first.
      const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
      assert.equal((await admin.publish(`secret/${t}/a`, 'control', { qos: 1 })).ack?.reasonCode, 0);
      const [first] = await watcher.waitForMessages(1);
      assert.equal(first?.payload.toString(), 'control', 'no forbidden publish delivered');
      for (const c of [watcher, client, admin]) await c.end();
    });

    for (const version of [3, 4] as const) {
      it(`${label(version)}: a forbidden publish is acknowledged (PUBACK, PUBREC/PUBCOMP), dropped and logged`, async () => {
        const t = tag();
        const watcher = await reader(broker.url, `secret/${t}/#`, 'admin');
        const client = await connectClient(broker.url, { version, ...user('mallory'), clientId: uniqueClientId('m') });
        const qos1 = await client.publish(`secret/${t}/b`, 'q1', { qos: 1 });
        assert.equal(qos1.ack?.cmd, 'puback');
        const qos2 = await client.publish(`secret/${t}/b`, 'q2', { qos: 2 });
        assert.equal(qos2.pubcomp?.cmd, 'pubcomp', 'the QoS 2 flow completes');
        await client.publish(`secret/${t}/b`, 'q0', { qos: 0 });
        await client.roundTrip();
        // The control, on the same topic after every forbidden publish was handled, is the barrier.
        const admin = await connectClient(broker.url, { version, ...user('admin') });
        await admin.publish(`secret/${t}/b`, 'control', { qos: 1 });
        const [first] = await watcher.waitForMessages(1);
        assert.equal(first?.payload.toString(), 'control', 'no forbidden publish delivered');
        const logged = broker.broker.lines.some((line) => line.includes('publish not authorized') && line.includes(`secret/${t}/b`) && line.includes(client.clientId));
        assert.ok(logged, 'the refused publish is logged with the client and the topic');
        for (const c of [watcher, client, admin]) await c.end();
      });
    }

    it('${username} and ${clientid} rules: each client publishes to its own topics only', async () => {
      const t = tag();
      const watcher = await reader(broker.url, `+/+/${t}/#`, 'admin');
      const alice = await connectClient(broker.url, { version: 5, ...user('alice'), clientId: `dev-${t}` });
      assert.ok((await alice.publish(`users/alice/${t}/x`, 'own user', { qos: 1 })).ack!.reasonCode! < 0x80);
      assert.equal((await alice.publish(`users/bob/${t}/x`, 'other user', { qos: 1 })).ack?.reasonCode, 0x87);
      assert.ok((await alice.publish(`clients/dev-${t}/${t}`, 'own id', { qos: 1 })).ack!.reasonCode! < 0x80);
      assert.equal((await alice.publish(`clients/dev-other/${t}`, 'other id', { qos: 1 })).ack?.reasonCode, 0x87);
      const anonymous = await connectClient(broker.url, { version: 5 });
      assert.equal((await anonymous.publish(`users/undefined/${t}`, 'no name', { qos: 1 })).ack?.reasonCode, 0x87);
      assert.deepEqual((await watcher.waitForMessages(2)).map((m) => m.payload.toString()).sort(), ['own id', 'own user']);
      // Barrier: alice's markers, after every refusal, on each refused topic's data shard.
      const refused = [`users/bob/${t}/x`, `clients/dev-other/${t}`, `users/undefined/${t}`];
      await expectNothingBeforeShardMarkers(broker, alice, watcher, refused, (n) => `clients/dev-${t}/${t}/m${n}`, { from: 2, what: 'no refused publish delivered' });
      for (const c of [watcher, alice, anonymous]) await c.end();
    });

    it('escape: a user name or client id holding / does not reach other clients\' topics', async () => {
      const t = tag();
      const slash = await connectClient(broker.url, { version: 5, ...user('bob/esc') });
      assert.equal((await slash.publish(`users/bob/esc/${t}`, 'x', { qos: 1 })).ack?.reasonCode, 0x87);
      assert.equal((await slash.publish(`users/bob/${t}`, 'x', { qos: 1 })).ack?.reasonCode, 0x87);
      const clientSlash = await connectClient(broker.url, { version: 5, clientId: `dev/${t}` });
      assert.equal((await clientSlash.publish(`clients/dev/${t}/x`, 'x', { qos: 1 })).ack?.reasonCode, 0x87);
      for (const c of [slash, clientSlash]) await c.end();
    });
  });

  describe('subscribe', () => {
    for (const version of [3, 4, 5] as const) {
      it(`${label(version)}: a forbidden filter is refused (SUBACK ${version === 5 ? '0x87' : '0x80'}); the allowed ones of the same SUBSCRIBE are granted`, async () => {
        const t = tag();
        const client = await connectClient(broker.url, { version, ...user('mallory'), clientId: uniqueClientId('s') });
        const granted = await subackCodes(client, { [`public/${t}`]: { qos: 1 }, [`secret/${t}/#`]: { qos: 1 }, [`secret/${t}/+/x`]: { qos: 0 } });
        assert.deepEqual(granted, [1, version === 5 ? 0x87 : 0x80, version === 5 ? 0x87 : 0x80]);
        const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
        assert.deepEqual(await subackCodes(admin, { [`secret/${t}/#`]: { qos: 1 } }), [1]);
        await client.end();
        await admin.end();
      });
    }
  });

  describe('run-time rules (shardline ctl acl, the $acl shard)', () => {
    /** `shardline ctl ARGS` against this suite's node. */
    async function ctl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const listening = await waitForLogField(broker.broker, 'admin');
      const token = await adminTokenOf(broker);
      const cli = runCli(['ctl', ...args], { SHARDLINE_ADMIN_URL: `http://${String(listening.admin)}`, SHARDLINE_ADMIN_TOKEN: token });
      const { code, stderr } = await cli.exited;
      return { code, stdout: cli.lines.join('\n'), stderr };
    }

    it('a rule added at run time applies at once to a connected client, and stops applying when deleted', async () => {
      const t = tag();
      const client = await connectClient(broker.url, { version: 5, ...user('mallory') });
      assert.ok((await client.publish(`public/${t}/x`, 'before', { qos: 1 })).ack!.reasonCode! < 0x80);
      const added = await ctl(['acl', 'add', 'deny', 'publish', `public/${t}/#`, '--username', 'mallory', '--id', `block-${t}`, '--position', '0']);
      assert.equal(added.code, 0, added.stderr);
      assert.equal((await client.publish(`public/${t}/x`, 'blocked', { qos: 1 })).ack?.reasonCode, 0x87);
      const other = await connectClient(broker.url, { version: 5, ...user('alice') });
      assert.ok((await other.publish(`public/${t}/x`, 'other user', { qos: 1 })).ack!.reasonCode! < 0x80, 'the rule is for mallory only');
      const listed = await ctl(['acl', 'list', '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      const items = (JSON.parse(listed.stdout) as { items: Array<{ id: string; rule: { topic: string } }> }).items;
      assert.ok(items.some((item) => item.id === `block-${t}` && item.rule.topic === `public/${t}/#`), listed.stdout);
      const deleted = await ctl(['acl', 'delete', `block-${t}`]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.ok((await client.publish(`public/${t}/x`, 'after', { qos: 1 })).ack!.reasonCode! < 0x80);
      const again = await ctl(['acl', 'delete', `block-${t}`]);
      assert.equal(again.code, 1, 'deleting it twice: not found');
      const bad = await ctl(['acl', 'add', 'allow', 'publish', 'a/#/b']);
      assert.equal(bad.code, 1);
      assert.ok(bad.stderr.includes('SL_ADMIN_BAD_REQUEST') || bad.stderr.includes('topic'), bad.stderr);
      for (const c of [client, other]) await c.end();
    });
  });

  describe('escape attempts', () => {
    it('a wildcard subscription over a forbidden area receives only what its client may read', async () => {
      const t = tag();
      const snoop = await reader(broker.url, '#', 'mallory');
      const plus = await reader(broker.url, `+/${t}/#`, 'mallory', 4);
      const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
      await admin.publish(`secret/${t}/plans`, 'forbidden', { qos: 1 });
      await admin.publish(`public/${t}/news`, 'allowed', { qos: 1 });
      for (const client of [snoop, plus]) {
        await client.waitForMessages(1, { topic: `public/${t}/news` });
        // Barrier: markers on the data shards of the secret and of the news (a second copy).
        await expectNothingBeforeShardMarkers(broker, admin, client, [`secret/${t}/plans`, `public/${t}/news`], (n) => `public/${t}/${client.clientId}/m${n}`, {
          from: 0,
          what: `no secret/ message for ${client.clientId}`,
          unwanted: (m) => m.topic.startsWith('secret/'),
        });
        assert.deepEqual(client.messages.filter((m) => m.payload.toString() === 'allowed').length, 1, 'the news once');
      }
      for (const c of [snoop, plus, admin]) await c.end();
    });

    it('a time-range replay over a forbidden area replays only what its client may read; a replay of the forbidden area itself is refused', async () => {
      const t = tag();
      const from = Date.now() - 1000;
      const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
      await admin.publish(`secret/${t}/old`, 'stored secret', { qos: 1 });
      // A later stamp for the public message: the replay goes in publish order (timestamp first),
      // so a replayed secret would come before it.
      await sleep(5);
      await admin.publish(`public/${t}/old`, 'stored public', { qos: 1 });
      const to = Date.now() + 1000;
      const mallory = await connectClient(broker.url, { version: 5, ...user('mallory') });
      assert.deepEqual(await subackCodes(mallory, { [`$replay/${from}/${to}/+/${t}/#`]: { qos: 1 } }), [1]);
      const [replayed] = await mallory.waitForMessages(1);
      assert.equal(replayed?.payload.toString(), 'stored public', 'no replayed secret (it would have come first)');
      assert.deepEqual(await subackCodes(mallory, { [`$replay/${from}/live/secret/${t}/#`]: { qos: 1 } }), [0x87]);
      for (const c of [admin, mallory]) await c.end();
    });

    it('a retained message on a forbidden topic is not delivered to a new wildcard subscription', async () => {
      const t = tag();
      const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
      await admin.publish(`secret/${t}/r`, 'retained secret', { qos: 1, retain: true });
      await admin.publish(`public/${t}/r`, 'retained public', { qos: 1, retain: true });
      // mallory may not publish a retained message there either.
      const mallory = await connectClient(broker.url, { version: 5, ...user('mallory') });
      assert.equal((await mallory.publish(`secret/${t}/r2`, 'planted', { qos: 1, retain: true })).ack?.reasonCode, 0x87);
      const late = await connectClient(broker.url, { version: 5, ...user('mallory') });
      assert.deepEqual(await subackCodes(late, { [`+/${t}/#`]: { qos: 1 } }), [1]);
      const [got] = await late.waitForMessages(1);
      assert.equal(got?.payload.toString(), 'retained public');
      // Retained messages are queued in the SUBSCRIBE's step: a live marker after the SUBACK is the barrier.
      await late.expectNothingBeforeMarker(admin, `public/${t}/m`, { from: 1, what: 'no retained secret' });
      // The admin, subscribing the same way, gets both retained (not r2, which was refused).
      const adminReader = await connectClient(broker.url, { version: 5, ...user('admin') });
      await adminReader.subscribe(`+/${t}/#`, { qos: 1 });
      assert.deepEqual((await adminReader.waitForMessages(2)).map((m) => m.payload.toString()).sort(), ['retained public', 'retained secret']);
      await adminReader.expectNothingBeforeMarker(admin, `public/${t}/m`, { from: 2, what: 'no third retained message (not the refused r2)' });
      // Clear the retained messages for tidiness.
      await admin.publish(`secret/${t}/r`, '', { qos: 1, retain: true });
      await admin.publish(`public/${t}/r`, '', { qos: 1, retain: true });
      for (const c of [admin, mallory, late, adminReader]) await c.end();
    });

    for (const version of [4, 5] as const) {
      it(`${label(version)}: a will sent to a forbidden topic is dropped (and logged); one to an allowed topic is published`, async () => {
        const t = tag();
        const watcher = await reader(broker.url, `+/${t}/#`, 'admin');
        const bad = await connectClient(broker.url, { version, ...user('mallory'), clientId: uniqueClientId('w'), will: { topic: `secret/${t}/will`, payload: Buffer.from('forbidden will'), qos: 1, retain: true } });
        bad.destroy();
        const good = await connectClient(broker.url, { version, ...user('mallory'), will: { topic: `public/${t}/will`, payload: Buffer.from('allowed will'), qos: 1, retain: false } });
        good.destroy();
        const [first] = await watcher.waitForMessages(1, { topic: `public/${t}/will` });
        assert.equal(first?.payload.toString(), 'allowed will');
        // The broker handled the forbidden will once it logged dropping it (a state, polled).
        const deadline = Date.now() + 2000;
        while (!broker.broker.lines.some((line) => line.includes('will message dropped') && line.includes(`secret/${t}/will`)) && Date.now() < deadline) await sleep(20);
        assert.ok(broker.broker.lines.some((line) => line.includes('will message dropped') && line.includes(`secret/${t}/will`)), 'the dropped will is logged');
        // Barrier: a marker on the will's topic, published after that.
        const admin = await connectClient(broker.url, { version: 5, ...user('admin') });
        await watcher.expectNothingBeforeMarker(admin, `secret/${t}/will`, { from: 0, what: 'no forbidden will', unwanted: (m) => m.topic === `secret/${t}/will` });
        // Nor was it retained: retained messages come in the SUBSCRIBE's step, before a later marker.
        const late = await connectClient(broker.url, { version: 5, ...user('admin') });
        await late.subscribe(`secret/${t}/#`, { qos: 1 });
        await late.expectNothingBeforeMarker(admin, `secret/${t}/will`, { from: 0, what: 'no retained forbidden will' });
        for (const c of [watcher, late, admin]) await c.end();
      });
    }
  });
});

describe('ACL rules a JWT carries (acl claim)', { skip: usingMosquitto() ? 'Shardline-only' : false }, () => {
  const secret = 'acl-test-secret-of-at-least-32-bytes!';
  let broker: BrokerProcess;
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const token = (claims: Record<string, unknown>): string => {
    const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
  };

  before(async () => {
    const config = await writeConfigFile(`[jwt]\nsecret = "${secret}"\n\n[[acl]]\npermission = "allow"\naction = "publish"\ntopic = "public/#"\n\n[[acl]]\npermission = "allow"\naction = "subscribe"\ntopic = "#"\n`, 'jwt.toml');
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

  it("the token's rules come before the config file's: its deny narrows, its allow widens, for its holder only", async () => {
    const t = tag();
    const rules = [
      { permission: 'deny', action: 'publish', topic: `public/${t}/closed/#` },
      { permission: 'allow', action: 'publish', topic: `jwt/${t}/#` },
    ];
    const holder = await connectClient(broker.url, { version: 5, username: 'token', password: Buffer.from(token({ sub: 'jwt-user', exp: Math.floor(Date.now() / 1000) + 600, acl: rules })) });
    assert.ok((await holder.publish(`public/${t}/open`, 'x', { qos: 1 })).ack!.reasonCode! < 0x80, 'config rule');
    assert.equal((await holder.publish(`public/${t}/closed/x`, 'x', { qos: 1 })).ack?.reasonCode, 0x87, "the token's deny");
    assert.ok((await holder.publish(`jwt/${t}/x`, 'x', { qos: 1 })).ack!.reasonCode! < 0x80, "the token's allow");
    const other = await connectClient(broker.url, { version: 5, username: 'token', password: Buffer.from(token({ sub: 'other', exp: Math.floor(Date.now() / 1000) + 600 })) });
    assert.equal((await other.publish(`jwt/${t}/x`, 'x', { qos: 1 })).ack?.reasonCode, 0x87, 'no token rules: the default (deny)');
    assert.ok((await other.publish(`public/${t}/closed/x`, 'x', { qos: 1 })).ack!.reasonCode! < 0x80);
    for (const c of [holder, other]) await c.end();
  });
});

describe('ACL in the split topology (broker over a remote journal)', { skip: usingMosquitto() ? 'Shardline-only' : false }, () => {
  let broker: BrokerProcess;

  before(async () => {
    const config = await writeConfigFile('[[acl]]\npermission = "deny"\naction = "all"\ntopic = "secret/#"\n\n[[acl]]\npermission = "allow"\naction = "all"\ntopic = "#"\n', 'split.toml');
    broker = await startBroker({ topology: 'split', args: ['--config', config] });
  });

  after(async () => {
    closeAllClients();
    try {
      if (broker !== undefined) await stopBroker(broker);
    } finally {
      await cleanup();
    }
  });

  it('config rules apply, and a run-time rule reaches the broker through the remote $acl shard', async () => {
    const t = tag();
    const client = await connectClient(broker.url, { version: 5 });
    assert.equal((await client.publish(`secret/${t}`, 'x', { qos: 1 })).ack?.reasonCode, 0x87);
    assert.ok((await client.publish(`open/${t}`, 'x', { qos: 1 })).ack!.reasonCode! < 0x80);
    const listening = await waitForLogField(broker.broker, 'admin');
    const token = await adminTokenOf(broker);
    const cli = runCli(['ctl', 'acl', 'add', 'deny', 'publish', `open/${t}`, '--position', '0'], { SHARDLINE_ADMIN_URL: `http://${String(listening.admin)}`, SHARDLINE_ADMIN_TOKEN: token });
    const { code, stderr } = await cli.exited;
    assert.equal(code, 0, stderr);
    assert.equal((await client.publish(`open/${t}`, 'x', { qos: 1 })).ack?.reasonCode, 0x87);
    await client.end();
  });
});

/** The admin token of a test node: logged once when a broker-only node makes one, else in its data directory. */
async function adminTokenOf(node: BrokerProcess): Promise<string> {
  for (const line of node.broker.lines) {
    const match = /admin token created: (\S+)/.exec(line);
    if (match !== null) return match[1] as string;
  }
  return (await readFile(join(node.dataDir, 'admin-token'), 'utf8')).trim();
}

describe('ACL configuration errors', { skip: usingMosquitto() ? 'Shardline-only' : false }, () => {
  after(cleanup);

  it('a bad rule refuses to start: exit 2, naming the file and the rule', async () => {
    const config = await writeConfigFile('[[acl]]\npermission = "allow"\naction = "all"\ntopic = "#"\n\n[[acl]]\npermission = "allow"\naction = "read"\ntopic = "x"\n', 'bad-acl.toml');
    const cli = runCli(['start', '--config', config, '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0']);
    const { code, stderr } = await cli.exited;
    assert.equal(code, 2, stderr);
    assert.ok(stderr.includes(config) && stderr.includes('#2') && stderr.includes('action'), stderr);
  });
});
