// Tells a torn write from damage at the end of the Raft log shard, before the journal opens it.
//
// The journal's recovery cuts the active segment at its first invalid batch, whatever follows:
// for an ordinary shard that is the right answer to a torn write. For the Raft log it can be
// wrong: every save waits for its fdatasync before the next one starts, so a crash can tear
// only the last batch of the file, and nothing valid can follow a torn one. An invalid batch
// with a valid batch somewhere after it is damage (a bad sector, a stray write), and cutting
// there would silently drop saves that were fsynced and acknowledged: a vote already given,
// entries a leader counted toward a commit. So the open refuses instead (SL_RAFT_LOG_CORRUPT).
//
// Damage inside the last batch itself still looks like a torn write and is cut by the journal;
// nothing after it can tell the two apart (see docs/placement.md, "Durable storage").
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, checkBatch, readBatchHeader } from '../../journal/index.js';

const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32LE(BATCH_MAGIC, 0);

/** Where the first invalid batch lies when a valid batch follows it; null for a clean or torn tail. Pure. */
export function damageBeforeValidBatch(bytes: Buffer, maxBatchBytes: number): { position: number; reason: string } | null {
  let position = 0;
  let reason = '';
  while (position < bytes.length) {
    const check = checkBatch(bytes, position, maxBatchBytes);
    if (check.kind !== 'valid') {
      reason = check.kind === 'invalid' ? check.reason : `batch claims ${check.needBytes} bytes, the file ends first`;
      break;
    }
    position += check.header.batchBytes;
  }
  if (position >= bytes.length) return null;
  // Search past the bad batch's own extent when its header still names one: its records may
  // hold any bytes, even a batch, and a torn write is confined to that extent.
  const header = bytes.length - position >= BATCH_HEADER_BYTES && bytes.readUInt32LE(position) === BATCH_MAGIC ? readBatchHeader(bytes, position) : null;
  const searchFrom = header !== null && header.batchBytes > 0 && header.batchBytes <= maxBatchBytes ? position + header.batchBytes : position + 1;
  for (let candidate = bytes.indexOf(MAGIC_BYTES, searchFrom); candidate !== -1; candidate = bytes.indexOf(MAGIC_BYTES, candidate + 1)) {
    if (checkBatch(bytes, candidate, maxBatchBytes).kind === 'valid') return { position, reason: `${reason}, and a valid batch follows at byte ${candidate}` };
  }
  return null;
}

/** Checks the newest segment file of the shard in `shardDirectory` (absent: nothing to check). */
export async function checkActiveSegment(shardDirectory: string, maxBatchBytes: number): Promise<{ segment: string; position: number; reason: string } | null> {
  let names: string[];
  try {
    names = (await readdir(shardDirectory)).filter((name) => name.endsWith('.log')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const newest = names.at(-1);
  if (newest === undefined) return null;
  const damage = damageBeforeValidBatch(await readFile(join(shardDirectory, newest)), maxBatchBytes);
  return damage === null ? null : { segment: newest, ...damage };
}
