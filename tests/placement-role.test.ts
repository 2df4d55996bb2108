// Goal: `shardline start --roles placement` runs a placement voter as docs/operations.md
// ("Running a placement group") says: three processes given the same peer list elect a leader
// and take writes from a PlacementClient, and bad placement settings stop the start with a
// message that says what is wrong.
// Method: three real `shardline start --roles placement` child processes on loopback ports the
// OS said were free, the cluster token in the environment; a PlacementClient over their
// addresses proposes a setting and reads it back linearizably; SIGTERM ends each with exit 0.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PlacementClient } from '../placement/service/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';

const TOKEN = 'placement-role-test-token';
const CLUSTER = 'placement-role-test';

after(cleanup);

async function stopClean(cli: CliProcess): Promise<void> {
  cli.child.kill('SIGTERM');
  const { code, signal, stderr } = await cli.exited;
  assert.equal(code, 0, `exit: code ${code}, signal ${signal}, stderr: ${stderr}`);
}

describe('shardline start --roles placement', () => {
  it('three voters elect a leader and apply a write from a PlacementClient', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const peers = ports.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(',');
    const env = { SHARDLINE_CLUSTER_TOKEN: TOKEN, SHARDLINE_CLUSTER_ID: CLUSTER };
    const dataDirs = await Promise.all(ports.map(() => scratchDirectory('shardline-placement-role-')));
    const voters = ports.map((port, i) => runCli(['start', '--roles', 'placement', '--node-id', String(i + 1), '--placement-peers', peers, '--data-dir', dataDirs[i] as string], env));
    const client = new PlacementClient({ addresses: ports.map((port) => `127.0.0.1:${port}`), clusterId: CLUSTER, clusterToken: TOKEN });
    try {
      const lines = await Promise.all(voters.map((voter) => waitForLogField(voter, 'placement')));
      assert.deepEqual(lines.map((line) => line.placement), ports.map((port) => `127.0.0.1:${port}`));
      assert.match(String(lines[0]?.msg), /^listening placement=127\.0\.0\.1:\d+ admin=/);
      // The client's own retries (10 s) cover the election.
      const { result } = await client.propose({ type: 'set-setting', key: 'role-test', value: 'written' });
      assert.equal(result.status, 'ok');
      const read = await client.read(['settings']);
      assert.deepEqual(read.settings?.map((setting) => [setting.key, setting.value]), [['role-test', 'written']]);
      const statuses = await Promise.all(ports.map((port) => client.status(`127.0.0.1:${port}`)));
      assert.equal(statuses.filter((status) => status.role === 'leader').length, 1, JSON.stringify(statuses));
      assert.equal(new Set(statuses.map((status) => status.leader)).size, 1, JSON.stringify(statuses));
      // Each voter's admin API serves the group (/api/cluster, what ctl cluster and the dashboard read).
      const leaderId = statuses[0]?.leader;
      for (const [i, line] of lines.entries()) {
        const token = (await readFile(join(dataDirs[i] as string, 'admin-token'), 'utf8')).trim();
        const response = await fetch(`http://${String(line.admin)}/api/cluster/members`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 200, await response.clone().text());
        const body = (await response.json()) as { leader: number; members: { id: number; reachable: boolean }[] };
        assert.equal(body.leader, leaderId, `voter ${i + 1} knows the leader`);
        assert.deepEqual(body.members.map((member) => [member.id, member.reachable]), [[1, true], [2, true], [3, true]]);
      }
    } finally {
      client.close();
    }
    await Promise.all(voters.map(stopClean));
  });

  const badStarts: Array<{ name: string; args: string[]; env?: Record<string, string>; message: RegExp }> = [
    { name: 'a peer list without this node', args: ['--node-id', '4', '--placement-peers', '1@127.0.0.1:1228,2@127.0.0.1:1229'], message: /placement-peers \(from --placement-peers\) does not list this node's id 4/ },
    { name: 'a malformed peer', args: ['--node-id', '1', '--placement-peers', '1@127.0.0.1:1228,127.0.0.1:1229'], message: /--placement-peers \(entry 2\) must be ID@HOST:PORT/ },
    { name: 'no node id', args: ['--placement-peers', '1@127.0.0.1:1228'], message: /the placement role needs this voter's id: set --node-id N/ },
    { name: 'no cluster token', args: ['--node-id', '1'], env: { SHARDLINE_CLUSTER_TOKEN: '' }, message: /needs the placement group's shared secret: set SHARDLINE_CLUSTER_TOKEN/ },
  ];
  for (const bad of badStarts) {
    it(`refuses ${bad.name} with a message saying what to fix (exit 2, nothing started)`, async () => {
      const cli = runCli(['start', '--roles', 'placement', '--data-dir', await scratchDirectory('shardline-placement-bad-'), ...bad.args], { SHARDLINE_CLUSTER_TOKEN: TOKEN, ...bad.env });
      const { code, stderr } = await cli.exited;
      assert.equal(code, 2, stderr);
      assert.match(stderr, bad.message);
      assert.equal(cli.lines.length, 0, 'nothing logged: the node never started');
    });
  }
});
