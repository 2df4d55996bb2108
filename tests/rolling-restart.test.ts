// Goal: the Kubernetes StatefulSet's topology and upgrade procedure work with real processes, as
// docs/deployment.md describes them: three `--roles placement,journal` voters and a broker on the
// first one's journal; /readyz says a voter is ready only while it is in a quorum and caught up;
// a rolling restart (preStop `ctl cluster step-down`, SIGTERM, start again, wait for /readyz)
// keeps the group serving, and moves leadership off a leader before it stops.
// Method: the processes on loopback with fixed ports (a restart keeps its addresses, as a pod's
// DNS name does); the StatefulSet order (highest ordinal first); mqtt.js QoS 1 through the
// broker before and after; then two voters stopped, and the last one's /readyz must turn 503.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { freeLoopbackPorts } from '../placement/service/index.js';
import { cleanup, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';

const env = { SHARDLINE_CLUSTER_TOKEN: 'rolling-restart-cluster-token', SHARDLINE_ADMIN_TOKEN: 'rolling-restart-admin-token' };
const WAIT_MS = 60_000;
const POLL_MS = 200;

after(cleanup);

interface Voter {
  id: number;
  args: string[];
  admin: string;
  process: CliProcess;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function readyz(admin: string): Promise<{ status: number; message: string }> {
  try {
    const response = await fetch(`http://${admin}/readyz`, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { error?: { message?: string } };
    return { status: response.status, message: body.error?.message ?? '' };
  } catch (error) {
    return { status: 0, message: String(error) };
  }
}

async function clusterStatus(admin: string): Promise<{ id: number; leader: number }> {
  const response = await fetch(`http://${admin}/api/cluster/status`, { headers: { authorization: `Bearer ${env.SHARDLINE_ADMIN_TOKEN}` } });
  assert.equal(response.status, 200);
  return (await response.json()) as { id: number; leader: number };
}

function waitReady(admin: string, what: string): Promise<true> {
  return waitFor(`${what} /readyz 200`, async () => ((await readyz(admin)).status === 200 ? true : undefined));
}

async function stop(cli: CliProcess, what: string): Promise<void> {
  cli.child.kill('SIGTERM');
  const exit = await cli.exited;
  assert.equal(exit.code, 0, `${what} stopped cleanly: ${JSON.stringify(exit)}`);
}

async function publishQos1(url: string, topic: string): Promise<void> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 20_000 });
  try {
    assert.ok((await client.publishAsync(topic, 'kept', { qos: 1 })) !== undefined, 'PUBACK');
  } finally {
    await client.endAsync();
  }
}

describe('the StatefulSet topology on loopback', () => {
  it('voters are ready only in quorum; a rolling restart with step-down keeps the group and the broker serving', { timeout: 600_000 }, async () => {
    const ports = await freeLoopbackPorts(9);
    const peers = [1, 2, 3].map((id) => `${id}@127.0.0.1:${ports[id - 1]}`).join(',');
    const voterAddresses = [0, 1, 2].map((index) => `127.0.0.1:${ports[index]}`).join(',');
    const voters: Voter[] = [];
    for (const id of [1, 2, 3]) {
      const admin = `127.0.0.1:${ports[5 + id]}`;
      const args = ['start', '--roles', 'placement,journal', '--node-id', String(id), '--placement-peers', peers, '--grpc-port', String(ports[2 + id]), '--admin-port', String(ports[5 + id]), '--data-dir', await scratchDirectory(`shardline-rolling-${id}-`)];
      voters.push({ id, args, admin, process: runCli(args, env) });
    }
    for (const voter of voters) await waitForLogField(voter.process, 'placement');
    for (const voter of voters) await waitReady(voter.admin, `voter ${voter.id}`);

    const journal = `127.0.0.1:${ports[3]}`;
    const broker = runCli(['start', '--roles', 'broker', '--journal', journal, '--placement', voterAddresses, '--mqtt-port', '0'], env);
    const brokerLine = await waitForLogField(broker, 'mqtt');
    const brokerUrl = `mqtt://${String(brokerLine.mqtt)}`;
    await waitReady(String(brokerLine.admin), 'broker');
    await publishQos1(brokerUrl, 'rolling/before');

    // The StatefulSet's order: the highest ordinal first, one at a time, each ready before the next.
    let handedOver = 0;
    for (const voter of [...voters].reverse()) {
      const others = voters.filter((other) => other !== voter);
      const before = await clusterStatus(voter.admin);
      const preStop = runCli(['ctl', 'cluster', 'step-down', '--server', `http://${voter.admin}`, '--json'], env);
      const preStopExit = await preStop.exited;
      assert.equal(preStopExit.code, 0, preStopExit.stderr);
      const answer = JSON.parse(preStop.lines.join('\n')) as { steppedDown: boolean; leader: number };
      assert.equal(answer.steppedDown, before.leader === voter.id, `voter ${voter.id} steps down only if it led (leader was ${before.leader})`);
      if (answer.steppedDown) {
        handedOver += 1;
        assert.notEqual(answer.leader, voter.id);
      }
      await stop(voter.process, `voter ${voter.id}`);
      // Two of three: the others stay ready while this one is away.
      for (const other of others) await waitReady(other.admin, `voter ${other.id} with voter ${voter.id} down`);
      voter.process = runCli(voter.args, env);
      await waitForLogField(voter.process, 'placement');
      await waitReady(voter.admin, `voter ${voter.id} after its restart`);
    }
    assert.ok(handedOver >= 1, 'the leader was among the restarted voters and handed over before it stopped');

    // Voter 1 carried the broker's journal: the broker served again once it was back.
    await waitReady(String(brokerLine.admin), 'broker after the restarts');
    await publishQos1(brokerUrl, 'rolling/after');

    // Without a quorum, the last voter is not ready, and says why.
    await stop(broker, 'broker');
    const [first, second, third] = voters as [Voter, Voter, Voter];
    await stop(third.process, 'voter 3');
    await stop(second.process, 'voter 2');
    const notReady = await waitFor('voter 1 to report no quorum', async () => {
      const answer = await readyz(first.admin);
      return answer.status === 503 ? answer : undefined;
    });
    assert.match(notReady.message, /placement/);
    await stop(first.process, 'voter 1');
  });
});
