// Settings of `shardline start`: one schema table drives the flags, the SHARDLINE_* environment
// variables, the config file keys, --help and docs/configuration.md (a test checks the page), so
// the four cannot disagree. Resolution: flag > environment > config file > default.
//
// Every value that is supplied is validated, including one that a higher layer overrides: a
// stale SHARDLINE_* variable or a broken config line is reported rather than left to surprise
// whoever later removes the flag that hid it.
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { TIMER_DELAY_MS_MAX, type LimitSpec, type LimitUnit, type ShardlineError } from '../../base/index.js';
import { SHARED_STRATEGIES } from '../../engine/index.js';
import { DEFAULT_JOURNAL_GRPC_PORT } from '../../journal/index.js';
import { DEFAULT_PLACEMENT_GRPC_PORT } from '../../placement/service/index.js';
import { effectiveRoles, LOG_LEVELS, ROLES, TLS_CLIENT_AUTH_MODES, type NodeSettings, type PlacementPeer } from '../../node/index.js';
import { isTopicName, parseAdvertised } from '../../protocols/kafka/index.js';
import { MQTT_LIMITS } from '../../protocols/mqtt/index.js';
import { closest } from '../closest.js';
import { UsageError, type OptionSpec } from '../command.js';

export const DEFAULT_MQTT_PORT = 1883;
export const DEFAULT_ADMIN_PORT = 8080;
/** Kafka's and RabbitMQ's own ports, so clients find the front ends where they look first. */
export const DEFAULT_KAFKA_PORT = 9092;
export const DEFAULT_AMQP_PORT = 5672;
/** Shorter tokens are refused: the token is all that keeps a stranger from voting or reading. */
export const MIN_CLUSTER_TOKEN_LENGTH = 16;
export const ENV_PREFIX = 'SHARDLINE_';
export const CONFIG_EXTENSIONS = ['.toml', '.yaml', '.yml'] as const;
/** The config-file table (TOML `[mqtt]`, YAML `mqtt:`) that may hold the broker limits. */
export const MQTT_TABLE = 'mqtt';
/**
 * Config-file sections that hold structured rules (lists of users, ACL rules, ...) rather than
 * one value: they cannot be flags or variables, so the file keeps them raw and the feature that
 * owns each one validates it (with the file's name in its errors) when the node starts.
 */
export const RULE_SECTIONS = ['users', 'acl', 'deny', 'jwt', 'auto-subscribe', 'rewrite'] as const;
export type RuleSection = (typeof RULE_SECTIONS)[number];

export type SettingUnit = LimitUnit | 'port' | 'percent';

export type SettingKind =
  /** offWithNone: the word none turns the setting off (undefined), e.g. a listener on by default. */
  | { type: 'integer'; min: number; max?: number; offWithNone?: true }
  | { type: 'string' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list'; values: readonly string[] }
  | { type: 'address' }
  | { type: 'addresses' }
  | { type: 'peers' }
  | { type: 'boolean' };

export interface SettingSpec {
  /** kebab-case; the flag is `--key`, the config-file key is `key`, the env variable SHARDLINE_KEY. */
  key: string;
  kind: SettingKind;
  /** Absent: the setting has no default (see defaultText for what its absence means). */
  default?: number | string | boolean;
  /** Help/docs wording for the default when there is no plain value to show. */
  defaultText?: string;
  unit?: SettingUnit;
  /** Placeholder in help: `--mqtt-port N`. */
  valueName: string;
  /** 'limit' settings are broker limits, which a config file may also nest under [mqtt]. */
  group: 'node' | 'limit';
  description: string;
}

/** A limit-table entry (base/limits.ts) as a setting of the 'limit' group: the table is the one place a limit is named. */
type LimitSetting<Spec> = Spec extends LimitSpec ? SettingSpec & { readonly key: Spec['name']; readonly group: 'limit' } : never;

const VALUE_NAMES: Record<LimitUnit, string> = { bytes: 'BYTES', count: 'N', ms: 'MS', seconds: 'SECONDS' };

function limitSettings<const Table extends readonly LimitSpec[]>(table: Table): { readonly [Index in keyof Table]: LimitSetting<Table[Index]> } {
  return table.map((spec) => ({
    key: spec.name,
    kind: spec.max === undefined ? { type: 'integer', min: spec.min } : { type: 'integer', min: spec.min, max: spec.max },
    default: spec.default,
    unit: spec.unit,
    valueName: VALUE_NAMES[spec.unit],
    group: 'limit',
    description: spec.doc,
  })) as unknown as { readonly [Index in keyof Table]: LimitSetting<Table[Index]> };
}

export const START_SETTINGS = [
  { key: 'roles', kind: { type: 'list', values: ROLES }, defaultText: 'journal,broker', valueName: 'LIST', group: 'node', description: 'comma-separated roles to run in this process: journal, broker, placement; unset runs journal and broker (single node)' },
  { key: 'node-id', kind: { type: 'integer', min: 1, max: 4_294_967_295 }, defaultText: 'none', valueName: 'N', group: 'node', description: "this node's id in the cluster: its Raft id in the placement group (required with the placement role) and the id it registers with placement under (without it: the host name and the node's first address)" },
  { key: 'node-id-from-hostname', kind: { type: 'boolean' }, default: false, valueName: 'BOOL', group: 'node', description: "take node-id from the host name's trailing -N, plus node-id-base (a Kubernetes StatefulSet pod shardline-0 is node 1, shardline-2 node 3), so every replica runs the same arguments; not with node-id" },
  { key: 'node-id-base', kind: { type: 'integer', min: 1, max: 4_294_967_295 }, default: 1, valueName: 'N', group: 'node', description: 'with node-id-from-hostname: the node id of the pod with ordinal 0, so a second StatefulSet (spare journal nodes, shardline-journal-0 as node 11) takes ids apart from the first' },
  { key: 'placement-peers', kind: { type: 'peers' }, defaultText: 'this node alone', valueName: 'ID@HOST:PORT,...', group: 'node', description: 'placement role: every voter of the placement group, this node included, as Raft id @ the address the others dial; a new group starts with these voters, so give every voter the same list' },
  { key: 'placement-join', kind: { type: 'addresses' }, defaultText: 'none', valueName: 'HOST:PORT,...', group: 'node', description: "placement role: join a running placement group (some or all of its voters' addresses) instead of founding one; with an empty data directory this voter asks the group's leader to add it (one voter at a time) and catches up from it; with a Raft log it just restarts from it. The group records --host:--placement-port as the address to dial; not with placement-peers" },
  { key: 'replica-peers', kind: { type: 'peers' }, defaultText: 'none: no replication', valueName: 'ID@HOST:PORT,...', group: 'node', description: 'journal role: every journal node that holds replicas, this one included, as node id @ the address of its journal gRPC port; turns on the replication calls (authenticated with cluster-token, which it requires). Who leads each replicated shard is set by `shardline ctl replica elect` (interim, docs/replication.md)' },
  { key: 'placement-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: `the port of this node's entry in placement-peers; ${DEFAULT_PLACEMENT_GRPC_PORT} without one`, unit: 'port', valueName: 'N', group: 'node', description: 'placement role: the placement gRPC port this node binds; 0 picks a free one, reported in the listening line' },
  { key: 'placement', kind: { type: 'addresses' }, defaultText: 'none', valueName: 'HOST:PORT,...', group: 'node', description: 'journal and broker nodes: the placement group to register with (some or all of its voters); the node keeps serving while placement is unreachable. A journal node with node-id and cluster-token also replicates the shards placement assigns it (peers from placement, no replica-peers needed); a broker without journal uses the cluster\'s replicated shards' },
  { key: 'cluster-id', kind: { type: 'string' }, default: 'shardline', valueName: 'NAME', group: 'node', description: 'name of the cluster, carried by every placement call: voters and nodes of another cluster are refused' },
  { key: 'cluster-token', kind: { type: 'string' }, defaultText: 'none', valueName: 'TOKEN', group: 'node', description: `shared secret of the cluster, at least ${MIN_CLUSTER_TOKEN_LENGTH} characters: every placement call and, on a journal node that has it, every journal gRPC call must carry it (a broker sends it to its journal); required with the placement role, placement or replica-peers; prefer the variable to the flag, which ps shows` },
  { key: 'config', kind: { type: 'string' }, defaultText: 'none', valueName: 'FILE', group: 'node', description: 'config file (.toml, .yaml or .yml) with any of these settings, same keys as the flags' },
  { key: 'data-dir', kind: { type: 'string' }, default: './data', valueName: 'DIR', group: 'node', description: 'journal data directory, created when missing; unused with --roles broker' },
  { key: 'lock-wait-seconds', kind: { type: 'integer', min: 0, max: 3600 }, default: 30, unit: 'seconds', valueName: 'SECONDS', group: 'node', description: 'how long start waits for another live process that holds the data directory lock (a killed node still exiting) before it fails with SL_JOURNAL_LOCKED; 0 fails at once; unused with --roles broker' },
  { key: 'host', kind: { type: 'string' }, default: '127.0.0.1', valueName: 'ADDR', group: 'node', description: 'address the MQTT, journal gRPC and admin HTTP listeners bind to (MQTT admits anonymous clients unless allow-anonymous is false, and the journal gRPC port of a node without cluster-token or journal-tls has no authentication: bind others with care)' },
  { key: 'advertise-host', kind: { type: 'string' }, defaultText: 'the bound host (host)', valueName: 'HOST', group: 'node', description: 'host name or address other nodes dial to reach this node: registered with placement in the addresses of its roles (journal nodes and brokers find one another\'s journal gRPC port there); set it when host is a wildcard such as 0.0.0.0 (in Kubernetes, the pod\'s stable DNS name); not a wildcard itself' },
  { key: 'mqtt-port', kind: { type: 'integer', min: 0, max: 65_535 }, default: DEFAULT_MQTT_PORT, unit: 'port', valueName: 'N', group: 'node', description: 'MQTT listener port; 0 picks a free one, reported in the listening line' },
  { key: 'mqtts-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: 'none', unit: 'port', valueName: 'N', group: 'node', description: 'MQTT over TLS listener port (needs tls-cert and tls-key); unset: no TLS listener; 0 picks a free one' },
  { key: 'ws-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: 'none', unit: 'port', valueName: 'N', group: 'node', description: 'MQTT over WebSocket listener port (path ws-path, subprotocol mqtt); unset: no WebSocket listener; 0 picks a free one' },
  { key: 'wss-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: 'none', unit: 'port', valueName: 'N', group: 'node', description: 'MQTT over WebSocket with TLS listener port (needs tls-cert and tls-key); unset: none; 0 picks a free one' },
  { key: 'kafka-port', kind: { type: 'integer', min: 0, max: 65_535, offWithNone: true }, default: DEFAULT_KAFKA_PORT, unit: 'port', valueName: 'N', group: 'node', description: 'Kafka listener port (broker role; a preview: docs/kafka.md); none: no Kafka listener; 0 picks a free one, reported in the listening line (kafka=)' },
  { key: 'kafka-advertised', kind: { type: 'address' }, defaultText: 'none', valueName: 'HOST:PORT', group: 'node', description: 'address Kafka clients are told to dial for this node (Metadata, FindCoordinator; registered with placement in a cluster); not a wildcard such as 0.0.0.0; unset: the Kafka listener\'s bound address (a cluster broker bound to a wildcard host: the host name)' },
  { key: 'kafkas-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: 'none', unit: 'port', valueName: 'N', group: 'node', description: 'Kafka over TLS listener port (broker role; needs tls-cert and tls-key); unset: none; 0 picks a free one, reported in the listening line (kafkas=)' },
  { key: 'kafkas-advertised', kind: { type: 'address' }, defaultText: 'none', valueName: 'HOST:PORT', group: 'node', description: "address Kafka clients connected over TLS are told to dial for this node (Metadata, FindCoordinator; registered with placement in a cluster as the kafkas endpoint); not a wildcard; unset: the TLS listener's bound address (a cluster broker bound to a wildcard host: the host name)" },
  { key: 'kafka-mqtt-topic', kind: { type: 'string' }, default: 'mqtt', valueName: 'NAME', group: 'node', description: 'the Kafka topic that shows this node\'s MQTT traffic (partition i = MQTT data shard i, key = MQTT topic; producing to it publishes MQTT messages); none: not shown' },
  { key: 'kafka-max-request-bytes', kind: { type: 'integer', min: 1024, max: 1_073_741_824 }, default: 104_857_600, unit: 'bytes', valueName: 'BYTES', group: 'node', description: 'largest Kafka request frame the listener reads; a larger size prefix closes the connection (Kafka\'s socket.request.max.bytes)' },
  { key: 'kafka-group-initial-rebalance-delay-ms', kind: { type: 'integer', min: 0, max: 300_000 }, default: 3000, unit: 'ms', valueName: 'MS', group: 'node', description: 'how long the first rebalance of an empty Kafka consumer group waits for more members to join (Kafka\'s group.initial.rebalance.delay.ms)' },
  { key: 'ws-path', kind: { type: 'string' }, default: '/mqtt', valueName: 'PATH', group: 'node', description: 'URL path of the MQTT endpoint on the ws-port and wss-port listeners' },
  { key: 'tls-cert', kind: { type: 'string' }, defaultText: 'none', valueName: 'FILE', group: 'node', description: 'server certificate (PEM, may include the chain) for the TLS listeners: mqtts-port, wss-port, amqps-port, kafkas-port' },
  { key: 'tls-key', kind: { type: 'string' }, defaultText: 'none', valueName: 'FILE', group: 'node', description: 'private key (PEM, unencrypted) of tls-cert' },
  { key: 'tls-ca', kind: { type: 'string' }, defaultText: 'none', valueName: 'FILE', group: 'node', description: 'CA certificate(s) (PEM) that client certificates must chain to; needed by tls-client-auth optional and required' },
  { key: 'tls-client-auth', kind: { type: 'enum', values: TLS_CLIENT_AUTH_MODES }, default: 'none', valueName: 'MODE', group: 'node', description: 'client certificates on the TLS listeners: none; optional (a presented one must verify); required (refused without one that verifies)' },
  { key: 'journal-tls', kind: { type: 'boolean' }, default: false, valueName: 'BOOL', group: 'node', description: 'mutual TLS on the journal gRPC port and on this node\'s calls to journal nodes (replication, a broker\'s journal): the server presents its certificate and refuses a client without one that chains to the CA; as a client the node presents the same certificate and checks the server against the CA (so it needs both the serverAuth and clientAuth uses, and the addresses dialled); the files are journal-tls-cert, journal-tls-key and journal-tls-ca, each defaulting to tls-cert, tls-key and tls-ca; every journal node, broker and `ctl replica` of the cluster must use it alike' },
  { key: 'journal-tls-cert', kind: { type: 'string' }, defaultText: 'tls-cert', valueName: 'FILE', group: 'node', description: 'journal-tls: this node\'s certificate (PEM) on the journal port and towards other journal nodes, when it is not tls-cert (the MQTT listeners\' certificate)' },
  { key: 'journal-tls-key', kind: { type: 'string' }, defaultText: 'tls-key', valueName: 'FILE', group: 'node', description: 'journal-tls: the private key (PEM, unencrypted) of journal-tls-cert' },
  { key: 'journal-tls-ca', kind: { type: 'string' }, defaultText: 'tls-ca', valueName: 'FILE', group: 'node', description: 'journal-tls: the CA certificate(s) (PEM) that journal nodes\' and their clients\' certificates chain to, when it is not tls-ca (which may trust MQTT devices that must not reach the journal)' },
  // AMQP 0-9-1 front end (issue 15).
  { key: 'amqp-port', kind: { type: 'integer', min: 0, max: 65_535, offWithNone: true }, default: DEFAULT_AMQP_PORT, unit: 'port', valueName: 'N', group: 'node', description: 'AMQP 0-9-1 listener port (broker role; a preview: docs/amqp.md); none: no AMQP listener; 0 picks a free one, reported in the listening line (amqp=)' },
  { key: 'amqps-port', kind: { type: 'integer', min: 0, max: 65_535 }, defaultText: 'none', unit: 'port', valueName: 'N', group: 'node', description: 'AMQP 0-9-1 over TLS listener port (needs tls-cert and tls-key); unset: none; 0 picks a free one, reported in the listening line (amqps=)' },
  { key: 'amqp-channel-max', kind: { type: 'integer', min: 1, max: 65_535 }, default: 2047, valueName: 'N', group: 'node', description: 'highest AMQP channel number a connection may use (offered in connection.tune; a client asking for more is refused 530, a frame on a higher channel closes the connection 504)' },
  { key: 'amqp-max-queues', kind: { type: 'integer', min: 0 }, default: 10_000, valueName: 'N', group: 'node', description: 'AMQP queues on the node; one more queue.declare is refused 406 PRECONDITION_FAILED; 0: no bound' },
  { key: 'amqp-max-exchanges', kind: { type: 'integer', min: 0 }, default: 10_000, valueName: 'N', group: 'node', description: 'AMQP exchanges clients may declare on the node (amq.* and the default one not counted); one more is refused 406 PRECONDITION_FAILED; 0: no bound' },
  { key: 'amqp-max-bindings', kind: { type: 'integer', min: 0 }, default: 100_000, valueName: 'N', group: 'node', description: 'AMQP bindings on the node (queue and exchange-to-exchange ones); one more queue.bind or exchange.bind is refused 406 PRECONDITION_FAILED; 0: no bound' },
  { key: 'amqp-max-consumers-per-channel', kind: { type: 'integer', min: 0 }, default: 1000, valueName: 'N', group: 'node', description: 'consumers one AMQP channel may hold; one more basic.consume closes the connection 530 NOT_ALLOWED (RabbitMQ\'s consumer_max_per_channel); 0: no bound' },
  { key: 'amqp-memory-limit-bytes', kind: { type: 'integer', min: 0 }, default: 1_073_741_824, unit: 'bytes', valueName: 'BYTES', group: 'node', description: 'message bytes AMQP queues may hold in memory (ready and unacknowledged) before the node blocks publishing connections (connection.blocked, sockets not read) until they drop below it; 0: no memory alarm' },
  { key: 'grpc-port', kind: { type: 'integer', min: 0, max: 65_535 }, default: DEFAULT_JOURNAL_GRPC_PORT, unit: 'port', valueName: 'N', group: 'node', description: 'journal gRPC port; 0 picks a free one, reported in the listening line' },
  { key: 'admin-port', kind: { type: 'integer', min: 0, max: 65_535 }, default: DEFAULT_ADMIN_PORT, unit: 'port', valueName: 'N', group: 'node', description: 'admin HTTP port (REST API, /metrics, /healthz; every role serves it); 0 picks a free one, reported in the listening line' },
  { key: 'admin-token', kind: { type: 'string' }, defaultText: 'none', valueName: 'TOKEN', group: 'node', description: 'bearer token the admin API and /metrics require; unset: the one in <data-dir>/admin-token, created on first start (a broker-only node makes one per start); prefer the variable to the flag, which ps shows' },
  { key: 'journal', kind: { type: 'address' }, defaultText: 'none', valueName: 'HOST:PORT', group: 'node', description: 'remote journal server (one, unreplicated); with --roles broker, either this or placement (the shards of the cluster\'s journal nodes, replicated, each call to its shard\'s leader); not allowed with the journal role' },
  { key: 'log-level', kind: { type: 'enum', values: LOG_LEVELS }, default: 'info', valueName: 'LEVEL', group: 'node', description: `log level: ${LOG_LEVELS.join(', ')}` },
  { key: 'allow-anonymous', kind: { type: 'boolean' }, default: true, valueName: 'BOOL', group: 'node', description: 'MQTT clients that present no credentials (user name, password, token, certificate) may connect as anonymous; on for the quick start, turn it off once users, jwt or client certificates are set up (docs/security.md)' },
  { key: 'certificate-username', kind: { type: 'boolean' }, default: false, valueName: 'BOOL', group: 'node', description: "with mutual TLS, a client's verified certificate subject CN is its user name and no password is needed" },
  ...limitSettings(MQTT_LIMITS),
  { key: 'data-shards', kind: { type: 'integer', min: 1, max: 1024 }, default: 8, unit: 'count', valueName: 'N', group: 'limit', description: 'number of MQTT data shards; fixed when the data directory is first used' },
  { key: 'shared-strategy', kind: { type: 'enum', values: SHARED_STRATEGIES }, default: 'round-robin', valueName: 'STRATEGY', group: 'limit', description: `which member of a shared subscription group ($share/GROUP/FILTER) gets each message: ${SHARED_STRATEGIES.join(', ')} (hash of the publisher's client id)` },
  { key: 'broker-peers', kind: { type: 'boolean' }, default: false, valueName: 'BOOL', group: 'node', description: 'this broker shares its journal with other brokers (each --roles broker --journal on the same journal, every one with this set): messages published at any of them reach subscribers at all, and a client id is connected at one broker at a time (docs/deployment.md, "Scaling brokers")' },
  { key: 'workers', kind: { type: 'integer', min: 1, max: 64 }, default: 1, unit: 'count', valueName: 'N', group: 'node', description: 'MQTT worker processes of the single-node default: 1 serves MQTT in this process; N > 1 keeps the journal, placement and admin API in this process and runs N brokers as child processes over its journal, which share the MQTT ports (each connection goes to one of them) and act as one service as broker-peers brokers do; no Kafka or AMQP listener then (docs/architecture.md, "More than one core")' },
  { key: 'takeover-wait-ms', kind: { type: 'integer', min: 300, max: 600_000 }, default: 5000, unit: 'ms', valueName: 'MS', group: 'node', description: 'with broker-peers: how long a connect waits for the broker holding that client id to let it go before taking the session over from its last durable state (that broker may have died), and how long a silent broker counts as alive before another adopts its sessions' },
  { key: 'acl-default', kind: { type: 'enum', values: ['allow', 'deny'] }, defaultText: 'deny with acl rules in the config file, allow without', valueName: 'POLICY', group: 'node', description: 'allow or deny: what the ACL decides when no rule matches a publish, subscribe or delivery (rules: the acl section of the config file and the $acl shard)' },
  { key: 'max-delay-seconds', kind: { type: 'integer', min: 1, max: 4_294_967 }, default: 604_800, unit: 'seconds', valueName: 'SECONDS', group: 'limit', description: 'longest delay of a delayed publish ($delayed/SECONDS/TOPIC); longer: 5.0 PUBACK 0x97, 3.1.1 close' },
  { key: 'max-delayed-messages', kind: { type: 'integer', min: 0 }, default: 100_000, unit: 'count', valueName: 'N', group: 'limit', description: 'delayed messages held at once; more: 5.0 PUBACK 0x97, 3.1.1 close; 0 turns delayed publish off ($delayed/... is then an ordinary topic)' },
  { key: 'sys-interval', kind: { type: 'integer', min: 0, max: 86_400 }, default: 10, unit: 'seconds', valueName: 'SECONDS', group: 'node', description: 'how often the broker publishes its statistics to $SYS/brokers/NODE/...; 0 turns them off' },
  { key: 'node-name', kind: { type: 'string' }, defaultText: 'the host name', valueName: 'NAME', group: 'node', description: 'this node\'s name in $SYS/brokers/NODE/... (/, + and # become _)' },
  { key: 'data-retention', kind: { type: 'integer', min: 0, max: 100 * 365 * 86_400 }, default: 604_800, unit: 'seconds', valueName: 'SECONDS', group: 'node', description: 'how long MQTT messages are kept in the data shards: a sealed segment whose newest message is older is deleted (sessions, retained messages, users and ACL rules are never deleted by it); 0 keeps them regardless of age' },
  { key: 'data-retention-bytes', kind: { type: 'integer', min: 0 }, default: 0, unit: 'bytes', valueName: 'BYTES', group: 'node', description: 'most bytes one data shard keeps (the node keeps up to data-shards times this, plus a segment each): the oldest sealed segments are deleted past it; 0 for no size limit' },
  { key: 'data-segment-bytes', kind: { type: 'integer', min: 1024, max: 2_147_483_648 }, default: 134_217_728, unit: 'bytes', valueName: 'BYTES', group: 'node', description: 'segment size of the data shards; retention deletes whole sealed segments, so this is its granularity (applies from the next roll)' },
  { key: 'retention-check-ms', kind: { type: 'integer', min: 100, max: TIMER_DELAY_MS_MAX }, default: 60_000, unit: 'ms', valueName: 'MS', group: 'node', description: 'how often the journal applies retention and compacts the system shards' },
  { key: 'disk-free-min-percent', kind: { type: 'integer', min: 0, max: 100 }, default: 5, unit: 'percent', valueName: 'PERCENT', group: 'node', description: 'disk watermark, with disk-free-min-bytes: while the data directory\'s file system has less free space than the smaller of the two, publishes are refused (SL_BROKER_WRITES_BLOCKED, /readyz not ready); 0 turns the watermark off' },
  { key: 'disk-free-min-bytes', kind: { type: 'integer', min: 0 }, default: 2_147_483_648, unit: 'bytes', valueName: 'BYTES', group: 'node', description: 'disk watermark in bytes; the threshold is the smaller of this and disk-free-min-percent of the file system; 0 turns the watermark off' },
  { key: 'disk-check-ms', kind: { type: 'integer', min: 100, max: TIMER_DELAY_MS_MAX }, default: 5000, unit: 'ms', valueName: 'MS', group: 'node', description: 'how often the node measures the free space of its data directory (the watermark, metrics, ctl overview)' },
  { key: 'response-information', kind: { type: 'string' }, default: 'reply/${clientid}', valueName: 'TEMPLATE', group: 'node', description: 'MQTT 5.0 CONNACK Response Information for clients that ask for it; ${clientid} and ${username} are filled in' },
] as const satisfies readonly SettingSpec[];

export type SettingKey = (typeof START_SETTINGS)[number]['key'];
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** The settings of `shardline start`: what the node runs with, and where each value came from. */
export interface StartSettings extends NodeSettings {
  /** node-id was taken from the host name (it is then set in nodeId). */
  nodeIdFromHostname: boolean;
  /** With nodeIdFromHostname: the id of ordinal 0. */
  nodeIdBase: number;
  /** The config file read, if any (from --config or SHARDLINE_CONFIG). */
  config: string | undefined;
  /** Where each setting's value came from, by kebab-case key (for the start-up log line). */
  sources: Record<SettingKey, SettingSource>;
  /** The config file's rule sections as written (unvalidated), with the file they came from. */
  sections: { file: string | undefined; values: Partial<Record<RuleSection, unknown>> };
  /** Things worth logging that are not errors, e.g. a SHARDLINE_* variable that looks misspelt. */
  warnings: string[];
}

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Fails to compile when a schema key has no StartSettings field or the other way round.
const _schemaMatchesSettings: SameKeys<CamelCase<SettingKey>, Exclude<keyof StartSettings, 'sources' | 'warnings' | 'sections'>> = true;

export function envName(key: string): string {
  return ENV_PREFIX + key.toUpperCase().replaceAll('-', '_');
}

export function camelName(key: string): string {
  return key.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

export function formatDefault(spec: SettingSpec): string {
  return spec.default === undefined ? (spec.defaultText ?? 'none') : String(spec.default);
}

const specs: readonly SettingSpec[] = START_SETTINGS;
const specByKey = new Map(specs.map((spec) => [spec.key, spec]));

/** Retention and the disk watermark: applied to the data shards and the disk check at once. */
const DISK_KEYS = ['data-retention', 'data-retention-bytes', 'data-segment-bytes', 'disk-free-min-percent', 'disk-free-min-bytes'] as const;

/** The names of a limit table's live limits (those marked live in it). */
function liveLimitNames<const Table extends readonly LimitSpec[]>(table: Table): Array<Extract<Table[number], { live: true }>['name']> {
  return table.filter((spec) => spec.live).map((spec) => spec.name as Extract<Table[number], { live: true }>['name']);
}

/**
 * Settings `PATCH /api/config` may change in a running node. Each is read where it is used
 * (log level by the loggers, limits when a connection is accepted or sends CONNECT, the queue
 * bound on every delivery), so a change applies to what happens next; settings advertised to
 * clients in CONNACK for the life of their connection, or fixed by the data on disk, are not here.
 * Which MQTT limits are live is said in their table (protocols/mqtt/limits.ts).
 */
export const LIVE_SETTINGS = ['log-level', 'allow-anonymous', ...liveLimitNames(MQTT_LIMITS), ...DISK_KEYS] as const satisfies readonly SettingKey[];
export type LiveSettingKey = (typeof LIVE_SETTINGS)[number];

export function isLiveSetting(key: string): key is LiveSettingKey {
  return (LIVE_SETTINGS as readonly string[]).includes(key);
}

/** Validates a value for a live change the way a config-file value is validated (UsageError). */
export function parseLiveSetting(key: LiveSettingKey, value: unknown, label: string): unknown {
  return parseValue(specByKey.get(key) as SettingSpec, { value, source: 'file', label });
}

/** node:util parseArgs options for every setting (all strings: parsing happens here, not there). */
export function startOptionSpec(): OptionSpec {
  return Object.fromEntries(specs.map((spec) => [spec.key, { type: 'string' as const }]));
}

// ---- values -------------------------------------------------------------------------------

/** One supplied value and the words that tell the user where it was. */
interface Supplied {
  value: unknown;
  source: Exclude<SettingSource, 'default'>;
  /** `--mqtt-port`, `SHARDLINE_MQTT_PORT`, `config file ./x.toml: mqtt.max-packet-size`. */
  label: string;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return `a list (${JSON.stringify(value)})`;
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  if (typeof value === 'object') return 'a table';
  if (typeof value === 'boolean') return `${value} (a boolean)`;
  return String(value);
}

function rangeText(kind: { min: number; max?: number; offWithNone?: true }): string {
  const range = kind.max === undefined ? `an integer >= ${kind.min}` : `an integer in [${kind.min}, ${kind.max}]`;
  return kind.offWithNone === true ? `${range} or none` : range;
}

function parseInteger(spec: SettingSpec & { kind: { type: 'integer' } }, supplied: Supplied): number | undefined {
  const { value, label } = supplied;
  if (spec.kind.offWithNone === true && typeof value === 'string' && value.trim() === 'none') return undefined;
  let parsed: number | undefined;
  if (typeof value === 'number') parsed = value;
  else if (typeof value === 'bigint') parsed = Number.NaN;
  else if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) parsed = Number(value);
  const unit = spec.unit === undefined || spec.unit === 'count' || spec.unit === 'port' ? '' : ` (${spec.unit})`;
  if (parsed === undefined || !Number.isSafeInteger(parsed) || parsed < spec.kind.min || (spec.kind.max !== undefined && parsed > spec.kind.max)) {
    throw new UsageError(`${label} must be ${rangeText(spec.kind)}${unit}, got ${describe(value)}`);
  }
  return parsed;
}

/**
 * The Kafka and AMQP listeners are on by default, but only a broker serves them: a journal or
 * placement node takes their default ports as off, so it neither binds them nor warns about them.
 * AMQP's default also needs the journal in the same process: its queues live in one broker's
 * memory (docs/amqp.md), so on a split deployment it is turned on by hand on one broker.
 */
function defaultListenersNeedBroker(settings: StartSettings): void {
  const roles = settings.roles;
  const broker = roles === undefined || roles.includes('broker');
  const ownJournal = roles === undefined || roles.includes('journal');
  if (!broker && settings.sources['kafka-port'] === 'default') settings.kafkaPort = undefined;
  if (!(broker && ownJournal) && settings.sources['amqp-port'] === 'default') settings.amqpPort = undefined;
}

function parseString(supplied: Supplied, valueName: string): string {
  const { value, label } = supplied;
  if (typeof value !== 'string') throw new UsageError(`${label} must be a string (${valueName}), got ${describe(value)}`);
  if (value.trim() === '') throw new UsageError(`${label} needs a value (${valueName}), got an empty string`);
  return value;
}

function parseEnum(values: readonly string[], supplied: Supplied): string {
  const text = parseString(supplied, values.join('|'));
  if (!values.includes(text)) throw new UsageError(`${supplied.label} must be one of ${values.join(', ')}, got ${describe(text)}${suggestion(text, values)}`);
  return text;
}

function parseList(values: readonly string[], supplied: Supplied): string[] {
  const { value, label } = supplied;
  let items: unknown[];
  if (typeof value === 'string') items = value.split(',');
  else if (Array.isArray(value)) items = value;
  else throw new UsageError(`${label} must be a comma-separated string or a list of ${values.join(', ')}, got ${describe(value)}`);
  const names: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') throw new UsageError(`${label} must list names (${values.join(', ')}), got ${describe(item)} in it`);
    const name = item.trim();
    if (name === '') continue;
    if (!values.includes(name)) throw new UsageError(`${label}: unknown name ${JSON.stringify(name)}; choose from ${values.join(', ')}${suggestion(name, values)}`);
    names.push(name);
  }
  if (names.length === 0) throw new UsageError(`${label} needs at least one of ${values.join(', ')}`);
  // Canonical order, no repeats: `broker,journal,broker` and `journal,broker` are the same node.
  return values.filter((name) => names.includes(name));
}

const ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9][A-Za-z0-9.-]*)):(\d{1,5})$/;

function parseAddress(supplied: Supplied): string {
  const text = parseString(supplied, 'HOST:PORT').trim();
  const match = ADDRESS.exec(text);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || port < 1 || port > 65_535) {
    throw new UsageError(`${supplied.label} must be HOST:PORT with a port in [1, 65535] (IPv6 as [::1]:1771), got ${describe(supplied.value)}`);
  }
  return text;
}

function parseAddressList(supplied: Supplied): string[] {
  const { value, label } = supplied;
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items)) throw new UsageError(`${label} must be a comma-separated list of HOST:PORT, got ${describe(value)}`);
  const addresses = items.map((item) => (typeof item === 'string' ? item.trim() : item)).filter((item) => item !== '');
  if (addresses.length === 0) throw new UsageError(`${label} needs at least one HOST:PORT`);
  return addresses.map((item, index) => parseAddress({ ...supplied, value: item, label: `${label} (entry ${index + 1})` }));
}

const PEER = /^(\d+)@(.+)$/;

function parsePeers(supplied: Supplied): PlacementPeer[] {
  const { value, label } = supplied;
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items)) throw new UsageError(`${label} must be a comma-separated list of ID@HOST:PORT, got ${describe(value)}`);
  const peers: PlacementPeer[] = [];
  for (const [index, raw] of items.entries()) {
    const item = typeof raw === 'string' ? raw.trim() : raw;
    if (item === '') continue;
    const where = `${label} (entry ${index + 1})`;
    const match = typeof item === 'string' ? PEER.exec(item) : null;
    const id = match === null ? Number.NaN : Number(match[1]);
    if (match === null || !Number.isSafeInteger(id) || id < 1 || id > 4_294_967_295) {
      throw new UsageError(`${where} must be ID@HOST:PORT with ID the voter's node-id (an integer in [1, 4294967295]), e.g. 1@10.0.0.1:${DEFAULT_PLACEMENT_GRPC_PORT}; got ${describe(item)}`);
    }
    const address = parseAddress({ ...supplied, value: match[2], label: where });
    if (peers.some((peer) => peer.id === id)) throw new UsageError(`${where}: node id ${id} is listed twice; each voter once`);
    if (peers.some((peer) => peer.address === address)) throw new UsageError(`${where}: address ${address} is listed twice; each voter needs its own`);
    peers.push({ id, address });
  }
  if (peers.length === 0) throw new UsageError(`${label} needs at least one ID@HOST:PORT`);
  return peers;
}

function parseBoolean(supplied: Supplied): boolean {
  const { value, label } = supplied;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new UsageError(`${label} must be true or false, got ${describe(value)}`);
}

function parseValue(spec: SettingSpec, supplied: Supplied): unknown {
  const kind = spec.kind;
  switch (kind.type) {
    case 'integer':
      return parseInteger(spec as SettingSpec & { kind: typeof kind }, supplied);
    case 'string':
      return parseString(supplied, spec.valueName);
    case 'enum':
      return parseEnum(kind.values, supplied);
    case 'list':
      return parseList(kind.values, supplied);
    case 'address':
      return parseAddress(supplied);
    case 'addresses':
      return parseAddressList(supplied);
    case 'peers':
      return parsePeers(supplied);
    case 'boolean':
      return parseBoolean(supplied);
  }
}

// ---- suggestions ---------------------------------------------------------------------------

// closest() lives in cli/closest.ts so that the CLI's entry can suggest a command without
// loading this module (and the node layers it reads defaults from).
export { closest } from '../closest.js';

function suggestion(word: string, candidates: readonly string[]): string {
  const guess = closest(word, candidates);
  return guess === undefined ? '' : ` (did you mean ${guess}?)`;
}

// ---- layers --------------------------------------------------------------------------------

function flagLayer(flags: Record<string, unknown>): Map<string, Supplied> {
  const layer = new Map<string, Supplied>();
  for (const spec of specs) {
    const value = flags[spec.key];
    if (value !== undefined) layer.set(spec.key, { value, source: 'flag', label: `--${spec.key}` });
  }
  return layer;
}

function envLayer(env: NodeJS.ProcessEnv, warnings: string[]): Map<string, Supplied> {
  const layer = new Map<string, Supplied>();
  const known = new Map(specs.map((spec) => [envName(spec.key), spec.key]));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const key = known.get(name);
    if (key === undefined) {
      // Other SHARDLINE_* variables exist (test harness switches, say), so these are not errors.
      const guess = closest(name.slice(ENV_PREFIX.length), specs.map((spec) => spec.key));
      if (guess !== undefined) warnings.push(`ignoring environment variable ${name}: not a setting (did you mean ${envName(guess)}?)`);
      continue;
    }
    // An empty variable counts as unset, so `SHARDLINE_X= shardline start` can clear one.
    if (value === '') continue;
    layer.set(key, { value, source: 'env', label: name });
  }
  return layer;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

async function parseConfigFile(path: string, origin: string): Promise<unknown> {
  const where = `config file ${path} (from ${origin})`;
  const extension = extname(path).toLowerCase();
  if (!(CONFIG_EXTENSIONS as readonly string[]).includes(extension)) {
    throw new UsageError(`${where}: unsupported file type ${JSON.stringify(extension === '' ? '(no extension)' : extension)}; name it *.toml, *.yaml or *.yml`);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${where}: cannot read it: ${(error as Error).message}`);
  }
  try {
    return extension === '.toml' ? parseToml(text) : parseYaml(text);
  } catch (error) {
    const message = (error as Error).message.replace(/^Invalid TOML document: /, '').trimEnd();
    const parser = extension === '.toml' ? 'TOML' : 'YAML';
    const line = (error as { line?: unknown }).line;
    const column = (error as { column?: unknown }).column;
    // smol-toml keeps the position in properties; yaml writes "at line L, column C" in the text.
    const position = typeof line === 'number' && typeof column === 'number' ? ` at line ${line}, column ${column}` : '';
    throw new UsageError(`${where}: not valid ${parser}${position}: ${message}`);
  }
}

async function fileLayer(path: string, origin: string, sections: Partial<Record<RuleSection, unknown>>): Promise<Map<string, Supplied>> {
  const document = await parseConfigFile(path, origin);
  const where = `config file ${path}`;
  const layer = new Map<string, Supplied>();
  // An empty YAML file is a document with nothing in it, not an error.
  if (document === null || document === undefined) return layer;
  if (!isTable(document)) throw new UsageError(`${where}: must hold key = value settings (a table/map), got ${describe(document)}`);
  const allKeys = [...specs.map((spec) => spec.key), MQTT_TABLE, ...RULE_SECTIONS];
  const limitKeys = specs.filter((spec) => spec.group === 'limit').map((spec) => spec.key);

  const places = new Map<string, string>();
  const add = (key: string, value: unknown, place: string): void => {
    const earlier = places.get(key);
    if (earlier !== undefined) throw new UsageError(`${where}: ${key} is set twice (as ${earlier} and as ${place}); keep one`);
    places.set(key, place);
    layer.set(key, { value, source: 'file', label: `${where}: ${place}` });
  };

  for (const [key, value] of Object.entries(document)) {
    if (key === MQTT_TABLE) {
      if (!isTable(value)) throw new UsageError(`${where}: ${MQTT_TABLE} must be a table of broker limits (${limitKeys.join(', ')}), got ${describe(value)}`);
      for (const [inner, innerValue] of Object.entries(value)) {
        const spec = specByKey.get(inner);
        if (spec !== undefined && spec.group !== 'limit') {
          throw new UsageError(`${where}: ${inner} is not a broker limit and cannot go under [${MQTT_TABLE}]; move it to the top level`);
        }
        if (spec === undefined) throw new UsageError(`${where}: unknown setting "${MQTT_TABLE}.${inner}"${suggestion(inner, limitKeys)}`);
        add(inner, innerValue, `${MQTT_TABLE}.${inner}`);
      }
      continue;
    }
    if (key === 'config') throw new UsageError(`${where}: config cannot be set inside a config file (it names the file itself); remove it`);
    if ((RULE_SECTIONS as readonly string[]).includes(key)) {
      sections[key as RuleSection] = value;
      continue;
    }
    if (!specByKey.has(key)) throw new UsageError(`${where}: unknown setting "${key}"${suggestion(key, allKeys)}`);
    add(key, value, key);
  }
  return layer;
}

// ---- resolution ----------------------------------------------------------------------------

function checkRoles(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const roles = effectiveRoles(settings);
  const rolesText = settings.roles === undefined ? 'the single-node default, journal and broker' : `roles ${settings.roles.join(',')}`;
  if (settings.journal !== undefined && roles.includes('journal')) {
    throw new UsageError(`journal (set by ${suppliedBy('journal')}) names a remote journal, but this node runs its own (${rolesText}); drop it, or run --roles broker to use the remote one`);
  }
  // With placement and no --journal, a broker sends each shard's calls to its leader's journal node.
  if (settings.journal === undefined && settings.placement === undefined && roles.length === 1 && roles[0] === 'broker') {
    throw new UsageError(`--roles broker needs the journal server to use: set --journal HOST:PORT (or ${envName('journal')}, or journal in the config file), or --placement HOST:PORT,... to use the cluster's replicated journal nodes`);
  }
}

/**
 * Workers are brokers over the single node's own journal (node/workers.ts), so they need the
 * single-node default. The Kafka and AMQP front ends keep state in one process's memory (Kafka
 * groups, AMQP queues), so with workers their default ports are off and setting one is refused.
 */
function checkWorkers(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  if (settings.workers === 1) return;
  const workers = `workers ${settings.workers} (set by ${suppliedBy('workers')})`;
  if (settings.roles !== undefined) throw new UsageError(`${workers} needs the single-node default (journal and broker in one node), but roles is ${settings.roles.join(',')} (set by ${suppliedBy('roles')}); drop one of them`);
  if (settings.placement !== undefined) throw new UsageError(`${workers} needs the single-node default, but placement (set by ${suppliedBy('placement')}) makes this node part of a cluster; drop one of them`);
  if (settings.replicaPeers !== undefined) throw new UsageError(`${workers} needs the single-node default, but replica-peers is set (by ${suppliedBy('replica-peers')}); drop one of them`);
  for (const key of ['kafka-port', 'kafkas-port', 'amqp-port', 'amqps-port'] as const) {
    const field = camelName(key) as 'kafkaPort' | 'kafkasPort' | 'amqpPort' | 'amqpsPort';
    if (settings.sources[key] === 'default') settings[field] = undefined;
    else if (settings[field] !== undefined) throw new UsageError(`${workers} serves MQTT only, but ${key} (set by ${suppliedBy(key)}) asks for a listener whose state lives in one process; set it to none or use workers 1`);
  }
}

function checkPlacement(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const runsPlacement = effectiveRoles(settings).includes('placement');
  const rolesText = settings.roles === undefined ? 'the single-node default' : `roles ${settings.roles.join(',')}`;
  if (runsPlacement) {
    if (settings.nodeId === undefined) throw new UsageError(`the placement role needs this voter's id: set --node-id N (or ${envName('node-id')}, or node-id in the config file)`);
    const peers = settings.placementPeers;
    if (peers !== undefined && !peers.some((peer) => peer.id === settings.nodeId)) {
      throw new UsageError(`placement-peers (from ${suppliedBy('placement-peers')}) does not list this node's id ${settings.nodeId} (node-id from ${suppliedBy('node-id')}): list every voter, this one included, as ID@HOST:PORT`);
    }
    if (settings.placement !== undefined) throw new UsageError(`placement (set by ${suppliedBy('placement')}) names a placement group to register with, but this node is a voter of its own (${rolesText}); drop it`);
    if (settings.placementJoin !== undefined) {
      if (peers !== undefined) throw new UsageError(`placement-join (from ${suppliedBy('placement-join')}) and placement-peers (from ${suppliedBy('placement-peers')}) both set: a joining voter learns the group's voters from the group; drop placement-peers`);
      // The address the group records for this voter is --host:--placement-port, so it must be one the others can dial.
      if (['0.0.0.0', '::', '[::]', ''].includes(settings.host)) throw new UsageError(`placement-join needs --host to be this machine's address the other voters dial (it is recorded in the group), not ${JSON.stringify(settings.host)}; set --host (or ${envName('host')}) to that address`);
      if (settings.placementPort === 0) throw new UsageError(`placement-join needs a fixed --placement-port (the group records it as this voter's address), not 0`);
    }
  } else {
    // Unused rather than wrong, like a TLS setting without a TLS listener.
    for (const key of ['placement-peers', 'placement-port', 'placement-join'] as const) {
      if (settings.sources[key] !== 'default') settings.warnings.push(`${key} (set by ${suppliedBy(key)}) is for placement voters and this node runs ${rolesText}: unused (journal and broker nodes find the group with placement HOST:PORT,...)`);
    }
  }
  if ((runsPlacement || settings.placement !== undefined) && settings.clusterToken === undefined) {
    throw new UsageError(`${runsPlacement ? 'the placement role' : `placement (set by ${suppliedBy('placement')})`} needs the placement group's shared secret: set ${envName('cluster-token')} (or cluster-token in the config file; the flag --cluster-token shows in ps)`);
  }
  if (settings.clusterToken !== undefined && settings.clusterToken.length < MIN_CLUSTER_TOKEN_LENGTH) {
    throw new UsageError(`cluster-token (from ${suppliedBy('cluster-token')}) is ${settings.clusterToken.length} characters; use at least ${MIN_CLUSTER_TOKEN_LENGTH} (e.g. openssl rand -base64 24)`);
  }
  if (settings.journal !== undefined && !effectiveRoles(settings).includes('broker')) {
    throw new UsageError(`journal (set by ${suppliedBy('journal')}) names a remote journal for the broker role, and this node runs ${rolesText}; drop it`);
  }
}

function checkReplication(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const peers = settings.replicaPeers;
  if (peers === undefined) return;
  if (!effectiveRoles(settings).includes('journal')) throw new UsageError(`replica-peers (from ${suppliedBy('replica-peers')}) is for journal nodes; this node does not run the journal role`);
  if (settings.nodeId === undefined) throw new UsageError(`replica-peers needs this journal node's id: set --node-id N (or ${envName('node-id')})`);
  if (!peers.some((peer) => peer.id === settings.nodeId)) throw new UsageError(`replica-peers (from ${suppliedBy('replica-peers')}) does not list this node's id ${settings.nodeId}: list every journal node, this one included, as ID@HOST:PORT`);
  if (settings.clusterToken === undefined) throw new UsageError(`replica-peers needs the cluster's shared secret, which every replication call carries: set ${envName('cluster-token')}`);
}

function checkKeepAlive(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  if (settings.serverKeepAlive !== 0 && settings.serverKeepAlive > settings.maxKeepAlive) {
    throw new UsageError(`server-keep-alive ${settings.serverKeepAlive} (from ${suppliedBy('server-keep-alive')}) is more than max-keep-alive ${settings.maxKeepAlive} (from ${suppliedBy('max-keep-alive')}); lower it or raise max-keep-alive`);
  }
}

function checkAdvertiseHost(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const host = settings.advertiseHost;
  if (host === undefined) return;
  if (host === '' || /[\s/]/.test(host) || host === '0.0.0.0' || host === '::' || host === '[::]') {
    throw new UsageError(`advertise-host ${JSON.stringify(host)} (from ${suppliedBy('advertise-host')}) is not a host other nodes can dial: give a host name or an address, without a port, not a wildcard`);
  }
}

function checkKafka(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const name = settings.kafkaMqttTopic;
  if (name !== 'none' && !isTopicName(name)) {
    throw new UsageError(`kafka-mqtt-topic ${JSON.stringify(name)} (from ${suppliedBy('kafka-mqtt-topic')}) is not a Kafka topic name: 1 to 180 of [A-Za-z0-9._-], not "." or ".."; or none to show no MQTT topic`);
  }
  for (const key of ['kafka-advertised', 'kafkas-advertised'] as const) {
    const value = key === 'kafka-advertised' ? settings.kafkaAdvertised : settings.kafkasAdvertised;
    if (value === undefined) continue;
    try {
      parseAdvertised(value);
    } catch (error) {
      throw new UsageError(`${(error as ShardlineError).code}: ${(error as Error).message} (from ${suppliedBy(key)})`);
    }
  }
}

/**
 * The node id of a StatefulSet pod: its ordinal (the host name's trailing -N) plus node-id-base
 * (1 by default, since ordinals start at 0 and node ids at 1). Every replica of a StatefulSet
 * gets the same arguments, and the pod name is the only thing that tells them apart; a second
 * StatefulSet of the same cluster gives another base, so its ids do not collide.
 */
function nodeIdFromHostname(settings: StartSettings, suppliedBy: (key: SettingKey) => string, hostname: string): number {
  if (settings.sources['node-id'] !== 'default') {
    throw new UsageError(`node-id (set by ${suppliedBy('node-id')}) and node-id-from-hostname (set by ${suppliedBy('node-id-from-hostname')}) both set: drop one`);
  }
  const ordinal = /-(\d{1,9})$/.exec(hostname)?.[1];
  if (ordinal === undefined) {
    throw new UsageError(`node-id-from-hostname (set by ${suppliedBy('node-id-from-hostname')}) needs a host name that ends in -N (a StatefulSet pod's, such as shardline-0), and this host is ${JSON.stringify(hostname)}: set node-id instead`);
  }
  const id = Number(ordinal) + settings.nodeIdBase;
  if (id > 4_294_967_295) throw new UsageError(`node-id-from-hostname: ordinal ${ordinal} plus node-id-base ${settings.nodeIdBase} (set by ${suppliedBy('node-id-base')}) is past the largest node id, 4294967295`);
  return id;
}

/**
 * Resolves every `shardline start` setting: flag > environment (SHARDLINE_*) > config file
 * (--config or SHARDLINE_CONFIG; TOML or YAML) > default. Throws UsageError naming the
 * setting, where the bad value came from and what is accepted.
 */
export async function resolveStartSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, hostname: string = osHostname()): Promise<StartSettings> {
  const warnings: string[] = [];
  const layers = [flagLayer(flags), envLayer(env, warnings)];
  const configSupplied = layers[0]?.get('config') ?? layers[1]?.get('config');
  const configPath = configSupplied === undefined ? undefined : parseString(configSupplied, 'FILE');
  const sections: Partial<Record<RuleSection, unknown>> = {};
  if (configSupplied !== undefined && configPath !== undefined) layers.push(await fileLayer(configPath, configSupplied.label, sections));

  // Parsing every layer, not only the winner: see the note at the top.
  const parsed = layers.map((layer) => new Map([...layer].map(([key, supplied]) => [key, { supplied, value: parseValue(specByKey.get(key) as SettingSpec, supplied) }])));

  const result: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  const labels = new Map<string, string>();
  for (const spec of specs) {
    const winner = parsed.map((layer) => layer.get(spec.key)).find((entry) => entry !== undefined);
    result[camelName(spec.key)] = winner === undefined ? spec.default : winner.value;
    sources[spec.key] = winner === undefined ? 'default' : winner.supplied.source;
    labels.set(spec.key, winner === undefined ? `the default` : winner.supplied.label);
  }
  const settings = { ...result, sources, warnings, sections: { file: configPath, values: sections } } as unknown as StartSettings;
  const suppliedBy = (key: SettingKey): string => labels.get(key) ?? key;
  if (settings.nodeIdFromHostname) settings.nodeId = nodeIdFromHostname(settings, suppliedBy, hostname);
  else if (settings.sources['node-id-base'] !== 'default') settings.warnings.push(`node-id-base (set by ${suppliedBy('node-id-base')}) only applies with node-id-from-hostname: unused`);
  checkRoles(settings, suppliedBy);
  checkWorkers(settings, suppliedBy);
  defaultListenersNeedBroker(settings);
  checkPlacement(settings, suppliedBy);
  checkReplication(settings, suppliedBy);
  checkKeepAlive(settings, suppliedBy);
  checkKafka(settings, suppliedBy);
  checkAdvertiseHost(settings, suppliedBy);
  return settings;
}

// ---- help ----------------------------------------------------------------------------------

const HELP_WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The flags section of `shardline start --help`, generated from START_SETTINGS. */
export function settingsHelp(): string {
  const left = (spec: SettingSpec): string => `  --${spec.key} ${spec.valueName}`;
  const column = Math.max(...specs.map((spec) => left(spec).length)) + 2;
  const entry = (spec: SettingSpec): string[] => {
    const text = `${spec.description} (default: ${formatDefault(spec)})`;
    const [first = '', ...rest] = wrap(text, HELP_WIDTH - column);
    return [left(spec).padEnd(column) + first, ...rest.map((line) => ' '.repeat(column) + line)];
  };
  return [
    'Flags:',
    ...specs.filter((spec) => spec.group === 'node').flatMap(entry),
    `${'  -h, --help'.padEnd(column)}this text`,
    '',
    'Broker limits (also accepted under [mqtt] in a config file):',
    ...specs.filter((spec) => spec.group === 'limit').flatMap(entry),
    '',
    `Every flag can also be set by the environment (--max-packet-size: ${envName('max-packet-size')}) or in the`,
    'config file (max-packet-size = 2048). A flag wins over the environment, which wins over the file.',
    'See docs/configuration.md.',
  ].join('\n');
}
