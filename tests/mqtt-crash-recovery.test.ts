// kill -9 of the broker in the middle of a publish stream, then a restart on the same state.
//
// Goal: nothing the broker acknowledged is lost. Every QoS 1 message it PUBACKed reaches every
// persistent subscriber at least once (duplicates are counted and reported), and every QoS 2
// message it PUBRECed is delivered exactly once; persistent sessions come back (session present 1)
// with their subscriptions, so a message published after the restart reaches them without a
// new SUBSCRIBE; retained messages set before the crash are what a new subscriber gets; and a
// delivery the subscriber had not acknowledged when the broker died is sent again, with DUP.
// Method: per topology ('single': the whole node is killed; 'split': only the broker process
// is, the journal server keeps running), persistent subscribers for 3.1.1 and 5.0, some
// connected through the crash and some offline, plus an mqtt.js publisher that keeps QoS 1
// and QoS 2 PUBLISH in flight and records which ones the broker acknowledged (PUBACK; PUBREC,
// seen on the wire). The broker is SIGKILLed by pid once a few hundred acks are in, restarted
// on the same data dir / journal and port, and the subscribers reconnect with the same ids.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient, Store } from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import { cleanup, killBroker, requireShardline, restartBroker, startBroker, stopBroker, type BrokerProcess, type Topology } from './support/broker-process.js';
import { connectForCrash, KeptStore, SESSION_EXPIRY_S, watchPublishAcks, type Connection, type Version } from './support/crash-clients.js';
import { rawConnect, waitUntil, type RawMqttClient } from './support/raw-mqtt.js';

const TOPOLOGIES: Topology[] = ['single', 'split'];
/** Acks (per QoS) to collect before the kill: enough that the kill lands mid-stream. */
const ACKS_BEFORE_KILL = 150;
const STREAM_LIMIT_MS = 20_000;
/** Unacknowledged PUBLISH the publisher keeps in flight per QoS (below any Receive Maximum). */
const WINDOW = 8;
const DELIVERY_WAIT_MS = 20_000;
/** After the last expected message arrived, how long to keep counting duplicates. */
const SETTLE_MS = 500;

interface Delivery {
  qos: number;
  seq: number;
  dup: boolean;
}

/** An mqtt.js client whose deliveries are recorded across reconnects (one record per client id). */
interface Persistent {
  clientId: string;
  version: Version;
  online: boolean;
  deliveries: Delivery[];
  other: string[];
  /** Outlives each connection, as a real client's would (see KeptStore). */
  incomingStore: Store;
  connection?: Connection;
}

function parsePayload(payload: Buffer | string): { qos: number; seq: number } | null {
  const match = /^q([12]):(\d+)$/.exec(payload.toString());
  return match === null ? null : { qos: Number(match[1]), seq: Number(match[2]) };
}

function recordInto(record: Persistent): (packet: IPublishPacket) => void {
  return (packet) => {
    const parsed = parsePayload(packet.payload);
    if (parsed === null) record.other.push(`${packet.topic}=${packet.payload.toString()}`);
    else {
      assert.equal(packet.qos, parsed.qos, `${record.clientId}: q${parsed.qos}:${parsed.seq} delivered at QoS ${packet.qos}`);
      record.deliveries.push({ ...parsed, dup: packet.dup });
    }
  };
}

interface StreamResult {
  /** Sequence numbers the broker acknowledged (QoS 1: PUBACK; QoS 2: PUBREC). */
  acked: Record<1 | 2, Set<number>>;
  sent: Record<1 | 2, number>;
}

/**
 * Publishes q1:N and q2:N messages with WINDOW of each in flight until `stop()` resolves or
 * the connection closes, recording the acknowledgements as they arrive on the wire.
 */
async function publishStream(connection: Connection, topics: Record<1 | 2, string>, killWhen: (result: StreamResult) => boolean, kill: () => Promise<void>): Promise<StreamResult> {
  const publisher = connection.client;
  const result: StreamResult = { acked: { 1: new Set(), 2: new Set() }, sent: { 1: 0, 2: 0 } };
  // 0x10 "no matching subscribers" is still an acceptance; codes >= 0x80 are refusals.
  watchPublishAcks(publisher, {
    accepted: (packet) => {
      const parsed = parsePayload(packet.payload);
      if (parsed !== null && parsed.qos === packet.qos) result.acked[parsed.qos as 1 | 2].add(parsed.seq);
    },
  });
  let lost = false;
  const connectionLost = connection.closed.then(() => {
    lost = true;
  });
  let killing: Promise<void> | undefined;
  const started = Date.now();
  // The workers keep publishing after the kill is sent, until the connection drops: the
  // process dies with PUBLISH in flight, some of them never acknowledged.
  const worker = async (qos: 1 | 2): Promise<void> => {
    while (!lost && Date.now() - started < STREAM_LIMIT_MS) {
      const seq = result.sent[qos];
      result.sent[qos] += 1;
      const published = publisher.publishAsync(topics[qos], `q${qos}:${seq}`, { qos }).catch(() => undefined);
      // After the kill the publish never completes: stop waiting when the connection drops.
      await Promise.race([published, connectionLost]);
      if (killing === undefined && killWhen(result)) killing = kill();
    }
  };
  await Promise.all([...Array.from({ length: WINDOW }, () => worker(1)), ...Array.from({ length: WINDOW }, () => worker(2))]);
  assert.ok(killing !== undefined, `the kill condition was reached within ${STREAM_LIMIT_MS} ms (acks: q1 ${result.acked[1].size}, q2 ${result.acked[2].size})`);
  await killing;
  await connectionLost;
  return result;
}

function missing(expected: Set<number>, deliveries: Delivery[], qos: number): number[] {
  const got = new Set(deliveries.filter((delivery) => delivery.qos === qos).map((delivery) => delivery.seq));
  return [...expected].filter((seq) => !got.has(seq));
}

/** How many deliveries repeated an earlier one, and which, with "+dup" where the repeat had DUP set. */
function duplicates(deliveries: Delivery[], qos: number): { count: number; which: string[] } {
  const seen = new Set<number>();
  const which: string[] = [];
  for (const delivery of deliveries) {
    if (delivery.qos !== qos) continue;
    if (seen.has(delivery.seq)) which.push(`${delivery.seq}${delivery.dup ? '+dup' : ''}`);
    seen.add(delivery.seq);
  }
  return { count: which.length, which };
}

for (const topology of TOPOLOGIES) {
  describe(`MQTT crash recovery (${topology}: ${topology === 'single' ? 'the whole node' : 'the broker process, not the journal server'} is killed)`, () => {
    let broker: BrokerProcess;
    const clients = new Set<MqttClient>();
    const raws = new Set<RawMqttClient>();

    before(async () => {
      broker = await startBroker({ topology });
    });
    after(async () => {
      for (const client of clients) client.end(true);
      for (const raw of raws) raw.destroy();
      try {
        if (broker !== undefined) await stopBroker(broker);
      } finally {
        await cleanup();
      }
    });

    function track(client: MqttClient): MqttClient {
      clients.add(client);
      return client;
    }

    it('kill -9 mid-stream: every acknowledged QoS 1/2 message, persistent session, subscription and retained message survives', async (t: TestContext) => {
      if (!requireShardline(t)) return;
      const base = `crash/${topology}`;
      const topics = { 1: `${base}/q1`, 2: `${base}/q2` } as const;

      // Persistent subscribers: 3.1.1 and 5.0, one of each connected through the crash and
      // one offline (subscribed, then disconnected cleanly) during the whole stream.
      const subscribers: Persistent[] = [];
      for (const version of [4, 5] as Version[]) {
        for (const online of [true, false]) {
          const record: Persistent = { clientId: `crash-${topology}-v${version}-${online ? 'on' : 'off'}`, version, online, deliveries: [], other: [], incomingStore: new KeptStore() };
          const connection = await connectForCrash(broker.url, version, record.clientId, false, { onPublish: recordInto(record), incomingStore: record.incomingStore });
          track(connection.client);
          assert.equal(connection.connack.sessionPresent, false, `${record.clientId}: a fresh session`);
          await connection.client.subscribeAsync({ [topics[1]]: { qos: 2 }, [topics[2]]: { qos: 2 } });
          if (online) record.connection = connection;
          else await connection.client.endAsync();
          subscribers.push(record);
        }
      }

      // Retained before the crash: a kept, b replaced, c cleared; all acknowledged.
      const publishing = await connectForCrash(broker.url, 5, `crash-${topology}-pub`, true);
      const publisher = track(publishing.client);
      for (const [topic, payload] of [
        ['a', 'a1'],
        ['b', 'b1'],
        ['b', 'b2'],
        ['c', 'c1'],
        ['c', ''],
      ] as const) {
        await publisher.publishAsync(`${base}/retained/${topic}`, payload, { qos: 1, retain: true });
      }

      const killedBroker = broker;
      const stream = await publishStream(
        publishing,
        topics,
        (result) => result.acked[1].size >= ACKS_BEFORE_KILL && result.acked[2].size >= ACKS_BEFORE_KILL,
        () => killBroker(killedBroker),
      );
      t.diagnostic(`sent q1 ${stream.sent[1]} q2 ${stream.sent[2]}; acknowledged q1 ${stream.acked[1].size} q2 ${stream.acked[2].size} before the kill`);
      assert.equal(killedBroker.broker.child.signalCode, 'SIGKILL', 'the broker died of the kill');
      if (topology === 'split') {
        const journal = killedBroker.journal!.child;
        assert.ok(journal.exitCode === null && journal.signalCode === null, 'the journal server kept running');
      }
      for (const record of subscribers) if (record.connection !== undefined) await record.connection.closed;
      publisher.end(true);

      broker = await restartBroker(killedBroker);

      // Reconnect every persistent subscriber: session present, and everything acknowledged arrives.
      for (const record of subscribers) {
        const connection = await connectForCrash(broker.url, record.version, record.clientId, false, { onPublish: recordInto(record), incomingStore: record.incomingStore });
        track(connection.client);
        record.connection = connection;
        assert.equal(connection.connack.sessionPresent, true, `${record.clientId}: session present after the restart`);
      }
      // One deadline for all; the per-subscriber verdicts below say who misses what.
      const complete = (record: Persistent): boolean => missing(stream.acked[1], record.deliveries, 1).length === 0 && missing(stream.acked[2], record.deliveries, 2).length === 0;
      await waitUntil(() => subscribers.every(complete), DELIVERY_WAIT_MS, 'every subscriber receives every acknowledged message', 50).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (const record of subscribers) {
        const lostQ1 = missing(stream.acked[1], record.deliveries, 1);
        const lostQ2 = missing(stream.acked[2], record.deliveries, 2);
        const [dupQ1, dupQ2] = [duplicates(record.deliveries, 1), duplicates(record.deliveries, 2)];
        t.diagnostic(
          `${record.clientId}: ${record.deliveries.length} deliveries; duplicates q1 ${dupQ1.count} q2 ${dupQ2.count}${dupQ2.count > 0 ? ` (q2 repeats: ${dupQ2.which.slice(0, 20).join(' ')})` : ''}; missing q1 ${lostQ1.length} q2 ${lostQ2.length}`,
        );
        assert.deepEqual(lostQ1, [], `${record.clientId}: acknowledged QoS 1 messages never delivered`);
        assert.deepEqual(lostQ2, [], `${record.clientId}: acknowledged QoS 2 messages never delivered`);
        // Exactly once for QoS 2, across the crash too: the released state is saved before each PUBREL.
        assert.equal(dupQ2.count, 0, `${record.clientId}: QoS 2 messages delivered twice: ${dupQ2.which.slice(0, 20).join(' ')}`);
        const unknown = record.deliveries.filter((delivery) => delivery.seq >= stream.sent[delivery.qos as 1 | 2]);
        assert.deepEqual(unknown, [], `${record.clientId}: deliveries of messages never published`);
        assert.deepEqual(record.other, [], `${record.clientId}: unexpected messages`);
      }

      // The old subscriptions match without a new SUBSCRIBE.
      const { client: after } = await connectForCrash(broker.url, 5, `crash-${topology}-pub2`, true);
      track(after);
      await after.publishAsync(topics[1], 'after-restart', { qos: 1 });
      for (const record of subscribers) {
        await waitUntil(() => record.other.includes(`${topics[1]}=after-restart`), 10_000, `${record.clientId}: a message published after the restart reaches the old subscription`);
      }

      // Retained messages: a new subscriber gets exactly the state acknowledged before the crash.
      const retained: string[] = [];
      const { client: fresh } = await connectForCrash(broker.url, 5, `crash-${topology}-fresh`, true, {
        onPublish: (packet) => {
          assert.equal(packet.retain, true, `${packet.topic} is delivered as retained`);
          retained.push(`${packet.topic}=${packet.payload.toString()}`);
        },
      });
      track(fresh);
      await fresh.subscribeAsync(`${base}/retained/#`, { qos: 1 });
      await waitUntil(() => retained.length >= 2, 10_000, `retained messages after the restart (got ${retained.join(' ')})`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      assert.deepEqual(retained.sort(), [`${base}/retained/a=a1`, `${base}/retained/b=b2`]);
    });

    for (const qos of [1, 2] as const) {
      for (const version of [4, 5] as Version[]) {
        it(`kill -9 while a ${version === 5 ? '5.0' : '3.1.1'} subscriber holds unacknowledged QoS ${qos} deliveries: resent with DUP after the restart`, async (t: TestContext) => {
          if (!requireShardline(t)) return;
          const COUNT = 10;
          const topic = `unacked/${topology}/q${qos}/v${version}`;
          const clientId = `unacked-${topology}-${qos}-${version}`;
          const session = version === 5 ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {};
          // A raw client: it never answers the deliveries (no PUBACK / PUBREC).
          const { client: raw } = await rawConnect(broker.port, version, { clientId, clean: false, ...session });
          raws.add(raw);
          raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
          await raw.nextOf('suback');

          const { client: publisher } = await connectForCrash(broker.url, 5, `${clientId}-pub`, true);
          track(publisher);
          for (let seq = 0; seq < COUNT; seq += 1) await publisher.publishAsync(topic, `q${qos}:${seq}`, { qos });
          await raw.until(() => raw.publishesReceived >= COUNT, 10_000, `${COUNT} deliveries before the kill`);
          const before = raw.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
          assert.deepEqual(
            before.map((packet) => packet.payload.toString()),
            Array.from({ length: COUNT }, (_, seq) => `q${qos}:${seq}`),
            'delivered in order before the kill',
          );
          publisher.end(true);

          const killed = broker;
          broker = await restartBroker(killed);
          await raw.waitClosed(5_000);

          const { client: again, connack } = await rawConnect(broker.port, version, { clientId, clean: false, ...session }, { autoAck: true });
          raws.add(again);
          assert.equal(connack.sessionPresent, true, 'session present after the restart');
          await again.until(() => again.publishesReceived >= COUNT, 10_000, `the ${COUNT} unacknowledged deliveries are resent`);
          await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
          const resent = again.packets.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
          t.diagnostic(`resent ${resent.length} deliveries: ${resent.map((packet) => `${packet.payload.toString()}${packet.dup ? '+dup' : ''}`).join(' ')}`);
          assert.deepEqual(
            resent.map((packet) => packet.payload.toString()),
            Array.from({ length: COUNT }, (_, seq) => `q${qos}:${seq}`),
            'every unacknowledged delivery resent once, in order',
          );
          for (const packet of resent) {
            assert.equal(packet.qos, qos, `${packet.payload.toString()} resent at QoS ${qos}`);
            assert.equal(packet.dup, true, `${packet.payload.toString()} resent with DUP`);
          }
          if (qos === 2) await again.until(() => again.packets.filter((packet) => packet.cmd === 'pubrel').length >= COUNT, 10_000, 'PUBREL for every resent QoS 2 delivery');
        });
      }
    }
  });
}
