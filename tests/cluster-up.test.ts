// Goal: `shardline cluster up` starts a working cluster (3 placement voters, 3 journal nodes, 2
// brokers over the replicated shards, each its own process), prints every address and the admin token, reports a node
// that dies, and leaves no process behind once it is stopped, as docs/deployment.md says.
// Method: the real command as a child process on loopback. From its address table: an mqtt.js
// client publishes and receives at QoS 1 on a broker; a PlacementClient (token from the
// cluster's state file) waits until the group lists every node with its roles; the printed admin
// token reads /api/cluster/members from a voter; the journal's gRPC port refuses a caller
// without the cluster token. Then a SIGKILL of the broker by its printed pid
// must be reported on stderr, and a SIGTERM of `cluster up` must end every printed pid, with exit
// status 1 (a node was lost).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { PlacementClient } from '../placement/service/index.js';
import { RemoteShardStore } from '../shard-model/index.js';
import { runCli, scratchDirectory, type CliProcess } from './support/broker-process.js';
import { killedAfterTests } from './support/cluster-up.js';

const UP_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;
const POLL_MS = 200;

interface PrintedNode {
  name: string;
  role: string;
  pid: number;
  mqtt: string;
  admin: string;
  placement: string;
  journalGrpc: string;
}

/** Every pid the test saw printed: killed in the end if still alive (the nodes run detached from `cluster up`). */
const printedPids = killedAfterTests();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `probe` returns a value; fails after timeoutMs or once the command exited. */
async function waitFor<T>(what: string, cli: CliProcess, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void cli.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    if (exited) assert.fail(`cluster up exited while waiting for ${what}: ${JSON.stringify(await cli.exited)}\n${cli.lines.join('\n')}`);
    await sleep(POLL_MS);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}:\n${cli.lines.join('\n')}`);
}

/** The address table: the lines after the NODE header, up to the blank line. */
function parseTable(lines: readonly string[]): PrintedNode[] {
  const header = lines.findIndex((line) => line.startsWith('NODE '));
  assert.ok(header >= 0, `an address table:\n${lines.join('\n')}`);
  assert.deepEqual(lines[header]?.split(/\s+/), ['NODE', 'ROLE', 'PID', 'MQTT', 'ADMIN', 'PLACEMENT', 'JOURNAL-GRPC']);
  const rows: PrintedNode[] = [];
  for (const line of lines.slice(header + 1)) {
    if (line.trim() === '') break;
    const [name, role, pid, mqttAddress, admin, placement, journalGrpc] = line.trim().split(/\s+/);
    rows.push({ name: name ?? '', role: role ?? '', pid: Number(pid), mqtt: mqttAddress ?? '', admin: admin ?? '', placement: placement ?? '', journalGrpc: journalGrpc ?? '' });
  }
  return rows;
}

describe('shardline cluster up', () => {
  it('starts voters, journals and brokers that serve and register, reports a lost node, and stops every process', { timeout: UP_TIMEOUT_MS + 2 * STOP_TIMEOUT_MS }, async () => {
    const dir = await scratchDirectory('shardline-cluster-up-');
    const cli = runCli(['cluster', 'up', '--dir', dir, '--grace-seconds', '20']);
    await waitFor('the cluster to be up', cli, () => (cli.lines.includes('cluster up; Ctrl-C stops every node') ? true : undefined), UP_TIMEOUT_MS);

    const nodes = parseTable(cli.lines);
    for (const node of nodes) printedPids.add(node.pid);
    assert.deepEqual(nodes.map((node) => `${node.name}:${node.role}`), ['placement-1:placement', 'placement-2:placement', 'placement-3:placement', 'journal-1:journal', 'journal-2:journal', 'journal-3:journal', 'broker-1:broker', 'broker-2:broker']);
    for (const node of nodes) {
      assert.ok(Number.isSafeInteger(node.pid) && alive(node.pid), `${node.name}: pid ${node.pid} runs`);
      assert.match(node.admin, /^127\.0\.0\.1:\d+$/, `${node.name} has an admin address`);
    }
    const voters = nodes.filter((node) => node.role === 'placement');
    const journal = nodes.find((node) => node.role === 'journal') as PrintedNode;
    const broker = nodes.find((node) => node.role === 'broker') as PrintedNode;
    for (const voter of voters) assert.match(voter.placement, /^127\.0\.0\.1:\d+$/);
    assert.match(journal.journalGrpc, /^127\.0\.0\.1:\d+$/);
    assert.match(broker.mqtt, /^127\.0\.0\.1:\d+$/);
    assert.equal(new Set(nodes.map((node) => node.pid)).size, nodes.length, 'one process per node');

    // MQTT through a broker, stored on the shard's replicas.
    const client = await mqtt.connectAsync(`mqtt://${broker.mqtt}`, { clientId: 'cluster-up-test', clean: true, reconnectPeriod: 0, connectTimeout: 30_000 });
    try {
      const received = new Promise<{ topic: string; payload: string; qos: number }>((resolve) => {
        client.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), qos: packet.qos }));
      });
      const granted = await client.subscribeAsync('cluster-up/#', { qos: 1 });
      assert.equal(granted[0]?.qos, 1);
      const ack = await client.publishAsync('cluster-up/hello', 'through the cluster', { qos: 1 });
      assert.ok(ack !== undefined, 'PUBACK');
      assert.deepEqual(await received, { topic: 'cluster-up/hello', payload: 'through the cluster', qos: 1 });
    } finally {
      await client.endAsync();
    }

    // Every node registered with the placement group, with its roles and its address.
    const state = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string };
    const placement = new PlacementClient({ addresses: voters.map((voter) => voter.placement), clusterId: 'shardline', clusterToken: state.clusterToken });
    try {
      const listed = await waitFor('every node to register', cli, async () => {
        const { nodes: registered = [] } = await placement.read(['nodes']);
        return registered.length >= nodes.length ? registered : undefined;
      }, UP_TIMEOUT_MS);
      const byId = new Map(listed.map((node) => [node.id, node]));
      for (const id of ['1', '2', '3']) assert.deepEqual(byId.get(id)?.roles, ['placement'], `voter ${id}: ${JSON.stringify(listed)}`);
      assert.deepEqual(byId.get('11')?.roles, ['journal']);
      assert.deepEqual(byId.get('11')?.addresses, { journal: journal.journalGrpc });
      assert.deepEqual(byId.get('21')?.roles, ['broker']);
      assert.deepEqual(byId.get('21')?.addresses, { broker: broker.mqtt });
    } finally {
      placement.close();
    }

    // The journal's gRPC port takes the cluster token (the broker above got through with it) and
    // refuses a caller without it.
    const stranger = await RemoteShardStore.connect(journal.journalGrpc);
    const member = await RemoteShardStore.connect(journal.journalGrpc, { credentials: { clusterToken: state.clusterToken } });
    try {
      await assert.rejects(stranger.list(), (error: unknown) => (error as { code?: string }).code === 'SL_JOURNAL_UNAUTHENTICATED');
      assert.ok((await member.list()).length > 0, 'the token lists the journal\'s shards');
    } finally {
      await Promise.all([stranger.close(), member.close()]);
    }

    // The printed admin token opens a voter's admin API, and the group has three voters.
    const tokenLine = cli.lines.find((line) => line.startsWith('admin token: '));
    const adminToken = tokenLine?.split(/\s+/)[2] ?? '';
    const response = await fetch(`http://${voters[0]?.admin}/api/cluster/members`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(response.status, 200, await response.clone().text());
    const members = (await response.json()) as { members: { id: number; voter: boolean }[] };
    assert.deepEqual(members.members.filter((member) => member.voter).map((member) => member.id).sort(), [1, 2, 3]);

    // A node that dies is reported, with its pid.
    process.kill(broker.pid, 'SIGKILL');
    const report = `broker-1 (pid ${broker.pid}) exited unexpectedly (signal SIGKILL)`;
    let stderr = '';
    cli.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await waitFor('the lost broker to be reported', cli, () => (stderr.includes(report) ? true : undefined), STOP_TIMEOUT_MS);

    // SIGTERM stops the rest; no printed process outlives the command.
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    assert.equal(exit.code, 1, `exit 1 after a node was lost: ${JSON.stringify(exit)}`);
    for (const node of nodes.filter((node) => node !== broker)) {
      assert.ok(cli.lines.some((line) => line.startsWith(`stopped ${node.name} (pid ${node.pid}, exit code 0)`)), `${node.name} stopped cleanly:\n${cli.lines.join('\n')}`);
    }
    const survivors = nodes.filter((node) => alive(node.pid));
    assert.deepEqual(survivors.map((node) => `${node.name} (pid ${node.pid})`), [], 'every printed process is gone');
  });

  it('with --combined, the voters are the journal nodes (the Kubernetes layout): shards replicate on them, and a SIGTERM stops all with exit 0', { timeout: UP_TIMEOUT_MS + STOP_TIMEOUT_MS }, async () => {
    const dir = await scratchDirectory('shardline-cluster-up-combined-');
    const cli = runCli(['cluster', 'up', '--dir', dir, '--combined', '--brokers', '1', '--grace-seconds', '20']);
    await waitFor('the cluster to be up', cli, () => (cli.lines.includes('cluster up; Ctrl-C stops every node') ? true : undefined), UP_TIMEOUT_MS);
    const nodes = parseTable(cli.lines);
    for (const node of nodes) printedPids.add(node.pid);
    assert.deepEqual(nodes.map((node) => `${node.name}:${node.role}`), ['node-1:placement,journal', 'node-2:placement,journal', 'node-3:placement,journal', 'broker-1:broker']);
    for (const node of nodes.slice(0, 3)) {
      assert.match(node.placement, /^127\.0\.0\.1:\d+$/, `${node.name} is a voter`);
      assert.match(node.journalGrpc, /^127\.0\.0\.1:\d+$/, `${node.name} is a journal node`);
    }
    const broker = nodes[3] as PrintedNode;
    const client = await mqtt.connectAsync(`mqtt://${broker.mqtt}`, { clientId: 'cluster-up-combined', clean: true, reconnectPeriod: 0, connectTimeout: 30_000 });
    try {
      const received = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(payload.toString())));
      await client.subscribeAsync('combined/#', { qos: 1 });
      assert.ok((await client.publishAsync('combined/hello', 'on the voters', { qos: 1 })) !== undefined, 'PUBACK');
      assert.equal(await received, 'on the voters');
    } finally {
      await client.endAsync();
    }
    // The data shards are replicated three ways over the voters' journals, each with a leader.
    const state = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { clusterToken: string; combined?: boolean };
    assert.equal(state.combined, true, 'the state file keeps the layout');
    const placement = new PlacementClient({ addresses: nodes.slice(0, 3).map((node) => node.placement), clusterId: 'shardline', clusterToken: state.clusterToken });
    try {
      const { shards = [] } = await placement.read(['shards']);
      const data = shards.filter((shard) => shard.name.startsWith('mqtt.'));
      assert.ok(data.length > 0, `data shards in placement: ${shards.map((shard) => shard.name).join(', ')}`);
      for (const shard of data) {
        assert.deepEqual([...shard.replicas].sort(), ['1', '2', '3'], `${shard.name}'s replicas`);
        assert.ok(shard.leader !== null && ['1', '2', '3'].includes(shard.leader), `${shard.name} has a leader: ${shard.leader}`);
      }
    } finally {
      placement.close();
    }

    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    assert.equal(exit.code, 0, `exit 0: ${JSON.stringify(exit)}\n${cli.lines.join('\n')}`);
    assert.deepEqual(nodes.filter((node) => alive(node.pid)).map((node) => node.name), [], 'every printed process is gone');

    // The directory keeps its layout: started without --combined it is refused.
    const again = runCli(['cluster', 'up', '--dir', dir]);
    const refused = await again.exited;
    assert.equal(refused.code, 2, JSON.stringify(refused));
    assert.match(refused.stderr, /first started with --combined/);
  });

  it('a node that cannot start stops the others and exits 1 with its reason', { timeout: UP_TIMEOUT_MS }, async () => {
    // Voter 1's placement port (the first of --base-port) is taken.
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as AddressInfo;
    try {
      const cli = runCli(['cluster', 'up', '--dir', await scratchDirectory('shardline-cluster-up-busy-'), '--base-port', String(port)]);
      const exit = await cli.exited;
      assert.equal(exit.code, 1, JSON.stringify(exit));
      assert.match(exit.stderr, /placement-1 \(pid \d+\) exited before it listened \(exit code 1\)/);
      assert.match(exit.stderr, /SL_PLACEMENT_LISTEN_FAILED/);
      // The other voters are stopped, however far their start had got (one still starting may
      // not handle SIGTERM yet and end by it; on a busy machine another port may be taken too).
      const stopped = [...cli.lines, ...exit.stderr.split('\n')].map((line) => /^(?:stopped )?placement-[23] \(pid (\d+)(?:, |\) exited)/.exec(line)?.[1]).filter((pid) => pid !== undefined).map(Number);
      assert.equal(new Set(stopped).size, 2, `the two other voters were stopped (or reported):\n${cli.lines.join('\n')}\n${exit.stderr}`);
      for (const pid of stopped) {
        printedPids.add(pid);
        assert.equal(alive(pid), false, `pid ${pid} is gone`);
      }
    } finally {
      blocker.close();
    }
  });

  it('refuses bad flags with exit 2', async () => {
    for (const args of [['--journals', '0'], ['--journals', '10'], ['--brokers', '0'], ['--brokers', '10'], ['--base-port', '65530'], ['--nodes', '3'], ['--combined', '--journals', '2']]) {
      const cli = runCli(['cluster', 'up', '--dir', await scratchDirectory('shardline-cluster-up-bad-'), ...args]);
      const exit = await cli.exited;
      assert.equal(exit.code, 2, `${args.join(' ')}: ${JSON.stringify(exit)}`);
      assert.match(exit.stderr, /shardline cluster up: /);
    }
  });
});
