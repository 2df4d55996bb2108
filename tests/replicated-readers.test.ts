// Goal: the readers of a replicated shard never see its epoch-start batches: an MQTT subscriber
// (live, and a persistent session that resumes from its cursor) receives exactly the published
// messages across two leader changes, and the journal's Read of the shard holds no epoch start.
// Method: a real `shardline start --roles journal --replica-peers` node and a broker over it
// (`--roles broker --journal`, one data shard), mqtt.js clients; `ctl replica elect` makes the
// data shard replicated (replica set of one) between publishes and then moves it to a newer
// epoch, each election writing an epoch-start batch among the messages.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { EPOCH_START_HEADER, journalWire, ReplicaClient } from '../journal/index.js';
import { cleanup, freePort, runCli, scratchDirectory, waitForLogField, type CliProcess } from './support/broker-process.js';
import { runCtl } from './support/ctl-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic } from './support/mqtt-client.js';

const TOKEN = 'replicated-readers-token-0123456789';
const SHARD = 'mqtt.0';
const PER_EPOCH = 5;
const processes: CliProcess[] = [];

after(async () => {
  closeAllClients();
  for (const cli of processes.reverse()) {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) continue;
    cli.child.kill('SIGTERM');
    await cli.exited;
  }
  await cleanup();
});

test('MQTT subscribers of a replicated data shard get exactly the published messages across epoch changes', async () => {
  const port = await freePort();
  const journalAddress = `127.0.0.1:${port}`;
  const journal = runCli(['start', '--roles', 'journal', '--data-dir', await scratchDirectory('shardline-rr-journal-'), '--grpc-port', String(port), '--admin-port', '0', '--node-id', '1', '--replica-peers', `1@${journalAddress}`], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  processes.push(journal);
  await waitForLogField(journal, 'journalGrpc');
  const broker = runCli(['start', '--roles', 'broker', '--journal', journalAddress, '--mqtt-port', '0', '--admin-port', '0', '--data-shards', '1'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
  processes.push(broker);
  const url = `mqtt://127.0.0.1:${Number((await waitForLogField(broker, 'mqtt')).mqttPort)}`;

  const topic = uniqueTopic('epochs');
  const live = await connectClient(url);
  await live.subscribe(topic, { qos: 1 });
  const persistentId = uniqueClientId('keep');
  const away = await connectClient(url, { clientId: persistentId, clean: false });
  await away.subscribe(topic, { qos: 1 });
  away.client.end();
  await away.closed;
  const publisher = await connectClient(url);

  const published: string[] = [];
  const publishSome = async (): Promise<void> => {
    for (let i = 0; i < PER_EPOCH; i += 1) {
      const payload = `m${published.length}`;
      await publisher.publish(topic, payload, { qos: 1 });
      published.push(payload);
    }
  };
  const elect = async (): Promise<void> => {
    const run = await runCtl(['replica', 'elect', '--shard', SHARD, '--journals', `1@${journalAddress}`, '--json'], { SHARDLINE_CLUSTER_TOKEN: TOKEN });
    assert.equal(run.code, 0, `elect: ${run.stdout}${run.stderr}`);
  };
  await publishSome();
  await elect();
  await publishSome();
  await elect();
  await publishSome();

  const received = await live.waitForMessages(published.length);
  assert.deepEqual(received.map((message) => message.payload.toString()), published);
  await live.expectNoMoreMessages();

  const back = await connectClient(url, { clientId: persistentId, clean: false });
  const queued = await back.waitForMessages(published.length);
  assert.deepEqual(queued.map((message) => message.payload.toString()), published);
  await back.expectNoMoreMessages();

  // The shard does hold the two epoch starts, as gaps in the offsets readers see.
  const client = new ReplicaClient(journalAddress, { clusterToken: TOKEN });
  try {
    const { records } = await client.call('read', { shard: SHARD, fromOffset: 0, maxRecords: 1000 }, 10_000);
    const read = records.map((message) => journalWire.recordFromWire(message));
    assert.ok(!read.some((record) => record.headers.some((header) => header.key === EPOCH_START_HEADER)), 'no epoch start among the records read');
    const status = await client.call('replicaStatus', { shard: SHARD }, 10_000);
    assert.equal(status.epoch, 2);
    assert.equal(status.logEnd - read.length, 2, `two offsets of ${status.logEnd} are epoch starts`);
  } finally {
    client.close();
  }
});
