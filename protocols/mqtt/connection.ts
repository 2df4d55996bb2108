// One MQTT connection (3.1, 3.1.1 or 5.0): decodes packets, enforces the protocol's rules and
// the broker's limits, and turns packets into engine calls; it is the engine's DeliverySink for
// its session. It holds no socket and no timer of its own: the transport and the clock are
// handed in (server.ts binds them to a net.Socket and real timers).
//
// Failure policy: any violation ends the connection with the spec's reason code where the
// version has a way to say it (CONNACK before the session exists, DISCONNECT after, both 5.0
// only for DISCONNECT), and is logged at debug with the client id and address. Nothing a client
// sends can throw out of this class: decoding errors, engine failures and bad values all end
// up in #fail().
//
// Order: a connection's packets take effect in the order they were sent. A SUBSCRIBE or
// UNSUBSCRIBE waits until the connection's earlier publishes have been handed to subscribers,
// and the packets after it wait for its answer (#inOrder). The SUBACK is written in the same
// step that routes the subscription (Broker.subscribeAcknowledged). PUBACK/PUBREC go out once a
// message is stored, before its fan-out, in the order the publishes arrived; a delivery of the
// client's own message is kept back until its ack is written (own-message-hold.ts).
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import mqttPacket from 'mqtt-packet';
import type { IConnectPacket, IPublishPacket, Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { AuthOutcome, Broker, ClientIdentity, Clock, CloseReason, ConnectionInfo, Delivery, DeliverySink, Message, QoS, Session, WillMessage } from '../../engine/index.js';
import { applyAutoSubscribe, checkTopicName, responseInformationFor, SendResult, type AutoSubscribed } from '../../engine/index.js';
import type { ClientGuard } from '../listener/index.js';
import type { MqttLimits } from './limits.js';
import { PacketFramer } from './framing.js';
import { hasAuthenticationMethod, validatePacket, type Collected, type UserProperty, type Violation } from './packet-validation.js';
import type { InboundBudget, InboundReservation } from './inbound-budget.js';
import { decodePlainPublish } from './publish-decoder.js';
import { OutboundPublishes } from './outbound-publishes.js';
import { delayedRefusal, isWritesBlocked, writesBlockedReasonCode } from './write-refusal.js';
import { connectLevel, isCleanString, messageProperties } from './packet-checks.js';
import { OutboundPacketIds } from './packet-ids.js';
import { ReasonCode, reasonName } from './reason-codes.js';
import { onSubscribe, onUnsubscribe, type SubscribeContext } from './subscribe.js';
import { onPubrec, onPubrel, type AckContext } from './acks.js';
import { OwnMessageHold } from './own-message-hold.js';
import { HeldPublishes } from './held-publishes.js';
import { PacketReservations } from './packet-reservations.js';

export interface Transport {
  /** False when the transport's buffer is full (wait for onDrain()). */
  write(data: Buffer): boolean;
  /** Flushes what is written, then closes. */
  end(): void;
  pause(): void;
  resume(): void;
  readonly remoteAddress: string;
  /** TLS with a verified client certificate: its subject CN (mutual TLS may use it as the user name). */
  readonly certificateName?: string;
  /** 'tcp', 'tls', 'ws' or 'wss' (for logs and the admin API). */
  readonly kind?: string;
}

export interface ConnectRequestInfo {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  remoteAddress: string;
  protocolVersion: number;
  /** The verified client certificate's subject CN (mutual TLS), if any. */
  certificateName: string | undefined;
  /** 5.0 enhanced authentication (CONNECT Authentication Method / Data), if any. */
  authenticationMethod?: string | undefined;
  authenticationData?: Buffer | undefined;
}

/**
 * Authentication hook (engine/security's Authenticator in `shardline start`); the default
 * accepts everyone and offers no enhanced authentication. A result of `ok: 'continue'` is a
 * challenge: it goes to the client in AUTH 0x18 and the client's AUTH data goes to next().
 * An accepted result without a username keeps the one the client sent.
 */
export type Authenticate = (request: ConnectRequestInfo) => Promise<AuthOutcome>;

/** Shared by the connections of one node: the connected count for max-connections, the inbound budget. */
export interface ConnectionRegistry {
  connected: number;
  /** Bytes all connections may hold in large inbound packets (--max-inbound-bytes); none: no node-wide bound. */
  inboundBudget?: InboundBudget;
}

/** Bytes of a connection's publishes waiting for the journal before it stops reading. */
const PUBLISH_BACKLOG_PAUSE_BYTES = 1024 * 1024;

type State = 'awaiting-connect' | 'connecting' | 'authenticating' | 'connected' | 'closed';

/** The authentication hook when none is given: everyone may connect; no enhanced authentication. */
const acceptEveryone: Authenticate = (request) =>
  Promise.resolve(request.authenticationMethod === undefined ? { ok: true } : { ok: false, reason: 'bad-method', detail: `authentication method ${JSON.stringify(request.authenticationMethod)} is not supported` });

/** 5.0 reason code of an AUTH that continues an exchange (table 2-6). */
const CONTINUE_AUTHENTICATION = 0x18;

const ACK_COMMANDS = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;

enum Pause {
  Connecting = 1,
  Backlog = 2,
  Inflight = 4,
  /** A SUBSCRIBE or UNSUBSCRIBE is waiting for this connection's earlier publishes. */
  Ordering = 8,
  Budget = 16,
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

export class MqttConnection implements DeliverySink {
  #state: State = 'awaiting-connect';
  readonly #framer: PacketFramer;
  /** Made on demand: idle connections (PINGREQ only) and plain PUBLISH traffic do not need one. */
  #parser: ReturnType<typeof mqttPacket.parser> | undefined;
  #parsed: Packet[] = [];
  #parseError: Error | undefined;
  #firstByteSeen = false;
  /** User Properties of the packet being handled, read from its bytes in the order sent (mqtt-packet groups them by name). */
  #userPropertiesIn: UserProperty[] | undefined;
  #version = 4;
  #clientId = '';
  #session: Session | undefined;
  #problemInfo = true;
  #keepAliveMs = 0;
  #lastPacketAt = 0;
  #timer: unknown;
  #willOnClose = true;
  #sessionExpiry = 0;
  /** Packets that arrived while CONNECT was being processed. */
  #early: Buffer[] | undefined;
  // Inbound flow state.
  /** QoS 1/2 publishes of this connection not yet completed (PUBACK sent / PUBREL received). */
  #inboundInFlight = 0;
  #publishBacklog = 0;
  /** Why reading from the transport is paused (bits of Pause); it resumes when none is left. */
  #pausedFor = 0;
  #ackQueue: PendingAck[] | undefined;
  /** Publishes of this connection not yet handed to subscribers (or failed). */
  #publishesPending = 0;
  /** Called when #publishesPending falls to 0 (a SUBSCRIBE or UNSUBSCRIBE waits for it). */
  #publishesSettled: (() => void) | undefined;
  /** While a SUBSCRIBE or UNSUBSCRIBE waits for the publishes before it: the packets after it. */
  #ordered: Buffer[] | undefined;
  readonly #ownMessages: OwnMessageHold;
  readonly #reservations: PacketReservations;
  #topicAliasesIn: Map<number, string> | undefined;
  /** Publishers mostly repeat their topic: the last one that passed the checks is not checked again. */
  // U+0000 cannot be in a topic that passed the checks, so nothing matches it before the first.
  #lastValidTopic = '\u0000';
  // Outbound flow state.
  /** The client's Receive Maximum (5.0), bounded by max-inflight. */
  inFlightMaximum = 65_535;
  readonly #packetIds: OutboundPacketIds;
  /** Set at CONNECT: nothing is sent before (send() refuses until connected). */
  #outbound = new OutboundPublishes(4, Number.POSITIVE_INFINITY, 0);

  constructor(
    private readonly transport: Transport,
    private readonly broker: Broker,
    private readonly limits: MqttLimits,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly registry: ConnectionRegistry,
    private readonly authenticate: Authenticate = acceptEveryone,
  ) {
    this.#framer = new PacketFramer(limits.maxPacketSize);
    this.#packetIds = new OutboundPacketIds(broker.dataShardNames.length);
    this.#ownMessages = new OwnMessageHold(transport);
    this.#reservations = new PacketReservations(registry, (on) => this.#pause(Pause.Budget, on));
    this.#heldPublishes = this.#makeHeldPublishes();
    this.#context = this.#makeContext();
    this.#timer = clock.setTimeout(() => this.#connectTimedOut(), limits.connectTimeoutMs);
  }

  get clientId(): string {
    return this.#clientId;
  }

  readonly #heldPublishes: HeldPublishes<PendingPublish>;

  #makeHeldPublishes(): HeldPublishes<PendingPublish> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the context's getters read this connection's private state
    const connection = this;
    return new HeldPublishes<PendingPublish>({
      broker: this.broker,
      clock: this.clock,
      logger: this.logger,
      get clientId() {
        return connection.#clientId;
      },
      get writesBlockedDisconnectSeconds() {
        return connection.limits.writesBlockedDisconnectSeconds;
      },
      store: (pending) => this.#store(pending),
      fail: (code, detail) => this.#fail(code, detail),
    });
  }

  /** What the handler modules see of this connection. */
  readonly #context: SubscribeContext & AckContext;

  #makeContext(): SubscribeContext & AckContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the context's getters read this connection's private state
    const connection = this;
    return {
      broker: this.broker,
      logger: this.logger,
      get remoteAddress() {
        return connection.transport.remoteAddress;
      },
      get version() {
        return connection.#version;
      },
      get clientId() {
        return connection.#clientId;
      },
      get session() {
        return connection.#session;
      },
      get guard() {
        return connection.#guard;
      },
      get problemInfo() {
        return connection.#problemInfo;
      },
      get connected() {
        return connection.#state === 'connected';
      },
      topicLimits: () => this.#topicLimits(),
      rewriteIdentity: () => this.#rewriteIdentity(),
      countDenied: () => this.#countDenied(),
      reason: (detail) => this.#reason(detail),
      send: (packet) => this.#send(packet),
      fail: (code, detail) => this.#fail(code, detail),
      internalError: (error) => this.#internalError(error),
      inboundDone: () => this.#inboundDone(),
    };
  }


  /** Whether a packet being received holds or waits for inbound budget (see websocket.ts). */
  get holdsInboundBudget(): boolean {
    return this.#reservations.receiving;
  }

  /** Abuse limits for this connection (server.ts; none: no abuse limits, e.g. in-process tests). */
  guard(guard: ClientGuard): void {
    this.#guard = guard;
  }

  #guard: ClientGuard | undefined;

  #newParser(protocolVersion: number): ReturnType<typeof mqttPacket.parser> {
    const parser = mqttPacket.parser({ protocolVersion: protocolVersion as 3 | 4 | 5 });
    parser.on('packet', (packet: Packet) => this.#parsed.push(packet));
    parser.on('error', (error: Error) => (this.#parseError = error));
    return parser;
  }

  // ---- input -----------------------------------------------------------------------------

  onData(chunk: Buffer): void {
    if (this.#state === 'closed' || chunk.length === 0) return;
    this.#lastPacketAt = this.clock.now();
    // MQTT-3.1.0-1, judged on the first byte: anything but a CONNECT header (an HTTP request,
    // a TLS hello on the plain port) is closed at once instead of being buffered until the
    // connect timeout.
    if (!this.#firstByteSeen) {
      this.#firstByteSeen = true;
      if (chunk[0] !== 0x10) return this.#fail(ReasonCode.ProtocolError, `the first packet must be CONNECT (first byte 0x${(chunk[0] as number).toString(16)})`, true);
    }
    const framed = this.#framer.push(chunk);
    if (framed.kind === 'malformed') return this.#fail(ReasonCode.MalformedPacket, framed.detail);
    if (framed.kind === 'too-large') return this.#fail(ReasonCode.PacketTooLarge, `packet of ${framed.size} bytes is over the maximum packet size of ${this.limits.maxPacketSize}`);
    // The packet that had a reservation is the first one the framer completes.
    if (this.#reservations.receiving && framed.packets.length > 0) this.#reservations.startHandling();
    for (const raw of framed.packets) {
      // #handleRaw may close the connection mid-chunk.
      if ((this.#state as State) === 'closed') break;
      if (this.#state === 'connecting') {
        // Clients may send before CONNACK (3.1.1 section 3.1.4); the socket is paused meanwhile,
        // so this holds at most the rest of the chunk that carried the CONNECT.
        (this.#early ??= []).push(raw);
        continue;
      }
      if (this.#ordered !== undefined) {
        // Behind a SUBSCRIBE or UNSUBSCRIBE still waiting (the socket is paused meanwhile).
        this.#ordered.push(raw);
        continue;
      }
      this.#handleRaw(raw);
      this.#reservations.releaseHandling();
    }
    this.#reservations.releaseHandling();
    if ((this.#state as State) !== 'closed') this.#reservations.reserve(this.#framer.partialPacketBytes);
  }

  #handleRaw(raw: Buffer): void {
    const type = (raw[0] as number) >> 4;
    if (this.#state === 'authenticating') {
      // MQTT-3.1.2-30: with an Authentication Method, only AUTH or DISCONNECT until CONNACK.
      if (type !== 15 && type !== 14) return this.#fail(ReasonCode.ProtocolError, 'only AUTH or DISCONNECT may be sent during enhanced authentication');
      if (type === 15 && raw.length <= 2) return this.#fail(ReasonCode.ProtocolError, 'AUTH without a reason code during enhanced authentication (success is the server\'s to say)');
    } else if (this.#state === 'awaiting-connect') {
      if (type !== 1) return this.#fail(ReasonCode.ProtocolError, 'the first packet must be CONNECT', true);
      const level = connectLevel(raw);
      if (level === undefined) return this.#refuseVersion('protocol name is not MQTT or MQIsdp');
      if (level.name === 'MQIsdp' ? level.level !== 3 : level.level !== 4 && level.level !== 5) return this.#refuseVersion(`protocol ${level.name} level ${level.level} is not supported (3.1 = MQIsdp 3, 3.1.1 = MQTT 4, 5.0 = MQTT 5)`);
      this.#version = level.level;
    } else if (type === 12 && raw.length === 2 && raw[0] === 0xc0) {
      this.#send({ cmd: 'pingresp' });
      return;
    } else if (type >= 4 && type <= 7 && raw.length === 4 && raw[1] === 2 && (raw[0] as number) === (type === 6 ? 0x62 : type << 4)) {
      // PUBACK, PUBREC, PUBREL, PUBCOMP with no reason code: the bulk of QoS 1/2 traffic.
      const messageId = raw.readUInt16BE(2);
      if (messageId === 0) return this.#fail(ReasonCode.ProtocolError, 'packet identifier 0 (MQTT-2.3.1-1)');
      return this.#handlePacket({ cmd: ACK_COMMANDS[type - 4] as 'puback', messageId } as Packet);
    } else if (type === 3) {
      // Strict by construction: it takes only a well-formed property-less PUBLISH (QoS 0..2,
      // UTF-8 topic, zero property length); #onPublish checks U+0000, packet id 0 and DUP.
      const plain = decodePlainPublish(raw, this.#version);
      if (plain !== undefined) return this.#handlePacket(plain as IPublishPacket);
    }
    const collected: Collected | undefined = this.#version === 5 && (type === 3 || type === 1) ? {} : undefined;
    const violation = validatePacket(raw, this.#version, collected);
    if (violation !== undefined) return this.#refuseMalformed(violation);
    if (type === 15 && this.#state === 'connected') {
      // AUTH without an Authentication Method is a protocol error (MQTT 5.0 3.15.2.2.2); with
      // one, after a CONNECT without enhanced authentication, it asks for a method we do not offer.
      if (!hasAuthenticationMethod(raw)) return this.#fail(ReasonCode.ProtocolError, 'AUTH without an Authentication Method on a connection that did not start enhanced authentication');
      return this.#fail(ReasonCode.BadAuthenticationMethod, 'enhanced authentication (AUTH) is not supported');
    }
    this.#userPropertiesIn = collected?.userProperties;
    this.#parser ??= this.#newParser(this.#version);
    this.#parser.parse(raw);
    if (this.#parseError !== undefined) {
      const error = this.#parseError;
      this.#parseError = undefined;
      this.#parsed = [];
      return this.#fail(ReasonCode.MalformedPacket, error.message);
    }
    const packets = this.#parsed;
    this.#parsed = [];
    for (const packet of packets) this.#handlePacket(packet);
  }

  #handlePacket(packet: Packet): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'awaiting-connect') {
      void this.#onConnect(packet as IConnectPacket).catch((error: unknown) => this.#internalError(error));
      return;
    }
    if (this.#state === 'authenticating') return this.#onAuthStep(packet);
    if ((packet.cmd === 'puback' || packet.cmd === 'pubrec' || packet.cmd === 'pubrel' || packet.cmd === 'pubcomp') && !packet.messageId) {
      return this.#fail(ReasonCode.ProtocolError, `${packet.cmd.toUpperCase()} with packet identifier 0 (MQTT-2.3.1-1)`);
    }
    switch (packet.cmd) {
      case 'publish':
        return this.#onPublish(packet);
      case 'puback':
        this.#session?.ack(packet.messageId ?? 0);
        return;
      case 'pubrec':
        return onPubrec(this.#context, packet.messageId ?? 0, packet.reasonCode ?? 0);
      case 'pubrel':
        return onPubrel(this.#context, packet.messageId ?? 0);
      case 'pubcomp':
        this.#session?.ack(packet.messageId ?? 0);
        return;
      case 'subscribe':
        return this.#inOrder(() => onSubscribe(this.#context, packet));
      case 'unsubscribe':
        return this.#inOrder(() => onUnsubscribe(this.#context, packet));
      case 'pingreq':
        this.#send({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        return this.#onDisconnect(packet.reasonCode ?? 0, packet.properties?.sessionExpiryInterval);
      case 'connect':
        return this.#fail(ReasonCode.ProtocolError, 'a second CONNECT on one connection');
      case 'auth':
        return this.#fail(ReasonCode.BadAuthenticationMethod, 'enhanced authentication (AUTH) is not supported');
      default:
        return this.#fail(ReasonCode.ProtocolError, `a client must not send ${packet.cmd}`);
    }
  }

  // ---- CONNECT ---------------------------------------------------------------------------

  async #onConnect(packet: IConnectPacket): Promise<void> {
    this.#state = 'connecting';
    this.clock.clearTimeout(this.#timer);
    this.#pause(Pause.Connecting, true);
    const v5 = this.#version === 5;
    const properties = packet.properties ?? {};
    this.#problemInfo = properties.requestProblemInformation !== false;
    let clientId = packet.clientId ?? '';
    let assigned: string | undefined;
    if (!isCleanString(clientId)) return this.#refuse(ReasonCode.MalformedPacket, 'client identifier is not valid UTF-8 or contains U+0000');
    if (this.#version === 3 && (clientId.length === 0 || clientId.length > 23)) {
      return this.#refuse(ReasonCode.ClientIdentifierNotValid, 'MQTT 3.1 client identifiers are 1 to 23 characters');
    }
    const clean = packet.clean !== false;
    if (clientId.length === 0) {
      // MQTT-3.1.3-7/8: an empty id needs a clean session in 3.1.1; 5.0 assigns one always.
      if (!v5 && !clean) return this.#refuse(ReasonCode.ClientIdentifierNotValid, 'an empty client identifier needs clean session = 1');
      clientId = `auto-${randomBytes(9).toString('base64url')}`;
      assigned = v5 ? clientId : undefined;
    }
    let will: WillMessage | undefined;
    if (packet.will !== undefined && packet.will !== null) {
      const topic = packet.will.topic;
      const check = isCleanString(topic) ? checkTopicName(topic, this.#topicLimits()) : undefined;
      if (check === undefined || !check.ok) return this.#refuse(ReasonCode.TopicNameInvalid, `will topic ${JSON.stringify(topic)} is not a valid topic name`);
      const willProperties = packet.will.properties ?? {};
      const willUserProperties = this.#userPropertiesIn;
      will = {
        topic,
        payload: Buffer.isBuffer(packet.will.payload) ? packet.will.payload : Buffer.from(packet.will.payload ?? ''),
        qos: (packet.will.qos ?? 0) as QoS,
        retain: packet.will.retain === true,
        properties: messageProperties(willProperties, willUserProperties),
        delaySeconds: willProperties.willDelayInterval ?? 0,
      };
    }
    const refusal = this.#guard?.refusal;
    if (refusal !== undefined) {
      this.#guard?.log.warn(`connect-${refusal.kind}`, { remote: this.transport.remoteAddress, clientId, detail: refusal.detail }, 'refused CONNECT over a connection limit');
      return this.#refuse(!v5 ? ReasonCode.ServerUnavailable : refusal.kind === 'rate' ? ReasonCode.ConnectionRateExceeded : ReasonCode.QuotaExceeded, refusal.detail);
    }
    if (this.registry.connected >= this.limits.maxConnections) {
      return this.#refuse(v5 ? ReasonCode.QuotaExceeded : ReasonCode.ServerUnavailable, `the broker is at its connection limit (${this.limits.maxConnections})`);
    }
    const authenticationMethod = v5 ? properties.authenticationMethod : undefined;
    const auth = await this.#authenticateClient({
      clientId,
      username: packet.username,
      password: packet.password,
      remoteAddress: this.transport.remoteAddress,
      protocolVersion: this.#version,
      certificateName: this.transport.certificateName,
      authenticationMethod,
      authenticationData: v5 ? properties.authenticationData : undefined,
    });
    if (auth === undefined || this.#state !== 'connecting') return;
    const identity: ClientIdentity = {
      clientId,
      username: 'username' in auth ? auth.username : packet.username,
      remoteAddress: this.transport.remoteAddress,
      protocol: 'mqtt',
      ...(auth.attributes === undefined ? {} : { attributes: auth.attributes }),
    };
    const rewrite = this.broker.extras.rewrite;
    if (will !== undefined && rewrite !== undefined) {
      // The will is a publish of this client: the publish rewrite rules apply to it too, with
      // the authenticated user name.
      const topic = rewrite.publishTopic(will.topic, { clientId, username: identity.username });
      const check = checkTopicName(topic, this.#topicLimits());
      if (!check.ok) return this.#refuse(ReasonCode.TopicNameInvalid, `will topic ${JSON.stringify(will.topic)} is rewritten to ${JSON.stringify(topic)}, which is not a valid topic name`);
      will.topic = topic;
    }

    // Session expiry: 5.0 says it; 3.1.1 persistent sessions last the broker's maximum.
    let expiry = v5 ? (properties.sessionExpiryInterval ?? 0) : clean ? 0 : this.limits.maxSessionExpiry;
    const expiryCapped = v5 && expiry > this.limits.maxSessionExpiry;
    if (expiryCapped) expiry = this.limits.maxSessionExpiry;
    this.#sessionExpiry = expiry;
    // Keep-alive: the server may shorten it (5.0 Server Keep Alive).
    let keepAlive = packet.keepalive ?? 0;
    let serverKeepAlive: number | undefined;
    if (v5 && this.limits.serverKeepAlive > 0) serverKeepAlive = this.limits.serverKeepAlive;
    else if (v5 && keepAlive > this.limits.maxKeepAlive) serverKeepAlive = this.limits.maxKeepAlive;
    if (serverKeepAlive !== undefined) keepAlive = serverKeepAlive;
    this.#keepAliveMs = keepAlive * 1000;
    if (v5) {
      this.inFlightMaximum = Math.min(properties.receiveMaximum ?? 65_535, this.limits.maxInflight);
      this.#outbound = new OutboundPublishes(this.#version, properties.maximumPacketSize ?? Number.POSITIVE_INFINITY, properties.topicAliasMaximum ?? 0);
    } else {
      this.#outbound = new OutboundPublishes(this.#version, Number.POSITIVE_INFINITY, 0);
      this.inFlightMaximum = this.limits.maxInflight;
    }
    if (this.broker.closed) return this.#refuse(v5 ? ReasonCode.ServerShuttingDown : ReasonCode.ServerUnavailable, 'the broker is shutting down');
    this.#clientId = clientId;
    this.#count(true);
    let result: Awaited<ReturnType<Broker['connect']>>;
    try {
      result = await this.broker.connect({ clientId, cleanStart: clean, expirySeconds: expiry, will, protocolVersion: this.#version, sink: this, identity });
    } catch (error) {
      this.#count(false);
      this.#clientId = '';
      // A session that must be written (persistent, or ending an old one) cannot start while
      // writes are blocked: "server unavailable" (5.0 0x88, 3.x 0x03) says to come back later.
      if (!this.broker.writeGate.open) return this.#refuse(ReasonCode.ServerUnavailable, `the session cannot be stored now (${this.broker.writeGate.blocks.map((block) => block.reason).join(', ')})`);
      throw error;
    }
    const autoSubscribed = await this.#autoSubscribe(result.session);
    if (this.#state !== 'connecting') {
      // The socket closed while the session was being set up.
      await this.broker.disconnect(result.session, this, { publishWill: true });
      return;
    }
    this.#session = result.session;
    this.#state = 'connected';
    this.#connectedAt = this.clock.now();
    // Idle connections (PINGREQ only) and plain PUBLISH/ack traffic need no general parser:
    // let go of the one CONNECT used, with its buffers, until a packet needs it.
    this.#parser = undefined;
    // QoS 2 publishes the client sent on an earlier connection and has not released (PUBREL)
    // are still in flight for it.
    this.#inboundInFlight = result.session.publishKeyCount;
    // MQTT 3.1 has no session present flag: its acknowledge flags byte is reserved (0).
    const connack: Packet = { cmd: 'connack', sessionPresent: this.#version !== 3 && result.sessionPresent, returnCode: 0, reasonCode: 0 };
    if (v5) {
      connack.properties = {
        receiveMaximum: this.limits.maxInflight,
        maximumPacketSize: this.limits.maxPacketSize,
        topicAliasMaximum: this.limits.topicAliasMaximum,
        retainAvailable: true,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: true,
        sharedSubscriptionAvailable: true,
        ...(assigned === undefined ? {} : { assignedClientIdentifier: assigned }),
        ...(serverKeepAlive === undefined ? {} : { serverKeepAlive }),
        ...(expiryCapped ? { sessionExpiryInterval: expiry } : {}),
        ...(authenticationMethod === undefined ? {} : { authenticationMethod }),
        ...(auth.authenticationData === undefined ? {} : { authenticationData: auth.authenticationData }),
      };
      // MQTT-3.1.2-28: Response Information only to a client that asked for it.
      const responseInformation = properties.requestResponseInformation === true ? responseInformationFor(this.broker, clientId, identity.username) : undefined;
      if (responseInformation !== undefined) connack.properties.responseInformation = responseInformation;
    }
    this.#send(connack);
    this.logger.debug({ clientId, remote: this.transport.remoteAddress, version: this.#version, sessionPresent: result.sessionPresent }, 'client connected');
    this.#armKeepAlive();
    result.session.attach(this);
    for (const entry of autoSubscribed) this.broker.deliverRetained(result.session, entry.filter, entry.options, entry.isNew);
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const [index, raw] of early.entries()) {
      if (this.#state !== 'connected') return;
      if (this.#isOrdering()) {
        this.#ordered?.push(...early.slice(index));
        break;
      }
      this.#handleRaw(raw);
    }
    this.#pause(Pause.Connecting, false);
  }

  // ---- authentication ----------------------------------------------------------------------

  /** Runs the hook, and the AUTH exchange while it challenges; undefined once refused or closed. */
  async #authenticateClient(request: ConnectRequestInfo): Promise<Extract<AuthOutcome, { ok: true }> | undefined> {
    let outcome = await this.authenticate(request);
    while (outcome.ok === 'continue') {
      if (this.#state !== 'connecting' || request.authenticationMethod === undefined) {
        if (this.#state === 'connecting') this.#refuse(ReasonCode.BadAuthenticationMethod, 'a challenge without an authentication method');
        return undefined;
      }
      const data = await this.#challenge(request.authenticationMethod, outcome.authenticationData);
      if (data === false) return undefined;
      outcome = await outcome.next(data);
    }
    if (this.#state !== 'connecting') return undefined;
    if (outcome.ok === false) {
      const code = outcome.reason === 'bad-credentials' ? ReasonCode.BadUserNameOrPassword : outcome.reason === 'bad-method' ? ReasonCode.BadAuthenticationMethod : ReasonCode.NotAuthorized;
      this.#refuse(code, outcome.reason === 'bad-method' ? (outcome.detail ?? 'authentication method not supported') : 'authentication failed');
      return undefined;
    }
    return outcome;
  }

  #authWaiter: ((data: Buffer | undefined | false) => void) | undefined;
  #authMethod = '';

  /**
   * Sends AUTH 0x18 with the challenge and reads until the client's AUTH: its data, or false when
   * the connection ended. The connect timeout bounds each round.
   */
  #challenge(method: string, data: Buffer): Promise<Buffer | undefined | false> {
    return new Promise((resolve) => {
      this.#authWaiter = resolve;
      this.#authMethod = method;
      this.#state = 'authenticating';
      this.#send({ cmd: 'auth', reasonCode: CONTINUE_AUTHENTICATION, properties: { authenticationMethod: method, authenticationData: data } } as Packet);
      this.#timer = this.clock.setTimeout(() => this.#fail(ReasonCode.NotAuthorized, 'no AUTH answer within the connect timeout'), this.limits.connectTimeoutMs);
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const raw of early) if (this.#state === 'authenticating') this.#handleRaw(raw);
      if (this.#state === 'authenticating') this.#pause(Pause.Connecting, false);
    });
  }

  #onAuthStep(packet: Packet): void {
    if (packet.cmd === 'disconnect') return this.#close();
    if (packet.cmd !== 'auth') return this.#fail(ReasonCode.ProtocolError, `${packet.cmd.toUpperCase()} during enhanced authentication`);
    if (packet.reasonCode !== CONTINUE_AUTHENTICATION) return this.#fail(ReasonCode.ProtocolError, `AUTH reason code 0x${(packet.reasonCode ?? 0).toString(16)} during the exchange (expected 0x18)`);
    if (packet.properties?.authenticationMethod !== this.#authMethod) return this.#fail(ReasonCode.ProtocolError, 'AUTH with another authentication method than CONNECT');
    this.clock.clearTimeout(this.#timer);
    this.#state = 'connecting';
    this.#pause(Pause.Connecting, true);
    const waiter = this.#authWaiter;
    this.#authWaiter = undefined;
    waiter?.(packet.properties?.authenticationData);
  }

  /** The auto-subscribe rules' subscriptions, made before CONNACK (their retained messages follow it). */
  async #autoSubscribe(session: Session): Promise<AutoSubscribed[]> {
    if (this.broker.extras.autoSubscribe === undefined) return [];
    try {
      const { subscribed, skipped } = await applyAutoSubscribe(this.broker, session, this.#topicLimits());
      if (skipped.length > 0) this.logger.debug({ clientId: this.#clientId, skipped }, 'auto-subscribe rules that did not apply to this client');
      return subscribed;
    } catch (error) {
      // The session is connected by now; failing the connection here would leave it claimed by
      // a closed connection. The client is served without the rule's subscriptions instead.
      this.logger.error({ err: error, clientId: this.#clientId }, 'auto-subscribe failed for a client; it connects without those subscriptions');
      return [];
    }
  }

  /** The identity the rewrite rules fill placeholders from. */
  #rewriteIdentity(): { clientId: string; username: string | undefined } {
    return this.broker.identityOf(this.#clientId) ?? { clientId: this.#clientId, username: undefined };
  }

  #topicLimits(): { levelsMax: number; bytesMax: number } {
    return { levelsMax: this.limits.maxTopicLevels, bytesMax: this.limits.maxTopicLength };
  }

  // ---- PUBLISH in ------------------------------------------------------------------------

  #onPublish(packet: IPublishPacket): void {
    const session = this.#session;
    if (session === undefined) return;
    let topic = packet.topic;
    const alias = packet.properties?.topicAlias;
    if (alias !== undefined) {
      if (alias === 0 || alias > this.limits.topicAliasMaximum) return this.#fail(ReasonCode.TopicAliasInvalid, `topic alias ${alias} is outside 1..${this.limits.topicAliasMaximum}`);
      this.#topicAliasesIn ??= new Map();
      if (topic === '') {
        const known = this.#topicAliasesIn.get(alias);
        if (known === undefined) return this.#fail(ReasonCode.ProtocolError, `topic alias ${alias} was never set on this connection`);
        topic = known;
      } else this.#topicAliasesIn.set(alias, topic);
    }
    // Rewritten before the checks: access rules, routing and retained see the broker's name.
    const rewrite = this.broker.extras.rewrite;
    if (rewrite !== undefined && isCleanString(topic)) topic = rewrite.publishTopic(topic, this.#rewriteIdentity());
    if (topic !== this.#lastValidTopic) {
      if (!isCleanString(topic)) return this.#fail(ReasonCode.MalformedPacket, 'topic name contains U+0000 or is not valid UTF-8');
      const check = checkTopicName(topic, this.#topicLimits());
      if (!check.ok) return this.#fail(ReasonCode.TopicNameInvalid, check.detail);
      this.#lastValidTopic = topic;
    }
    const qos = packet.qos;
    const messageId = packet.messageId ?? 0;
    if (qos > 0 && messageId === 0) return this.#fail(ReasonCode.ProtocolError, 'a QoS 1/2 PUBLISH needs a non-zero packet identifier (MQTT-2.3.1-1)');
    if (qos === 0 && packet.dup) return this.#fail(ReasonCode.MalformedPacket, 'DUP must be 0 on a QoS 0 PUBLISH (MQTT-3.3.1-2)');
    const overLimit = this.#guard === undefined ? 'ok' : this.#overPublishLimit(packet);
    if (overLimit === 'close') return;
    const inboundQos2 = session.publishKeys;
    const known = qos === 2 ? inboundQos2.get(messageId) : undefined;
    if (known !== undefined) {
      // A resent QoS 2 PUBLISH (DUP), possibly on a new connection of the session: stored once
      // already, or being stored. PUBREC again (MQTT 4.3.3) on this connection, once stored.
      const pubrec = (): void => this.#send({ cmd: 'pubrec', messageId, ...(this.#version === 5 ? { reasonCode: 0 } : {}) } as Packet);
      if (known === true) pubrec();
      // `known` never rejects (it resolves false when storing failed); the handler is for the rule.
      else known.then((stored) => stored && pubrec(), (error: unknown) => this.#internalError(error));
      return;
    }
    if (qos > 0) {
      if (this.#version === 5 && this.#inboundInFlight >= this.limits.maxInflight) return this.#fail(ReasonCode.ReceiveMaximumExceeded, `more than ${this.limits.maxInflight} QoS 1/2 publishes in flight`);
      this.#inboundInFlight += 1;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const properties = this.#version === 5 && packet.properties !== undefined ? messageProperties(packet.properties, this.#userPropertiesIn) : undefined;
    const ack: PendingAck | undefined = qos > 0 ? { done: false, packet: undefined, message: undefined } : undefined;
    if (ack !== undefined) {
      const queue = (this.#ackQueue ??= []);
      queue.push(ack);
      // 3.x clients cannot be told a Receive Maximum: past --max-inflight publishes still being
      // stored, stop reading from them until acks go out. (Counting stores, not packet ids: a
      // QoS 2 id is only freed by the client's PUBREL, which must still be read.)
      if (this.#version !== 5 && queue.length >= this.limits.maxInflight) this.#pause(Pause.Inflight, true);
    }
    if (overLimit === 'refuse') {
      // 5.0 only (3.x was closed above): refused, not stored; QoS 0 has no answer and is dropped.
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, ReasonCode.QuotaExceeded, `more than ${this.limits.maxPublishBytesRate} payload bytes per second`);
      return;
    }
    if (properties?.payloadFormatIndicator === true && !isUtf8(payload)) {
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, ReasonCode.PayloadFormatInvalid, 'payload format indicator says UTF-8 but the payload is not');
      return;
    }
    if (!this.broker.mayPublish(this.#clientId, topic)) return this.#refusePublish(ack, qos, messageId, topic);
    const message: Message = { topic, payload, qos, retain: packet.retain, publisherId: this.#clientId, timestamp: this.clock.now(), properties };
    let storedQos2: ((stored: boolean) => void) | undefined;
    if (qos === 2) inboundQos2.set(messageId, new Promise<boolean>((resolve) => (storedQos2 = resolve)));
    if (ack !== undefined) {
      ack.message = message;
      this.#ownMessages.awaitAck(message);
    }
    // What a waiting publish holds besides its payload: message, record, promises, closures.
    const size = payload.length + topic.length + 512;
    this.#publishBacklog += size;
    if (this.#publishBacklog > PUBLISH_BACKLOG_PAUSE_BYTES) this.#pause(Pause.Backlog, true);
    this.#publishesPending += 1;
    this.#publishSequence += 1;
    // Its packet's bytes stay counted in the inbound budget until the message is stored: the
    // journal's copy is made and the packet's can go.
    const budget = this.#reservations.takeHandling();
    this.#store({ message, ack, qos, messageId, size, storedQos2, sequence: this.#publishSequence, budget });
  }

  /** Arrival order of this connection's publishes (held ones are retried in it). */
  #publishSequence = 0;

  #releaseBudget(pending: PendingPublish): void {
    if (pending.budget !== undefined) this.registry.inboundBudget?.release(pending.budget);
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
        this.#session?.publishKeys.set(messageId, true);
        pending.storedQos2?.(true);
      }
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, matched ? ReasonCode.Success : ReasonCode.NoMatchingSubscribers, undefined);
    };
    // A QoS 2 publish of a session is stored once per packet id, across a crash too (engine).
    const session = this.#session;
    const publishing = pending.qos === 2 && session !== undefined ? this.broker.publishOnce(session, pending.messageId, pending.message, onStored) : this.broker.publish(pending.message, onStored);
    publishing.then(
      () => this.#publishDone(pending.size),
      (error: unknown) => {
        if (!stored) return this.#storeFailed(pending, error);
        this.#publishDone(pending.size);
        this.logger.error({ err: error, clientId: this.#clientId, topic: pending.message.topic }, 'a stored publish failed afterwards');
      },
    );
  }

  #storeFailed(pending: PendingPublish, error: unknown): void {
    const { ack, qos, messageId, message } = pending;
    const blocked = isWritesBlocked(error);
    // 3.x has no failure ack: the publish waits for the gate instead (write-refusal.ts).
    if (blocked && ack !== undefined && this.#version !== 5 && this.#state !== 'closed') return this.#heldPublishes.hold(pending);
    this.#releaseBudget(pending);
    this.#publishDone(pending.size);
    if (qos === 2) {
      this.#session?.publishKeys.delete(messageId);
      pending.storedQos2?.(false);
    }
    const code = (error as { code?: string }).code;
    if (blocked) {
      // The node logs the gate's changes; one line per refused publish would flood the log.
      this.logger.debug({ clientId: this.#clientId, topic: message.topic, qos, code }, 'publish refused: writes are blocked');
      if (ack !== undefined) this.#completeAck(ack, qos, messageId, writesBlockedReasonCode(error), (error as Error).message);
      return;
    }
    this.logger.warn({ err: error, clientId: this.#clientId, topic: message.topic }, 'publish failed');
    if (ack === undefined) return;
    if (this.#version !== 5) return this.#fail(ReasonCode.UnspecifiedError, 'the message could not be stored');
    const refusal = delayedRefusal(code);
    if (refusal !== undefined) return this.#completeAck(ack, qos, messageId, refusal, (error as Error).message);
    this.#completeAck(ack, qos, messageId, code === 'SL_JOURNAL_OVERLOADED' ? ReasonCode.QuotaExceeded : ReasonCode.UnspecifiedError, `the message could not be stored (${code ?? 'error'})`);
  }

  // ---- 3.x publishes held while writes are blocked -----------------------------------------

  /** The connection ended: held publishes are forgotten (the client resends them on its next connection). */
  #dropHeld(): void {
    for (const pending of this.#heldPublishes.drop()) {
      this.#releaseBudget(pending);
      this.#publishDone(pending.size);
      if (pending.qos === 2) {
        this.#session?.publishKeys.delete(pending.messageId);
        pending.storedQos2?.(false);
      }
    }
  }

  /**
   * A publish the access policy refuses: 5.0 QoS 1/2 get PUBACK/PUBREC 0x87; 3.x has no way to
   * say it, so the message is acknowledged and dropped (as is any QoS 0), and logged.
   */
  #refusePublish(ack: PendingAck | undefined, qos: QoS, messageId: number, topic: string): void {
    const refused = this.#countDenied();
    this.logger[refused === 1 ? 'warn' : 'debug']({ clientId: this.#clientId, remote: this.transport.remoteAddress, topic, qos, refused }, 'publish not authorized: message dropped');
    if (ack === undefined) return;
    // 3.x QoS 2: the PUBREL that follows the PUBREC must find the flow, as for a stored message.
    if (this.#version !== 5 && qos === 2) this.#session?.publishKeys.set(messageId, true);
    this.#completeAck(ack, qos, messageId, this.#version === 5 ? ReasonCode.NotAuthorized : ReasonCode.Success, 'not authorized to publish to this topic');
  }

  /** Refused publishes and subscriptions on this connection (the first is logged at warn, the rest at debug). */
  #deniedCount = 0;

  #countDenied(): number {
    this.#deniedCount += 1;
    return this.#deniedCount;
  }

  /** Publish rate limits: over the message rate the connection ends (0x96); over the byte rate a 5.0 publish is refused (0x97). */
  #overPublishLimit(packet: IPublishPacket): 'ok' | 'refuse' | 'close' {
    const guard = this.#guard as ClientGuard;
    const bytes = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
    const verdict = guard.publish(this, bytes);
    if (verdict === 'ok') return 'ok';
    const detail = verdict === 'message-rate' ? `more than ${this.limits.maxPublishRate} PUBLISH packets per second` : `more than ${this.limits.maxPublishBytesRate} payload bytes per second`;
    guard.log.warn(verdict, { clientId: this.#clientId, remote: this.transport.remoteAddress, detail }, verdict === 'message-rate' || this.#version !== 5 ? 'closing a client over a publish rate limit' : 'refused a publish over the byte rate limit');
    if (verdict === 'byte-rate' && this.#version === 5) return 'refuse';
    this.#fail(verdict === 'message-rate' ? ReasonCode.MessageRateTooHigh : ReasonCode.QuotaExceeded, detail);
    return 'close';
  }

  #inboundDone(): void {
    if (this.#inboundInFlight > 0) this.#inboundInFlight -= 1;
  }

  #pause(reason: Pause, on: boolean): void {
    const before = this.#pausedFor;
    this.#pausedFor = on ? before | reason : before & ~reason;
    if (this.#state === 'closed') return;
    if (before === 0 && this.#pausedFor !== 0) this.transport.pause();
    else if (before !== 0 && this.#pausedFor === 0) this.transport.resume();
  }

  /** A publish was handed to its subscribers, or failed. */
  #publishDone(size: number): void {
    this.#publishBacklog -= size;
    if (this.#publishBacklog <= PUBLISH_BACKLOG_PAUSE_BYTES / 2) this.#pause(Pause.Backlog, false);
    this.#publishesPending -= 1;
    if (this.#publishesPending > 0) return;
    const settled = this.#publishesSettled;
    this.#publishesSettled = undefined;
    settled?.();
  }

  /**
   * Runs a SUBSCRIBE or UNSUBSCRIBE once every publish this connection sent before it has been
   * handed to subscribers, and keeps the packets after it until it is answered, so a
   * connection's packets take effect in the order they were sent: a message the client
   * published before subscribing never comes back through that subscription, and one published
   * after it does. No publish of this connection starts while it waits (the packets after it
   * are kept), so waiting for none pending waits for exactly the earlier ones.
   */
  #inOrder(step: () => Promise<void>): void {
    this.#ordered = [];
    this.#pause(Pause.Ordering, true);
    const earlier = this.#publishesPending === 0 ? undefined : new Promise<void>((resolve) => (this.#publishesSettled = resolve));
    void (async () => {
      if (earlier !== undefined) await earlier;
      if (this.#state === 'connected') await step();
    })()
      .catch((error: unknown) => this.#internalError(error))
      .finally(() => this.#releaseOrdered());
  }

  #isOrdering(): boolean {
    return this.#ordered !== undefined;
  }

  /** Handles the packets kept behind a SUBSCRIBE or UNSUBSCRIBE, until the next one of those. */
  #releaseOrdered(): void {
    const kept = this.#ordered ?? [];
    this.#ordered = undefined;
    for (const [index, raw] of kept.entries()) {
      if (this.#state !== 'connected') return;
      if (this.#isOrdering()) {
        // A SUBSCRIBE among them waits in turn: the rest stay behind it.
        (this.#ordered as unknown as Buffer[]).push(...kept.slice(index));
        return;
      }
      this.#handleRaw(raw);
    }
    if (!this.#isOrdering()) this.#pause(Pause.Ordering, false);
  }

  /** Acks go out in the order the publishes came in (MQTT-4.6.0-2/3), whatever shard was faster. */
  #completeAck(ack: PendingAck, qos: QoS, messageId: number, reasonCode: number, reasonString: string | undefined): void {
    const failed = reasonCode >= 0x80;
    if (qos === 1 || failed) this.#inboundDone();
    if (qos === 2 && failed) this.#session?.publishKeys.delete(messageId);
    ack.done = true;
    ack.packet = { cmd: qos === 1 ? 'puback' : 'pubrec', messageId, ...(this.#version === 5 ? { reasonCode, ...this.#reason(reasonString) } : {}) } as Packet;
    const queue = this.#ackQueue ?? [];
    while (queue.length > 0 && (queue[0] as PendingAck).done) {
      const head = queue.shift() as PendingAck;
      if (head.packet !== undefined) this.#send(head.packet);
      if (head.message !== undefined && this.#ownMessages.acknowledged(head.message, this.#state === 'connected')) this.#session?.resume();
    }
    if (queue.length < this.limits.maxInflight) this.#pause(Pause.Inflight, false);
  }

  // ---- DISCONNECT, keep-alive, closing -------------------------------------------------------

  #onDisconnect(reasonCode: number, expiry: number | undefined): void {
    if (expiry !== undefined) {
      // MQTT-3.14.2-2: a session that was to end at disconnect cannot be given a lifetime now.
      if (this.#sessionExpiry === 0 && expiry > 0) return this.#fail(ReasonCode.ProtocolError, 'session expiry interval cannot change from 0 on DISCONNECT');
      this.#sessionExpiry = Math.min(expiry, this.limits.maxSessionExpiry);
    }
    this.#willOnClose = reasonCode === ReasonCode.DisconnectWithWillMessage;
    this.#close();
  }

  #armKeepAlive(): void {
    if (this.#keepAliveMs === 0 || this.#state !== 'connected') return;
    // MQTT-3.1.2-24: one and a half times the keep-alive without a packet ends the connection.
    const limit = this.#keepAliveMs * 1.5;
    const wait = Math.max(1, this.#lastPacketAt + limit - this.clock.now());
    this.#timer = this.clock.setTimeout(() => {
      if (this.#state !== 'connected') return;
      // While we are not reading (backpressure), silence is ours, not the client's.
      if (this.#pausedFor !== 0) this.#lastPacketAt = this.clock.now();
      if (this.clock.now() - this.#lastPacketAt >= limit) this.#fail(ReasonCode.KeepAliveTimeout, `no packet within 1.5 x keep-alive (${this.#keepAliveMs / 1000} s)`);
      else this.#armKeepAlive();
    }, wait);
  }

  #connectTimedOut(): void {
    if (this.#state !== 'awaiting-connect') return;
    this.logger.debug({ remote: this.transport.remoteAddress }, 'no CONNECT within the connect timeout; closing');
    this.#close();
  }

  /** The transport closed (by either side). */
  onClose(): void {
    if (this.#state === 'closed') return;
    this.#close();
  }

  onDrain(): void {
    this.#session?.resume();
  }

  #refuseVersion(detail: string): void {
    // The version is unknown, so answer in the 3.1.1 form, which every level understands.
    this.#writePacket({ cmd: 'connack', sessionPresent: false, returnCode: 1 }, 4);
    this.logger.debug({ remote: this.transport.remoteAddress, detail }, 'refused CONNECT');
    this.#close();
  }

  /** Refuses a CONNECT with a CONNACK code in the client's version, then closes. */
  #refuse(code: ReasonCode, detail: string): void {
    if (this.#version === 5) this.#send({ cmd: 'connack', sessionPresent: false, reasonCode: code, properties: this.#reason(detail).properties ?? {} } as Packet);
    else {
      const returnCode = code === ReasonCode.ClientIdentifierNotValid ? 2 : code === ReasonCode.ServerUnavailable || code === ReasonCode.QuotaExceeded ? 3 : code === ReasonCode.BadUserNameOrPassword ? 4 : code === ReasonCode.NotAuthorized ? 5 : undefined;
      if (returnCode !== undefined) this.#send({ cmd: 'connack', sessionPresent: false, returnCode });
    }
    this.logger.debug({ remote: this.transport.remoteAddress, reasonCode: code, reason: reasonName(code), detail }, 'refused CONNECT');
    this.#close();
  }

  /** Ends the connection for a protocol violation, with a reason code where the version has one. */
  #fail(code: ReasonCode, detail: string, silent = false): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'awaiting-connect' || this.#state === 'connecting' || this.#state === 'authenticating') {
      if (!silent && this.#state !== 'awaiting-connect') return this.#refuse(code, detail);
      this.logger.debug({ remote: this.transport.remoteAddress, reasonCode: code, detail }, 'closing a connection before CONNACK');
      if (!silent && this.#version === 5 && code === ReasonCode.MalformedPacket) this.#send({ cmd: 'connack', sessionPresent: false, reasonCode: code } as Packet);
      this.#close();
      return;
    }
    if (this.#version === 5) this.#send({ cmd: 'disconnect', reasonCode: code, ...this.#reason(detail) } as Packet);
    this.logger.debug({ clientId: this.#clientId, remote: this.transport.remoteAddress, reasonCode: code, reason: reasonName(code), detail }, 'closing a connection for a protocol error');
    this.#close();
  }

  /**
   * A packet packet-validation refused: before CONNECT is accepted a 5.0 client gets CONNACK
   * with the code (3.x has no code for it: closed), afterwards DISCONNECT (3.x: closed).
   */
  #refuseMalformed(violation: Violation): void {
    if (this.#state === 'awaiting-connect') {
      this.logger.debug({ remote: this.transport.remoteAddress, reasonCode: violation.code, detail: violation.detail }, 'refused a malformed CONNECT');
      if (this.#version === 5) this.#send({ cmd: 'connack', sessionPresent: false, reasonCode: violation.code } as Packet);
      return this.#close();
    }
    this.#fail(violation.code, violation.detail);
  }

  #internalError(error: unknown): void {
    this.logger.error({ err: error, clientId: this.#clientId }, 'internal error on a connection');
    this.#fail(ReasonCode.UnspecifiedError, 'internal error');
  }

  #close(): void {
    const wasState = this.#state;
    if (wasState === 'closed') return;
    this.#state = 'closed';
    this.#dropHeld();
    this.clock.clearTimeout(this.#timer);
    this.#reservations.releaseReceiving();
    this.transport.end();
    this.#count(false);
    // An AUTH exchange in progress ends with the connection.
    const authWaiter = this.#authWaiter;
    this.#authWaiter = undefined;
    authWaiter?.(false);
    if (wasState === 'connected' && this.#session !== undefined) {
      const session = this.#session;
      this.broker
        .disconnect(session, this, { publishWill: this.#willOnClose, expirySeconds: this.#sessionExpiry })
        .catch((error: unknown) => this.logger.error({ err: error, clientId: this.#clientId }, 'recording a disconnect failed'));
    }
  }

  /** Counts this connection toward --max-connections once, and uncounts it once. */
  #count(on: boolean): void {
    if (on === this.#counted) return;
    this.#counted = on;
    this.registry.connected += on ? 1 : -1;
  }

  #counted = false;

  // ---- DeliverySink ------------------------------------------------------------------------

  send(delivery: Delivery): SendResult {
    if (this.#state !== 'connected') return SendResult.SentFull;
    const packet = this.#outbound.encode(delivery, this.clock.now());
    if (packet === undefined) return SendResult.Skipped;
    return this.#ownMessages.write(delivery.message, packet.head, packet.payload);
  }

  describe(): ConnectionInfo {
    return { protocol: 'mqtt', protocolVersion: this.#version, remoteAddress: this.transport.remoteAddress, connectedAt: this.#connectedAt, keepAliveSeconds: this.#keepAliveMs / 1000 };
  }

  #connectedAt = 0;

  assignTag(delivery: Delivery, inUse: (packetId: number) => boolean): number {
    return this.#packetIds.assign(delivery, inUse);
  }

  /** A QoS 2 delivery the client had received (PUBREC) before it reconnected: PUBREL again. */
  resumeHeld(packetId: number): void {
    this.#send({ cmd: 'pubrel', messageId: packetId, ...(this.#version === 5 ? { reasonCode: 0 } : {}) } as Packet);
  }

  close(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    // An operator's kick is a server-side disconnect like a protocol error: the will is due.
    if (reason === 'administrative-action') return this.#fail(ReasonCode.AdministrativeAction, 'disconnected by an operator');
    const code = reason === 'session-taken-over' ? ReasonCode.SessionTakenOver : ReasonCode.ServerShuttingDown;
    // Before CONNACK a DISCONNECT is not allowed (MQTT-3.14.0-1): just close.
    if (this.#version === 5 && this.#state === 'connected') this.#send({ cmd: 'disconnect', reasonCode: code } as Packet);
    // The broker already moved or closed the session: no will, no disconnect bookkeeping.
    this.#count(false);
    this.#state = 'closed';
    this.#dropHeld();
    this.clock.clearTimeout(this.#timer);
    this.#reservations.releaseReceiving();
    this.transport.end();
  }

  // ---- output helpers ----------------------------------------------------------------------

  #reason(detail: string | undefined): { properties?: { reasonString: string } } {
    return this.#version === 5 && this.#problemInfo && detail !== undefined ? { properties: { reasonString: detail.slice(0, 200) } } : {};
  }

  #send(packet: Packet): void {
    if (this.#state === 'closed' && packet.cmd !== 'connack' && packet.cmd !== 'disconnect') return;
    this.#writePacket(packet, this.#version);
  }

  #writePacket(packet: Packet, version: number): void {
    this.transport.write(mqttPacket.generate(packet, { protocolVersion: version as 3 | 4 | 5 }));
  }
}
