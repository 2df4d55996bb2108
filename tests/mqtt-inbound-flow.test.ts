// Inbound QoS 2 state as session state, and flow control of 3.1.1 publishers.
//
// Goal: a QoS 2 PUBLISH resent by the client (on the same connection or after reconnecting to
// its session) is stored once and acknowledged again (MQTT 4.3.3); a 3.1.1 client that keeps
// more QoS 1 publishes in flight than --max-inflight is slowed down, not disconnected (3.1.1
// has no Receive Maximum to tell it).
// Method: a real broker process, raw-socket publishers, an mqtt.js subscriber counting copies.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { cleanup, startBroker, type BrokerProcess } from './support/broker-process.js';
import { rawConnect, waitUntil } from './support/raw-mqtt.js';

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker({ args: ['--max-inflight', '4'] });
});

after(cleanup);

async function countingSubscriber(topic: string): Promise<{ client: mqtt.MqttClient; received: string[] }> {
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `sub-${topic.replaceAll('/', '-')}` });
  const received: string[] = [];
  client.on('message', (_topic, payload) => received.push(payload.toString()));
  await client.subscribeAsync(topic, { qos: 2 });
  return { client, received };
}

describe('inbound QoS 2 and flow control', () => {
  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 5 ? '5.0' : '3.1.1'}: a resent QoS 2 PUBLISH gets PUBREC again and is stored once, also after a reconnect`, async () => {
      const topic = `inbound/q2/v${version}`;
      const subscriber = await countingSubscriber(topic);
      const clientId = `q2-pub-v${version}`;
      const session = version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {};
      const first = await rawConnect(broker.port, version, { clientId, clean: false, ...session });
      const publish = { cmd: 'publish' as const, topic, payload: Buffer.from('only-once'), qos: 2 as const, retain: false, dup: false, messageId: 7 };
      first.client.sendPacket(publish);
      assert.equal((await first.client.nextOf('pubrec')).messageId, 7);
      first.client.sendPacket({ ...publish, dup: true });
      assert.equal((await first.client.nextOf('pubrec')).messageId, 7, 'PUBREC again for the resent PUBLISH on the same connection');
      first.client.destroy();

      const second = await rawConnect(broker.port, version, { clientId, clean: false, ...session });
      assert.equal(second.connack.sessionPresent, true);
      second.client.sendPacket({ ...publish, dup: true });
      assert.equal((await second.client.nextOf('pubrec')).messageId, 7, 'PUBREC again after the reconnect');
      second.client.sendPacket({ cmd: 'pubrel', messageId: 7 });
      assert.equal((await second.client.nextOf('pubcomp')).messageId, 7);
      await waitUntil(() => subscriber.received.length >= 1, 5_000, 'the message');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(subscriber.received, ['only-once'], 'stored and delivered once');
      second.client.destroy();
      await subscriber.client.endAsync();
    });
  }

  it('MQTT 3.1.1: a publisher with more QoS 1 in flight than --max-inflight (4) is slowed, not disconnected, and every message is acknowledged', async () => {
    const topic = 'inbound/flow/v4';
    const subscriber = await countingSubscriber(topic);
    const { client } = await rawConnect(broker.port, 4, { clientId: 'flow-pub', clean: true });
    const count = 40;
    for (let id = 1; id <= count; id += 1) client.sendPacket({ cmd: 'publish', topic, payload: Buffer.from(String(id)), qos: 1, retain: false, dup: false, messageId: id });
    const acked = new Set<number>();
    while (acked.size < count) acked.add((await client.nextOf('puback')).messageId as number);
    assert.equal(acked.size, count);
    await waitUntil(() => subscriber.received.length >= count, 5_000, `${count} messages at the subscriber`);
    assert.deepEqual(subscriber.received, Array.from({ length: count }, (_, i) => String(i + 1)), 'in order, each once');
    assert.equal(await client.closesWithin(200), false, 'the connection stays open');
    client.destroy();
    await subscriber.client.endAsync();
  });
});
