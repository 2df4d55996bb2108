// Snapshots of projections, kept in the compacted `$snapshots` system shard, so they live
// wherever the journal lives (a local data directory, a remote journal node, later a replicated
// shard) and get the journal's checksums, durability and compaction for free.
//
// One snapshot of projection NAME is written as
//   chunk records   key `c:NAME\0ID\0INDEX`, value = bytes INDEX*CHUNK .. of the encoded state
//                   (chunked: one record must stay under the shard's maxRecordBytes)
//   then, in a later append once every chunk is durable, its manifest
//                   key `m:NAME\0ID`, value = JSON SnapshotManifest (format, source shard,
//                   offset, state encoding version, chunk count, byte count, SHA-256)
//   then tombstones for the manifests and chunks of snapshots older than the SNAPSHOTS_KEPT
//   newest, and for chunks whose manifest never came (a write cut short).
// ID is random per snapshot, so two snapshots never share a key and compaction (latest value per
// key) can never replace a chunk an older manifest still points to.
//
// Crash safety: a snapshot counts only once its manifest is in the shard, and the manifest is
// appended after its chunks are durable, so a crash mid-write leaves chunks without a manifest
// (ignored, removed by the next write) and the older snapshots intact. A manifest whose chunks
// are missing or whose bytes do not hash to its SHA-256 is skipped, and the next older intact
// one is used; the previous snapshot is kept for that. Reading scans the whole shard once
// (there is no index by key), which is a sequential read of at most a few snapshots per name.
import { createHash, randomBytes } from 'node:crypto';
import type { RecordInput } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';

export const SNAPSHOTS_SHARD = '$snapshots';
/** Bytes of state per chunk record (well under the journal's default 8 MiB record limit). */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Chunks per append: one append stays at a few MiB (the remote journal's messages are bounded). */
const CHUNKS_PER_APPEND = 4;
/** Bytes per read while scanning the shard. */
const SCAN_READ_MAX_BYTES = 16 * 1024 * 1024;
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
  chunks: number;
  bytes: number;
  sha256: string;
  /** Epoch ms when it was written (for operators reading the shard). */
  writtenAt: number;
}

export interface StoredSnapshot {
  manifest: SnapshotManifest;
  state: Buffer;
}

export interface SnapshotScan {
  /** Snapshots whose chunks are all there and hash right, newest first. */
  intact: StoredSnapshot[];
  /** Manifests that are not usable, with why. */
  broken: Array<{ id: string; reason: string }>;
}

/** Creates `$snapshots` when missing (compacted: superseded and retired snapshots are reclaimed). */
export async function ensureSnapshotsShard(store: ShardStore): Promise<void> {
  const existing = await store.list();
  if (existing.some((info) => info.name === SNAPSHOTS_SHARD)) return;
  try {
    await store.create(SNAPSHOTS_SHARD, { compacted: true, segmentBytes: 8 * 1024 * 1024 });
  } catch (error) {
    // Another component of this node (or another broker on the same journal) made it first.
    if ((error as { code?: unknown } | null)?.code !== 'SL_JOURNAL_SHARD_EXISTS') throw error;
  }
}

function manifestKey(name: string, id: string): string {
  return `m:${name}${SEPARATOR}${id}`;
}

function chunkKey(name: string, id: string, index: number): string {
  return `c:${name}${SEPARATOR}${id}${SEPARATOR}${index}`;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The snapshots of one projection. Not safe for concurrent write() calls (Projection serializes them). */
export class SnapshotStore {
  readonly #store: ShardStore;
  readonly #name: string;
  /** This name's snapshots in the shard, oldest first, with their chunk counts. */
  #known: Array<{ id: string; chunks: number }> = [];
  /** Chunk keys with no manifest (writes cut short): removed by the next write. */
  #orphans = new Set<string>();

  constructor(store: ShardStore, name: string) {
    if (name.includes(SEPARATOR)) throw new Error(`a projection name cannot hold U+0000: ${JSON.stringify(name)}`);
    this.#store = store;
    this.#name = name;
  }

  /** Reads this name's snapshots from `$snapshots` (which must exist). */
  async scan(): Promise<SnapshotScan> {
    const manifestPrefix = manifestKey(this.#name, '');
    const chunkPrefix = `c:${this.#name}${SEPARATOR}`;
    const manifests = new Map<string, { value: Buffer; offset: number }>();
    const chunks = new Map<string, Map<number, Buffer>>();
    const info = await this.#store.info(SNAPSHOTS_SHARD);
    for (let offset = info.startOffset; ; ) {
      const records = await this.#store.read(SNAPSHOTS_SHARD, offset, { maxBytes: SCAN_READ_MAX_BYTES });
      if (records.length === 0) break;
      for (const record of records) {
        offset = record.offset + 1;
        const key = record.key?.toString('utf8');
        if (key === undefined) continue;
        if (key.startsWith(manifestPrefix)) {
          const id = key.slice(manifestPrefix.length);
          manifests.delete(id);
          if (record.value !== null) manifests.set(id, { value: record.value, offset: record.offset });
        } else if (key.startsWith(chunkPrefix)) {
          const [id = '', indexText = ''] = key.slice(chunkPrefix.length).split(SEPARATOR);
          const index = Number(indexText);
          if (!Number.isSafeInteger(index)) continue;
          let parts = chunks.get(id);
          if (parts === undefined) chunks.set(id, (parts = new Map()));
          if (record.value === null) parts.delete(index);
          else parts.set(index, record.value);
        }
      }
    }
    this.#known = [];
    this.#orphans = new Set();
    for (const [id, parts] of chunks) if (!manifests.has(id)) for (const index of parts.keys()) this.#orphans.add(chunkKey(this.#name, id, index));
    const intact: StoredSnapshot[] = [];
    const broken: SnapshotScan['broken'] = [];
    const byAge = [...manifests].sort(([, a], [, b]) => a.offset - b.offset);
    for (const [id, { value }] of byAge) {
      const checked = this.#check(id, value, chunks.get(id) ?? new Map());
      this.#known.push({ id, chunks: 'manifest' in checked ? checked.manifest.chunks : (chunks.get(id)?.size ?? 0) });
      if ('manifest' in checked) intact.unshift(checked);
      else broken.unshift({ id, reason: checked.reason });
    }
    return { intact, broken };
  }

  #check(id: string, value: Buffer, parts: Map<number, Buffer>): StoredSnapshot | { reason: string } {
    let manifest: SnapshotManifest;
    try {
      manifest = JSON.parse(value.toString('utf8')) as SnapshotManifest;
    } catch {
      return { reason: 'the manifest is not JSON' };
    }
    if (manifest.format !== MANIFEST_FORMAT) return { reason: `manifest format ${String(manifest.format)} is not ${MANIFEST_FORMAT}` };
    if (manifest.id !== id || manifest.name !== this.#name) return { reason: 'the manifest names another snapshot' };
    if (!Number.isSafeInteger(manifest.chunks) || manifest.chunks < 0) return { reason: `bad chunk count ${String(manifest.chunks)}` };
    const ordered: Buffer[] = [];
    for (let index = 0; index < manifest.chunks; index += 1) {
      const part = parts.get(index);
      if (part === undefined) return { reason: `chunk ${index} of ${manifest.chunks} is missing` };
      ordered.push(part);
    }
    const state = Buffer.concat(ordered);
    if (state.length !== manifest.bytes) return { reason: `${state.length} bytes where the manifest says ${manifest.bytes}` };
    if (sha256(state) !== manifest.sha256) return { reason: 'the bytes do not match the manifest SHA-256' };
    return { manifest, state };
  }

  /**
   * Writes a snapshot: chunks, then (once they are durable) the manifest, then the retirement
   * of older snapshots. Resolves once the manifest is durable; a failure before that leaves the
   * older snapshots as they were.
   */
  async write(source: { shard: string; offset: number; version: number }, state: Buffer, writtenAt: number): Promise<SnapshotManifest> {
    const id = randomBytes(8).toString('hex');
    const count = Math.ceil(state.length / SNAPSHOT_CHUNK_BYTES);
    try {
      for (let first = 0; first < count; first += CHUNKS_PER_APPEND) {
        const records: RecordInput[] = [];
        for (let index = first; index < Math.min(count, first + CHUNKS_PER_APPEND); index += 1) {
          records.push({ key: Buffer.from(chunkKey(this.#name, id, index)), value: state.subarray(index * SNAPSHOT_CHUNK_BYTES, (index + 1) * SNAPSHOT_CHUNK_BYTES), timestamp: writtenAt });
        }
        await this.#store.append(SNAPSHOTS_SHARD, records);
      }
    } catch (error) {
      // Some chunks may be in the shard: the next write removes them.
      for (let index = 0; index < count; index += 1) this.#orphans.add(chunkKey(this.#name, id, index));
      throw error;
    }
    const manifest: SnapshotManifest = { format: MANIFEST_FORMAT, name: this.#name, shard: source.shard, offset: source.offset, version: source.version, id, chunks: count, bytes: state.length, sha256: sha256(state), writtenAt };
    // A failure here does not make the chunks orphans: the manifest may have been written all
    // the same (a journal that took it and then became unreachable), and then they are the
    // newest snapshot's. A scan at the next start tells which.
    await this.#store.append(SNAPSHOTS_SHARD, [{ key: Buffer.from(manifestKey(this.#name, id)), value: Buffer.from(JSON.stringify(manifest)), timestamp: writtenAt }]);
    this.#known.push({ id, chunks: count });
    await this.#retire(writtenAt);
    return manifest;
  }

  /** Tombstones for snapshots beyond the newest SNAPSHOTS_KEPT and for orphan chunks. */
  async #retire(now: number): Promise<void> {
    const keys = [...this.#orphans];
    while (this.#known.length > SNAPSHOTS_KEPT) {
      const old = this.#known.shift() as { id: string; chunks: number };
      keys.push(manifestKey(this.#name, old.id));
      for (let index = 0; index < old.chunks; index += 1) keys.push(chunkKey(this.#name, old.id, index));
    }
    if (keys.length === 0) return;
    await this.#store.append(
      SNAPSHOTS_SHARD,
      keys.map((key) => ({ key: Buffer.from(key), value: null, timestamp: now })),
    );
    this.#orphans.clear();
  }
}
