// Snapshots of projections, kept in two compacted system shards, so they live wherever the
// journal lives (a local data directory, a remote journal node, later a replicated shard) and
// get the journal's checksums, durability and compaction:
//   `$snapshots`       small records that say which snapshots exist (read whole at start)
//   `$snapshots.data`  the encoded states, in chunks (read only for the snapshot used)
// Keeping the bytes apart means a start reads the few manifests and then exactly one snapshot's
// chunks, by offset, however many older snapshots compaction has not reclaimed yet.
//
// One snapshot of projection NAME, id ID (random per snapshot, so no two share a key and
// compaction can never replace a chunk an older manifest still points to), is written as
//   1. `$snapshots`       key `w:NAME\0ID`  value {"chunks":N}: a write has begun
//   2. `$snapshots.data`  key `c:NAME\0ID\0I` value bytes I*CHUNK.. of the state, I = 0..N-1
//                         (chunked: one record must stay under the shard's maxRecordBytes)
//   3. `$snapshots`       key `m:NAME\0ID`  value JSON SnapshotManifest (source shard and
//                         offset, encoding version, byte count, SHA-256, each chunk's offset),
//                         appended once every chunk is durable
//   4. tombstones for the manifests, write markers and chunks of snapshots older than the
//      SNAPSHOTS_KEPT newest, and for writes that began and never got a manifest.
//
// Crash safety: a snapshot counts only once its manifest is in `$snapshots`, and the manifest is
// appended after its chunks are durable, so a crash mid-write leaves a write marker and some
// chunks (removed by the next write) and the older snapshots intact. A manifest whose chunks are
// missing, are not at the offsets it gives, or do not hash to its SHA-256 is passed over for the
// next older one; the previous snapshot is kept for that.
import { createHash, randomBytes } from 'node:crypto';
import type { RecordInput } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';

export const SNAPSHOTS_SHARD = '$snapshots';
export const SNAPSHOT_DATA_SHARD = '$snapshots.data';
/** Bytes of state per chunk record (well under the journal's default 8 MiB record limit). */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Chunks per append: one append stays at a few MiB (the remote journal's messages are bounded). */
const CHUNKS_PER_APPEND = 4;
/** Bytes per read of `$snapshots` (manifests are small) and of chunks. */
const READ_MAX_BYTES = 16 * 1024 * 1024;
/** Snapshots of one name kept: the newest and the one before it, the fallback should the newest prove broken. */
const SNAPSHOTS_KEPT = 2;
const MANIFEST_FORMAT = 1;
const SEPARATOR = '\u0000';

export interface SnapshotManifest {
  format: number;
  name: string;
  /** The shard the projection reads. */
  shard: string;
  /** Every record of the shard below this offset is in the state, none at or above it. */
  offset: number;
  /** The projection's state encoding version. */
  version: number;
  id: string;
  bytes: number;
  sha256: string;
  /** Offset in `$snapshots.data` of each chunk, in order. */
  chunkOffsets: number[];
  /** Epoch ms when it was written (for operators reading the shard). */
  writtenAt: number;
}

/** Creates `$snapshots` and `$snapshots.data` when missing. */
export async function ensureSnapshotShards(store: ShardStore): Promise<void> {
  const existing = new Set((await store.list()).map((info) => info.name));
  for (const [name, segmentBytes] of [
    [SNAPSHOTS_SHARD, 1024 * 1024],
    [SNAPSHOT_DATA_SHARD, 16 * 1024 * 1024],
  ] as const) {
    if (existing.has(name)) continue;
    try {
      await store.create(name, { compacted: true, segmentBytes });
    } catch (error) {
      // Another component of this node (or another broker on the same journal) made it first.
      if ((error as { code?: unknown } | null)?.code !== 'SL_JOURNAL_SHARD_EXISTS') throw error;
    }
  }
}

function key(kind: 'w' | 'm', name: string, id: string): Buffer {
  return Buffer.from(`${kind}:${name}${SEPARATOR}${id}`);
}

function chunkKey(name: string, id: string, index: number): string {
  return `c:${name}${SEPARATOR}${id}${SEPARATOR}${index}`;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function parseManifest(value: Buffer): SnapshotManifest | undefined {
  try {
    const manifest = JSON.parse(value.toString('utf8')) as SnapshotManifest;
    return typeof manifest === 'object' && manifest !== null ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshots of one projection. Not safe for concurrent write() calls (Projection serializes them). */
export class SnapshotStore {
  readonly #store: ShardStore;
  readonly #name: string;
  /** This name's snapshots with a manifest, oldest first: the keys to remove when retired. */
  #known: Array<{ id: string; chunks: number }> = [];
  /** Writes that began and got no manifest (cut short), with their chunk counts: removed by the next write. */
  #unfinished = new Map<string, number>();

  constructor(store: ShardStore, name: string) {
    if (name.includes(SEPARATOR)) throw new Error(`a projection name cannot hold U+0000: ${JSON.stringify(name)}`);
    this.#store = store;
    this.#name = name;
  }

  /** This name's manifests in `$snapshots` (which must exist), newest first; unreadable ones are left out. */
  async manifests(): Promise<SnapshotManifest[]> {
    const prefixes = { w: `w:${this.#name}${SEPARATOR}`, m: `m:${this.#name}${SEPARATOR}` };
    const begun = new Map<string, number>();
    const written = new Map<string, Buffer>();
    for (let offset = (await this.#store.info(SNAPSHOTS_SHARD)).startOffset; ; ) {
      const records = await this.#store.read(SNAPSHOTS_SHARD, offset, { maxBytes: READ_MAX_BYTES });
      if (records.length === 0) break;
      for (const record of records) {
        offset = record.offset + 1;
        const text = record.key?.toString('utf8') ?? '';
        const kind = text.startsWith(prefixes.w) ? 'w' : text.startsWith(prefixes.m) ? 'm' : undefined;
        if (kind === undefined) continue;
        const id = text.slice(prefixes[kind].length);
        const into: Map<string, unknown> = kind === 'w' ? begun : written;
        // Delete first: a key written again moves to the end (newest).
        into.delete(id);
        if (record.value === null) continue;
        if (kind === 'm') written.set(id, record.value);
        else begun.set(id, Number((parseManifest(record.value) as { chunks?: unknown } | undefined)?.chunks ?? 0) || 0);
      }
    }
    this.#known = [];
    this.#unfinished = new Map();
    const manifests: SnapshotManifest[] = [];
    for (const [id, value] of written) {
      const manifest = parseManifest(value);
      this.#known.push({ id, chunks: Array.isArray(manifest?.chunkOffsets) ? manifest.chunkOffsets.length : (begun.get(id) ?? 0) });
      if (manifest !== undefined) manifests.unshift(manifest);
    }
    for (const [id, chunks] of begun) if (!written.has(id)) this.#unfinished.set(id, chunks);
    return manifests;
  }

  /** The state bytes of a snapshot, checked against its manifest; a string says why they are not usable. */
  async load(manifest: SnapshotManifest): Promise<Buffer | string> {
    if (manifest.format !== MANIFEST_FORMAT) return `manifest format ${String(manifest.format)} is not ${MANIFEST_FORMAT}`;
    if (manifest.name !== this.#name || !Array.isArray(manifest.chunkOffsets)) return 'the manifest is not one of this projection';
    const parts: Buffer[] = [];
    for (let index = 0; index < manifest.chunkOffsets.length; ) {
      const offset = manifest.chunkOffsets[index] as number;
      let records;
      try {
        records = await this.#store.read(SNAPSHOT_DATA_SHARD, offset, { maxRecords: manifest.chunkOffsets.length - index, maxBytes: READ_MAX_BYTES });
      } catch (error) {
        return `chunk ${index} at offset ${offset} cannot be read: ${(error as Error).message}`;
      }
      // Chunks of one snapshot may be interleaved with another's (two written at once): take
      // the run that is at the offsets the manifest gives.
      let taken = 0;
      for (const record of records) {
        if (record.offset !== manifest.chunkOffsets[index]) break;
        if (record.key?.toString('utf8') !== chunkKey(this.#name, manifest.id, index) || record.value === null) return `chunk ${index} is not at offset ${record.offset}`;
        parts.push(record.value);
        index += 1;
        taken += 1;
      }
      if (taken === 0) return `chunk ${index} is missing at offset ${offset}`;
    }
    const state = Buffer.concat(parts);
    if (state.length !== manifest.bytes) return `${state.length} bytes where the manifest says ${manifest.bytes}`;
    if (sha256(state) !== manifest.sha256) return 'the bytes do not match the manifest SHA-256';
    return state;
  }

  /**
   * Writes a snapshot: the write marker, the chunks, then (once they are durable) the manifest,
   * then the retirement of older snapshots. Resolves once the manifest is durable; a failure
   * before that leaves the older snapshots as they were.
   */
  async write(source: { shard: string; offset: number; version: number }, state: Buffer, writtenAt: number): Promise<SnapshotManifest> {
    const id = randomBytes(8).toString('hex');
    const count = Math.ceil(state.length / SNAPSHOT_CHUNK_BYTES);
    this.#unfinished.set(id, count);
    await this.#store.append(SNAPSHOTS_SHARD, [{ key: key('w', this.#name, id), value: Buffer.from(JSON.stringify({ chunks: count })), timestamp: writtenAt }]);
    const chunkOffsets: number[] = [];
    for (let first = 0; first < count; first += CHUNKS_PER_APPEND) {
      const records: RecordInput[] = [];
      for (let index = first; index < Math.min(count, first + CHUNKS_PER_APPEND); index += 1) {
        records.push({ key: Buffer.from(chunkKey(this.#name, id, index)), value: state.subarray(index * SNAPSHOT_CHUNK_BYTES, (index + 1) * SNAPSHOT_CHUNK_BYTES), timestamp: writtenAt });
      }
      const { baseOffset } = await this.#store.append(SNAPSHOT_DATA_SHARD, records);
      for (let i = 0; i < records.length; i += 1) chunkOffsets.push(baseOffset + i);
    }
    const manifest: SnapshotManifest = { format: MANIFEST_FORMAT, name: this.#name, shard: source.shard, offset: source.offset, version: source.version, id, bytes: state.length, sha256: sha256(state), chunkOffsets, writtenAt };
    await this.#store.append(SNAPSHOTS_SHARD, [{ key: key('m', this.#name, id), value: Buffer.from(JSON.stringify(manifest)), timestamp: writtenAt }]);
    this.#unfinished.delete(id);
    this.#known.push({ id, chunks: count });
    await this.#retire(writtenAt);
    return manifest;
  }

  /** Tombstones for snapshots beyond the newest SNAPSHOTS_KEPT and for unfinished writes. */
  async #retire(now: number): Promise<void> {
    const gone = [...this.#unfinished].map(([id, chunks]) => ({ id, chunks }));
    while (this.#known.length > SNAPSHOTS_KEPT) gone.push(this.#known.shift() as { id: string; chunks: number });
    if (gone.length === 0) return;
    const tombstone = (recordKey: Buffer): RecordInput => ({ key: recordKey, value: null, timestamp: now });
    const chunks: RecordInput[] = [];
    for (const { id, chunks: count } of gone) for (let index = 0; index < count; index += 1) chunks.push(tombstone(Buffer.from(chunkKey(this.#name, id, index))));
    // Chunks first: should this stop half-way, the manifests and markers left still name them.
    if (chunks.length > 0) await this.#store.append(SNAPSHOT_DATA_SHARD, chunks);
    await this.#store.append(
      SNAPSHOTS_SHARD,
      gone.flatMap(({ id }) => [tombstone(key('m', this.#name, id)), tombstone(key('w', this.#name, id))]),
    );
    for (const { id } of gone) this.#unfinished.delete(id);
  }
}
