// Delivery cursors as the journal keeps them (`$sessions` records `c:`, `$shared` records `g:`,
// and the snapshots of both): per data shard by the shard's name, so a stored position names the
// shard it is in, whatever the order or number of the shards a later release has. A Session works
// on arrays by shard position (DeliveryCursors); the broker converts at the journal's edge with
// its shard map. Pure.
//
// Release 0.1.0 stored arrays by position, `{"acked":[...],"sent":[...],"released":[[id,shard,offset]]}`;
// position i was the data shard `mqtt.i` then, which is how they are read.
import { formatShardName, MQTT_NAMESPACE } from '../../shard-model/index.js';
import type { DeliveryCursors } from './session-events.js';

export interface ShardCursors {
  /** Per shard name, the offset below which every message was delivered and acknowledged. */
  acked: Record<string, number>;
  /** Per shard name, the offset below which every message was sent at least once. */
  sent: Record<string, number>;
  /** QoS 2 deliveries the client has received (PUBREC), awaiting PUBCOMP. */
  released?: Array<[packetId: number, shard: string, offset: number]>;
  /**
   * Per shard name, acknowledged offsets at or above `acked` (acknowledged out of order), in
   * ascending order. Absent in records written before it existed: nothing to skip then.
   */
  ackedAbove?: Record<string, number[]>;
}

export function emptyCursors(): ShardCursors {
  return { acked: {}, sent: {} };
}

/** A session's cursors, by shard position, keyed by the names of `shards` (the data shards in order). */
export function cursorsByName(cursors: DeliveryCursors, shards: readonly string[]): ShardCursors {
  const byName = (offsets: readonly number[]): Record<string, number> => {
    const out: Record<string, number> = {};
    offsets.forEach((offset, shard) => {
      const name = shards[shard];
      if (name !== undefined) out[name] = offset;
    });
    return out;
  };
  const stored: ShardCursors = { acked: byName(cursors.acked), sent: byName(cursors.sent) };
  const released = cursors.released?.flatMap(([packetId, shard, offset]): Array<[number, string, number]> => {
    const name = shards[shard];
    return name === undefined ? [] : [[packetId, name, offset]];
  });
  if (released !== undefined && released.length > 0) stored.released = released;
  if (cursors.ackedAbove !== undefined) {
    const above: Record<string, number[]> = {};
    cursors.ackedAbove.forEach((offsets, shard) => {
      const name = shards[shard];
      if (name !== undefined && offsets.length > 0) above[name] = [...offsets];
    });
    if (Object.keys(above).length > 0) stored.ackedAbove = above;
  }
  return stored;
}

/**
 * Stored cursors by the positions of `shards`: a shard without a position starts at 0 (its
 * start); released deliveries and acknowledged offsets in a shard that is not among `shards` are
 * dropped (a session can only be sent messages of the data shards there are).
 */
export function cursorsByPosition(cursors: ShardCursors, shards: readonly string[]): DeliveryCursors {
  const position = new Map(shards.map((name, shard) => [name, shard]));
  const released: Array<[number, number, number]> = [];
  for (const [packetId, name, offset] of cursors.released ?? []) {
    const shard = position.get(name);
    if (shard !== undefined) released.push([packetId, shard, offset]);
  }
  const sent = Object.keys(cursors.sent).length === 0 ? [] : shards.map((name) => cursors.sent[name] ?? 0);
  const byPosition: DeliveryCursors = { acked: shards.map((name) => cursors.acked[name] ?? 0), sent };
  if (released.length > 0) byPosition.released = released;
  const above = cursors.ackedAbove;
  if (above !== undefined && shards.some((name) => (above[name]?.length ?? 0) > 0)) byPosition.ackedAbove = shards.map((name) => [...(above[name] ?? [])]);
  return byPosition;
}

/** Release 0.1.0's form: arrays by data shard position. */
interface PositionalCursors {
  acked: Array<number | null>;
  sent: Array<number | null>;
  released?: Array<[number, number, number]>;
}

function mqttShard(position: number): string {
  return formatShardName({ namespace: MQTT_NAMESPACE, index: position });
}

/** Cursors as a record value holds them, in either form (see the header). */
export function readStoredCursors(value: Buffer): ShardCursors {
  const stored = JSON.parse(value.toString('utf8')) as ShardCursors | PositionalCursors;
  if (!Array.isArray(stored.acked)) return stored as ShardCursors;
  const positional = stored as PositionalCursors;
  const byName = (offsets: Array<number | null>): Record<string, number> => {
    const out: Record<string, number> = {};
    // JSON writes the holes of a sparse array as null: no position there.
    offsets.forEach((offset, position) => {
      if (offset !== null) out[mqttShard(position)] = offset;
    });
    return out;
  };
  const cursors: ShardCursors = { acked: byName(positional.acked), sent: byName(positional.sent) };
  if (positional.released !== undefined && positional.released.length > 0) cursors.released = positional.released.map(([packetId, position, offset]) => [packetId, mqttShard(position), offset]);
  return cursors;
}

export function storedCursorsValue(cursors: ShardCursors): Buffer {
  return Buffer.from(JSON.stringify(cursors));
}
