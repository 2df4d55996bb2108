// The Kafka listener: a TcpListener (protocols/listener: bind, admission, abuse gate, the same
// limits as MQTT's) whose socket handler is this thin glue: socket bytes into a KafkaConnection,
// its frames onto the socket, its close and pause decisions onto the socket.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ShardStore } from '../../../shard-model/index.js';
import { remoteAddressOf, type AbuseControl, TcpListener, type AdmissionLimits, type ConnectionHold, type InboundBudget } from '../../listener/index.js';
import { KafkaErrors, type KafkaStruct, type RequestHeader } from '../codec/index.js';
import { KafkaConnection } from './connection.js';
import { KafkaGroupService } from './groups/group-service.js';
import { Idempotence } from './idempotence.js';
import { MqttTopic, type MqttTopicBroker } from './mqtt-topic.js';
import { apiName, errorLabel, firstErrorCode, type KafkaRequestListener } from './request-events.js';
import { type Authenticate, SaslSession } from './sasl.js';
import { KafkaService, type KafkaClient, type ServedTopic } from './service.js';
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
  /** The node's Authenticator (SASL PLAIN and SCRAM-SHA-256; anonymous clients only if it admits them). */
  authenticate: Authenticate;
  logger: Logger;
  /** The node-wide budget for large inbound requests (--max-inbound-bytes), shared with MQTT. */
  inboundBudget?: InboundBudget | undefined;
  /** Show the broker's MQTT data shards as this Kafka topic (mqtt-topic.ts). */
  mqttTopic?: { name: string; broker: MqttTopicBroker } | undefined;
}

export class KafkaServer {
  #listener!: TcpListener;
  readonly #connections = new Set<KafkaConnection>();
  readonly #requestListeners = new Set<KafkaRequestListener>();

  private constructor(private readonly options: KafkaServerOptions, private readonly service: KafkaService, private readonly groups: KafkaGroupService) {}

  get address(): string {
    return this.#listener.address;
  }

  get port(): number {
    return this.#listener.port;
  }

  static async start(options: KafkaServerOptions): Promise<KafkaServer> {
    const topics = await TopicCatalog.open(options.store);
    const idempotence = await Idempotence.open(options.store);
    let bound: { host: string; port: number } = { host: options.host, port: options.port };
    const advertised = options.advertised === undefined ? undefined : parseHostPort(options.advertised);
    let mqttTopic: MqttTopic | undefined;
    if (options.mqttTopic !== undefined) {
      const { name, broker } = options.mqttTopic;
      // A Kafka topic made under this name before it was the MQTT topic's keeps it: its records stay readable.
      if (topics.get(name) === undefined) mqttTopic = new MqttTopic(name, broker);
      else options.logger.warn({ topic: name }, `a Kafka topic named ${name} exists, so the MQTT traffic is not shown as it; set --kafka-mqtt-topic to another name`);
    }
    const limits = options.groupInitialRebalanceDelayMs === undefined ? {} : { initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs };
    const groups = await KafkaGroupService.open({ store: options.store, partitionsOf: (name) => (name === mqttTopic?.name ? mqttTopic.partitions : topics.get(name)?.partitions), broker: () => ({ nodeId: options.nodeId, ...(advertised ?? bound) }), limits, logger: options.logger });
    const service = new KafkaService({ mqttTopic, store: options.store, topics, idempotence, nodeId: options.nodeId, clusterId: options.clusterId, advertised: () => advertised ?? bound, groups, logger: options.logger });
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
    const sasl = new SaslSession(this.options.authenticate, remoteAddressOf(socket));
    // Kafka writes a member's host as "/address" (DescribeGroups' clientHost); the user is SASL's, once authenticated.
    const client: KafkaClient = { host: `/${socket.remoteAddress ?? ''}`, remoteAddress: socket.remoteAddress ?? '', get username() { return sasl.username; } };
    const connection = new KafkaConnection((header, body, signal) => this.#handle(header, body, signal, sasl, client), {
      send: (chunks) => {
        if (chunks.length === 1) {
          socket.write(chunks[0]!);
          return;
        }
        // One writev for the whole response.
        socket.cork();
        for (const chunk of chunks) socket.write(chunk);
        socket.uncork();
      },
      close: (reason, error) => {
        logger.debug({ remote: remoteAddressOf(socket), reason, err: error }, 'Kafka connection closed');
        socket.destroy();
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    }, { maxFrameBytes, budget: this.options.inboundBudget });
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

  /** Kafka connections open now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Every topic served (the MQTT one included), with its partitions' shards, sorted by name. */
  topics(): ServedTopic[] {
    return this.service.servedTopics();
  }

  /** Calls `listener` after every request a handler answered (or failed); returns the unsubscribe. */
  onRequest(listener: KafkaRequestListener): () => void {
    this.#requestListeners.add(listener);
    return () => this.#requestListeners.delete(listener);
  }

  /** The connection's SASL exchange, then the service's handler; timed and reported when anyone listens. */
  async #handle(header: RequestHeader, body: KafkaStruct, signal: AbortSignal, sasl: SaslSession, client: KafkaClient): Promise<KafkaStruct | undefined> {
    if (this.#requestListeners.size === 0) return this.#authenticated(header, body, signal, sasl, client);
    const started = performance.now();
    let error = 'HANDLER_FAILED';
    try {
      const response = await this.#authenticated(header, body, signal, sasl, client);
      error = errorLabel(firstErrorCode(response));
      return response;
    } finally {
      const event = { api: apiName(header.apiKey), seconds: (performance.now() - started) / 1000, error };
      for (const listener of this.#requestListeners) listener(event);
    }
  }

  async #authenticated(header: RequestHeader, body: KafkaStruct, signal: AbortSignal, sasl: SaslSession, client: KafkaClient): Promise<KafkaStruct | undefined> {
    if (SaslSession.isSaslApi(header.apiKey)) return sasl.handle(header.apiKey, body);
    // A refusal here closes the connection (the handler failed), as Kafka does before authentication.
    if (!(await sasl.admits(header.apiKey))) throw KafkaErrors.unauthenticated.create({ apiKey: header.apiKey }, header.apiKey);
    return this.service.handle(header, body, signal, client);
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
