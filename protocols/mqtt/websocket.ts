// MQTT over WebSocket (ws) and over WebSocket with TLS (wss): protocols/listener serves the
// HTTP(S) endpoint at the MQTT path (default /mqtt), checks the upgrade and admits the socket;
// each upgraded socket gets an MqttConnection on the same broker, limits and connection count as
// the TCP listener; only the framing differs.
//
// MQTT 5.0 section 6 / 3.1.1 section 6: the client must offer the subprotocol "mqtt" (or
// "mqttv3.1", what 3.1 clients offer; the listener refuses other upgrades). MQTT travels in
// binary messages: a text message closes the connection (1003). A WebSocket message may hold any
// number of MQTT packets or part of one; the connection's framer reassembles them as it does TCP
// chunks.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, type RawData } from 'ws';
import { systemClock } from '../../engine/index.js';
import { AbuseControl, certificateNameOf, remoteAddressOf, WebSocketListener, type ClientGuard } from '../listener/index.js';
import { MqttConnection, type ConnectionRegistry, type Transport } from './connection.js';
import { INBOUND_UNRESERVED_BYTES, type InboundBudget, type InboundReservation } from '../listener/index.js';
import { GatheringWriter } from './gathering-writer.js';
import { mqttListenFailed, type MqttServerOptions } from './server.js';

export const DEFAULT_WS_PATH = '/mqtt';
/** Subprotocols accepted, in order of preference ("mqttv3.1" is what MQTT 3.1 clients offer). */
export const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;

export interface MqttWebSocketServerOptions extends MqttServerOptions {
  /** The URL path of the MQTT endpoint (default /mqtt). */
  path?: string;
}

/** Room over max-packet-size for a message that carries a whole packet plus the start of the next. */
const MESSAGE_SLACK_BYTES = 64 * 1024;
const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const;

const TRANSPORT = Symbol('shardline.mqtt.ws-transport');

interface TransportWebSocket extends WebSocket {
  [TRANSPORT]: WebSocketTransport;
}

interface TransportRawSocket extends Socket {
  [TRANSPORT]: WebSocketTransport;
}

export class MqttWebSocketServer {
  readonly #registry: ConnectionRegistry;
  readonly #abuse: AbuseControl;
  #listener!: WebSocketListener;

  private constructor(private readonly options: MqttWebSocketServerOptions) {
    this.#registry = options.registry ?? { connected: 0 };
    this.#abuse = options.abuse ?? new AbuseControl(options.limits, options.clock ?? systemClock, options.logger);
  }

  get host(): string {
    return this.#listener.host;
  }

  get port(): number {
    return this.#listener.port;
  }

  get path(): string {
    return this.#listener.path;
  }

  get kind(): 'ws' | 'wss' {
    return this.#listener.kind;
  }

  get address(): string {
    return this.#listener.address;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  get openSockets(): number {
    return this.#listener.openSockets;
  }

  static async start(options: MqttWebSocketServerOptions): Promise<MqttWebSocketServer> {
    const mqtt = new MqttWebSocketServer(options);
    mqtt.#listener = await WebSocketListener.start({
      protocol: 'MQTT',
      host: options.host,
      port: options.port,
      portSetting: options.portSetting ?? (options.tls === undefined ? '--ws-port' : '--wss-port'),
      listenFailed: mqttListenFailed,
      logger: options.logger,
      limits: options.limits,
      abuse: mqtt.#abuse,
      tls: options.tls,
      hold: options.hold,
      path: options.path ?? DEFAULT_WS_PATH,
      subprotocols: MQTT_SUBPROTOCOLS,
      messageBytesMax: options.limits.maxPacketSize + MESSAGE_SLACK_BYTES,
      onWebSocket: (websocket, raw, guard) => mqtt.#serve(websocket, raw, guard),
    });
    return mqtt;
  }

  #serve(websocket: WebSocket, raw: Socket, guard: ClientGuard): void {
    const { broker, limits, logger, clock, authenticate } = this.options;
    const transport = new WebSocketTransport(websocket, raw, this, this.#registry.inboundBudget, limits.maxPacketSize + MESSAGE_SLACK_BYTES);
    transport.connection = new MqttConnection(transport, broker, limits, clock ?? systemClock, logger, this.#registry, authenticate);
    transport.connection.guard(guard);
    (websocket as TransportWebSocket)[TRANSPORT] = transport;
    (raw as TransportRawSocket)[TRANSPORT] = transport;
    // Shared listeners, as for TCP: no closures per connection.
    websocket.on('message', onMessage);
    websocket.on('error', onWebSocketError);
    websocket.on('close', onWebSocketClose);
    raw.on('drain', onRawDrain);
    if (transport.budget !== undefined) raw.on('data', onRawData);
  }

  /** Stops accepting new connections and upgrades; the ones open stay (the broker closes them next). */
  stopAccepting(): void {
    this.#listener.stopAccepting();
  }

  /** Stops accepting and closes every WebSocket (terminated after a second if the peer lingers). */
  async stop(): Promise<void> {
    await this.#listener.stop();
  }
}

/**
 * A WebSocket as a connection's Transport. As on TCP, packets written in one tick are gathered
 * and go out as one binary message (a frame header and one write; ws does not copy an unmasked
 * payload); backpressure counts what the socket under the WebSocket holds unsent.
 */
class WebSocketTransport extends GatheringWriter implements Transport {
  connection!: MqttConnection;
  /** Raw bytes read since the last message ws delivered: what ws is assembling (approximately). */
  #assembling = 0;
  #reservation: InboundReservation | undefined;
  /** The connection asked not to be read (its own backpressure), apart from waiting for budget. */
  #pausedByConnection = false;
  constructor(
    readonly websocket: WebSocket,
    readonly raw: Socket,
    readonly server: MqttWebSocketServer,
    readonly budget: InboundBudget | undefined,
    /** The largest message ws assembles (its maxPayload). */
    readonly messageBytesMax: number,
  ) {
    super();
  }

  /**
   * ws assembles a whole message before handing it over, so the connection's framer never sees
   * a large packet in part, and the message's size is not known here. Past 64 KiB of one
   * message, reserve the largest message ws accepts from the node's budget (the worst case, so
   * a grant always lets the message finish) and stop reading until it is granted.
   */
  rawBytesRead(bytes: number): void {
    const budget = this.budget as InboundBudget;
    this.#assembling += bytes;
    if (this.#reservation !== undefined || this.#assembling <= INBOUND_UNRESERVED_BYTES) return;
    // A client may send a packet's header in one message and its body in the next: then the
    // connection already holds (or waits for) the packet's whole size, and a second reservation
    // for the same bytes could wait forever for budget that holders like this one keep.
    if (this.connection.holdsInboundBudget) return;
    const reservation = budget.reserve(this.messageBytesMax, () => this.#applyPause());
    this.#reservation = reservation;
    this.#applyPause();
  }

  /** A whole message arrived: what ws held for it is the connection's now. */
  messageDelivered(): void {
    this.#assembling = 0;
    this.releaseBudget();
  }

  releaseBudget(): void {
    const reservation = this.#reservation;
    if (reservation === undefined) return;
    this.#reservation = undefined;
    this.budget?.release(reservation);
    this.#applyPause();
  }

  #applyPause(): void {
    if (this.#pausedByConnection || this.#reservation?.state === 'waiting') this.websocket.pause();
    else this.websocket.resume();
  }

  get remoteAddress(): string {
    return remoteAddressOf(this.raw);
  }

  get certificateName(): string | undefined {
    return this.server.kind === 'wss' ? certificateNameOf(this.raw) : undefined;
  }

  get kind(): string {
    return this.server.kind;
  }

  protected sendNow(data: Buffer): void {
    if (this.websocket.readyState === WebSocket.OPEN) this.websocket.send(data, SEND_OPTIONS);
  }

  protected get unsentBytes(): number {
    return this.websocket.bufferedAmount;
  }

  end(): void {
    this.flush();
    this.websocket.close(1000);
    // A client that does not answer the close handshake must not keep the socket forever.
    setTimeout(terminateWebSocket, 2000, this.websocket).unref();
  }

  pause(): void {
    this.#pausedByConnection = true;
    this.#applyPause();
  }

  resume(): void {
    this.#pausedByConnection = false;
    this.#applyPause();
  }
}


function terminateWebSocket(websocket: WebSocket): void {
  websocket.terminate();
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const transport = (this as TransportWebSocket)[TRANSPORT];
  transport.messageDelivered();
  if (this.readyState !== WebSocket.OPEN) return;
  if (!isBinary) {
    // MQTT-6.0.0-1: MQTT data in a text frame closes the connection.
    transport.server.logger.debug({ remote: transport.remoteAddress, clientId: transport.connection.clientId }, 'text WebSocket message: MQTT needs binary messages; closing');
    this.close(1003, 'MQTT needs binary messages');
    setTimeout(terminateWebSocket, 2000, this).unref();
    return;
  }
  // binaryType 'nodebuffer' (the default): a Buffer, fragments already joined.
  transport.connection.onData(data as Buffer);
}

function onRawData(this: TransportRawSocket, chunk: Buffer): void {
  this[TRANSPORT].rawBytesRead(chunk.length);
}

function onRawDrain(this: TransportRawSocket): void {
  this[TRANSPORT].connection.onDrain();
}

function onWebSocketError(this: WebSocket, error: Error): void {
  const transport = (this as TransportWebSocket)[TRANSPORT];
  transport.server.logger.debug({ err: error, remote: transport.remoteAddress, clientId: transport.connection.clientId }, 'WebSocket error');
}

function onWebSocketClose(this: WebSocket): void {
  const transport = (this as TransportWebSocket)[TRANSPORT];
  transport.releaseBudget();
  transport.connection.onClose();
}
