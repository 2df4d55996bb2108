// Placement commands: a discriminated union, carried in Raft entries as JSON bytes.
//
// Every command carries the proposing client's `clientId` and `sequence` (1, 2, 3... per
// client) so a retry is applied once (see apply in state-machine.ts). Time is never read while
// applying: a command that needs it carries `at`, the proposer's clock in ms, so every replica
// applies the same entry to the same effect.
//
// decodeCommand checks everything (shape, types, no unknown fields, lengths, finite numbers,
// well-formed strings) because an entry may come from a buggy or older client; its only error
// is MalformedCommandError. encodeCommand runs the same check, so what it writes decodes.
import { ROLES, SHARD_STATES, type JsonValue, type Role, type ShardState } from './types.js';

interface Envelope {
  readonly clientId: string;
  readonly sequence: number;
}

export type PlacementCommand = Envelope &
  (
    | { readonly type: 'register-node'; readonly nodeId: string; readonly roles: readonly Role[]; readonly addresses: Readonly<Partial<Record<Role, string>>>; readonly endpoints?: Readonly<Record<string, string>>; readonly at: number; readonly leaseMs: number }
    | { readonly type: 'heartbeat'; readonly nodeId: string; readonly at: number; readonly leaseMs: number }
    | { readonly type: 'deregister-node'; readonly nodeId: string }
    | { readonly type: 'expire-node'; readonly nodeId: string; readonly at: number }
    | { readonly type: 'create-shard'; readonly shard: string; readonly replicas: readonly string[] }
    | { readonly type: 'set-shard-leader'; readonly shard: string; readonly leader: string | null; readonly expectedEpoch: number }
    | { readonly type: 'record-shard-leader'; readonly shard: string; readonly epoch: number; readonly leader: string }
    | { readonly type: 'set-replicas'; readonly shard: string; readonly replicas: readonly string[] }
    | { readonly type: 'set-shard-state'; readonly shard: string; readonly state: ShardState }
    | { readonly type: 'begin-reassign'; readonly shard: string; readonly expectedEpoch: number; readonly replicas: readonly string[] }
    | { readonly type: 'cancel-reassign'; readonly shard: string }
    | { readonly type: 'switch-replicas'; readonly shard: string; readonly expectedEpoch: number }
    | { readonly type: 'set-map'; readonly namespace: string; readonly shards: readonly string[] }
    | { readonly type: 'set-setting'; readonly key: string; readonly value: JsonValue }
    | { readonly type: 'cas-setting'; readonly key: string; readonly expectedRevision: number; readonly value: JsonValue }
  );

export type CommandType = PlacementCommand['type'];

export const MAX_COMMAND_BYTES = 1 << 20;
export const MAX_NAME_LENGTH = 256;
export const MAX_LIST_LENGTH = 10_000;
/** A register-node names at most this many client endpoints (kafka, ...). */
export const MAX_ENDPOINTS = 16;
const ENDPOINT_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_JSON_DEPTH = 32;

export class MalformedCommandError extends Error {
  readonly code = 'malformed-command';
  constructor(detail: string) {
    super(`malformed placement command: ${detail}`);
    this.name = 'MalformedCommandError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeCommand(command: PlacementCommand): Uint8Array {
  const checked = checkCommand(command);
  return encoder.encode(JSON.stringify(checked));
}

export function decodeCommand(bytes: Uint8Array): PlacementCommand {
  if (bytes.byteLength > MAX_COMMAND_BYTES) throw new MalformedCommandError(`${bytes.byteLength} bytes, limit ${MAX_COMMAND_BYTES}`);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new MalformedCommandError('not UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MalformedCommandError('not JSON');
  }
  return checkCommand(raw);
}

// Field lists per type, in encoding order; a field not listed is refused. Optional fields came
// after the first release of a command: entries written before them lack them.
const FIELDS: Record<CommandType, readonly string[]> = {
  'register-node': ['nodeId', 'roles', 'addresses', 'at', 'leaseMs'],
  heartbeat: ['nodeId', 'at', 'leaseMs'],
  'deregister-node': ['nodeId'],
  'expire-node': ['nodeId', 'at'],
  'create-shard': ['shard', 'replicas'],
  'set-shard-leader': ['shard', 'leader', 'expectedEpoch'],
  'record-shard-leader': ['shard', 'epoch', 'leader'],
  'set-replicas': ['shard', 'replicas'],
  'set-shard-state': ['shard', 'state'],
  'begin-reassign': ['shard', 'expectedEpoch', 'replicas'],
  'cancel-reassign': ['shard'],
  'switch-replicas': ['shard', 'expectedEpoch'],
  'set-map': ['namespace', 'shards'],
  'set-setting': ['key', 'value'],
  'cas-setting': ['key', 'expectedRevision', 'value'],
};

const OPTIONAL: Partial<Record<CommandType, readonly string[]>> = {
  'register-node': ['endpoints'],
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function name(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH || !value.isWellFormed()) {
    throw new MalformedCommandError(`${field} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  }
  return value;
}

function count(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new MalformedCommandError(`${field} must be an integer >= ${min}`);
  return value;
}

function nameList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_LIST_LENGTH) throw new MalformedCommandError(`${field} must be a list of at most ${MAX_LIST_LENGTH} names`);
  return value.map((item, i) => name(item, `${field}[${i}]`));
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw new MalformedCommandError(`${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Client endpoints by protocol name (`kafka`: the advertised HOST:PORT); an empty map is left out. */
function endpoints(value: unknown): Record<string, string> {
  if (!isRecord(value)) throw new MalformedCommandError('endpoints must be an object');
  const entries = Object.entries(value);
  if (entries.length > MAX_ENDPOINTS) throw new MalformedCommandError(`endpoints holds more than ${MAX_ENDPOINTS} entries`);
  const out: Record<string, string> = {};
  for (const [key, address] of entries) {
    if (!ENDPOINT_NAME.test(key)) throw new MalformedCommandError(`endpoints key ${JSON.stringify(key.slice(0, 40))} must be 1 to 32 of [a-z0-9-], starting with a letter`);
    out[key] = name(address, `endpoints.${key}`);
  }
  return out;
}

function json(value: unknown, field: string, depth = 0): JsonValue {
  if (depth > MAX_JSON_DEPTH) throw new MalformedCommandError(`${field} nests deeper than ${MAX_JSON_DEPTH}`);
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MalformedCommandError(`${field} holds a number JSON cannot carry`);
    // JSON.parse reads "-0" as -0 but writes it as 0: a replica restored from a snapshot would
    // hold 0 where the others hold -0.
    return Object.is(value, -0) ? 0 : value;
  }
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new MalformedCommandError(`${field} holds a malformed string`);
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => json(item, field, depth + 1));
  if (isRecord(value) && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, JsonValue> = {};
    for (const [key, item] of Object.entries(value)) {
      if (!key.isWellFormed()) throw new MalformedCommandError(`${field} holds a malformed key`);
      // defineProperty: a "__proto__" key stays a key.
      Object.defineProperty(out, key, { value: json(item, field, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  throw new MalformedCommandError(`${field} is not a JSON value`);
}

function checkCommand(raw: unknown): PlacementCommand {
  if (!isRecord(raw)) throw new MalformedCommandError('not an object');
  const type = oneOf(raw.type, Object.keys(FIELDS) as CommandType[], 'type');
  const required = ['type', 'clientId', 'sequence', ...FIELDS[type]];
  const allowed = new Set([...required, ...(OPTIONAL[type] ?? [])]);
  for (const key of Object.keys(raw)) if (!allowed.has(key)) throw new MalformedCommandError(`unknown field ${JSON.stringify(key)} in ${type}`);
  for (const key of required) if (!Object.hasOwn(raw, key)) throw new MalformedCommandError(`${type} lacks ${key}`);
  const envelope = { clientId: name(raw.clientId, 'clientId'), sequence: count(raw.sequence, 'sequence', 1) };
  switch (type) {
    case 'register-node': {
      if (!Array.isArray(raw.roles) || raw.roles.length > ROLES.length) throw new MalformedCommandError(`roles must be a list of at most ${ROLES.length} roles`);
      const roles = raw.roles.map((role, i) => oneOf(role, ROLES, `roles[${i}]`));
      if (!isRecord(raw.addresses)) throw new MalformedCommandError('addresses must be an object');
      const addresses: Partial<Record<Role, string>> = {};
      for (const [role, address] of Object.entries(raw.addresses)) addresses[oneOf(role, ROLES, 'addresses key')] = name(address, `addresses.${role}`);
      const registration = { type, ...envelope, nodeId: name(raw.nodeId, 'nodeId'), roles, addresses, at: count(raw.at, 'at', 0), leaseMs: count(raw.leaseMs, 'leaseMs', 1) };
      return raw.endpoints === undefined ? registration : { ...registration, endpoints: endpoints(raw.endpoints) };
    }
    case 'heartbeat':
      return { type, ...envelope, nodeId: name(raw.nodeId, 'nodeId'), at: count(raw.at, 'at', 0), leaseMs: count(raw.leaseMs, 'leaseMs', 1) };
    case 'deregister-node':
      return { type, ...envelope, nodeId: name(raw.nodeId, 'nodeId') };
    case 'expire-node':
      return { type, ...envelope, nodeId: name(raw.nodeId, 'nodeId'), at: count(raw.at, 'at', 0) };
    case 'create-shard':
    case 'set-replicas':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), replicas: nameList(raw.replicas, 'replicas') };
    case 'set-shard-leader':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), leader: raw.leader === null ? null : name(raw.leader, 'leader'), expectedEpoch: count(raw.expectedEpoch, 'expectedEpoch', 0) };
    case 'record-shard-leader':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), epoch: count(raw.epoch, 'epoch', 1), leader: name(raw.leader, 'leader') };
    case 'set-shard-state':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), state: oneOf(raw.state, SHARD_STATES, 'state') };
    case 'begin-reassign':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), expectedEpoch: count(raw.expectedEpoch, 'expectedEpoch', 0), replicas: nameList(raw.replicas, 'replicas') };
    case 'cancel-reassign':
      return { type, ...envelope, shard: name(raw.shard, 'shard') };
    case 'switch-replicas':
      return { type, ...envelope, shard: name(raw.shard, 'shard'), expectedEpoch: count(raw.expectedEpoch, 'expectedEpoch', 0) };
    case 'set-map':
      return { type, ...envelope, namespace: name(raw.namespace, 'namespace'), shards: nameList(raw.shards, 'shards') };
    case 'set-setting':
      return { type, ...envelope, key: name(raw.key, 'key'), value: json(raw.value, 'value') };
    case 'cas-setting':
      return { type, ...envelope, key: name(raw.key, 'key'), expectedRevision: count(raw.expectedRevision, 'expectedRevision', 0), value: json(raw.value, 'value') };
  }
}
