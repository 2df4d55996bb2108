// The PUBLISH packets one connection sends its client for the engine's deliveries: which encoder
// (the property-less fan-out hot path, or the 5.0 one with properties), the topic aliases this
// connection gave out, and the client's Maximum Packet Size. Pure: bytes out, no writes.
import { propertiesAt, type Delivery } from '../../engine/index.js';
import { encodePublishWithProperties, SharedPlainPublish, type OutboundPublishProperties } from './publish-encoder.js';

/** Payloads from this size are written after their header instead of copied into one buffer. */
const LARGE_PAYLOAD_BYTES = 8 * 1024;

/** One for the process: the connections a message fans out to share its encoded bytes. */
const plainPublishes = new SharedPlainPublish();

export interface OutboundPacket {
  head: Buffer;
  /** Set for a large payload: written after `head`, not copied into it. */
  payload?: Buffer;
}

export class OutboundPublishes {
  #topicAliases: Map<string, number> | undefined;

  constructor(
    private readonly version: number,
    /** The client's Maximum Packet Size (5.0); infinite when it set none. */
    private readonly clientMaxPacketSize: number,
    /** The client's Topic Alias Maximum (5.0); 0 = no aliases. */
    private readonly clientAliasMaximum: number,
  ) {}

  /**
   * The packet for a delivery (packet id = its tag, DUP = redelivered), or undefined when it is
   * larger than the client's Maximum Packet Size (then no alias is spent on it).
   */
  encode(delivery: Delivery, now: number): OutboundPacket | undefined {
    const message = delivery.message;
    if (this.version !== 5 || (message.properties === undefined && delivery.subscriptionIds === undefined && this.clientAliasMaximum === 0)) {
      const large = message.payload.length >= LARGE_PAYLOAD_BYTES;
      const bytes = plainPublishes.encode(message, message.topic, message.payload, delivery.qos, delivery.retain, delivery.redelivered, delivery.tag, this.version, large);
      if (bytes.length + (large ? message.payload.length : 0) > this.clientMaxPacketSize) return undefined;
      return large ? { head: bytes, payload: message.payload } : { head: bytes };
    }
    const properties: OutboundPublishProperties = { ...(propertiesAt(message, now) ?? {}) };
    if (delivery.subscriptionIds !== undefined) properties.subscriptionIds = delivery.subscriptionIds;
    let topic = message.topic;
    let newAlias: string | undefined;
    if (this.clientAliasMaximum > 0) {
      this.#topicAliases ??= new Map();
      const alias = this.#topicAliases.get(message.topic);
      if (alias !== undefined) {
        properties.topicAlias = alias;
        topic = '';
      } else if (this.#topicAliases.size < this.clientAliasMaximum) {
        properties.topicAlias = this.#topicAliases.size + 1;
        this.#topicAliases.set(message.topic, properties.topicAlias);
        newAlias = message.topic;
      }
    }
    const bytes = encodePublishWithProperties(topic, message.payload, delivery.qos, delivery.retain, delivery.redelivered, delivery.tag, properties);
    if (bytes.length > this.clientMaxPacketSize) {
      if (newAlias !== undefined) this.#topicAliases?.delete(newAlias);
      return undefined;
    }
    return { head: bytes };
  }
}
