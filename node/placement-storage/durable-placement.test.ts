// The placement service on durable storage: three in-process PlacementServers on loopback, each
// over openDurablePlacement in its own temporary directory (Raft log on a journal shard with
// fsync, applied state in LevelDB), with real gRPC clients.
//
// Goals and methods:
// - Restart of the whole group: writes (with snapshots every few entries, so the log is
//   compacted through the adapter), all three servers stopped and their storage closed, then
//   reopened from the same directories: the state read back is the one written, a leader is
//   elected and writes go on; a write whose answer was lost before the stop, retried after it,
//   is answered from the session table the voters reloaded, not applied again.
// - A write whose answer was lost is applied once: a raw Propose commits on every voter, its
//   leader is stopped, and a PlacementClient with the same client id and sequence retries on
//   the new leader; it must get the first result back and the shard's epoch must not move (a
//   second apply of the compare-and-set would be refused stale-epoch and bump the revision).
// - Damaged storage refuses to open with its code (and so is never served): a flipped byte in a
//   committed batch of the Raft log, an applied index past the log's commit, unreadable
//   applied metadata, state bytes that do not restore; the log's files stay as they were. So
//   does a directory opened as another voter or cluster. An applied state that is merely
//   behind (gone whole) is not damage: the voter restarts from the log's snapshot.
import assert from 'node:assert/strict';
import { cp, mkdtemp, open as openFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { ClassicLevel } from 'classic-level';
import { checkBatch } from '../../journal/index.js';
import { CLUSTER_ID, CLUSTER_METADATA_KEY, CLUSTER_TOKEN, PlacementClient, TOKEN_METADATA_KEY, placementService, startCluster, waitFor, type TestCluster } from '../../placement/service/testing.js';
import { openDurablePlacement, type DurablePlacement } from './durable-placement.js';
import { RAFT_LOG_SHARD } from './journal-raft-log.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function freshDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-durable-placement-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

interface DurableCluster {
  readonly cluster: TestCluster;
  readonly storages: DurablePlacement[];
  /** Stops every server, then closes its storage. */
  stop(): Promise<void>;
}

/** Snapshots every 5 applied entries, 2 kept behind: the restart goes through compacted logs. */
async function startDurableCluster(directories: readonly string[]): Promise<DurableCluster> {
  const storages = await Promise.all(directories.map((dataDir, i) => openDurablePlacement({ dataDir, nodeId: i + 1, clusterId: CLUSTER_ID })));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await cluster.stop();
    await Promise.all(storages.map((storage) => storage.close()));
  };
  const cluster = await startCluster({
    size: directories.length,
    replica: { snapshotEntries: 5, snapshotKeepEntries: 2 },
    persistence: (nodeId) => storages[nodeId - 1]!,
  });
  cleanups.push(stop);
  return { cluster, storages, stop };
}

const client = (cluster: TestCluster, clientId?: string, first?: string) => {
  const addresses = [...cluster.peers.values()];
  const ordered = first === undefined ? addresses : [first, ...addresses.filter((address) => address !== first)];
  const placement = new PlacementClient({ addresses: ordered, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, ...(clientId === undefined ? {} : { clientId }) });
  cleanups.push(() => placement.close());
  return placement;
};

const HOUR = 3_600_000;

test('a durable group stopped whole and reopened from its directories keeps its state, elects a leader and takes writes', async () => {
  const directories = [await freshDirectory(), await freshDirectory(), await freshDirectory()];
  const first = await startDurableCluster(directories);
  await waitFor('a first leader', () => first.cluster.leader());
  const writer = client(first.cluster);
  for (const nodeId of ['j1', 'j2', 'j3']) {
    const { result } = await writer.propose({ type: 'register-node', nodeId, roles: ['journal'], addresses: { journal: `127.0.0.1:${nodeId.slice(1)}` }, leaseMs: HOUR });
    assert.equal(result.status, 'ok', JSON.stringify(result));
  }
  assert.equal((await writer.propose({ type: 'create-shard', shard: 's0', replicas: ['j1', 'j2', 'j3'] })).result.status, 'ok');
  assert.deepEqual((await writer.propose({ type: 'set-shard-leader', shard: 's0', leader: 'j2', expectedEpoch: 0 })).result.status, 'ok');
  for (let i = 1; i <= 12; i++) assert.equal((await writer.propose({ type: 'set-setting', key: `k${i}`, value: i })).result.status, 'ok');
  // A client whose answer is lost across the restart: its session must come back from disk.
  await proposeUnanswered(first.cluster, { type: 'set-setting', clientId: 'restarted-client', sequence: 1, key: 'once', value: 1 });
  const before = await writer.read();
  // Every voter applied it all (so each one's LevelDB and log hold it), and compacted on the way.
  await waitFor('every voter to apply the last write', () => (first.cluster.servers.every((server) => server.status().appliedIndex >= before.appliedIndex) ? true : undefined));
  for (const storage of first.storages) assert.ok(storage.raftPersistence.storage.firstIndex() > 1, `a voter's log was not compacted: first index ${storage.raftPersistence.storage.firstIndex()}`);
  await first.stop();

  const second = await startDurableCluster(directories);
  for (const storage of second.storages) assert.ok(storage.recovered.appliedIndex > 0 && storage.recovered.commit >= before.appliedIndex, JSON.stringify(storage.recovered));
  await waitFor('a leader after the restart', () => second.cluster.leader());
  const reader = client(second.cluster);
  const after = await reader.read();
  assert.equal(after.revision, before.revision);
  assert.deepEqual({ nodes: after.nodes, shards: after.shards, maps: after.maps, settings: after.settings }, { nodes: before.nodes, shards: before.shards, maps: before.maps, settings: before.settings });
  assert.equal(after.shards?.find((shard) => shard.name === 's0')?.leaderEpoch, 1);
  const retried = await client(second.cluster, 'restarted-client').propose({ type: 'set-setting', key: 'once', value: 1 });
  assert.deepEqual(retried.result, { status: 'ok', revision: before.settings?.find((setting) => setting.key === 'once')?.revision }, 'the retry after the restart was applied again');
  const { result } = await reader.propose({ type: 'set-setting', key: 'after-restart', value: true });
  assert.deepEqual(result, { status: 'ok', revision: before.revision + 1 });
  await second.stop();
});

test('a compare-and-set whose answer was lost with its leader is applied once when retried with the same client id and sequence', async () => {
  const directories = [await freshDirectory(), await freshDirectory(), await freshDirectory()];
  const durable = await startDurableCluster(directories);
  const setup = client(durable.cluster);
  await setup.propose({ type: 'register-node', nodeId: 'j1', roles: ['journal'], addresses: { journal: '127.0.0.1:1' }, leaseMs: HOUR });
  await setup.propose({ type: 'register-node', nodeId: 'j2', roles: ['journal'], addresses: { journal: '127.0.0.1:2' }, leaseMs: HOUR });
  await setup.propose({ type: 'create-shard', shard: 's0', replicas: ['j1', 'j2'] });

  // Sequence 1 of a client that will never read its answer.
  const clientId = 'lost-answer-client';
  const command = { type: 'set-shard-leader', shard: 's0', leader: 'j1', expectedEpoch: 0 } as const;
  const { inFlight, revision: appliedRevision } = await proposeUnanswered(durable.cluster, { ...command, clientId, sequence: 1 });
  // The leader goes with the answer possibly still on its way.
  const leader = await waitFor('the leader', () => durable.cluster.leader());
  await leader.stop(200);
  await Promise.all(inFlight);

  const retrying = client(durable.cluster, clientId, leader.address);
  const retry = await retrying.propose(command);
  assert.equal(retry.sequence, 1);
  assert.deepEqual(retry.result, { status: 'ok', revision: appliedRevision, leaderEpoch: 1 }, 'the retry was applied again instead of answered from the session');
  const state = await retrying.read(['shards']);
  assert.notEqual((await waitFor('a new leader', () => durable.cluster.leader())).nodeId, leader.nodeId);
  assert.equal(state.revision, appliedRevision, 'the retry moved the revision');
  assert.equal(state.shards?.find((shard) => shard.name === 's0')?.leaderEpoch, 1);
  await durable.stop();
});

/**
 * Sends `command` raw to the server leading now, and again to a new leader if leadership moved
 * before it took effect, until every running voter applied it; never reads an answer. Returns
 * the calls (settled or not) and the revision the command took effect at (nothing else is
 * proposed meanwhile in these tests).
 */
async function proposeUnanswered(cluster: TestCluster, command: object): Promise<{ inFlight: Promise<unknown>[]; revision: number }> {
  const before = (await waitFor('a leader', () => cluster.leader())).status().revision;
  const inFlight: Promise<unknown>[] = [];
  for (let attempt = 1; attempt <= 10; attempt++) {
    const leader = await waitFor('a leader', () => cluster.leader());
    inFlight.push(rawPropose(leader.address, command).catch(() => undefined));
    for (let poll = 0; poll < 50; poll++) {
      if (cluster.servers.every((server) => !server.running || server.status().revision > before)) return { inFlight, revision: before + 1 };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  assert.fail(`${JSON.stringify(command)} was not applied on every voter after 10 attempts`);
}

/** Propose through a bare gRPC client, as a PlacementClient that then lost the answer would. */
async function rawPropose(address: string, command: object): Promise<unknown> {
  const raw = new Client(address, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set(TOKEN_METADATA_KEY, CLUSTER_TOKEN);
  metadata.set(CLUSTER_METADATA_KEY, CLUSTER_ID);
  const method = placementService().methods.propose;
  try {
    return await new Promise((resolve, reject) => raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, { command: Buffer.from(JSON.stringify(command)) }, metadata, { deadline: Date.now() + 5_000 }, (error, value) => (error === null ? resolve(value) : reject(error))));
  } finally {
    raw.close();
  }
}

test('damaged durable storage is refused with its code and left as it was', async () => {
  // One voter's directory with a compacted log and an applied state, to damage copies of.
  const source = await freshDirectory();
  const single = await openDurablePlacement({ dataDir: source, nodeId: 1, clusterId: CLUSTER_ID });
  const solo = await startCluster({ size: 1, replica: { snapshotEntries: 5, snapshotKeepEntries: 2 }, persistence: () => single });
  await waitFor('the single voter to lead', () => solo.leader());
  const writer = client(solo);
  for (let i = 1; i <= 9; i++) await writer.propose({ type: 'set-setting', key: `k${i}`, value: i });
  const commit = solo.servers[0]!.status().commitIndex;
  await solo.stop();
  await single.close();

  const damaged = async (damage: (directory: string) => Promise<void>): Promise<string> => {
    const directory = await freshDirectory();
    await cp(source, directory, { recursive: true });
    await damage(directory);
    return directory;
  };
  const refused = async (directory: string, code: string): Promise<void> => {
    const files = await snapshotFiles(directory);
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(openDurablePlacement({ dataDir: directory, nodeId: 1, clusterId: CLUSTER_ID }), (error: { code?: string; message?: string }) => {
        assert.equal(error.code, code, `open ${attempt}: ${error.message}`);
        return true;
      });
    }
    assert.deepEqual(await snapshotFiles(directory), files, 'a refused open changed the Raft log');
  };

  // A flipped byte inside the first batch of the newest segment, with saves after it.
  await refused(await damaged(async (directory) => {
    const shardDirectory = join(directory, 'raft', 'shards', RAFT_LOG_SHARD);
    const newest = join(shardDirectory, (await readdir(shardDirectory)).filter((name) => name.endsWith('.log')).sort().at(-1)!);
    const bytes = await readFile(newest);
    const firstBatch = checkBatch(bytes, 0, bytes.length);
    assert.ok(firstBatch.kind === 'valid' && firstBatch.header.batchBytes < bytes.length, 'the newest segment holds one batch only');
    const file = await openFile(newest, 'r+');
    await file.write(Buffer.from([bytes[firstBatch.header.batchBytes - 3]! ^ 0x10]), 0, 1, firstBatch.header.batchBytes - 3);
    await file.close();
  }), 'SL_RAFT_LOG_CORRUPT');

  // The applied state's index rewritten past what the log committed.
  await refused(await damaged((directory) => rewriteApplied(directory, 'applied', (meta) => Buffer.from(JSON.stringify({ ...JSON.parse(meta.toString()), appliedIndex: commit + 5 })))), 'SL_RAFT_APPLIED_BEYOND_COMMIT');
  // Its metadata record, and the state bytes themselves, made unreadable.
  await refused(await damaged((directory) => rewriteApplied(directory, 'applied', (meta) => meta.subarray(0, meta.length - 4))), 'SL_APPLIED_STATE_CORRUPT');
  await refused(await damaged((directory) => rewriteApplied(directory, 'state', (state) => Buffer.concat([state.subarray(0, 10), Buffer.from('#')]))), 'SL_APPLIED_STATE_CORRUPT');

  // Another voter's directory, another cluster's, and an unreadable identity file.
  const refusedAs = async (nodeId: number, clusterId: string, directory = source): Promise<void> => {
    await assert.rejects(openDurablePlacement({ dataDir: directory, nodeId, clusterId }), (error: { code?: string; message?: string }) => {
      assert.equal(error.code, 'SL_RAFT_IDENTITY_MISMATCH', error.message);
      return true;
    });
  };
  await refusedAs(2, CLUSTER_ID);
  await refusedAs(1, 'another-cluster');
  await refusedAs(1, CLUSTER_ID, await damaged((directory) => writeFile(join(directory, 'identity.json'), '{"version":1,"nodeId":')));

  // The undamaged source still opens and serves what it held.
  const reopened = await openDurablePlacement({ dataDir: source, nodeId: 1, clusterId: CLUSTER_ID });
  assert.equal(reopened.appliedPersistence.load().state.settings.get('k9')?.value, 9);
  await reopened.close();

  // Not damage: an applied state that lost everything (a power cut before LevelDB wrote, here
  // the whole store gone) restarts from the log's snapshot and replays the entries after it.
  const lagging = await damaged((directory) => rm(join(directory, 'applied'), { recursive: true }));
  const restarted = await openDurablePlacement({ dataDir: lagging, nodeId: 1, clusterId: CLUSTER_ID });
  assert.ok(restarted.recovered.appliedIndex > 0 && restarted.recovered.appliedIndex < commit, JSON.stringify(restarted.recovered));
  const again = await startCluster({ size: 1, persistence: () => restarted });
  await waitFor('the single voter to lead again', () => again.leader());
  const settings = (await client(again).read(['settings'])).settings?.map((setting) => [setting.key, setting.value]);
  await again.stop();
  await restarted.close();
  assert.deepEqual(settings, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => [`k${i}`, i]));
});

async function rewriteApplied(directory: string, key: string, change: (value: Buffer) => Buffer): Promise<void> {
  const db = new ClassicLevel<string, Buffer>(join(directory, 'applied'), { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  const value = await db.get(key);
  assert.ok(value !== undefined, `no ${key} record in the applied state`);
  await db.put(key, change(value));
  await db.close();
}

/**
 * Every file of the Raft log with its bytes. LevelDB rewrites its own files on every open (its
 * write-ahead log becomes a table), so the applied state is shown untouched by a second refusal.
 */
async function snapshotFiles(directory: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(join(directory, 'raft'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'LOCK') continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path, (await readFile(path)).toString('base64'));
  }
  return files;
}
