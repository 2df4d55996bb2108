// What the engine hands a subscriber's connection, and what it needs from that connection, in no
// protocol's terms. A front end turns a Delivery into its own frame (MQTT PUBLISH, AMQP
// basic.deliver) and chooses the tag the subscriber acknowledges it by: the engine keeps the
// tag in the subscriber's in-flight window (in-flight-window.ts) and never reads it.
import type { Message, QoS } from '../messages/message.js';
import type { DeliveryTag } from './in-flight-window.js';

export interface Delivery {
  /** The front end's tag while it is in flight (DeliverySink.assignTag); 0 before it is sent and for QoS 0. */
  tag: DeliveryTag;
  message: Message;
  /** The delivery class: 0 at most once (never in the window), 1 at least once, 2 exactly once. */
  qos: QoS;
  retain: boolean;
  /** Sent to this subscriber before, as far as the engine knows (MQTT DUP, AMQP redelivered). */
  redelivered: boolean;
  subscriptionIds: number[] | undefined;
  /** Data shard index and offset; -1 for deliveries not tied to a shard position (retained, replayed, shared). */
  shard: number;
  offset: number;
  /** Set on a delivery a shared subscription group handed to this session (engine/shared). */
  shared?: SharedTicket;
}

/** How a session tells a shared subscription group what became of a delivery it was handed. */
export interface SharedTicket {
  /** Acknowledged (or held, for QoS 2), expired or not sendable: the group is done. */
  settled(): void;
  /** The connection went before the client acknowledged it: the group gives it to another member. */
  returned(): void;
}

export enum SendResult {
  /** Sent; the transport can take more. */
  Sent,
  /** Sent; the transport is backed up: stop until resume(). */
  SentFull,
  /** Not sendable to this client (larger than its maximum packet size): dropped. */
  Skipped,
}

export type CloseReason = 'session-taken-over' | 'server-shutting-down' | 'administrative-action';

export interface ConnectionInfo {
  protocol: string;
  protocolVersion: number;
  remoteAddress: string;
  /** Epoch ms. */
  connectedAt: number;
  keepAliveSeconds: number;
}

/** The connection side, implemented by a protocol front end. */
export interface DeliverySink {
  send(delivery: Delivery): SendResult;
  /**
   * The tag of a QoS 1/2 delivery about to be sent: one the window does not hold (`inUse`). A
   * delivery sent again after a reconnect keeps the tag it had; this is asked once per send.
   */
  assignTag(delivery: Delivery, inUse: (tag: DeliveryTag) => boolean): DeliveryTag;
  /**
   * After a reconnect, for each held delivery (the client took it over; its tag stays reserved
   * until the front end's last step): take that step up again. MQTT: PUBREL once more.
   */
  resumeHeld(tag: DeliveryTag): void;
  /** The broker ends this connection: another connection took the session, shutdown, or an operator. */
  close(reason: CloseReason): void;
  /** What the front end can say about its connection (admin API). */
  describe?(): ConnectionInfo;
  /** QoS 1/2 deliveries in flight at once: the window's size (MQTT Receive Maximum, AMQP prefetch count). */
  readonly inFlightMaximum: number;
}
