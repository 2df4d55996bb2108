// Committed offsets on disk: the compacted system shard `$kafka.offsets`, one record per group,
// topic and partition (key: the JSON array [group, topic, partition]; value: JSON {offset,
// leaderEpoch, metadata, commitTimestamp}; a deleted group leaves tombstones). Compaction keeps
// the latest commit per partition. At start the shard is read from its start into the
// coordinator (the projection); afterwards every commit is appended with fsync durability and
// reaches the coordinator only once the append is acknowledged, so an OffsetCommit is answered
// only for offsets that survive a crash. In a cluster the coordinator of a group can move to
// another broker, which then reads the records appended since its last read (catchUp) before it
// answers for the group.
import type { Logger } from 'pino';
import { KAFKA_OFFSETS_SHARD } from '../../../../base/index.js';
import { createShardIfMissing, readShardFrom, type ShardStore } from '../../../../shard-model/index.js';
import type { CommittedOffset, GroupCoordinator } from './coordinator.js';

interface StoredValue {
  offset: string;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestamp: number;
}

function keyOf(groupId: string, topic: string, partition: number): Buffer {
  return Buffer.from(JSON.stringify([groupId, topic, partition]));
}

function parseKey(key: Buffer): [string, string, number] | undefined {
  const parsed: unknown = JSON.parse(key.toString('utf8'));
  if (!Array.isArray(parsed) || parsed.length !== 3 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string' || !Number.isInteger(parsed[2])) return undefined;
  return parsed as [string, string, number];
}

export class OffsetLog {
  /** The offset after the last record replayed. */
  #readTo = 0;
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: ShardStore, private readonly coordinator: GroupCoordinator, private readonly logger: Logger) {}

  /** Creates the shard when missing and replays it into the coordinator. */
  static async open(store: ShardStore, coordinator: GroupCoordinator, logger: Logger): Promise<OffsetLog> {
    await createShardIfMissing(store, KAFKA_OFFSETS_SHARD, { compacted: true, durability: 'fsync' });
    const log = new OffsetLog(store, coordinator, logger);
    await log.#replay();
    return log;
  }

  /** Replays what was appended since the last replay (by other brokers of a cluster): one at a time. */
  catchUp(): Promise<void> {
    const result = this.#chain.then(() => this.#replay());
    this.#chain = result.catch(() => undefined);
    return result;
  }

  async #replay(): Promise<void> {
    const { coordinator } = this;
    let skipped = 0;
    this.#readTo = await readShardFrom(this.store, KAFKA_OFFSETS_SHARD, this.#readTo, (record) => {
      try {
        const key = record.key === null ? undefined : parseKey(record.key);
        if (key === undefined) {
          skipped += 1;
          return;
        }
        const [groupId, topic, partition] = key;
        if (record.value === null) {
          coordinator.removeOffset(groupId, topic, partition);
          return;
        }
        const value = JSON.parse(record.value.toString('utf8')) as StoredValue;
        coordinator.applyOffsets(groupId, [{ topic, partition, offset: BigInt(value.offset), leaderEpoch: value.leaderEpoch, metadata: value.metadata, commitTimestamp: value.commitTimestamp }]);
      } catch {
        skipped += 1;
      }
    });
    // Only this module writes the shard; a record it cannot read is reported, not fatal.
    if (skipped > 0) this.logger.warn({ shard: KAFKA_OFFSETS_SHARD, skipped }, 'Kafka offsets: records that do not parse were skipped');
  }

  /** Appends the commits; resolves once they are durable (the shard's fsync durability). */
  async commit(groupId: string, offsets: readonly CommittedOffset[]): Promise<void> {
    await this.store.append(KAFKA_OFFSETS_SHARD, offsets.map((entry) => ({
      key: keyOf(groupId, entry.topic, entry.partition),
      value: Buffer.from(JSON.stringify({ offset: entry.offset.toString(), leaderEpoch: entry.leaderEpoch, metadata: entry.metadata, commitTimestamp: entry.commitTimestamp } satisfies StoredValue)),
    })));
  }

  /** Tombstones for a deleted group's offsets; resolves once durable. */
  async remove(groupId: string, partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<void> {
    if (partitions.length === 0) return;
    await this.store.append(KAFKA_OFFSETS_SHARD, partitions.map(({ topic, partition }) => ({ key: keyOf(groupId, topic, partition), value: null })));
  }
}
