// One log, MQTT and AMQP: a real node with MQTT and AMQP listeners, mqtt.js on one side and
// amqplib on the other. MQTT publishes reach AMQP queues bound to amq.topic (`a/b/c` as key
// `a.b.c`, wildcards `*` and `#`, properties mapped); AMQP publishes to amq.topic reach MQTT
// subscribers (`+` and `#`), confirmed once durable, and do not come back to the AMQP side a
// second time; the node's ACL holds for AMQP users: a refused bind or publish is 403
// ACCESS_REFUSED, and a message a binder may not read is withheld from its queue. An AMQP
// publish to amq.topic confirmed before a kill -9 of the node is in MQTT's journal after it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { cleanup, killBroker, startBroker, stopBroker, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, subscriber, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

// The AMQP user mallory may not read secret/ nor publish under locked/; everyone else may do anything.
const ACL = `
[[acl]]
permission = "deny"
action = "subscribe"
topic = "secret/#"
username = "mallory"

[[acl]]
permission = "deny"
action = "publish"
topic = "locked/#"
username = "mallory"

[[acl]]
permission = "allow"
action = "all"
topic = "#"
`;

function amqpAddress(broker: BrokerProcess): string {
  for (const line of broker.broker.lines) {
    try {
      const entry = JSON.parse(line) as { amqp?: string };
      if (typeof entry.amqp === 'string') return entry.amqp;
    } catch {
      // not a JSON line
    }
  }
  throw new Error('no amqp= in the listening line');
}

/** Messages of a queue, taken with basic.get until it is empty (bounded). */
async function drain(channel: amqp.Channel, queue: string): Promise<amqp.GetMessage[]> {
  const got: amqp.GetMessage[] = [];
  for (let i = 0; i < 100; i += 1) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) return got;
    got.push(message);
  }
  throw new Error('the queue did not empty');
}

/** Waits (bounded) until a queue holds `count` ready messages. */
async function untilDepth(channel: amqp.Channel, queue: string, count: number): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if ((await channel.checkQueue(queue)).messageCount >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`queue ${queue} did not reach ${count} messages`);
}

/** The channel's close error (the reply code amqplib reports), once it closes. */
function closedWith(channel: amqp.Channel): Promise<number | undefined> {
  return new Promise((resolve) => channel.once('error', (error: { code?: number }) => resolve(error.code)));
}

describe('MQTT and AMQP through amq.topic', { timeout: 120_000 }, () => {
  let node: BrokerProcess;
  let address: string;
  const connections: amqp.ChannelModel[] = [];

  async function channel(user = 'guest'): Promise<amqp.Channel> {
    const connection = await amqp.connect(`amqp://${user}:pw@${address}`);
    connection.on('error', () => undefined);
    connections.push(connection);
    const created = await connection.createChannel();
    created.on('error', () => undefined);
    return created;
  }

  before(async () => {
    node = await startBroker({ args: ['--amqp-port', '0', '--data-shards', '4', '--config', await writeConfigFile(ACL, 'acl.toml')] });
    address = amqpAddress(node);
  });

  after(async () => {
    closeAllClients();
    for (const connection of connections) await connection.close().catch(() => undefined);
    await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  it('routes MQTT publishes on amq.topic: `/` and `.` trade places, `*` and `#` match levels, properties are mapped', async () => {
    const root = uniqueTopic('m2a').replaceAll('/', '-');
    const ch = await channel();
    const narrow = (await ch.assertQueue('', { exclusive: true })).queue;
    const wide = (await ch.assertQueue('', { exclusive: true })).queue;
    await ch.bindQueue(narrow, 'amq.topic', `${root}.*.temp`);
    await ch.bindQueue(wide, 'amq.topic', `${root}.#`);
    const publisher = await connectClient(node.url, { protocolVersion: 5 });
    await publisher.publish(`${root}/kitchen/temp`, '21.5', { qos: 1, properties: { contentType: 'text/plain', userProperties: { unit: 'C' }, correlationData: Buffer.from('req-7'), responseTopic: `${root}/replies/x.y` } });
    await publisher.publish(`${root}/kitchen/humidity`, '40', { qos: 0 });
    await publisher.publish(`${root}/v1.2/temp`, 'dotted', { qos: 1, retain: true });
    await untilDepth(ch, wide, 3);

    const fromNarrow = await drain(ch, narrow);
    assert.deepEqual(fromNarrow.map((message) => [message.fields.routingKey, message.content.toString()]), [
      [`${root}.kitchen.temp`, '21.5'],
      [`${root}.v1/2.temp`, 'dotted'],
    ]);
    const first = fromNarrow[0] as amqp.GetMessage;
    assert.equal(first.fields.exchange, 'amq.topic');
    assert.equal(first.properties.deliveryMode, 2, 'QoS 1 is persistent');
    assert.equal(first.properties.contentType, 'text/plain');
    assert.equal(first.properties.correlationId, 'req-7');
    assert.equal(first.properties.replyTo, `${root}.replies.x/y`);
    assert.equal(String(first.properties.headers?.unit), 'C', 'a user property is a header');
    assert.equal(first.properties.headers?.['x-mqtt-publish-qos'], 1);
    assert.equal((fromNarrow[1] as amqp.GetMessage).properties.headers?.['x-mqtt-retain'], true, 'the retain flag is a header');

    const fromWide = await drain(ch, wide);
    assert.deepEqual(fromWide.map((message) => message.fields.routingKey).sort(), [`${root}.kitchen.humidity`, `${root}.kitchen.temp`, `${root}.v1/2.temp`]);
    const humidity = fromWide.find((message) => message.fields.routingKey.endsWith('humidity')) as amqp.GetMessage;
    assert.equal(humidity.properties.deliveryMode, 1, 'QoS 0 is transient');
  });

  it('publishes AMQP publishes to amq.topic on MQTT, confirmed, and each reaches an AMQP queue once', async () => {
    const root = uniqueTopic('a2m').replaceAll('/', '-');
    const exact = await subscriber(node.url, `${root}/eu/new`, { protocolVersion: 5, qos: 1 });
    const wildcard = await subscriber(node.url, `${root}/+/new`, { protocolVersion: 5, qos: 1 });
    const everything = await subscriber(node.url, `${root}/#`, { protocolVersion: 5, qos: 1 });
    const connection = await amqp.connect(`amqp://guest:pw@${address}`);
    connections.push(connection);
    const confirm = await connection.createConfirmChannel();
    const queue = (await confirm.assertQueue('', { exclusive: true })).queue;
    await confirm.bindQueue(queue, 'amq.topic', `${root}.#`);

    await new Promise<void>((resolve, reject) => {
      confirm.publish('amq.topic', `${root}.eu.new`, Buffer.from('order 1'), { persistent: true, contentType: 'application/json', headers: { source: 'erp' }, expiration: '60000' }, (error) => (error ? reject(error) : resolve()));
    });
    const [received] = await exact.waitForMessages(1);
    assert.equal(received?.topic, `${root}/eu/new`);
    assert.equal(received?.payload.toString(), 'order 1');
    assert.equal(received?.packet.qos, 1, 'persistent is QoS 1');
    assert.equal(received?.packet.properties?.contentType, 'application/json');
    assert.deepEqual({ ...received?.packet.properties?.userProperties }, { source: 'erp' });
    assert.ok((received?.packet.properties?.messageExpiryInterval ?? 0) > 0 && (received?.packet.properties?.messageExpiryInterval ?? 0) <= 60, 'expiration becomes the message expiry interval');
    await wildcard.waitForMessages(1);
    await everything.waitForMessages(1);

    // A marker on the same MQTT topic is dispatched after the crossed message (one shard, in
    // order): had the crossed message come back to amq.topic, the queue would hold it twice.
    const publisher = await connectClient(node.url, { protocolVersion: 5 });
    await publisher.publish(`${root}/eu/new`, 'marker', { qos: 1 });
    await untilDepth(confirm, queue, 2);
    assert.deepEqual((await drain(confirm, queue)).map((message) => message.content.toString()), ['order 1', 'marker']);
    assert.equal(exact.messages.length, 2, 'the MQTT subscriber got the AMQP publish once, then the marker');
  });

  it('holds the ACL for AMQP users: 403 on a refused bind or publish, withheld deliveries', async () => {
    const root = uniqueTopic('acl').replaceAll('/', '-');
    const guest = await channel('guest');
    const observer = (await guest.assertQueue('', { exclusive: true })).queue;
    await guest.bindQueue(observer, 'amq.topic', '#');

    const mallory = await channel('mallory');
    const own = (await mallory.assertQueue('', { exclusive: true })).queue;
    const refusedBind = closedWith(mallory);
    await assert.rejects(mallory.bindQueue(own, 'amq.topic', 'secret.#'), /ACCESS_REFUSED|403/);
    assert.equal(await refusedBind, 403, 'binding a forbidden filter is 403');

    const reader = await channel('mallory');
    const queue = (await reader.assertQueue('', { exclusive: true })).queue;
    await reader.bindQueue(queue, 'amq.topic', '#');
    const publisher = await connectClient(node.url, { protocolVersion: 5 });
    await publisher.publish(`secret/${root}`, 'classified', { qos: 1 });
    await publisher.publish(`public/${root}`, 'news', { qos: 1 });
    // The observer's binding and mallory's are routed in the same step: once the observer has
    // both, mallory's queue has what it will ever get of them.
    for (let i = 0; i < 200; i += 1) {
      const keys = (await drain(guest, observer)).map((message) => message.fields.routingKey);
      if (keys.includes(`secret.${root}`)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await untilDepth(reader, queue, 1);
    const got = (await drain(reader, queue)).map((message) => message.fields.routingKey).filter((key) => key.endsWith(root));
    assert.deepEqual(got, [`public.${root}`], 'the secret message is withheld from mallory');

    const lockedSub = await subscriber(node.url, `locked/${root}`, { protocolVersion: 5, qos: 1 });
    const writer = await channel('mallory');
    const refusedPublish = closedWith(writer);
    writer.publish('amq.topic', `locked.${root}`, Buffer.from('break-in'));
    assert.equal(await refusedPublish, 403, 'publishing to a forbidden topic is 403');
    const allowed = await channel('guest');
    allowed.publish('amq.topic', `locked.${root}`, Buffer.from('by guest'));
    const [delivered] = await lockedSub.waitForMessages(1);
    assert.equal(delivered?.payload.toString(), 'by guest', "mallory's publish never reached MQTT");
  });
});

describe('AMQP publishes to amq.topic across kill -9', () => {
  after(async () => {
    closeAllClients();
    await cleanup();
  });

  it('keeps every confirmed publish in the MQTT data shards: an offline persistent MQTT session gets them after the restart', { timeout: 180_000 }, async () => {
    const first = await startBroker({ args: ['--amqp-port', '0'] });
    const root = uniqueTopic('crash').replaceAll('/', '-');
    const clientId = uniqueClientId('dur');
    const session = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 3600 } };
    const offline = await subscriber(first.url, `${root}/#`, { ...session, qos: 1 });
    await offline.end();
    const connection = await amqp.connect(`amqp://guest:guest@${amqpAddress(first)}`);
    connection.on('error', () => undefined);
    const confirm = await connection.createConfirmChannel();
    confirm.on('error', () => undefined);
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const body of sent) confirm.publish('amq.topic', `${root}.readings`, Buffer.from(body), { persistent: true });
    await confirm.waitForConfirms();

    await killBroker(first);
    const second = await startBroker({ dataDir: first.dataDir, args: ['--amqp-port', '0'] });
    try {
      const back = await connectClient(second.url, session);
      assert.equal(back.connack.sessionPresent, true);
      const received = await back.waitForMessages(sent.length, { timeoutMs: 20_000 });
      assert.deepEqual(
        received.map((message) => [message.topic, message.payload.toString()]),
        sent.map((body) => [`${root}/readings`, body]),
      );
    } finally {
      await stopBroker(second).catch(() => undefined);
    }
  });
});
