// Snapshots of the placement state for Raft (log compaction and snapshot transfer): versioned
// JSON with every map as a list sorted by key and every object's keys sorted, so two equal
// states give equal bytes whatever order their records were inserted in.
import type { NodeRecord, PlacementState, Session, Setting, ShardMap, ShardRecord } from './types.js';

export const SNAPSHOT_VERSION = 1;

export class SnapshotFormatError extends Error {
  readonly code = 'bad-snapshot';
  constructor(detail: string) {
    super(`placement snapshot: ${detail}`);
    this.name = 'SnapshotFormatError';
  }
}

interface SnapshotV1 {
  version: 1;
  revision: number;
  nodes: NodeRecord[];
  shards: ShardRecord[];
  maps: [string, ShardMap][];
  settings: [string, Setting][];
  sessions: [string, Session][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

const byKey = <V>(map: ReadonlyMap<string, V>): [string, V][] => [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function snapshot(state: PlacementState): Uint8Array {
  const body: SnapshotV1 = {
    version: SNAPSHOT_VERSION,
    revision: state.revision,
    nodes: byKey(state.nodes).map(([, node]) => node),
    shards: byKey(state.shards).map(([, shard]) => shard),
    maps: byKey(state.maps),
    settings: byKey(state.settings),
    sessions: byKey(state.sessions),
  };
  return encoder.encode(canonical(body));
}

function list(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new SnapshotFormatError(`${field} is not a list`);
  return value;
}

function keyed<V>(value: unknown, field: string, keyOf: (item: V) => unknown): Map<string, V> {
  const map = new Map<string, V>();
  for (const item of list(value, field)) {
    const key = keyOf(item as V);
    if (typeof key !== 'string' || map.has(key)) throw new SnapshotFormatError(`${field} holds a missing or repeated key`);
    map.set(key, item as V);
  }
  return map;
}

const pairKey = (item: unknown): unknown => (Array.isArray(item) && item.length === 2 ? item[0] : undefined);
const pairValue = <V>(map: Map<string, unknown>): Map<string, V> => new Map([...map.entries()].map(([key, pair]) => [key, (pair as [string, V])[1]]));

/** The state a snapshot holds. Checks the version and the outline; the bytes are trusted to be ours (storage checksums them). */
export function restore(bytes: Uint8Array): PlacementState {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SnapshotFormatError('not UTF-8 JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw new SnapshotFormatError('not an object');
  const body = raw as Partial<SnapshotV1>;
  if (body.version !== SNAPSHOT_VERSION) throw new SnapshotFormatError(`version ${String(body.version)}, expected ${SNAPSHOT_VERSION}`);
  if (typeof body.revision !== 'number' || !Number.isSafeInteger(body.revision) || body.revision < 0) throw new SnapshotFormatError('bad revision');
  return {
    revision: body.revision,
    nodes: keyed<NodeRecord>(body.nodes, 'nodes', (node) => node?.id),
    shards: keyed<ShardRecord>(body.shards, 'shards', (shard) => shard?.name),
    maps: pairValue<ShardMap>(keyed(body.maps, 'maps', pairKey)),
    settings: pairValue<Setting>(keyed(body.settings, 'settings', pairKey)),
    sessions: pairValue<Session>(keyed(body.sessions, 'sessions', pairKey)),
  };
}
