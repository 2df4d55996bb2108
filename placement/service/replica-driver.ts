// The I/O driver of one PlacementReplica: the only code that touches the replica. It runs the
// Ready cycle in the documented order (placement/replica/replica.ts):
//
//   save the log update → send the messages → apply → save the applied state → advance
//   → compact when due → hand out the answers → tell the watchers
//
// Serialisation: the replica is synchronous and its core must not take a second ready() before
// advance(), so every input (tick, peer message, request, transport report) is queued and run
// by one loop between cycles, never while a cycle awaits the disk. The queue is bounded
// (maxQueuedInputs): past it a peer message is dropped (Raft resends) and a request is
// answered dropped (the client retries); at most one tick waits, so a stalled disk slows
// logical time rather than piling up ticks.
//
// A persistence failure is fatal: the replica cannot know what the disk holds, so the driver
// stops taking inputs and reports it through onFatal (the server stops, the process exits).
import type { Logger } from 'pino';
import type { Message } from '../raft/index.js';
import type { AppliedStatePersistence, PlacementReplica, RaftPersistence, ReplicaAnswer } from '../replica/index.js';

export interface ReplicaDriverOptions {
  readonly replica: PlacementReplica;
  readonly raftPersistence: RaftPersistence;
  readonly appliedPersistence: AppliedStatePersistence;
  readonly logger: Logger;
  readonly tickMs: number;
  readonly maxQueuedInputs: number;
  /** Sends one Ready's messages (after its log update is durable). */
  readonly send: (messages: readonly Message[]) => void;
  /** After every cycle that applied something, and after inputs: answers to hand out. */
  readonly deliver: (answers: readonly ReplicaAnswer[]) => void;
  /** After every cycle: the applied revision may have moved. */
  readonly afterCycle: () => void;
  readonly onFatal: (error: unknown) => void;
}

/** Loop turns before the driver yields to the event loop, so sockets and timers get their turn. */
const TURNS_PER_RUN = 256;

export class ReplicaDriver {
  private inputs: (() => void)[] = [];
  private tickQueued = false;
  private running: Promise<void> | null = null;
  private moreWork = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: ReplicaDriverOptions) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.tickMs);
    this.kick();
  }

  /** Queues an input; false (and nothing queued) when the queue is full or the driver stopped. */
  input(run: () => void): boolean {
    if (this.stopped || this.inputs.length >= this.options.maxQueuedInputs) return false;
    this.inputs.push(run);
    this.kick();
    return true;
  }

  /** Stops ticking and taking inputs; resolves when the cycle in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.inputs = [];
    await this.running;
  }

  private tick(): void {
    if (this.tickQueued) return;
    // Set before input(): the loop may run the tick inside that call.
    this.tickQueued = true;
    const queued = this.input(() => {
      this.tickQueued = false;
      this.options.replica.tick();
    });
    if (!queued) this.tickQueued = false;
  }

  private kick(): void {
    if (this.running !== null || this.stopped) return;
    this.running = this.run()
      .then((more) => {
        this.moreWork = more;
      })
      .catch((error: unknown) => {
        this.stopped = true;
        if (this.timer !== null) clearInterval(this.timer);
        this.options.onFatal(error);
      })
      .finally(() => {
        this.running = null;
        // Inputs that came during the last await, or a run cut at TURNS_PER_RUN.
        if ((this.inputs.length > 0 || this.moreWork) && !this.stopped) setImmediate(() => this.kick());
      });
  }

  /** Runs inputs and cycles until idle (false) or TURNS_PER_RUN turns passed (true). */
  private async run(): Promise<boolean> {
    const { replica } = this.options;
    for (let turn = 0; turn < TURNS_PER_RUN && !this.stopped; turn++) {
      const inputs = this.inputs;
      this.inputs = [];
      for (const run of inputs) run();
      this.options.deliver(replica.takeAnswers());
      const rd = replica.ready();
      if (rd === null) {
        if (this.inputs.length === 0) return false;
        continue;
      }
      await this.options.raftPersistence.save(rd.logUpdate);
      this.options.send(rd.messages);
      const { update } = replica.apply(rd);
      if (update !== null) await this.options.appliedPersistence.saveApplied(update);
      const { compaction } = replica.advance(rd);
      // After saveApplied resolved: the applied state at the snapshot's index is durable.
      if (compaction !== null) await this.options.raftPersistence.compact(compaction.snapshot, compaction.compactIndex);
      this.options.deliver(replica.takeAnswers());
      this.options.afterCycle();
    }
    // Cut at TURNS_PER_RUN: there may be work left, so finally() schedules another run.
    return true;
  }
}
