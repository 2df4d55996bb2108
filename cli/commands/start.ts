// `shardline start`: runs node roles in this process until SIGTERM or SIGINT. This build has one
// role, journal: the shard journal on --data-dir, served over gRPC (journal/server/).
//
// Start-up order: open the journal (takes the data directory's lock; refuses a directory that
// is not a journal), then bind the port, then log the listening line. A failure at either step
// undoes the earlier ones and exits 1 with the coded error on stderr.
// Shutdown order: stop the server (end tails, let in-flight calls finish for up to
// DEFAULT_SHUTDOWN_GRACE_MS, then cancel), then close the journal (queued appends finish,
// indexes are written, files closed, the lock released), then exit 0.
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DEFAULT_JOURNAL_GRPC_PORT, DEFAULT_SHUTDOWN_GRACE_MS, Journal, JournalServer, isShardlineError } from '../../journal/index.js';
import { integerFlag, stringFlag, UsageError, type Command } from '../command.js';
import { createLogger } from '../logger.js';

const DEFAULT_DATA_DIR = './data';
const DEFAULT_HOST = '127.0.0.1';
const BUILT_ROLES = ['journal'] as const;
const PLANNED_ROLES = ['placement', 'broker'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Role = (typeof BUILT_ROLES)[number];

const usage = `
Usage: shardline start [--roles journal] [--data-dir DIR] [--grpc-port N] [--host ADDR] [--log-level LEVEL]

Runs Shardline node roles in this process until SIGTERM or SIGINT.

Roles:
  journal      the shard journal in --data-dir, served over gRPC (service
               shardline.journal.v1.Journal) on --host:--grpc-port
  Without --roles, start runs the single-node default: every role this build has, which today
  is the journal only (the MQTT broker, placement and admin roles are not built yet).

Flags:
  --roles LIST        comma-separated roles to run (this build: journal)
  --data-dir DIR      journal data directory; created when missing, must be empty or an
                      existing Shardline journal not in use by another process (default: ${DEFAULT_DATA_DIR})
  --grpc-port N       journal gRPC port; 0 picks a free one, reported in the listening line
                      (default: ${DEFAULT_JOURNAL_GRPC_PORT})
  --host ADDR         address the gRPC server binds to (default: ${DEFAULT_HOST}, loopback only;
                      the service has no authentication, so bind other addresses with care)
  --log-level LEVEL   ${LOG_LEVELS.join(', ')} (default: info, or SHARDLINE_LOG_LEVEL)
  -h, --help          this text

Logs are JSON lines on stdout (pino). Once serving, one line says where:
  {"level":30,...,"journalGrpc":"127.0.0.1:1771","msg":"listening journal-grpc=127.0.0.1:1771"}

SIGTERM or SIGINT: stop accepting calls, end tails, let in-flight calls finish (up to
${DEFAULT_SHUTDOWN_GRACE_MS / 1000} s, then cancel them), close the journal, exit 0. A second signal cancels at once.
Exit status: 0 after a clean shutdown; 1 when the data directory or the port cannot be used
(SL_JOURNAL_LOCKED, SL_JOURNAL_NOT_A_JOURNAL, SL_JOURNAL_LISTEN_FAILED, ...); 2 for bad flags.
`;

interface StartSettings {
  roles: Role[];
  /** True when --roles was not given and the single-node default applies. */
  defaultRoles: boolean;
  dataDir: string;
  host: string;
  grpcPort: number;
  logLevel: string;
}

function parseRoles(raw: unknown): { roles: Role[]; defaultRoles: boolean } {
  if (raw === undefined) return { roles: [...BUILT_ROLES], defaultRoles: true };
  const names = stringFlag({ roles: raw }, 'roles').split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new UsageError('--roles needs at least one role (this build: journal)');
  for (const name of names) {
    if (PLANNED_ROLES.includes(name)) throw new UsageError(`role ${name} is not built yet; this build runs: ${BUILT_ROLES.join(', ')}`);
    if (!(BUILT_ROLES as readonly string[]).includes(name)) throw new UsageError(`unknown role ${JSON.stringify(name)}; this build runs: ${BUILT_ROLES.join(', ')}`);
  }
  return { roles: [...new Set(names as Role[])], defaultRoles: false };
}

function parseSettings(values: Record<string, unknown>): StartSettings {
  const grpcPort = integerFlag(values, 'grpc-port', DEFAULT_JOURNAL_GRPC_PORT, 0);
  if (grpcPort > 65_535) throw new UsageError(`--grpc-port must be at most 65535, got ${grpcPort}`);
  const logLevel = stringFlag(values, 'log-level', process.env.SHARDLINE_LOG_LEVEL ?? 'info');
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  return {
    ...parseRoles(values.roles),
    dataDir: stringFlag(values, 'data-dir', DEFAULT_DATA_DIR),
    host: stringFlag(values, 'host', DEFAULT_HOST),
    grpcPort,
    logLevel,
  };
}

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

async function runJournalRole(settings: StartSettings, logger: Logger): Promise<number> {
  const journal = await Journal.open(settings.dataDir, { logger: logger.child({ component: 'journal' }) })
    .catch((error: unknown) => logFailure(logger, 'cannot open the journal', error));
  const server = await JournalServer.start({ journal, host: settings.host, port: settings.grpcPort, logger: logger.child({ component: 'journal-grpc' }) })
    .catch(async (error: unknown) => {
      await journal.close();
      return logFailure(logger, 'cannot serve the journal', error);
    });
  let unsubscribe = (): void => undefined;
  const stopped = new Promise<void>((resolve) => {
    unsubscribe = onShutdownSignals(
      (signal) => {
        logger.info({ signal }, 'shutting down: refusing new calls, letting in-flight calls finish');
        resolve();
      },
      (signal) => {
        logger.warn({ signal }, 'second signal: cancelling in-flight calls');
        server.forceStop();
      },
    );
  });
  logger.info({ journalGrpc: server.address, port: server.port, dataDir: journal.directory, roles: settings.roles }, `listening journal-grpc=${server.address}`);
  await stopped;
  await server.stop(DEFAULT_SHUTDOWN_GRACE_MS);
  await journal.close();
  unsubscribe();
  logger.info('stopped');
  return 0;
}

export const startCommand: Command = {
  path: ['start'],
  summary: 'run a node: the journal, served over gRPC (other roles are not built yet)',
  usage,
  options: {
    roles: { type: 'string' },
    'data-dir': { type: 'string' },
    'grpc-port': { type: 'string' },
    host: { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const settings = parseSettings(values);
    const logger = createLogger(settings.logLevel);
    routeGrpcLogs(logger.child({ component: 'grpc' }));
    if (settings.defaultRoles) {
      logger.info({ roles: settings.roles }, 'single-node default: running the journal role only; the MQTT broker, placement and admin roles are not built yet');
    }
    try {
      return await runJournalRole(settings, logger);
    } finally {
      // pino writes stdout synchronously, but flush in case a destination buffers.
      logger.flush();
    }
  },
};
