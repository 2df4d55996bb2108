// Shared ($share/{group}/{filter}) and exclusive ($exclusive/{filter}) subscriptions against
// real `shardline start` processes, with mqtt.js clients, in MQTT 3.1.1 and 5.0.
//
// Goal: with every --shared-strategy, each message reaches exactly one member of a group, also
// when a member is killed (SIGKILL of its process) mid-stream: what it held unacknowledged goes
// to the others, nothing is lost, and a message reaches two members only if the killed one had
// it and had not acknowledged it yet (bounded by --max-inflight). QoS 2 is never delivered twice.
// Groups coexist with plain subscribers and other groups; a shared subscription gets no retained
// messages; a persistent member's subscription and the group's position survive a kill -9 of the
// broker. Exclusive subscriptions: the second subscriber is refused (5.0 SUBACK 0x97, 3.1.1
// 0x80) until the first unsubscribes. Malformed share names get 0x8F / 0x80; No Local on a
// shared subscription is a protocol error (5.0 DISCONNECT 0x82). CONNACK says Shared
// Subscription Available = 1.
// Method: killable members are child processes (tests/support/shared-member.ts) that print each
// message before mqtt.js acknowledges it, so the test knows everything a killed member got.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { brokerForSuite, REPO_ROOT, restartBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import type { ISubackPacket } from 'mqtt-packet';
import { closeAllClients, connectClient, sleep, uniqueClientId, uniqueTopic, type ProtocolVersion, type TestClient } from './support/mqtt-client.js';

const VERSIONS = [4, 5] as const;
const STRATEGIES = ['round-robin', 'random', 'sticky', 'hash-client-id'] as const;
/** The broker's outbound in-flight cap: the most a killed member can hold unacknowledged. */
const MAX_INFLIGHT = 10;
const WAIT_MS = 20_000;

const label = (version: ProtocolVersion): string => (version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1');
const hex = (code: number | undefined): string => `0x${(code ?? -1).toString(16)}`;

interface Member {
  id: string;
  child: ChildProcess;
  payloads: string[];
  ready: Promise<void>;
  exited: Promise<void>;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  closeAllClients();
});

function spawnMember(url: string, version: ProtocolVersion, filter: string, qos: 1 | 2): Member {
  const id = uniqueClientId('mem');
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/shared-member.ts', url, String(version), id, filter, String(qos)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const payloads: string[] = [];
  let markReady: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = JSON.parse(line) as { ready?: boolean; payload?: string; error?: string; granted?: number[] };
    if (event.payload !== undefined) payloads.push(event.payload);
    else if (event.ready === true) {
      if (event.granted?.[0] === qos) markReady();
      else fail(new Error(`member ${id} was granted ${JSON.stringify(event.granted)}`));
    } else if (event.error !== undefined) fail(new Error(`member ${id}: ${event.error}`));
  });
  const exited = once(child, 'exit').then(() => {
    children.delete(child);
    fail(new Error(`member ${id} exited before it was ready: ${stderr}`));
  });
  return { id, child, payloads, ready, exited };
}

async function waitFor(condition: () => boolean, what: () => string, timeoutMs = WAIT_MS): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) assert.fail(`timed out waiting for ${what()}`);
    await sleep(20);
  }
}

function duplicates(list: readonly string[]): string[] {
  const seen = new Set<string>();
  return list.filter((item) => (seen.has(item) ? true : (seen.add(item), false)));
}

/** The SUBACK codes as sent (mqtt.js hands back the requested QoS for refused filters). */
async function subackCodes(client: TestClient, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<string[]> {
  const from = client.packets.length;
  await client.subscribe(filters).catch(() => undefined);
  const suback = await client.waitForPacket<ISubackPacket>((packet) => packet.cmd === 'suback', { from });
  return (suback.granted as number[]).map((code) => hex(code));
}

/**
 * Barrier for "nothing more reaches these group members": publishes markers on `topic` until
 * each member has received one (a group hands each marker to one member; round-robin reaches
 * all within a few). Whatever the broker dispatched to a member before comes before its marker.
 * Returns the markers' payloads.
 */
async function markEveryMember(publisher: TestClient, topic: string, groups: TestClient[][]): Promise<Set<string>> {
  const markers = new Set<string>();
  const members = groups.flat();
  const marked = (member: TestClient): boolean => member.messages.some((m) => markers.has(m.payload.toString()));
  for (let i = 0; !members.every(marked); i += 1) {
    assert.ok(i < 20, `20 markers did not reach every member: ${members.map((m) => `${m.clientId}=${marked(m)}`).join(' ')}`);
    const marker = `marker-${uniqueTopic('m')}`;
    markers.add(marker);
    await publisher.publish(topic, marker, { qos: 1 });
    await Promise.all(groups.map((group) => waitFor(() => group.some((m) => m.messages.some((message) => message.payload.toString() === marker)), () => `${marker} in a group`)));
  }
  return markers;
}

/** Publishes `payloads` from several clients (different client ids: the hash strategy spreads by publisher). */
async function publishFrom(publishers: TestClient[], topic: string, payloads: string[], qos: 1 | 2): Promise<void> {
  await Promise.all(publishers.map((publisher, index) => publisher.publishMany(topic, payloads.filter((_, i) => i % publishers.length === index), { qos }, 10)));
}

for (const strategy of STRATEGIES) {
  describe(`--shared-strategy ${strategy}: a member killed mid-stream`, () => {
    const broker = brokerForSuite({ args: ['--shared-strategy', strategy, '--max-inflight', String(MAX_INFLIGHT)] }, closeAllClients);

    for (const version of VERSIONS) {
      for (const qos of [1, 2] as const) {
        it(`${label(version)}, QoS ${qos}: each message reaches one member; the killed member's unacknowledged ones go to the others`, async () => {
          const topic = uniqueTopic('jobs');
          const filter = `$share/workers/${topic}/+`;
          const members = [spawnMember(broker.url, version, filter, qos), spawnMember(broker.url, version, filter, qos), spawnMember(broker.url, version, filter, qos)];
          await Promise.all(members.map((member) => member.ready));
          const publishers = await Promise.all([0, 1, 2, 3].map(() => connectClient(broker.url, { version })));
          const payloads = Array.from({ length: 240 }, (_, i) => `m${i}`);
          const publishing = publishFrom(publishers, `${topic}/x`, payloads, qos);
          const total = (): number => members.reduce((sum, member) => sum + member.payloads.length, 0);
          await waitFor(() => total() >= 80, () => `80 deliveries before the kill, got ${total()}`);
          // The busiest member: for sticky and hash strategies the one actually receiving.
          const victim = members.reduce((busiest, member) => (member.payloads.length > busiest.payloads.length ? member : busiest));
          victim.child.kill('SIGKILL');
          await victim.exited;
          const killedWith = [...victim.payloads];
          await publishing;
          const survivors = members.filter((member) => member !== victim);
          const received = (): Set<string> => new Set(members.flatMap((member) => member.payloads));
          const lostAtMost = qos === 2 ? MAX_INFLIGHT : 0;
          await waitFor(
            () => received().size >= payloads.length - lostAtMost && survivors.some((member) => member.payloads.length > 0),
            () => `the group to receive ${payloads.length - lostAtMost} of ${payloads.length}, got ${received().size}`,
          );
          // Anything still on its way gets a moment to arrive (a duplicate would show up now).
          await sleep(300);

          assert.ok(killedWith.length > 0, 'the killed member had received messages');
          for (const member of members) assert.deepEqual(duplicates(member.payloads), [], `${member.id} got nothing twice`);
          const survivorPayloads = survivors.flatMap((member) => member.payloads);
          assert.deepEqual(duplicates(survivorPayloads), [], 'no message reached two surviving members');
          const both = killedWith.filter((payload) => survivorPayloads.includes(payload));
          if (qos === 2) {
            // From PUBREC on a QoS 2 message is the member's (it sees it at PUBREL): never twice.
            assert.deepEqual(both, [], 'QoS 2: no message reached the killed member and another');
            const missing = payloads.filter((payload) => !received().has(payload));
            assert.ok(missing.length <= MAX_INFLIGHT, `QoS 2: at most the killed member's in-flight window went with it (PUBREC sent, PUBREL not yet seen): ${missing.length}`);
          } else {
            assert.ok(both.length <= MAX_INFLIGHT, `only messages the killed member had not acknowledged may reach another member too: ${both.length} (at most ${MAX_INFLIGHT})`);
            assert.deepEqual(payloads.filter((payload) => !received().has(payload)), [], 'QoS 1: every message reached the group');
          }
          for (const member of survivors) member.child.kill('SIGTERM');
          await Promise.all(publishers.map((publisher) => publisher.end()));
        });
      }
    }
  });
}

describe('shared and exclusive subscriptions (round-robin broker)', () => {
  const broker = brokerForSuite({ args: ['--max-inflight', String(MAX_INFLIGHT)] }, closeAllClients);

  for (const version of VERSIONS) {
    it(`${label(version)}: two groups and a plain subscriber: each group gets every message once, the plain subscriber all${version === 5 ? '; CONNACK Shared Subscription Available = 1' : ''}`, async () => {
      const topic = uniqueTopic('fan');
      const clients = await Promise.all([0, 1, 2, 3, 4].map(() => connectClient(broker.url, { version })));
      const [a1, a2, b1, b2, plain] = clients as [TestClient, TestClient, TestClient, TestClient, TestClient];
      if (version === 5) assert.equal(a1.connack.properties?.sharedSubscriptionAvailable, true);
      for (const client of [a1, a2]) assert.deepEqual(await client.subscribe(`$share/a/${topic}`, { qos: 1 }), [1]);
      for (const client of [b1, b2]) assert.deepEqual(await client.subscribe(`$share/b/${topic}`, { qos: 2 }), [2]);
      assert.deepEqual(await plain.subscribe(topic, { qos: 1 }), [1]);
      const publisher = await connectClient(broker.url, { version });
      const payloads = Array.from({ length: 50 }, (_, i) => `p${i}`);
      // Windowed below --max-inflight: a 5.0 client past it is disconnected (0x93).
      await publisher.publishMany(topic, payloads, { qos: 2 }, MAX_INFLIGHT);
      await plain.waitForMessages(50);
      const group = (members: TestClient[]): string[] => members.flatMap((member) => member.messages.map((message) => message.payload.toString()));
      await Promise.all([waitFor(() => group([a1, a2]).length >= 50, () => 'group a'), waitFor(() => group([b1, b2]).length >= 50, () => 'group b')]);
      const markers = await markEveryMember(publisher, topic, [[a1, a2], [b1, b2], [plain]]);
      const unmarked = (list: string[]): string[] => list.filter((payload) => !markers.has(payload));
      for (const members of [[a1, a2], [b1, b2]]) {
        assert.deepEqual(unmarked(group(members)).sort(), [...payloads].sort(), 'each message once per group');
        assert.ok(members.every((member) => unmarked(group([member])).length > 0), 'round-robin uses both members');
      }
      assert.deepEqual(unmarked(plain.messages.map((message) => message.payload.toString())), payloads);
      for (const client of [...clients, publisher]) await client.end();
    });

    it(`${label(version)}: no retained message for a shared subscription; an exclusive one gets it`, async () => {
      const topic = uniqueTopic('retained');
      const publisher = await connectClient(broker.url, { version });
      await publisher.publish(topic, 'kept', { qos: 1, retain: true });
      const shared = await connectClient(broker.url, { version });
      await shared.subscribe(`$share/r/${topic}`, { qos: 1 });
      const exclusive = await connectClient(broker.url, { version });
      await exclusive.subscribe(`$exclusive/${topic}`, { qos: 1 });
      const [retained] = await exclusive.waitForMessages(1);
      assert.equal(retained?.payload.toString(), 'kept');
      // Barrier: retained copies are queued on SUBSCRIBE; the group's only member gets this marker after them.
      await shared.expectNothingBeforeMarker(publisher, topic, { from: 0, what: 'no retained message for the shared subscription' });
      for (const client of [publisher, shared, exclusive]) await client.end();
    });

    it(`${label(version)}: $exclusive: a second subscriber gets ${version === 5 ? '0x97 quota exceeded' : '0x80'}; after the first unsubscribes it is granted`, async () => {
      const topic = uniqueTopic('excl');
      const first = await connectClient(broker.url, { version });
      const second = await connectClient(broker.url, { version });
      assert.deepEqual(await first.subscribe(`$exclusive/${topic}/#`, { qos: 1 }), [1]);
      assert.deepEqual(await subackCodes(second, { [`$exclusive/${topic}/#`]: { qos: 1 } }), [hex(version === 5 ? 0x97 : 0x80)]);
      if (version === 5) {
        const suback = await second.waitForPacket((packet) => packet.cmd === 'suback');
        assert.match((suback as { properties?: { reasonString?: string } }).properties?.reasonString ?? '', /exclusive/);
      }
      const publisher = await connectClient(broker.url, { version });
      await publisher.publish(`${topic}/1`, 'to the holder', { qos: 1 });
      await first.waitForMessages(1);
      await first.unsubscribe(`$exclusive/${topic}/#`);
      assert.deepEqual(await second.subscribe(`$exclusive/${topic}/#`, { qos: 1 }), [1]);
      await publisher.publish(`${topic}/1`, 'to the new holder', { qos: 1 });
      await second.waitForMessages(1);
      // Barrier: same publisher, same topic: "to the holder", had the refused subscriber got it,
      // would have come before this one.
      assert.deepEqual(second.messages.map((m) => m.payload.toString()), ['to the new holder'], 'nothing for the refused subscriber');
      // The holder's connection ends (its session with it): the filter is free again.
      await second.end();
      assert.deepEqual(await first.subscribe(`$exclusive/${topic}/#`, { qos: 1 }), [1]);
      for (const client of [first, publisher]) await client.end();
    });

    it(`${label(version)}: malformed share names (no filter, empty name) get ${version === 5 ? '0x8F' : '0x80'}, the filter beside them is granted`, async () => {
      const topic = uniqueTopic('bad-share');
      const client = await connectClient(broker.url, { version });
      const codes = await subackCodes(client, { '$share/g': { qos: 1 }, [`$share//${topic}`]: { qos: 1 }, [`$share/g/${topic}`]: { qos: 1 } });
      const refused = version === 5 ? 0x8f : 0x80;
      assert.deepEqual(codes, [hex(refused), hex(refused), hex(1)]);
      await client.end();
    });
  }

  it('MQTT 5.0: No Local on a shared subscription: DISCONNECT 0x82 protocol error', async () => {
    const client = await connectClient(broker.url, { version: 5 });
    client.client.subscribe(`$share/g/${uniqueTopic('nl')}`, { qos: 1, nl: true });
    await client.waitForClose();
    assert.equal(hex(client.serverDisconnect?.reasonCode), hex(0x82));
  });
});

for (const topology of ['single', 'split'] as const) {
  describe(`a persistent member across a kill -9 of the broker (${topology} topology)`, () => {
    let broker: BrokerProcess | undefined;
    after(async () => {
      closeAllClients();
      if (broker !== undefined) await stopBroker(broker);
    });

    for (const version of VERSIONS) {
      it(`${label(version)}: the subscription and the group's position survive; messages published while no member was online arrive once`, async () => {
        broker ??= await startBroker({ topology });
        const topic = uniqueTopic('durable');
        const clientId = uniqueClientId('dur');
        const persistent = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };
        const member = await connectClient(broker.url, { version, clientId, ...persistent });
        await member.subscribe(`$share/d/${topic}`, { qos: 1 });
        const publisher = await connectClient(broker.url, { version });
        await publisher.publishMany(topic, ['before-1', 'before-2'], { qos: 1 }, MAX_INFLIGHT);
        await member.waitForMessages(2);
        // Past the cursor write interval (100 ms): a crash re-sends at most what was acknowledged within it.
        await sleep(300);
        await member.end();
        await publisher.publishMany(topic, Array.from({ length: 20 }, (_, i) => `offline-${i}`), { qos: 1 }, MAX_INFLIGHT);
        publisher.destroy();
        broker = await restartBroker(broker);
        const late = await connectClient(broker.url, { version });
        await late.publishMany(topic, ['after-restart'], { qos: 1 }, MAX_INFLIGHT);
        const back = await connectClient(broker.url, { version, clientId, ...persistent });
        assert.equal(back.connack.sessionPresent, true);
        const expected = [...Array.from({ length: 20 }, (_, i) => `offline-${i}`), 'after-restart'];
        await back.waitForMessages(expected.length, { timeoutMs: WAIT_MS });
        // Barrier: the group's only member gets a marker after anything the group still had for it.
        await back.expectNothingBeforeMarker(late, topic, { from: expected.length, what: 'nothing more' });
        assert.deepEqual(back.messages.slice(0, expected.length).map((message) => message.payload.toString()), expected);
        if (version === 5) await back.end(0, { sessionExpiryInterval: 0 });
        else await back.end();
        await late.end();
      });
    }
  });
}
