// The MQTT listener: binds a TCP port and gives each socket an MqttConnection with real timers.
// Sockets beyond the connection limit's headroom are dropped at accept, before any buffer is
// allocated for them; up to it, the CONNACK refusal (quota exceeded) tells clients why.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Broker, type Clock } from '../../engine/index.js';
import { AbuseControl } from './abuse.js';
import { MqttErrors } from './errors.js';
import { MqttConnection, type Authenticate, type ConnectionRegistry, type MqttLimits, type Transport } from './connection.js';

export const DEFAULT_MQTT_PORT = 1883;

export interface MqttServerOptions {
  broker: Broker;
  limits: MqttLimits;
  host: string;
  port: number;
  logger: Logger;
  clock?: Clock;
  authenticate?: Authenticate;
  /** Abuse limits shared by a node's listeners; default: this server's own, over `limits`. */
  abuse?: AbuseControl;
}

export class MqttServer {
  readonly #sockets = new Set<Socket>();
  readonly #registry: ConnectionRegistry = { connected: 0 };
  readonly #abuse: AbuseControl;

  private constructor(
    private readonly server: Server,
    private readonly options: MqttServerOptions,
    readonly host: string,
    readonly port: number,
  ) {
    // Over the limits object itself, not a copy: live settings change it in place.
    this.#abuse = options.abuse ?? new AbuseControl(options.limits, options.clock ?? systemClock, options.logger);
  }

  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  get connectedClients(): number {
    return this.#registry.connected;
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  static async start(options: MqttServerOptions): Promise<MqttServer> {
    const server = createServer({ noDelay: true });
    const listening = once(server, 'listening');
    server.listen({ host: options.host, port: options.port });
    try {
      await Promise.race([listening, once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'EADDRINUSE' ? 'the port is already in use (another broker running? pick another with --mqtt-port)' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (error as Error).message;
      throw MqttErrors.listenFailed.create({}, `${options.host}:${options.port}`, reason);
    }
    const bound = server.address() as { address: string; port: number };
    const mqtt = new MqttServer(server, options, bound.address, bound.port);
    server.on('connection', (socket) => mqtt.#accept(socket));
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
    }, 1000);
    await this.#listenerClosed;
    clearTimeout(deadline);
  }
}

const TRANSPORT = Symbol('shardline.mqtt.transport');
/** Bytes a socket may hold unsent before its session stops sending (per connection). */
const SOCKET_BUFFER_BYTES = 256 * 1024;
/** Packets are gathered up to this many bytes per write. */
const GATHER_BYTES = 64 * 1024;

interface TransportSocket extends Socket {
  [TRANSPORT]: SocketTransport;
}

/**
 * A net.Socket as a connection's Transport. Packets written in one tick are gathered into one
 * buffer and written once: a write (and its bookkeeping) per delivered message is what limits
 * fan-in and fan-out otherwise.
 */
class SocketTransport implements Transport {
  connection!: MqttConnection;
  server!: MqttServer;
  /** The address counted by the connect gate for this socket (released once, at close). */
  gateAddress: string | undefined;
  #gathered: Buffer[] | undefined;
  #gatheredBytes = 0;
  #flushScheduled = false;

  constructor(readonly socket: Socket) {
    (socket as TransportSocket)[TRANSPORT] = this;
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  write(data: Buffer): boolean {
    if (data.length >= GATHER_BYTES) {
      // Large payloads go out as they are, after whatever was gathered before them.
      this.flush();
      this.socket.write(data);
    } else {
      (this.#gathered ??= []).push(data);
      this.#gatheredBytes += data.length;
      if (this.#gatheredBytes >= GATHER_BYTES) this.flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(flushTransport, this);
      }
    }
    // Backpressure past a quarter MiB, not Node's 16 KiB high-water mark: one large message
    // would otherwise stall a fast reader until the next 'drain' (which fires, since any write
    // that leaves this much buffered has returned false).
    return this.socket.writableLength + this.#gatheredBytes < SOCKET_BUFFER_BYTES;
  }

  flush(): void {
    this.#flushScheduled = false;
    const gathered = this.#gathered;
    if (gathered === undefined || gathered.length === 0) return;
    const data = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, this.#gatheredBytes);
    this.#gathered = undefined;
    this.#gatheredBytes = 0;
    if (!this.socket.destroyed) this.socket.write(data);
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

function flushTransport(transport: SocketTransport): void {
  transport.flush();
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
