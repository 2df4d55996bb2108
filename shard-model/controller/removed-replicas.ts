// A journal node's side of a replica-set change's end: once placement has switched a shard's
// replica set and this node is in neither the new set nor the target of a further change, its
// copy of the shard is of no use to anyone (the new set holds every committed record, and only
// the new set's voters elect), so it is deleted instead of filling the disk.
//
// Two readings of placement decide it: the node's PlacementView (watch stream plus poll) finds
// the candidates cheaply, and before each delete a linearizable read confirms it under the
// shard's election lock (ReplicationNode.retire). The second one is what makes it safe: the
// view can lag, and a copy the controller just created for a learner exists here only after
// placement committed the change that made this node a learner, so a read started after the
// copy exists sees that change and keeps the copy.
import type { Logger } from 'pino';
import type { ReplicationNode } from '../../journal/index.js';
import type { ShardRecord } from '../../placement/metadata/index.js';
import type { PlacementClient } from '../../placement/service/index.js';

/**
 * Whether `self`'s copy of a shard may go, by placement's record of it: the record exists
 * (a shard placement does not know is left alone), names `self` neither as a replica nor in the
 * target of a change, and its epoch is not behind the one this node holds (a node ahead of
 * placement was elected by hand, outside the controller).
 */
export function removedFromSet(self: string, record: ShardRecord | undefined, localEpoch: number): boolean {
  if (record === undefined) return false;
  if (record.replicas.includes(self) || record.target?.includes(self) === true) return false;
  return record.leaderEpoch >= localEpoch;
}

export interface RemovedReplicasOptions {
  readonly self: string;
  readonly replication: ReplicationNode;
  /** The client of the placement group (the confirming read). */
  readonly client: PlacementClient;
  readonly logger: Logger;
}

/** Deletes the node's copies placement no longer assigns it; `consider` is called with each view of placement. */
export class RemovedReplicas {
  #sweeping: Promise<void> | null = null;
  #again: ReadonlyMap<string, ShardRecord> | null = null;
  #stopped = false;

  constructor(private readonly options: RemovedReplicasOptions) {}

  /** Looks at the shards this node replicates against `shards` (coalesced: one sweep at a time, then the newest view). */
  consider(shards: ReadonlyMap<string, ShardRecord>): void {
    if (this.#stopped) return;
    if (this.#sweeping !== null) {
      this.#again = shards;
      return;
    }
    this.#sweeping = this.sweep(shards).then(() => undefined, () => undefined).finally(() => {
      this.#sweeping = null;
      const again = this.#again;
      this.#again = null;
      if (again !== null) this.consider(again);
    });
  }

  /** Stops considering; resolves once a sweep under way has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#sweeping;
  }

  /**
   * One look: each shard this node replicates that `shards` (a view of placement) no longer
   * assigns it is confirmed by a fresh read and deleted. Resolves with the shards deleted. Not
   * to be run concurrently with itself (consider() runs one at a time).
   */
  async sweep(shards: ReadonlyMap<string, ShardRecord>): Promise<string[]> {
    const { self, replication, client, logger } = this.options;
    const deleted: string[] = [];
    for (const name of replication.shards()) {
      if (this.#stopped) break;
      const status = safeStatus(replication, name);
      if (status === null || !removedFromSet(self, shards.get(name), status.epoch)) continue;
      try {
        const retired = await replication.retire(name, async (epoch) => {
          const { shards: fresh = [] } = await client.read(['shards']);
          return removedFromSet(self, fresh.find((shard) => shard.name === name), epoch);
        });
        if (retired) deleted.push(name);
      } catch (error) {
        if (!this.#stopped) logger.warn({ shard: name, err: error }, 'could not delete the copy of a shard this node no longer replicates; trying again at the next placement read');
      }
    }
    return deleted;
  }
}

function safeStatus(replication: ReplicationNode, shard: string): { epoch: number } | null {
  try {
    return replication.status(shard);
  } catch {
    // Deleted meanwhile.
    return null;
  }
}
