// Kafka topics over shards: each topic-partition is the shard `kafka.<topic>.<partition>`
// (base/shard-names.ts), and the topic list (name → partition count) is the compacted system
// shard `$kafka.topics`, one record per topic keyed by its name, so a restart keeps the topics.
import { isShardlineError, KAFKA_TOPICS_SHARD, kafkaPartitionShardName } from '../../../base/index.js';
import type { ShardStore } from '../../../shard-model/index.js';
import { KafkaErrorCode } from '../codec/index.js';

/** Topic names: Kafka's characters, short enough that `kafka.<topic>.<partition>` fits a shard name (200). */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,180}$/;

export function isTopicName(name: string): boolean {
  return TOPIC_NAME.test(name) && name !== '.' && name !== '..';
}
export const MAX_PARTITIONS = 1000;

export interface TopicInfo {
  name: string;
  partitions: number;
}

export class TopicCatalog {
  readonly #topics = new Map<string, TopicInfo>();
  /** Creations run one at a time. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: ShardStore) {}

  static async open(store: ShardStore): Promise<TopicCatalog> {
    const catalog = new TopicCatalog(store);
    await createIfMissing(store, KAFKA_TOPICS_SHARD, { compacted: true });
    let offset = (await store.info(KAFKA_TOPICS_SHARD)).startOffset;
    for (;;) {
      const records = await store.read(KAFKA_TOPICS_SHARD, offset, { maxRecords: 1000 });
      if (records.length === 0) break;
      for (const record of records) {
        offset = record.offset + 1;
        if (record.key === null) continue;
        const name = record.key.toString('utf8');
        if (record.value === null) catalog.#topics.delete(name);
        else catalog.#topics.set(name, { name, partitions: (JSON.parse(record.value.toString('utf8')) as { partitions: number }).partitions });
      }
    }
    return catalog;
  }

  get(name: string): TopicInfo | undefined {
    return this.#topics.get(name);
  }

  all(): TopicInfo[] {
    return [...this.#topics.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Validates and creates a topic: its partition shards, then its record. Resolves to a Kafka error code (0: created). */
  create(name: string, partitions: number, replicationFactor: number, validateOnly: boolean): Promise<{ errorCode: number; message: string | null }> {
    const run = async (): Promise<{ errorCode: number; message: string | null }> => {
      if (!isTopicName(name)) return { errorCode: KafkaErrorCode.INVALID_TOPIC_EXCEPTION, message: 'topic names are 1 to 180 of [A-Za-z0-9._-], not "." or ".."' };
      if (this.#topics.has(name)) return { errorCode: KafkaErrorCode.TOPIC_ALREADY_EXISTS, message: `topic ${name} already exists` };
      const count = partitions === -1 ? 1 : partitions;
      if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) return { errorCode: KafkaErrorCode.INVALID_PARTITIONS, message: `partitions must be 1 to ${MAX_PARTITIONS}` };
      if (replicationFactor !== -1 && replicationFactor !== 1) return { errorCode: KafkaErrorCode.INVALID_REPLICATION_FACTOR, message: 'this node serves replication factor 1 only' };
      if (validateOnly) return { errorCode: 0, message: null };
      for (let partition = 0; partition < count; partition += 1) await createIfMissing(this.store, kafkaPartitionShardName(name, partition), {});
      await this.store.append(KAFKA_TOPICS_SHARD, [{ key: Buffer.from(name), value: Buffer.from(JSON.stringify({ partitions: count })) }]);
      this.#topics.set(name, { name, partitions: count });
      return { errorCode: 0, message: null };
    };
    const result = this.#chain.then(run, run);
    this.#chain = result.catch(() => undefined);
    return result;
  }
}

async function createIfMissing(store: ShardStore, name: string, config: { compacted?: boolean }): Promise<void> {
  try {
    await store.create(name, config);
  } catch (error) {
    if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) throw error;
  }
}
