// Retained messages through `shardline start`, in both topologies, for 3.1.1 and 5.0.
//
// Goal: a retained message is stored per topic (set, replaced, cleared by an empty payload),
// sent with RETAIN=1 to each new matching subscription (exact and wildcard, at the lower of
// the two QoS), sent again when the same filter is subscribed again, and not sent where it
// does not belong: live deliveries carry RETAIN=0, a resumed session does not get it again,
// a cleared topic sends nothing.
// Method: one broker per topology; each test has its own topics; a fresh subscriber after each
// step shows what the broker holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerForSuite, usingMosquitto } from './support/broker-process.js';
import { closeAllClients, connectClient, subscriber, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

const TOPOLOGIES = usingMosquitto() ? (['single'] as const) : (['single', 'split'] as const);

for (const topology of TOPOLOGIES) {
  describe(`MQTT retained messages (${topology})`, () => {
    const broker = brokerForSuite({ topology }, closeAllClients);

    /**
     * What a fresh subscriber to `filter` gets at once: the retained messages. Barrier for
     * "exactly `expected`": the broker queues them on SUBSCRIBE, so a live marker published
     * after the SUBACK, on a topic the filter matches, comes after every one of them.
     */
    async function retainedFor(filter: string, version: 4 | 5, expected: number, qos: 0 | 1 | 2 = 2): Promise<{ topic: string; payload: string; retain: boolean; qos: number }[]> {
      const probe = await subscriber(broker.url, filter, { version, qos });
      if (expected > 0) await probe.waitForMessages(expected);
      const via = await connectClient(broker.url, { version });
      const markerTopic = filter
        .split('/')
        .map((level) => (level === '+' || level === '#' ? 'marker' : level))
        .join('/');
      await probe.expectNothingBeforeMarker(via, markerTopic, { from: expected, what: `exactly ${expected} retained message(s) for ${filter}` });
      await Promise.all([probe.end(), via.end()]);
      return probe.messages.slice(0, expected).map((m) => ({ topic: m.topic, payload: m.payload.toString(), retain: m.packet.retain, qos: m.packet.qos })).sort((a, b) => a.topic.localeCompare(b.topic));
    }

    for (const version of [4, 5] as const) {
      // Independent topics and client ids: the cases run side by side to keep the file short.
      describe(version === 4 ? '3.1.1' : '5.0', { concurrency: true }, () => {
        it('set: a new subscriber gets the retained message with RETAIN=1', async () => {
          const topic = uniqueTopic('set');
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'kept', { qos: 1, retain: true });
          assert.deepEqual(await retainedFor(topic, version, 1), [{ topic, payload: 'kept', retain: true, qos: 1 }]);
          await pub.end();
        });

        it('replace: only the latest retained message is kept', async () => {
          const topic = uniqueTopic('replace');
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'v1', { qos: 1, retain: true });
          await pub.publish(topic, 'v2', { qos: 1, retain: true });
          // A non-retained publish in between does not touch the retained one.
          await pub.publish(topic, 'transient', { qos: 1, retain: false });
          assert.deepEqual(await retainedFor(topic, version, 1), [{ topic, payload: 'v2', retain: true, qos: 1 }]);
          await pub.end();
        });

        it('clear: an empty retained payload removes it and is delivered live as a normal message', async () => {
          const topic = uniqueTopic('clear');
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'soon gone', { qos: 1, retain: true });
          const live = await subscriber(broker.url, topic, { version, qos: 1 });
          await live.waitForMessages(1);
          await pub.publish(topic, '', { qos: 1, retain: true });
          const [, cleared] = await live.waitForMessages(2);
          assert.equal(cleared!.payload.length, 0);
          assert.equal(cleared!.packet.retain, false, 'live delivery carries RETAIN=0');
          assert.deepEqual(await retainedFor(topic, version, 0), []);
          await pub.end();
          await live.end();
        });

        it('live deliveries of a retained publish carry RETAIN=0; the stored copy is sent with RETAIN=1', async () => {
          const topic = uniqueTopic('live');
          const live = await subscriber(broker.url, topic, { version, qos: 1 });
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'both', { qos: 1, retain: true });
          const [message] = await live.waitForMessages(1);
          assert.equal(message!.packet.retain, false);
          await live.expectNothingBeforeMarker(pub, topic, { from: 1, what: 'one delivery' });
          assert.deepEqual(await retainedFor(topic, version, 1), [{ topic, payload: 'both', retain: true, qos: 1 }]);
          await pub.end();
          await live.end();
        });

        it('delivered at min(retained QoS, subscription QoS)', async () => {
          const topic = uniqueTopic('rqos');
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'q2', { qos: 2, retain: true });
          for (const qos of [0, 1, 2] as const) assert.deepEqual((await retainedFor(topic, version, 1, qos)).map((m) => m.qos), [qos]);
          await pub.end();
        });

        it('wildcard filters get every matching retained message, and only those', async () => {
          const base = uniqueTopic('wild');
          const pub = await connectClient(broker.url, { version });
          for (const suffix of ['a/1', 'a/2', 'a/b/3', 'c/1', 'a']) await pub.publish(`${base}/${suffix}`, suffix, { qos: 1, retain: true });
          assert.deepEqual(
            (await retainedFor(`${base}/a/#`, version, 4)).map((m) => [m.payload, m.retain]),
            [['a', true], ['a/1', true], ['a/2', true], ['a/b/3', true]],
          );
          assert.deepEqual(
            (await retainedFor(`${base}/+/1`, version, 2)).map((m) => m.payload),
            ['a/1', 'c/1'],
          );
          await pub.end();
        });

        it('the same filter subscribed again sends the retained message again; another filter does not', async () => {
          const base = uniqueTopic('again');
          const pub = await connectClient(broker.url, { version });
          await pub.publish(`${base}/x`, 'x', { qos: 1, retain: true });
          const client = await subscriber(broker.url, `${base}/x`, { version, qos: 1 });
          await client.waitForMessages(1);
          await client.subscribe(`${base}/other`, { qos: 1 });
          // Barrier: a live marker on the new subscription's topic comes after anything it queued.
          await client.expectNothingBeforeMarker(pub, `${base}/other`, { from: 1, what: 'nothing for an unrelated new subscription' });
          await client.subscribe(`${base}/x`, { qos: 1 });
          // Messages so far: the retained x, the marker, then x again.
          const [, , again] = await client.waitForMessages(3);
          assert.equal(again!.payload.toString(), 'x');
          assert.equal(again!.packet.retain, true);
          await client.expectNothingBeforeMarker(pub, `${base}/x`, { from: 3, what: 'one copy per SUBSCRIBE' });
          await pub.end();
          await client.end();
        });

        it('a resumed persistent session does not get the retained message again', async () => {
          const topic = uniqueTopic('resume');
          const clientId = uniqueClientId('rres');
          const persistent = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
          const pub = await connectClient(broker.url, { version });
          await pub.publish(topic, 'once', { qos: 1, retain: true });
          const first = await subscriber(broker.url, topic, { version, qos: 1, clientId, ...persistent });
          await first.waitForMessages(1);
          await first.end();
          const resumed = await connectClient(broker.url, { version, clientId, ...persistent });
          assert.equal(resumed.connack.sessionPresent, true);
          // The subscription is live though. Barrier: a retained copy sent on the resume would be
          // queued at CONNACK, before this live message published after it.
          await pub.publish(topic, 'new', { qos: 1 });
          await resumed.waitForMessages(1);
          assert.deepEqual(resumed.messages.map((m) => m.payload.toString()), ['new'], 'the subscription was not made anew: no retained copy before the live one');
          await resumed.end();
          await pub.end();
        });
      });
    }

    it('5.0: a retained message keeps its properties', async () => {
      const topic = uniqueTopic('rprops');
      const pub = await connectClient(broker.url, { version: 5 });
      await pub.publish(topic, '{"a":1}', {
        qos: 1,
        retain: true,
        properties: { contentType: 'application/json', payloadFormatIndicator: true, userProperties: { origin: 'retained-test' } },
      });
      const probe = await subscriber(broker.url, topic, { version: 5, qos: 1 });
      const [message] = await probe.waitForMessages(1);
      assert.equal(message!.packet.retain, true);
      assert.equal(message!.packet.properties?.contentType, 'application/json');
      assert.equal(message!.packet.properties?.payloadFormatIndicator, true);
      assert.deepEqual({ ...message!.packet.properties?.userProperties }, { origin: 'retained-test' });
      await probe.end();
      await pub.end();
    });

    it('a retained message published by 3.1.1 reaches a 5.0 subscriber and the reverse', async () => {
      const base = uniqueTopic('xver');
      const four = await connectClient(broker.url, { version: 4 });
      const five = await connectClient(broker.url, { version: 5 });
      await four.publish(`${base}/from4`, 'four', { qos: 1, retain: true });
      await five.publish(`${base}/from5`, 'five', { qos: 1, retain: true });
      assert.deepEqual((await retainedFor(`${base}/#`, 5, 2)).map((m) => m.payload), ['four', 'five']);
      assert.deepEqual((await retainedFor(`${base}/#`, 4, 2)).map((m) => m.payload), ['four', 'five']);
      await four.end();
      await five.end();
    });
  });
}
