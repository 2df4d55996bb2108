// The placement metadata: what the cluster knows about its nodes, shards, subject maps and
// settings, as plain immutable data. Maps (not objects) hold keyed records so that a hostile key
// such as "__proto__" is just a key; snapshots sort them, so equal states encode to equal bytes.

import { MQTT_DATA_SHARD_NAMESPACE, mqttDataShardName } from '../../base/index.js';

export const ROLES = ['journal', 'broker', 'placement'] as const;
export type Role = (typeof ROLES)[number];

export const SHARD_STATES = ['active', 'reassigning', 'offline'] as const;
export type ShardState = (typeof SHARD_STATES)[number];

/** The namespace of the MQTT data shards (base/shard-names.ts, shared with the engine). */
export const MQTT_NAMESPACE = MQTT_DATA_SHARD_NAMESPACE;

export function mqttDataShardNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => mqttDataShardName(i));
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface NodeRecord {
  readonly id: string;
  /** Sorted, without duplicates. */
  readonly roles: readonly Role[];
  /** An address (host:port) per role the node runs; only roles it has. */
  readonly addresses: Readonly<Partial<Record<Role, string>>>;
  /**
   * Addresses clients of a protocol dial (`kafka`: the advertised Kafka HOST:PORT), which may
   * differ from the bound ones; only broker nodes have them; absent when none.
   */
  readonly endpoints?: Readonly<Record<string, string>>;
  /** The proposer's clock (ms) when the node first registered. */
  readonly registeredAt: number;
  /** The lease runs out at this time (ms, proposer's clock); only heartbeats move it, and only forward. */
  readonly leaseExpiresAt: number;
}

export interface ShardRecord {
  readonly name: string;
  /** Node ids, in the order given (the first is the preferred leader); no duplicates. */
  readonly replicas: readonly string[];
  readonly leader: string | null;
  /** Bumped by every leader change and never lowered: the fencing token for the shard's writers. */
  readonly leaderEpoch: number;
  readonly state: ShardState;
  /**
   * The replica set a change in progress moves to (begin-reassign; state 'reassigning'): the
   * nodes in it and not in `replicas` copy the shard as learners until switch-replicas makes it
   * the replica set. Absent when no change is in progress.
   */
  readonly target?: readonly string[];
}

export interface ShardMap {
  /** A subject hashes to an index in this list (the MQTT data shards today). */
  readonly shards: readonly string[];
  readonly revision: number;
}

export interface Setting {
  readonly value: JsonValue;
  /** The revision of the command that last wrote it: what compare-and-set expects. */
  readonly revision: number;
}

export interface Session {
  readonly sequence: number;
  readonly result: CommandResult;
}

export interface PlacementState {
  /** The number of commands that went through the state machine (see apply). */
  readonly revision: number;
  readonly nodes: ReadonlyMap<string, NodeRecord>;
  readonly shards: ReadonlyMap<string, ShardRecord>;
  /** namespace → shard list */
  readonly maps: ReadonlyMap<string, ShardMap>;
  readonly settings: ReadonlyMap<string, Setting>;
  /** clientId → its last command's sequence and result. */
  readonly sessions: ReadonlyMap<string, Session>;
}

export const REFUSAL_CODES = [
  'stale-sequence',
  'unknown-node',
  'unknown-shard',
  'shard-exists',
  'stale-epoch',
  'not-a-replica',
  'leader-not-in-replicas',
  'lease-live',
  'cas-mismatch',
  'invalid',
  'change-in-progress',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export type CommandResult =
  | { readonly status: 'ok'; readonly revision: number; readonly leaderEpoch?: number }
  | { readonly status: 'refused'; readonly revision: number; readonly code: RefusalCode; readonly detail: string };

// 'lease' is a heartbeat's: the node record changed only in leaseExpiresAt. Watchers that route
// by addresses and roles skip it, so renewals (one per node every few seconds) do not make every
// node read placement whole again.
export type ChangeKind = 'node' | 'lease' | 'shard' | 'map' | 'setting';

/** What a watcher is told: at `revision`, the record `key` of `kind` was written or deleted. */
export interface Change {
  readonly revision: number;
  readonly kind: ChangeKind;
  readonly key: string;
  readonly op: 'put' | 'delete';
}

export function emptyState(): PlacementState {
  return { revision: 0, nodes: new Map(), shards: new Map(), maps: new Map(), settings: new Map(), sessions: new Map() };
}
