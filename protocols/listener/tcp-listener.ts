// A TCP or TLS listener for any front end: binds, checks TLS client certificates, admits each
// socket (admission.ts), keeps the open sockets for shutdown, and hands each admitted socket to
// the protocol's handler. The protocol never sees a socket this listener refused, and need not
// count or release anything: the listener releases the socket's admission when it closes.
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { AbuseControl, ClientGuard } from './abuse.js';
import { admit, type AdmissionLimits } from './admission.js';
import { bind, type ListenFailure } from './bind.js';
import type { ConnectionHold } from './connection-hold.js';
import { hostPort, remoteAddressOf } from './remote-address.js';
import { tlsRefusal, trackRawSockets, type TlsListener } from './tls.js';

/** What every listener (TCP, TLS, WebSocket, WSS) is given. */
export interface ListenerOptions {
  /** The protocol's name in log lines and refusals ('MQTT'). */
  protocol: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The setting that chooses the port, named when binding fails (e.g. --mqtt-port). */
  portSetting: string;
  listenFailed: ListenFailure;
  logger: Logger;
  /** Read at every decision, not copied: live settings change them in place. */
  limits: AdmissionLimits;
  /** The node's abuse gate, shared by all its listeners so per-address counts cover them all. */
  abuse: AbuseControl;
  /** TLS instead of plain TCP. */
  tls?: TlsListener | undefined;
  /** Holds accepted sockets until every listener of the node is bound (connection-hold.ts); none: served at once. */
  hold?: ConnectionHold | undefined;
}

export interface TcpListenerOptions extends ListenerOptions {
  /**
   * Takes over an admitted socket, with the guard for its client's per-client limits. It must
   * add its own 'error' listener (an unhandled one ends the process) and its 'data', 'drain'
   * and 'close' ones (or give onClose); the listener's own 'close' listener runs before them.
   */
  onSocket: (socket: Socket, guard: ClientGuard) => void;
  /**
   * Called when an admitted socket closes, after the listener has let go of it: instead of a
   * second 'close' listener, which makes the socket's listener list an array (32 bytes per idle
   * connection).
   */
  onClose?: (socket: Socket) => void;
}

const LISTENER = Symbol('shardline.listener');
const COUNTED = Symbol('shardline.listener.counted');

interface AdmittedSocket extends Socket {
  [LISTENER]: TcpListener;
  [COUNTED]: string | undefined;
}

export class TcpListener {
  readonly #sockets = new Set<Socket>();
  readonly kind: 'tcp' | 'tls';
  /** TLS only: every raw socket, handshakes included (see trackRawSockets). */
  #rawSockets: Set<Socket> | undefined;
  #listenerClosed: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly options: TcpListenerOptions,
    readonly host: string,
    readonly port: number,
  ) {
    this.kind = options.tls === undefined ? 'tcp' : 'tls';
  }

  get address(): string {
    return hostPort(this.host, this.port);
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  static async start(options: TcpListenerOptions): Promise<TcpListener> {
    const tls = options.tls;
    // A TLS handshake that never finishes is held to the connect timeout like a hello that never comes.
    const server = tls === undefined ? createServer({ noDelay: true }) : createTlsServer({ ...tls.options, noDelay: true, handshakeTimeout: options.limits.connectTimeoutMs });
    const bound = await bind(server, options);
    const listener = new TcpListener(server, options, bound.host, bound.port);
    const hold = options.hold;
    const accept = (socket: Socket): void => (hold === undefined ? listener.#accept(socket) : hold.admit(socket, () => listener.#accept(socket)));
    if (tls === undefined) server.on('connection', accept);
    else {
      listener.#rawSockets = trackRawSockets(server as TlsServer);
      server.on('secureConnection', (socket: TLSSocket) => {
        const refusal = tlsRefusal(socket, tls.clientAuth);
        if (refusal === undefined) accept(socket);
        else {
          options.logger.debug({ remote: remoteAddressOf(socket) }, refusal);
          socket.destroy();
        }
      });
      // node:tls leaves a socket whose handshake failed or timed out open for this listener to close.
      server.on('tlsClientError', (error, socket) => {
        options.logger.debug({ err: error, remote: remoteAddressOf(socket) }, 'TLS handshake failed');
        socket.destroy();
      });
    }
    server.on('error', (error) => options.logger.error({ err: error }, `${options.protocol} listener error`));
    return listener;
  }

  #accept(socket: Socket): void {
    const admitted = admit(this.#sockets.size, socket.remoteAddress ?? '?', this.options.limits, this.options.abuse);
    if (admitted === undefined) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    (socket as AdmittedSocket)[LISTENER] = this;
    (socket as AdmittedSocket)[COUNTED] = admitted.counted;
    // One shared function (`this` is the socket), not a closure per socket: it matters at tens
    // of thousands of idle connections.
    socket.on('close', onAdmittedSocketClose);
    this.options.onSocket(socket, admitted.guard);
  }

  /** An admitted socket closed: it no longer counts against the limits. */
  socketClosed(socket: AdmittedSocket): void {
    this.#sockets.delete(socket);
    this.options.abuse.release(socket[COUNTED]);
    this.options.onClose?.(socket);
  }

  /** Stops accepting new connections; the ones open stay (the protocol closes them next). */
  stopAccepting(): void {
    if (this.#listenerClosed === undefined) this.#listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Stops accepting and ends every socket (destroyed after a second if the peer lingers). */
  async stop(): Promise<void> {
    this.stopAccepting();
    for (const socket of this.#sockets) socket.end();
    const deadline = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
      for (const socket of this.#rawSockets ?? []) socket.destroy();
    }, 1000);
    await this.#listenerClosed;
    clearTimeout(deadline);
  }
}

function onAdmittedSocketClose(this: AdmittedSocket): void {
  this[LISTENER].socketClosed(this);
}
