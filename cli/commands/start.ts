// `shardline start`: runs node roles in this process until SIGTERM or SIGINT. This file parses
// the flags, the environment and the config file (cli/config/), validates the config file's
// sections, handles the signals and maps the outcome to an exit code; the node itself (start-up
// and shutdown order, all or nothing, live settings) is node/runtime.ts.
import { ShardlineNode, createLogger, effectiveRoles, isWorkerProcess, receiveAssignment, routeGrpcLogs, WorkerLink, workerSettings, type SettingsCatalog } from '../../node/index.js';
import type { Command } from '../command.js';
import { configAclRules } from '../config/acl-rules.js';
import { extrasRules } from '../config/extras-rules.js';
import { securityConfig } from '../config/security.js';
import { camelName, isLiveSetting, parseLiveSetting, resolveStartSettings, settingsHelp, START_SETTINGS, startOptionSpec } from '../config/settings.js';
import { checkTransports } from '../config/transport-settings.js';
import { packageInfo } from '../package-info.js';

const usage = `
Usage: shardline start [flags]

Runs Shardline node roles in this process until SIGTERM or SIGINT.

Roles (--roles, comma-separated):
  journal      the shard journal in --data-dir, served over gRPC (service
               shardline.journal.v1.Journal) on --host:--grpc-port
  broker       the MQTT broker (3.1, 3.1.1, 5.0) on --host:--mqtt-port; with the journal role
               it uses the journal in-process, alone it needs --journal HOST:PORT
  placement    a voter of the placement group (cluster metadata, Raft) on --host:--placement-port,
               storage in --data-dir; needs --node-id N and the cluster token
               (SHARDLINE_CLUSTER_TOKEN); --placement-peers ID@HOST:PORT,... lists every voter,
               this one included (the same list on each); or --placement-join HOST:PORT,...
               (some voters of a running group) to join it with an empty data directory
  Without --roles: the single-node default, journal + broker in one process.

Placement group (docs/operations.md, "Running a placement group"): three voters, e.g.
  SHARDLINE_CLUSTER_TOKEN=... shardline start --roles placement --node-id 1 \\
    --placement-peers 1@10.0.0.1:1228,2@10.0.0.2:1228,3@10.0.0.3:1228
Growing it (docs/operations.md, "Growing a placement group"): start a new voter with an unused
node id, an empty data directory and the running voters' addresses; it asks the leader to add
it (one voter at a time) and catches up from it. --host:--placement-port is the address the
group records for it, so --host must be one the others reach:
  SHARDLINE_CLUSTER_TOKEN=... shardline start --roles placement --node-id 4 --host 10.0.0.4 \\
    --placement-join 10.0.0.1:1228,10.0.0.2:1228,10.0.0.3:1228
Started again later with the same flags, it restarts from its data directory (no new join).
A join refused (wrong token or cluster id, another change in progress, an id or address taken)
exits 1 with the reason; a data directory of another node or cluster: SL_RAFT_IDENTITY_MISMATCH.
Journal and broker nodes given --placement HOST:PORT,... (and the same token) register with the
group and keep a lease by heartbeats; an unreachable group is logged and retried, never fatal.

Transports (broker role; each off unless its port is set): MQTT over TLS on --mqtts-port,
MQTT over WebSocket on --ws-port and over WebSocket with TLS on --wss-port (path --ws-path,
default /mqtt, subprotocol "mqtt"). TLS needs --tls-cert and --tls-key; client certificates:
--tls-client-auth optional|required with --tls-ca. See docs/security.md.

AMQP 0-9-1 (broker role; preview, off unless --amqp-port is set): PLAIN and AMQPLAIN against
the same users as MQTT, virtual host "/"; exchanges (direct, fanout, topic, headers), queues,
bindings, publish, consume, acks, prefetch and publisher confirms. Durable queues keep their
persistent messages in shards amqp.q.ID, the topology in $amqp.topology; TTL, max-length and
dead-lettering; transactions. The MQTT bridge is not built yet. docs/amqp.md.

Kafka (a preview, broker role): --kafka-port (default 9092; none: off) and, over TLS,
--kafkas-port serve ApiVersions, Metadata, CreateTopics/DeleteTopics/CreatePartitions,
DescribeConfigs, Produce (gzip, snappy, lz4, zstd; idempotent producers), Fetch, ListOffsets,
consumer groups (classic protocol; committed offsets in the shard $kafka.offsets) and SASL
PLAIN/SCRAM-SHA-256 against the MQTT users (no transactions); topic-partitions are shards
kafka.TOPIC.PARTITION. The MQTT traffic is the topic mqtt (--kafka-mqtt-topic): partition = data
shard, key = MQTT topic; producing to it publishes MQTT messages. Each listener's clients are
told this node's --kafka-advertised or --kafkas-advertised address; brokers of a placement group
register both with it and tell each client every live broker of its own listener (leaders and
coordinators among the brokers that serve every listener in use). See docs/kafka.md.

MQTT workers (--workers N, single-node default only; docs/architecture.md, "More than one core"):
N > 1 keeps the journal, its gRPC port (with a cluster token made for the run unless
SHARDLINE_CLUSTER_TOKEN is set), placement and the admin API in this process and runs N MQTT
brokers as child processes (node:cluster) over that journal. They share the MQTT ports: this
process accepts each connection and hands it to the next worker. Messages, sessions, retained
messages, wills and users are shared as between --broker-peers brokers. A worker that exits is
started again after 1 s; its clients reconnect to the others. Every worker's log lines carry
"worker":K; /metrics adds shardline_worker_* series per worker. No Kafka or AMQP listener then.

Admin API: every node also serves the admin HTTP API (REST under /api, Prometheus /metrics, /healthz,
/readyz, OpenAPI UI at /docs) on --host:--admin-port; /api and /metrics need the header
"Authorization: Bearer TOKEN". Without --admin-token the token is kept in DATA-DIR/admin-token,
created (mode 0600) and logged once on the first start; a broker-only node makes one per start
and logs it. See docs/operations.md.

${settingsHelp()}

Logs are JSON lines on stdout (pino). Once serving, one line says where:
  {"level":30,...,"mqtt":"127.0.0.1:1883","journalGrpc":"127.0.0.1:1771","admin":"127.0.0.1:8080",
   "msg":"listening mqtt=127.0.0.1:1883 journal-grpc=127.0.0.1:1771 admin=127.0.0.1:8080"}
With transports on, the line also has mqtts=..., ws=..., wss=... (fields mqtts, ws, wss), with
--amqp-port amqp=... (field amqp); a
placement voter's has placement=HOST:PORT (fields placement, placementPort).

SIGTERM or SIGINT: stop accepting, tell MQTT clients the server is shutting down (5.0 DISCONNECT
0x8B), let in-flight appends finish, close the journal, exit 0. A second signal cancels at once.
Exit status: 0 after a clean shutdown; 1 when the data directory, a port or the remote journal
cannot be used (the log says which, with a code such as SL_JOURNAL_LOCKED); 2 for bad settings.
`;

/** Calls `first` on the first SIGTERM/SIGINT and `again` on any later one; returns the unsubscribe. */
function onShutdownSignals(first: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) again(signal);
    else {
      received = true;
      first(signal);
    }
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}


/** The settings schema as the admin API needs it (GET and PATCH /api/config). */
const catalog: SettingsCatalog = {
  view(settings) {
    const values = settings as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const spec of START_SETTINGS) out[spec.key] = values[camelName(spec.key)] ?? null;
    out.roles = effectiveRoles(settings);
    out['admin-token'] = '(hidden)';
    if (settings.clusterToken !== undefined) out['cluster-token'] = '(hidden)';
    return out;
  },
  isLive: isLiveSetting,
  parseLive: (key, value) => parseLiveSetting(key as Parameters<typeof parseLiveSetting>[0], value, key),
  field: (key) => camelName(key) as ReturnType<SettingsCatalog['field']>,
};

/** Runs the node until a shutdown signal, or until `stopRequests` calls back (a worker told by its primary). */
async function run(node: ShardlineNode, logger: ReturnType<typeof createLogger>, stopRequests?: (stop: () => void) => void): Promise<number> {
  let unsubscribe = (): void => undefined;
  const stopped = new Promise<void>((resolve) => {
    stopRequests?.(() => {
      logger.info('shutting down: the primary asked this worker to stop');
      resolve();
    });
    unsubscribe = onShutdownSignals(
      (signal) => {
        logger.info({ signal }, 'shutting down: refusing new connections and calls, letting in-flight work finish');
        resolve();
      },
      (signal) => {
        logger.warn({ signal }, 'second signal: cancelling in-flight calls');
        node.forceStop();
        process.exit(1);
      },
    );
  });
  try {
    await node.start();
  } catch (error) {
    unsubscribe();
    throw error;
  }
  await stopped;
  await node.stop();
  unsubscribe();
  logger.info('stopped');
  return 0;
}

export const startCommand: Command = {
  path: ['start'],
  summary: 'run a node: the MQTT broker and the shard journal (single node by default)',
  usage,
  options: startOptionSpec(),
  async run(values) {
    const resolved = await resolveStartSettings(values, process.env);
    // An MQTT worker (--workers N) runs this command again with the primary's flags; its first
    // message from the primary says which worker it is (node/workers.ts).
    const assignment = isWorkerProcess() ? await receiveAssignment() : undefined;
    const settings = assignment === undefined ? resolved : { ...resolved, ...workerSettings(resolved, assignment) };
    const aclRules = configAclRules(settings);
    checkTransports(settings);
    const logger = createLogger(settings.logLevel, assignment === undefined ? {} : { worker: assignment.index });
    routeGrpcLogs(logger.child({ component: 'grpc' }));
    // Said once, by the primary.
    if (assignment === undefined) for (const warning of settings.warnings) logger.warn(warning);
    logger.debug({ sources: settings.sources }, 'settings resolved');
    try {
      // Checked before anything opens: a bad users/deny/jwt section or rule is a usage error
      // (exit 2), not a half-started node.
      const security = effectiveRoles(settings).includes('broker') ? await securityConfig(settings) : undefined;
      const extras = extrasRules(settings);
      if (assignment !== undefined) {
        const link = new WorkerLink();
        const node = new ShardlineNode({ settings, broker: { security, aclRules, extras }, catalog, logger, version: packageInfo().version, worker: { brokerId: assignment.brokerId, link } });
        let code = 1;
        try {
          code = await run(node, logger, (stop) => link.onStop(stop));
        } catch (error) {
          logger.error({ err: error }, `this MQTT worker could not start: ${(error as Error).message}`);
        } finally {
          link.close();
          logger.flush();
        }
        // node:cluster keeps the channel to the primary open, so the worker would not exit on its own.
        process.exit(code);
      }
      const node = new ShardlineNode({ settings, broker: { security, aclRules, extras }, catalog, logger, version: packageInfo().version });
      return await run(node, logger);
    } finally {
      // pino writes stdout synchronously, but flush in case a destination buffers.
      logger.flush();
    }
  },
};
