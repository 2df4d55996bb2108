// The MQTT listener: binds a TCP port and gives each socket an MqttConnection with real timers.
// Sockets beyond the connection limit's headroom are dropped at accept, before any buffer is
// allocated for them; up to it, the CONNACK refusal (quota exceeded) tells clients why.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Broker, type Clock } from '../../engine/index.js';
import { MqttErrors } from './errors.js';
import { MqttConnection, type Authenticate, type ConnectionRegistry, type MqttLimits } from './connection.js';

export const DEFAULT_MQTT_PORT = 1883;

export interface MqttServerOptions {
  broker: Broker;
  limits: MqttLimits;
  host: string;
  port: number;
  logger: Logger;
  clock?: Clock;
  authenticate?: Authenticate;
}

export class MqttServer {
  readonly #sockets = new Set<Socket>();
  readonly #registry: ConnectionRegistry = { connected: 0 };

  private constructor(
    private readonly server: Server,
    private readonly options: MqttServerOptions,
    readonly host: string,
    readonly port: number,
  ) {}

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
    this.#sockets.add(socket);
    // Writes made in one tick go out as one writev: a syscall per delivered message is what
    // limits fan-in and fan-out otherwise.
    let corked = false;
    const uncork = (): void => {
      corked = false;
      socket.uncork();
    };
    const connection = new MqttConnection(
      {
        write: (data) => {
          if (!corked) {
            corked = true;
            socket.cork();
            process.nextTick(uncork);
          }
          return socket.write(data);
        },
        end: () => {
          socket.end();
          // A client that does not close its side must not keep the socket forever.
          setTimeout(() => socket.destroy(), 2000).unref();
        },
        pause: () => socket.pause(),
        resume: () => socket.resume(),
        remoteAddress: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      },
      this.options.broker,
      limits,
      this.options.clock ?? systemClock,
      logger,
      this.#registry,
      this.options.authenticate,
    );
    socket.on('data', (chunk: Buffer) => connection.onData(chunk));
    socket.on('drain', () => connection.onDrain());
    socket.on('error', (error) => logger.debug({ err: error, clientId: connection.clientId }, 'socket error'));
    socket.on('close', () => {
      this.#sockets.delete(socket);
      connection.onClose();
    });
  }

  /** Stops accepting; existing sockets are closed by the broker's shutdown, then destroyed. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.#sockets) socket.end();
    const deadline = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, 1000);
    await closed;
    clearTimeout(deadline);
  }
}
