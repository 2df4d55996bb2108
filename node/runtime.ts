// The node runtime: runs the roles of one process (placement, journal, broker) and the admin API over a
// plain, already-parsed NodeSettings object. cli/commands/start.ts parses the flags, the
// environment and the config file, handles the signals and turns the outcome into an exit code.
//
// Roles: journal (the shard journal on dataDir, served over gRPC), broker (MQTT over the
// engine) and placement (a voter of the placement group, placement-role.ts). Without roles
// journal and broker run in one process and the broker uses the journal in-process; a
// broker-only node keeps no local state and reaches a journal server through the remote
// ShardStore. A node that runs placement, or is given the placement group's addresses,
// registers itself with the group and keeps its lease alive (registration.ts). Every node, whatever its roles, also serves the admin HTTP API (admin/: REST,
// /metrics, /healthz), guarded by a bearer token (admin-token.ts).
//
// Start-up order: open the journal (takes the data directory's lock), start the placement voter,
// serve the journal over gRPC, open the broker (rebuilds sessions and retained messages from the
// journal), bind MQTT (and its transports; AMQP when --amqp-port or --amqps-port is set), bind the admin API, then serve MQTT clients, start
// the registration (in the background: placement being away never holds a node back) and log
// the one listening line. All
// or nothing: MQTT connections accepted before the last listener is bound wait unanswered
// (ConnectionHold), so a failure at any step (a port in use, say) undoes the earlier ones and
// start() rejects with the error before any client was served.
// Shutdown order: stop the admin API (no operator action may race the shutdown), stop the
// heartbeats, stop accepting MQTT connections (TCP, then TLS and WebSocket) and AMQP ones, close the broker
// (clients get DISCONNECT 0x8B, in-flight appends finish, cursors written), stop the gRPC
// server, stop the placement voter, close the journal (indexes written, files closed, lock
// released).
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { AdminErrors, AdminServer, amqpAdminRoutes, createMetrics, kafkaAdminRoutes, mqttAdminRoutes, placementAdminRoutes, replicaSetAdminRoutes, replicationAdminRoutes, type InboundStats } from '../admin/index.js';
import { Broker, DelayedPublisher, JournalWatch, SysPublisher, systemClock, TopicRewriter, WriteGate, type AclStore, type Authenticator, type DiskStatus, type UserStore } from '../engine/index.js';
import { isShardlineError, pickLimits } from '../base/index.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, Journal, JournalServer, ReplicaClient, ReplicationNode, type JournalCredentials } from '../journal/index.js';
import { kafkaBrokerId, KafkaServer, type KafkaClusterMember, type KafkaListenerName } from '../protocols/kafka/index.js';
import { ConnectionHold } from '../protocols/listener/index.js';
import { InboundBudget, MQTT_LIMITS, MqttServer, type MqttLimits } from '../protocols/mqtt/index.js';
import { AmqpBroker, AmqpServer, DEFAULT_AMQP_TUNING } from '../protocols/amqp/index.js';
import type { Role as PlacementRoleName } from '../placement/metadata/index.js';
import { DEFAULT_PLACEMENT_GRPC_PORT, PlacementClient } from '../placement/service/index.js';
import { LocalShardStore, PlacedShardStore, PlacementView, RemoteShardStore, RemovedReplicas, ReplicationController, type RemoteShardStoreOptions, type ShardStore } from '../shard-model/index.js';
import { installAcl } from './acl.js';
import { adminToken } from './admin-token.js';
import { openAuthentication } from './authentication.js';
import { dataShardPolicy, DiskWatch } from './disk.js';
import { journalCredentials, logJournalProtection } from './journal-access.js';
import { setLogLevel } from './logger.js';
import { PlacementRole, type PlacementRoleOptions, type RunningPlacement } from './placement-role.js';
import { KAFKA_ENDPOINTS, KafkaPeers } from './kafka-peers.js';
import { Registration } from './registration.js';
import { replicaSetSource } from './replica-set-source.js';
import { effectiveRoles, type BrokerConfig, type ExtrasRules, type NodeSettings, type SettingsCatalog } from './settings.js';
import { loadNodeTls, startTransports, type TransportListener } from './transports.js';
import { WorkerPool, type WorkerLink } from './workers.js';

/** How long a broker waits for its remote journal to answer at start-up. */
const REMOTE_JOURNAL_WAIT_MS = 30_000;

export interface NodeOptions {
  /** Read where each value is used; live changes (PATCH /api/config) are written into it. */
  readonly settings: NodeSettings;
  /** The config file's sections the broker role needs, already validated. */
  readonly broker: BrokerConfig;
  readonly catalog: SettingsCatalog;
  /** Made by createLogger (logger.ts), so a live log-level change reaches every child. */
  readonly logger: Logger;
  /** This release (package.json), for $SYS and the admin API. */
  readonly version: string;
  /** Set in an MQTT worker process (workers.ts): its broker id and its link to the primary; it serves no admin API. */
  readonly worker?: { readonly brokerId: string; readonly link: WorkerLink };
}

/** Logs a start-up failure as a structured line, then rethrows it for the caller to report. */
function logFailure(logger: Logger, what: string, error: unknown): never {
  if (isShardlineError(error)) logger.error({ code: error.code, context: error.context }, `${what}: ${error.message}`);
  throw error;
}

/** Retries the first call while a remote journal is still starting (SL_REMOTE_UNAVAILABLE). */
async function connectRemoteJournal(address: string, options: RemoteShardStoreOptions, logger: Logger): Promise<ShardStore> {
  const store = await RemoteShardStore.connect(address, options);
  const started = Date.now();
  for (let attempt = 0; ; attempt += 1) {
    try {
      await store.list();
      return store;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SL_REMOTE_UNAVAILABLE' || Date.now() - started > REMOTE_JOURNAL_WAIT_MS) {
        await store.close();
        throw error;
      }
      if (attempt === 0) logger.info({ journal: address }, 'waiting for the remote journal to answer');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

function inboundStats(budget: InboundBudget): () => InboundStats {
  return () => budget.stats;
}

/** The MQTT limits out of the settings: every limit of the table, none other (protocols/mqtt/limits.ts). */
function mqttLimits(settings: NodeSettings): MqttLimits {
  return pickLimits(MQTT_LIMITS, settings);
}

/**
 * PATCH /api/config: validates every change first (all or nothing), then applies each where it
 * is read: the loggers, the MQTT limits object every connection of every listener shares, the
 * broker's queue bound.
 */
async function changeSettings(settings: NodeSettings, catalog: SettingsCatalog, changes: Record<string, unknown>, running: Running, logger: Logger): Promise<void> {
  const parsed: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(changes)) {
    if (!catalog.isLive(key)) throw AdminErrors.notLive.create({ setting: key }, key);
    try {
      parsed.push([key, catalog.parseLive(key, value)]);
    } catch (error) {
      throw AdminErrors.badRequest.create({}, (error as Error).message);
    }
  }
  const next = { ...settings } as unknown as Record<string, unknown>;
  for (const [key, value] of parsed) next[catalog.field(key)] = value;
  const serverKeepAlive = next.serverKeepAlive as number;
  const maxKeepAlive = next.maxKeepAlive as number;
  if (serverKeepAlive !== 0 && serverKeepAlive > maxKeepAlive) {
    throw AdminErrors.badRequest.create({}, `server-keep-alive ${serverKeepAlive} is more than max-keep-alive ${maxKeepAlive}; lower it or raise max-keep-alive`);
  }
  Object.assign(settings, next);
  setLogLevel(logger, settings.logLevel);
  if (running.limits !== undefined) Object.assign(running.limits, mqttLimits(settings));
  if (running.broker !== undefined) running.broker.maxQueuedBytes = settings.maxQueuedBytes;
  running.inboundBudget?.setLimit(settings.maxInboundBytes);
  if (running.authenticator !== undefined) running.authenticator.allowAnonymous = settings.allowAnonymous;
  const keys = parsed.map(([key]) => key);
  // Retention and segment size: the data shards' settings change at once (shard.json too).
  if (running.journal !== undefined && keys.some((key) => key.startsWith('data-'))) {
    await running.journal.setShardPolicy(dataShardPolicy(settings));
    await running.journal.enforceRetention();
  }
  if (running.diskWatch !== undefined && keys.some((key) => key.startsWith('disk-'))) await running.diskWatch.check();
}

/** What runs, in start order; stopped in reverse. */
interface Running {
  /** The limits object every MQTT connection reads (live settings change it in place). */
  limits?: MqttLimits;
  /** MQTT connections accepted before every listener is bound wait here. */
  hold: ConnectionHold;
  journal?: Journal;
  journalServer?: JournalServer;
  /** The journal's replication driver (--replica-peers, or peers from placement). */
  replication?: ReplicationNode;
  /** A journal node's view of placement, from which its replication peers come. */
  journalPeers?: PlacementView;
  /** A journal node of a placement cluster: deletes its copies of shards placement moved elsewhere. */
  removedReplicas?: RemovedReplicas;
  /** On a placement voter of a cluster: assigns replicas and elects shard leaders while it leads. */
  controller?: ReplicationController;
  remoteStore?: ShardStore;
  /** Broker-only nodes: whether the remote journal answers (the write gate's journal-unavailable). */
  journalWatch?: JournalWatch;
  broker?: Broker;
  acl?: AclStore;
  sys?: SysPublisher;
  mqtt?: MqttServer;
  /** Bytes every MQTT listener's connections together may hold in large inbound packets. */
  inboundBudget?: InboundBudget;
  /** MQTTS, WS and WSS listeners (those configured). */
  transports?: TransportListener[];
  /** The AMQP 0-9-1 listener (--amqp-port; preview). */
  amqp?: AmqpServer;
  /** The Kafka listener (--kafka-port; a preview, off by default). */
  kafka?: KafkaServer;
  /** In a cluster, the other Kafka brokers as placement lists them (read once the registration starts). */
  kafkaPeers?: KafkaPeers;
  admin?: AdminServer;
  /** With workers > 1 (the primary): the MQTT worker processes, which run the broker. */
  workers?: WorkerPool;
  /** MQTT users (config file and `$users`), for the admin API. */
  users?: UserStore;
  /** Who may connect; allow-anonymous changes it live. */
  authenticator?: Authenticator;
  /** Free space of the data directory and the disk watermark (nodes with the journal role). */
  diskWatch?: DiskWatch;
  /** This process's placement voter (the placement role). */
  placement?: PlacementRole;
  /** A client to a placement group this node does not vote in (--placement). */
  placementClient?: PlacementClient;
  registration?: Registration;
  /** The id the admin API shows and the registration uses. */
  nodeId?: string;
}

async function stopAll(running: Running, logger: Logger): Promise<void> {
  const step = async (what: string, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      logger.error({ err: error }, `shutdown: ${what} failed`);
    }
  };
  const { admin, mqtt, broker, sys, journalServer, remoteStore, journal, journalWatch } = running;
  running.diskWatch?.stop();
  const transports = running.transports ?? [];
  // The admin API first: a kick or a publish must not reach a broker that is closing.
  if (admin !== undefined) await step('stopping the admin API', () => admin.stop());
  const { registration, placement, placementClient } = running;
  registration?.stop();
  running.kafkaPeers?.stop();
  running.journalPeers?.stop();
  const { controller } = running;
  if (controller !== undefined) await step('stopping the replication controller', () => controller.stop());
  // No new MQTT connections first, then the broker says goodbye to the open ones (0x8B) and
  // finishes its appends, then the sockets go.
  mqtt?.stopAccepting();
  for (const transport of transports) transport.stopAccepting();
  running.amqp?.stopAccepting();
  running.kafka?.stopAccepting();
  const kafka = running.kafka;
  if (kafka !== undefined) await step('stopping the Kafka listener', () => kafka.stop());
  if (sys !== undefined) await step('stopping the $SYS topics', () => sys.stop());
  const { workers } = running;
  // Before the journal server: the workers' brokers write their last cursors through it.
  if (workers !== undefined) await step('stopping the MQTT workers', () => workers.stop());
  if (broker !== undefined) await step('closing the broker', () => broker.close());
  const { acl, users } = running;
  // Their last snapshots go to the journal, which closes after them.
  if (acl !== undefined) await step('closing the ACL store', () => acl.close());
  if (users !== undefined) await step('closing the user store', () => users.close());
  if (mqtt !== undefined) await step('stopping the MQTT listener', () => mqtt.stop());
  for (const transport of transports) await step(`stopping the ${transport.name} listener`, () => transport.stop());
  const { amqp } = running;
  if (amqp !== undefined) await step('stopping the AMQP listener', () => amqp.stop());
  if (journalServer !== undefined) await step('stopping the journal server', () => journalServer.stop(DEFAULT_SHUTDOWN_GRACE_MS));
  const { replication } = running;
  const { removedReplicas } = running;
  if (removedReplicas !== undefined) await step('stopping the removed-replica cleanup', () => removedReplicas.stop());
  if (replication !== undefined) await step('stopping replication', () => replication.close());
  if (placement !== undefined) await step('stopping the placement voter', () => placement.stop());
  journalWatch?.stop();
  if (remoteStore !== undefined) await step('closing the remote journal connection', () => remoteStore.close());
  // After the broker and the placed store: their last appends may still look up shard leaders.
  placementClient?.close();
  if (journal !== undefined) await step('closing the journal', () => journal.close());
}

async function startRoles(options: NodeOptions, running: Running): Promise<void> {
  const { settings, logger } = options;
  const roles = effectiveRoles(settings);
  const { security, aclRules, extras } = options.broker;
  // The shard store the admin API and the metrics read: the broker's, or the journal's own.
  let adminStore: ShardStore | undefined;
  // One set of journal credentials for the server, replication and a broker's remote journal.
  // Workers dial this node's journal port: with no cluster token set, one is made for this run.
  const workerToken = settings.workers > 1 ? (settings.clusterToken ?? randomBytes(24).toString('base64url')) : undefined;
  const journalAccess = await journalCredentials(workerToken === undefined ? settings : { ...settings, clusterToken: workerToken }).catch((error: unknown) => logFailure(logger, 'cannot set up the journal\'s TLS', error));
  if (roles.includes('journal')) {
    running.journal = await Journal.open(settings.dataDir, { logger: logger.child({ component: 'journal' }), shardPolicy: dataShardPolicy(settings), retentionCheckMs: settings.retentionCheckMs, lockWaitMs: settings.lockWaitSeconds * 1000 }).catch((error: unknown) => logFailure(logger, 'cannot open the journal', error));
  }
  if (roles.includes('placement') || runsEmbeddedPlacement(settings)) {
    // A voter-only node has no journal to create the data directory (and the admin token lives there).
    await mkdir(settings.dataDir, { recursive: true });
    const placementLogger = logger.child({ component: 'placement' });
    const voter = roles.includes('placement') ? placementRoleOptions(settings, placementLogger) : embeddedPlacementOptions(settings, placementLogger);
    running.placement = await PlacementRole.start(voter).catch((error: unknown) => logFailure(logger, 'cannot start the placement voter', error));
  }
  if (running.placement !== undefined && !runsEmbeddedPlacement(settings)) {
    const placement = running.placement;
    running.controller = ReplicationController.start({
      client: placement.client,
      isLeader: () => placement.server.status().role === 'leader',
      replicaClient: (address) => new ReplicaClient(address, journalAccess),
      logger: logger.child({ component: 'replication-controller' }),
    });
  }
  const clusterMember = settings.placement !== undefined || (running.placement !== undefined && !runsEmbeddedPlacement(settings));
  const placedReplication = running.journal !== undefined && settings.replicaPeers === undefined && clusterMember && settings.nodeId !== undefined && settings.clusterToken !== undefined;
  if (running.journal !== undefined && (settings.replicaPeers !== undefined || placedReplication)) {
    const journal = running.journal;
    const peers = new Map((settings.replicaPeers ?? []).map((peer) => [String(peer.id), peer.address]));
    const client = placedReplication ? (running.placement?.client ?? clusterClient(settings, running, logger)) : undefined;
    if (client !== undefined) {
      // The other journal nodes' addresses come from their registrations.
      running.journalPeers = PlacementView.start({
        client,
        logger: logger.child({ component: 'replication-peers' }),
        onUpdate: (view) => {
          peers.clear();
          for (const node of view.nodes.values()) if (node.addresses.journal !== undefined) peers.set(node.id, node.addresses.journal);
          running.removedReplicas?.consider(view.shards);
        },
      });
    }
    running.replication = await ReplicationNode.open({ journal, self: String(settings.nodeId), peers, credentials: journalAccess, logger: logger.child({ component: 'replication' }) }).catch((error: unknown) =>
      logFailure(logger, 'cannot open the replicated shards', error),
    );
    if (client !== undefined) running.removedReplicas = new RemovedReplicas({ self: String(settings.nodeId), replication: running.replication, client, logger: logger.child({ component: 'removed-replicas' }) });
  }
  if (running.journal !== undefined) {
    const replication = running.replication === undefined ? {} : { replication: running.replication };
    logJournalProtection(settings, journalAccess, logger);
    running.journalServer = await JournalServer.start({ journal: running.journal, host: settings.host, port: settings.grpcPort, logger: logger.child({ component: 'journal-grpc' }), credentials: journalAccess, ...replication }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve the journal', error),
    );
  }
  if (roles.includes('broker') && workerToken !== undefined && running.journalServer !== undefined) {
    // The broker role runs in the workers, over this process's journal.
    const journal = withHost(running.journalServer.address, '127.0.0.1');
    running.workers = await WorkerPool.start({ count: settings.workers, journal, clusterToken: workerToken, nodeId: settings.nodeId, logger: logger.child({ component: 'workers' }) }).catch((error: unknown) => logFailure(logger, 'cannot start the MQTT workers', error));
  } else if (roles.includes('broker')) {
    let store: ShardStore;
    const writeGate = new WriteGate();
    if (running.journal !== undefined) store = LocalShardStore.over(running.journal);
    else if (settings.journal === undefined) {
      // No --journal: the cluster's replicated shards, each call to its shard's leader.
      store = await PlacedShardStore.open({ client: clusterClient(settings, running, logger), remote: { credentials: journalAccess }, logger: logger.child({ component: 'placed-store' }) }).catch((error: unknown) => logFailure(logger, 'cannot read the shard leaders from placement', error));
      running.remoteStore = store;
    } else {
      running.remoteStore = await connectRemoteJournal(settings.journal as string, { credentials: journalAccess }, logger).catch((error: unknown) => logFailure(logger, `cannot reach the journal at ${settings.journal}`, error));
      // Everything on this node uses the watched store: any call that finds the journal gone
      // closes the write gate at once, and the watch's probes open it when it is back.
      running.journalWatch = JournalWatch.start({ store: running.remoteStore, gate: writeGate, clock: systemClock, logger: logger.child({ component: 'journal-watch' }), address: settings.journal as string });
      store = running.journalWatch.store;
    }
    const peers = settings.brokerPeers ? { brokerId: options.worker?.brokerId ?? brokerIdOf(settings), takeoverWaitMs: settings.takeoverWaitMs } : undefined;
    running.broker = await Broker.open({ store, writeGate, logger: logger.child({ component: 'broker' }), dataShards: settings.dataShards, maxQueuedBytes: settings.maxQueuedBytes, sharedStrategy: settings.sharedStrategy, peers }).catch((error: unknown) =>
      logFailure(logger, 'cannot open the broker', error),
    );
    running.acl = await installAcl(running.broker, store, aclRules, settings, logger.child({ component: 'acl' })).catch((error: unknown) => logFailure(logger, 'cannot set up the ACL', error));
    const { authenticator, users } = await openAuthentication(security as NonNullable<typeof security>, store, logger.child({ component: 'auth' }), settings.brokerPeers).catch((error: unknown) => logFailure(logger, 'cannot load the users', error));
    const authenticate = authenticator.authenticate.bind(authenticator);
    running.users = users;
    running.authenticator = authenticator;
    if (aclRules.length > 0 && !authenticator.credentialsConfigured && settings.allowAnonymous) {
      logger.warn('ACL rules are configured but no users or JWT: user names are the ones clients send, unverified, so anyone can claim any name; configure users or a JWT key and set allow-anonymous false');
    }
    await startExtras(settings, extras, logger, running.broker, store);
    running.sys = SysPublisher.start({ broker: running.broker, clock: systemClock, logger: logger.child({ component: 'sys' }), intervalSeconds: settings.sysInterval, node: settings.nodeName ?? hostname(), version: options.version });
    running.limits = mqttLimits(settings);
    running.inboundBudget = new InboundBudget(settings.maxInboundBytes);
    // One registry for every listener (sharedOptions passes it on): one count, one budget.
    const registry = { connected: 0, inboundBudget: running.inboundBudget };
    running.mqtt = await MqttServer.start({ broker: running.broker, limits: running.limits, host: settings.host, port: settings.mqttPort, logger: logger.child({ component: 'mqtt' }), authenticate, registry, hold: running.hold }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve MQTT', error),
    );
    running.transports = [];
    const tls = await loadNodeTls(settings, logger).catch((error: unknown) => logFailure(logger, 'cannot set up TLS', error));
    await startTransports(settings, running.mqtt.sharedOptions, tls, running.transports).catch((error: unknown) => logFailure(logger, 'cannot serve an MQTT transport', error));
    if (settings.amqpPort !== undefined || settings.amqpsPort !== undefined) {
      // The same admission limits, abuse gate and users as MQTT.
      const shared = running.mqtt.sharedOptions;
      const amqpLogger = logger.child({ component: 'amqp' });
      // Exchanges, durable queues and their messages are read back from their shards first.
      // MQTT traffic is routed on amq.topic both ways, under the same ACL (docs/amqp.md).
      const amqpLimits = { maxQueues: settings.amqpMaxQueues, maxExchanges: settings.amqpMaxExchanges, maxBindings: settings.amqpMaxBindings, maxConsumersPerChannel: settings.amqpMaxConsumersPerChannel };
      const amqpBroker = await AmqpBroker.open({ store, logger: amqpLogger, mqtt: running.broker, limits: amqpLimits }).catch((error: unknown) => logFailure(logger, 'cannot open the AMQP broker', error));
      running.amqp = await AmqpServer.start({ host: settings.host, port: settings.amqpPort, tls: settings.amqpsPort === undefined || tls === undefined ? undefined : { port: settings.amqpsPort, listener: tls }, logger: amqpLogger, limits: running.limits, abuse: shared.abuse as NonNullable<typeof shared.abuse>, authenticate, version: options.version, hold: running.hold, registry, broker: amqpBroker, tuning: { ...DEFAULT_AMQP_TUNING, channelMax: settings.amqpChannelMax }, writeGate: running.broker.writeGate, memoryLimitBytes: settings.amqpMemoryLimitBytes }).catch((error: unknown) =>
        logFailure(logger, 'cannot serve AMQP', error),
      );
    }
    if (settings.kafkaPort !== undefined || settings.kafkasPort !== undefined) {
      const shared = running.mqtt.sharedOptions;
      // In a cluster the broker id comes from the id this node registers under, as every other broker maps it.
      const clustered = inCluster(settings);
      const peers = (): readonly KafkaClusterMember[] | undefined => running.kafkaPeers?.brokers();
      running.kafka = await KafkaServer.start({
        store,
        host: settings.host,
        port: settings.kafkaPort,
        advertised: settings.kafkaAdvertised,
        tls: settings.kafkasPort === undefined || tls === undefined ? undefined : { port: settings.kafkasPort, listener: tls, advertised: settings.kafkasAdvertised },
        // Other brokers hand this node's address to clients: a wildcard is nobody's to dial.
        hostName: clustered ? hostname() : undefined,
        // Kafka broker ids are int32; a single node without a node id is broker 0.
        nodeId: clustered ? kafkaBrokerId(nodeIdOf(settings, { mqtt: running.mqtt.address })) : settings.nodeId !== undefined && settings.nodeId <= 0x7fffffff ? settings.nodeId : 0,
        peers: clustered ? peers : undefined,
        clusterId: settings.clusterId,
        maxFrameBytes: settings.kafkaMaxRequestBytes,
        inboundBudget: running.inboundBudget,
        mqttTopic: settings.kafkaMqttTopic === 'none' ? undefined : { name: settings.kafkaMqttTopic, broker: running.broker },
        groupInitialRebalanceDelayMs: settings.kafkaGroupInitialRebalanceDelayMs,
        limits: running.limits,
        abuse: shared.abuse as NonNullable<typeof shared.abuse>,
        hold: running.hold,
        authenticate,
        logger: logger.child({ component: 'kafka' }),
      }).catch((error: unknown) => logFailure(logger, 'cannot serve Kafka', error));
    }
    adminStore = store;
  }
  if (adminStore === undefined && running.journal !== undefined) adminStore = LocalShardStore.over(running.journal);
  if (running.journal !== undefined) {
    running.diskWatch = await DiskWatch.start({
      journal: running.journal,
      settings: () => ({ freeMinPercent: settings.diskFreeMinPercent, freeMinBytes: settings.diskFreeMinBytes }),
      intervalMs: settings.diskCheckMs,
      logger: logger.child({ component: 'disk' }),
      ...(running.broker === undefined ? {} : { broker: running.broker }),
    });
  }
  warnAboutRetention(settings, logger);
  if ((settings.kafkaPort !== undefined || settings.kafkasPort !== undefined) && running.kafka === undefined && options.worker === undefined) logger.warn({ kafkaPort: settings.kafkaPort, kafkasPort: settings.kafkasPort }, 'kafka-port or kafkas-port is set but this node does not run the broker role: no Kafka listener');
  // A worker's node is described by its primary's admin API.
  if (options.worker === undefined) await startAdmin(options, running, adminStore, journalAccess);
}

/**
 * Session expiry is not capped by retention (decided; docs/operations.md, "Retention"): a
 * session's subscriptions and settings are worth keeping longer than the messages, and
 * retention by size bounds no time at all. A session offline for longer than the messages are
 * kept resumes at the oldest kept message and counts the gap. Said once at start.
 */
function warnAboutRetention(settings: NodeSettings, logger: Logger): void {
  if (settings.dataRetention > 0 && settings.maxSessionExpiry > settings.dataRetention) {
    logger.warn({ maxSessionExpiry: settings.maxSessionExpiry, dataRetention: settings.dataRetention }, 'max-session-expiry is longer than data-retention: a session offline for longer than data-retention loses the messages retention deletes meanwhile (it resumes at the oldest kept message; the gap is counted in its session info)');
  }
}

/** Delayed publish, rewrite and auto-subscribe rules, Response Information: on the broker before MQTT is served. */
async function startExtras(settings: NodeSettings, rules: ExtrasRules, logger: Logger, broker: Broker, store: ShardStore): Promise<void> {
  broker.extras.responseInformation = settings.responseInformation;
  if (rules.rewrite.length > 0) broker.extras.rewrite = new TopicRewriter(rules.rewrite);
  if (rules.autoSubscribe.length > 0) broker.extras.autoSubscribe = rules.autoSubscribe;
  if (settings.maxDelayedMessages > 0) {
    broker.extras.delayed = await DelayedPublisher.open({
      store,
      host: {
        publish: (message) => broker.publish(message),
        mayPublish: (publisherId, topic) => {
          // The publish was checked when the delayed message was accepted. At its time it is
          // checked again while its client is still known (rules may have changed since); a
          // client gone by then keeps the decision made when it published.
          const identity = broker.identityOf(publisherId);
          return identity === undefined || broker.access.mayPublish(identity, topic);
        },
      },
      clock: systemClock,
      logger: logger.child({ component: 'delayed' }),
      maxDelaySeconds: settings.maxDelaySeconds,
      maxMessages: settings.maxDelayedMessages,
    }).catch((error: unknown) => logFailure(logger, 'cannot open the delayed messages', error));
  }
  if (rules.rewrite.length > 0 || rules.autoSubscribe.length > 0) logger.info({ rewriteRules: rules.rewrite.length, autoSubscribeRules: rules.autoSubscribe.length }, 'topic rules loaded');
}

async function startAdmin(options: NodeOptions, running: Running, store: ShardStore | undefined, journalAccess: JournalCredentials): Promise<void> {
  const { settings, logger, catalog } = options;
  const dataDir = running.journal?.directory ?? (running.placement === undefined ? undefined : settings.dataDir);
  const token = await adminToken(settings.adminToken, dataDir, logger).catch((error: unknown) => logFailure(logger, 'cannot set up the admin token', error));
  const addresses: Record<string, string> = {};
  if (running.mqtt !== undefined) addresses.mqtt = running.mqtt.address;
  for (const transport of running.transports ?? []) addresses[transport.name] = transport.address;
  Object.assign(addresses, running.workers?.addresses);
  if (running.amqp?.plain !== undefined) addresses.amqp = running.amqp.plain.address;
  if (running.amqp?.secure !== undefined) addresses.amqps = running.amqp.secure.address;
  if (running.kafka?.plain !== undefined) addresses.kafka = running.kafka.plain.address;
  if (running.kafka?.secure !== undefined) addresses.kafkas = running.kafka.secure.address;
  if (running.journalServer !== undefined) addresses.journalGrpc = running.journalServer.address;
  if (running.placement !== undefined && !runsEmbeddedPlacement(settings)) addresses.placement = running.placement.address;
  const node = { id: nodeIdOf(settings, addresses), roles: effectiveRoles(settings), version: options.version, addresses };
  running.nodeId = node.id;
  const diskWatch = running.diskWatch;
  const disks = (): DiskStatus[] => (diskWatch?.status === undefined ? [] : [diskWatch.status]);
  running.admin = await AdminServer.start({
    broker: running.broker,
    store,
    node,
    token,
    metrics: createMetrics({
      broker: running.broker,
      store,
      node: node.id,
      disks,
      ...(running.journal === undefined ? {} : { journal: running.journal }),
      ...(running.inboundBudget === undefined ? {} : { inbound: inboundStats(running.inboundBudget) }),
      ...(running.placement === undefined ? {} : { placement: running.placement.admin }),
      ...(running.kafka === undefined ? {} : { kafka: running.kafka }),
      ...(running.amqp === undefined ? {} : { amqp: running.amqp }),
      ...(running.workers === undefined ? {} : { workers: () => (running.workers as WorkerPool).status() }),
    }),
    disks,
    logger,
    settings: () => catalog.view(settings),
    changeSettings: (changes) => changeSettings(settings, catalog, changes, running, logger),
    ...(running.users === undefined ? {} : { users: running.users }),
    ...(running.acl === undefined ? {} : { acl: running.acl }),
    // Every node serves /api/mqtt: without the broker role its routes answer 503, not 404.
    protocols: [mqttAdminRoutes(running.broker), kafkaAdminRoutes(running.kafka, store), amqpAdminRoutes(running.amqp)],
    // Every journal node serves /api/replication/shards: one that replicates nothing answers 503.
    ...(running.journal === undefined ? {} : { replication: replicationAdminRoutes(running.replication) }),
    // Every node serves /api/replication/sets: a single node (no cluster, no --replica-peers) answers 503.
    replicaSets: replicaSetAdminRoutes(replicaSetSource({
      view: running.journalPeers ?? (running.remoteStore instanceof PlacedShardStore ? running.remoteStore.view : undefined),
      client: running.placement === undefined || runsEmbeddedPlacement(settings) ? undefined : running.placement.client,
      replicaPeers: running.replication === undefined || settings.replicaPeers === undefined ? undefined : { node: running.replication, peers: new Map(settings.replicaPeers.map((peer) => [String(peer.id), peer.address])) },
      credentials: journalAccess,
    })),
    // The embedded one-voter group of the single-node default is shown too: it is this node's placement.
    ...(running.placement === undefined ? {} : { cluster: placementAdminRoutes(running.placement.admin, { changeProgress: (shard) => running.controller?.changeProgress(shard) }) }),
    // Not the embedded one-voter group: the single node's readiness is its broker and journal.
    ...(running.placement === undefined || runsEmbeddedPlacement(settings) ? {} : { placementReadiness: running.placement.admin }),
    ...(running.replication === undefined ? {} : { replicationReadiness: replicationReadiness(running, String(settings.nodeId)) }),
    host: settings.host,
    port: settings.adminPort,
  }).catch((error: unknown) => logFailure(logger, 'cannot serve the admin API', error));
  addresses.admin = running.admin.address;
}

/**
 * A journal node's catch-up for /readyz: its replicas that have not caught up since it started
 * and, in a placement cluster, the shards placement assigns it that it does not hold yet (a node
 * whose data directory was lost gets them back from the controller, then copies them).
 */
function replicationReadiness(running: Running, self: string): { notCaughtUp(): string[] } {
  return {
    notCaughtUp: () => {
      const behind = running.replication?.notCaughtUp() ?? [];
      const view = running.journalPeers;
      const journal = running.journal;
      if (view === undefined || journal === undefined) return behind;
      if (view.reads === 0) return [...behind, 'placement not read yet (which shards are assigned to this node)'];
      const held = new Set(journal.listShards().map((info) => info.name));
      for (const shard of view.shards.values()) if (shard.replicas.includes(self) && !held.has(shard.name)) behind.push(`${shard.name}: assigned to this node, not created here yet`);
      return behind;
    },
  };
}

/**
 * The id this node registers under and the admin API and metrics show: node-id when set;
 * without it host name plus the first address, which tells nodes on one machine apart.
 */
function nodeIdOf(settings: NodeSettings, addresses: Record<string, string>): string {
  return settings.nodeId === undefined ? `${hostname()}/${Object.values(addresses)[0] ?? 'admin'}` : String(settings.nodeId);
}

/** The voter's options: peers as given (or this node alone), bound on placement-port or its own entry's port. */
function placementRoleOptions(settings: NodeSettings, logger: Logger): PlacementRoleOptions {
  // resolveStartSettings made sure both are set for the placement role.
  const nodeId = settings.nodeId as number;
  const clusterToken = settings.clusterToken as string;
  const peers = new Map((settings.placementPeers ?? [{ id: nodeId, address: formatAddress(settings.host, settings.placementPort ?? DEFAULT_PLACEMENT_GRPC_PORT) }]).map((peer) => [peer.id, peer.address]));
  const own = peers.get(nodeId) as string;
  const port = settings.placementPort ?? Number(own.slice(own.lastIndexOf(':') + 1));
  // A joining voter (no peer list, resolveStartSettings refused both) is known to the group at host:placement-port.
  return { nodeId, peers, ...(settings.placementJoin === undefined ? {} : { join: settings.placementJoin }), host: settings.host, port, clusterId: settings.clusterId, clusterToken, dataDir: settings.dataDir, lockWaitMs: settings.lockWaitSeconds * 1000, logger };
}

/**
 * Whether this node is one of a cluster's brokers: it registers with a placement group of
 * voters (--placement, or it is a voter itself), not the single node's embedded one.
 */
function inCluster(settings: NodeSettings): boolean {
  return settings.placement !== undefined || effectiveRoles(settings).includes('placement');
}

/**
 * The single-node default (no roles, no placement group given) runs a one-voter placement group
 * of its own, in-process, so that even one node has cluster metadata and is registered in it.
 */
function runsEmbeddedPlacement(settings: NodeSettings): boolean {
  return settings.roles === undefined && settings.placement === undefined;
}

/**
 * The embedded voter: node-id (default 1), on loopback and a port the OS picks (nothing outside
 * this process dials it), with a token made for this run; its storage is DATA-DIR/placement
 * like any voter's, bootstrapped on the first start.
 */
function embeddedPlacementOptions(settings: NodeSettings, logger: Logger): PlacementRoleOptions {
  const nodeId = settings.nodeId ?? 1;
  const clusterToken = settings.clusterToken ?? randomBytes(24).toString('base64url');
  return { nodeId, peers: new Map([[nodeId, '127.0.0.1:0']]), host: '127.0.0.1', port: 0, clusterId: settings.clusterId, clusterToken, dataDir: settings.dataDir, lockWaitMs: settings.lockWaitSeconds * 1000, logger };
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** A worker tells its primary it serves, with the addresses it bound. */
function reportReady(link: WorkerLink, running: Running): void {
  const mqtt = running.mqtt as MqttServer;
  const broker = running.broker as Broker;
  const addresses: Record<string, string> = { mqtt: mqtt.address };
  for (const transport of running.transports ?? []) addresses[transport.name] = transport.address;
  link.ready(addresses, () => ({ connections: mqtt.connectedClients, messagesIn: broker.stats.messagesIn, messagesOut: broker.stats.messagesOut }));
}

/** HOST:PORT with the port of `address` (a bound HOST:PORT or [V6]:PORT) and another host. */
function withHost(address: string, host: string): string {
  return formatAddress(host, Number(address.slice(address.lastIndexOf(':') + 1)));
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Registers this node with its placement group: the voter's own client when it runs the
 * placement role, a client to the --placement addresses otherwise; none without either.
 */
function startRegistration(settings: NodeSettings, running: Running, nodeId: string, logger: Logger): void {
  const client = running.placement?.client ?? (settings.placement === undefined ? undefined : clusterClient(settings, running, logger));
  if (client === undefined) return;
  const bound: Partial<Record<PlacementRoleName, string>> = { journal: running.journalServer?.address, broker: running.mqtt?.address ?? running.workers?.addresses.mqtt, placement: running.placement?.address };
  // Other nodes dial what is registered (the journal's address, above all): a wildcard is nobody's to dial.
  const served = settings.advertiseHost === undefined ? bound : Object.fromEntries(Object.entries(bound).map(([role, address]) => [role, address === undefined ? undefined : withHost(address, settings.advertiseHost as string)]));
  if (settings.advertiseHost === undefined && isWildcard(settings.host) && served.journal !== undefined) {
    logger.warn({ host: settings.host, journal: served.journal }, 'this journal node registers a wildcard address with placement, which other nodes cannot dial: set advertise-host to the name they reach it by');
  }
  // The embedded voter of the single-node default is not one of the node's roles.
  const roles = effectiveRoles(settings).filter((role) => served[role] !== undefined);
  const addresses = Object.fromEntries(roles.map((role) => [role, served[role] as string]));
  const kafka = running.kafka;
  // Each open Kafka listener's advertised address, under the name kafka-peers.ts reads it by.
  const advertised = Object.entries(kafka?.advertisedAddresses() ?? {}).map(([listener, address]) => [KAFKA_ENDPOINTS[listener as KafkaListenerName], address]);
  const endpoints = advertised.length === 0 ? undefined : Object.fromEntries(advertised) as Record<string, string>;
  running.registration = Registration.start({ client, nodeId, roles, addresses, ...(endpoints === undefined ? {} : { endpoints }), logger: logger.child({ component: 'registration' }) });
  if (kafka !== undefined && inCluster(settings)) running.kafkaPeers = KafkaPeers.start({ client, logger: logger.child({ component: 'kafka-peers' }) });
}

/** The client to the --placement group (made once): registration, replication peers and shard leaders use it. */
function clusterClient(settings: NodeSettings, running: Running, logger: Logger): PlacementClient {
  // Short per-request budgets: the registration retries on its own schedule, and a node
  // shutting down must not wait out a long request to a group that is away.
  running.placementClient ??= new PlacementClient({ addresses: settings.placement ?? [], clusterId: settings.clusterId, clusterToken: settings.clusterToken as string, requestTimeoutMs: 3_000, attemptTimeoutMs: 2_000, logger: logger.child({ component: 'placement-client' }) });
  return running.placementClient;
}

/** The listening line: every address this node serves on, as fields and in the message. */
function logListening(options: NodeOptions, running: Running): void {
  const where: Record<string, string | number> = {};
  const parts: string[] = [];
  /** One listener: `NAME=ADDRESS` in the message, NAME (or field) and its port as fields. */
  const listed = (name: string, listener: { address: string; port: number } | undefined, field = name, portField = `${field}Port`): void => {
    if (listener === undefined) return;
    where[field] = listener.address;
    where[portField] = listener.port;
    parts.push(`${name}=${listener.address}`);
  };
  listed('mqtt', running.mqtt);
  for (const transport of running.transports ?? []) listed(transport.name, transport);
  for (const [name, address] of Object.entries(running.workers?.addresses ?? {})) listed(name, { address, port: portOf(address) });
  listed('amqp', running.amqp?.plain);
  listed('amqps', running.amqp?.secure);
  listed('kafka', running.kafka?.plain);
  listed('kafkas', running.kafka?.secure);
  listed('journal-grpc', running.journalServer, 'journalGrpc', 'port');
  // The embedded voter of the single-node default is internal: its port is nobody's to dial.
  if (!runsEmbeddedPlacement(options.settings)) listed('placement', running.placement);
  listed('admin', running.admin);
  const { settings, logger } = options;
  const workers = running.workers === undefined ? {} : { workers: settings.workers };
  logger.info({ ...where, ...workers, roles: effectiveRoles(settings), dataDir: running.journal?.directory, journal: settings.journal }, `listening ${parts.join(' ')}`);
}

/** One process's roles: start() them all or none, stop() them in reverse order. */
export class ShardlineNode {
  readonly #options: NodeOptions;
  readonly #running: Running = { hold: new ConnectionHold() };

  constructor(options: NodeOptions) {
    this.#options = options;
  }

  /** Starts every role and the admin API, then serves clients; on a failure stops what started and rejects. */
  async start(): Promise<void> {
    try {
      await startRoles(this.#options, this.#running);
      this.#running.hold.openAll();
      const worker = this.#options.worker;
      if (worker !== undefined) {
        reportReady(worker.link, this.#running);
        return;
      }
      startRegistration(this.#options.settings, this.#running, this.#running.nodeId as string, this.#options.logger);
    } catch (error) {
      this.#running.hold.discard();
      await stopAll(this.#running, this.#options.logger);
      throw error;
    }
    logListening(this.#options, this.#running);
  }

  /** The ordered shutdown; a step that fails is logged and the next one still runs. */
  stop(): Promise<void> {
    return stopAll(this.#running, this.#options.logger);
  }

  /** This process's placement voter and a client to its group (the placement role), for the admin routes. */
  get placement(): RunningPlacement | undefined {
    return this.#running.placement;
  }

  /** Cancels in-flight journal gRPC calls at once (a second signal: the process exits next). */
  forceStop(): void {
    this.#running.journalServer?.forceStop();
  }
}

/**
 * The name a broker sharing its journal writes into the sessions it holds and its heartbeats.
 * With a node id it is the same after a restart, so the restarted broker recovers its own crashed
 * sessions at once; without one it is new per process, and those sessions are adopted once the
 * old name has been silent for takeover-wait-ms (docs/deployment.md, "Scaling brokers").
 */
function brokerIdOf(settings: NodeSettings): string {
  return settings.nodeId !== undefined ? `node-${settings.nodeId}` : `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
