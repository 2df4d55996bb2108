// Prometheus metrics of a node, served by the admin server's GET /metrics.
//
// Each node gets its own prom-client Registry rather than the library's global one, so two
// nodes in one process (tests) or another library registering globally cannot mix their series.
// The broker and shard values are read at scrape time from broker.stats and the ShardStore:
// nothing on the publish path touches prom-client, so metrics cost nothing between scrapes.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CommitEvent, ShardInfo } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';
import type { Broker, DiskStatus } from '../engine/index.js';
import type { GroupDetail, KafkaServer } from '../protocols/kafka/index.js';
import type { PlacementAdmin } from './placement-admin.js';
import { registerAmqpMetrics, type AmqpMetricsSource } from './amqp-metrics.js';

export interface MetricsOptions {
  /** Undefined on a journal-only node: no shardline_mqtt_* or message series. */
  broker?: Broker;
  /** Undefined when the node holds no shards it can list: no shardline_shard_* series. */
  store?: ShardStore;
  /** Node id, added as the `node` label to every series so scrapes of several nodes stay apart. */
  node: string;
  /** The journal in this process, if any: append latency and group-commit sizes. */
  journal?: { onCommit(listener: (event: CommitEvent) => void): () => void };
  /** The data directories' space (the node's disk watch); absent or empty: no shardline_disk_* series. */
  disks?: () => DiskStatus[];
  /** The MQTT front end's node-wide inbound budget (--max-inbound-bytes), read at scrape time. */
  inbound?: () => InboundStats;
  /** The placement voter in this process (the one the /api/cluster routes serve); absent: no shardline_placement_* series. */
  placement?: Pick<PlacementAdmin, 'status' | 'members' | 'leaderChanges' | 'onProposalApplied'>;
  /** The Kafka listener in this process (--kafka-port); absent: no shardline_kafka_* series. */
  kafka?: Pick<KafkaServer, 'onRequest' | 'connectionCount' | 'consumerGroups' | 'consumerGroupDetails'>;
  /** The AMQP listener in this process (--amqp-port); absent: no shardline_amqp_* series. */
  amqp?: AmqpMetricsSource;
  /** With workers > 1: each MQTT worker's figures as it last reported them; absent: no shardline_worker_* series. */
  workers?: () => WorkerMetricsSource[];
}

/** One MQTT worker process (node/workers.ts fills it in). */
export interface WorkerMetricsSource {
  index: number;
  /** undefined while it is being restarted. */
  pid: number | undefined;
  restarts: number;
  connections: number;
  messagesIn: number;
  messagesOut: number;
}

/** What the front end's inbound budget reports (protocols/listener/inbound-budget.ts fills it in). */
export interface InboundStats {
  limitBytes: number;
  reservedBytes: number;
  reservedPeakBytes: number;
  waiting: number;
  waitedTotal: number;
}

export interface Metrics {
  contentType: string;
  render(): Promise<string>;
}

const PROTOCOL = { protocol: 'mqtt' } as const;

// prom-client counters only move by increments; the broker keeps running totals, so each
// counter's collect resets it and adds the total. The totals never go down within a process,
// so Prometheus still sees a proper counter.

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.node });
  collectDefaultMetrics({ register: registry });

  const { broker, store } = options;
  if (broker !== undefined) registerBrokerMetrics(registry, broker);
  if (store !== undefined) registerShardMetrics(registry, store);
  if (options.journal !== undefined) registerJournalMetrics(registry, options.journal);
  if (options.inbound !== undefined) registerInboundMetrics(registry, options.inbound);
  if (options.disks !== undefined) registerDiskMetrics(registry, options.disks);
  if (options.placement !== undefined) registerPlacementMetrics(registry, options.placement);
  if (options.kafka !== undefined) registerKafkaMetrics(registry, options.kafka);
  if (options.amqp !== undefined) registerAmqpMetrics(registry, options.amqp);
  if (options.workers !== undefined) registerWorkerMetrics(registry, options.workers);

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}

// Observed on the journal's write path (one histogram observation per append and per group
// commit): the only metrics that are not read at scrape time, because latency cannot be.
function registerJournalMetrics(registry: Registry, journal: NonNullable<MetricsOptions['journal']>): void {
  const registers = [registry];
  const latency = new Histogram({
    name: 'shardline_journal_append_latency_seconds',
    help: 'From an append call to its acknowledgement (in fsync mode: after the group fdatasync), per shard',
    labelNames: ['shard'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const batchAppends = new Histogram({
    name: 'shardline_journal_commit_appends',
    help: 'Appends written (and fsynced) together by one group commit, per shard',
    labelNames: ['shard'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers,
  });
  const batchBytes = new Histogram({
    name: 'shardline_journal_commit_bytes',
    help: 'Bytes written (and fsynced) together by one group commit, per shard',
    labelNames: ['shard'],
    buckets: [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304],
    registers,
  });
  journal.onCommit((event) => {
    const labels = { shard: event.shard };
    for (const ms of event.latenciesMs) latency.observe(labels, ms / 1000);
    batchAppends.observe(labels, event.appends);
    batchBytes.observe(labels, event.bytes);
  });
}

// Observed per request (latency cannot be read at scrape time); the error label is the first
// error code the response carries, as Kafka answers most failures inside a response.
function registerKafkaMetrics(registry: Registry, kafka: NonNullable<MetricsOptions['kafka']>): void {
  const registers = [registry];
  const requests = new Counter({
    name: 'shardline_kafka_requests_total',
    help: 'Kafka requests answered, per API and the first error code of the answer (NONE: none; HANDLER_FAILED: the connection was closed)',
    labelNames: ['api', 'error'],
    registers,
  });
  const duration = new Histogram({
    name: 'shardline_kafka_request_duration_seconds',
    help: 'From a decoded Kafka request to its answer, per API (a Fetch includes its long-poll wait)',
    labelNames: ['api'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
    registers,
  });
  new Gauge({
    name: 'shardline_kafka_connections',
    help: 'Kafka client connections open now',
    registers,
    collect() {
      this.set(kafka.connectionCount);
    },
  });
  kafka.onRequest((event) => {
    requests.inc({ api: event.api, error: event.error });
    duration.observe({ api: event.api }, event.seconds);
  });
  registerKafkaGroupMetrics(registry, kafka);
}

/** Lag series one scrape may carry; past it the rest are counted in ..._lag_series_omitted. */
export const KAFKA_LAG_SERIES_MAX = 2000;

const GROUP_STATES = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable'] as const;

// Read at scrape time from the coordinator and the shards' high watermarks: a group deleted or
// forgotten leaves no stale series, and the series count is capped whatever the clients do.
function registerKafkaGroupMetrics(registry: Registry, kafka: NonNullable<MetricsOptions['kafka']>): void {
  const registers = [registry];
  new Gauge({
    name: 'shardline_kafka_consumer_groups',
    help: 'Kafka consumer groups with members or committed offsets, per state',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<string, number>(GROUP_STATES.map((state) => [state, 0]));
      for (const group of kafka.consumerGroups()) counts.set(group.groupState, (counts.get(group.groupState) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  // Both gauges below come from one read of the groups per scrape (prom-client collects them together).
  type LagSnapshot = { series: Array<[Record<string, string>, number]>; omitted: number };
  const snapshot = (groups: readonly GroupDetail[]): LagSnapshot => {
    const series: LagSnapshot['series'] = [];
    let omitted = 0;
    for (const group of groups) {
      for (const partition of group.partitions) {
        if (partition.lag === null) continue;
        if (series.length < KAFKA_LAG_SERIES_MAX) series.push([{ group: group.groupId, topic: partition.topic, partition: String(partition.partition) }, partition.lag]);
        else omitted += 1;
      }
    }
    return { series, omitted };
  };
  let pending: Promise<LagSnapshot> | undefined;
  const lags = (): Promise<LagSnapshot> => {
    pending ??= kafka.consumerGroupDetails()
      .then(snapshot)
      // A remote journal that does not answer the high-watermark reads: no lag series in this
      // scrape (what an `absent()` alert looks for), the rest of the page still renders.
      .catch(() => ({ series: [], omitted: 0 }))
      .finally(() => (pending = undefined));
    return pending;
  };
  new Gauge({
    name: 'shardline_kafka_consumer_group_lag',
    help: `Records a Kafka consumer group has yet to read: log end offset minus committed offset, per partition it committed (groups by id, at most ${KAFKA_LAG_SERIES_MAX} series)`,
    labelNames: ['group', 'topic', 'partition'],
    registers,
    async collect() {
      const { series } = await lags();
      this.reset();
      for (const [labels, lag] of series) this.set(labels, lag);
    },
  });
  new Gauge({
    name: 'shardline_kafka_consumer_group_lag_series_omitted',
    help: `Partition lags left out of shardline_kafka_consumer_group_lag this scrape (past ${KAFKA_LAG_SERIES_MAX} series)`,
    registers,
    async collect() {
      this.set((await lags()).omitted);
    },
  });
}

// The node's MQTT figures with workers: the node-wide connection count (the series a single
// process has) and each worker's own, as reported over IPC once a second (so up to a second old).
function registerWorkerMetrics(registry: Registry, workers: () => WorkerMetricsSource[]): void {
  const registers = [registry];
  new Gauge({
    name: 'shardline_mqtt_connections',
    help: 'MQTT clients connected now (all workers)',
    registers,
    collect() {
      this.set(workers().reduce((sum, worker) => sum + worker.connections, 0));
    },
  });
  new Gauge({
    name: 'shardline_worker_mqtt_connections',
    help: 'MQTT clients connected to each worker process',
    labelNames: ['worker'],
    registers,
    collect() {
      for (const worker of workers()) this.set({ worker: String(worker.index) }, worker.connections);
    },
  });
  new Gauge({
    name: 'shardline_worker_up',
    help: 'Whether each MQTT worker process runs (0 while it is being restarted)',
    labelNames: ['worker'],
    registers,
    collect() {
      for (const worker of workers()) this.set({ worker: String(worker.index) }, worker.pid === undefined ? 0 : 1);
    },
  });
  // Gauges, not counters: a restarted worker's totals start again from zero.
  new Gauge({
    name: 'shardline_worker_mqtt_messages',
    help: 'MQTT messages each worker process received (in) and delivered (out) since it started',
    labelNames: ['worker', 'direction'],
    registers,
    collect() {
      for (const worker of workers()) {
        this.set({ worker: String(worker.index), direction: 'in' }, worker.messagesIn);
        this.set({ worker: String(worker.index), direction: 'out' }, worker.messagesOut);
      }
    },
  });
  new Gauge({
    name: 'shardline_worker_restarts',
    help: 'Times each MQTT worker process was started again after it exited',
    labelNames: ['worker'],
    registers,
    collect() {
      for (const worker of workers()) this.set({ worker: String(worker.index) }, worker.restarts);
    },
  });
}

function registerBrokerMetrics(registry: Registry, broker: Broker): void {
  const registers = [registry];
  new Gauge({
    name: 'shardline_mqtt_connections',
    help: 'MQTT clients connected now',
    registers,
    collect() {
      this.set(broker.onlineCount);
    },
  });
  new Gauge({
    name: 'shardline_mqtt_sessions',
    help: 'MQTT sessions held: connected ones and durable offline ones',
    registers,
    collect() {
      this.set(broker.sessions().length);
    },
  });
  new Gauge({
    name: 'shardline_mqtt_subscriptions',
    help: 'MQTT subscriptions of all sessions',
    registers,
    collect() {
      this.set(broker.subscriptions().length);
    },
  });
  new Gauge({
    name: 'shardline_mqtt_retained_messages',
    help: 'Retained MQTT messages held for clients (the broker\'s $SYS ones: shardline_sys_retained_messages)',
    registers,
    collect() {
      this.set(broker.retainedCounts().client);
    },
  });
  new Gauge({
    name: 'shardline_sys_retained_messages',
    help: 'Retained $SYS/... statistics messages the broker publishes about itself',
    registers,
    collect() {
      this.set(broker.retainedCounts().sys);
    },
  });
  new Counter({
    name: 'shardline_sys_messages_total',
    help: 'The broker\'s own $SYS/... statistics messages: direction in (published) or out (delivered); not in the client counters',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ direction: 'in' }, broker.stats.sys.messagesIn);
      this.inc({ direction: 'out' }, broker.stats.sys.messagesOut);
    },
  });
  new Gauge({
    name: 'shardline_mqtt_delayed_messages',
    help: 'Delayed messages ($delayed/SECONDS/TOPIC) held: accepted and not yet published',
    registers,
    collect() {
      this.set(broker.extras.delayed?.size ?? 0);
    },
  });
  new Counter({
    name: 'shardline_messages_in_total',
    help: 'Messages clients published to the broker ($SYS statistics: shardline_sys_messages_total)',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      this.reset();
      this.inc(PROTOCOL, broker.stats.messagesIn);
    },
  });
  new Counter({
    name: 'shardline_messages_out_total',
    help: 'Client messages delivered to subscribers (one per subscriber, retained deliveries included; $SYS ones not)',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      this.reset();
      this.inc(PROTOCOL, broker.stats.messagesOut);
    },
  });
  new Counter({
    name: 'shardline_bytes_in_total',
    help: 'Payload bytes published to the broker',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      this.reset();
      this.inc(PROTOCOL, broker.stats.bytesIn);
    },
  });
  new Counter({
    name: 'shardline_bytes_out_total',
    help: 'Payload bytes of deliveries to subscribers (live and retained)',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      this.reset();
      this.inc(PROTOCOL, broker.stats.bytesOut);
    },
  });
  new Counter({
    name: 'shardline_dropped_messages_total',
    help: 'Deliveries dropped: queue-full (QoS 0 past max-queued-bytes), expired (message expiry), too-large (over the client maximum packet size)',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(broker.stats.dropped)) this.inc({ reason }, count);
    },
  });
  new Counter({
    name: 'shardline_publishes_refused_total',
    help: 'Publishes refused while writes were blocked (journal unreachable, disk low): QoS 0 dropped, QoS 1/2 refused or held (MQTT 3.x)',
    registers,
    collect() {
      this.reset();
      this.inc(broker.stats.refused);
    },
  });
  new Counter({
    name: 'shardline_session_retention_gap_messages_total',
    help: 'Messages sessions skipped because retention deleted them before they were read (each session resumed at the oldest kept message)',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      this.reset();
      this.inc(PROTOCOL, broker.stats.retentionGapMessages);
    },
  });
}

function registerInboundMetrics(registry: Registry, inbound: () => InboundStats): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (stats: InboundStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(inbound()));
      },
    });
  };
  gauge('shardline_mqtt_inbound_bytes', 'Bytes reserved now by inbound MQTT packets over 64 KiB, from their fixed header until handled (a PUBLISH: stored)', (stats) => stats.reservedBytes);
  gauge('shardline_mqtt_inbound_bytes_limit', 'The bound on shardline_mqtt_inbound_bytes (--max-inbound-bytes)', (stats) => stats.limitBytes);
  gauge('shardline_mqtt_inbound_bytes_peak', 'The most shardline_mqtt_inbound_bytes has been since start', (stats) => stats.reservedPeakBytes);
  gauge('shardline_mqtt_inbound_waiting', 'Connections not being read now because their packet waits for inbound budget', (stats) => stats.waiting);
  new Counter({
    name: 'shardline_mqtt_inbound_waits_total',
    help: 'Inbound packets that had to wait for budget before their socket was read further',
    registers,
    collect() {
      this.reset();
      this.inc(inbound().waitedTotal);
    },
  });
}

function registerShardMetrics(registry: Registry, store: ShardStore): void {
  // prom-client collects a registry's metrics concurrently, so the three shard gauges share one
  // store.list() per scrape: the first collect starts it, the others join it while it runs.
  let listing: Promise<ShardInfo[] | undefined> | undefined;
  const shards = (): Promise<ShardInfo[] | undefined> => {
    listing ??= store
      .list()
      // A remote journal that is down: the shard series are absent from this scrape (what an
      // `absent()` alert looks for) and the rest of the page still renders.
      .catch(() => undefined)
      .finally(() => (listing = undefined));
    return listing;
  };
  const shardGauge = (name: string, help: string, value: (shard: ShardInfo) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['shard'] as const,
      registers: [registry],
      async collect() {
        const list = await shards();
        this.reset();
        for (const shard of list ?? []) this.set({ shard: shard.name }, value(shard));
      },
    });
  };
  shardGauge('shardline_shard_size_bytes', 'Bytes a shard holds (all its segments)', (shard) => shard.sizeBytes);
  shardGauge('shardline_shard_next_offset', 'Offset the next record appended to a shard gets', (shard) => shard.nextOffset);
  shardGauge('shardline_shard_segments', 'Segments of a shard', (shard) => shard.segmentCount);
}

// Read at scrape time from the disk watch's latest measurement (it runs every disk-check-ms).
function registerDiskMetrics(registry: Registry, disks: () => DiskStatus[]): void {
  const diskGauge = (name: string, help: string, value: (disk: DiskStatus) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['path'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const disk of disks()) this.set({ path: disk.path }, value(disk));
      },
    });
  };
  diskGauge('shardline_disk_total_bytes', 'Size of the file system that holds a data directory', (disk) => disk.totalBytes);
  diskGauge('shardline_disk_free_bytes', 'Bytes still free for this process on the file system of a data directory', (disk) => disk.freeBytes);
  diskGauge('shardline_disk_used_bytes', 'Bytes in use on the file system of a data directory (by anything)', (disk) => disk.usedBytes);
  diskGauge('shardline_disk_journal_bytes', 'Bytes the journal shards of a data directory hold', (disk) => disk.journalBytes);
  diskGauge('shardline_disk_low_watermark_bytes', 'Free space below which publishes are refused (0: watermark off)', (disk) => disk.thresholdBytes);
  diskGauge('shardline_disk_low', '1 while free space is below the watermark and publishes are refused, else 0', (disk) => (disk.low ? 1 : 0));
}

// Read at scrape time from the voter's own status, except the proposal latency, which is
// observed as proposals are answered. The per-member lag asks every peer for its status over
// gRPC (each waits at most the probe time), so only the leader reports it: the leader's commit
// index is the one the others trail.
function registerPlacementMetrics(registry: Registry, placement: NonNullable<MetricsOptions['placement']>): void {
  const registers = [registry];
  const statusGauge = (name: string, help: string, value: (status: ReturnType<typeof placement.status>) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(placement.status()));
      },
    });
  };
  statusGauge('shardline_placement_term', 'Raft term this placement voter is in', (status) => status.term);
  statusGauge('shardline_placement_is_leader', '1 while this placement voter is the Raft leader, else 0', (status) => (status.role === 'leader' ? 1 : 0));
  statusGauge('shardline_placement_commit_index', 'Highest Raft log index this voter knows to be committed', (status) => status.commitIndex);
  statusGauge('shardline_placement_applied_index', 'Highest Raft log index this voter applied to its metadata state', (status) => status.appliedIndex);
  statusGauge('shardline_placement_apply_lag_entries', 'Committed entries this voter has not applied yet (commit index - applied index)', (status) => Math.max(0, status.commitIndex - status.appliedIndex));
  new Counter({
    name: 'shardline_placement_leader_changes_total',
    help: 'Times this placement voter learned of a new leader since it started (its first leader included)',
    registers,
    collect() {
      this.reset();
      this.inc(placement.leaderChanges());
    },
  });
  new Gauge({
    name: 'shardline_placement_member_lag_entries',
    help: "On the leader: entries each member has yet to apply against the leader's commit index (from the member's own status; absent for a member that did not answer)",
    labelNames: ['member'] as const,
    registers,
    async collect() {
      this.reset();
      const self = placement.status();
      if (self.role !== 'leader') return;
      for (const member of await placement.members()) {
        if (member.status !== null) this.set({ member: String(member.id) }, Math.max(0, self.commitIndex - member.status.appliedIndex));
      }
    },
  });
  const latency = new Histogram({
    name: 'shardline_placement_proposal_latency_seconds',
    help: 'From a metadata proposal reaching this voter (as leader) to its answer once committed and applied',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  placement.onProposalApplied((ms) => latency.observe(ms / 1000));
}
