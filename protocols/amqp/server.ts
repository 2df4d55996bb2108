// The AMQP 0-9-1 listeners, over TCP (--amqp-port) and TLS (--amqps-port): protocols/listener
// binds, admits each socket (the node's admission headroom and abuse gate, shared with MQTT) and
// hands it here; this gives each admitted socket an AmqpConnectionState with real timers. Both
// listeners serve the one broker. The glue is thin: bytes in, bytes out.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AuthOutcome, AuthRequest, WriteGate } from '../../engine/index.js';
import { remoteAddressOf, TcpListener, type AbuseControl, type AdmissionLimits, type ClientGuard, type ConnectionHold, type TlsListener } from '../listener/index.js';
import { AmqpSession, SESSION_METHODS } from './broker/session.js';
import { MAX_BODY_SIZE, type AmqpBroker } from './broker/broker.js';
import { AmqpConnectionState, type AmqpTimers, type AmqpTuning } from './connection-state.js';
import { AmqpErrors } from './errors.js';
import { alarmReason } from './resource-alarm.js';

export interface AmqpServerOptions {
  host: string;
  /** The plain TCP listener's port (0 picks a free one); undefined: none. */
  port?: number | undefined;
  /** The TLS listener (AMQPS): its port and the node's certificate; undefined: none. */
  tls?: { port: number; listener: TlsListener } | undefined;
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
  /** The node's write gate (disk low, journal unreachable): closed, it blocks publishing connections. */
  writeGate?: Pick<WriteGate, 'blocks' | 'onChange'>;
  /** amqp-memory-limit-bytes: message bytes held by the queues past which publishers are blocked; 0 or absent: none. */
  memoryLimitBytes?: number;
}

/** What the admin API shows of one connection. */
export interface AmqpConnectionInfo {
  id: string;
  remoteAddress: string;
  /** Undefined until authenticated. */
  user: string | undefined;
  channels: number;
  /** Epoch ms the socket was accepted. */
  since: number;
  /** Whether its socket is not being read now (blocked: the node is under a resource alarm and it publishes). */
  blocked: boolean;
}

/** SL_AMQP_LISTEN_FAILED. */
export function amqpListenFailed(address: string, reason: string): Error {
  return AmqpErrors.listenFailed.create({}, address, reason);
}

/** Replies waiting for a client that does not read, before its socket stops being read. */
const MAX_UNREAD_REPLY_BYTES = 1 << 20;
/** Deliveries waiting in the socket's buffer before the broker stops sending more (a no-ack consumer that reads slowly). */
const MAX_UNSENT_DELIVERY_BYTES = 1 << 20;
/** How often the resource alarm is sampled (the write gate also triggers it at once). */
const ALARM_SAMPLE_MS = 250;

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
  #plain: TcpListener | undefined;
  #secure: TcpListener | undefined;
  /** Open connections with the time each was accepted. */
  readonly #connections = new Map<AmqpConnectionState, number>();
  #blockedReason: string | undefined;
  #alarmTimer: NodeJS.Timeout | undefined;
  #gateListener: (() => void) | undefined;
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

  /** The plain listener, if there is one. */
  get plain(): { address: string; port: number } | undefined {
    return this.#plain;
  }

  /** The TLS listener (AMQPS), if there is one. */
  get secure(): { address: string; port: number } | undefined {
    return this.#secure;
  }

  get openConnections(): number {
    return this.#connections.size;
  }

  /** The broker the connections' sessions use; undefined when exchanges and queues are not served. */
  get broker(): AmqpBroker | undefined {
    return this.options.broker;
  }

  /** Channels open over all connections. */
  get openChannels(): number {
    let count = 0;
    for (const connection of this.#connections.keys()) count += connection.openChannels;
    return count;
  }

  /** Why publishers are blocked now (connection.blocked's reason), or undefined. */
  get blockedReason(): string | undefined {
    return this.#blockedReason;
  }

  connections(): AmqpConnectionInfo[] {
    return [...this.#connections].map(([connection, since]) => ({ id: connection.id, remoteAddress: connection.remoteAddress, user: connection.username, channels: connection.openChannels, since, blocked: connection.readingPaused }));
  }

  /** Closes a connection with 320 CONNECTION_FORCED; false when no open connection has that id. */
  closeConnection(id: string, reason: string): boolean {
    for (const connection of this.#connections.keys()) {
      if (connection.id !== id) continue;
      connection.forceClose(reason);
      return true;
    }
    return false;
  }

  /** Samples the alarm's inputs; on a change every connection is told. */
  #checkAlarm(): void {
    const { broker, writeGate, memoryLimitBytes, logger } = this.options;
    const reason = alarmReason({ writeBlocks: writeGate?.blocks ?? [], heldBytes: broker?.heldBytes() ?? 0, memoryLimitBytes: memoryLimitBytes ?? 0 });
    if (reason === this.#blockedReason) return;
    if ((reason === undefined) !== (this.#blockedReason === undefined)) {
      if (reason === undefined) logger.info('AMQP resource alarm cleared: publishing connections are read again (connection.unblocked)');
      else logger.warn({ reason }, 'AMQP resource alarm: publishing connections are not read until it clears (connection.blocked)');
    }
    this.#blockedReason = reason;
    for (const connection of this.#connections.keys()) connection.setBlocked(reason);
  }

  static async start(options: AmqpServerOptions): Promise<AmqpServer> {
    const server = new AmqpServer(options);
    const listen = (port: number, portSetting: string, tls: TlsListener | undefined): Promise<TcpListener> =>
      TcpListener.start({
        protocol: tls === undefined ? 'AMQP' : 'AMQPS',
        host: options.host,
        port,
        portSetting,
        listenFailed: amqpListenFailed,
        logger: options.logger,
        limits: options.limits,
        abuse: options.abuse,
        hold: options.hold,
        tls,
        onSocket: (socket, guard) => server.#serve(socket, guard),
      });
    if (options.port !== undefined) server.#plain = await listen(options.port, '--amqp-port', undefined);
    try {
      if (options.tls !== undefined) server.#secure = await listen(options.tls.port, '--amqps-port', options.tls.listener);
    } catch (error) {
      await server.#plain?.stop();
      throw error;
    }
    server.#checkAlarm();
    server.#alarmTimer = setInterval(() => server.#checkAlarm(), ALARM_SAMPLE_MS);
    server.#alarmTimer.unref();
    server.#gateListener = options.writeGate?.onChange(() => server.#checkAlarm());
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
        pauseReading: (paused) => {
          if (paused) socket.pause();
          else if (socket.writableLength <= MAX_UNREAD_REPLY_BYTES) socket.resume();
        },
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
    this.#connections.set(connection, Date.now());
    connection.setBlocked(this.#blockedReason);
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
      if (!connection.readingPaused) socket.resume();
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
    this.#plain?.stopAccepting();
    this.#secure?.stopAccepting();
  }

  async stop(): Promise<void> {
    if (this.#alarmTimer !== undefined) clearInterval(this.#alarmTimer);
    this.#gateListener?.();
    this.options.broker?.close();
    await Promise.all([this.#plain?.stop(), this.#secure?.stop()]);
  }
}
