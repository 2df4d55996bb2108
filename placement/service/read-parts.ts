// The parts of the placement state a Read returns, as JSON (records in key order), and their
// decoding on the client. Shared by server.ts and client.ts so the two stay in step.
import type { JsonValue, NodeRecord, PlacementState, ShardRecord } from '../metadata/index.js';
import type { ReadResponse } from './placement-proto.js';
import { PlacementErrors } from './errors.js';

export const READ_PARTS = ['nodes', 'shards', 'maps', 'settings'] as const;
export type ReadPart = (typeof READ_PARTS)[number];

export interface MapEntry { readonly namespace: string; readonly shards: readonly string[]; readonly revision: number }
export interface SettingEntry { readonly key: string; readonly value: JsonValue; readonly revision: number }

/** What a linearizable read returned; a part not asked for is absent. */
export interface ReadResult {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly nodes?: readonly NodeRecord[];
  readonly shards?: readonly ShardRecord[];
  readonly maps?: readonly MapEntry[];
  readonly settings?: readonly SettingEntry[];
}

/** The parts asked for (all when none); SL_PLACEMENT_MALFORMED_COMMAND for an unknown one. */
export function checkParts(parts: readonly string[]): Set<ReadPart> {
  if (parts.length === 0) return new Set(READ_PARTS);
  for (const part of parts) {
    if (!(READ_PARTS as readonly string[]).includes(part)) throw PlacementErrors.malformedCommand.create({ part }, `unknown read part ${JSON.stringify(part)}; one of ${READ_PARTS.join(', ')}`);
  }
  return new Set(parts as ReadPart[]);
}

function sortedValues<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function readResponse(appliedIndex: number, state: PlacementState, parts: Set<ReadPart>): ReadResponse {
  const part = (name: ReadPart, value: () => unknown): string => (parts.has(name) ? JSON.stringify(value()) : '');
  return {
    appliedIndex,
    revision: state.revision,
    nodesJson: part('nodes', () => sortedValues(state.nodes).map(([, node]) => node)),
    shardsJson: part('shards', () => sortedValues(state.shards).map(([, shard]) => shard)),
    mapsJson: part('maps', () => sortedValues(state.maps).map(([namespace, map]) => ({ namespace, shards: map.shards, revision: map.revision }))),
    settingsJson: part('settings', () => sortedValues(state.settings).map(([key, setting]) => ({ key, value: setting.value, revision: setting.revision }))),
  };
}

export function readResultFromWire(response: ReadResponse): ReadResult {
  const parse = <T>(json: string): T | undefined => (json === '' ? undefined : (JSON.parse(json) as T));
  const result: { -readonly [K in keyof ReadResult]: ReadResult[K] } = { appliedIndex: response.appliedIndex, revision: response.revision };
  const nodes = parse<NodeRecord[]>(response.nodesJson);
  const shards = parse<ShardRecord[]>(response.shardsJson);
  const maps = parse<MapEntry[]>(response.mapsJson);
  const settings = parse<SettingEntry[]>(response.settingsJson);
  if (nodes !== undefined) result.nodes = nodes;
  if (shards !== undefined) result.shards = shards;
  if (maps !== undefined) result.maps = maps;
  if (settings !== undefined) result.settings = settings;
  return result;
}
