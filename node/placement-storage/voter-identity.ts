// Which voter of which cluster a placement data directory belongs to (`identity.json`). Raft's
// safety rests on a voter's log and vote being its own: a node started with another node's
// directory (a copied volume, a mixed-up mount) would answer in that voter's name with a vote
// that voter may already have given, and a directory of another cluster would bring a foreign
// log into this one. So the first open records the node id and cluster id, and every later
// open compares them before either store is touched (SL_RAFT_IDENTITY_MISMATCH).
//
// Written durably (a temporary file, fsync, rename, directory fsync): a crash leaves the old
// identity or the new one, never a torn file that the next open would refuse.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { PlacementStorageErrors } from './errors.js';

export const IDENTITY_FILE = 'identity.json';
const IDENTITY_VERSION = 1;

export interface VoterIdentity {
  readonly nodeId: number;
  readonly clusterId: string;
}

/** Records the identity in a fresh directory, or checks the one recorded; throws SL_RAFT_IDENTITY_MISMATCH. */
export async function claimDataDirectory(dataDir: string, identity: VoterIdentity): Promise<void> {
  const path = join(dataDir, IDENTITY_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await writeIdentity(dataDir, identity);
    return;
  }
  const recorded = parseIdentity(bytes);
  if (recorded === null) throw PlacementStorageErrors.identityMismatch.create({}, dataDir, `${IDENTITY_FILE} is not a version ${IDENTITY_VERSION} identity record`);
  if (recorded.nodeId !== identity.nodeId || recorded.clusterId !== identity.clusterId) {
    throw PlacementStorageErrors.identityMismatch.create(
      {},
      dataDir,
      `it belongs to node ${recorded.nodeId} of cluster "${recorded.clusterId}", not to node ${identity.nodeId} of cluster "${identity.clusterId}"`,
    );
  }
}

function parseIdentity(bytes: Buffer): VoterIdentity | null {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const record = value as { version?: unknown; nodeId?: unknown; clusterId?: unknown } | null;
  if (record === null || typeof record !== 'object' || record.version !== IDENTITY_VERSION) return null;
  if (typeof record.nodeId !== 'number' || !Number.isSafeInteger(record.nodeId) || typeof record.clusterId !== 'string') return null;
  return { nodeId: record.nodeId, clusterId: record.clusterId };
}

async function writeIdentity(dataDir: string, identity: VoterIdentity): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, IDENTITY_FILE);
  const draft = `${path}.new`;
  const file = await open(draft, 'w');
  try {
    await file.writeFile(JSON.stringify({ version: IDENTITY_VERSION, nodeId: identity.nodeId, clusterId: identity.clusterId }));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(draft, path);
  const directory = await open(dataDir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
