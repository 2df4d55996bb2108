// A WebSocket or WebSocket-over-TLS listener for any front end: an HTTP(S) server whose only
// endpoint is the protocol's path. It checks the upgrade (path, subprotocol, TLS client
// certificate), admits the socket (admission.ts), completes the handshake and hands the
// WebSocket to the protocol's handler; the protocol only reads and writes messages.
//
// Upgrade rules: the client must offer one of the protocol's subprotocols (MQTT: "mqtt", or
// "mqttv3.1" from 3.1 clients); a request for another path gets 404, an upgrade without such a
// subprotocol 400, a plain HTTP request 426, an upgrade while stopping 503.
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientGuard } from './abuse.js';
import { admit } from './admission.js';
import { bind } from './bind.js';
import { hostPort, remoteAddressOf } from './remote-address.js';
import type { ListenerOptions } from './tcp-listener.js';
import { tlsRefusal, trackRawSockets } from './tls.js';

export interface WebSocketListenerOptions extends ListenerOptions {
  /** The URL path of the endpoint ('/mqtt'). */
  path: string;
  /** Subprotocols accepted, in order of preference; the first is the one refusals suggest. */
  subprotocols: readonly string[];
  /** The largest message ws assembles before handing it over. */
  messageBytesMax: number;
  /**
   * Takes over an upgraded WebSocket (and the raw socket under it, for backpressure and the
   * peer's address), with the guard for its client's per-client limits. It must add its own
   * 'error' listener; the listener's own 'close' listener runs before the protocol's.
   */
  onWebSocket: (websocket: WebSocket, raw: Socket, guard: ClientGuard) => void;
}

/** The longest an HTTP request may take to send its headers (capped by the connect timeout). */
const HEADERS_TIMEOUT_MS = 10_000;

const LISTENER = Symbol('shardline.ws-listener');
const COUNTED = Symbol('shardline.ws-listener.counted');

interface AdmittedWebSocket extends WebSocket {
  [LISTENER]: WebSocketListener;
  [COUNTED]: string | undefined;
}

export class WebSocketListener {
  readonly #sockets = new Set<WebSocket>();
  readonly #websockets: WebSocketServer;
  readonly path: string;
  readonly kind: 'ws' | 'wss';
  #stopping = false;
  #listenerClosed: Promise<void> | undefined;
  /** WSS only: every raw socket, handshakes included (see trackRawSockets). */
  #rawSockets: Set<Socket> | undefined;

  private constructor(
    private readonly server: HttpServer,
    private readonly options: WebSocketListenerOptions,
    readonly host: string,
    readonly port: number,
  ) {
    this.path = options.path;
    this.kind = options.tls === undefined ? 'ws' : 'wss';
    const subprotocols = options.subprotocols;
    this.#websockets = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      // Compression would cost a zlib context per connection and open compression side channels.
      perMessageDeflate: false,
      maxPayload: options.messageBytesMax,
      handleProtocols: (offered: Set<string>) => subprotocols.find((name) => offered.has(name)) ?? false,
    });
  }

  get address(): string {
    return hostPort(this.host, this.port);
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  static async start(options: WebSocketListenerOptions): Promise<WebSocketListener> {
    const timeout = Math.min(HEADERS_TIMEOUT_MS, options.limits.connectTimeoutMs);
    const httpOptions = { headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: Math.min(1000, timeout), noDelay: true };
    const server =
      options.tls === undefined ? createHttpServer(httpOptions) : createHttpsServer({ ...options.tls.options, ...httpOptions, handshakeTimeout: options.limits.connectTimeoutMs });
    // headersTimeout only counts from a request's first byte: a socket that never sends one is
    // held to the same limit by the idle timeout (ws clears it once the socket is upgraded).
    server.timeout = timeout;
    const bound = await bind(server, options);
    const listener = new WebSocketListener(server, options, bound.host, bound.port);
    const first = options.subprotocols[0] ?? '';
    server.on('request', (_request: IncomingMessage, response) => {
      response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'close' });
      response.end(`${options.protocol} over WebSocket: open a WebSocket to ${listener.path} with the subprotocol "${first}"\n`);
    });
    const hold = options.hold;
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (hold === undefined) listener.#upgrade(request, socket as Socket, head);
      else hold.admit(socket, () => listener.#upgrade(request, socket as Socket, head));
    });
    server.on('error', (error) => options.logger.error({ err: error }, `${options.protocol} WebSocket listener error`));
    if (options.tls !== undefined) {
      listener.#rawSockets = trackRawSockets(server as TlsServer);
      server.on('tlsClientError', (error: Error, socket: TLSSocket) => options.logger.debug({ err: error, remote: remoteAddressOf(socket) }, 'TLS handshake failed'));
    }
    return listener;
  }

  /** Why an upgrade request is refused (status and reason), or undefined when it may go on. */
  #upgradeRefusal(request: IncomingMessage): { status: number; why: string } | undefined {
    const { protocol, subprotocols } = this.options;
    if (this.#stopping) return { status: 503, why: 'the broker is shutting down' };
    const url = request.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path !== this.path) return { status: 404, why: `no ${protocol} endpoint at ${path}; ${protocol} is served at ${this.path}` };
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    if (offered.some((name) => subprotocols.includes(name))) return undefined;
    const first = subprotocols[0] ?? '';
    const why = offered.length === 0 ? `no WebSocket subprotocol offered; ${protocol} clients offer "${first}"` : `WebSocket subprotocol ${offered.join(', ')} is not ${protocol}; offer "${first}"`;
    return { status: 400, why };
  }

  #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const { limits, logger, tls, abuse } = this.options;
    const refusal = this.#upgradeRefusal(request);
    if (refusal !== undefined) {
      logger.debug({ remote: remoteAddressOf(socket), status: refusal.status, url: request.url }, `WebSocket upgrade refused: ${refusal.why}`);
      refuseUpgrade(socket, refusal.status, refusal.why);
      return;
    }
    if (tls !== undefined) {
      const certificateRefusal = tlsRefusal(socket as TLSSocket, tls.clientAuth);
      if (certificateRefusal !== undefined) {
        logger.debug({ remote: remoteAddressOf(socket) }, certificateRefusal);
        socket.destroy();
        return;
      }
    }
    // Admitted before any WebSocket state exists for the socket.
    const admitted = admit(this.#sockets.size, socket.remoteAddress ?? '?', limits, abuse);
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
      if (!upgraded) socket.once('close', () => abuse.release(admitted.counted));
    }
  }

  #accept(websocket: WebSocket, raw: Socket, guard: ClientGuard, counted: string | undefined): void {
    if (this.#stopping) {
      this.options.abuse.release(counted);
      websocket.terminate();
      return;
    }
    this.#sockets.add(websocket);
    (websocket as AdmittedWebSocket)[LISTENER] = this;
    (websocket as AdmittedWebSocket)[COUNTED] = counted;
    // Shared listener, as for TCP: no closure per connection.
    websocket.on('close', onAdmittedWebSocketClose);
    this.options.onWebSocket(websocket, raw, guard);
  }

  /** An admitted WebSocket closed: it no longer counts against the limits. */
  socketClosed(websocket: AdmittedWebSocket): void {
    this.#sockets.delete(websocket);
    this.options.abuse.release(websocket[COUNTED]);
  }

  /** Stops accepting new connections and upgrades; the ones open stay (the protocol closes them next). */
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

function onAdmittedWebSocketClose(this: WebSocket): void {
  const websocket = this as AdmittedWebSocket;
  websocket[LISTENER].socketClosed(websocket);
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
