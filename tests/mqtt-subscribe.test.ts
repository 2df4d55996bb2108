// MQTT SUBSCRIBE/UNSUBSCRIBE through `shardline start`, in both topologies.
//
// Goal: topic filters match as the spec says (+, #, the parent of #, empty levels, $-topics
// not matched by leading wildcards); a client with overlapping subscriptions gets one copy at
// the highest QoS (5.0: with every matching subscription identifier); the 5.0 subscription
// options (no-local, retain-as-published, retain handling) behave; UNSUBSCRIBE stops delivery
// and 5.0 UNSUBACK tells 0x00 from 0x11; invalid filters are refused per filter in SUBACK.
// Method: one broker per topology; every test has its own topic prefix; negative checks
// ("not delivered") end with a barrier, not a wait: a QoS 1 marker published after the act on
// the same topic, or on a topic of the same data shard (tests/support/data-shards.ts), since a
// shard dispatches in order: a message that should not have come would have come before it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import { brokerForSuite, usingMosquitto, type BrokerProcess } from './support/broker-process.js';
import { markerTopics } from './support/data-shards.js';
import {
  closeAllClients,
  connectClient,
  contractOnly,
  RawClient,
  subscriber,
  uniqueClientId,
  uniqueTopic,
  type Received,
  type TestClient,
} from './support/mqtt-client.js';

const TOPOLOGIES = usingMosquitto() ? (['single'] as const) : (['single', 'split'] as const);

function topicsOf(messages: Received[]): string[] {
  return messages.map((m) => m.topic).sort();
}

/** Subscription identifiers of a delivery, as a sorted list (mqtt-packet gives a number or an array). */
function subscriptionIds(message: Received): number[] {
  const ids = message.packet.properties?.subscriptionIdentifier;
  return ids === undefined ? [] : (Array.isArray(ids) ? [...ids] : [ids]).sort((a, b) => a - b);
}

const isMarker = (message: Received): boolean => message.payload.toString().startsWith('marker ');

/**
 * Waits for a QoS 1 marker (payload "marker …") on each of `topics`, sent by `via` after what
 * it published before (the topics are markerTopics(): one per data shard of the messages in
 * question, so each marker comes after every delivery of its shard).
 */
async function awaitMarkers(via: TestClient, topics: string[], subs: TestClient[]): Promise<void> {
  for (const topic of topics) await via.publish(topic, `marker ${topic}`, { qos: 1 });
  for (const sub of subs) for (const topic of topics) await sub.waitForMessages(1, { topic });
}

/**
 * Publishes one QoS 1 message per topic (payload = topic) and returns the topics `sub`
 * received, sorted. The barrier: `sub` also subscribes to `${markers}/+`, and `pub` then sends
 * a marker there on every data shard the topics map to; once every marker arrived, so had
 * every message of those shards that was to be delivered, and any that was not to be.
 */
async function publishAndCollect(broker: BrokerProcess, pub: TestClient, topics: string[], sub: TestClient, markers: string): Promise<string[]> {
  await sub.subscribe(`${markers}/+`, { qos: 1 });
  for (const topic of topics) await pub.publish(topic, topic, { qos: 1 });
  await awaitMarkers(pub, await markerTopics(broker, topics, (n) => `${markers}/${n}`), [sub]);
  return topicsOf(sub.messages.filter((m) => !isMarker(m)));
}

for (const topology of TOPOLOGIES) {
  describe(`MQTT subscribe (${topology})`, () => {
    const broker = brokerForSuite({ topology }, closeAllClients);

    for (const version of [4, 5] as const) {
      // Independent topics and client ids: the cases run side by side to keep the file short.
      describe(version === 4 ? '3.1.1' : '5.0', { concurrency: true }, () => {
        it('+ matches exactly one level, including an empty one', async () => {
          const base = uniqueTopic('plus');
          const sub = await subscriber(broker.url, [`${base}/a/+/c`, `${base}/e/+`], { version, qos: 1 });
          const pub = await connectClient(broker.url, { version });
          const matching = [`${base}/a/b/c`, `${base}/a/x/c`, `${base}/a//c`, `${base}/e/f`, `${base}/e/`];
          const other = [`${base}/a/b/d`, `${base}/a/b/c/d`, `${base}/a/c`, `${base}/e`, `${base}/e/f/g`, `${base}/A/b/c`];
          assert.deepEqual(await publishAndCollect(broker, pub, [...other, ...matching], sub, `${base}/marker`), [...matching].sort());
          await pub.end();
          await sub.end();
        });

        it('# matches the parent level and every level below', async () => {
          const base = uniqueTopic('hash');
          const sub = await subscriber(broker.url, `${base}/a/#`, { version, qos: 1 });
          const pub = await connectClient(broker.url, { version });
          const matching = [`${base}/a`, `${base}/a/b`, `${base}/a/b/c/d`, `${base}/a/`];
          const other = [`${base}/b`, `${base}/ab`, `${base}`, `${base}/b/a`];
          assert.deepEqual(await publishAndCollect(broker, pub, [...other, ...matching], sub, `${base}/marker`), [...matching].sort());
          await pub.end();
          await sub.end();
        });

        it('$-topics are not matched by a leading + or #, only by filters starting with $', async () => {
          const label = uniqueTopic('dollar').split('/').slice(1).join('/');
          const dollarTopic = `$sl-it/${label}`;
          const plainTopic = `sl-it/${label}`;
          const hash = await subscriber(broker.url, '#', { version, qos: 1 });
          const plus = await subscriber(broker.url, `+/${label}`, { version, qos: 1 });
          const dollar = await subscriber(broker.url, '$sl-it/#', { version, qos: 1 });
          const pub = await connectClient(broker.url, { version });
          await pub.publish(dollarTopic, 'dollar', { qos: 1 });
          await pub.publish(plainTopic, 'plain', { qos: 1 });
          // The plain topic is the positive control: it comes after the $-topic from one publisher.
          for (const sub of [hash, plus]) assert.equal((await sub.waitForMessages(1, { topic: plainTopic }))[0]!.payload.toString(), 'plain');
          const [viaDollar] = await dollar.waitForMessages(1, { topic: dollarTopic });
          assert.equal(viaDollar!.payload.toString(), 'dollar');
          // Barrier: markers both leading wildcards match, on the $-topic's data shard.
          await awaitMarkers(pub, await markerTopics(broker, [dollarTopic], (n) => `m${n}/${label}`), [hash, plus]);
          for (const [name, sub] of [['#', hash], ['+', plus]] as const) {
            assert.deepEqual(sub.messages.filter((m) => m.topic.startsWith('$')).map((m) => m.topic), [], `leading ${name} matched a $-topic`);
          }
          await pub.end();
          for (const sub of [hash, plus, dollar]) await sub.end();
        });

        it('SUBACK grants the requested QoS per filter', async () => {
          const base = uniqueTopic('grant');
          const client = await connectClient(broker.url, { version });
          const granted = await client.subscribe({ [`${base}/0`]: { qos: 0 }, [`${base}/1`]: { qos: 1 }, [`${base}/2`]: { qos: 2 } });
          assert.deepEqual(granted, [0, 1, 2]);
          await client.end();
        });

        it('overlapping subscriptions: one delivery, at the highest QoS', async (t) => {
          // Mosquitto 2.0.11 sends one copy per matching subscription; MQTT 3.1.1 allows that,
          // 5.0 and the contract say one copy.
          if (!contractOnly(t, 'one delivery per matching subscription')) return;
          const base = uniqueTopic('overlap');
          const sub = await subscriber(broker.url, { [`${base}/a/b`]: { qos: 0 }, [`${base}/a/+`]: { qos: 1 }, [`${base}/#`]: { qos: 2 } }, { version });
          const pub = await connectClient(broker.url, { version });
          await pub.publish(`${base}/a/b`, 'q2', { qos: 2 });
          await pub.publish(`${base}/a/b`, 'q1', { qos: 1 });
          const messages = await sub.waitForMessages(2);
          await sub.expectNothingBeforeMarker(pub, `${base}/a/b`, { from: 2, what: 'no second copy' });
          assert.deepEqual(
            messages.map((m) => [m.payload.toString(), m.packet.qos]),
            [
              ['q2', 2],
              ['q1', 1],
            ],
          );
          await pub.end();
          await sub.end();
        });

        it('UNSUBSCRIBE stops delivery; the other subscriptions stay', async () => {
          const base = uniqueTopic('unsub');
          const sub = await subscriber(broker.url, [`${base}/a`, `${base}/b`], { version, qos: 1 });
          const pub = await connectClient(broker.url, { version });
          await sub.unsubscribe(`${base}/a`);
          assert.deepEqual(await publishAndCollect(broker, pub, [`${base}/a`, `${base}/b`], sub, `${base}/marker`), [`${base}/b`]);
          await pub.end();
          await sub.end();
        });

        for (const filter of ['a/#/b', 'a+/b', 'a/b#', '#/a', '']) {
          it(`an invalid filter "${filter}" gets SUBACK ${version === 5 ? '0x8F' : '0x80'}, valid filters beside it are granted`, async (t) => {
            // Mosquitto 2.0.11 closes the connection on an invalid filter instead of refusing it.
            if (!contractOnly(t, 'closes the connection on an invalid filter')) return;
            const { raw } = await RawClient.connect(broker.port, version, { clientId: uniqueClientId('badf') });
            const valid = uniqueTopic('valid');
            const suback: ISubackPacket = await raw.subscribe([
              { topic: valid, qos: 1 },
              { topic: filter, qos: 1 },
            ]);
            assert.deepEqual(suback.granted, [1, version === 5 ? 0x8f : 0x80]);
            // The connection and the valid subscription still work.
            raw.send({ cmd: 'publish', topic: valid, payload: Buffer.from('ok'), qos: 0, dup: false, retain: false });
            const [publish] = await raw.waitForPublishes(1);
            assert.equal(publish!.topic, valid);
            raw.destroy();
          });
        }
      });
    }

    describe('5.0 subscription options', { concurrency: true }, () => {
      it('a subscription identifier is carried on deliveries; a subscription without one carries none', async () => {
        const base = uniqueTopic('subid');
        const client = await connectClient(broker.url, { version: 5 });
        await client.subscribe(`${base}/with`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
        await client.subscribe(`${base}/without`, { qos: 1 });
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(`${base}/with`, 'w', { qos: 1 });
        await pub.publish(`${base}/without`, 'o', { qos: 1 });
        const [withId, withoutId] = await client.waitForMessages(2);
        assert.deepEqual(subscriptionIds(withId!), [7]);
        assert.deepEqual(subscriptionIds(withoutId!), []);
        await pub.end();
        await client.end();
      });

      it('re-subscribing the same filter replaces its subscription identifier', async () => {
        const topic = uniqueTopic('subid-replace');
        const client = await connectClient(broker.url, { version: 5 });
        await client.subscribe(topic, { qos: 1, properties: { subscriptionIdentifier: 3 } });
        await client.subscribe(topic, { qos: 1, properties: { subscriptionIdentifier: 300_000 } });
        await client.publish(topic, 'x', { qos: 1 });
        const [message] = await client.waitForMessages(1);
        assert.deepEqual(subscriptionIds(message!), [300_000]);
        await client.expectNothingBeforeMarker(client, topic, { from: 1, what: 'one subscription, one delivery' });
        await client.end();
      });

      it('overlapping subscriptions: one delivery carrying every matching subscription identifier', async (t) => {
        if (!contractOnly(t, 'one delivery per matching subscription')) return;
        const base = uniqueTopic('subids');
        const client = await connectClient(broker.url, { version: 5 });
        await client.subscribe(`${base}/a/b`, { qos: 0, properties: { subscriptionIdentifier: 11 } });
        await client.subscribe(`${base}/a/+`, { qos: 1, properties: { subscriptionIdentifier: 12 } });
        await client.subscribe(`${base}/#`, { qos: 2, properties: { subscriptionIdentifier: 13 } });
        await client.subscribe(`${base}/x`, { qos: 2, properties: { subscriptionIdentifier: 14 } });
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(`${base}/a/b`, 'all three', { qos: 2 });
        const [message] = await client.waitForMessages(1);
        await client.expectNothingBeforeMarker(pub, `${base}/a/b`, { from: 1, what: 'no second copy' });
        assert.equal(message!.packet.qos, 2);
        assert.deepEqual(subscriptionIds(message!), [11, 12, 13]);
        await pub.end();
        await client.end();
      });

      it('no-local: a client does not get its own messages on a no-local subscription; others do', async () => {
        const base = uniqueTopic('nolocal');
        const self = await connectClient(broker.url, { version: 5 });
        await self.subscribe(`${base}/nl`, { qos: 1, nl: true });
        await self.subscribe(`${base}/local`, { qos: 1, nl: false });
        const other = await subscriber(broker.url, `${base}/nl`, { version: 5, qos: 1 });
        await self.publish(`${base}/nl`, 'mine', { qos: 1 });
        await self.publish(`${base}/local`, 'mine too', { qos: 1 });
        // The local subscription proves own messages do come back on it, after the no-local one.
        await self.waitForMessages(1, { topic: `${base}/local` });
        await other.waitForMessages(1, { topic: `${base}/nl` });
        // A message from someone else still reaches the no-local subscription: published after
        // 'mine' on the same topic, it is the barrier ('mine' would have come first).
        await self.expectNothingBeforeMarker(other, `${base}/nl`, { from: 0, what: 'no own message on the no-local subscription', unwanted: (m) => m.topic === `${base}/nl` });
        assert.deepEqual(self.messages.filter((m) => !isMarker(m)).map((m) => m.topic), [`${base}/local`]);
        await self.end();
        await other.end();
      });

      it('retain-as-published: the retain flag is kept only on subscriptions that ask for it', async () => {
        const topic = uniqueTopic('rap');
        const plain = await subscriber(broker.url, topic, { version: 5, qos: 1, subscribeOptions: { rap: false } });
        const asPublished = await subscriber(broker.url, topic, { version: 5, qos: 1, subscribeOptions: { rap: true } });
        const pub = await connectClient(broker.url, { version: 5 });
        await pub.publish(topic, 'retained', { qos: 1, retain: true });
        await pub.publish(topic, 'not retained', { qos: 1, retain: false });
        const plainMessages = await plain.waitForMessages(2);
        const rapMessages = await asPublished.waitForMessages(2);
        assert.deepEqual(plainMessages.map((m) => [m.payload.toString(), m.packet.retain]), [['retained', false], ['not retained', false]]);
        assert.deepEqual(rapMessages.map((m) => [m.payload.toString(), m.packet.retain]), [['retained', true], ['not retained', false]]);
        await pub.publish(topic, '', { qos: 1, retain: true });
        await pub.end();
        await plain.end();
        await asPublished.end();
      });

      for (const rh of [0, 1, 2] as const) {
        it(`retain handling ${rh}: retained message sent ${['on every subscribe', 'only for a new subscription', 'never'][rh]}`, async () => {
          const topic = uniqueTopic(`rh${rh}`);
          const pub = await connectClient(broker.url, { version: 5 });
          await pub.publish(topic, 'kept', { qos: 1, retain: true });
          const client = await connectClient(broker.url, { version: 5 });
          await client.subscribe(topic, { qos: 1, rh });
          // Retained messages are queued in the SUBSCRIBE's step, before any later live message:
          // a marker on the topic is the barrier.
          if (rh === 2) await client.expectNothingBeforeMarker(pub, topic, { from: 0, what: 'no retained message with rh=2' });
          else {
            const [first] = await client.waitForMessages(1);
            assert.equal(first!.payload.toString(), 'kept');
            assert.equal(first!.packet.retain, true);
          }
          // The same filter again: the subscription exists now.
          const before = client.messages.length;
          await client.subscribe(topic, { qos: 1, rh });
          if (rh === 0) {
            const [again] = (await client.waitForMessages(before + 1)).slice(before);
            assert.equal(again!.payload.toString(), 'kept');
            assert.equal(again!.packet.retain, true);
          } else await client.expectNothingBeforeMarker(pub, topic, { from: before, what: `no retained message on re-subscribe with rh=${rh}` });
          assert.equal(client.messages.filter((m) => !isMarker(m)).length, [2, 1, 0][rh]);
          await pub.publish(topic, '', { qos: 1, retain: true });
          await pub.end();
          await client.end();
        });
      }

      it('UNSUBACK: 0x00 for an existing subscription, 0x11 for none, per filter', async () => {
        const base = uniqueTopic('unsuback');
        const client = await subscriber(broker.url, `${base}/exists`, { version: 5, qos: 1 });
        const unsuback: IUnsubackPacket & { granted?: number[] } = await client.unsubscribe([`${base}/exists`, `${base}/never`]);
        assert.deepEqual(unsuback.granted, [0x00, 0x11]);
        const again = await client.unsubscribe(`${base}/exists`);
        assert.deepEqual(again.granted, [0x11], 'already removed');
        await client.end();
      });
    });

    it('3.1: + and # filters deliver', async () => {
      const base = uniqueTopic('v31');
      const sub = await subscriber(broker.url, [`${base}/+/x`, `${base}/h/#`], { version: 3, qos: 1 });
      const pub = await connectClient(broker.url, { version: 3 });
      const expected = [`${base}/a/x`, `${base}/h`, `${base}/h/i/j`];
      assert.deepEqual(await publishAndCollect(broker, pub, [`${base}/a/x`, `${base}/a/y`, `${base}/h`, `${base}/h/i/j`], sub, `${base}/marker`), expected.sort());
      await pub.end();
      await sub.end();
    });
  });
}
