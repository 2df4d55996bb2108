// The workload of `shardline bench placement`: a placement group of in-process voters on
// loopback gRPC, each on durable storage (openDurablePlacement: the Raft log on a journal shard
// with fsync, the applied state in LevelDB) in a scratch directory, and N writers proposing
// metadata commands through PlacementClient. A proposal's latency is from the client's call to
// its answer, which the leader sends once a quorum fsynced the entry and the leader applied it.
//
// The floor, measured in the same run on the same disk before the group starts: one appender
// appending one record at a time to a journal shard in fsync mode, which is what a voter's
// save of one entry costs. A commit needs at least the leader's save and a follower's save
// (in parallel) plus the network round trips, so commit latency / floor says how much the
// replication path adds to the disk.
//
// Bounds: writers stop at `proposals` commits in all or at `durationMs`, whichever comes first,
// and when the signal aborts; the floor stops at `floorAppends` or `floorDurationMs`.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { Journal } from '../../journal/index.js';
import { openDurablePlacement, type DurablePlacement } from '../../node/placement-storage/index.js';
import { freeLoopbackPorts, PlacementClient, PlacementServer } from '../../placement/service/index.js';
import { LatencyHistogram } from './latency-histogram.js';

export interface PlacementBenchOptions {
  /** Scratch directory: one sub-directory per voter and one for the floor's journal. */
  readonly directory: string;
  readonly voters: number;
  readonly writers: number;
  /** Commits to measure in all writers together (the count bound). */
  readonly proposals: number;
  /** The time bound of the measured proposals, ms. */
  readonly durationMs: number;
  /** Bytes of each proposed setting's value. */
  readonly valueBytes: number;
  readonly floorAppends: number;
  readonly floorDurationMs: number;
  /** Raft tick, ms (elections after 10-20 ticks). */
  readonly tickMs: number;
  /** Monotonic clock, ms. */
  readonly now: () => number;
  readonly signal: AbortSignal;
  /** Called after each measured commit and floor append. */
  readonly onProgress?: () => void;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface PlacementBenchResult {
  readonly voters: number;
  readonly writers: number;
  readonly valueBytes: number;
  readonly seconds: number;
  readonly commitsPerSecond: number;
  readonly commit: LatencySummary;
  /** Journal append+fsync of one record, one appender: the disk's floor under a voter's save. */
  readonly floor: LatencySummary & { readonly recordBytes: number };
  /** commit ÷ floor at p50 and p99. */
  readonly ratio: { readonly p50: number; readonly p99: number };
  /** Leader elections the leader saw during the run (1: no change after the first). */
  readonly leaderChanges: number;
}

/** Unmeasured proposals per writer before the clock starts: the leader is found, connections and the JIT warm up. */
const WARMUP_PER_WRITER = 5;
const CLUSTER_ID = 'bench-placement';

export async function runPlacementBench(options: PlacementBenchOptions): Promise<PlacementBenchResult> {
  const recordBytes = options.valueBytes + 64;
  const floor = await measureFloor(options, recordBytes);
  const group = await startGroup(options);
  try {
    const writers = Array.from({ length: options.writers }, () => group.client());
    const value = 'v'.repeat(options.valueBytes);
    await Promise.all(writers.map(async (client, w) => {
      for (let i = 0; i < WARMUP_PER_WRITER && !options.signal.aborted; i++) await client.propose({ type: 'set-setting', key: `bench/w${w}`, value });
    }));
    const histogram = new LatencyHistogram();
    const start = options.now();
    const until = start + options.durationMs;
    let started = 0;
    await Promise.all(writers.map(async (client, w) => {
      while (!options.signal.aborted && started < options.proposals && options.now() < until) {
        started++;
        const sent = options.now();
        await client.propose({ type: 'set-setting', key: `bench/w${w}`, value });
        histogram.record((options.now() - sent) * 1e6);
        options.onProgress?.();
      }
    }));
    const seconds = (options.now() - start) / 1000;
    const commit = summary(histogram);
    return {
      voters: options.voters,
      writers: options.writers,
      valueBytes: options.valueBytes,
      seconds,
      commitsPerSecond: commit.count / seconds,
      commit,
      floor: { ...floor, recordBytes },
      ratio: { p50: commit.p50Ms / floor.p50Ms, p99: commit.p99Ms / floor.p99Ms },
      leaderChanges: group.leaderChanges(),
    };
  } finally {
    await group.stop();
  }
}

function summary(histogram: LatencyHistogram): LatencySummary {
  const ms = (q: number): number => histogram.quantileNs(q) / 1e6;
  return { count: histogram.count, p50Ms: ms(0.5), p90Ms: ms(0.9), p99Ms: ms(0.99), maxMs: ms(1) };
}

async function measureFloor(options: PlacementBenchOptions, recordBytes: number): Promise<LatencySummary> {
  const journal = await Journal.open(join(options.directory, 'floor'), { retentionCheckMs: 0 });
  try {
    await journal.createShard('floor', { durability: 'fsync' });
    const records = [{ value: Buffer.alloc(recordBytes, 0x5a) }];
    const histogram = new LatencyHistogram();
    const until = options.now() + options.floorDurationMs;
    for (let i = 0; i < options.floorAppends && !options.signal.aborted && options.now() < until; i++) {
      const sent = options.now();
      await journal.append('floor', records);
      histogram.record((options.now() - sent) * 1e6);
      options.onProgress?.();
    }
    return summary(histogram);
  } finally {
    await journal.close();
  }
}

interface BenchGroup {
  client(): PlacementClient;
  leaderChanges(): number;
  stop(): Promise<void>;
}

async function startGroup(options: PlacementBenchOptions): Promise<BenchGroup> {
  const ids = Array.from({ length: options.voters }, (_, i) => i + 1);
  const ports = await freeLoopbackPorts(ids.length);
  const peers = new Map(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
  const clusterToken = randomUUID();
  const storages: DurablePlacement[] = [];
  const servers: PlacementServer[] = [];
  const clients: PlacementClient[] = [];
  const stop = async (): Promise<void> => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.stop(500)));
    await Promise.all(storages.map((storage) => storage.close()));
  };
  try {
    for (const nodeId of ids) {
      storages.push(await openDurablePlacement({ dataDir: join(options.directory, `voter-${nodeId}`), nodeId, clusterId: CLUSTER_ID }));
    }
    servers.push(...(await Promise.all(ids.map((nodeId, i) => PlacementServer.start({
      nodeId,
      clusterId: CLUSTER_ID,
      clusterToken,
      peers,
      initialVoters: ids,
      raftPersistence: (storages[i] as DurablePlacement).raftPersistence,
      appliedPersistence: (storages[i] as DurablePlacement).appliedPersistence,
      tickMs: options.tickMs,
      logger: pino({ level: 'silent' }),
    })))));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    client: () => {
      const client = new PlacementClient({ addresses: [...peers.values()], clusterId: CLUSTER_ID, clusterToken });
      clients.push(client);
      return client;
    },
    leaderChanges: () => Math.max(0, ...servers.filter((server) => server.status().role === 'leader').map((server) => server.leaderChanges)),
    stop,
  };
}

