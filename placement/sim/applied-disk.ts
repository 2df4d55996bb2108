// A simulated store for one replica's applied state (the model of LevelDB in node/): each
// saveApplied is one atomic batch, queued until flush() makes it durable. A crash keeps the
// durable state plus a random prefix of the queued batches, each whole or not at all: what the
// persistence contract (placement/replica/persistence.ts) allows, and no more.
import { emptyState } from '../metadata/index.js';
import type { AppliedState, AppliedStatePersistence, AppliedUpdate } from '../replica/index.js';
import type { Random } from './random.js';

export class AppliedDisk implements AppliedStatePersistence {
  private durable: AppliedState = { appliedIndex: 0, appliedTerm: 0, confState: { voters: [] }, state: emptyState() };
  private queue: AppliedUpdate[] = [];

  load(): AppliedState {
    return this.durable;
  }

  /** Unused by the synchronous simulator (it calls queue and flush); here to keep the contract whole. */
  saveApplied(update: AppliedUpdate): Promise<void> {
    this.queue.push(update);
    this.flush();
    return Promise.resolve();
  }

  queueUpdate(update: AppliedUpdate): void {
    this.queue.push(update);
  }

  flush(): void {
    const last = this.queue.at(-1);
    if (last !== undefined) this.durable = { appliedIndex: last.appliedIndex, appliedTerm: last.appliedTerm, confState: last.confState, state: last.state };
    this.queue = [];
  }

  /** Power loss: a random prefix of the queued batches reaches the disk, each one whole. */
  crash(random: Random): { kept: number; lost: number } {
    const kept = random.int(this.queue.length + 1);
    const lost = this.queue.length - kept;
    this.queue = this.queue.slice(0, kept);
    this.flush();
    return { kept, lost };
  }
}
