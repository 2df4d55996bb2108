// The MQTT listener over TCP or TLS: protocols/listener binds, checks certificates and admits
// each socket; this gives each admitted socket an MqttConnection with real timers. Sockets past
// the listener's headroom over max-connections never get here; up to it, the CONNACK refusal
// (quota exceeded) tells clients why.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Broker, type Clock } from '../../engine/index.js';
import { AbuseControl, certificateNameOf, remoteAddressOf, TcpListener, type ClientGuard, type ConnectionHold, type TlsListener } from '../listener/index.js';
import { MqttErrors } from './errors.js';
import { GatheringWriter } from './gathering-writer.js';
import { MqttConnection, type Authenticate, type ConnectionRegistry, type Transport } from './connection.js';
import type { MqttLimits } from './limits.js';

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

/** SL_MQTT_LISTEN_FAILED for a listener of the MQTT front end that cannot bind. */
export function mqttListenFailed(address: string, reason: string): Error {
  return MqttErrors.listenFailed.create({}, address, reason);
}

export class MqttServer {
  readonly #registry: ConnectionRegistry;
  readonly #abuse: AbuseControl;
  #listener!: TcpListener;

  private constructor(private readonly options: MqttServerOptions) {
    this.#registry = options.registry ?? { connected: 0 };
    // Over the limits object itself, not a copy: live settings change it in place.
    this.#abuse = options.abuse ?? new AbuseControl(options.limits, options.clock ?? systemClock, options.logger);
  }

  get host(): string {
    return this.#listener.host;
  }

  get port(): number {
    return this.#listener.port;
  }

  get kind(): 'tcp' | 'tls' {
    return this.#listener.kind;
  }

  get address(): string {
    return this.#listener.address;
  }

  /** Options for the node's other listeners (TLS, WebSocket): the same broker, limits, authentication and connection count. */
  get sharedOptions(): MqttServerOptions {
    return { ...this.options, registry: this.#registry, abuse: this.#abuse };
  }

  get connectedClients(): number {
    return this.#registry.connected;
  }

  get openSockets(): number {
    return this.#listener.openSockets;
  }

  static async start(options: MqttServerOptions): Promise<MqttServer> {
    const mqtt = new MqttServer(options);
    mqtt.#listener = await TcpListener.start({
      protocol: 'MQTT',
      host: options.host,
      port: options.port,
      portSetting: options.portSetting ?? '--mqtt-port',
      listenFailed: mqttListenFailed,
      logger: options.logger,
      limits: options.limits,
      abuse: mqtt.#abuse,
      tls: options.tls,
      hold: options.hold,
      onSocket: (socket, guard) => mqtt.#serve(socket, guard),
      onClose: onSocketClose,
    });
    return mqtt;
  }

  #serve(socket: Socket, guard: ClientGuard): void {
    const { limits, logger } = this.options;
    const transport = new SocketTransport(socket);
    const connection = new MqttConnection(transport, this.options.broker, limits, this.options.clock ?? systemClock, logger, this.#registry, this.options.authenticate);
    connection.guard(guard);
    transport.connection = connection;
    transport.server = this;
    // Shared listeners (`this` is the socket): no closures per connection, which matters at
    // tens of thousands of idle connections.
    socket.on('data', onSocketData);
    socket.on('drain', onSocketDrain);
    socket.on('error', onSocketError);
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** Stops accepting new connections; the ones open stay (the broker closes them next). */
  stopAccepting(): void {
    this.#listener.stopAccepting();
  }

  /** Stops accepting and ends every socket (destroyed after a second if the peer lingers). */
  async stop(): Promise<void> {
    await this.#listener.stop();
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

/** The listener's onClose: it calls this once the socket has closed (no 'close' listener of our own). */
function onSocketClose(socket: Socket): void {
  (socket as TransportSocket)[TRANSPORT].connection.onClose();
}
