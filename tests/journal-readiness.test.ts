// Goal: a journal node's /readyz is not ready while a replica it holds has not caught up with
// its leader since the node restarted, and is ready once it has (docs/deployment.md, "A journal
// node is ready once its replicas have caught up"): a StatefulSet's rolling restart waits for it.
// Method: three `shardline start --roles journal --replica-peers ...` processes on loopback, a
// shard elected with `shardline ctl replica elect`. A follower is killed, the leader acknowledges
// BACKLOG more records (acks=quorum, the other follower makes the majority), then the leader is
// stopped with SIGSTOP and the follower restarted on its port and data directory: it cannot
// reach its leader, so its /readyz must be 503 naming the shard, every time it is asked. After
// SIGCONT the follower copies the backlog and /readyz turns 200; by then it holds the records
// the leader had committed, less the documented slack. Every wait has a deadline.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ReplicaClient, journalWire } from '../journal/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';
import { waitFor } from './support/cluster-up.js';

const TOKEN = 'readiness-test-token-0123456789';
const SHARD = 'orders';
const CALL_MS = 10_000;
/** Records the follower misses while down: well past the catch-up slack (1,000). */
const BACKLOG = 3_000;
const PER_APPEND = 100;
/** How often /readyz is asked while the leader is stopped; each answer must be 503. */
const PROBES_WHILE_STOPPED = 5;
const CATCH_UP_LAG = 1_000;

interface Node {
  id: string;
  port: number;
  address: string;
  dataDir: string;
  process: CliProcess | null;
  admin: string;
  client: ReplicaClient;
}

const stopped = new Set<number>();

after(async () => {
  // A process left stopped would never see the SIGKILL of the cleanup.
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await cleanup();
});

async function startNode(node: Node, peers: string): Promise<void> {
  const cli = runCli(['start', '--roles', 'journal', '--data-dir', node.dataDir, '--grpc-port', String(node.port), '--admin-port', '0', '--node-id', node.id, '--replica-peers', peers], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  const listening = await waitForLogField(cli, 'journalGrpc');
  node.process = cli;
  node.admin = String(listening.admin);
}

async function readyz(node: Node): Promise<{ status: number; message: string }> {
  const response = await fetch(`http://${node.admin}/readyz`);
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, message: body.error === undefined ? '' : `${body.error.code}: ${body.error.message}` };
}

test('a restarted follower is not ready until it has caught up with its leader', { timeout: 300_000 }, async () => {
  const nodes: Node[] = [];
  for (const id of ['1', '2', '3']) {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    nodes.push({ id, port, address, dataDir: await scratchDirectory('shardline-readiness-'), process: null, admin: '', client: new ReplicaClient(address, { clusterToken: TOKEN }) });
  }
  const peers = nodes.map((node) => `${node.id}@${node.address}`).join(',');
  try {
    await Promise.all(nodes.map((node) => startNode(node, peers)));
    for (const node of nodes) await node.client.call('createShard', { name: SHARD, configJson: '{}' }, CALL_MS);
    const run = await runCtl(['replica', 'elect', '--shard', SHARD, '--journals', peers, '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.equal(run.code, 0, `elect: ${run.stdout}${run.stderr}`);
    const leader = nodes.find((node) => node.id === (JSON.parse(run.stdout) as { leader: string }).leader) as Node;
    const follower = nodes.find((node) => node !== leader) as Node;

    // Every node is ready once the followers have heard from the leader.
    for (const node of nodes) await waitFor(`node ${node.id} ready`, async () => ((await readyz(node)).status === 200 ? true : undefined));

    const killed = follower.process as CliProcess;
    killed.child.kill('SIGKILL');
    await killed.exited;
    let committed = 0;
    for (let i = 0; i < BACKLOG / PER_APPEND; i++) {
      const records = Array.from({ length: PER_APPEND }, (_, k) => ({ key: null, value: Buffer.from(`r-${i}-${k}`), headers: [] }));
      const result = await leader.client.call('append', { shard: SHARD, records: journalWire.recordsToWire(records, SHARD) }, CALL_MS);
      committed = result.lastOffset + 1;
    }

    // The follower comes back while its leader cannot answer: it has not caught up.
    const leaderPid = leader.process?.child.pid as number;
    process.kill(leaderPid, 'SIGSTOP');
    stopped.add(leaderPid);
    await startNode(follower, peers);
    for (let probe = 0; probe < PROBES_WHILE_STOPPED; probe++) {
      const answer = await readyz(follower);
      assert.equal(answer.status, 503, `probe ${probe}: not ready while the backlog is not copied (${answer.message})`);
      assert.match(answer.message, /SL_ADMIN_NOT_AVAILABLE: .*orders: no answer from leader/);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    process.kill(leaderPid, 'SIGCONT');
    stopped.delete(leaderPid);
    await waitFor('the restarted follower ready', async () => ((await readyz(follower)).status === 200 ? true : undefined));
    const mine = await follower.client.call('replicaStatus', { shard: SHARD }, CALL_MS);
    assert.ok(mine.logEnd + CATCH_UP_LAG >= committed, `ready with log end ${mine.logEnd}, within ${CATCH_UP_LAG} of the ${committed} committed`);
    assert.equal(mine.role, 'follower');
  } finally {
    for (const node of nodes) {
      node.process?.child.kill('SIGKILL');
      node.client.close();
    }
  }
});
