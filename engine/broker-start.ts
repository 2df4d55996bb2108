// The broker's start-up over a store, before anything is served: the shards it needs (created
// when missing, the data shard count fixed by the journal once chosen) and its two projections
// rebuilt from `$sessions` and `$retained`. Plain functions the Broker calls from its #start,
// which then wires its appenders and recovers sessions.
//
// The data shard count is the first record of `$mqtt-layout`, not the number of `mqtt.N` shards
// listed: a broker that lists while another is still creating them would count a partial set
// and hash topics onto other shards than its peers. Brokers starting together each append their
// count when the shard is empty and then all take the first record (the log orders them: first
// writer wins); the shard is never retained away or compacted.
import type { Logger } from 'pino';
import { isShardlineError, type Clock } from '../base/index.js';
import type { ShardConfig, ShardInfo } from '../journal/index.js';
import { MqttShardMap, mqttShardCount, type ShardStore } from '../shard-model/index.js';
import { BrokerStartErrors } from './broker-start-errors.js';
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
  // Created together, not one by one: in a cluster each creation waits for the placement
  // leader's controller to create the replicas and elect a leader, about half a second.
  const createMissing = (names: readonly string[], config: Partial<ShardConfig>): Promise<void> =>
    Promise.all(names.filter((name) => !existing.has(name)).map(async (name) => {
      existing.set(name, await createOrFind(store, name, config));
    })).then(() => undefined);
  await Promise.all([
    // Small segments: compaction only rewrites sealed ones, and these shards are mostly superseded values.
    createMissing([SESSIONS_SHARD, RETAINED_SHARD], { compacted: true, segmentBytes: 8 * 1024 * 1024, ...MESSAGE_SHARD_LIMITS }),
    createMissing([LAYOUT_SHARD], { retentionMs: null, retentionBytes: null, compacted: false }),
  ]);
  // A journal from before the layout shard keeps the count its brokers created.
  const proposed = mqttShardCount(existing.keys()) || requestedShards;
  const count = await layoutCount(store, proposed);
  if (count !== requestedShards) {
    logger.warn({ existing: count, requested: requestedShards }, 'the journal already has a different number of MQTT data shards; keeping the existing count (topics map to shards by hash, so the count is fixed)');
  }
  const shardMap = new MqttShardMap(count);
  await createMissing(shardMap.names, { ...MESSAGE_SHARD_LIMITS });
  warnSmallRecords(logger, [SESSIONS_SHARD, RETAINED_SHARD, ...shardMap.names].map((name) => existing.get(name)));
  return { shardMap, frontier: shardMap.names.map((name) => existing.get(name)?.nextOffset ?? 0) };
}

/** The shard whose first record fixes the number of MQTT data shards. */
export const LAYOUT_SHARD = '$mqtt-layout';

/** The data shard count the layout's first record holds; `proposed` is appended first when the shard is empty. */
async function layoutCount(store: ShardStore, proposed: number): Promise<number> {
  const first = async (): Promise<number | undefined> => {
    const [record] = await store.read(LAYOUT_SHARD, 0, { maxRecords: 1 });
    if (record === undefined) return undefined;
    let count: unknown;
    try {
      count = (JSON.parse(record.value?.toString('utf8') ?? 'null') as { dataShards?: unknown } | null)?.dataShards;
    } catch {
      count = undefined;
    }
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw BrokerStartErrors.badLayout.create({ shard: LAYOUT_SHARD }, LAYOUT_SHARD, record.offset);
    return count;
  };
  const written = await first();
  if (written !== undefined) return written;
  await store.append(LAYOUT_SHARD, [{ key: null, value: Buffer.from(JSON.stringify({ dataShards: proposed })), headers: [] }]);
  // Another broker's record may have come first: that one counts, for both.
  return (await first()) ?? proposed;
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
