// The MQTT ↔ amq.topic bridge over an in-memory shard store and a stand-in for the MQTT broker
// that records publishes and is told by hand when one is durable and dispatched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { AccessPolicy, ClientIdentity, Message } from '../../../engine/index.js';
import { MemoryShardStore } from '../../../shard-model/index.js';
import { amqpMethod, type ArgsOf } from '../codec/methods.js';
import { AmqpBroker } from './broker.js';
import type { MqttEngine } from './mqtt-bridge.js';
import { RecordingClient } from './testing.js';

/** mallory may not read `secret/…`, nor publish under `locked/…`; the rest is allowed. */
const policy: AccessPolicy = {
  mayPublish: (identity, topic) => !(identity.username === 'mallory' && topic.startsWith('locked/')),
  maySubscribe: (identity, filter) => !(identity.username === 'mallory' && filter.startsWith('secret/')),
  mayRead: (identity, topic) => !(identity.username === 'mallory' && topic.startsWith('secret/')),
};

class FakeMqtt implements MqttEngine {
  readonly published: Array<{ message: Message; stored: ((matched: boolean) => void) | undefined; fail: (error: Error) => void }> = [];
  #observers = new Set<(message: Message) => void>();

  constructor(readonly access: AccessPolicy) {}

  publish(message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }> {
    return new Promise((_resolve, reject) => this.published.push({ message, stored, fail: reject }));
  }

  observeDispatch(observer: (message: Message) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** A message is durable and dispatched (an MQTT publish, or one the bridge published). */
  dispatch(message: Message): void {
    for (const observer of this.#observers) observer(message);
  }
}

const logger = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
const user = (username: string): ClientIdentity => ({ clientId: `amqp:${username}`, username, remoteAddress: '127.0.0.1', protocol: 'amqp' });
const queueArgs = (queue: string, durable = false): ArgsOf<'queue.declare'> => ({ ticket: 0, queue, passive: false, durable, exclusive: false, autoDelete: false, noWait: false, arguments: new Map() });
const bindTopic = (queue: string, routingKey: string) => amqpMethod('queue.bind', { ticket: 0, queue, exchange: 'amq.topic', routingKey, noWait: false, arguments: new Map() });
const mqttMessage = (topic: string, payload = 'x'): Message => ({ topic, payload: Buffer.from(payload), qos: 1, retain: false, publisherId: 'device', timestamp: 1_000, properties: undefined });

describe('MQTT ↔ amq.topic', () => {
  it('routes dispatched MQTT messages into queues bound to amq.topic, not those of the $ namespace', async () => {
    const mqtt = new FakeMqtt(policy);
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger, mqtt });
    const client = new RecordingClient(broker, user('guest'));
    client.call(1, amqpMethod('queue.declare', queueArgs('temps')));
    client.call(1, bindTopic('temps', 'home.*.temp'));
    await settle();
    for (const topic of ['home/kitchen/temp', 'home/kitchen/humidity', '$SYS/home/x/temp']) mqtt.dispatch(mqttMessage(topic));
    assert.deepEqual(client.drain(1, 'temps'), ['x']);
    broker.close();
  });

  it('publishes an AMQP publish to amq.topic on MQTT, confirms it once the MQTT append is durable, and does not route it back', async () => {
    const mqtt = new FakeMqtt(policy);
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger, mqtt });
    const client = new RecordingClient(broker, user('guest'));
    client.call(1, amqpMethod('queue.declare', queueArgs('orders')));
    client.call(1, bindTopic('orders', 'orders.#'));
    client.call(1, amqpMethod('confirm.select', { noWait: false }));
    client.publish(1, 'amq.topic', 'orders.eu', 'o1');
    await settle();
    assert.equal(mqtt.published.length, 1);
    const [crossed] = mqtt.published;
    assert.equal(crossed?.message.topic, 'orders/eu');
    assert.equal(crossed?.message.publisherId, 'amqp:guest');
    assert.deepEqual(client.confirms(), [], 'no confirm before the MQTT append is durable');
    crossed?.stored?.(false);
    mqtt.dispatch(crossed?.message as Message);
    await settle();
    assert.deepEqual(client.confirms(), ['ack:1']);
    assert.deepEqual(client.drain(1, 'orders'), ['o1'], 'once: the dispatched copy is not routed back');
    // A failed MQTT append is a nack.
    client.publish(1, 'amq.topic', 'orders.us', 'o2');
    await settle();
    mqtt.published[1]?.fail(new Error('journal unreachable'));
    await settle();
    assert.deepEqual(client.confirms(), ['ack:1', 'nack:2']);
    broker.close();
  });

  it('returns a mandatory publish only when neither a queue nor an MQTT subscription took it; keys naming no MQTT topic stay on the AMQP side', async () => {
    const mqtt = new FakeMqtt(policy);
    const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger, mqtt });
    const client = new RecordingClient(broker, user('guest'));
    client.publish(1, 'amq.topic', 'nobody.listens', 'a', true);
    client.publish(1, 'amq.topic', 'someone.listens', 'b', true);
    await settle();
    mqtt.published[0]?.stored?.(false);
    mqtt.published[1]?.stored?.(true);
    await settle();
    assert.deepEqual(client.sent.filter((sent) => sent.method.name === 'basic.return').map((sent) => sent.body), ['a']);
    client.publish(1, 'amq.topic', 'wild.#', 'c', true);
    await settle();
    assert.equal(mqtt.published.length, 2, 'a key with # names no MQTT topic');
    assert.equal(client.sent.filter((sent) => sent.method.name === 'basic.return').length, 2);
    broker.close();
  });

  it('refuses a forbidden publish or bind with 403, and withholds what a binder may not read, also after a restart', async () => {
    const store = new MemoryShardStore();
    const mqtt = new FakeMqtt(policy);
    const broker = await AmqpBroker.open({ store, logger, mqtt });
    const mallory = new RecordingClient(broker, user('mallory'));
    mallory.call(1, amqpMethod('queue.declare', queueArgs('mine', true)));
    mallory.call(1, bindTopic('mine', '#'));
    mallory.call(2, bindTopic('mine', 'secret.#'));
    mallory.publish(3, 'amq.topic', 'locked.door', 'break-in');
    await settle();
    assert.deepEqual(
      mallory.closes.map((close) => [close.channel, close.error.replyCode]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [2, 403],
        [3, 403],
      ],
    );
    assert.equal(mqtt.published.length, 0, 'the refused publish went nowhere');
    for (const topic of ['secret/plans', 'public/news']) mqtt.dispatch(mqttMessage(topic, topic));
    assert.deepEqual(mallory.drain(1, 'mine'), ['public/news']);
    broker.close();

    const again = new FakeMqtt(policy);
    const reopened = await AmqpBroker.open({ store, logger, mqtt: again });
    for (const topic of ['secret/plans', 'public/more']) again.dispatch(mqttMessage(topic, topic));
    const reader = new RecordingClient(reopened, user('guest'), 'c2');
    assert.deepEqual(reader.drain(1, 'mine'), ['public/more'], 'the durable binding kept its binder');
    reopened.close();
  });
});
