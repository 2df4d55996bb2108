// The Kafka listener: a TcpListener (protocols/listener: bind, admission, abuse gate, the same
// limits as MQTT's) whose socket handler is this thin glue: socket bytes into a KafkaConnection,
// its frames onto the socket, its close and pause decisions onto the socket.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ShardStore } from '../../../shard-model/index.js';
import { remoteAddressOf, type AbuseControl, TcpListener, type AdmissionLimits, type ConnectionHold } from '../../listener/index.js';
import { KafkaErrors } from '../codec/index.js';
import { KafkaConnection } from './connection.js';
import { KafkaGroupService } from './groups/group-service.js';
import { KafkaService } from './service.js';
import { TopicCatalog } from './topics.js';

/** Kafka's default connections.max.idle.ms (10 minutes). */
const IDLE_TIMEOUT_MS = 600_000;

export interface KafkaServerOptions {
  store: ShardStore;
  host: string;
  port: number;
  /** HOST:PORT Metadata advertises; undefined: the bound address. */
  advertised?: string | undefined;
  nodeId: number;
  clusterId: string;
  maxFrameBytes: number;
  /** Kafka's group.initial.rebalance.delay.ms; default the coordinator's (3 s). */
  groupInitialRebalanceDelayMs?: number | undefined;
  limits: AdmissionLimits;
  /** The node's abuse gate, shared with MQTT so per-address counts and rates cover both. */
  abuse: AbuseControl;
  hold?: ConnectionHold | undefined;
  logger: Logger;
}

export class KafkaServer {
  #listener!: TcpListener;
  readonly #connections = new Set<KafkaConnection>();

  private constructor(private readonly options: KafkaServerOptions, private readonly service: KafkaService, private readonly groups: KafkaGroupService) {}

  get address(): string {
    return this.#listener.address;
  }

  get port(): number {
    return this.#listener.port;
  }

  static async start(options: KafkaServerOptions): Promise<KafkaServer> {
    const topics = await TopicCatalog.open(options.store);
    let bound: { host: string; port: number } = { host: options.host, port: options.port };
    const advertised = options.advertised === undefined ? undefined : parseHostPort(options.advertised);
    const limits = options.groupInitialRebalanceDelayMs === undefined ? {} : { initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs };
    const groups = await KafkaGroupService.open({ store: options.store, partitionsOf: (name) => topics.get(name)?.partitions, broker: () => ({ nodeId: options.nodeId, ...(advertised ?? bound) }), limits, logger: options.logger });
    const service = new KafkaService({ store: options.store, topics, nodeId: options.nodeId, clusterId: options.clusterId, advertised: () => advertised ?? bound, groups, logger: options.logger });
    const server = new KafkaServer(options, service, groups);
    server.#listener = await TcpListener.start({
      protocol: 'Kafka',
      host: options.host,
      port: options.port,
      portSetting: '--kafka-port',
      listenFailed: (address, reason) => KafkaErrors.listenFailed.create({}, address, reason),
      logger: options.logger,
      limits: options.limits,
      abuse: options.abuse,
      hold: options.hold,
      onSocket: (socket) => server.#serve(socket),
    });
    bound = { host: server.#listener.host, port: server.#listener.port };
    return server;
  }

  #serve(socket: Socket): void {
    const { logger, maxFrameBytes } = this.options;
    // Kafka writes a member's host as "/address" (DescribeGroups' clientHost).
    const client = { host: `/${socket.remoteAddress ?? ''}` };
    const connection = new KafkaConnection((header, body, signal) => this.service.handle(header, body, signal, client), {
      send: (frame) => socket.write(frame),
      close: (reason, error) => {
        logger.debug({ remote: remoteAddressOf(socket), reason, err: error }, 'Kafka connection closed');
        socket.destroy();
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    }, { maxFrameBytes });
    this.#connections.add(connection);
    // Kafka's connections.max.idle.ms: a connection silent this long is closed (clients reconnect).
    socket.setTimeout(IDLE_TIMEOUT_MS, () => connection.close('idle'));
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('error', (error) => logger.debug({ err: error, remote: remoteAddressOf(socket) }, 'Kafka socket error'));
    socket.on('close', () => {
      connection.ended();
      this.#connections.delete(connection);
    });
  }

  stopAccepting(): void {
    this.#listener.stopAccepting();
  }

  async stop(): Promise<void> {
    this.groups.stop();
    for (const connection of this.#connections) connection.ended();
    await this.#listener.stop();
  }
}

function parseHostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(at + 1)) };
}
