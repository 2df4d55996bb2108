// replica.json, beside a replicated shard's segments: the epoch this replica has taken, who
// leads it, the replica set, the newest epoch it has led, and whether it votes. It is written (new file, fsync,
// rename, directory fsync) before the node acts on a new epoch, so a restart never takes the
// node back to an older epoch (fencing would break) nor lets it lead an epoch twice (its lost
// unsynced tail may differ from what followers hold under that epoch).
//
// The epoch history is NOT kept here but in its own checkpoint, epochs.json
// (epoch-checkpoint.ts), which an open checks against the batches and completes from the log.
import { join } from 'node:path';
import { JournalErrors, ioError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import { syncDirectory, writeDurably } from '../segment/segment.js';

export const REPLICA_FILE = 'replica.json';
const REPLICA_FILE_VERSION = 1;

export interface ReplicaRecord {
  epoch: number;
  /** '' while an election for `epoch` has not named the leader */
  leader: string;
  replicas: string[];
  /** the newest epoch this node has led (-1: none) */
  ledEpoch: number;
  /**
   * false from an epoch taken without the replica state it lost (a wiped data directory) until
   * the node holds a batch of its leader's epoch (so every record committed before): until then
   * its answer must not count towards an election's majority. Absent in older files: true.
   */
  voter: boolean;
}

export async function readReplicaFile(fs: JournalFileSystem, directory: string, shard: string): Promise<ReplicaRecord | null> {
  const path = join(directory, REPLICA_FILE);
  let text: string;
  try {
    text = (await fs.readFile(path)).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', path, error, { shard });
  }
  let parsed: { version?: unknown } & Partial<ReplicaRecord>;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw JournalErrors.notAJournal.create({ shard }, path, `${REPLICA_FILE} is not valid JSON`);
  }
  if (parsed.version !== REPLICA_FILE_VERSION) throw JournalErrors.unsupportedFormat.create({ shard }, path, Number(parsed.version), REPLICA_FILE_VERSION);
  const { epoch, leader, replicas, ledEpoch, voter = true } = parsed;
  if (!Number.isSafeInteger(epoch) || typeof leader !== 'string' || !Array.isArray(replicas) || !Number.isSafeInteger(ledEpoch)) {
    throw JournalErrors.notAJournal.create({ shard }, path, `${REPLICA_FILE} lacks epoch, leader, replicas or ledEpoch`);
  }
  return { epoch: epoch as number, leader, replicas: replicas.map(String), ledEpoch: ledEpoch as number, voter: voter !== false };
}

export async function writeReplicaFile(fs: JournalFileSystem, directory: string, shard: string, record: ReplicaRecord): Promise<void> {
  const path = join(directory, REPLICA_FILE);
  await writeDurably(fs, `${path}.new`, Buffer.from(JSON.stringify({ version: REPLICA_FILE_VERSION, ...record }, null, 2)));
  try {
    await fs.rename(`${path}.new`, path);
  } catch (error) {
    throw ioError('rename', `${path}.new`, error, { shard });
  }
  await syncDirectory(fs, directory);
}
