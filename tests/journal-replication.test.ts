// Goal: a shard replicated on three real journal processes keeps every append acknowledged
// with acks=quorum through a SIGKILL of its leader: the new leader (chosen by `shardline ctl
// replica elect`) holds them all, in order, and so does the killed node once it restarts,
// truncates its divergent suffix and catches up; a deposed leader's appends and a stale epoch's
// fetch are refused. Method: `shardline start --roles journal --replica-peers ...` three times on
// loopback, a client appending over the journal gRPC API with a few appends in flight, the kill
// in the middle of the stream, then reads from every node compared with the acknowledged list.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, test } from 'node:test';
import { ReplicaClient, EPOCH_START_HEADER, journalWire, isShardlineError } from '../journal/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';

const TOKEN = 'replication-test-token-0123456789';
const SHARD = 'orders';
const IN_FLIGHT = 4;
/** Appends before the kill, and after the failover: bounded in count (and each call by its deadline). */
const BEFORE_KILL = 120;
const AFTER_FAILOVER = 80;
const CALL_MS = 10_000;

interface Node {
  id: string;
  port: number;
  address: string;
  dataDir: string;
  process: CliProcess | null;
  client: ReplicaClient;
}

after(cleanup);

async function startNode(node: Node, peers: string): Promise<void> {
  const cli = runCli(['start', '--roles', 'journal', '--data-dir', node.dataDir, '--grpc-port', String(node.port), '--admin-port', '0', '--node-id', node.id, '--replica-peers', peers], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  await waitForLogField(cli, 'journalGrpc');
  node.process = cli;
}

async function killNode(node: Node): Promise<void> {
  const process = node.process as CliProcess;
  process.child.kill('SIGKILL');
  const exit = await process.exited;
  assert.equal(exit.signal, 'SIGKILL');
  node.process = null;
}

async function elect(journals: string): Promise<{ epoch: number; leader: string }> {
  const run = await runCtl(['replica', 'elect', '--shard', SHARD, '--journals', journals, '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  assert.equal(run.code, 0, `elect: ${run.stdout}${run.stderr}`);
  return JSON.parse(run.stdout) as { epoch: number; leader: string };
}

function value(i: number): Buffer {
  return Buffer.from(`record-${i}`);
}

/** Every record of the shard on a node (records above its HW are not served; epoch-start batches never are). */
async function readAll(node: Node): Promise<{ offset: number; value: string }[]> {
  const out: { offset: number; value: string }[] = [];
  let offset = 0;
  for (let page = 0; page < 1_000; page += 1) {
    const response = await node.client.call('read', { shard: SHARD, fromOffset: offset, maxRecords: 500 }, CALL_MS);
    if (response.records.length === 0) return out;
    for (const message of response.records) {
      const record = journalWire.recordFromWire(message);
      // Readers never see the epoch-start batches (control batches).
      assert.ok(!record.headers.some((header) => header.key === EPOCH_START_HEADER), `offset ${record.offset} is an epoch start`);
      out.push({ offset: record.offset, value: record.value?.toString() ?? '' });
      offset = record.offset + 1;
    }
  }
  assert.fail('read did not reach the end in 1,000 pages');
}

/**
 * Appends record-<from>.. one by one with IN_FLIGHT outstanding, until `count` are acknowledged
 * or the node stops answering; `onAck` sees each acknowledgement. Returns the acknowledged ones.
 */
async function appendStream(node: Node, from: number, count: number, onAck: (acked: number) => void, acks?: string): Promise<{ offset: number; value: string }[]> {
  const acked: { offset: number; value: string }[] = [];
  let next = from;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < from + count) {
      const i = next;
      next += 1;
      try {
        const result = await node.client.call('append', { shard: SHARD, records: journalWire.recordsToWire([{ key: null, value: value(i), headers: [] }], SHARD), ...(acks === undefined ? {} : { acks }) }, CALL_MS);
        acked.push({ offset: result.baseOffset, value: value(i).toString() });
        onAck(acked.length);
      } catch (error) {
        if (process.env.REPL_TEST_DEBUG !== undefined) console.error('append failed', error);
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return acked;
}

async function status(node: Node): Promise<journalWire.ReplicaStatusResponse> {
  return node.client.call('replicaStatus', { shard: SHARD }, CALL_MS);
}

async function threeNodes(): Promise<{ nodes: Node[]; peers: string; byId: (id: string) => Node }> {
  const nodes: Node[] = [];
  for (const id of ['1', '2', '3']) {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    nodes.push({ id, port, address, dataDir: await scratchDirectory('shardline-repl-'), process: null, client: new ReplicaClient(address, { clusterToken: TOKEN }) });
  }
  const peers = nodes.map((node) => `${node.id}@${node.address}`).join(',');
  return { nodes, peers, byId: (id: string): Node => nodes.find((node) => node.id === id) as Node };
}

async function waitCaughtUp(node: Node, leader: Node, nodes: Node[]): Promise<void> {
  let caughtUp = false;
  for (let poll = 0; poll < 300 && !caughtUp; poll += 1) {
    const [mine, theirs] = await Promise.all([status(node), status(leader)]);
    caughtUp = mine.role !== 'idle' && mine.logEnd === theirs.logEnd && mine.highWatermark === theirs.highWatermark && theirs.highWatermark === theirs.logEnd;
    if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(caughtUp, `node ${node.id} caught up: ${JSON.stringify(await Promise.all(nodes.map(status)))}`);
}

test('acks=quorum appends survive a SIGKILL of the leader; the old leader truncates, catches up and is fenced', async (t) => {
  const { nodes, peers, byId } = await threeNodes();
  try {
    await Promise.all(nodes.map((node) => startNode(node, peers)));
    for (const node of nodes) await node.client.call('createShard', { name: SHARD, configJson: '{}' }, CALL_MS);
    const first = await elect(peers);
    const leader = byId(first.leader);

    // The kill lands in the middle of the stream, with appends in flight.
    let killing: Promise<void> | null = null;
    const beforeKill = await appendStream(leader, 0, BEFORE_KILL * 10, (acked) => {
      if (acked === BEFORE_KILL && killing === null) killing = killNode(leader);
    });
    await killing;
    assert.ok(beforeKill.length >= BEFORE_KILL, `${beforeKill.length} acknowledged before the kill`);

    const second = await elect(peers);
    assert.notEqual(second.leader, leader.id, 'a surviving replica leads');
    assert.ok(second.epoch > first.epoch);
    const newLeader = byId(second.leader);
    const afterFailover = await appendStream(newLeader, 100_000, AFTER_FAILOVER, () => undefined);
    assert.equal(afterFailover.length, AFTER_FAILOVER, 'the new leader acknowledges with one replica down');

    // A fetch under the old epoch is fenced.
    await assert.rejects(newLeader.client.call('replicaFetch', { shard: SHARD, fromNode: leader.id, leaderEpoch: first.epoch, fetchOffset: 0, durableOffset: 0 }, CALL_MS), (error: unknown) => isShardlineError(error) && error.code === 'SL_REPL_STALE_EPOCH');

    // The old leader restarts: it does not lead its old epoch again, so its appends are refused.
    await startNode(leader, peers);
    await assert.rejects(leader.client.call('append', { shard: SHARD, records: journalWire.recordsToWire([{ key: null, value: Buffer.from('stale'), headers: [] }], SHARD) }, CALL_MS), (error: unknown) => isShardlineError(error) && error.code === 'SL_REPL_NOT_LEADER');

    // The next election reaches it: it follows, truncates what diverges and catches up.
    const third = await elect(peers);
    const finalLeader = byId(third.leader);
    const acknowledged = [...beforeKill, ...afterFailover];
    let caughtUp = false;
    for (let poll = 0; poll < 300 && !caughtUp; poll += 1) {
      const [mine, theirs] = await Promise.all([status(leader), status(finalLeader)]);
      caughtUp = mine.role !== 'idle' && mine.logEnd === theirs.logEnd && mine.highWatermark === theirs.highWatermark && theirs.highWatermark === theirs.logEnd;
      if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(caughtUp, `the restarted node caught up: ${JSON.stringify(await Promise.all(nodes.map(status)))}`);
    // Whether the kill left the old leader a divergent tail depends on timing (the in-process
    // test truncates deterministically); say which case this run was.
    const truncations = (leader.process as CliProcess).lines.filter((line) => line.includes('truncating a divergent suffix')).length;
    t.diagnostic(`the restarted old leader truncated ${truncations} time(s)`);

    for (const node of nodes) {
      const records = await readAll(node);
      const byOffset = new Map(records.map((record) => [record.offset, record.value]));
      for (const ack of acknowledged) assert.equal(byOffset.get(ack.offset), ack.value, `node ${node.id}: acknowledged ${ack.value} at offset ${ack.offset}`);
      // In order: the acknowledged records appear in offset order as they were appended (one
      // appender, numbered values).
      const numbers = records.map((record) => Number(record.value.slice('record-'.length)));
      const kept = numbers.filter((n) => acknowledged.some((ack) => ack.value === `record-${n}`));
      assert.deepEqual(kept, [...kept].sort((a, b) => a - b), `node ${node.id}: acknowledged records in order`);
    }
    // Every replica holds the same records below the HW.
    const [one, two, three] = await Promise.all(nodes.map(readAll));
    assert.deepEqual(one, two);
    assert.deepEqual(two, three);
  } finally {
    for (const node of nodes) {
      node.client.close();
      if (node.process !== null) await killNode(node);
    }
  }
});

test('acks=leader is unsafe: records only the killed leader held are truncated when it rejoins; restarted followers resume following', async () => {
  const { nodes, peers, byId } = await threeNodes();
  try {
    await Promise.all(nodes.map((node) => startNode(node, peers)));
    for (const node of nodes) await node.client.call('createShard', { name: SHARD, configJson: '{}' }, CALL_MS);
    const first = await elect(peers);
    const leader = byId(first.leader);
    const followers = nodes.filter((node) => node !== leader);
    const quorum = await appendStream(leader, 0, 20, () => undefined);
    assert.equal(quorum.length, 20);
    // Both followers die: the leader alone acknowledges acks=leader appends, which nobody else has.
    for (const follower of followers) await killNode(follower);
    const leaderOnly = await appendStream(leader, 1_000, 5, () => undefined, 'leader');
    assert.equal(leaderOnly.length, 5, 'acks=leader answers without a majority');
    await killNode(leader);

    // The followers restart and the two of them elect a leader without the old one.
    for (const follower of followers) await startNode(follower, peers);
    const second = await elect(peers);
    assert.notEqual(second.leader, leader.id);
    const newLeader = byId(second.leader);
    const after = await appendStream(newLeader, 2_000, 10, () => undefined);
    assert.equal(after.length, 10);

    // The old leader comes back; the next election makes it follow: it must cut its 5 records.
    await startNode(leader, peers);
    const third = await elect(peers);
    const finalLeader = byId(third.leader);
    assert.notEqual(finalLeader, leader);
    await waitCaughtUp(leader, finalLeader, nodes);
    const truncations = (leader.process as CliProcess).lines.filter((line) => line.includes('truncating a divergent suffix')).length;
    assert.ok(truncations >= 1, 'the old leader truncated its divergent suffix');
    const [mine, theirs] = await Promise.all([readAll(leader), readAll(finalLeader)]);
    assert.deepEqual(mine, theirs, 'the old leader holds what the leader holds');
    const values = new Set(mine.map((record) => record.value));
    for (const ack of [...quorum, ...after]) assert.ok(values.has(ack.value), `quorum-acknowledged ${ack.value} kept`);
    for (const ack of leaderOnly) assert.ok(!values.has(ack.value), `leader-only ${ack.value} is gone: acks=leader is unsafe`);
  } finally {
    for (const node of nodes) {
      node.client.close();
      if (node.process !== null) await killNode(node);
    }
  }
});

/** The node's stored batches below its HW, as ReadBatches serves them. */
async function batchesOf(node: Node): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let offset = 0;
  for (let page = 0; page < 1_000; page += 1) {
    const response = await node.client.call('readBatches', { shard: SHARD, fromOffset: offset, maxBytes: 1024 * 1024 }, CALL_MS);
    if (response.batches.length === 0) return out;
    out.push(...response.batches);
    offset = response.next;
  }
  assert.fail('readBatches did not reach the end in 1,000 pages');
}

test('a journal node whose data directory is wiped rejoins without a vote, catches up byte-identical, and then the old leader can be lost', async () => {
  const { nodes, peers, byId } = await threeNodes();
  try {
    await Promise.all(nodes.map((node) => startNode(node, peers)));
    for (const node of nodes) await node.client.call('createShard', { name: SHARD, configJson: '{}' }, CALL_MS);
    const first = await elect(peers);
    const leader = byId(first.leader);
    const wiped = nodes.find((node) => node !== leader) as Node;
    const acknowledged = await appendStream(leader, 0, 60, () => undefined);
    assert.equal(acknowledged.length, 60);

    await killNode(wiped);
    await rm(wiped.dataDir, { recursive: true, force: true });
    await startNode(wiped, peers);
    acknowledged.push(...(await appendStream(leader, 10_000, 40, () => undefined)));
    assert.equal(acknowledged.length, 100, 'the leader and the other follower make a majority');

    const second = await elect(peers);
    // The election creates the shard on it (it had none), and it takes the epoch without a vote.
    assert.deepEqual((second as { recreated?: string[] }).recreated, [wiped.id]);
    assert.deepEqual((second as { nonVoters?: string[] }).nonVoters, [wiped.id], 'the wiped node takes the epoch without a vote');
    const current = byId(second.leader);
    assert.notEqual(current, wiped);
    // `ctl replica status --watch` returns once every follower has reached the leader's log end
    // (a JSON line per change, stdout not being a terminal: no bar).
    const watch = await runCtl(['replica', 'status', '--shard', SHARD, '--journals', peers, '--watch', '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.equal(watch.code, 0, watch.stderr);
    const lines = watch.stdout.trim().split('\n');
    const final = JSON.parse(lines.at(-1) as string) as (journalWire.ReplicaStatusResponse & { address: string })[];
    const leaderView = final.find((row) => row.role === 'leader');
    assert.deepEqual(leaderView?.followers.map((follower) => [follower.node, follower.recordsBehind, follower.bytesBehind]).sort(), nodes.filter((node) => node !== current).map((node) => [node.id, 0, 0]).sort());
    const text = await runCtl(['replica', 'status', '--shard', SHARD, '--journals', peers], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.match(text.stdout, new RegExp(`follower ${wiped.id}: log end \\d+ of \\d+ \\(hw \\d+\\), caught up`));
    acknowledged.push(...(await appendStream(current, 20_000, 40, () => undefined)));
    for (const node of nodes) if (node !== current) await waitCaughtUp(node, current, nodes);
    const rejoined = await status(wiped);
    assert.equal(rejoined.voter, true, 'it votes again once caught up');

    // Byte-identical below the HW on all three.
    const [one, ...others] = (await Promise.all(nodes.map(batchesOf))) as [Buffer[], ...Buffer[][]];
    assert.ok(one.length > 0);
    for (const [index, other] of others.entries()) {
      const name = nodes[index + 1]?.id;
      assert.equal(other.length, one.length, `node ${name}: batch count`);
      other.forEach((batch, index) => assert.ok(batch.equals(one[index] as Buffer), `node ${name}: batch ${index} differs`));
    }

    // The leader is lost: the other two (the wiped one among them) elect one that has everything.
    await killNode(current);
    const third = await elect(peers);
    const last = byId(third.leader);
    assert.notEqual(last, current);
    acknowledged.push(...(await appendStream(last, 30_000, 10, () => undefined)));
    const survivors = nodes.filter((candidate) => candidate !== current);
    for (const node of survivors) if (node !== last) await waitCaughtUp(node, last, survivors);
    for (const node of survivors) {
      const byOffset = new Map((await readAll(node)).map((record) => [record.offset, record.value]));
      for (const ack of acknowledged) assert.equal(byOffset.get(ack.offset), ack.value, `node ${node.id}: acknowledged ${ack.value} at offset ${ack.offset}`);
    }
  } finally {
    for (const node of nodes) {
      node.client.close();
      if (node.process !== null) await killNode(node);
    }
  }
});
