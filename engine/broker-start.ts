// The broker's start-up over a store, before anything is served: the shards it needs (created
// when missing, the data shard count fixed by the journal once chosen) and its two projections
// rebuilt from `$sessions` and `$retained`. Plain functions the Broker calls from its #start,
// which then wires its appenders and recovers sessions.
import type { Logger } from 'pino';
import { isShardlineError, type Clock } from '../base/index.js';
import type { ShardConfig, ShardInfo } from '../journal/index.js';
import { MqttShardMap, mqttShardCount, type ShardStore } from '../shard-model/index.js';
import { MESSAGE_RECORD_MAX_BYTES, MESSAGE_SHARD_LIMITS } from './messages/message.js';
import { Projection } from './projection/projection.js';
import { RETAINED_SHARD, RetainedStore, retainedStoreCodec } from './retained/retained-store.js';
import { SESSIONS_SHARD, SessionTable, sessionTableCodec } from './sessions/session-events.js';

/**
 * Creates the `$sessions` and `$retained` shards and the data shards that are missing; returns
 * the shard map and each data shard's next offset (where dispatch starts).
 */
export async function prepareShards(store: ShardStore, logger: Logger, requestedShards: number): Promise<{ shardMap: MqttShardMap; frontier: number[] }> {
  const existing = new Map((await store.list()).map((info) => [info.name, info]));
  for (const name of [SESSIONS_SHARD, RETAINED_SHARD]) {
    // Small segments: compaction only rewrites sealed ones, and these shards are mostly superseded values.
    if (!existing.has(name)) existing.set(name, await createOrFind(store, name, { compacted: true, segmentBytes: 8 * 1024 * 1024, ...MESSAGE_SHARD_LIMITS }));
  }
  const existingCount = mqttShardCount(existing.keys());
  if (existingCount > 0 && existingCount !== requestedShards) {
    logger.warn({ existing: existingCount, requested: requestedShards }, 'the journal already has a different number of MQTT data shards; keeping the existing count (topics map to shards by hash, so the count is fixed)');
  }
  const shardMap = new MqttShardMap(existingCount > 0 ? existingCount : requestedShards);
  for (const name of shardMap.names) {
    if (!existing.has(name)) existing.set(name, await createOrFind(store, name, { ...MESSAGE_SHARD_LIMITS }));
  }
  warnSmallRecords(logger, [SESSIONS_SHARD, RETAINED_SHARD, ...shardMap.names].map((name) => existing.get(name)));
  return { shardMap, frontier: shardMap.names.map((name) => existing.get(name)?.nextOffset ?? 0) };
}

/** Creates a shard, or finds it when another broker on the same journal created it meanwhile. */
async function createOrFind(store: ShardStore, name: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
  try {
    return await store.create(name, config);
  } catch (error) {
    if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) throw error;
    return store.info(name);
  }
}

/**
 * Shards keep the settings they were created with: in a journal from before the record limit
 * was raised, messages above the old limit are refused when stored (5.0 PUBACK 0x80, 3.1.1
 * close), whatever --max-packet-size says. Say so once at start rather than per publish.
 */
function warnSmallRecords(logger: Logger, shards: ReadonlyArray<ShardInfo | undefined>): void {
  const small = shards.filter((info): info is ShardInfo => info !== undefined && info.config.maxRecordBytes < MESSAGE_RECORD_MAX_BYTES);
  if (small.length === 0) return;
  const limit = Math.min(...small.map((info) => info.config.maxRecordBytes));
  logger.warn(
    { shards: small.map((info) => info.name), maxRecordBytes: limit },
    `${small.length} broker shard(s) were created with a record limit of ${limit} bytes: messages (and wills) larger than that are refused when stored, whatever --max-packet-size allows`,
  );
}

export interface StateProjectionsOptions {
  store: ShardStore;
  logger: Logger;
  clock: Clock;
  dataShards: number;
  /** Whether every `$sessions` record the broker applied is durable (a snapshot waits until then). */
  sessionsSettled: () => boolean;
  /** The same for `$retained`. */
  retainedSettled: () => boolean;
}

/** Rebuilds the `$sessions` and `$retained` projections (snapshot, then the records after it), one after the other. */
export async function openStateProjections(options: StateProjectionsOptions): Promise<{ sessions: Projection<SessionTable>; retained: Projection<RetainedStore> }> {
  const { store, logger, clock } = options;
  const sessions = await Projection.open<SessionTable>({
    store,
    shard: SESSIONS_SHARD,
    logger,
    clock,
    initial: () => new SessionTable(),
    apply: (table, record) => {
      table.apply(record);
      return table;
    },
    codec: sessionTableCodec,
    settled: options.sessionsSettled,
  });
  const retained = await Projection.open<RetainedStore>({
    store,
    shard: RETAINED_SHARD,
    logger,
    clock,
    initial: () => new RetainedStore(),
    apply: (retainedStore, record) => {
      retainedStore.apply(record);
      return retainedStore;
    },
    codec: retainedStoreCodec,
    settled: options.retainedSettled,
  });
  logger.info(
    {
      sessionRecords: sessions.opening.replayedRecords,
      retainedRecords: retained.opening.replayedRecords,
      sessionsSnapshotOffset: sessions.opening.snapshotOffset,
      retainedSnapshotOffset: retained.opening.snapshotOffset,
      sessions: sessions.state.sessions.size,
      retained: retained.state.size,
      dataShards: options.dataShards,
    },
    'broker state rebuilt from the journal',
  );
  return { sessions, retained };
}
