// Read-only discovery of a data directory's layout (journal.ts describes it) for the audit
// tools. Unlike Journal.open it takes no lock, creates nothing and removes no leftovers, so it
// can look at a live journal or at a damaged one; it raises the journal's typed errors for a
// directory that is not a journal or has an unknown format.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { holderAlive, LOCK_FILE, parseLockRecord, procProbe } from '../directory-lock.js';
import { JournalErrors, ioError } from '../errors.js';
import { JOURNAL_FORMAT_VERSION, JOURNAL_MARKER_FILE } from '../journal.js';
import { parseSegmentFileName, segmentFileStem } from '../segment/segment.js';
import { validateShardName } from '../shard/shard-name.js';

// journal.ts keeps these private; they are part of the on-disk layout it documents.
const SHARDS_DIRECTORY = 'shards';
const HOUSEKEEPING_PREFIX = '.';
const COMPACTION_SUFFIX = '.compacting';
const INDEX_FILE_PATTERN = /^(\d{20})\.(index|timeindex)$/;

export interface SegmentFile {
  baseOffset: number;
  /** The log's file name, e.g. 00000000000000000000.log. */
  name: string;
  logPath: string;
  offsetIndexPath: string;
  timeIndexPath: string;
  /** Log size when the directory was listed; a live journal may have appended since. */
  sizeBytes: number;
}

export interface ShardFiles {
  name: string;
  directory: string;
  /** Oldest first; the last is the active segment. */
  segments: SegmentFile[];
  /** File names left by interrupted operations (see SL_AUDIT_LEFTOVER_FILE). */
  leftovers: string[];
}

/** Resolves `dataDir` after checking its marker; the checks mirror Journal.open's, minus creation. */
export async function openJournalDirectory(dataDir: string): Promise<string> {
  const directory = resolve(dataDir);
  const info = await stat(directory).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw JournalErrors.notAJournal.create({}, directory, 'it does not exist');
    throw ioError('stat', directory, error);
  });
  if (!info.isDirectory()) throw JournalErrors.notAJournal.create({}, directory, 'it is a file, not a directory');
  const markerPath = join(directory, JOURNAL_MARKER_FILE);
  const text = await readFile(markerPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw JournalErrors.notAJournal.create({}, directory, `it has no ${JOURNAL_MARKER_FILE}`);
    throw ioError('read', markerPath, error);
  });
  let marker: { format?: unknown };
  try {
    marker = JSON.parse(text) as typeof marker;
  } catch {
    throw JournalErrors.notAJournal.create({}, directory, `${JOURNAL_MARKER_FILE} is not valid JSON`);
  }
  if (marker?.format !== JOURNAL_FORMAT_VERSION) {
    throw JournalErrors.unsupportedFormat.create({}, `journal ${directory}`, Number(marker?.format), JOURNAL_FORMAT_VERSION);
  }
  return directory;
}

export interface ShardDirectories {
  names: string[];
  /** Housekeeping directories (shards/.NAME) of an interrupted create or delete. */
  leftovers: string[];
  /** Directories whose name is not a valid shard name; Journal.open refuses them. */
  foreign: string[];
}

/** Sorted shard names and the other directories; a journal that never opened has no shards/ yet. */
export async function listShardNames(journalDirectory: string): Promise<ShardDirectories> {
  const shardsPath = join(journalDirectory, SHARDS_DIRECTORY);
  const entries = await readdir(shardsPath, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw ioError('list', shardsPath, error);
  });
  const found: ShardDirectories = { names: [], leftovers: [], foreign: [] };
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    if (entry.name.startsWith(HOUSEKEEPING_PREFIX)) found.leftovers.push(entry.name);
    else if (isShardName(entry.name)) found.names.push(entry.name);
    else found.foreign.push(entry.name);
  }
  return { names: found.names.sort(), leftovers: found.leftovers.sort(), foreign: found.foreign.sort() };
}

function isShardName(name: string): boolean {
  try {
    validateShardName(name);
    return true;
  } catch {
    return false;
  }
}

/** The shard's directory, or the journal's SL_JOURNAL_SHARD_NOT_FOUND (after the name check). */
export async function requireShard(journalDirectory: string, name: string): Promise<string> {
  validateShardName(name);
  const directory = shardDirectory(journalDirectory, name);
  const info = await stat(directory).catch(() => null);
  if (info === null || !info.isDirectory()) throw JournalErrors.shardNotFound.create({ shard: name }, name);
  return directory;
}

function shardDirectory(journalDirectory: string, name: string): string {
  return join(journalDirectory, SHARDS_DIRECTORY, name);
}

export async function listShardFiles(journalDirectory: string, name: string): Promise<ShardFiles> {
  const directory = shardDirectory(journalDirectory, name);
  let entries: string[];
  try {
    entries = await readdir(directory);
  } catch (error) {
    throw ioError('list', directory, error, { shard: name });
  }
  const present = new Set(entries);
  const bases = entries.map(parseSegmentFileName).filter((base): base is number => base !== null).sort((a, b) => a - b);
  const segments: SegmentFile[] = [];
  for (const baseOffset of bases) {
    // A segment deleted by retention between readdir and stat is simply no longer there.
    const info = await stat(join(directory, `${segmentFileStem(baseOffset)}.log`)).catch(() => null);
    if (info !== null) segments.push(segmentFile(directory, baseOffset, info.size));
  }
  const leftovers = entries.filter((entry) => entry.endsWith(COMPACTION_SUFFIX) || isOrphanIndex(entry, present)).sort();
  return { name, directory, segments, leftovers };
}

function segmentFile(directory: string, baseOffset: number, sizeBytes: number): SegmentFile {
  const stem = segmentFileStem(baseOffset);
  return {
    baseOffset,
    name: `${stem}.log`,
    logPath: join(directory, `${stem}.log`),
    offsetIndexPath: join(directory, `${stem}.index`),
    timeIndexPath: join(directory, `${stem}.timeindex`),
    sizeBytes,
  };
}

function isOrphanIndex(entry: string, present: Set<string>): boolean {
  const match = INDEX_FILE_PATTERN.exec(entry);
  return match !== null && !present.has(`${match[1]}.log`);
}

/**
 * The pid of the process holding the data directory's lock when it is alive, else null: a hint
 * that a node has the journal open (so the active segments' indexes are expected to be stale).
 * Read-only and advisory: the audit tools never take the lock; the holder is judged as the
 * journal's own open judges it (pid, start time, boot id; journal/directory-lock.ts).
 */
export async function liveLockHolder(journalDirectory: string): Promise<number | null> {
  const text = await readFile(join(journalDirectory, LOCK_FILE), 'utf8').catch(() => '');
  const record = parseLockRecord(text);
  if (record === undefined) return null;
  const [bootId, state] = await Promise.all([procProbe.bootId(), procProbe.process(record.pid)]);
  return holderAlive(record, bootId, state) ? record.pid : null;
}
