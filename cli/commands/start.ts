// `shardline start`: runs node roles in this process until SIGTERM or SIGINT.
// Roles: journal (the shard journal on --data-dir, served over gRPC) and broker (MQTT on
// --mqtt-port over the engine). Without --roles both run in one process and the broker uses the
// journal in-process; `--roles broker --journal HOST:PORT` keeps no local state and reaches a
// journal server through the remote ShardStore.
//
// Every node, whatever its roles, also serves the admin HTTP API (engine/admin: REST, /metrics,
// /healthz) on --host:--admin-port, guarded by a bearer token (see adminToken below).
//
// Start-up order: open the journal (takes the data directory's lock), serve it over gRPC, open
// the broker (rebuilds sessions and retained messages from the journal), bind MQTT (and its
// transports), bind the admin API, then serve MQTT clients and log the one listening line. All
// or nothing: MQTT connections accepted before the last listener is bound wait unanswered
// (ConnectionHold), so a failure at any step (a port in use, say) undoes the earlier ones and
// exits 1 with the error before any client was served.
// Shutdown order: stop the admin API (no operator action may race the shutdown), stop accepting
// MQTT connections (TCP, then TLS and WebSocket), close the broker (clients get DISCONNECT 0x8B,
// in-flight appends finish, cursors written), stop the gRPC server, close the journal (indexes
// written, files closed, lock released), exit 0.
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AdminServer } from '../../engine/admin/admin-server.js';
import { AdminErrors } from '../../engine/admin/admin-errors.js';
import { createMetrics, type InboundStats } from '../../engine/admin/metrics.js';
import { Broker, DelayedPublisher, JournalWatch, SysPublisher, systemClock, TopicRewriter, WriteGate, type AclStore, type Authenticator, type DiskStatus, type UserStore } from '../../engine/index.js';
import { isShardlineError } from '../../base/index.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, Journal, JournalServer } from '../../journal/index.js';
import { ConnectionHold, InboundBudget, MqttServer, type MqttLimits } from '../../protocols/mqtt/index.js';
import { LocalShardStore, RemoteShardStore, type ShardStore } from '../../shard-model/index.js';
import { UsageError, type Command } from '../command.js';
import { checkTransports } from '../config/transport-settings.js';
import { camelName, effectiveRoles, isLiveSetting, parseLiveSetting, resolveStartSettings, settingsHelp, START_SETTINGS, startOptionSpec, type StartSettings } from '../config/settings.js';
import { openAuthentication, securityConfig } from '../config/security.js';
import { createLogger, setLogLevel } from '../logger.js';
import { extrasRules, type ExtrasRules } from '../config/extras-rules.js';
import { configAclRules, installAcl } from './start-acl.js';
import { startTransports, type TransportListener } from './transports.js';
import { dataShardPolicy, DiskWatch } from './start-disk.js';

/** How long a broker waits for its remote journal to answer at start-up. */
const REMOTE_JOURNAL_WAIT_MS = 30_000;
/** The admin token's file in the data directory. */
const ADMIN_TOKEN_FILE = 'admin-token';

const usage = `
Usage: shardline start [flags]

Runs Shardline node roles in this process until SIGTERM or SIGINT.

Roles (--roles, comma-separated):
  journal      the shard journal in --data-dir, served over gRPC (service
               shardline.journal.v1.Journal) on --host:--grpc-port
  broker       the MQTT broker (3.1, 3.1.1, 5.0) on --host:--mqtt-port; with the journal role
               it uses the journal in-process, alone it needs --journal HOST:PORT
  Without --roles: the single-node default, journal + broker in one process.

Transports (broker role; each off unless its port is set): MQTT over TLS on --mqtts-port,
MQTT over WebSocket on --ws-port and over WebSocket with TLS on --wss-port (path --ws-path,
default /mqtt, subprotocol "mqtt"). TLS needs --tls-cert and --tls-key; client certificates:
--tls-client-auth optional|required with --tls-ca. See docs/security.md.

Admin API: every node also serves the admin HTTP API (REST under /api, Prometheus /metrics, /healthz,
/readyz, OpenAPI UI at /docs) on --host:--admin-port; /api and /metrics need the header
"Authorization: Bearer TOKEN". Without --admin-token the token is kept in DATA-DIR/admin-token,
created (mode 0600) and logged once on the first start; a broker-only node makes one per start
and logs it. See docs/operations.md.

${settingsHelp()}

Logs are JSON lines on stdout (pino). Once serving, one line says where:
  {"level":30,...,"mqtt":"127.0.0.1:1883","journalGrpc":"127.0.0.1:1771","admin":"127.0.0.1:8080",
   "msg":"listening mqtt=127.0.0.1:1883 journal-grpc=127.0.0.1:1771 admin=127.0.0.1:8080"}
With transports on, the line also has mqtts=..., ws=..., wss=... (fields mqtts, ws, wss).

SIGTERM or SIGINT: stop accepting, tell MQTT clients the server is shutting down (5.0 DISCONNECT
0x8B), let in-flight appends finish, close the journal, exit 0. A second signal cancels at once.
Exit status: 0 after a clean shutdown; 1 when the data directory, a port or the remote journal
cannot be used (the log says which, with a code such as SL_JOURNAL_LOCKED); 2 for bad settings.
`;

/** Calls `first` on the first SIGTERM/SIGINT and `again` on any later one; returns the unsubscribe. */
function onShutdownSignals(first: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) again(signal);
    else {
      received = true;
      first(signal);
    }
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/**
 * grpc-js writes its own diagnostics to stderr (an "E ..." line for every failed bind, say);
 * this process logs JSON, so they go through pino, at debug: the same failures reach the log
 * as coded errors already.
 */
function routeGrpcLogs(logger: Logger): void {
  const write = (...args: unknown[]): void => logger.debug(args.map(String).join(' '));
  setGrpcLogger({ error: write, info: write, debug: write });
}

/** Logs a start-up failure as a structured line, then lets main print it and exit 1. */
function logFailure(logger: Logger, what: string, error: unknown): never {
  if (isShardlineError(error)) logger.error({ code: error.code, context: error.context }, `${what}: ${error.message}`);
  throw error;
}

/** Retries the first call while a remote journal is still starting (SL_REMOTE_UNAVAILABLE). */
async function connectRemoteJournal(address: string, logger: Logger): Promise<ShardStore> {
  const store = await RemoteShardStore.connect(address);
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

function mqttLimits(settings: StartSettings): MqttLimits {
  return {
    maxPacketSize: settings.maxPacketSize,
    maxTopicLength: settings.maxTopicLength,
    maxTopicLevels: settings.maxTopicLevels,
    maxInflight: settings.maxInflight,
    connectTimeoutMs: settings.connectTimeoutMs,
    maxSessionExpiry: settings.maxSessionExpiry,
    topicAliasMaximum: settings.topicAliasMaximum,
    maxKeepAlive: settings.maxKeepAlive,
    serverKeepAlive: settings.serverKeepAlive,
    maxConnections: settings.maxConnections,
    maxConnectionsPerIp: settings.maxConnectionsPerIp,
    maxConnectRate: settings.maxConnectRate,
    maxConnectRatePerIp: settings.maxConnectRatePerIp,
    maxPublishRate: settings.maxPublishRate,
    maxPublishBytesRate: settings.maxPublishBytesRate,
    maxSubscriptionsPerClient: settings.maxSubscriptionsPerClient,
    writesBlockedDisconnectSeconds: settings.writesBlockedDisconnectSeconds,
  };
}

/**
 * The admin API's bearer token. A given one (flag, SHARDLINE_ADMIN_TOKEN, config file) is used
 * and never logged. Otherwise a node with a data directory keeps it in DATA-DIR/admin-token:
 * read when there, else created (0600, 32 random bytes, base64url) and logged once, so the
 * operator can copy it and later starts keep the same one. A broker-only node has no directory
 * to keep it in: it makes one per start and logs it.
 */
async function adminToken(settings: StartSettings, dataDir: string | undefined, logger: Logger): Promise<string> {
  if (settings.adminToken !== undefined) return settings.adminToken;
  const created = (): string => randomBytes(32).toString('base64url');
  if (dataDir === undefined) {
    const token = created();
    logger.info(`admin token created: ${token} (for this run only: a broker-only node keeps no data directory; set admin-token to keep one)`);
    return token;
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the admin token file ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) {
    const token = created();
    // 'wx': never overwrite a token file that appeared meanwhile (the journal lock makes that
    // unlikely, but a silently replaced token would lock out whoever holds the old one).
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    logger.info({ adminTokenFile: file }, `admin token created: ${token} (kept in ${file}; it is not logged again)`);
    return token;
  }
  const token = text.trim();
  if (token === '') throw new Error(`the admin token file ${file} is empty; put a token in it, delete it to have one created, or set admin-token`);
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) logger.warn({ adminTokenFile: file }, `the admin token file ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return token;
}

/** The version in package.json (sources: two levels up; dist/: three). */
async function packageVersion(): Promise<string> {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(await readFile(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'shardline' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // Not at this level: try the next.
    }
  }
  return 'unknown';
}

/** Effective settings by their config-file keys, for GET /api/config; the token stays hidden. */
function publicSettings(settings: StartSettings): Record<string, unknown> {
  const values = settings as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const spec of START_SETTINGS) out[spec.key] = values[camelName(spec.key)] ?? null;
  out.roles = effectiveRoles(settings);
  out['admin-token'] = '(hidden)';
  return out;
}

/**
 * PATCH /api/config: validates every change first (all or nothing), then applies each where it
 * is read: the loggers, the MQTT limits object every connection of every listener shares, the
 * broker's queue bound.
 */
async function changeSettings(settings: StartSettings, changes: Record<string, unknown>, running: Running, logger: Logger): Promise<void> {
  const parsed: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(changes)) {
    if (!isLiveSetting(key)) throw AdminErrors.notLive.create({ setting: key }, key);
    try {
      parsed.push([key, parseLiveSetting(key, value, key)]);
    } catch (error) {
      if (error instanceof UsageError) throw AdminErrors.badRequest.create({}, error.message);
      throw error;
    }
  }
  const next = { ...settings } as unknown as Record<string, unknown>;
  for (const [key, value] of parsed) next[camelName(key)] = value;
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
  admin?: AdminServer;
  /** MQTT users (config file and `$users`), for the admin API. */
  users?: UserStore;
  /** Who may connect; allow-anonymous changes it live. */
  authenticator?: Authenticator;
  /** Free space of the data directory and the disk watermark (nodes with the journal role). */
  diskWatch?: DiskWatch;
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
  // No new MQTT connections first, then the broker says goodbye to the open ones (0x8B) and
  // finishes its appends, then the sockets go.
  mqtt?.stopAccepting();
  for (const transport of transports) transport.stopAccepting();
  if (sys !== undefined) await step('stopping the $SYS topics', () => sys.stop());
  if (broker !== undefined) await step('closing the broker', () => broker.close());
  const { acl, users } = running;
  // Their last snapshots go to the journal, which closes after them.
  if (acl !== undefined) await step('closing the ACL store', () => acl.close());
  if (users !== undefined) await step('closing the user store', () => users.close());
  if (mqtt !== undefined) await step('stopping the MQTT listener', () => mqtt.stop());
  for (const transport of transports) await step(`stopping the ${transport.name} listener`, () => transport.stop());
  if (journalServer !== undefined) await step('stopping the journal server', () => journalServer.stop(DEFAULT_SHUTDOWN_GRACE_MS));
  journalWatch?.stop();
  if (remoteStore !== undefined) await step('closing the remote journal connection', () => remoteStore.close());
  if (journal !== undefined) await step('closing the journal', () => journal.close());
}

async function startRoles(settings: StartSettings, logger: Logger, running: Running): Promise<void> {
  const roles = effectiveRoles(settings);
  // Checked before anything opens: a bad users/deny/jwt section is a usage error (exit 2).
  const security = roles.includes('broker') ? await securityConfig(settings) : undefined;
  // Checked before anything opens: a bad rule is a usage error, not a half-started node.
  const rules = extrasRules(settings);
  // The shard store the admin API and the metrics read: the broker's, or the journal's own.
  let adminStore: ShardStore | undefined;
  if (roles.includes('journal')) {
    running.journal = await Journal.open(settings.dataDir, { logger: logger.child({ component: 'journal' }), shardPolicy: dataShardPolicy(settings), retentionCheckMs: settings.retentionCheckMs, lockWaitMs: settings.lockWaitSeconds * 1000 }).catch((error: unknown) => logFailure(logger, 'cannot open the journal', error));
    running.journalServer = await JournalServer.start({ journal: running.journal, host: settings.host, port: settings.grpcPort, logger: logger.child({ component: 'journal-grpc' }) }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve the journal', error),
    );
  }
  if (roles.includes('broker')) {
    let store: ShardStore;
    const writeGate = new WriteGate();
    if (running.journal !== undefined) store = LocalShardStore.over(running.journal);
    else {
      running.remoteStore = await connectRemoteJournal(settings.journal as string, logger).catch((error: unknown) => logFailure(logger, `cannot reach the journal at ${settings.journal}`, error));
      // Everything on this node uses the watched store: any call that finds the journal gone
      // closes the write gate at once, and the watch's probes open it when it is back.
      running.journalWatch = JournalWatch.start({ store: running.remoteStore, gate: writeGate, clock: systemClock, logger: logger.child({ component: 'journal-watch' }), address: settings.journal as string });
      store = running.journalWatch.store;
    }
    running.broker = await Broker.open({ store, writeGate, logger: logger.child({ component: 'broker' }), dataShards: settings.dataShards, maxQueuedBytes: settings.maxQueuedBytes, sharedStrategy: settings.sharedStrategy }).catch((error: unknown) =>
      logFailure(logger, 'cannot open the broker', error),
    );
    running.acl = await installAcl(running.broker, store, settings, logger.child({ component: 'acl' })).catch((error: unknown) => logFailure(logger, 'cannot set up the ACL', error));
    const { authenticator, users } = await openAuthentication(security as NonNullable<typeof security>, store, logger.child({ component: 'auth' })).catch((error: unknown) => logFailure(logger, 'cannot load the users', error));
    const authenticate = authenticator.authenticate.bind(authenticator);
    running.users = users;
    running.authenticator = authenticator;
    if (configAclRules(settings).length > 0 && !authenticator.credentialsConfigured && settings.allowAnonymous) {
      logger.warn('ACL rules are configured but no users or JWT: user names are the ones clients send, unverified, so anyone can claim any name; configure users or a JWT key and set allow-anonymous false');
    }
    await startExtras(settings, rules, logger, running.broker, store);
    running.sys = SysPublisher.start({ broker: running.broker, clock: systemClock, logger: logger.child({ component: 'sys' }), intervalSeconds: settings.sysInterval, node: settings.nodeName ?? hostname(), version: await packageVersion() });
    running.limits = mqttLimits(settings);
    running.inboundBudget = new InboundBudget(settings.maxInboundBytes);
    // One registry for every listener (sharedOptions passes it on): one count, one budget.
    const registry = { connected: 0, inboundBudget: running.inboundBudget };
    running.mqtt = await MqttServer.start({ broker: running.broker, limits: running.limits, host: settings.host, port: settings.mqttPort, logger: logger.child({ component: 'mqtt' }), authenticate, registry, hold: running.hold }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve MQTT', error),
    );
    running.transports = [];
    await startTransports(settings, running.mqtt.sharedOptions, logger, running.transports).catch((error: unknown) => logFailure(logger, 'cannot serve an MQTT transport', error));
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
  await startAdmin(settings, logger, running, adminStore);
}

/**
 * Session expiry is not capped by retention (decided; docs/operations.md, "Retention"): a
 * session's subscriptions and settings are worth keeping longer than the messages, and
 * retention by size bounds no time at all. A session offline for longer than the messages are
 * kept resumes at the oldest kept message and counts the gap. Said once at start.
 */
function warnAboutRetention(settings: StartSettings, logger: Logger): void {
  if (settings.dataRetention > 0 && settings.maxSessionExpiry > settings.dataRetention) {
    logger.warn({ maxSessionExpiry: settings.maxSessionExpiry, dataRetention: settings.dataRetention }, 'max-session-expiry is longer than data-retention: a session offline for longer than data-retention loses the messages retention deletes meanwhile (it resumes at the oldest kept message; the gap is counted in its session info)');
  }
}

/** Delayed publish, rewrite and auto-subscribe rules, Response Information: on the broker before MQTT is served. */
async function startExtras(settings: StartSettings, rules: ExtrasRules, logger: Logger, broker: Broker, store: ShardStore): Promise<void> {
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

async function startAdmin(settings: StartSettings, logger: Logger, running: Running, store: ShardStore | undefined): Promise<void> {
  const token = await adminToken(settings, running.journal?.directory, logger).catch((error: unknown) => logFailure(logger, 'cannot set up the admin token', error));
  const addresses: Record<string, string> = {};
  if (running.mqtt !== undefined) addresses.mqtt = running.mqtt.address;
  for (const transport of running.transports ?? []) addresses[transport.name] = transport.address;
  if (running.journalServer !== undefined) addresses.journalGrpc = running.journalServer.address;
  // No node ids exist yet (no cluster membership): host name plus the first address told apart
  // nodes on one machine well enough for the node list and the metrics' node label.
  const node = { id: `${hostname()}/${Object.values(addresses)[0] ?? 'admin'}`, roles: effectiveRoles(settings), version: await packageVersion(), addresses };
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
    }),
    disks,
    logger,
    settings: () => publicSettings(settings),
    changeSettings: (changes) => changeSettings(settings, changes, running, logger),
    ...(running.users === undefined ? {} : { users: running.users }),
    ...(running.acl === undefined ? {} : { acl: running.acl }),
    host: settings.host,
    port: settings.adminPort,
  }).catch((error: unknown) => logFailure(logger, 'cannot serve the admin API', error));
  addresses.admin = running.admin.address;
}

async function run(settings: StartSettings, logger: Logger): Promise<number> {
  const running: Running = { hold: new ConnectionHold() };
  let unsubscribe = (): void => undefined;
  const stopped = new Promise<void>((resolve) => {
    unsubscribe = onShutdownSignals(
      (signal) => {
        logger.info({ signal }, 'shutting down: refusing new connections and calls, letting in-flight work finish');
        resolve();
      },
      (signal) => {
        logger.warn({ signal }, 'second signal: cancelling in-flight calls');
        running.journalServer?.forceStop();
        process.exit(1);
      },
    );
  });
  try {
    await startRoles(settings, logger, running);
    running.hold.openAll();
  } catch (error) {
    running.hold.discard();
    await stopAll(running, logger);
    unsubscribe();
    throw error;
  }
  const where: Record<string, string | number> = {};
  const parts: string[] = [];
  if (running.mqtt !== undefined) {
    where.mqtt = running.mqtt.address;
    where.mqttPort = running.mqtt.port;
    parts.push(`mqtt=${running.mqtt.address}`);
  }
  for (const transport of running.transports ?? []) {
    where[transport.name] = transport.address;
    where[`${transport.name}Port`] = transport.port;
    parts.push(`${transport.name}=${transport.address}`);
  }
  if (running.journalServer !== undefined) {
    where.journalGrpc = running.journalServer.address;
    where.port = running.journalServer.port;
    parts.push(`journal-grpc=${running.journalServer.address}`);
  }
  if (running.admin !== undefined) {
    where.admin = running.admin.address;
    where.adminPort = running.admin.port;
    parts.push(`admin=${running.admin.address}`);
  }
  logger.info({ ...where, roles: effectiveRoles(settings), dataDir: running.journal?.directory, journal: settings.journal }, `listening ${parts.join(' ')}`);
  await stopped;
  await stopAll(running, logger);
  unsubscribe();
  logger.info('stopped');
  return 0;
}

export const startCommand: Command = {
  path: ['start'],
  summary: 'run a node: the MQTT broker and the shard journal (single node by default)',
  usage,
  options: startOptionSpec(),
  async run(values) {
    const settings = await resolveStartSettings(values, process.env);
    configAclRules(settings);
    checkTransports(settings);
    const logger = createLogger(settings.logLevel);
    routeGrpcLogs(logger.child({ component: 'grpc' }));
    for (const warning of settings.warnings) logger.warn(warning);
    logger.debug({ sources: settings.sources }, 'settings resolved');
    try {
      return await run(settings, logger);
    } finally {
      // pino writes stdout synchronously, but flush in case a destination buffers.
      logger.flush();
    }
  },
};
