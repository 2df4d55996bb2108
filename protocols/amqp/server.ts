// The AMQP 0-9-1 listener over TCP: protocols/listener binds, admits each socket (the node's
// admission headroom and abuse gate, shared with MQTT) and hands it here; this gives each
// admitted socket an AmqpConnectionState with real timers. The glue is thin: bytes in, bytes out.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AuthOutcome, AuthRequest } from '../../engine/index.js';
import { remoteAddressOf, TcpListener, type AbuseControl, type AdmissionLimits, type ClientGuard, type ConnectionHold } from '../listener/index.js';
import { AmqpSession, SESSION_METHODS } from './broker/session.js';
import { MAX_BODY_SIZE, type AmqpBroker } from './broker/broker.js';
import { AmqpConnectionState, type AmqpTimers, type AmqpTuning } from './connection-state.js';
import { AmqpErrors } from './errors.js';

export interface AmqpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  /** The node's admission limits (max-connections, connect-timeout: the handshake's limit). */
  limits: AdmissionLimits;
  /** The node's abuse gate, shared with the MQTT listeners. */
  abuse: AbuseControl;
  authenticate: (request: AuthRequest) => Promise<AuthOutcome>;
  /** server-properties version. */
  version: string;
  tuning?: AmqpTuning;
  hold?: ConnectionHold | undefined;
  /** The node's count of connected clients, shared with MQTT so max-connections counts both. */
  registry?: { connected: number };
  /** Exchanges, queues and messages; without it those methods are answered 540. */
  broker?: AmqpBroker;
}

/** SL_AMQP_LISTEN_FAILED. */
export function amqpListenFailed(address: string, reason: string): Error {
  return AmqpErrors.listenFailed.create({}, address, reason);
}

/** Replies waiting for a client that does not read, before its socket stops being read. */
const MAX_UNREAD_REPLY_BYTES = 1 << 20;
/** Deliveries waiting in the socket's buffer before the broker stops sending more (a no-ack consumer that reads slowly). */
const MAX_UNSENT_DELIVERY_BYTES = 1 << 20;

const REAL_TIMERS: AmqpTimers = {
  after(ms, run) {
    const timer = setTimeout(run, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
  every(ms, run) {
    const timer = setInterval(run, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

export class AmqpServer {
  #listener!: TcpListener;
  readonly #connections = new Set<AmqpConnectionState>();
  readonly #seats: { take(): string | undefined; release(): void };

  private constructor(private readonly options: AmqpServerOptions) {
    const registry = options.registry ?? { connected: 0 };
    const limits = options.limits;
    this.#seats = {
      take: () => {
        if (registry.connected >= limits.maxConnections) return `the broker is at its connection limit (${limits.maxConnections})`;
        registry.connected += 1;
        return undefined;
      },
      release: () => {
        registry.connected -= 1;
      },
    };
  }

  get port(): number {
    return this.#listener.port;
  }

  get address(): string {
    return this.#listener.address;
  }

  get openConnections(): number {
    return this.#connections.size;
  }

  static async start(options: AmqpServerOptions): Promise<AmqpServer> {
    const server = new AmqpServer(options);
    server.#listener = await TcpListener.start({
      protocol: 'AMQP',
      host: options.host,
      port: options.port,
      portSetting: '--amqp-port',
      listenFailed: amqpListenFailed,
      logger: options.logger,
      limits: options.limits,
      abuse: options.abuse,
      hold: options.hold,
      onSocket: (socket, guard) => server.#serve(socket, guard),
    });
    return server;
  }

  #serve(socket: Socket, guard: ClientGuard): void {
    const { logger, broker } = this.options;
    let destroyTimer: NodeJS.Timeout | undefined;
    let corked = false;
    const uncork = (): void => {
      corked = false;
      socket.uncork();
    };
    const connection = new AmqpConnectionState(
      {
        send: (bytes) => {
          if (socket.destroyed) return;
          // The frames one turn sends (deliveries, a run of confirms told one by one, the
          // replies to a chunk of commands) leave as one writev at the end of the turn, not one
          // system call each: on loopback every write also runs the receiver's TCP path.
          if (!corked) {
            corked = true;
            socket.cork();
            queueMicrotask(uncork);
          }
          socket.write(bytes);
        },
        close: () => {
          socket.end();
          // A client that does not close its side must not keep the socket forever.
          destroyTimer = setTimeout(() => socket.destroy(), 2000);
          destroyTimer.unref();
        },
        remoteAddress: remoteAddressOf(socket),
        timers: REAL_TIMERS,
        logger,
        authenticate: this.options.authenticate,
        seats: this.#seats,
        ...(broker === undefined ? {} : { openSession: (host) => new AmqpSession(broker, host) }),
        writable: () => socket.writableLength < MAX_UNSENT_DELIVERY_BYTES,
      },
      {
        handshakeTimeoutMs: this.options.limits.connectTimeoutMs,
        refusal: guard.refusal,
        version: this.options.version,
        sessionMethods: SESSION_METHODS,
        maxBodySize: MAX_BODY_SIZE,
        ...(this.options.tuning === undefined ? {} : { tuning: this.options.tuning }),
      },
    );
    this.#connections.add(connection);
    socket.on('data', (chunk: Buffer) => {
      try {
        connection.onData(chunk);
      } catch (error) {
        // A bug, not the peer's fault: this connection goes, the node stays.
        logger.error({ err: error, remote: remoteAddressOf(socket) }, 'AMQP connection failed');
        connection.onClosed();
        socket.destroy();
        return;
      }
      // Every request has a reply: a client that sends without reading stops being read
      // until it has read what it was sent, so replies cannot pile up in memory.
      if (socket.writableLength > MAX_UNREAD_REPLY_BYTES) socket.pause();
    });
    socket.on('drain', () => {
      socket.resume();
      connection.onDrain();
    });
    socket.on('error', (error) => logger.debug({ err: error }, 'AMQP socket error'));
    socket.on('close', () => {
      if (destroyTimer !== undefined) clearTimeout(destroyTimer);
      connection.onClosed();
      this.#connections.delete(connection);
    });
  }

  stopAccepting(): void {
    this.#listener.stopAccepting();
  }

  async stop(): Promise<void> {
    this.options.broker?.close();
    await this.#listener.stop();
  }
}
