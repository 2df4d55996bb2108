// The settings a node runs with, already parsed and checked. cli/config/settings.ts owns the
// schema (flags, SHARDLINE_* variables, config file, --help, docs/configuration.md) and hands
// the node this plain object; the node reads it where each value is used, so the live settings
// (PATCH /api/config) are written into the same object.
import type { AclRule, AutoSubscribeRule, DenyDefinition, JwtSettings, RewriteRule, SharedStrategy, UserDefinition } from '../engine/index.js';
import type { MqttLimits } from '../protocols/mqtt/index.js';

export const ROLES = ['journal', 'broker', 'placement'] as const;
export type Role = (typeof ROLES)[number];
/** Without --roles: the single node. */
export const DEFAULT_ROLES: readonly Role[] = ['journal', 'broker'];

/** A placement voter: its Raft id and the HOST:PORT the other voters and clients dial. */
export interface PlacementPeer {
  id: number;
  address: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** tls-client-auth: whether the TLS listeners ask for client certificates (see protocols/listener/tls.ts). */
export const TLS_CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
export type TlsClientAuth = (typeof TLS_CLIENT_AUTH_MODES)[number];

/** Every setting of `shardline start` but the config file's name; docs/configuration.md says what each means. */
export interface NodeSettings extends MqttLimits {
  /** undefined: not set, the single-node default (journal and broker in one process). */
  roles: Role[] | undefined;
  dataDir: string;
  lockWaitSeconds: number;
  host: string;
  mqttPort: number;
  /** Transport listeners; undefined: that listener is off. */
  mqttsPort: number | undefined;
  wsPort: number | undefined;
  wssPort: number | undefined;
  wsPath: string;
  /** Kafka listener (preview); undefined: off. */
  kafkaPort: number | undefined;
  kafkaAdvertised: string | undefined;
  /** The host other nodes dial for this node's roles (registered with placement); undefined: the bound host. */
  advertiseHost: string | undefined;
  /** Kafka over TLS; undefined: off. */
  kafkasPort: number | undefined;
  kafkasAdvertised: string | undefined;
  kafkaMaxRequestBytes: number;
  /** The Kafka topic over the MQTT data shards; 'none': not shown. */
  kafkaMqttTopic: string;
  kafkaGroupInitialRebalanceDelayMs: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsCa: string | undefined;
  tlsClientAuth: TlsClientAuth;
  /** Mutual TLS on the journal gRPC port and this node's journal clients. */
  journalTls: boolean;
  /** The journal's own TLS files; undefined: tlsCert, tlsKey, tlsCa. */
  journalTlsCert: string | undefined;
  journalTlsKey: string | undefined;
  journalTlsCa: string | undefined;
  /** AMQP 0-9-1 listener (preview, docs/amqp.md); undefined: off. */
  amqpPort: number | undefined;
  /** AMQP over TLS; undefined: off. */
  amqpsPort: number | undefined;
  amqpChannelMax: number;
  amqpMaxQueues: number;
  amqpMaxExchanges: number;
  amqpMaxBindings: number;
  amqpMaxConsumersPerChannel: number;
  amqpMemoryLimitBytes: number;
  grpcPort: number;
  adminPort: number;
  /** Bearer token for the admin server; undefined: kept in (or created in) the data directory. */
  adminToken: string | undefined;
  /** Remote journal HOST:PORT; set exactly when roles is ['broker']. */
  journal: string | undefined;
  logLevel: LogLevel;
  allowAnonymous: boolean;
  certificateUsername: boolean;
  dataShards: number;
  sharedStrategy: SharedStrategy;
  /** The broker shares its journal with other brokers (engine/peers): it follows their writes; a client id is held by one broker at a time. */
  brokerPeers: boolean;
  /** MQTT worker processes (node/workers.ts); 1: MQTT in this process, the single node as it always was. */
  workers: number;
  /** With brokerPeers: how long a connect waits for the broker holding the client to let it go. */
  takeoverWaitMs: number;
  /** undefined: deny when the config file has ACL rules, allow when it has none. */
  aclDefault: 'allow' | 'deny' | undefined;
  maxDelaySeconds: number;
  maxDelayedMessages: number;
  sysInterval: number;
  /** undefined: the host name. */
  nodeName: string | undefined;
  responseInformation: string;
  /** Seconds; 0: no age limit for the data shards. */
  dataRetention: number;
  /** Per data shard; 0: no size limit. */
  dataRetentionBytes: number;
  dataSegmentBytes: number;
  retentionCheckMs: number;
  diskFreeMinPercent: number;
  diskFreeMinBytes: number;
  diskCheckMs: number;
  /** This node's id in the cluster (the Raft id of a placement voter); undefined: not set. */
  nodeId: number | undefined;
  /** Placement role: every voter, this one included; undefined: this node alone. */
  placementPeers: PlacementPeer[] | undefined;
  /** Placement role: join the running group at these voter addresses instead of founding one; undefined: found (or restart). */
  placementJoin: string[] | undefined;
  /** Placement role: the port to bind; undefined: this node's port in placementPeers. */
  placementPort: number | undefined;
  /** Journal role: every journal node holding replicas (this one included), by node id; undefined: no replication. */
  replicaPeers: PlacementPeer[] | undefined;
  /** Journal and broker nodes: the placement group to register with; undefined: none. */
  placement: string[] | undefined;
  clusterId: string;
  /** The placement group's shared secret; set whenever placement or the placement role is. */
  clusterToken: string | undefined;
}

/** The roles a node with these settings runs: the single-node default is journal and broker. */
export function effectiveRoles(settings: Pick<NodeSettings, 'roles'>): Role[] {
  return settings.roles ?? [...DEFAULT_ROLES];
}

/** The config file's authentication sections, validated (cli/config/security.ts). */
export interface SecurityConfig {
  users: UserDefinition[];
  deny: DenyDefinition;
  jwt: JwtSettings | undefined;
  allowAnonymous: boolean;
  certificateUsername: boolean;
}

/** The config file's auto-subscribe and rewrite sections, validated (cli/config/extras-rules.ts). */
export interface ExtrasRules {
  autoSubscribe: AutoSubscribeRule[];
  rewrite: RewriteRule[];
}

/** The config file's sections a node with the broker role needs, each validated before the node starts. */
export interface BrokerConfig {
  /** undefined on a node without the broker role (its sections are not read). */
  security: SecurityConfig | undefined;
  aclRules: AclRule[];
  extras: ExtrasRules;
}

/**
 * How the admin API shows and changes settings (GET and PATCH /api/config): the schema that
 * knows the config-file keys and which settings are live is the CLI's, so it is passed in.
 */
export interface SettingsCatalog {
  /** Effective settings by config-file key; secrets hidden. */
  view(settings: NodeSettings): Record<string, unknown>;
  isLive(key: string): boolean;
  /** The value for `key` checked the way a config-file value is; throws an Error whose message tells the user what is wrong. */
  parseLive(key: string, value: unknown): unknown;
  /** The NodeSettings field a config-file key sets. */
  field(key: string): keyof NodeSettings;
}
