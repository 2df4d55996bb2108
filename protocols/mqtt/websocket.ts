// MQTT over WebSocket (ws) and over WebSocket with TLS (wss): an HTTP(S) listener whose only
// endpoint is the MQTT path (default /mqtt). Each upgraded socket gets an MqttConnection on the
// same broker, limits and connection count as the TCP listener; only the framing differs.
//
// Upgrade rules (MQTT 5.0 section 6 / 3.1.1 section 6): the client must offer the subprotocol
// "mqtt" (or "mqttv3.1", what 3.1 clients offer); a request for another path gets 404, an upgrade
// without an MQTT subprotocol 400, a plain HTTP request 426. MQTT travels in binary messages: a
// text message closes the connection (1003). A WebSocket message may hold any number of MQTT
// packets or part of one; the connection's framer reassembles them as it does TCP chunks.
import { once } from 'node:events';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { systemClock } from '../../engine/index.js';
import { AbuseControl, type ClientGuard } from './abuse.js';
import { MqttConnection, type ConnectionRegistry, type Transport } from './connection.js';
import { INBOUND_UNRESERVED_BYTES, type InboundBudget, type InboundReservation } from './inbound-budget.js';
import { GatheringWriter } from './gathering-writer.js';
import { remoteAddressOf } from './remote-address.js';
import { MqttErrors } from './errors.js';
import type { MqttServerOptions } from './server.js';
import { certificateNameOf, tlsRefusal, trackRawSockets } from './tls.js';

export const DEFAULT_WS_PATH = '/mqtt';
/** Subprotocols accepted, in order of preference ("mqttv3.1" is what MQTT 3.1 clients offer). */
export const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;

export interface MqttWebSocketServerOptions extends MqttServerOptions {
  /** The URL path of the MQTT endpoint (default /mqtt). */
  path?: string;
}

/** Room over max-packet-size for a message that carries a whole packet plus the start of the next. */
const MESSAGE_SLACK_BYTES = 64 * 1024;
/** The longest an HTTP request may take to send its headers (capped by the connect timeout). */
const HEADERS_TIMEOUT_MS = 10_000;
const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const;

const TRANSPORT = Symbol('shardline.mqtt.ws-transport');

interface TransportWebSocket extends WebSocket {
  [TRANSPORT]: WebSocketTransport;
}

interface TransportRawSocket extends Socket {
  [TRANSPORT]: WebSocketTransport;
}

export class MqttWebSocketServer {
  readonly #sockets = new Set<WebSocket>();
  readonly #registry: ConnectionRegistry;
  readonly #abuse: AbuseControl;
  readonly #websockets: WebSocketServer;
  readonly path: string;
  readonly kind: 'ws' | 'wss';
  #stopping = false;
  #listenerClosed: Promise<void> | undefined;
  /** WSS only: every raw socket, handshakes included (see trackRawSockets). */
  #rawSockets: Set<Socket> | undefined;

  private constructor(
    private readonly server: HttpServer,
    private readonly options: MqttWebSocketServerOptions,
    readonly host: string,
    readonly port: number,
  ) {
    this.#registry = options.registry ?? { connected: 0 };
    this.#abuse = options.abuse ?? new AbuseControl(options.limits, options.clock ?? systemClock, options.logger);
    this.path = options.path ?? DEFAULT_WS_PATH;
    this.kind = options.tls === undefined ? 'ws' : 'wss';
    this.#websockets = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      // Compression would cost a zlib context per connection and open compression side channels.
      perMessageDeflate: false,
      maxPayload: options.limits.maxPacketSize + MESSAGE_SLACK_BYTES,
      handleProtocols: (offered: Set<string>) => MQTT_SUBPROTOCOLS.find((name) => offered.has(name)) ?? false,
    });
  }

  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  static async start(options: MqttWebSocketServerOptions): Promise<MqttWebSocketServer> {
    const timeout = Math.min(HEADERS_TIMEOUT_MS, options.limits.connectTimeoutMs);
    const httpOptions = { headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: Math.min(1000, timeout), noDelay: true };
    const server =
      options.tls === undefined ? createHttpServer(httpOptions) : createHttpsServer({ ...options.tls.options, ...httpOptions, handshakeTimeout: options.limits.connectTimeoutMs });
    // headersTimeout only counts from a request's first byte: a socket that never sends one is
    // held to the same limit by the idle timeout (ws clears it once the socket is upgraded).
    server.timeout = timeout;
    const listening = once(server, 'listening');
    server.listen({ host: options.host, port: options.port });
    try {
      await Promise.race([listening, once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const setting = options.portSetting ?? (options.tls === undefined ? '--ws-port' : '--wss-port');
      const reason = code === 'EADDRINUSE' ? `the port is already in use (pick another with ${setting})` : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (error as Error).message;
      throw MqttErrors.listenFailed.create({}, `${options.host}:${options.port}`, reason);
    }
    const bound = server.address() as { address: string; port: number };
    const websocket = new MqttWebSocketServer(server, options, bound.address, bound.port);
    server.on('request', (request: IncomingMessage, response) => {
      response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'close' });
      response.end(`MQTT over WebSocket: open a WebSocket to ${websocket.path} with the subprotocol "mqtt"\n`);
    });
    const hold = options.hold;
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (hold === undefined) websocket.#upgrade(request, socket as Socket, head);
      else hold.admit(socket, () => websocket.#upgrade(request, socket as Socket, head));
    });
    server.on('error', (error) => options.logger.error({ err: error }, 'MQTT WebSocket listener error'));
    if (options.tls !== undefined) {
      websocket.#rawSockets = trackRawSockets(server as TlsServer);
      server.on('tlsClientError', (error: Error, socket: TLSSocket) => options.logger.debug({ err: error, remote: remoteAddressOf(socket) }, 'TLS handshake failed'));
    }
    return websocket;
  }

  #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const { limits, logger, tls } = this.options;
    const refuse = (status: number, why: string): void => {
      logger.debug({ remote: remoteAddressOf(socket), status, url: request.url }, `WebSocket upgrade refused: ${why}`);
      refuseUpgrade(socket, status, why);
    };
    if (this.#stopping) return refuse(503, 'the broker is shutting down');
    const url = request.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path !== this.path) return refuse(404, `no MQTT endpoint at ${path}; MQTT is served at ${this.path}`);
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    if (!offered.some((name) => (MQTT_SUBPROTOCOLS as readonly string[]).includes(name))) {
      return refuse(400, offered.length === 0 ? 'no WebSocket subprotocol offered; MQTT clients offer "mqtt"' : `WebSocket subprotocol ${offered.join(', ')} is not MQTT; offer "mqtt"`);
    }
    if (tls !== undefined) {
      const refusal = tlsRefusal(socket as TLSSocket, tls.clientAuth);
      if (refusal !== undefined) {
        logger.debug({ remote: remoteAddressOf(socket) }, refusal);
        socket.destroy();
        return;
      }
    }
    // The same headroom over max-connections as the TCP listener: past it, drop before any
    // WebSocket state exists; up to it, the CONNACK refusal tells the client why.
    if (this.#sockets.size >= limits.maxConnections + Math.max(100, limits.maxConnections / 10)) {
      socket.destroy();
      return;
    }
    // Per-address limits and connect rates, shared with the TCP listener (abuse.ts).
    const admitted = this.#abuse.accept(socket.remoteAddress ?? '?');
    if (admitted === undefined) {
      socket.destroy();
      return;
    }
    let upgraded = false;
    try {
      this.#websockets.handleUpgrade(request, socket, head, (websocket) => {
        upgraded = true;
        this.#accept(websocket, socket, admitted.guard, admitted.counted);
      });
    } finally {
      // A handshake ws refused (bad key or version) never reaches #accept: its address is free again.
      if (!upgraded) socket.once('close', () => this.#abuse.release(admitted.counted));
    }
  }

  #accept(websocket: WebSocket, raw: Socket, guard: ClientGuard, counted: string | undefined): void {
    const { broker, limits, logger, clock, authenticate } = this.options;
    if (this.#stopping) {
      this.#abuse.release(counted);
      websocket.terminate();
      return;
    }
    this.#sockets.add(websocket);
    const transport = new WebSocketTransport(websocket, raw, this, this.#registry.inboundBudget, limits.maxPacketSize + MESSAGE_SLACK_BYTES);
    transport.gateAddress = counted;
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

  socketClosed(websocket: WebSocket, transport: WebSocketTransport): void {
    this.#sockets.delete(websocket);
    this.#abuse.release(transport.gateAddress);
  }

  /** Stops accepting new connections and upgrades; the ones open stay (the broker closes them next). */
  stopAccepting(): void {
    this.#stopping = true;
    if (this.#listenerClosed === undefined) this.#listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // HTTP connections that never upgraded (keep-alive, slow headers) would hold close() open.
    this.server.closeIdleConnections();
  }

  /** Stops accepting and closes every WebSocket (terminated after a second if the peer lingers). */
  async stop(): Promise<void> {
    this.stopAccepting();
    for (const websocket of this.#sockets) websocket.close(1001, 'server shutting down');
    const deadline = setTimeout(() => {
      for (const websocket of this.#sockets) websocket.terminate();
      this.server.closeAllConnections();
      for (const socket of this.#rawSockets ?? []) socket.destroy();
    }, 1000);
    await this.#listenerClosed;
    clearTimeout(deadline);
    this.#websockets.close();
  }
}

/**
 * A WebSocket as a connection's Transport. As on TCP, packets written in one tick are gathered
 * and go out as one binary message (a frame header and one write; ws does not copy an unmasked
 * payload); backpressure counts what the socket under the WebSocket holds unsent.
 */
/** A WebSocket as a connection's Transport: the packets of one tick go out as one binary message. */
class WebSocketTransport extends GatheringWriter implements Transport {
  connection!: MqttConnection;
  /** The address counted by the abuse gate, released when the socket closes. */
  gateAddress: string | undefined;
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


/** Answers an upgrade request with an HTTP error and closes the socket. */
function refuseUpgrade(socket: Socket, status: number, message: string): void {
  if (socket.writable) {
    const body = `${message}\n`;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  setTimeout(destroySocket, 1000, socket).unref();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
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
  transport.server.socketClosed(this, transport);
  transport.releaseBudget();
  transport.connection.onClose();
}
