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
import mqttPacket from 'mqtt-packet';
import type { IConnectPacket, IPublishPacket, Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { AuthOutcome, Broker, ClientIdentity, Clock, CloseReason, ConnectionInfo, Delivery, DeliverySink, Session } from '../../engine/index.js';
import { TimerWheel, type WheelSlot } from '../../base/index.js';
import { applyAutoSubscribe, checkTopicName, responseInformationFor, SendResult, type AutoSubscribed } from '../../engine/index.js';
import type { ClientGuard } from '../listener/index.js';
import type { MqttLimits } from './limits.js';
import { acceptEveryone, AuthExchange, authenticationRefusal, type Authenticate, type ConnectRequestInfo } from './authentication.js';
import { connackFor, readConnect, sessionTerms } from './connect.js';
import { PacketFramer } from './framing.js';
import { hasAuthenticationMethod, validatePacket, type Collected, type UserProperty, type Violation } from './packet-validation.js';
import { INBOUND_UNRESERVED_BYTES, type InboundBudget } from '../listener/index.js';
import { decodePlainPublish } from './publish-decoder.js';
import { OutboundPublishes } from './outbound-publishes.js';
import { connectLevel } from './packet-checks.js';
import { OutboundPacketIds } from './packet-ids.js';
import { ReasonCode, reasonName } from './reason-codes.js';
import { onSubscribe, onUnsubscribe, type SubscribeContext } from './subscribe.js';
import { onPubrec, onPubrel, type AckContext } from './acks.js';
import { encodePlainAck } from './ack-encoder.js';
import { OwnMessageHold } from './own-message-hold.js';
import { InboundPublishes, type InboundContext } from './inbound-publishes.js';
import { PacketReservations } from './packet-reservations.js';

export type { Authenticate, ConnectRequestInfo } from './authentication.js';

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

/** Shared by the connections of one node: the connected count for max-connections, the inbound budget. */
export interface ConnectionRegistry {
  connected: number;
  /** Bytes all connections may hold in large inbound packets (--max-inbound-bytes); none: no node-wide bound. */
  inboundBudget?: InboundBudget;
}

type State = 'awaiting-connect' | 'connecting' | 'authenticating' | 'connected' | 'closed';

const ACK_COMMANDS = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;

/**
 * Keep-alive deadlines of every connection on one clock sit in one timer wheel (base/timer-wheel.ts)
 * with this resolution: a silent client is closed at 1.5 x its keep-alive, at most this much later.
 */
export const KEEP_ALIVE_TICK_MS = 250;

/** Connect-phase timers (connect timeout, AUTH rounds) are short-lived; only the keep-alive is on the wheel. */
const keepAliveWheels = new WeakMap<Clock, TimerWheel<MqttConnection>>();

/** Set in MqttConnection's static block: the wheel's one callback, and the handlers' view of a connection. */
let keepAliveDue: (connection: MqttConnection) => void;
let handlerContextOf: (connection: MqttConnection) => HandlerContext;

type HandlerContext = SubscribeContext & AckContext & InboundContext;

/**
 * Encoders of clients without topic aliases or a Maximum Packet Size (every 3.x client, most 5.0
 * ones), by protocol level: without aliases an encoder holds no state, so connections share one.
 */
const SHARED_OUTBOUND = new Map([3, 4, 5].map((level) => [level, new OutboundPublishes(level, Number.POSITIVE_INFINITY, 0)]));

/** Before CONNECT nothing is sent; CONNECT replaces it with the client's terms. */
const NOT_CONNECTED_OUTBOUND = SHARED_OUTBOUND.get(4) as OutboundPublishes;

/**
 * mqtt-packet's parsers, one per protocol level, shared by every connection: a connection hands
 * it one whole packet at a time (the framer cut it, packet-validation checked it) and parsing is
 * synchronous, so nothing of one connection's packet is left in it for the next. A parser per
 * connection cost a stream-backed buffer list and an event emitter at every CONNECT.
 */
const sharedParsers = new Map<number, SharedParser>();

interface SharedParser {
  parser: ReturnType<typeof mqttPacket.parser>;
  packets: Packet[];
  error: Error | undefined;
}

/** The one packet in `raw`, or the parser's error. */
function parseWhole(raw: Buffer, version: number): Packet | Error {
  let shared = sharedParsers.get(version);
  if (shared === undefined) {
    const made: SharedParser = { parser: mqttPacket.parser({ protocolVersion: version as 3 | 4 | 5 }), packets: [], error: undefined };
    made.parser.on('packet', (packet: Packet) => made.packets.push(packet));
    made.parser.on('error', (error: Error) => (made.error ??= error));
    sharedParsers.set(version, made);
    shared = made;
  }
  const left = shared.parser.parse(raw);
  // Parsing a CONNECT makes the packet the parser's settings (its bridge flag included): back to
  // the level alone, as for a parser made for the next packet.
  (shared.parser as unknown as { settings: object }).settings = { protocolVersion: version };
  const { packets, error } = shared;
  shared.packets = [];
  shared.error = undefined;
  const packet = packets[0];
  if (error !== undefined || left !== 0 || packets.length !== 1 || packet === undefined) {
    // Whatever state it is in, no other connection's packet may meet it.
    sharedParsers.delete(version);
    return error ?? new Error(`the packet's length does not match its content (${packets.length} packet(s) parsed, ${left} byte(s) left)`);
  }
  return packet;
}

/** A connection's collaborators: the same for every connection a listener makes. */
interface ConnectionServices {
  readonly broker: Broker;
  readonly limits: MqttLimits;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: ConnectionRegistry;
  readonly authenticate: Authenticate;
}

/** By registry (one per node, shared by its listeners); weak, so a stopped node's go with it. */
const servicesByRegistry = new WeakMap<ConnectionRegistry, ConnectionServices>();

/**
 * The services object for these collaborators: the one made before when they are the same (a
 * node's listeners pass the same ones to every connection they make), else a new one. Six
 * fields per connection become one, 40 bytes less per idle connection.
 */
function servicesFor(broker: Broker, limits: MqttLimits, clock: Clock, logger: Logger, registry: ConnectionRegistry, authenticate: Authenticate): ConnectionServices {
  const known = servicesByRegistry.get(registry);
  if (known !== undefined && known.broker === broker && known.limits === limits && known.clock === clock && known.logger === logger && known.authenticate === authenticate) return known;
  const made = { broker, limits, clock, logger, registry, authenticate };
  servicesByRegistry.set(registry, made);
  return made;
}

enum Pause {
  Connecting = 1,
  Backlog = 2,
  Inflight = 4,
  /** A SUBSCRIBE or UNSUBSCRIBE is waiting for this connection's earlier publishes. */
  Ordering = 8,
  Budget = 16,
}

export class MqttConnection implements DeliverySink {
  #state: State = 'awaiting-connect';
  /**
   * Bytes of a packet not yet complete. Made when a chunk arrives and let go once a chunk ends
   * on a packet boundary: an idle connection holds none between its PINGREQs.
   */
  #framer: PacketFramer | undefined;
  #firstByteSeen = false;
  /** User Properties of the packet being handled, read from its bytes in the order sent (mqtt-packet groups them by name). */
  #userPropertiesIn: UserProperty[] | undefined;
  #version = 4;
  #clientId = '';
  #session: Session | undefined;
  #problemInfo = true;
  #keepAliveMs = 0;
  #lastPacketAt = 0;
  /** The connect timeout or an AUTH round's (clock timers: they end at CONNACK). */
  #timer: unknown;
  /** Where this connection's keep-alive deadline is on the wheel; 0: none. */
  #keepAliveSlot: WheelSlot = 0;
  #willOnClose = true;
  #sessionExpiry = 0;
  /** Packets that arrived while CONNECT was being processed. */
  #early: Buffer[] | undefined;
  /** Why reading from the transport is paused (bits of Pause); it resumes when none is left. */
  #pausedFor = 0;
  /** While a SUBSCRIBE or UNSUBSCRIBE waits for the publishes before it: the packets after it. */
  #ordered: Buffer[] | undefined;
  /** Made with the inbound flows: only a client's own publishes are held back behind their acks. */
  #ownMessages: OwnMessageHold | undefined;
  /** Made for the first packet large enough to reserve inbound budget. */
  #reservations: PacketReservations | undefined;
  // Outbound flow state.
  /** The client's Receive Maximum (5.0), bounded by max-inflight. */
  inFlightMaximum = 65_535;
  /** Made at the first QoS 1/2 delivery. */
  #packetIds: OutboundPacketIds | undefined;
  /** Set at CONNECT: nothing is sent before (send() refuses until connected). */
  #outbound = NOT_CONNECTED_OUTBOUND;

  /** What every connection of a listener shares (one object for all of them, see servicesFor). */
  readonly #services: ConnectionServices;

  constructor(
    private readonly transport: Transport,
    broker: Broker,
    limits: MqttLimits,
    clock: Clock,
    logger: Logger,
    registry: ConnectionRegistry,
    authenticate: Authenticate = acceptEveryone,
  ) {
    this.#services = servicesFor(broker, limits, clock, logger, registry, authenticate);
    this.#timer = clock.setTimeout(() => this.#connectTimedOut(), limits.connectTimeoutMs);
  }

  // On the prototype: the connection holds one reference to its services, not six.
  private get broker(): Broker {
    return this.#services.broker;
  }

  private get limits(): MqttLimits {
    return this.#services.limits;
  }

  private get clock(): Clock {
    return this.#services.clock;
  }

  private get logger(): Logger {
    return this.#services.logger;
  }

  private get registry(): ConnectionRegistry {
    return this.#services.registry;
  }

  private get authenticate(): Authenticate {
    return this.#services.authenticate;
  }

  static {
    keepAliveDue = (connection) => connection.#keepAliveDue();

    /**
     * What the handler modules see of a connection. Its getters and methods are on the class's
     * prototype, so a connection pays for one small object, made when a handler first needs it,
     * not for a closure and an accessor pair per member (about 3 KB per connection as an object
     * literal).
     */
    class Context implements HandlerContext {
      constructor(readonly client: MqttConnection) {}
      get broker(): Broker {
        return this.client.broker;
      }
      get logger(): Logger {
        return this.client.logger;
      }
      get clock(): Clock {
        return this.client.clock;
      }
      get limits(): MqttLimits {
        return this.client.limits;
      }
      get inboundBudget(): InboundBudget | undefined {
        return this.client.registry.inboundBudget;
      }
      get remoteAddress(): string {
        return this.client.transport.remoteAddress;
      }
      get version(): number {
        return this.client.#version;
      }
      get clientId(): string {
        return this.client.#clientId;
      }
      get session(): Session | undefined {
        return this.client.#session;
      }
      get guard(): ClientGuard | undefined {
        return this.client.#guard;
      }
      get problemInfo(): boolean {
        return this.client.#problemInfo;
      }
      get connected(): boolean {
        return this.client.#state === 'connected';
      }
      get closed(): boolean {
        return this.client.#state === 'closed';
      }
      get userPropertiesIn(): UserProperty[] | undefined {
        return this.client.#userPropertiesIn;
      }
      pause(reason: 'backlog' | 'inflight', on: boolean): void {
        this.client.#pause(reason === 'backlog' ? Pause.Backlog : Pause.Inflight, on);
      }
      takeBudget(): ReturnType<PacketReservations['takeHandling']> {
        return this.client.#reservations?.takeHandling();
      }
      topicLimits(): { levelsMax: number; bytesMax: number } {
        return this.client.#topicLimits();
      }
      rewriteIdentity(): { clientId: string; username: string | undefined } {
        return this.client.#rewriteIdentity();
      }
      countDenied(): number {
        return this.client.#countDenied();
      }
      reason(detail: string | undefined): { properties?: { reasonString: string } } {
        return this.client.#reason(detail);
      }
      send(packet: Packet): void {
        this.client.#send(packet);
      }
      fail(code: ReasonCode, detail: string): void {
        this.client.#fail(code, detail);
      }
      internalError(error: unknown): void {
        this.client.#internalError(error);
      }
      inboundDone(): void {
        this.client.#inbound?.done();
      }
    }
    handlerContextOf = (connection) => new Context(connection);
  }

  get clientId(): string {
    return this.#clientId;
  }

  /** The inbound PUBLISH flows (inbound-publishes.ts): made at the first PUBLISH (or QoS 2 flows resumed at CONNECT). */
  #inbound: InboundPublishes | undefined;

  get #inboundFlows(): InboundPublishes {
    return (this.#inbound ??= new InboundPublishes(this.#context, (this.#ownMessages = new OwnMessageHold(this.transport))));
  }

  #contextObject: HandlerContext | undefined;

  /** What the handler modules see of this connection (made when one first needs it). */
  get #context(): HandlerContext {
    return (this.#contextObject ??= handlerContextOf(this));
  }

  /** Whether a packet being received holds or waits for inbound budget (see websocket.ts). */
  get holdsInboundBudget(): boolean {
    return this.#reservations?.receiving === true;
  }

  /** Abuse limits for this connection (server.ts; none: no abuse limits, e.g. in-process tests). */
  guard(guard: ClientGuard): void {
    this.#guard = guard;
  }

  #guard: ClientGuard | undefined;


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
    // max-packet-size is a restart setting, so a framer made now has the one the first had.
    const framer = (this.#framer ??= new PacketFramer(this.limits.maxPacketSize));
    const framed = framer.push(chunk);
    if (framer.bufferedBytes === 0) this.#framer = undefined;
    if (framed.kind === 'malformed') return this.#fail(ReasonCode.MalformedPacket, framed.detail);
    if (framed.kind === 'too-large') return this.#fail(ReasonCode.PacketTooLarge, `packet of ${framed.size} bytes is over the maximum packet size of ${this.limits.maxPacketSize}`);
    // The packet that had a reservation is the first one the framer completes.
    if (this.#reservations?.receiving === true && framed.packets.length > 0) this.#reservations.startHandling();
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
      this.#reservations?.releaseHandling();
    }
    this.#reservations?.releaseHandling();
    // Packets too small to reserve budget for (all of an idle connection's) need no reservations object.
    const partial = this.#framer?.partialPacketBytes ?? 0;
    if ((this.#state as State) !== 'closed' && partial > INBOUND_UNRESERVED_BYTES && this.registry.inboundBudget !== undefined) {
      (this.#reservations ??= new PacketReservations(this.registry, (on) => this.#pause(Pause.Budget, on))).reserve(partial);
    }
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
      // UTF-8 topic, zero property length); onPublish (inbound-publishes.ts) checks U+0000, packet id 0 and DUP.
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
    const parsed = parseWhole(raw, this.#version);
    if (parsed instanceof Error) return this.#fail(ReasonCode.MalformedPacket, parsed.message);
    this.#handlePacket(parsed);
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
        return this.#inboundFlows.onPublish(packet);
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
    this.#clearTimer();
    this.#pause(Pause.Connecting, true);
    const v5 = this.#version === 5;
    const properties = packet.properties ?? {};
    this.#problemInfo = properties.requestProblemInformation !== false;
    const read = readConnect(packet, this.#version, this.#topicLimits(), this.#userPropertiesIn);
    if (!read.ok) return this.#refuse(read.code, read.detail);
    const { clientId, assigned, clean, will } = read;
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

    const terms = sessionTerms(packet, this.#version, clean, this.limits);
    const { expiry } = terms;
    this.#sessionExpiry = expiry;
    this.#keepAliveMs = terms.keepAlive * 1000;
    this.inFlightMaximum = terms.inFlightMaximum;
    this.#outbound =
      terms.topicAliasMaximum === 0 && terms.maximumPacketSize === Number.POSITIVE_INFINITY ? (SHARED_OUTBOUND.get(this.#version) as OutboundPublishes) : new OutboundPublishes(this.#version, terms.maximumPacketSize, terms.topicAliasMaximum);
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
    // QoS 2 publishes the client sent on an earlier connection and has not released (PUBREL)
    // are still in flight for it.
    if (result.session.publishKeyCount > 0) this.#inboundFlows.resumeInFlight(result.session.publishKeyCount);
    // MQTT-3.1.2-28: Response Information only to a client that asked for it.
    const responseInformation = v5 && properties.requestResponseInformation === true ? responseInformationFor(this.broker, clientId, identity.username) : undefined;
    const connack = connackFor(this.#version, result.sessionPresent, this.limits, { assigned, terms, authenticationMethod, authenticationData: auth.authenticationData, responseInformation });
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
      const { code, detail } = authenticationRefusal(outcome);
      this.#refuse(code, detail);
      return undefined;
    }
    return outcome;
  }

  /** Enhanced authentication in progress: made at the first challenge (authentication.ts). */
  #auth: AuthExchange | undefined;

  /**
   * Sends AUTH 0x18 with the challenge and reads until the client's AUTH: its data, or false when
   * the connection ended. The connect timeout bounds each round.
   */
  #challenge(method: string, data: Buffer): Promise<Buffer | undefined | false> {
    const exchange = (this.#auth ??= new AuthExchange(method));
    const answered = exchange.answered();
    this.#state = 'authenticating';
    this.#send(exchange.challengePacket(data));
    this.#timer = this.clock.setTimeout(() => this.#fail(ReasonCode.NotAuthorized, 'no AUTH answer within the connect timeout'), this.limits.connectTimeoutMs);
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const raw of early) if (this.#state === 'authenticating') this.#handleRaw(raw);
    if (this.#state === 'authenticating') this.#pause(Pause.Connecting, false);
    return answered;
  }

  #onAuthStep(packet: Packet): void {
    if (packet.cmd === 'disconnect') return this.#close();
    const violation = (this.#auth as AuthExchange).step(packet);
    if (violation !== undefined) return this.#fail(ReasonCode.ProtocolError, violation);
    this.#clearTimer();
    this.#state = 'connecting';
    this.#pause(Pause.Connecting, true);
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

  /** Refused publishes and subscriptions on this connection (the first is logged at warn, the rest at debug). */
  #deniedCount = 0;

  #countDenied(): number {
    this.#deniedCount += 1;
    return this.#deniedCount;
  }

  #pause(reason: Pause, on: boolean): void {
    const before = this.#pausedFor;
    this.#pausedFor = on ? before | reason : before & ~reason;
    if (this.#state === 'closed') return;
    if (before === 0 && this.#pausedFor !== 0) this.transport.pause();
    else if (before !== 0 && this.#pausedFor === 0) this.transport.resume();
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
    const earlier = this.#inbound?.settled();
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
    // The deadline is not moved on every packet: when it comes, a packet since then re-arms it.
    let wheel = keepAliveWheels.get(this.clock);
    if (wheel === undefined) {
      wheel = new TimerWheel(this.clock, KEEP_ALIVE_TICK_MS, keepAliveDue);
      keepAliveWheels.set(this.clock, wheel);
    }
    this.#keepAliveSlot = wheel.schedule(this, this.#lastPacketAt + this.#keepAliveMs * 1.5);
  }

  #keepAliveDue(): void {
    this.#keepAliveSlot = 0;
    if (this.#state !== 'connected') return;
    // While we are not reading (backpressure), silence is ours, not the client's.
    if (this.#pausedFor !== 0) this.#lastPacketAt = this.clock.now();
    if (this.clock.now() - this.#lastPacketAt >= this.#keepAliveMs * 1.5) this.#fail(ReasonCode.KeepAliveTimeout, `no packet within 1.5 x keep-alive (${this.#keepAliveMs / 1000} s)`);
    else this.#armKeepAlive();
  }

  /** Clears the connect-phase timer and lets go of it (a cleared timer object would stay referenced). */
  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #cancelKeepAlive(): void {
    if (this.#keepAliveSlot === 0) return;
    keepAliveWheels.get(this.clock)?.cancel(this, this.#keepAliveSlot);
    this.#keepAliveSlot = 0;
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
    this.#inbound?.dropHeld();
    this.#clearTimer();
    this.#cancelKeepAlive();
    this.#reservations?.releaseReceiving();
    this.transport.end();
    this.#count(false);
    // An AUTH exchange in progress ends with the connection.
    this.#auth?.end();
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
    const hold = this.#ownMessages;
    if (hold !== undefined) return hold.write(delivery.message, packet.head, packet.payload);
    // A client that never published has no own messages to wait for: straight out.
    if (packet.payload !== undefined) this.transport.write(packet.head);
    return this.transport.write(packet.payload ?? packet.head) ? SendResult.Sent : SendResult.SentFull;
  }

  describe(): ConnectionInfo {
    return { protocol: 'mqtt', protocolVersion: this.#version, remoteAddress: this.transport.remoteAddress, connectedAt: this.#connectedAt, keepAliveSeconds: this.#keepAliveMs / 1000 };
  }

  #connectedAt = 0;

  assignTag(delivery: Delivery, inUse: (packetId: number) => boolean): number {
    return (this.#packetIds ??= new OutboundPacketIds(this.broker.dataShardNames.length)).assign(delivery, inUse);
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
    this.#inbound?.dropHeld();
    this.#clearTimer();
    this.#cancelKeepAlive();
    this.#reservations?.releaseReceiving();
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
    this.transport.write(encodePlainAck(packet, version) ?? mqttPacket.generate(packet, { protocolVersion: version as 3 | 4 | 5 }));
  }
}
