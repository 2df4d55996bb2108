// Goal: the replication calls of the journal gRPC server refuse what they must with their codes
// (no token, unknown shard, shard never elected, node without replication, a shard not in fsync
// mode), readers of a replicated shard see nothing above the high watermark, and a deposed
// leader that is not told cannot get an append acknowledged. Method: three real journals on
// disk, each served by a JournalServer with its ReplicationNode, in this process; elections
// through runElection, the code `shardline ctl replica elect` runs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Server, ServerCredentials, status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import { isShardlineError, type ShardlineError } from '../errors.js';
import { shardlineErrorToStatus, statusToShardlineError } from '../server/grpc-status.js';
import { Journal } from '../journal.js';
import { journalCallMetadata, journalClient } from '../server/journal-credentials.js';
import { journalService } from '../server/journal-proto.js';
import { JournalServer } from '../server/journal-server.js';
import { recordsToWire, type RecordMessage } from '../server/wire.js';
import { runElection } from './election-run.js';
import { ReplicaClient } from './replica-client.js';
import { EPOCH_START_HEADER, ReplicationNode } from './replication-node.js';

const ACCESS = { clusterToken: 'unit-test-cluster-token-0123' };
const CALL_MS = 5_000;
const directories: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

interface TestNode {
  id: string;
  journal: Journal;
  server: JournalServer;
  replication: ReplicationNode;
  client: ReplicaClient;
}

async function cluster(shardConfig = '{}', serverLogger?: pino.Logger): Promise<{ nodes: TestNode[]; peers: Map<string, string> }> {
  const peers = new Map<string, string>();
  const nodes: TestNode[] = [];
  for (const id of ['1', '2', '3']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-replication-node-'));
    directories.push(directory);
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: ACCESS, logger: pino({ level: 'silent' }) });
    const server = await JournalServer.start({ journal, port: 0, replication, credentials: ACCESS, ...(serverLogger === undefined ? {} : { logger: serverLogger }) });
    peers.set(id, server.address);
    const node = { id, journal, server, replication, client: new ReplicaClient(server.address, ACCESS) };
    nodes.push(node);
    cleanups.push(async () => {
      node.client.close();
      await node.server.stop(0);
      await node.replication.close();
      await node.journal.close();
    });
    await node.client.call('createShard', { name: 's', configJson: shardConfig }, CALL_MS);
  }
  return { nodes, peers };
}

function code(expected: string) {
  return (error: unknown): boolean => isShardlineError(error) && error.code === expected;
}

function append(node: TestNode, text: string, acks?: string, timeoutMs = CALL_MS) {
  return node.client.call('append', { shard: 's', records: recordsToWire([{ key: null, value: Buffer.from(text), headers: [] }], 's'), ...(acks === undefined ? {} : { acks }) }, timeoutMs);
}

test("a stopping server answers its caught-up followers' held fetches at once instead of waiting them out", async () => {
  const warnings: string[] = [];
  const { nodes, peers } = await cluster('{}', pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) }));
  const result = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === result.leader) as TestNode;
  const appended = await append(leader, 'one');
  // Both followers caught up and told the HW: their next fetches are held (long polls of seconds).
  for (let poll = 0; poll < 200; poll += 1) {
    const status = await leader.client.call('replicaStatus', { shard: 's' }, CALL_MS);
    if (status.highWatermark > appended.baseOffset && status.followers.length === 2 && status.followers.every((follower) => follower.fetched === status.logEnd)) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  // A grace far below the long poll: a stop that waits for held fetches cancels them and warns.
  await leader.server.stop(1_000);
  assert.deepEqual(warnings.filter((line) => line.includes('did not finish in time')), [], 'every in-flight call finished within the grace');
});

test('ReplicaStatuses answers each shard as ReplicaStatus would, errors included, in the order asked', async () => {
  const { nodes, peers } = await cluster();
  const [one] = nodes as [TestNode];
  await one.client.call('createShard', { name: 'never-elected', configJson: '{}' }, CALL_MS);
  const before = await one.client.call('replicaStatuses', { shards: ['nope', 's', 'never-elected'] }, CALL_MS);
  assert.deepEqual(before.entries.map((entry) => [entry.shard, entry.errorCode]), [
    ['nope', 'SL_JOURNAL_SHARD_NOT_FOUND'],
    ['s', 'SL_REPL_NOT_REPLICATED'],
    ['never-elected', 'SL_REPL_NOT_REPLICATED'],
  ]);
  assert.ok(before.entries.every((entry) => entry.status === null && entry.errorMessage.includes(entry.shard)));

  const result = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  await append(nodes.find((node) => node.id === result.leader) as TestNode, 'one');
  for (const node of nodes) {
    const [entry] = (await node.client.call('replicaStatuses', { shards: ['s'] }, CALL_MS)).entries;
    const single = await node.client.call('replicaStatus', { shard: 's' }, CALL_MS);
    assert.equal(entry?.errorCode, '');
    // Offsets and the leader's follower progress may move between the two calls; the rest must agree.
    const settled = (status: typeof single | null | undefined) => ({ ...status, followers: [], highWatermark: 0, logEnd: 0 });
    assert.deepEqual(settled(entry?.status), settled(single));
    assert.equal(entry?.status?.role, node.id === result.leader ? 'leader' : 'follower');
  }
});

test('ReplicaClient.statuses asks shard by shard a node from before ReplicaStatuses (UNIMPLEMENTED)', async () => {
  const { nodes, peers } = await cluster();
  await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const [one] = nodes as [TestNode];
  // An older node: the journal service with ReplicaStatus and without ReplicaStatuses (grpc-js
  // answers UNIMPLEMENTED for a method the implementation lacks).
  const older = new Server();
  older.addService(journalService().service, {
    replicaStatus: (call: ServerUnaryCall<{ shard: string }, unknown>, callback: sendUnaryData<unknown>) => {
      try {
        callback(null, one.replication.status(call.request.shard));
      } catch (error) {
        callback(shardlineErrorToStatus(error as ShardlineError));
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) => older.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  const client = new ReplicaClient(`127.0.0.1:${port}`, ACCESS);
  cleanups.push(async () => {
    client.close();
    older.forceShutdown();
  });
  await assert.rejects(client.call('replicaStatuses', { shards: ['s'] }, CALL_MS), (error: unknown) => (error as { code?: number }).code === GrpcStatus.UNIMPLEMENTED);
  const entries = await client.statuses(['s', 'nope'], CALL_MS);
  assert.deepEqual(entries.map((entry) => [entry.shard, entry.errorCode, entry.status?.role]), [
    ['s', '', one.replication.status('s').role],
    ['nope', 'SL_JOURNAL_SHARD_NOT_FOUND', undefined],
  ]);
});

test('replication calls are refused with their codes', async () => {
  const { nodes, peers } = await cluster();
  const [one] = nodes as [TestNode];
  const stranger = new ReplicaClient(one.server.address, { clusterToken: 'not-the-token-at-all' });
  cleanups.push(async () => stranger.close());
  await assert.rejects(stranger.call('replicaStatus', { shard: 's' }, CALL_MS), code('SL_JOURNAL_UNAUTHENTICATED'));
  await assert.rejects(one.client.call('replicaStatus', { shard: 'nope' }, CALL_MS), code('SL_JOURNAL_SHARD_NOT_FOUND'));
  await assert.rejects(one.client.call('replicaFetch', { shard: 's', fromNode: '2', leaderEpoch: 1, fetchOffset: 0, durableOffset: 0 }, CALL_MS), code('SL_REPL_NOT_REPLICATED'));

  const result = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const follower = nodes.find((node) => node.id !== result.leader) as TestNode;
  await assert.rejects(append(follower, 'x'), code('SL_REPL_NOT_LEADER'));
  await assert.rejects(follower.client.call('replicaFetch', { shard: 's', fromNode: '1', leaderEpoch: result.epoch, fetchOffset: 0, durableOffset: 0 }, CALL_MS), code('SL_REPL_NOT_LEADER'));
  const leader = nodes.find((node) => node.id === result.leader) as TestNode;
  await assert.rejects(leader.client.call('replicaFetch', { shard: 's', fromNode: follower.id, leaderEpoch: result.epoch, fetchOffset: 1_000, durableOffset: 0 }, CALL_MS), code('SL_REPL_FETCH_OUT_OF_RANGE'));
  await assert.rejects(leader.client.call('append', { shard: 's', records: recordsToWire([{ key: null, value: null, headers: [] }], 's'), acks: 'maybe' }, CALL_MS), code('SL_JOURNAL_INVALID_ARGUMENT'));
  await assert.rejects(leader.client.call('truncateAfter', { shard: 's', offset: -1 }, CALL_MS), code('SL_REPL_REPLICATED_SHARD'));

  // A journal server without replication.
  const directory = await mkdtemp(join(tmpdir(), 'sl-replication-node-'));
  directories.push(directory);
  const plain = await Journal.open(directory, { retentionCheckMs: 0 });
  const plainServer = await JournalServer.start({ journal: plain, port: 0 });
  const plainClient = new ReplicaClient(plainServer.address, ACCESS);
  cleanups.push(async () => {
    plainClient.close();
    await plainServer.stop(0);
    await plain.close();
  });
  await plainClient.call('createShard', { name: 's', configJson: '{}' }, CALL_MS);
  await assert.rejects(plainClient.call('replicaAnnounce', { shard: 's', epoch: 1, replicas: ['1'] }, CALL_MS), code('SL_REPL_NOT_REPLICATED'));
});

test('a shard that is not in fsync mode cannot take an epoch', async () => {
  const { nodes } = await cluster(JSON.stringify({ durability: 'interval' }));
  await assert.rejects((nodes[0] as TestNode).client.call('replicaAnnounce', { shard: 's', epoch: 1, replicas: ['1', '2', '3'] }, CALL_MS), code('SL_REPL_NEEDS_FSYNC'));
});

test('readers see nothing above the HW; a leader-only ack is not yet readable; the record shows once a majority has it', async () => {
  const { nodes, peers } = await cluster();
  const result = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === result.leader) as TestNode;
  const followers = nodes.filter((node) => node !== leader);
  const committed = await append(leader, 'committed');
  // The followers stop following (as if down); the leader alone has the next record.
  for (const follower of followers) await follower.replication.close();
  const unsafe = await append(leader, 'leader-only', 'leader');
  assert.equal(unsafe.baseOffset, committed.baseOffset + 1);
  const hw = (await leader.client.call('replicaStatus', { shard: 's' }, CALL_MS)).highWatermark;
  assert.equal(hw, committed.baseOffset + 1, 'the HW stays below the record only the leader holds');
  const read = await leader.client.call('read', { shard: 's', fromOffset: 0 }, CALL_MS);
  const values = read.records.filter((record) => !record.headers.some((header) => header.key === EPOCH_START_HEADER)).map((record) => record.value?.toString());
  assert.deepEqual(values, ['committed']);
  assert.ok(read.records.every((record) => record.offset < hw), 'no record at or above the HW is served');
  assert.equal((await leader.client.call('highWatermark', { shard: 's' }, CALL_MS)).highWatermark, hw);

  // One follower comes back (a majority again): it resumes from replica.json and the record commits.
  const back = followers[0] as TestNode;
  back.replication = await ReplicationNode.open({ journal: back.journal, self: back.id, peers, credentials: ACCESS, logger: pino({ level: 'silent' }) });
  let visible = false;
  for (let poll = 0; poll < 100 && !visible; poll += 1) {
    const records = (await leader.client.call('read', { shard: 's', fromOffset: unsafe.baseOffset }, CALL_MS)).records;
    visible = records.some((record) => record.value?.toString() === 'leader-only');
    if (!visible) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(visible, 'the record is readable once a majority holds it durably');
  await back.replication.close();
});

test('a deposed leader that was not told cannot get an append acknowledged, is fenced by the newer epoch, then truncates its divergent suffix', async () => {
  const { nodes, peers } = await cluster();
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const old = nodes.find((node) => node.id === first.leader) as TestNode;
  await append(old, 'before');
  // An election the old leader does not hear of (a partition): the other two take epoch + 1.
  const others = new Map([...peers].filter(([id]) => id !== old.id));
  const second = await runElection({ shard: 's', replicas: others, credentials: ACCESS });
  assert.ok(second.epoch > first.epoch);
  // Its followers have left it: a quorum append never reaches the HW.
  await assert.rejects(append(old, 'stale', undefined, 1_500), (error: unknown) => (error as { code?: number }).code === 4 /* DEADLINE_EXCEEDED */);
  // A request under the newer epoch reaches it: from then on it refuses appends.
  await assert.rejects(old.client.call('replicaFetch', { shard: 's', fromNode: second.leader, leaderEpoch: second.epoch, fetchOffset: 0, durableOffset: 0 }, CALL_MS), code('SL_REPL_STALE_EPOCH'));
  await assert.rejects(append(old, 'stale again'), code('SL_REPL_NOT_LEADER'));

  // Its log holds 'stale' (written and synced under epoch 1, never acknowledged) where the new
  // leader has its epoch-start batch. Once an election reaches it, it truncates by epoch history
  // and ends up byte-identical to the leader.
  const third = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  assert.notEqual(third.leader, old.id, 'the replica with the older last epoch does not win');
  const leader = nodes.find((node) => node.id === third.leader) as TestNode;
  await append(leader, 'after');
  const batches = async (journal: Journal): Promise<Buffer[]> => (await journal.readBatches('s', 0)).batches;
  let same = false;
  for (let poll = 0; poll < 100 && !same; poll += 1) {
    const [mine, theirs] = await Promise.all([batches(old.journal), batches(leader.journal)]);
    same = mine.length === theirs.length && mine.every((batch, index) => batch.equals(theirs[index] as Buffer));
    if (!same) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(same, 'the old leader holds exactly the leader\'s batches');
  const values = (await old.journal.read('s', 0)).map((record) => record.value?.toString() ?? null);
  assert.ok(!values.includes('stale'), `the unacknowledged suffix is gone: ${JSON.stringify(values)}`);
  assert.ok(values.includes('before') && values.includes('after'));
});

/** A Tail call on `node` from `fromOffset`: the values it sends, as they come; cancelled at the end of the test. */
function tailValues(node: TestNode, fromOffset: number): string[] {
  const client = journalClient(node.server.address, ACCESS);
  const tail = journalService().methods.tail;
  const call = client.makeServerStreamRequest(tail.path, tail.requestSerialize, tail.responseDeserialize, { shard: 's', fromOffset }, journalCallMetadata(ACCESS), {});
  const values: string[] = [];
  call.on('data', (record: RecordMessage) => values.push(record.value?.toString() ?? ''));
  call.on('error', () => undefined);
  cleanups.push(async () => {
    call.cancel();
    client.close();
  });
  return values;
}

test('a tail waiting for the HW on a record that a truncation replaces sends the committed record, never the cut one', async () => {
  const { nodes, peers } = await cluster();
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const old = nodes.find((node) => node.id === first.leader) as TestNode;
  await append(old, 'before');
  const others = new Map([...peers].filter(([id]) => id !== old.id));
  await runElection({ shard: 's', replicas: others, credentials: ACCESS });
  // A tail on the old leader from its log end: 'stale' (synced there, never acknowledged: its
  // followers have left) is read at once and waits for an HW that does not come.
  const staleOffset = old.journal.info('s').nextOffset;
  const values = tailValues(old, staleOffset);
  await assert.rejects(append(old, 'stale', undefined, 1_500), (error: unknown) => (error as { code?: number }).code === 4 /* DEADLINE_EXCEEDED */);
  // An election reaches it: it follows, cuts 'stale' (the new leader's epoch-start batches stand
  // there now) and copies 'after'; its HW passes that offset, with another record there.
  const third = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === third.leader) as TestNode;
  assert.notEqual(leader, old);
  await append(leader, 'after');
  for (let poll = 0; poll < 200 && values.length === 0; poll += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(values, ['after'], 'the tail sends what the log holds once committed');
});

/** A Tail call on `node` from `fromOffset`: the values it sends, and `ended`, its error code (or 'end') once it ends. */
function tailToEnd(node: TestNode, fromOffset: number): { values: string[]; ended: Promise<string> } {
  const client = journalClient(node.server.address, ACCESS);
  const tail = journalService().methods.tail;
  const call = client.makeServerStreamRequest(tail.path, tail.requestSerialize, tail.responseDeserialize, { shard: 's', fromOffset }, journalCallMetadata(ACCESS), {});
  const values: string[] = [];
  call.on('data', (record: RecordMessage) => values.push(record.value?.toString() ?? ''));
  const ended = new Promise<string>((resolve) => {
    call.on('error', (error: ServiceError) => resolve(statusToShardlineError(error)?.code ?? `gRPC status ${error.code}`));
    call.on('end', () => resolve('end'));
  });
  cleanups.push(async () => {
    call.cancel();
    client.close();
  });
  return { values, ended };
}

/** How a tail ended, or 'still running' when it had not within TAIL_END_WAIT_MS (a deadline for a hang, not a speed check). */
const TAIL_END_WAIT_MS = 10_000;
async function endOf(tail: { ended: Promise<string> }): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still running'), TAIL_END_WAIT_MS);
  });
  try {
    return await Promise.race([tail.ended, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, probe: () => boolean | Promise<boolean>): Promise<void> {
  for (let poll = 0; poll < 200; poll += 1) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

// Goal: a tail on a replica that leaves the replica set (a change moved its replica elsewhere)
// ends with SL_REPL_NOT_REPLICATED, which a broker retries on the leader, instead of waiting
// for ever for a log and an HW that no longer move there. Before this a broker's tail of a data
// shard on the node a move left stayed there for good unless the node later became a replica
// again: its dispatch frontier stopped, and a session resumed on it never got what was
// published since.
test('a tail on a replica that leaves the set ends with SL_REPL_NOT_REPLICATED; once the node is back in the set, tails there go on', async () => {
  const { nodes, peers } = await cluster();
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === first.leader) as TestNode;
  const [leaving, staying] = nodes.filter((node) => node !== leader) as [TestNode, TestNode];
  await append(leader, 'a');
  const waiting = tailToEnd(leaving, 0);
  await until("'a' through the follower's tail", () => waiting.values.length === 1);
  // The switch of a change announces its epoch to the replica it removes too, with the new set
  // (the controller's alsoFence): from then on the removed node follows nobody.
  await leaving.client.call('replicaAnnounce', { shard: 's', epoch: first.epoch + 1, replicas: [leader.id, staying.id], ledBefore: true }, CALL_MS);
  assert.equal(await endOf(waiting), 'SL_REPL_NOT_REPLICATED', 'the tail waiting at the log end of the removed replica ends');
  assert.deepEqual(waiting.values, ['a']);
  assert.equal(await endOf(tailToEnd(leaving, 0)), 'SL_REPL_NOT_REPLICATED', 'a new tail there ends at once');
  // Reads there would answer a prefix that never grows: refused the same way, to go to the leader.
  await assert.rejects(leaving.client.call('read', { shard: 's', fromOffset: 0 }, CALL_MS), code('SL_REPL_NOT_REPLICATED'));
  await assert.rejects(leaving.client.call('readBatches', { shard: 's', fromOffset: 0 }, CALL_MS), code('SL_REPL_NOT_REPLICATED'));
  await assert.rejects(leaving.client.call('highWatermark', { shard: 's' }, CALL_MS), code('SL_REPL_NOT_REPLICATED'));

  // Back in the set (a later election names it): its readers are served again.
  const second = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  await append(nodes.find((node) => node.id === second.leader) as TestNode, 'b');
  const again = tailToEnd(leaving, 0);
  await until("'a' and 'b' through a tail on the node back in the set", () => again.values.length === 2);
  assert.deepEqual(again.values, ['a', 'b']);
  const read = await leaving.client.call('read', { shard: 's', fromOffset: 0 }, CALL_MS);
  assert.deepEqual(read.records.filter((record) => record.value !== undefined).map((record) => record.value?.toString()).slice(-2), ['a', 'b']);
});

// Goal: deleting a replica's copy (ReplicationNode.retire, once placement moved the replica
// elsewhere) ends its tails with SL_REPL_NOT_REPLICATED: the one waiting for the HW on a record
// above it (which waited for ever: nothing moves that HW once the replica is gone) and the one
// waiting at the log end (SL_JOURNAL_CLOSED before, from the deleted shard).
test("deleting a replica's copy ends its tails with SL_REPL_NOT_REPLICATED, the one waiting for the HW included", async () => {
  const { nodes } = await cluster();
  const result = await runElection({ shard: 's', replicas: new Map(nodes.map((node) => [node.id, node.server.address])), credentials: ACCESS });
  const leader = nodes.find((node) => node.id === result.leader) as TestNode;
  await append(leader, 'committed');
  // The followers stop (as if the set had moved on): the leader alone holds the next record, above its HW.
  for (const follower of nodes.filter((node) => node !== leader)) await follower.replication.close();
  const unsafe = await append(leader, 'leader-only', 'leader');
  const belowHighWatermark = tailToEnd(leader, 0);
  const atLogEnd = tailToEnd(leader, unsafe.lastOffset + 1);
  await until("'committed' through the tail", () => belowHighWatermark.values.length === 1);
  assert.equal(await leader.replication.retire('s', async () => true), true);
  assert.equal(leader.journal.hasShard('s'), false);
  assert.equal(await endOf(belowHighWatermark), 'SL_REPL_NOT_REPLICATED', 'the tail waiting for the HW ends');
  assert.equal(await endOf(atLogEnd), 'SL_REPL_NOT_REPLICATED', 'the tail waiting at the log end ends');
  assert.deepEqual(belowHighWatermark.values, ['committed'], 'nothing above the HW was sent');
});

// Goal: a node that deleted its copy of a shard and is then given the shard again (a
// replacement or a move back) starts from nothing in the same process: no Shard, replica state,
// epoch history, writer table or recent batches of the old copy is used. Method: the copy of a
// replica left out of an election is deleted; records go on without it; the shard is created
// there again and taken as a learner (announce, then lead with it among the learners, as the
// controller does); it must end byte-identical to the leader, and vote once a later election
// makes it a member.
test('a node that deleted its copy takes the shard afresh as a learner and ends with exactly the leader\'s batches', async () => {
  const { nodes, peers } = await cluster();
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const firstLeader = nodes.find((node) => node.id === first.leader) as TestNode;
  for (const value of ['a1', 'a2', 'a3']) await append(firstLeader, value);
  const removed = nodes.find((node) => node.id !== first.leader) as TestNode;
  const others = nodes.filter((node) => node !== removed);
  const second = await runElection({ shard: 's', replicas: new Map(others.map((node) => [node.id, node.server.address])), credentials: ACCESS });
  assert.equal(await removed.replication.retire('s', async () => true), true);
  const leader = nodes.find((node) => node.id === second.leader) as TestNode;
  for (const value of ['b1', 'b2', 'b3']) await append(leader, value);

  await removed.client.call('createShard', { name: 's', configJson: '{}' }, CALL_MS);
  const set = others.map((node) => node.id);
  await assert.rejects(removed.client.call('replicaAnnounce', { shard: 's', epoch: second.epoch, replicas: set, ledBefore: true, learner: true }, CALL_MS), code('SL_REPL_NOT_VOTER'));
  await leader.client.call('replicaLead', { shard: 's', epoch: second.epoch, leader: leader.id, replicas: set, learners: [removed.id] }, CALL_MS);
  await removed.client.call('replicaLead', { shard: 's', epoch: second.epoch, leader: leader.id, replicas: set, learners: [removed.id] }, CALL_MS);
  await append(leader, 'b4');
  const batches = async (node: TestNode): Promise<Buffer[]> => (await node.journal.readBatches('s', 0)).batches;
  const sameAsLeader = async (): Promise<boolean> => {
    const [mine, theirs] = await Promise.all([batches(removed), batches(leader)]);
    return mine.length === theirs.length && mine.every((batch, index) => batch.equals(theirs[index] as Buffer));
  };
  await until('the learner holding the leader\'s batches', sameAsLeader);
  assert.equal((await removed.client.call('replicaStatus', { shard: 's' }, CALL_MS)).voter, false, 'a learner does not vote');

  // It joins the set: it votes once it holds a batch of the new epoch, with every record.
  const third = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  assert.deepEqual(third.nonVoters, [removed.id]);
  const newest = nodes.find((node) => node.id === third.leader) as TestNode;
  assert.notEqual(newest, removed);
  await append(newest, 'c1');
  await until('the new member voting with the leader\'s log', async () => (await removed.client.call('replicaStatus', { shard: 's' }, CALL_MS)).voter && (await removed.journal.readBatches('s', 0)).batches.length === (await newest.journal.readBatches('s', 0)).batches.length);
  const [mine, theirs] = await Promise.all([batches(removed), batches(newest)]);
  assert.ok(mine.length === theirs.length && mine.every((batch, index) => batch.equals(theirs[index] as Buffer)), 'byte-identical to the leader');
  const values = (await removed.journal.read('s', 0)).map((record) => record.value?.toString());
  assert.deepEqual(values, ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'b4', 'c1']);
});

test("retention stays below the HW, and a follower whose next records the leader's retention deleted starts over at the leader's log start", async () => {
  const { nodes, peers } = await cluster(JSON.stringify({ segmentBytes: 1024, retentionBytes: 2048 }));
  const result = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === result.leader) as TestNode;
  const [behind, other] = nodes.filter((node) => node !== leader) as [TestNode, TestNode];
  const body = 'x'.repeat(200);
  for (let i = 0; i < 5; i += 1) await append(leader, `${body}${i}`);
  await behind.replication.close();
  // The other follower stops too: nothing more commits, so retention must keep what is above the HW.
  await other.replication.close();
  for (let i = 5; i < 40; i += 1) await append(leader, `${body}${i}`, 'leader');
  const hw = (await leader.client.call('replicaStatus', { shard: 's' }, CALL_MS)).highWatermark;
  await leader.journal.enforceRetention();
  assert.ok(leader.journal.info('s').startOffset <= hw, `retention kept the segment holding the HW ${hw}: start ${leader.journal.info('s').startOffset}`);

  // The other follower is back: everything commits, and retention deletes the old segments.
  other.replication = await ReplicationNode.open({ journal: other.journal, self: other.id, peers, credentials: ACCESS, logger: pino({ level: 'silent' }) });
  cleanups.push(() => other.replication.close());
  for (let i = 40; i < 45; i += 1) await append(leader, `${body}${i}`);
  assert.ok((await leader.journal.enforceRetention()) > 0, 'retention deleted segments once they were committed');
  const start = leader.journal.info('s').startOffset;
  assert.ok(start > behind.journal.info('s').nextOffset, `the leader starts at ${start}, past the lagging follower's end ${behind.journal.info('s').nextOffset}`);

  behind.replication = await ReplicationNode.open({ journal: behind.journal, self: behind.id, peers, credentials: ACCESS, logger: pino({ level: 'silent' }) });
  cleanups.push(() => behind.replication.close());
  await append(leader, `${body}last`);
  let same = false;
  for (let poll = 0; poll < 100 && !same; poll += 1) {
    const [mine, theirs] = await Promise.all([behind.journal.readBatches('s', start).catch(() => ({ batches: [] as Buffer[] })), leader.journal.readBatches('s', start)]);
    same = mine.batches.length === theirs.batches.length && mine.batches.every((batch, index) => batch.equals(theirs.batches[index] as Buffer));
    if (!same) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(same, "the follower holds the leader's batches from its log start on");
  assert.equal(behind.journal.info('s').startOffset, start);
});

/** Stops a node's server and replication and starts them again on a new port; `wipe` replaces its journal with an empty one (no shard). */
async function restartNode(node: TestNode, peers: Map<string, string>, wipe: boolean): Promise<void> {
  node.client.close();
  await node.server.stop(0);
  await node.replication.close();
  if (wipe) {
    await node.journal.close();
    const directory = await mkdtemp(join(tmpdir(), 'sl-replication-wiped-'));
    directories.push(directory);
    node.journal = await Journal.open(directory, { retentionCheckMs: 0 });
  }
  node.replication = await ReplicationNode.open({ journal: node.journal, self: node.id, peers, credentials: ACCESS, logger: pino({ level: 'silent' }) });
  node.server = await JournalServer.start({ journal: node.journal, port: 0, replication: node.replication, credentials: ACCESS });
  peers.set(node.id, node.server.address);
  node.client = new ReplicaClient(node.server.address, ACCESS);
}

test('a wiped replica does not vote until it has caught up: its answer cannot elect a replica that lacks acknowledged records', async () => {
  const { nodes, peers } = await cluster();
  const first = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  const leader = nodes.find((node) => node.id === first.leader) as TestNode;
  const [wiped, lagging] = nodes.filter((node) => node !== leader) as [TestNode, TestNode];
  await lagging.replication.close();
  const acked = ['a1', 'a2', 'a3'];
  for (const value of acked) await append(leader, value);
  // The replica that made those appends' majority loses its data directory and rejoins empty.
  await restartNode(wiped, peers, true);
  // The leader is gone: only the lagging replica and the wiped one answer.
  await leader.server.stop(0);
  await leader.replication.close();
  await assert.rejects(runElection({ shard: 's', replicas: peers, credentials: ACCESS, timeoutMs: 1_000 }), /only 1 of 3 replicas took the epoch/);
  // The election created the shard on the wiped node (settings from a replica that has it).
  assert.equal(wiped.journal.info('s').nextOffset, 0);
  assert.equal((await wiped.client.call('replicaStatus', { shard: 's' }, CALL_MS)).voter, false);

  // The leader is back: it is elected (greatest end), the wiped replica is told and catches up.
  await restartNode(leader, peers, false);
  await restartNode(lagging, peers, false);
  const second = await runElection({ shard: 's', replicas: peers, credentials: ACCESS });
  assert.equal(second.leader, leader.id);
  assert.deepEqual(second.nonVoters, [wiped.id]);
  let caughtUp = false;
  for (let poll = 0; poll < 100 && !caughtUp; poll += 1) {
    const [mine, theirs] = await Promise.all([wiped.client.call('replicaStatus', { shard: 's' }, CALL_MS), leader.client.call('replicaStatus', { shard: 's' }, CALL_MS)]);
    caughtUp = mine.voter && mine.logEnd === theirs.logEnd;
    if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(caughtUp, 'the wiped replica caught up and votes again');
  const [mine, theirs] = await Promise.all([wiped.journal.readBatches('s', 0), leader.journal.readBatches('s', 0)]);
  assert.ok(mine.batches.length === theirs.batches.length && mine.batches.every((batch, index) => batch.equals(theirs.batches[index] as Buffer)), 'byte-identical to the leader');

  // Now the old leader may go: the two others elect one that holds every acknowledged record.
  await leader.server.stop(0);
  await leader.replication.close();
  const third = await runElection({ shard: 's', replicas: peers, credentials: ACCESS, timeoutMs: 1_000 });
  const next = nodes.find((node) => node.id === third.leader) as TestNode;
  await append(next, 'a4');
  const values = (await next.client.call('read', { shard: 's', fromOffset: 0 }, CALL_MS)).records.map((record) => record.value?.toString());
  assert.deepEqual(values, [...acked, 'a4']);
});
