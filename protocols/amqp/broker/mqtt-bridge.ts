// MQTT and AMQP through amq.topic, both ways, under the node's one access policy (docs/amqp.md
// "MQTT and amq.topic"). Every durable MQTT message this node dispatches is routed on amq.topic
// (topic `a/b/c` as key `a.b.c`); an AMQP publish to amq.topic is also published to MQTT. A
// message crosses at most once: what the bridge published to MQTT is known by identity and not
// routed back. The ACL's questions are asked with the mapped MQTT names: publish for a publish to
// amq.topic, subscribe for a binding out of it (its key as a filter), read for each message a
// binding out of amq.topic takes, against the identity of whoever made the binding.
import { allowEverything, type AccessPolicy, type ClientIdentity, type Message } from '../../../engine/index.js';
import type { BasicProperties } from '../codec/content.js';
import type { AmqpBroker } from './broker.js';
import { amqpToMqtt, MQTT_EXCHANGE, mqttFilterOf, mqttToAmqp, mqttTopicOf } from './mqtt-mapping.js';
import type { Binding } from './topology.js';

/** What the bridge needs of the MQTT broker (engine/broker.ts). */
export interface MqttEngine {
  readonly access: AccessPolicy;
  publish(message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }>;
  observeDispatch(observer: (message: Message) => void): () => void;
}

/** Who an AMQP connection is to the access policy when the session was given no identity. */
export const ANONYMOUS_AMQP: ClientIdentity = { clientId: 'amqp:', username: undefined, remoteAddress: '', protocol: 'amqp' };

export class MqttBridge {
  /** Messages the bridge published to MQTT: they come back through the dispatch and must not cross again. */
  readonly #crossed = new WeakSet<Message>();
  readonly #stop: () => void;

  constructor(
    private readonly engine: MqttEngine,
    private readonly broker: AmqpBroker,
  ) {
    broker.topology.admit = (binding, routingKey) => this.#admit(binding, routingKey);
    this.#stop = engine.observeDispatch((message) => this.#fromMqtt(message));
  }

  close(): void {
    this.#stop();
  }

  /** Whether `identity` may publish to amq.topic with this key (a key naming no MQTT topic is AMQP's own: allowed). */
  mayPublish(identity: ClientIdentity, routingKey: string): boolean {
    const topic = mqttTopicOf(routingKey);
    return topic === undefined || this.engine.access.mayPublish(identity, topic);
  }

  /** Whether `identity` may bind out of amq.topic with this key (the ACL's subscribe, on the key as a filter). */
  maySubscribe(identity: ClientIdentity, bindingKey: string): boolean {
    const filter = mqttFilterOf(bindingKey);
    return filter === undefined || this.engine.access.maySubscribe(identity, filter);
  }

  /**
   * Publishes an AMQP publish to amq.topic on MQTT; `stored` is told once it is durable (with
   * whether an MQTT subscription matched), or with `undefined` when the append failed. Returns
   * false, without calling `stored`, when the key names no MQTT topic.
   */
  toMqtt(routingKey: string, properties: BasicProperties, body: Buffer, identity: ClientIdentity, now: number, stored: (matched: boolean | undefined) => void): boolean {
    const message = amqpToMqtt(routingKey, properties, body, identity.clientId, now);
    if (message === undefined) return false;
    this.#crossed.add(message);
    let told = false;
    this.engine
      .publish(message, (matched) => {
        told = true;
        stored(matched);
      })
      .catch((error: unknown) => {
        this.broker.logger.warn({ err: error, topic: message.topic }, 'AMQP: a publish to amq.topic could not be published to MQTT');
        if (!told) stored(undefined);
      });
    return true;
  }

  #fromMqtt(message: Message): void {
    if (this.#crossed.has(message) || message.topic.startsWith('$')) return;
    const topology = this.broker.topology;
    const exchange = topology.exchanges.get(MQTT_EXCHANGE);
    if (exchange === undefined || topology.bindingsFrom(MQTT_EXCHANGE).length === 0) return;
    const { routingKey, properties, body } = mqttToAmqp(message);
    // The message is durable in its MQTT data shard already; its copies in AMQP queues are
    // confirmed to no one (docs/amqp.md: which side stores what).
    this.broker.publish(exchange, routingKey, properties, body, () => (error) => {
      if (error !== undefined) this.broker.logger.warn({ err: error, topic: message.topic }, 'AMQP: an MQTT message could not be stored in an AMQP queue');
    });
  }

  #admit(binding: Binding, routingKey: string): boolean {
    if (binding.source !== MQTT_EXCHANGE) return true;
    const access = this.engine.access;
    if (access === allowEverything) return true;
    const topic = mqttTopicOf(routingKey);
    if (topic === undefined) return true;
    // A binding stored before binders were recorded has no reader to ask: it takes nothing (fail closed).
    return binding.binder !== undefined && access.mayRead(binding.binder, topic);
  }
}
