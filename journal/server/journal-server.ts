// A grpc-js Server serving the journal service (journal-grpc-service.ts) for one Journal on
// host:port. Port 0 picks a free port; `port` reports the bound one. The server does not own
// the journal: stop() ends the calls, the caller closes the journal afterwards.
//
// Shutdown order, and why:
//   1. End every tail with SL_JOURNAL_SERVER_STOPPING: tails never finish on their own, and
//      the client must learn the server went away rather than see a normal end.
//   2. tryShutdown: refuse new calls, let in-flight ones (an append waiting for its fsync)
//      finish, up to graceMs.
//   3. forceShutdown after graceMs: cancel what is left. Appends already queued in the journal
//      still complete when the caller closes the journal.
import { Server } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import type { Journal } from '../journal.js';
import type { ReplicationNode } from '../replica/replication-node.js';
import { clusterTokenInterceptor } from './journal-auth.js';
import { journalServerCredentials, NO_JOURNAL_CREDENTIALS, type JournalCredentials } from './journal-credentials.js';
import { JournalGrpcService } from './journal-grpc-service.js';
import { formatAddress, journalService, JOURNAL_GRPC_CHANNEL_OPTIONS } from './journal-proto.js';
import { JournalServerErrors } from './server-errors.js';

/** How long stop() lets in-flight calls run before it cancels them, in ms. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface JournalServerOptions {
  journal: Journal;
  /** Bind address; defaults to 127.0.0.1 (loopback only). */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
  /** The setting that names the port, quoted when it is in use (default --grpc-port). */
  portSetting?: string;
  /** Replication of this node's shards (--replica-peers). */
  replication?: ReplicationNode;
  /**
   * With a cluster token, every call must carry it (journal-auth.ts); with TLS, the port speaks
   * mutual TLS only. Default: neither (a single node's port, dialled on loopback).
   */
  credentials?: JournalCredentials;
}

export class JournalServer {
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    private readonly service: JournalGrpcService,
    readonly host: string,
    readonly port: number,
    private readonly logger: Logger,
  ) {}

  /** Binds and starts serving; SL_JOURNAL_LISTEN_FAILED when the address cannot be bound. */
  static async start(options: JournalServerOptions): Promise<JournalServer> {
    const host = options.host ?? '127.0.0.1';
    const logger = options.logger ?? pino({ level: 'silent' });
    const credentials = options.credentials ?? NO_JOURNAL_CREDENTIALS;
    const interceptors = credentials.clusterToken === undefined ? [] : [clusterTokenInterceptor(credentials.clusterToken, logger)];
    const server = new Server({ ...JOURNAL_GRPC_CHANNEL_OPTIONS, interceptors });
    let boundPort = options.port;
    const service = new JournalGrpcService({ journal: options.journal, logger, address: () => formatAddress(host, boundPort), ...(options.replication === undefined ? {} : { replication: options.replication }) });
    server.addService(journalService().service, service.implementation());
    const requested = formatAddress(host, options.port);
    boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(requested, journalServerCredentials(credentials), (error, port) => {
        if (error === null) resolve(port);
        else reject(JournalServerErrors.listenFailed.withCause(error, { host, port: options.port }, requested, describeBindFailure(error, options.port, options.portSetting ?? '--grpc-port')));
      });
    }).catch((error: unknown) => {
      server.forceShutdown();
      throw error;
    });
    return new JournalServer(server, service, host, boundPort, logger);
  }

  /** host:port as clients dial it, with the bound port. */
  get address(): string {
    return formatAddress(this.host, this.port);
  }

  /** Tail calls being served (for tests and metrics). */
  get activeTails(): number {
    return this.service.activeTails;
  }

  /** Ends tails, lets in-flight calls finish for up to graceMs, then cancels the rest. Idempotent. */
  stop(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
    this.stopping ??= this.shutDown(graceMs);
    return this.stopping;
  }

  /** Cancels every call now (a second signal during a graceful stop). */
  forceStop(): void {
    this.service.stopLongCalls();
    this.server.forceShutdown();
  }

  private async shutDown(graceMs: number): Promise<void> {
    this.service.stopLongCalls();
    let timer: NodeJS.Timeout | undefined;
    const graceful = new Promise<boolean>((resolve) => this.server.tryShutdown(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const finished = await Promise.race([graceful, timeout]);
    clearTimeout(timer);
    if (!finished) {
      this.logger.warn({ graceMs }, 'journal server: in-flight calls did not finish in time; cancelling them');
      this.server.forceShutdown();
    }
  }
}

/** grpc-js words a bind failure as "No address added out of total 1 resolved errors: [...]"; say what it means. */
function describeBindFailure(error: Error, port: number, portSetting: string): string {
  const errno = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(error.message)?.[1];
  switch (errno) {
    case 'EADDRINUSE':
      return `port ${port} is already in use by another process (EADDRINUSE); pick another with ${portSetting}`;
    case 'EACCES':
      return `permission denied, ports below 1024 need privileges (EACCES)`;
    case 'EADDRNOTAVAIL':
      return 'the host is not an address of this machine (EADDRNOTAVAIL)';
    default:
      return error.message;
  }
}
