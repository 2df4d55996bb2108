// Goal: a running placement group grows and is repaired as docs/operations.md ("Growing a
// placement group") says, with real processes: a voter started with --placement-join and an
// empty data directory joins (asks the leader, one voter at a time) and catches up; a voter
// killed with SIGKILL is removed and replaced by a new one; the group keeps taking writes and
// loses none it acknowledged; a joined voter restarted with --placement-join restarts from its
// data directory; a removed voter started again is told so and forces no election; bad joins (wrong token, wrong cluster id, a data directory of another node)
// fail with a message that says what is wrong and a nonzero exit.
// Method: three `shardline start --roles placement` processes founded with --placement-peers on
// loopback ports the OS said were free; a PlacementClient writes `wN = N` without pause, each a
// compare-and-set that creates the key only if absent (a write applied twice would be refused);
// voter 4 then 5 are started with --placement-join HOST:PORT of the founders; catch-up is read
// from each joiner's admin API (/api/cluster/status, what `ctl cluster status` shows).
// Checks: every acknowledged key is there with its value at the end (linearizable read); the
// joiners' applied index reaches the leader's commit index; the voter sets are as expected.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PlacementClient } from '../placement/service/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';

const TOKEN = 'placement-join-test-token';
const CLUSTER = 'placement-join-test';
const START_TIMEOUT_MS = 90_000;
const CATCH_UP_MS = 30_000;

after(cleanup);

interface Voter {
  id: number;
  port: number;
  dataDir: string;
  cli: CliProcess | null;
  admin: string;
}

const env = { SHARDLINE_CLUSTER_TOKEN: TOKEN, SHARDLINE_CLUSTER_ID: CLUSTER };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function voter(id: number): Promise<Voter> {
  return { id, port: await freePort(), dataDir: await scratchDirectory('shardline-placement-join-'), cli: null, admin: '' };
}

function address(v: Voter): string {
  return `127.0.0.1:${v.port}`;
}

async function startFounder(v: Voter, peers: string): Promise<void> {
  v.cli = runCli(['start', '--roles', 'placement', '--node-id', String(v.id), '--placement-peers', peers, '--data-dir', v.dataDir], env);
  v.admin = String((await waitForLogField(v.cli, 'placement', START_TIMEOUT_MS)).admin);
}

function joinArgs(v: Voter, group: Voter[]): string[] {
  return ['start', '--roles', 'placement', '--node-id', String(v.id), '--placement-join', group.map(address).join(','), '--placement-port', String(v.port), '--data-dir', v.dataDir];
}

async function startJoiner(v: Voter, group: Voter[]): Promise<void> {
  v.cli = runCli(joinArgs(v, group), env);
  v.admin = String((await waitForLogField(v.cli, 'placement', START_TIMEOUT_MS)).admin);
}

async function kill(v: Voter): Promise<void> {
  const cli = v.cli;
  assert.ok(cli !== null && cli.child.pid !== undefined, `voter ${v.id} runs`);
  // The child's own pid: only the process this test started is killed.
  process.kill(cli.child.pid, 'SIGKILL');
  assert.equal((await cli.exited).signal, 'SIGKILL');
  v.cli = null;
}

async function stopClean(v: Voter): Promise<void> {
  const cli = v.cli;
  if (cli === null) return;
  cli.child.kill('SIGTERM');
  const { code, signal, stderr } = await cli.exited;
  v.cli = null;
  assert.equal(code, 0, `voter ${v.id} exit: code ${code}, signal ${signal}, stderr: ${stderr}`);
}

interface ClusterStatus { id: number; role: string; leader: number; commitIndex: number; appliedIndex: number; voters: number[] }

/** GET /api/cluster/status of a voter's admin API: its own view. */
async function adminStatus(v: Voter): Promise<ClusterStatus> {
  const token = (await readFile(join(v.dataDir, 'admin-token'), 'utf8')).trim();
  const response = await fetch(`http://${v.admin}/api/cluster/status`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as ClusterStatus;
}

/** Waits until `v` applied at least what the leader had committed when asked, and lists `voters`. */
async function caughtUp(client: PlacementClient, group: Voter[], v: Voter, voters: number[]): Promise<ClusterStatus> {
  const deadline = Date.now() + CATCH_UP_MS;
  let last: ClusterStatus | null = null;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(group.filter((g) => g.cli !== null && g !== v).map((g) => client.status(address(g)).catch(() => null)));
    const leader = statuses.find((s) => s !== null && s.role === 'leader');
    last = await adminStatus(v);
    if (leader !== undefined && leader !== null && last.appliedIndex >= leader.commitIndex && JSON.stringify(last.voters) === JSON.stringify(voters) && last.leader === leader.id) return last;
    await sleep(100);
  }
  assert.fail(`voter ${v.id} did not catch up within ${CATCH_UP_MS} ms: ${JSON.stringify(last)}`);
}

describe('growing and repairing a placement group (--placement-join)', () => {
  it('joins a 4th voter, replaces a killed voter by a 5th, keeps every acknowledged write; a joined voter restarts from its data dir', { timeout: 400_000 }, async () => {
    const founders = [await voter(1), await voter(2), await voter(3)];
    const peers = founders.map((v) => `${v.id}@${address(v)}`).join(',');
    await Promise.all(founders.map((v) => startFounder(v, peers)));
    const all = [...founders];
    const client = new PlacementClient({ addresses: founders.map(address), clusterId: CLUSTER, clusterToken: TOKEN, requestTimeoutMs: 15_000 });
    const acknowledged = new Map<string, number>();
    let stop = false;
    let failure: unknown = null;
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          const { result } = await client.propose({ type: 'cas-setting', key: `w${n}`, expectedRevision: 0, value: n });
          if (result.status !== 'ok') throw new Error(`w${n} answered ${JSON.stringify(result)}`);
          acknowledged.set(`w${n}`, n);
        } catch (error) {
          failure ??= error;
          return;
        }
      }
    })();
    const progress = async (what: string): Promise<void> => {
      const floor = acknowledged.size + 5;
      const deadline = Date.now() + 20_000;
      while (acknowledged.size < floor && failure === null && Date.now() < deadline) await sleep(20);
      assert.equal(failure, null, `${what}: a write failed: ${String(failure)}`);
      assert.ok(acknowledged.size >= floor, `${what}: the group took no writes`);
    };
    try {
      await progress('three founders');

      // A 4th voter joins with an empty data directory.
      const fourth = await voter(4);
      await startJoiner(fourth, founders);
      all.push(fourth);
      assert.ok(fourth.cli?.lines.some((line) => line.includes('joined the group as voter 4')), 'the joiner logs that it joined');
      const status4 = await caughtUp(client, all, fourth, [1, 2, 3, 4]);
      assert.equal(status4.role, 'follower');
      await progress('after the join of 4');

      // Voter 1 dies (SIGKILL); the operator removes it and joins a 5th in its place.
      const dead = founders[0] as Voter;
      await kill(dead);
      const removed = await client.removeVoter(dead.id);
      assert.deepEqual(removed.voters, [2, 3, 4]);
      await progress('after removing the dead voter');
      const fifth = await voter(5);
      await startJoiner(fifth, [founders[1] as Voter, fourth]);
      all.push(fifth);
      await caughtUp(client, all, fifth, [2, 3, 4, 5]);
      await progress('after the join of 5');

      // The removed voter comes back on its old data directory (its log missed its removal, so
      // it campaigns): it is told it is not a member, and the group's leader keeps its term.
      const leaderBefore = await client.status(address(founders[1] as Voter));
      await startFounder(dead, peers);
      const deadline = Date.now() + 20_000;
      while (!dead.cli?.lines.some((line) => line.includes('is not a voter of this group')) && Date.now() < deadline) await sleep(100);
      assert.ok(dead.cli?.lines.some((line) => line.includes(`node ${dead.id} is not a voter of this group (voters 2, 3, 4, 5): it was removed`)), `the removed voter logs why it is idle:\n${dead.cli?.lines.join('\n')}`);
      await progress('with the removed voter back');
      const leaderAfter = await client.status(address(founders[1] as Voter));
      assert.equal(leaderAfter.term, leaderBefore.term, 'no election: the removed voter disturbed nothing');
      assert.notEqual((await adminStatus(dead)).role, 'leader');
      await stopClean(dead);

      // The joined voter 4, restarted with the same --placement-join, restarts from its log.
      await stopClean(fourth);
      // It kept the peers its join's answer listed; without that file it still finds them (its
      // log's replicated peer list, or the join addresses' Status).
      const joinedPeers = JSON.parse(await readFile(join(fourth.dataDir, 'placement', 'joined-peers.json'), 'utf8')) as [number, string][];
      assert.deepEqual(joinedPeers.map(([id]) => id).sort(), [1, 2, 3, 4]);
      await rm(join(fourth.dataDir, 'placement', 'joined-peers.json'));
      await startJoiner(fourth, founders);
      assert.ok(fourth.cli?.lines.some((line) => line.includes('restarts from its data directory')), `voter 4 restarted from its data dir:\n${fourth.cli?.lines.join('\n')}`);
      assert.ok(!fourth.cli?.lines.some((line) => line.includes('joined the group as voter')), 'and did not join again');
      await caughtUp(client, all, fourth, [2, 3, 4, 5]);
      await progress('after restarting 4');
    } finally {
      stop = true;
      await writer;
    }
    assert.equal(failure, null, `no write failed: ${String(failure)}`);
    // Every acknowledged write is there, read through the new members.
    const reader = new PlacementClient({ addresses: all.filter((v) => v.cli !== null).map(address), clusterId: CLUSTER, clusterToken: TOKEN });
    try {
      const read = await reader.read(['settings']);
      const values = new Map((read.settings ?? []).map((s) => [s.key, s.value]));
      for (const [key, value] of acknowledged) assert.equal(values.get(key), value, `acknowledged ${key} is there`);
      assert.ok(acknowledged.size > 20, `writes: ${acknowledged.size}`);
    } finally {
      reader.close();
      client.close();
    }
    await Promise.all(all.map(stopClean));
  });

  it('refuses bad joins: wrong token, wrong cluster id, another node\'s data directory (clear message, nonzero exit)', { timeout: 300_000 }, async () => {
    const founders = [await voter(1)];
    await startFounder(founders[0] as Voter, `1@${address(founders[0] as Voter)}`);
    const newcomer = await voter(2);
    // A fresh data directory each time: a refused join leaves its identity.json behind.
    const fresh = async (): Promise<string[]> => joinArgs({ ...newcomer, dataDir: await scratchDirectory('shardline-placement-join-bad-') }, founders);
    const bad = async (extraEnv: Record<string, string>, args?: string[]): Promise<string> => {
      args ??= await fresh();
      const cli = runCli(args, { ...env, ...extraEnv });
      const { code, stderr } = await cli.exited;
      assert.equal(code, 1, `exit 1: ${stderr}`);
      return stderr;
    };
    assert.match(await bad({ SHARDLINE_CLUSTER_TOKEN: 'not-the-group-token' }), /voter 2 cannot join the placement group at 127\.0\.0\.1:\d+: placement AddVoter refused: missing or wrong cluster token \[SL_PLACEMENT_UNAUTHENTICATED\]/);
    assert.match(await bad({ SHARDLINE_CLUSTER_ID: 'another-cluster' }), /voter 2 cannot join the placement group at 127\.0\.0\.1:\d+: placement AddVoter refused: cluster id "another-cluster" is not this cluster's "placement-join-test" \[SL_PLACEMENT_WRONG_CLUSTER\]/);
    // The founder's own data directory, given to node 2: refused before anything is sent.
    const stolen = joinArgs({ ...newcomer, dataDir: (founders[0] as Voter).dataDir }, founders);
    await stopClean(founders[0] as Voter);
    assert.match(await bad({}, stolen), /it belongs to node 1 of cluster "placement-join-test", not to node 2 of cluster "placement-join-test" \[SL_RAFT_IDENTITY_MISMATCH\]/);
    // Bad settings: exit 2, nothing started.
    const both = runCli([...(await fresh()), '--placement-peers', `2@${address(newcomer)}`], env);
    const settings = await both.exited;
    assert.equal(settings.code, 2, settings.stderr);
    assert.match(settings.stderr, /placement-join \(from --placement-join\) and placement-peers \(from --placement-peers\) both set/);
  });
});
