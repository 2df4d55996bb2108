// Kafka brokers in a Shardline cluster: every broker node reaches the same shards, so any broker
// could serve any partition; Kafka clients still want one leader per partition and one
// coordinator per group. These are pure choices over the list of live brokers, the same on every
// broker that sees the same list: leaders spread round-robin from a hash of the topic name,
// coordinators by a hash of the group id. The node layer keeps the list (placement's registered
// broker nodes with a Kafka endpoint); a node outside a cluster has no list and is the only
// broker, leader and coordinator.
//
// A broker may serve plain Kafka, Kafka over TLS, or both. Clients are told only the brokers of
// the listener they came in on, and a leader or coordinator must be one they can dial; so both
// are chosen among the brokers that serve every listener any live broker serves. One choice for
// both listeners keeps one writer per partition and one coordinator per group whichever way
// clients connect.
import { fnv1a } from '../../../base/index.js';
import { KafkaErrors } from '../codec/index.js';

/** Which of the node's Kafka listeners a client came in through: the addresses it is told differ. */
export type KafkaListenerName = 'plain' | 'tls';

export const KAFKA_LISTENERS: readonly KafkaListenerName[] = ['plain', 'tls'];

export interface KafkaAddress {
  readonly host: string;
  readonly port: number;
}

/** A broker as Metadata and FindCoordinator name it to a client of one listener. */
export interface KafkaBroker extends KafkaAddress {
  /** Kafka's int32 broker id (kafkaBrokerId of the node id). */
  readonly nodeId: number;
}

/** A live broker of a cluster: its id and the advertised address of each listener it serves. */
export interface KafkaClusterMember {
  readonly nodeId: number;
  readonly listeners: Readonly<Partial<Record<KafkaListenerName, KafkaAddress>>>;
}

/** The live brokers as this node sees them now. */
export interface KafkaClusterView {
  /** This node's Kafka broker id. */
  readonly selfId: number;
  /**
   * Live brokers with a Kafka endpoint, this one included, sorted by id, no id twice; undefined
   * until the broker has read them once (it then leads no partition and coordinates no group:
   * acting alone while the others are unknown would give a partition two leaders).
   */
  brokers(): readonly KafkaClusterMember[] | undefined;
}

const MAX_INT32 = 0x7fffffff;

/**
 * A node id as a Kafka broker id (int32 ≥ 0): a decimal node id up to 2^31-1 is itself, any
 * other is a 31-bit FNV-1a hash of its text, so every broker maps a node the same way.
 */
export function kafkaBrokerId(nodeId: string): number {
  if (/^(0|[1-9]\d{0,9})$/.test(nodeId) && Number(nodeId) <= MAX_INT32) return Number(nodeId);
  return fnv1a(nodeId) & MAX_INT32;
}

/** The broker leading a partition: round-robin over the sorted brokers, starting at the topic's hash. */
export function partitionLeader<T extends { readonly nodeId: number }>(brokers: readonly T[], topic: string, partition: number): T | undefined {
  if (brokers.length === 0) return undefined;
  return brokers[(fnv1a(topic) + partition) % brokers.length];
}

/** The broker coordinating a group. */
export function groupCoordinator<T extends { readonly nodeId: number }>(brokers: readonly T[], groupId: string): T | undefined {
  if (brokers.length === 0) return undefined;
  return brokers[fnv1a(groupId) % brokers.length];
}

/** Sorted by id, one per id (the first wins), so every broker indexes the same list. */
export function normalizeBrokers<T extends { readonly nodeId: number }>(brokers: readonly T[]): T[] {
  const byId = new Map<number, T>();
  for (const broker of brokers) if (!byId.has(broker.nodeId)) byId.set(broker.nodeId, broker);
  return [...byId.values()].sort((a, b) => a.nodeId - b.nodeId);
}

/**
 * The brokers that may lead partitions and coordinate groups: those serving every listener some
 * live broker serves, so that whichever listener a client came in on, it can dial them. Empty
 * when no broker serves them all (say one plain only and one TLS only): nothing is led then.
 */
export function leaderCandidates(members: readonly KafkaClusterMember[]): KafkaClusterMember[] {
  const inUse = KAFKA_LISTENERS.filter((listener) => members.some((member) => member.listeners[listener] !== undefined));
  return members.filter((member) => inUse.every((listener) => member.listeners[listener] !== undefined));
}

/** The brokers a client of `listener` is told about: those serving it, at its advertised address. */
export function brokersOn(members: readonly KafkaClusterMember[], listener: KafkaListenerName): KafkaBroker[] {
  const brokers: KafkaBroker[] = [];
  for (const member of members) {
    const address = member.listeners[listener];
    if (address !== undefined) brokers.push({ nodeId: member.nodeId, host: address.host, port: address.port });
  }
  return brokers;
}

/** HOST:PORT as a client dials it ([IPv6]:PORT). */
export function formatAdvertised({ host, port }: KafkaAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/;

/**
 * The address Kafka clients are told to dial (--kafka-advertised): HOST:PORT ([IPv6]:PORT), a
 * port 1-65535 and a host a client can dial (not a wildcard such as 0.0.0.0). SL_KAFKA_ADVERTISED
 * otherwise.
 */
export function parseAdvertised(text: string): { host: string; port: number } {
  const match = HOST_PORT.exec(text);
  const port = match === null ? Number.NaN : Number(match[3]);
  const host = match === null ? '' : (match[1] ?? match[2] ?? '');
  if (match === null || port < 1 || port > 65_535) throw KafkaErrors.advertised.create({ advertised: text }, text, 'expected HOST:PORT with a port 1-65535 (IPv6 as [::1]:9092)');
  if (WILDCARDS.has(host)) throw KafkaErrors.advertised.create({ advertised: text }, text, `${host} is a wildcard a client cannot dial; give this node's DNS name or IP address`);
  return { host, port };
}
