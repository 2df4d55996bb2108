// The Kafka listeners, over TCP (--kafka-port) and TLS (--kafkas-port): TcpListeners
// (protocols/listener: bind, admission, abuse gate, the same limits as MQTT's) whose socket
// handler is this thin glue: socket bytes into a KafkaConnection, its frames onto the socket, its
// close and pause decisions onto the socket. Both serve one service; each advertises its own
// address, so a client that bootstrapped over TLS is sent on over TLS.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { isShardlineError } from '../../../base/index.js';
import type { ShardStore } from '../../../shard-model/index.js';
import { remoteAddressOf, type AbuseControl, TcpListener, type AdmissionLimits, type ConnectionHold, type InboundBudget, type TlsListener } from '../../listener/index.js';
import { KafkaErrors, type KafkaStruct, type RequestHeader } from '../codec/index.js';
import { formatAdvertised, normalizeBrokers, parseAdvertised, type KafkaAddress, type KafkaClusterMember, type KafkaClusterView, type KafkaListenerName } from './cluster.js';
import { KafkaConnection } from './connection.js';
import type { GroupSummary } from './groups/coordinator.js';
import { KafkaGroupService } from './groups/group-service.js';
import { groupDetail, memberViews, partitionsOf, type GroupDetail } from './groups/group-view.js';
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
  /** The plain listener's port; undefined: none. */
  port?: number | undefined;
  /** HOST:PORT Metadata advertises to the plain listener's clients; undefined: the bound address. */
  advertised?: string | undefined;
  /** The TLS listener: its port, the node's certificate, and what it advertises; undefined: none. */
  tls?: { port: number; listener: TlsListener; advertised?: string | undefined } | undefined;
  /**
   * Advertised instead of a wildcard bound host (0.0.0.0, ::) when `advertised` is unset, as
   * Kafka advertises the machine's host name for a listener without a host; undefined: the
   * bound host as it is.
   */
  hostName?: string | undefined;
  /** This broker's Kafka id (in a cluster, kafkaBrokerId of its node id). */
  nodeId: number;
  /**
   * In a cluster: the other live brokers with a Kafka endpoint, each with its listeners' addresses
   * (this one may be among them, it is always listed with its own listeners), undefined until
   * they were read once; no function: this node is the only broker.
   */
  peers?: (() => readonly KafkaClusterMember[] | undefined) | undefined;
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
  readonly #listeners = new Map<KafkaListenerName, TcpListener>();
  readonly #connections = new Set<KafkaConnection>();
  readonly #requestListeners = new Set<KafkaRequestListener>();

  private constructor(private readonly options: KafkaServerOptions, private readonly service: KafkaService, private readonly groups: KafkaGroupService) {}

  /** The plain listener, if there is one. */
  get plain(): { address: string; port: number } | undefined {
    return this.#listeners.get('plain');
  }

  /** The TLS listener, if there is one. */
  get secure(): { address: string; port: number } | undefined {
    return this.#listeners.get('tls');
  }

  /** Per open listener, the HOST:PORT its clients are told to dial: kafka(s)-advertised, else the bound address. */
  advertisedAddresses(): Partial<Record<KafkaListenerName, string>> {
    const addresses: Partial<Record<KafkaListenerName, string>> = {};
    for (const listener of this.#listeners.keys()) addresses[listener] = formatAdvertised(this.service.self(listener));
    return addresses;
  }

  static async start(options: KafkaServerOptions): Promise<KafkaServer> {
    const topics = await TopicCatalog.open(options.store);
    const idempotence = await Idempotence.open(options.store, options.peers === undefined ? {} : { brokerId: options.nodeId });
    // What each listener advertises: the setting, else the address it bound (known once it has;
    // a wildcard host is replaced by hostName, as Kafka advertises the machine's name).
    const addresses = new Map<KafkaListenerName, { host: string; port: number }>();
    const configured = new Map<KafkaListenerName, { host: string; port: number }>();
    if (options.advertised !== undefined) configured.set('plain', parseAdvertised(options.advertised));
    if (options.tls?.advertised !== undefined) configured.set('tls', parseAdvertised(options.tls.advertised));
    const advertised = (listener: KafkaListenerName): { host: string; port: number } => configured.get(listener) ?? addresses.get(listener) ?? { host: options.host, port: 0 };
    let mqttTopic: MqttTopic | undefined;
    if (options.mqttTopic !== undefined) {
      const { name, broker } = options.mqttTopic;
      // A Kafka topic made under this name before it was the MQTT topic's keeps it: its records stay readable.
      if (topics.get(name) === undefined) mqttTopic = new MqttTopic(name, broker);
      else options.logger.warn({ topic: name }, `a Kafka topic named ${name} exists, so the MQTT traffic is not shown as it; set --kafka-mqtt-topic to another name`);
    }
    const limits = options.groupInitialRebalanceDelayMs === undefined ? {} : { initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs };
    // This broker as the others see it: the listeners it was asked to open, at their advertised addresses.
    const self = (): KafkaClusterMember => {
      const listeners: Partial<Record<KafkaListenerName, KafkaAddress>> = {};
      if (options.port !== undefined) listeners.plain = advertised('plain');
      if (options.tls !== undefined) listeners.tls = advertised('tls');
      return { nodeId: options.nodeId, listeners };
    };
    const peers = options.peers;
    const cluster: KafkaClusterView | undefined = peers === undefined ? undefined : {
      selfId: options.nodeId,
      brokers: () => {
        const others = peers();
        return others === undefined ? undefined : normalizeBrokers([self(), ...others.filter((broker) => broker.nodeId !== options.nodeId)]);
      },
    };
    const groups = await KafkaGroupService.open({ store: options.store, partitionsOf: (name) => (name === mqttTopic?.name ? mqttTopic.partitions : topics.get(name)?.partitions), broker: (listener) => ({ nodeId: options.nodeId, ...advertised(listener) }), cluster, limits, logger: options.logger });
    const service = new KafkaService({ mqttTopic, store: options.store, topics, idempotence, nodeId: options.nodeId, clusterId: options.clusterId, advertised, groups, cluster, logger: options.logger });
    const server = new KafkaServer(options, service, groups);
    const listen = async (name: KafkaListenerName, port: number, tls: TlsListener | undefined): Promise<void> => {
      const listener = await TcpListener.start({
        protocol: tls === undefined ? 'Kafka' : 'Kafka over TLS',
        host: options.host,
        port,
        portSetting: tls === undefined ? '--kafka-port' : '--kafkas-port',
        listenFailed: (address, reason) => KafkaErrors.listenFailed.create({}, address, reason),
        logger: options.logger,
        limits: options.limits,
        abuse: options.abuse,
        hold: options.hold,
        tls,
        onSocket: (socket) => server.#serve(socket, name),
      });
      server.#listeners.set(name, listener);
      const wildcard = ['0.0.0.0', '::'].includes(listener.host);
      addresses.set(name, { host: wildcard && options.hostName !== undefined ? options.hostName : listener.host, port: listener.port });
    };
    try {
      if (options.port !== undefined) await listen('plain', options.port, undefined);
      if (options.tls !== undefined) await listen('tls', options.tls.port, options.tls.listener);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  #serve(socket: Socket, listener: KafkaListenerName): void {
    const { logger, maxFrameBytes } = this.options;
    const sasl = new SaslSession(this.options.authenticate, remoteAddressOf(socket));
    // Kafka writes a member's host as "/address" (DescribeGroups' clientHost); the user is SASL's, once authenticated.
    const client: KafkaClient = { host: `/${socket.remoteAddress ?? ''}`, remoteAddress: socket.remoteAddress ?? '', listener, get username() { return sasl.username; } };
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

  /** Every consumer group with members or committed offsets, sorted by id. */
  consumerGroups(): GroupSummary[] {
    return this.groups.coordinator.summaries();
  }

  /** One group's members, and per partition its committed offset, log end offset and lag; undefined when there is no such group. */
  async consumerGroup(groupId: string): Promise<GroupDetail | undefined> {
    return (await this.#groupDetails([groupId]))[0];
  }

  /** Every group's detail, as consumerGroup gives it: what the lag metric is read from at scrape time. */
  consumerGroupDetails(): Promise<GroupDetail[]> {
    return this.#groupDetails(this.consumerGroups().map((group) => group.groupId));
  }

  async #groupDetails(groupIds: readonly string[]): Promise<GroupDetail[]> {
    const coordinator = this.groups.coordinator;
    // Taken together before any await, so a group's members, offsets and state agree.
    const views = groupIds.flatMap((groupId) => {
      const summary = coordinator.summary(groupId);
      if (summary === undefined) return [];
      const members = memberViews(coordinator.describe(groupId));
      const committed = coordinator.offsets(groupId);
      return [{ summary, members, committed }];
    });
    const shardsOf = new Map(this.topics().map((topic) => [topic.name, topic.shards]));
    const shardOf = (topic: string, partition: number): string | undefined => shardsOf.get(topic)?.[partition];
    // One high-watermark read per shard however many groups commit to it.
    const ends = new Map<string, number | undefined>();
    const needed = new Set(views.flatMap(({ members, committed }) => partitionsOf(members, committed).map(({ topic, partition }) => shardOf(topic, partition))));
    await Promise.all([...needed].map(async (shard) => {
      if (shard === undefined) return;
      try {
        ends.set(shard, await this.options.store.highWatermark(shard));
      } catch (error) {
        // A topic deleted since the commit: no log end, so no lag; any other failure is the caller's.
        if (!isShardlineError(error, 'SL_JOURNAL_SHARD_NOT_FOUND')) throw error;
      }
    }));
    return views.map(({ summary, members, committed }) => groupDetail(summary, members, committed, (topic, partition) => {
      const shard = shardOf(topic, partition);
      return shard === undefined ? undefined : ends.get(shard);
    }));
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
    for (const listener of this.#listeners.values()) listener.stopAccepting();
  }

  async stop(): Promise<void> {
    this.groups.stop();
    for (const connection of this.#connections) connection.ended();
    await Promise.all([...this.#listeners.values()].map((listener) => listener.stop()));
  }
}
