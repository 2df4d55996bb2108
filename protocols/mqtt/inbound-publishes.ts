// A connection's inbound PUBLISH flows: topic aliases, rewrite and checks, the publish rate
// limits, QoS 0 / 1 / 2 (MQTT's packet ids as the engine's publish keys: a resent QoS 2 PUBLISH
// is stored once, Broker.publishOnce), the in-flight and backlog bounds that pause reading, the
// acks in arrival order (MQTT-4.6.0-2/3), and 3.x publishes held while writes are blocked
// (held-publishes.ts). PUBREL is acks.ts's; connection.ts owns the transport and the state.
import { isUtf8 } from 'node:buffer';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { Clock, Message, QoS } from '../../engine/index.js';
import { checkTopicName } from '../../engine/index.js';
import type { ClientGuard } from '../listener/index.js';
import { HeldPublishes } from './held-publishes.js';
import type { InboundBudget, InboundReservation } from '../listener/index.js';
import type { MqttLimits } from './limits.js';
import type { OwnMessageHold } from './own-message-hold.js';
import { isCleanString, messageProperties } from './packet-checks.js';
import type { PacketHandlerContext } from './packet-handler-context.js';
import type { UserProperty } from './packet-validation.js';
import { ReasonCode } from './reason-codes.js';
import { delayedRefusal, isWritesBlocked, writesBlockedReasonCode } from './write-refusal.js';

/** Bytes of a connection's publishes waiting for the journal before it stops reading. */
const PUBLISH_BACKLOG_PAUSE_BYTES = 1024 * 1024;

/** What the inbound flows need of their connection. */
export interface InboundContext extends PacketHandlerContext {
  readonly clock: Clock;
  readonly limits: MqttLimits;
  /** The connection itself: the abuse guard counts publish rates per client object. */
  readonly client: object;
  readonly inboundBudget: InboundBudget | undefined;
  /** User Properties of the packet being handled, in the order sent. */
  readonly userPropertiesIn: UserProperty[] | undefined;
  readonly closed: boolean;
  /** Stops (or resumes) reading from the transport for this reason. */
  pause(reason: 'backlog' | 'inflight', on: boolean): void;
  /** The inbound budget of the packet being handled, handed over until its message is stored. */
  takeBudget(): InboundReservation | undefined;
  internalError(error: unknown): void;
}

interface PendingAck {
  done: boolean;
  packet: Packet | undefined;
  /** The message acknowledged: its deliveries to this same client wait for the ack. */
  message: Message | undefined;
}

/** An inbound publish on its way to the journal (or held while writes are blocked). */
interface PendingPublish {
  message: Message;
  ack: PendingAck | undefined;
  qos: QoS;
  messageId: number;
  /** Bytes counted in the publish backlog until it is settled. */
  size: number;
  /** QoS 2: settles the inbound flow's entry (true: stored). */
  storedQos2: ((stored: boolean) => void) | undefined;
  sequence: number;
  /** Its packet's inbound budget, held until the message is stored (or given up). */
  budget: InboundReservation | undefined;
}

export class InboundPublishes {
  /** QoS 1/2 publishes of this connection not yet completed (PUBACK sent / PUBREL received). */
  #inboundInFlight = 0;
  #publishBacklog = 0;
  #ackQueue: PendingAck[] | undefined;
  /** Publishes of this connection not yet handed to subscribers (or failed). */
  #publishesPending = 0;
  /** Called when #publishesPending falls to 0 (a SUBSCRIBE or UNSUBSCRIBE waits for it). */
  #publishesSettled: (() => void) | undefined;
  #topicAliasesIn: Map<number, string> | undefined;
  /** Publishers mostly repeat their topic: the last one that passed the checks is not checked again. */
  // U+0000 cannot be in a topic that passed the checks, so nothing matches it before the first.
  #lastValidTopic = '\u0000';
  readonly #heldPublishes: HeldPublishes<PendingPublish>;
  /** The connection's: a delivery of the client's own message waits for that message's ack. */
  readonly #ownMessages: OwnMessageHold;

  constructor(
    private readonly context: InboundContext,
    ownMessages: OwnMessageHold,
  ) {
    this.#ownMessages = ownMessages;
    this.#heldPublishes = new HeldPublishes<PendingPublish>({
      broker: context.broker,
      clock: context.clock,
      logger: context.logger,
      get clientId() {
        return context.clientId;
      },
      get writesBlockedDisconnectSeconds() {
        return context.limits.writesBlockedDisconnectSeconds;
      },
      store: (pending) => this.#store(pending),
      fail: (code, detail) => context.fail(code, detail),
    });
  }

  /** QoS 2 publishes the client sent on an earlier connection and has not released (PUBREL) are still in flight for it. */
  resumeInFlight(count: number): void {
    this.#inboundInFlight = count;
  }

  /** Resolves once every publish started so far is handed to subscribers (or failed); undefined when none is pending. */
  settled(): Promise<void> | undefined {
    return this.#publishesPending === 0 ? undefined : new Promise<void>((resolve) => (this.#publishesSettled = resolve));
  }

  /** A PUBLISH from the client (its packet checked by packet-validation.ts or the plain decoder). */
  onPublish(packet: IPublishPacket): void {
    const session = this.context.session;
    if (session === undefined) return;
    let topic = packet.topic;
    const alias = packet.properties?.topicAlias;
    if (alias !== undefined) {
      if (alias === 0 || alias > this.context.limits.topicAliasMaximum) return this.context.fail(ReasonCode.TopicAliasInvalid, `topic alias ${alias} is outside 1..${this.context.limits.topicAliasMaximum}`);
      this.#topicAliasesIn ??= new Map();
      if (topic === '') {
        const known = this.#topicAliasesIn.get(alias);
        if (known === undefined) return this.context.fail(ReasonCode.ProtocolError, `topic alias ${alias} was never set on this connection`);
        topic = known;
      } else this.#topicAliasesIn.set(alias, topic);
    }
    // Rewritten before the checks: access rules, routing and retained see the broker's name.
    const rewrite = this.context.broker.extras.rewrite;
    if (rewrite !== undefined && isCleanString(topic)) topic = rewrite.publishTopic(topic, this.context.rewriteIdentity());
    if (topic !== this.#lastValidTopic) {
      if (!isCleanString(topic)) return this.context.fail(ReasonCode.MalformedPacket, 'topic name contains U+0000 or is not valid UTF-8');
      const check = checkTopicName(topic, this.context.topicLimits());
      if (!check.ok) return this.context.fail(ReasonCode.TopicNameInvalid, check.detail);
      this.#lastValidTopic = topic;
    }
    const qos = packet.qos;
    const messageId = packet.messageId ?? 0;
    if (qos > 0 && messageId === 0) return this.context.fail(ReasonCode.ProtocolError, 'a QoS 1/2 PUBLISH needs a non-zero packet identifier (MQTT-2.3.1-1)');
    if (qos === 0 && packet.dup) return this.context.fail(ReasonCode.MalformedPacket, 'DUP must be 0 on a QoS 0 PUBLISH (MQTT-3.3.1-2)');
    const overLimit = this.context.guard === undefined ? 'ok' : this.#overPublishLimit(packet);
    if (overLimit === 'close') return;
    const inboundQos2 = session.publishKeys;
    const known = qos === 2 ? inboundQos2.get(messageId) : undefined;
    if (known !== undefined) {
      // A resent QoS 2 PUBLISH (DUP), possibly on a new connection of the session: stored once
      // already, or being stored. PUBREC again (MQTT 4.3.3) on this connection, once stored.
      const pubrec = (): void => this.context.send({ cmd: 'pubrec', messageId, ...(this.context.version === 5 ? { reasonCode: 0 } : {}) } as Packet);
      if (known === true) pubrec();
      // `known` never rejects (it resolves false when storing failed); the handler is for the rule.
      else known.then((stored) => stored && pubrec(), (error: unknown) => this.context.internalError(error));
      return;
    }
    if (qos > 0) {
      if (this.context.version === 5 && this.#inboundInFlight >= this.context.limits.maxInflight) return this.context.fail(ReasonCode.ReceiveMaximumExceeded, `more than ${this.context.limits.maxInflight} QoS 1/2 publishes in flight`);
      this.#inboundInFlight += 1;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const properties = this.context.version === 5 && packet.properties !== undefined ? messageProperties(packet.properties, this.context.userPropertiesIn) : undefined;
    const ack: PendingAck | undefined = qos > 0 ? { done: false, packet: undefined, message: undefined } : undefined;
    if (ack !== undefined) {
      const queue = (this.#ackQueue ??= []);
      queue.push(ack);
      // 3.x clients cannot be told a Receive Maximum: past --max-inflight publishes still being
      // stored, stop reading from them until acks go out. (Counting stores, not packet ids: a
      // QoS 2 id is only freed by the client's PUBREL, which must still be read.)
      if (this.context.version !== 5 && queue.length >= this.context.limits.maxInflight) this.context.pause('inflight', true);
    }
    if (overLimit === 'refuse') {
      // 5.0 only (3.x was closed above): refused, not stored; QoS 0 has no answer and is dropped.
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, ReasonCode.QuotaExceeded, `more than ${this.context.limits.maxPublishBytesRate} payload bytes per second`);
      return;
    }
    if (properties?.payloadFormatIndicator === true && !isUtf8(payload)) {
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, ReasonCode.PayloadFormatInvalid, 'payload format indicator says UTF-8 but the payload is not');
      return;
    }
    if (!this.context.broker.mayPublish(this.context.clientId, topic)) return this.#refusePublish(ack, qos, messageId, topic);
    const message: Message = { topic, payload, qos, retain: packet.retain, publisherId: this.context.clientId, timestamp: this.context.clock.now(), properties };
    let storedQos2: ((stored: boolean) => void) | undefined;
    if (qos === 2) inboundQos2.set(messageId, new Promise<boolean>((resolve) => (storedQos2 = resolve)));
    if (ack !== undefined) {
      ack.message = message;
      this.#ownMessages.awaitAck(message);
    }
    // What a waiting publish holds besides its payload: message, record, promises, closures.
    const size = payload.length + topic.length + 512;
    this.#publishBacklog += size;
    if (this.#publishBacklog > PUBLISH_BACKLOG_PAUSE_BYTES) this.context.pause('backlog', true);
    this.#publishesPending += 1;
    this.#publishSequence += 1;
    // Its packet's bytes stay counted in the inbound budget until the message is stored: the
    // journal's copy is made and the packet's can go.
    const budget = this.context.takeBudget();
    this.#store({ message, ack, qos, messageId, size, storedQos2, sequence: this.#publishSequence, budget });
  }

  /** Arrival order of this connection's publishes (held ones are retried in it). */
  #publishSequence = 0;

  #releaseBudget(pending: PendingPublish): void {
    if (pending.budget !== undefined) this.context.inboundBudget?.release(pending.budget);
    pending.budget = undefined;
  }

  #store(pending: PendingPublish): void {
    let stored = false;
    // Called once the message is durable, before any subscriber is handed it (engine/broker.ts):
    // the ack does not wait for the fan-out.
    const onStored = (matched: boolean): void => {
      stored = true;
      const { ack, qos, messageId } = pending;
      this.#releaseBudget(pending);
      if (qos === 2) {
        this.context.session?.publishKeys.set(messageId, true);
        pending.storedQos2?.(true);
      }
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, matched ? ReasonCode.Success : ReasonCode.NoMatchingSubscribers, undefined);
    };
    // A QoS 2 publish of a session is stored once per packet id, across a crash too (engine).
    const session = this.context.session;
    const publishing = pending.qos === 2 && session !== undefined ? this.context.broker.publishOnce(session, pending.messageId, pending.message, onStored) : this.context.broker.publish(pending.message, onStored);
    publishing.then(
      () => this.#publishDone(pending.size),
      (error: unknown) => {
        if (!stored) return this.#storeFailed(pending, error);
        this.#publishDone(pending.size);
        this.context.logger.error({ err: error, clientId: this.context.clientId, topic: pending.message.topic }, 'a stored publish failed afterwards');
      },
    );
  }

  #storeFailed(pending: PendingPublish, error: unknown): void {
    const { ack, qos, messageId, message } = pending;
    const blocked = isWritesBlocked(error);
    // 3.x has no failure ack: the publish waits for the gate instead (write-refusal.ts).
    if (blocked && ack !== undefined && this.context.version !== 5 && !this.context.closed) return this.#heldPublishes.hold(pending);
    this.#releaseBudget(pending);
    this.#publishDone(pending.size);
    if (qos === 2) {
      this.context.session?.publishKeys.delete(messageId);
      pending.storedQos2?.(false);
    }
    const code = (error as { code?: string }).code;
    if (blocked) {
      // The node logs the gate's changes; one line per refused publish would flood the log.
      this.context.logger.debug({ clientId: this.context.clientId, topic: message.topic, qos, code }, 'publish refused: writes are blocked');
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, writesBlockedReasonCode(error), (error as Error).message);
      return;
    }
    this.context.logger.warn({ err: error, clientId: this.context.clientId, topic: message.topic }, 'publish failed');
    if (ack === undefined) return;
    if (this.context.version !== 5) return this.context.fail(ReasonCode.UnspecifiedError, 'the message could not be stored');
    const refusal = delayedRefusal(code);
    if (refusal !== undefined) return this.#completeAck(ack, qos, messageId, refusal, (error as Error).message);
    this.#completeAck(ack, qos, messageId, code === 'SL_JOURNAL_OVERLOADED' ? ReasonCode.QuotaExceeded : ReasonCode.UnspecifiedError, `the message could not be stored (${code ?? 'error'})`);
  }

  // ---- 3.x publishes held while writes are blocked -----------------------------------------

  /** The connection ended: held publishes are forgotten (the client resends them on its next connection). */
  dropHeld(): void {
    for (const pending of this.#heldPublishes.drop()) {
      this.#releaseBudget(pending);
      this.#publishDone(pending.size);
      if (pending.qos === 2) {
        this.context.session?.publishKeys.delete(pending.messageId);
        pending.storedQos2?.(false);
      }
    }
  }

  /**
   * A publish the access policy refuses: 5.0 QoS 1/2 get PUBACK/PUBREC 0x87; 3.x has no way to
   * say it, so the message is acknowledged and dropped (as is any QoS 0), and logged.
   */
  #refusePublish(ack: PendingAck | undefined, qos: QoS, messageId: number, topic: string): void {
    const refused = this.context.countDenied();
    this.context.logger[refused === 1 ? 'warn' : 'debug']({ clientId: this.context.clientId, remote: this.context.remoteAddress, topic, qos, refused }, 'publish not authorized: message dropped');
    if (ack === undefined) return;
    // 3.x QoS 2: the PUBREL that follows the PUBREC must find the flow, as for a stored message.
    if (this.context.version !== 5 && qos === 2) this.context.session?.publishKeys.set(messageId, true);
    this.#completeAck(ack, qos, messageId, this.context.version === 5 ? ReasonCode.NotAuthorized : ReasonCode.Success, 'not authorized to publish to this topic');
  }

  /** Publish rate limits: over the message rate the connection ends (0x96); over the byte rate a 5.0 publish is refused (0x97). */
  #overPublishLimit(packet: IPublishPacket): 'ok' | 'refuse' | 'close' {
    const guard = this.context.guard as ClientGuard;
    const bytes = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
    const verdict = guard.publish(this.context.client, bytes);
    if (verdict === 'ok') return 'ok';
    const detail = verdict === 'message-rate' ? `more than ${this.context.limits.maxPublishRate} PUBLISH packets per second` : `more than ${this.context.limits.maxPublishBytesRate} payload bytes per second`;
    guard.log.warn(verdict, { clientId: this.context.clientId, remote: this.context.remoteAddress, detail }, verdict === 'message-rate' || this.context.version !== 5 ? 'closing a client over a publish rate limit' : 'refused a publish over the byte rate limit');
    if (verdict === 'byte-rate' && this.context.version === 5) return 'refuse';
    this.context.fail(verdict === 'message-rate' ? ReasonCode.MessageRateTooHigh : ReasonCode.QuotaExceeded, detail);
    return 'close';
  }

  /** A QoS 1/2 publish of the client completed (PUBACK sent, PUBREL received): one fewer in flight. */
  done(): void {
    if (this.#inboundInFlight > 0) this.#inboundInFlight -= 1;
  }

  /** A publish was handed to its subscribers, or failed. */
  #publishDone(size: number): void {
    this.#publishBacklog -= size;
    if (this.#publishBacklog <= PUBLISH_BACKLOG_PAUSE_BYTES / 2) this.context.pause('backlog', false);
    this.#publishesPending -= 1;
    if (this.#publishesPending > 0) return;
    const settled = this.#publishesSettled;
    this.#publishesSettled = undefined;
    settled?.();
  }

  /** Acks go out in the order the publishes came in (MQTT-4.6.0-2/3), whatever shard was faster. */
  #completeAck(ack: PendingAck, qos: QoS, messageId: number, reasonCode: number, reasonString: string | undefined): void {
    const failed = reasonCode >= 0x80;
    if (qos === 1 || failed) this.done();
    if (qos === 2 && failed) this.context.session?.publishKeys.delete(messageId);
    ack.done = true;
    ack.packet = { cmd: qos === 1 ? 'puback' : 'pubrec', messageId, ...(this.context.version === 5 ? { reasonCode, ...this.context.reason(reasonString) } : {}) } as Packet;
    const queue = this.#ackQueue ?? [];
    while (queue.length > 0 && (queue[0] as PendingAck).done) {
      const head = queue.shift() as PendingAck;
      if (head.packet !== undefined) this.context.send(head.packet);
      if (head.message !== undefined && this.#ownMessages.acknowledged(head.message, this.context.connected)) this.context.session?.resume();
    }
    if (queue.length < this.context.limits.maxInflight) this.context.pause('inflight', false);
  }
}
