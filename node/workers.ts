// MQTT over more than one core: `shardline start --workers N` (N > 1). This file owns both sides
// of it; the design and its limit are in docs/architecture.md, "More than one core".
//
// The primary (the process the operator started) keeps the journal, its gRPC server, the
// embedded placement voter and the admin API, and runs no broker of its own. It forks N worker
// processes with node:cluster; each runs `shardline start` again with the same flags, learns
// from the primary's first IPC message that it is worker K (a broker over the primary's journal
// through the journal gRPC port on loopback, with a cluster token made for this run, and
// --broker-peers on), and binds the MQTT ports. node:cluster's round-robin scheduler makes the
// primary the one holder of each listening socket: it accepts every connection and hands it to
// the next worker (Node 20's net.Server has no SO_REUSEPORT). Delivery across workers, one holder
// per client id, retained messages, wills and users are the broker-peers machinery of
// engine/peers, unchanged: to the engine, workers are brokers sharing a journal.
//
// Invariants: the first worker's broker opens alone (it creates the broker's shards on a new
// journal, docs/deployment.md "Scaling brokers"): every worker is forked at once, so loading the
// code overlaps, but the others get their assignment only once the first serves; a worker keeps its broker id across restarts
// within one run of the primary, so a restarted worker takes its crashed sessions back at once;
// every worker binds the ports as configured, and node:cluster gives each listen the primary's
// one socket for it (port 0 included: the n-th listen of every worker shares one port); a worker
// that dies while the node runs (a signal, a non-zero exit) is forked again after
// WORKER_RESTART_DELAY_MS.
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { defineError } from '../base/index.js';
import type { NodeSettings } from './settings.js';

/** Between a worker's exit and its replacement: a worker that dies at once does not spin. */
export const WORKER_RESTART_DELAY_MS = 1_000;
/** How long a stopping worker may take (its clients' goodbyes, in-flight appends) before SIGKILL. */
const WORKER_STOP_TIMEOUT_MS = 30_000;
/** How often a worker reports its figures to the primary (its /metrics read the latest). */
const WORKER_STATS_INTERVAL_MS = 1_000;

export const WorkerErrors = {
  startFailed: defineError({
    code: 'SL_NODE_WORKER_FAILED',
    meaning: 'With workers > 1, an MQTT worker process exited before it served (a port in use, the journal not reachable, a bad setting); the node does not start.',
    fix: 'Read the worker\'s own log lines (field worker) just before this one for its error, fix it, and start again.',
    message: (index: number, how: string) => `MQTT worker ${index} exited before it served (${how})`,
  }),
};

/** What the primary tells worker K first: who it is and where the journal is. */
export interface WorkerAssignment {
  readonly type: 'assignment';
  readonly index: number;
  /** The primary's journal gRPC port, dialled on loopback. */
  readonly journal: string;
  readonly clusterToken: string;
  /** The broker id this worker's broker writes into $sessions; the same for every fork of worker K in this run. */
  readonly brokerId: string;
}

/** A worker's figures, as last reported. */
export interface WorkerFigures {
  readonly connections: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
}

/** Messages a worker sends to the primary. */
type WorkerReport = { type: 'waiting' } | { type: 'ready'; addresses: Record<string, string> } | ({ type: 'stats' } & WorkerFigures);

/** One worker slot as the admin API and /metrics show it. */
export interface WorkerStatus extends WorkerFigures {
  readonly index: number;
  /** undefined while it is being restarted. */
  readonly pid: number | undefined;
  readonly restarts: number;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** Whether its worker has its assignment (before that it has no signal handler of its own). */
  assigned: boolean;
  restarts: number;
  figures: WorkerFigures;
}

export interface WorkerPoolOptions {
  readonly count: number;
  /** HOST:PORT of this process's journal gRPC server. */
  readonly journal: string;
  readonly clusterToken: string;
  /** node-id when set; undefined: a name for this run (host, pid, random). */
  readonly nodeId: number | undefined;
  readonly logger: Logger;
}

const NO_FIGURES: WorkerFigures = { connections: 0, messagesIn: 0, messagesOut: 0 };

/** The primary's side: forks, assigns, restarts and stops the workers. */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[];
  readonly #runId: string;
  #addresses: Record<string, string> = {};
  #stopping = false;
  readonly #restartTimers = new Set<NodeJS.Timeout>();

  private constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.count }, (_, index) => ({ index: index + 1, worker: undefined, assigned: false, restarts: 0, figures: NO_FIGURES }));
    this.#runId = options.nodeId === undefined ? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}` : `node-${options.nodeId}`;
  }

  /** Forks every worker and resolves once all serve; on a failure stops those started and rejects. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    // Workers write their JSON lines to the primary's stdout and stderr, each line tagged with its worker.
    cluster.setupPrimary({ silent: false });
    cluster.schedulingPolicy = cluster.SCHED_RR;
    const pool = new WorkerPool(options);
    const [first, ...others] = pool.#slots as [Slot, ...Slot[]];
    const firstServes = pool.#fork(first);
    const outcomes = await Promise.allSettled([firstServes, ...others.map((slot) => pool.#fork(slot, firstServes))]);
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed !== undefined) {
      await pool.stop();
      throw failed.reason;
    }
    return pool;
  }

  /** The addresses the workers serve on (mqtt, mqtts, ws, wss), as the first one reported them. */
  get addresses(): Readonly<Record<string, string>> {
    return this.#addresses;
  }

  status(): WorkerStatus[] {
    return this.#slots.map((slot) => ({ index: slot.index, pid: slot.worker?.process.pid, restarts: slot.restarts, ...slot.figures }));
  }

  /** Asks every worker to stop (its clients get DISCONNECT 0x8B) and waits for each to exit; SIGKILL after WORKER_STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#restartTimers) clearTimeout(timer);
    this.#restartTimers.clear();
    await Promise.all(this.#slots.map(async (slot) => {
      const worker = slot.worker;
      if (worker === undefined || worker.isDead()) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      // One without its assignment has opened nothing: SIGTERM's default ends it.
      if (slot.assigned && worker.isConnected()) worker.send({ type: 'stop' });
      else worker.process.kill('SIGTERM');
      const timer = setTimeout(() => {
        this.#options.logger.warn({ worker: slot.index, pid: worker.process.pid }, 'an MQTT worker did not stop in time; killing it');
        worker.process.kill('SIGKILL');
      }, WORKER_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }));
  }

  /** Forks worker `slot.index`, assigns it once `after` resolved, and resolves once it serves; rejects if it exits first. */
  #fork(slot: Slot, after: Promise<void> = Promise.resolve()): Promise<void> {
    const { logger } = this.#options;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.assigned = false;
    slot.figures = NO_FIGURES;
    const assignment: WorkerAssignment = { type: 'assignment', index: slot.index, journal: this.#options.journal, clusterToken: this.#options.clusterToken, brokerId: `${this.#runId}-w${slot.index}` };
    logger.info({ worker: slot.index, pid: worker.process.pid }, 'MQTT worker started');
    return new Promise((resolve, reject) => {
      let ready = false;
      let asked = false;
      let released = false;
      const assign = (): void => {
        if (!asked || !released || slot.assigned || slot.worker !== worker || !worker.isConnected()) return;
        slot.assigned = true;
        worker.send(assignment);
      };
      after.then(
        () => {
          released = true;
          assign();
        },
        // The first worker failed, so the node does not start: this one ends unassigned (and rejects below).
        () => worker.process.kill('SIGTERM'),
      );
      worker.on('message', (report: WorkerReport) => {
        // A message sent before the worker listens would be lost, so it asks when it listens.
        if (report.type === 'waiting') {
          asked = true;
          assign();
        } else if (report.type === 'stats') slot.figures = { connections: report.connections, messagesIn: report.messagesIn, messagesOut: report.messagesOut };
        else if (report.type === 'ready' && !ready) {
          ready = true;
          if (Object.keys(this.#addresses).length === 0) this.#addresses = report.addresses;
          logger.info({ worker: slot.index, pid: worker.process.pid }, 'MQTT worker serving');
          resolve();
        }
      });
      worker.once('exit', (code, signal) => {
        if (slot.worker === worker) slot.figures = NO_FIGURES;
        if (!ready) {
          reject(WorkerErrors.startFailed.create({ worker: slot.index, code, signal }, slot.index, signal ?? `exit code ${code}`));
          return;
        }
        // Exit 0 is a clean stop (SIGTERM or SIGINT to the worker itself, as a terminal's Ctrl-C
        // sends to the whole process group while the primary stops too): not a crash to repair.
        if (this.#stopping) return;
        if (code === 0) {
          if (slot.worker === worker) slot.worker = undefined;
          logger.info({ worker: slot.index, pid: worker.process.pid }, 'an MQTT worker stopped cleanly; it is not started again');
          return;
        }
        logger.warn({ worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: WORKER_RESTART_DELAY_MS }, 'an MQTT worker exited; its clients reconnect to the others, and it is started again');
        this.#restartLater(slot);
      });
    });
  }

  #restartLater(slot: Slot): void {
    slot.worker = undefined;
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (this.#stopping) return;
      slot.restarts += 1;
      this.#fork(slot).catch((error: unknown) => {
        this.#options.logger.error({ err: error, worker: slot.index }, 'an MQTT worker failed to start again; trying again');
        if (!this.#stopping) this.#restartLater(slot);
      });
    }, WORKER_RESTART_DELAY_MS);
    this.#restartTimers.add(timer);
  }
}

/** Whether this process is an MQTT worker forked by a primary (node:cluster). */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** A worker's first message from the primary. */
export function receiveAssignment(): Promise<WorkerAssignment> {
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      if ((message as { type?: string }).type !== 'assignment') return;
      process.off('message', listener);
      resolve(message as WorkerAssignment);
    };
    process.on('message', listener);
    send({ type: 'waiting' });
  });
}

/**
 * Worker K's settings, from the primary's (the same flags, environment and config file): a
 * broker over the primary's journal, sharing it as broker-peers brokers do, MQTT only.
 */
export function workerSettings(settings: NodeSettings, assignment: WorkerAssignment): NodeSettings {
  const name = settings.nodeName ?? hostname();
  return {
    ...settings,
    roles: ['broker'],
    journal: assignment.journal,
    clusterToken: assignment.clusterToken,
    brokerPeers: true,
    workers: 1,
    // Each worker's $SYS statistics are its own: under $SYS/brokers/NAME-wK/.
    nodeName: `${name}-w${assignment.index}`,
    kafkaPort: undefined,
    kafkasPort: undefined,
    amqpPort: undefined,
    amqpsPort: undefined,
    // What a worker registers or serves beside MQTT is the primary's to do.
    placement: undefined,
  };
}

/** The worker's side of the IPC channel: ready once serving, figures every second, stop when told. */
export class WorkerLink {
  #timer: NodeJS.Timeout | undefined;

  /** Tells the primary this worker serves, with the addresses it bound. */
  ready(addresses: Record<string, string>, figures: () => WorkerFigures): void {
    send({ type: 'ready', addresses });
    this.#timer = setInterval(() => send({ type: 'stats', ...figures() }), WORKER_STATS_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Calls `stop` when the primary asks this worker to stop. */
  onStop(stop: () => void): void {
    process.on('message', (message: unknown) => {
      if ((message as { type?: string }).type === 'stop') stop();
    });
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

function send(report: WorkerReport): void {
  // The channel is gone once the primary died; the worker exits then (node:cluster does that).
  if (process.connected) process.send?.(report);
}
