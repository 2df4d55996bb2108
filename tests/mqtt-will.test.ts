// Will messages through `shardline start`, for 3.1, 3.1.1 and 5.0.
//
// Goal: the will is published when the connection ends without a normal DISCONNECT (socket
// closed, 5.0 DISCONNECT 0x04), never after a normal DISCONNECT; its QoS, retain flag and 5.0
// properties are honoured; the 5.0 Will Delay Interval holds it back, a reconnect to the
// session within the delay cancels it, and the end of the session releases it early.
// (Keep-alive expiry firing the will is in mqtt-connect.test.ts.)
// Method: one broker; a watcher subscribes to the will topic before the client with the will
// connects; the "not published" checks end with a marker on the will topic, published after the
// event (after the will's due time where a delay is under test): a will comes before it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IClientOptions } from 'mqtt';
import { brokerForSuite } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, subscriber, uniqueClientId, uniqueTopic, type ProtocolVersion } from './support/mqtt-client.js';

type Will = NonNullable<IClientOptions['will']>;

function label(version: ProtocolVersion): string {
  return version === 3 ? '3.1' : version === 4 ? '3.1.1' : '5.0';
}

describe('MQTT will messages', () => {
  const broker = brokerForSuite({ topology: 'single' }, closeAllClients);

  for (const version of [3, 4, 5] as const) {
    describe(label(version), () => {
      it('a connection closed without DISCONNECT publishes the will', async () => {
        const topic = uniqueTopic('abrupt');
        const watcher = await subscriber(broker.url, topic, { version: 4, qos: 2 });
        const client = await connectClient(broker.url, { version, will: { topic, payload: Buffer.from('abrupt'), qos: 1, retain: false } });
        client.destroy();
        const [will] = await watcher.waitForMessages(1);
        assert.equal(will!.topic, topic);
        assert.equal(will!.payload.toString(), 'abrupt');
        assert.equal(will!.packet.qos, 1);
        assert.equal(will!.packet.retain, false);
        const marker = await connectClient(broker.url, { version: 4 });
        await watcher.expectNothingBeforeMarker(marker, topic, { from: 1, what: 'the will once' });
        await marker.end();
        await watcher.end();
      });

      it('a normal DISCONNECT does not publish the will', async () => {
        const topic = uniqueTopic('normal');
        const watcher = await subscriber(broker.url, topic, { version: 4, qos: 1 });
        const client = await connectClient(broker.url, { version, will: { topic, payload: Buffer.from('must not'), qos: 1, retain: false } });
        await client.end();
        // Barrier: the broker handled the close before the client saw it; a will it published
        // then would come before a marker published now on the same topic.
        const marker = await connectClient(broker.url, { version: 4 });
        await watcher.expectNothingBeforeMarker(marker, topic, { from: 0, what: 'no will after DISCONNECT' });
        await marker.end();
        await watcher.end();
      });
    });
  }

  it('5.0: DISCONNECT 0x04 (Disconnect with Will Message) publishes the will', async () => {
    const topic = uniqueTopic('rc04');
    const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
    const client = await connectClient(broker.url, { version: 5, will: { topic, payload: Buffer.from('asked for'), qos: 1, retain: false } });
    await client.end(0x04);
    const [will] = await watcher.waitForMessages(1);
    assert.equal(will!.payload.toString(), 'asked for');
    await watcher.end();
  });

  it('5.0: DISCONNECT 0x00 after connecting with a will does not publish it', async () => {
    const topic = uniqueTopic('rc00');
    const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
    const client = await connectClient(broker.url, { version: 5, will: { topic, payload: Buffer.from('must not'), qos: 1, retain: false } });
    await client.end(0x00);
    const marker = await connectClient(broker.url, { version: 5 });
    await watcher.expectNothingBeforeMarker(marker, topic, { from: 0, what: 'no will after DISCONNECT 0x00' });
    await marker.end();
    await watcher.end();
  });

  for (const version of [4, 5] as const) {
    it(`${label(version)}: will retain: stored as retained, live watcher sees RETAIN=0`, async () => {
      const topic = uniqueTopic('wretain');
      const watcher = await subscriber(broker.url, topic, { version, qos: 1 });
      const client = await connectClient(broker.url, { version, will: { topic, payload: Buffer.from('last words'), qos: 1, retain: true } });
      client.destroy();
      const [live] = await watcher.waitForMessages(1);
      assert.equal(live!.packet.retain, false);
      const late = await subscriber(broker.url, topic, { version, qos: 1 });
      const [stored] = await late.waitForMessages(1);
      assert.equal(stored!.payload.toString(), 'last words');
      assert.equal(stored!.packet.retain, true);
      await watcher.publish(topic, '', { qos: 1, retain: true });
      await watcher.end();
      await late.end();
    });

    it(`${label(version)}: will QoS 2 is delivered at min(will QoS, subscription QoS)`, async () => {
      const topic = uniqueTopic('wqos');
      const watchers = await Promise.all(([0, 1, 2] as const).map((qos) => subscriber(broker.url, topic, { version, qos })));
      const client = await connectClient(broker.url, { version, will: { topic, payload: Buffer.from('q2'), qos: 2, retain: false } });
      client.destroy();
      for (const [qos, watcher] of watchers.entries()) {
        const [will] = await watcher.waitForMessages(1);
        assert.equal(will!.packet.qos, qos);
        await watcher.end();
      }
    });
  }

  it('5.0: will properties are passed through', async () => {
    const topic = uniqueTopic('wprops');
    const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
    const will: Will = {
      topic,
      payload: Buffer.from('{"state":"offline"}'),
      qos: 1,
      retain: false,
      properties: {
        contentType: 'application/json',
        payloadFormatIndicator: true,
        responseTopic: `${topic}/reply`,
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { device: 'd-17' },
      },
    };
    const client = await connectClient(broker.url, { version: 5, will });
    client.destroy();
    const [message] = await watcher.waitForMessages(1);
    const properties = message!.packet.properties ?? {};
    assert.equal(properties.contentType, 'application/json');
    assert.equal(properties.payloadFormatIndicator, true);
    assert.equal(properties.responseTopic, `${topic}/reply`);
    assert.deepEqual(properties.correlationData, Buffer.from([1, 2, 3]));
    assert.deepEqual({ ...properties.userProperties }, { device: 'd-17' });
    await watcher.end();
  });

  // Each case waits out a delay; they run side by side.
  describe('5.0 will delay interval', { concurrency: true }, () => {
    const DELAY_S = 2;

    function delayedWill(topic: string, payload: string): Will {
      return { topic, payload: Buffer.from(payload), qos: 1, retain: false, properties: { willDelayInterval: DELAY_S } };
    }

    it('the will is published after the delay, not before', async () => {
      const topic = uniqueTopic('delay');
      const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
      const client = await connectClient(broker.url, { version: 5, clean: true, properties: { sessionExpiryInterval: 60 }, will: delayedWill(topic, 'late') });
      client.destroy();
      const closedAt = Date.now();
      // "Not before" is the arrival time itself: watched from the close on, so an early will
      // resolves this at once and fails the bound below.
      const [will] = await watcher.waitForMessages(1, { timeoutMs: DELAY_S * 1_000 + 2_500 });
      const after = Date.now() - closedAt;
      assert.equal(will!.payload.toString(), 'late');
      assert.ok(after >= DELAY_S * 1_000 - 100, `published ${after} ms after the close`);
      await watcher.end();
    });

    it('a reconnect to the session within the delay cancels the will', async () => {
      const topic = uniqueTopic('cancel');
      const clientId = uniqueClientId('wcancel');
      const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
      const session = { version: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
      const client = await connectClient(broker.url, { ...session, will: delayedWill(topic, 'cancelled') });
      client.destroy();
      const closedAt = Date.now();
      await sleep(500);
      const back = await connectClient(broker.url, session);
      assert.equal(back.connack.sessionPresent, true);
      // The delay is the subject: wait until a second past the will's due time, then a barrier.
      // Had the will been published then, it is on the topic's shard before this marker.
      await sleep(closedAt + DELAY_S * 1_000 + 1_000 - Date.now());
      await watcher.expectNothingBeforeMarker(back, topic, { from: 0, what: 'no will: the client came back within the delay' });
      await back.end();
      await watcher.end();
    });

    it('the session ending before the delay releases the will early', async () => {
      const topic = uniqueTopic('early');
      const watcher = await subscriber(broker.url, topic, { version: 5, qos: 1 });
      // Will delay 30 s, session expiry 1 s: the will goes when the session ends.
      const client = await connectClient(broker.url, {
        version: 5,
        clean: true,
        properties: { sessionExpiryInterval: 1 },
        will: { topic, payload: Buffer.from('session over'), qos: 1, retain: false, properties: { willDelayInterval: 30 } },
      });
      client.destroy();
      const [will] = await watcher.waitForMessages(1, { timeoutMs: 5_000 });
      assert.equal(will!.payload.toString(), 'session over');
      await watcher.end();
    });
  });
});
