// `shardline start`: runs node roles in this process until SIGTERM or SIGINT.
// Roles: journal (the shard journal on --data-dir, served over gRPC) and broker (MQTT on
// --mqtt-port over the engine). Without --roles both run in one process and the broker uses the
// journal in-process; `--roles broker --journal HOST:PORT` keeps no local state and reaches a
// journal server through the remote ShardStore.
//
// Start-up order: open the journal (takes the data directory's lock), serve it over gRPC, open
// the broker (rebuilds sessions and retained messages from the journal), bind MQTT, then log the
// one listening line. A failure at any step undoes the earlier ones and exits 1 with the error.
// Shutdown order: stop accepting MQTT connections, close the broker (clients get DISCONNECT
// 0x8B, in-flight appends finish, cursors written), stop the gRPC server, close the journal
// (indexes written, files closed, lock released), exit 0.
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Broker } from '../../engine/index.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, Journal, JournalServer, isShardlineError } from '../../journal/index.js';
import { MqttServer, type MqttLimits } from '../../protocols/mqtt/index.js';
import { LocalShardStore, RemoteShardStore, type ShardStore } from '../../shard-model/index.js';
import type { Command } from '../command.js';
import { effectiveRoles, resolveStartSettings, settingsHelp, startOptionSpec, type StartSettings } from '../config/settings.js';
import { createLogger } from '../logger.js';

/** How long a broker waits for its remote journal to answer at start-up. */
const REMOTE_JOURNAL_WAIT_MS = 30_000;

const usage = `
Usage: shardline start [flags]

Runs Shardline node roles in this process until SIGTERM or SIGINT.

Roles (--roles, comma-separated):
  journal      the shard journal in --data-dir, served over gRPC (service
               shardline.journal.v1.Journal) on --host:--grpc-port
  broker       the MQTT broker (3.1, 3.1.1, 5.0) on --host:--mqtt-port; with the journal role
               it uses the journal in-process, alone it needs --journal HOST:PORT
  Without --roles: the single-node default, journal + broker in one process.

${settingsHelp()}

Logs are JSON lines on stdout (pino). Once serving, one line says where:
  {"level":30,...,"mqtt":"127.0.0.1:1883","journalGrpc":"127.0.0.1:1771","msg":"listening mqtt=127.0.0.1:1883 journal-grpc=127.0.0.1:1771"}

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
  };
}

/** What runs, in start order; stopped in reverse. */
interface Running {
  journal?: Journal;
  journalServer?: JournalServer;
  remoteStore?: ShardStore;
  broker?: Broker;
  mqtt?: MqttServer;
}

async function stopAll(running: Running, logger: Logger): Promise<void> {
  const step = async (what: string, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      logger.error({ err: error }, `shutdown: ${what} failed`);
    }
  };
  const { mqtt, broker, journalServer, remoteStore, journal } = running;
  // No new MQTT connections first, then the broker says goodbye to the open ones (0x8B) and
  // finishes its appends, then the sockets go.
  mqtt?.stopAccepting();
  if (broker !== undefined) await step('closing the broker', () => broker.close());
  if (mqtt !== undefined) await step('stopping the MQTT listener', () => mqtt.stop());
  if (journalServer !== undefined) await step('stopping the journal server', () => journalServer.stop(DEFAULT_SHUTDOWN_GRACE_MS));
  if (remoteStore !== undefined) await step('closing the remote journal connection', () => remoteStore.close());
  if (journal !== undefined) await step('closing the journal', () => journal.close());
}

async function startRoles(settings: StartSettings, logger: Logger, running: Running): Promise<void> {
  const roles = effectiveRoles(settings);
  if (roles.includes('journal')) {
    running.journal = await Journal.open(settings.dataDir, { logger: logger.child({ component: 'journal' }) }).catch((error: unknown) => logFailure(logger, 'cannot open the journal', error));
    running.journalServer = await JournalServer.start({ journal: running.journal, host: settings.host, port: settings.grpcPort, logger: logger.child({ component: 'journal-grpc' }) }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve the journal', error),
    );
  }
  if (roles.includes('broker')) {
    let store: ShardStore;
    if (running.journal !== undefined) store = LocalShardStore.over(running.journal);
    else {
      running.remoteStore = await connectRemoteJournal(settings.journal as string, logger).catch((error: unknown) => logFailure(logger, `cannot reach the journal at ${settings.journal}`, error));
      store = running.remoteStore;
    }
    running.broker = await Broker.open({ store, logger: logger.child({ component: 'broker' }), dataShards: settings.dataShards, maxQueuedBytes: settings.maxQueuedBytes }).catch((error: unknown) =>
      logFailure(logger, 'cannot open the broker', error),
    );
    running.mqtt = await MqttServer.start({ broker: running.broker, limits: mqttLimits(settings), host: settings.host, port: settings.mqttPort, logger: logger.child({ component: 'mqtt' }) }).catch((error: unknown) =>
      logFailure(logger, 'cannot serve MQTT', error),
    );
  }
}

async function run(settings: StartSettings, logger: Logger): Promise<number> {
  const running: Running = {};
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
  } catch (error) {
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
  if (running.journalServer !== undefined) {
    where.journalGrpc = running.journalServer.address;
    where.port = running.journalServer.port;
    parts.push(`journal-grpc=${running.journalServer.address}`);
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
