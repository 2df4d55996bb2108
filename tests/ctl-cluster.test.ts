// `shardline ctl cluster …` as an operator runs it: the real CLI in a child process against the
// admin API of a live 3-voter placement group (three in-process PlacementServers on loopback
// gRPC, a real AdminServer per voter on loopback; tests/support/placement-admin-group.ts). Asserts exit
// codes, the --json output parsed, the words an operator relies on in the tables and errors (the
// leader named by a follower's refusal; a bad node id refused before any call), and the
// group's state each change leaves behind.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAdminCluster, type AdminTestCluster, type AdminTestNode } from './support/placement-admin-group.js';
import { waitFor } from '../placement/service/testing.js';
import { UsageError } from '../cli/testing.js';
import { ctlCommands } from '../cli/commands/index.js';
import { runCtl, type CtlRun } from './support/ctl-process.js';

const TOKEN = 'ctl-cluster-token';


/** Runs `shardline ctl cluster ARGS` from the sources against `node`'s admin API. */
function ctl(node: AdminTestNode, args: string[]): Promise<CtlRun> {
  return runCtl(['cluster', ...args], { SHARDLINE_ADMIN_URL: node.http.url, SHARDLINE_ADMIN_TOKEN: TOKEN });
}

describe('shardline ctl cluster against a 3-voter placement group', () => {
  let group: AdminTestCluster;

  before(async () => {
    group = await startAdminCluster(TOKEN);
  });

  after(() => group.stop());

  it('status and members print the leader, term, indexes and lag; --json is the API answer', async () => {
    const leader = group.leader();
    const follower = group.followers()[0] as AdminTestNode;
    const [status, members] = await Promise.all([ctl(follower, ['status']), ctl(follower, ['members', '--json'])]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^node\\s+${follower.id}$`, 'm'));
    assert.match(status.stdout, /^role\s+follower$/m);
    assert.match(status.stdout, new RegExp(`^leader\\s+${leader.id} at ${group.cluster.peers.get(leader.id)?.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(status.stdout, /^commit index\s+\d+$/m);
    assert.match(status.stdout, /^voters\s+1, 2, 3$/m);
    assert.equal(members.code, 0, members.stderr);
    const answer = JSON.parse(members.stdout) as { leader: number; members: Array<{ id: number; self: boolean; reachable: boolean; lag: number }> };
    assert.equal(answer.leader, leader.id);
    assert.deepEqual(answer.members.map((m) => [m.id, m.self, m.reachable]), [1, 2, 3].map((id) => [id, id === follower.id, true]));
    assert.ok(answer.members.every((m) => typeof m.lag === 'number' && m.lag >= 0));
  });

  it('a change on a follower exits 1 naming the leader; a bad node id is a usage error before any call', async () => {
    const leader = group.leader();
    const follower = group.followers()[0] as AdminTestNode;
    const refused = await ctl(follower, ['transfer-leader', String(follower.id)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`not the leader \\(leader: ${leader.id} at 127\\.0\\.0\\.1:\\d+\\).*\\[SL_ADMIN_NOT_LEADER\\]`));
    assert.equal(group.leader().id, leader.id, 'nothing changed');
    // In process: the id is checked before the admin API is called (the CLI turns UsageError into exit 2).
    for (const words of ['add-member', 'remove-member', 'transfer-leader']) {
      const command = ctlCommands.find((candidate) => candidate.path.join(' ') === `ctl cluster ${words}`);
      assert.ok(command !== undefined, words);
      for (const bad of ['two', '0', '-1', '1.5', '4294967296']) await assert.rejects(command.run({ server: 'http://127.0.0.1:1' }, [bad]), (error: Error) => error instanceof UsageError && /NODE_ID must be a placement node id/.test(error.message));
    }
  });

  it('step-down on a follower changes nothing; on the leader it hands over to another voter', async () => {
    // Voter 1 leads first: with every lag 0, the lowest id is the tie-break, so a step-down that
    // did not leave the leader itself out would pick it.
    if (group.leader().id !== 1) {
      const moved = await ctl(group.leader(), ['transfer-leader', '1']);
      assert.equal(moved.code, 0, moved.stderr);
      await waitFor('voter 1 to lead', () => (group.cluster.leader()?.nodeId === 1 ? true : undefined));
    }
    const leader = group.leader();
    const follower = group.followers()[0] as AdminTestNode;
    const stays = await ctl(follower, ['step-down']);
    assert.equal(stays.code, 0, stays.stderr);
    assert.match(stays.stdout, new RegExp(`^node ${follower.id} does not lead \\(leader: ${leader.id} at [\\d.:]+\\); nothing to hand over$`, 'm'));
    assert.equal(group.leader().id, leader.id, 'nothing changed');

    const stepped = await ctl(leader, ['step-down', '--json']);
    assert.equal(stepped.code, 0, stepped.stderr);
    const answer = JSON.parse(stepped.stdout) as { steppedDown: boolean; leader: number; term: number };
    assert.equal(answer.steppedDown, true);
    assert.notEqual(answer.leader, leader.id);
    assert.ok([1, 2, 3].includes(answer.leader));
    await waitFor('the new leader to lead', () => (group.cluster.leader()?.nodeId === answer.leader ? true : undefined));
  });

  it('settings prints the placement settings; set changes replication.replace-after-ms on the leader, refuses bad values and followers', async () => {
    const follower = group.followers()[0] as AdminTestNode;
    const listed = await ctl(follower, ['settings']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^replication\.replace-after-ms\s+\(default\)\s+600000\s+a journal node gone 10 m is replaced$/m);
    assert.match(listed.stdout, /^replication\.factor\s+\(default\)\s+3\s+3 replicas per new shard$/m);

    const set = await ctl(group.leader(), ['set', 'replication.replace-after-ms', '90s']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout.trim(), 'replication.replace-after-ms = 90000: a journal node gone 90 s is replaced');
    const json = await ctl(follower, ['settings', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { items: { key: string; value: unknown }[] }).items.find((item) => item.key === 'replication.replace-after-ms')?.value, 90_000);

    const onFollower = await ctl(follower, ['set', 'replication.replace-after-ms', 'never']);
    assert.equal(onFollower.code, 1);
    assert.match(onFollower.stderr, /\[SL_ADMIN_NOT_LEADER\]/);
    const bad = await ctl(group.leader(), ['set', 'replication.replace-after-ms', 'soon']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /replication\.replace-after-ms must be .*"soon".*\[SL_ADMIN_BAD_REQUEST\]/);
    const off = await ctl(group.leader(), ['set', 'replication.replace-after-ms', 'never']);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout.trim(), 'replication.replace-after-ms = never: journal nodes are never replaced automatically');
    const missing = await ctl(group.leader(), ['set', 'replication.replace-after-ms']);
    assert.equal(missing.code, 2, 'a missing VALUE is a usage error');
    const help = await ctl(group.leader(), ['set', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: shardline ctl cluster set KEY VALUE/);
    assert.match(help.stdout, /0 or never turns it off/);
  });

  it('transfer-leader, remove-member and add-member change the group as printed', async () => {
    const before = group.leader();
    const target = group.followers()[0] as AdminTestNode;
    const moved = await ctl(before, ['transfer-leader', String(target.id)]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, new RegExp(`^node ${target.id} leads term \\d+$`, 'm'));
    await waitFor('the target to lead', () => (group.cluster.leader()?.nodeId === target.id ? true : undefined));

    const victim = before;
    const removed = await ctl(target, ['remove-member', String(victim.id), '--json']);
    assert.equal(removed.code, 0, removed.stderr);
    const remaining = [1, 2, 3].filter((id) => id !== victim.id);
    assert.deepEqual((JSON.parse(removed.stdout) as { voters: number[] }).voters.sort(), remaining);
    assert.deepEqual([...target.admin.status().voters].sort(), remaining);

    const added = await ctl(target, ['add-member', String(victim.id)]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, new RegExp(`^node ${victim.id} is a voter; voters [123], [123], [123] \\(log index \\d+\\)$`, 'm'));
    assert.deepEqual([...target.admin.status().voters].sort(), [1, 2, 3]);
  });
});
