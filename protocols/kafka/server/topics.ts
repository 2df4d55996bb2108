// Kafka topics over shards: each topic-partition is the shard `kafka.<topic>.<partition>`
// (base/shard-names.ts), and the topic list (name → partition count) is the compacted system
// shard `$kafka.topics`, one record per topic keyed by its name (value: JSON partition count and
// the configs set explicitly; a tombstone when deleted), so a restart keeps the topics.
import { isShardlineError, KAFKA_TOPICS_SHARD, kafkaPartitionShardName } from '../../../base/index.js';
import { createShardIfMissing, readShardFrom, type ShardStore } from '../../../shard-model/index.js';
import { KafkaErrorCode } from '../codec/index.js';
import { DEFAULT_TOPIC_CONFIGS, parseTopicConfigs, shardSettings, type ExplicitConfigs, type TopicConfigs } from './topic-configs.js';

/** Topic names: Kafka's characters, short enough that `kafka.<topic>.<partition>` fits a shard name (200). */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,180}$/;

export function isTopicName(name: string): boolean {
  return TOPIC_NAME.test(name) && name !== '.' && name !== '..';
}
export const MAX_PARTITIONS = 1000;

export interface TopicInfo {
  name: string;
  partitions: number;
  configs: TopicConfigs;
  /** The configs set at creation, as the client spelled them (what DescribeConfigs reports as set). */
  explicit: ExplicitConfigs;
}

export interface TopicResult {
  errorCode: number;
  message: string | null;
}

interface TopicRecord {
  partitions: number;
  configs?: Record<string, string>;
}

export class TopicCatalog {
  readonly #topics = new Map<string, TopicInfo>();
  /** Changes and refreshes run one at a time. */
  #chain: Promise<unknown> = Promise.resolve();
  /** The offset of `$kafka.topics` after the last record read. */
  #readTo = 0;

  private constructor(private readonly store: ShardStore) {}

  static async open(store: ShardStore): Promise<TopicCatalog> {
    const catalog = new TopicCatalog(store);
    await createShardIfMissing(store, KAFKA_TOPICS_SHARD, { compacted: true });
    await catalog.#read();
    return catalog;
  }

  /** Reads the records other brokers of a cluster appended to `$kafka.topics` since the last read. */
  refresh(): Promise<void> {
    return this.#serial(() => this.#read());
  }

  async #read(): Promise<void> {
    this.#readTo = await readShardFrom(this.store, KAFKA_TOPICS_SHARD, this.#readTo, (record) => {
      if (record.key === null) return;
      const name = record.key.toString('utf8');
      if (record.value === null) this.#topics.delete(name);
      else this.#topics.set(name, topicFromRecord(name, JSON.parse(record.value.toString('utf8')) as TopicRecord));
    });
  }

  get(name: string): TopicInfo | undefined {
    return this.#topics.get(name);
  }

  all(): TopicInfo[] {
    return [...this.#topics.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Validates and creates a topic: its partition shards (with the configs' shard settings), then its record. */
  create(name: string, partitions: number, replicationFactor: number, validateOnly: boolean, configPairs: ReadonlyArray<{ name: string; value: string | null }> = []): Promise<TopicResult> {
    return this.#serial(async () => {
      if (!isTopicName(name)) return { errorCode: KafkaErrorCode.INVALID_TOPIC_EXCEPTION, message: 'topic names are 1 to 180 of [A-Za-z0-9._-], not "." or ".."' };
      if (this.#topics.has(name)) return { errorCode: KafkaErrorCode.TOPIC_ALREADY_EXISTS, message: `topic ${name} already exists` };
      const count = partitions === -1 ? 1 : partitions;
      if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) return { errorCode: KafkaErrorCode.INVALID_PARTITIONS, message: `partitions must be 1 to ${MAX_PARTITIONS}` };
      if (replicationFactor !== -1 && replicationFactor !== 1) return { errorCode: KafkaErrorCode.INVALID_REPLICATION_FACTOR, message: 'this node serves replication factor 1 only' };
      const parsed = parseTopicConfigs(configPairs);
      if (!parsed.ok) return { errorCode: parsed.errorCode, message: parsed.message };
      if (validateOnly) return { errorCode: 0, message: null };
      const topic: TopicInfo = { name, partitions: count, configs: parsed.configs, explicit: parsed.explicit };
      for (let partition = 0; partition < count; partition += 1) await createShardIfMissing(this.store, kafkaPartitionShardName(name, partition), shardSettings(topic.configs));
      await this.#write(topic);
      return { errorCode: 0, message: null };
    });
  }

  /**
   * Deletes a topic: its partition shards first, then its record (a tombstone). A crash between
   * leaves the topic listed with shards missing; deleting it again finishes the job. The other
   * order could leave shards behind that a new topic of the same name would silently reuse.
   */
  delete(name: string): Promise<TopicResult> {
    return this.#serial(async () => {
      const topic = this.#topics.get(name);
      if (topic === undefined) return { errorCode: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: `topic ${name} does not exist` };
      for (let partition = 0; partition < topic.partitions; partition += 1) {
        try {
          await this.store.delete(kafkaPartitionShardName(name, partition));
        } catch (error) {
          if (!isShardlineError(error, 'SL_JOURNAL_SHARD_NOT_FOUND')) throw error;
        }
      }
      await this.store.append(KAFKA_TOPICS_SHARD, [{ key: Buffer.from(name), value: null }]);
      this.#topics.delete(name);
      return { errorCode: 0, message: null };
    });
  }

  /** Grows a topic to `count` partitions (never shrinks): the new shards, then the record. */
  grow(name: string, count: number, validateOnly: boolean): Promise<TopicResult> {
    return this.#serial(async () => {
      const topic = this.#topics.get(name);
      if (topic === undefined) return { errorCode: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: `topic ${name} does not exist` };
      if (!Number.isInteger(count) || count <= topic.partitions || count > MAX_PARTITIONS) return { errorCode: KafkaErrorCode.INVALID_PARTITIONS, message: `topic ${name} has ${topic.partitions} partitions; the new count must be more, and at most ${MAX_PARTITIONS}` };
      if (validateOnly) return { errorCode: 0, message: null };
      for (let partition = topic.partitions; partition < count; partition += 1) await createShardIfMissing(this.store, kafkaPartitionShardName(name, partition), shardSettings(topic.configs));
      await this.#write({ ...topic, partitions: count });
      return { errorCode: 0, message: null };
    });
  }

  async #write(topic: TopicInfo): Promise<void> {
    const record: TopicRecord = { partitions: topic.partitions, ...(Object.keys(topic.explicit).length > 0 ? { configs: { ...topic.explicit } } : {}) };
    await this.store.append(KAFKA_TOPICS_SHARD, [{ key: Buffer.from(topic.name), value: Buffer.from(JSON.stringify(record)) }]);
    this.#topics.set(topic.name, topic);
  }

  /** Changes to the catalog run one at a time. */
  #serial<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(run, run);
    this.#chain = result.catch(() => undefined);
    return result;
  }
}

function topicFromRecord(name: string, record: TopicRecord): TopicInfo {
  const explicit = record.configs ?? {};
  const parsed = parseTopicConfigs(Object.entries(explicit).map(([key, value]) => ({ name: key, value })));
  // Stored configs were validated when the topic was created; a record from a build that knew more configs keeps the defaults.
  return parsed.ok ? { name, partitions: record.partitions, configs: parsed.configs, explicit: parsed.explicit } : { name, partitions: record.partitions, configs: DEFAULT_TOPIC_CONFIGS, explicit: {} };
}

