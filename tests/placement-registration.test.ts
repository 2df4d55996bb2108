// Goal: journal and broker nodes started with --placement register with the placement group
// (node id, roles, an address per role) and keep serving when the group goes away, as
// docs/operations.md ("Running a placement group") says.
// Method: real processes on loopback: one `--roles placement` voter, one `--roles journal` and
// one `--roles broker` node, both with --placement; a PlacementClient reads the nodes the
// group lists. Then the voter stops: the broker logs the outage once, still takes a QoS 1
// publish from an mqtt.js client, and both nodes stop cleanly (exit 0) while the registration
// is retrying.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { PlacementClient } from '../placement/service/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';

const TOKEN = 'placement-registration-token';
const env = { SHARDLINE_CLUSTER_TOKEN: TOKEN };

after(cleanup);

async function stopClean(cli: CliProcess): Promise<void> {
  cli.child.kill('SIGTERM');
  const { code, signal, stderr } = await cli.exited;
  assert.equal(code, 0, `exit: code ${code}, signal ${signal}, stderr: ${stderr}`);
}

/** Polls until `probe` returns a value; fails after timeoutMs. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; polls < 100 && Date.now() < deadline; polls++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('registration with the placement group', () => {
  it('a journal and a broker node register with their roles and addresses, and keep serving without the group', async () => {
    const placementPort = await freePort();
    const placementAddress = `127.0.0.1:${placementPort}`;
    const voter = runCli(['start', '--roles', 'placement', '--node-id', '1', '--placement-port', String(placementPort), '--data-dir', await scratchDirectory('shardline-reg-voter-')], env);
    const journal = runCli(['start', '--roles', 'journal', '--node-id', '11', '--placement', placementAddress, '--grpc-port', '0', '--data-dir', await scratchDirectory('shardline-reg-journal-')], env);
    const journalLine = await waitForLogField(journal, 'journalGrpc');
    const broker = runCli(['start', '--roles', 'broker', '--journal', String(journalLine.journalGrpc), '--placement', placementAddress, '--mqtt-port', '0'], env);
    const brokerLine = await waitForLogField(broker, 'mqtt');
    await waitForLogField(voter, 'placement');

    const client = new PlacementClient({ addresses: [placementAddress], clusterId: 'shardline', clusterToken: TOKEN });
    try {
      const nodes = await waitFor('the voter, the journal and the broker to register', async () => {
        const { nodes: listed = [] } = await client.read(['nodes']);
        return listed.length >= 3 ? listed : undefined;
      });
      const journalNode = nodes.find((node) => node.id === '11');
      assert.ok(journalNode !== undefined, JSON.stringify(nodes));
      assert.deepEqual(journalNode.roles, ['journal']);
      assert.deepEqual(journalNode.addresses, { journal: journalLine.journalGrpc });
      // The voter registers itself too; without --node-id a node registers under its host name and first address.
      assert.deepEqual(nodes.find((node) => node.id === '1')?.roles, ['placement']);
      const brokerNode = nodes.find((node) => node.roles.includes('broker'));
      assert.ok(brokerNode !== undefined && brokerNode.id.endsWith(`/${String(brokerLine.mqtt)}`), JSON.stringify(nodes));
      assert.deepEqual(brokerNode.roles, ['broker']);
      assert.deepEqual(brokerNode.addresses, { broker: brokerLine.mqtt });
      assert.ok(brokerNode.leaseExpiresAt > Date.now(), 'the lease is alive');
    } finally {
      client.close();
    }

    await stopClean(voter);
    await waitFor('the broker to log the outage', async () => (broker.lines.some((line) => line.includes('placement service unreachable')) ? true : undefined));
    const mqttClient = await mqtt.connectAsync(`mqtt://${String(brokerLine.mqtt)}`, { reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      const ack = await mqttClient.publishAsync('registration/still-serving', 'yes', { qos: 1 });
      assert.ok(ack !== undefined, 'PUBACK: the broker still serves with the placement group gone');
    } finally {
      await mqttClient.endAsync();
    }
    assert.equal(broker.lines.filter((line) => line.includes('placement service unreachable')).length, 1, 'the outage is logged once, not per retry');
    await stopClean(broker);
    await stopClean(journal);
  });
});

describe('the single-node default and its embedded placement', () => {
  it('registers itself with a one-voter group kept in the data directory, bootstrapped once and reopened after a restart', async () => {
    const dataDir = await scratchDirectory('shardline-reg-single-');
    const args = ['start', '--data-dir', dataDir, '--mqtt-port', '0', '--grpc-port', '0'];
    const first = runCli(args);
    const listening = await waitForLogField(first, 'mqtt');
    assert.equal(listening.placement, undefined, 'the embedded voter is internal: not in the listening line');
    const registered = await waitForLogField(first, 'addresses');
    assert.deepEqual(registered.roles, ['journal', 'broker']);
    assert.deepEqual(registered.addresses, { journal: listening.journalGrpc, broker: listening.mqtt });
    const opened = (await waitForLogField(first, 'lastIndex')) as { lastIndex: number; appliedIndex: number };
    assert.equal(opened.lastIndex, 0, 'the first start finds an empty log and bootstraps it');
    await stopClean(first);

    const second = runCli(args);
    const reopened = (await waitForLogField(second, 'lastIndex')) as { lastIndex: number; appliedIndex: number };
    assert.ok(reopened.lastIndex >= 2, `the restart finds the bootstrap and the registration in the log (last index ${reopened.lastIndex})`);
    await waitForLogField(second, 'addresses');
    await stopClean(second);
  });
});
