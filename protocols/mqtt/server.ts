// The MQTT listener: binds a TCP port and gives each socket an MqttConnection with real timers.
// Sockets beyond the connection limit's headroom are dropped at accept, before any buffer is
// allocated for them; up to it, the CONNACK refusal (quota exceeded) tells clients why.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { systemClock, type Broker, type Clock } from '../../engine/index.js';
import { AbuseControl } from './abuse.js';
import { MqttErrors } from './errors.js';
import type { ConnectionHold } from './connection-hold.js';
import { GatheringWriter } from './gathering-writer.js';
import { remoteAddressOf } from './remote-address.js';
import { MqttConnection, type Authenticate, type ConnectionRegistry, type MqttLimits, type Transport } from './connection.js';
import { certificateNameOf, tlsRefusal, trackRawSockets, type TlsListener } from './tls.js';

export const DEFAULT_MQTT_PORT = 1883;

export interface MqttServerOptions {
  broker: Broker;
  limits: MqttLimits;
  host: string;
  port: number;
  logger: Logger;
  clock?: Clock;
  authenticate?: Authenticate;
  /** MQTT over TLS (MQTTS) instead of plain TCP. */
  tls?: TlsListener;
  /** Shared by every listener of a node, so max-connections counts them all together. */
  registry?: ConnectionRegistry;
  /** The port's setting, named when binding fails (default --mqtt-port). */
  portSetting?: string;
  /** Abuse limits shared by a node's listeners; default: this server's own, over `limits`. */
  abuse?: AbuseControl;
  /** Holds accepted connections until every listener of the node is bound (connection-hold.ts); none: served at once. */
  hold?: ConnectionHold;
}

export class MqttServer {
  readonly #sockets = new Set<Socket>();
  readonly #registry: ConnectionRegistry;
  readonly kind: 'tcp' | 'tls';
  /** TLS only: every raw socket, handshakes included (see trackRawSockets). */
  #rawSockets: Set<Socket> | undefined;
  readonly #abuse: AbuseControl;

  private constructor(
    private readonly server: Server,
    private readonly options: MqttServerOptions,
    readonly host: string,
    readonly port: number,
  ) {
    this.#registry = options.registry ?? { connected: 0 };
    this.kind = options.tls === undefined ? 'tcp' : 'tls';
    // Over the limits object itself, not a copy: live settings change it in place.
    this.#abuse = options.abuse ?? new AbuseControl(options.limits, options.clock ?? systemClock, options.logger);
  }

  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** Options for the node's other listeners (TLS, WebSocket): the same broker, limits, authentication and connection count. */
  get sharedOptions(): MqttServerOptions {
    return { ...this.options, registry: this.#registry, abuse: this.#abuse };
  }

  get connectedClients(): number {
    return this.#registry.connected;
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  static async start(options: MqttServerOptions): Promise<MqttServer> {
    const tls = options.tls;
    // A TLS handshake that never finishes is held to the connect timeout like a CONNECT that never comes.
    const server = tls === undefined ? createServer({ noDelay: true }) : createTlsServer({ ...tls.options, noDelay: true, handshakeTimeout: options.limits.connectTimeoutMs });
    const listening = once(server, 'listening');
    server.listen({ host: options.host, port: options.port });
    try {
      await Promise.race([listening, once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'EADDRINUSE' ? `the port is already in use (another broker running? pick another with ${options.portSetting ?? '--mqtt-port'})` : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (error as Error).message;
      throw MqttErrors.listenFailed.create({}, `${options.host}:${options.port}`, reason);
    }
    const bound = server.address() as { address: string; port: number };
    const mqtt = new MqttServer(server, options, bound.address, bound.port);
    const hold = options.hold;
    const accept = (socket: Socket): void => (hold === undefined ? mqtt.#accept(socket) : hold.admit(socket, () => mqtt.#accept(socket)));
    if (tls === undefined) server.on('connection', accept);
    else {
      mqtt.#rawSockets = trackRawSockets(server as TlsServer);
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
    server.on('error', (error) => options.logger.error({ err: error }, 'MQTT listener error'));
    return mqtt;
  }

  #accept(socket: Socket): void {
    const { limits, logger } = this.options;
    if (this.#sockets.size >= limits.maxConnections + Math.max(100, limits.maxConnections / 10)) {
      socket.destroy();
      return;
    }
    // Per-address limits and connect rates: decided here, before anything is read.
    const admitted = this.#abuse.accept(socket.remoteAddress ?? '?');
    if (admitted === undefined) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    const transport = new SocketTransport(socket);
    transport.gateAddress = admitted.counted;
    const connection = new MqttConnection(transport, this.options.broker, limits, this.options.clock ?? systemClock, logger, this.#registry, this.options.authenticate);
    connection.guard(admitted.guard);
    transport.connection = connection;
    transport.server = this;
    // Shared listeners (`this` is the socket): no closures per connection, which matters at
    // tens of thousands of idle connections.
    socket.on('data', onSocketData);
    socket.on('drain', onSocketDrain);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** A socket of this server closed. */
  socketClosed(socket: Socket): void {
    this.#sockets.delete(socket);
    this.#abuse.release((socket as TransportSocket)[TRANSPORT].gateAddress);
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** Stops accepting new connections; the ones open stay (the broker closes them next). */
  stopAccepting(): void {
    if (this.#listenerClosed === undefined) this.#listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #listenerClosed: Promise<void> | undefined;

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

const TRANSPORT = Symbol('shardline.mqtt.transport');

interface TransportSocket extends Socket {
  [TRANSPORT]: SocketTransport;
}

/** A net.Socket (plain or TLS) as a connection's Transport. */
class SocketTransport extends GatheringWriter implements Transport {
  connection!: MqttConnection;
  server!: MqttServer;
  /** The address counted by the connect gate for this socket (released once, at close). */
  gateAddress: string | undefined;
  constructor(readonly socket: Socket) {
    super();
    (socket as TransportSocket)[TRANSPORT] = this;
  }

  get remoteAddress(): string {
    return remoteAddressOf(this.socket);
  }

  // Getters rather than fields: read once at CONNECT, and no bytes per idle connection.
  get certificateName(): string | undefined {
    return this.server.kind === 'tls' ? certificateNameOf(this.socket) : undefined;
  }

  get kind(): string {
    return this.server.kind;
  }


  protected sendNow(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  protected get unsentBytes(): number {
    return this.socket.writableLength;
  }

  end(): void {
    this.flush();
    this.socket.end();
    // A client that does not close its side must not keep the socket forever.
    setTimeout(destroySocket, 2000, this.socket).unref();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

function onSocketData(this: TransportSocket, chunk: Buffer): void {
  this[TRANSPORT].connection.onData(chunk);
}

function onSocketDrain(this: TransportSocket): void {
  this[TRANSPORT].connection.onDrain();
}

function onSocketError(this: TransportSocket, error: Error): void {
  const transport = this[TRANSPORT];
  transport.server.logger.debug({ err: error, clientId: transport.connection.clientId }, 'socket error');
}

function onSocketClose(this: TransportSocket): void {
  const transport = this[TRANSPORT];
  transport.server.socketClosed(this);
  transport.connection.onClose();
}
