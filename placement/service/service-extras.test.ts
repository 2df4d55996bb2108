// The placement service's other paths, on loopback with in-process servers: a watch from a
// revision the history no longer keeps (the client re-reads and goes on), membership changes
// and leadership transfer through the client, and mutual TLS (a client whose certificate
// another CA signed, or none, gets nothing).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTestCertificates } from '../../tests/support/tls-certs.js';
import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { PlacementClient, type WatchEvent } from './client.js';
import { statusToShardlineError } from './grpc-status.js';
import { CLUSTER_METADATA_KEY, TOKEN_METADATA_KEY, placementService } from './placement-proto.js';
import { CLUSTER_ID, CLUSTER_TOKEN, startCluster, waitFor } from './test-cluster.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('a watch from a compacted revision gets the whole state as a reset, then the changes after it', async () => {
  const cluster = await startCluster({ replica: { watchHistoryChanges: 3 } });
  cleanups.push(() => cluster.stop());
  await waitFor('a leader', () => cluster.leader());
  const client = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(() => client.close());
  for (let i = 1; i <= 10; i++) await client.propose({ type: 'set-setting', key: `k${i}`, value: i });
  const events: WatchEvent[] = [];
  const subscription = client.watch(1, (event) => events.push(event));
  const reset = await waitFor('the reset', () => events.find((e) => e.type === 'reset'));
  assert.equal(reset.state.revision, 10);
  assert.equal(reset.state.settings?.length, 10);
  await client.propose({ type: 'set-setting', key: 'k11', value: 11 });
  await client.propose({ type: 'set-setting', key: 'k12', value: 12 });
  await waitFor('changes 11 and 12', () => (events.some((e) => e.type === 'changes' && e.changes.some((c) => c.revision === 12)) ? true : undefined));
  const changes = events.flatMap((e) => (e.type === 'changes' ? e.changes : []));
  assert.deepEqual(changes.map((c) => [c.key, c.revision]), [['k11', 11], ['k12', 12]]);
  assert.equal(events.findIndex((e) => e.type === 'reset') < events.findIndex((e) => e.type === 'changes' && e.changes.length > 0), true);
  subscription.close();
  await subscription.done;
});

test('membership through the client: remove and re-add a voter, refuse an unknown node, transfer leadership', async () => {
  const cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader());
  const client = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(() => client.close());
  const other = cluster.servers.find((s) => s !== leader)!;
  assert.deepEqual((await client.removeVoter(other.nodeId)).voters, [1, 2, 3].filter((id) => id !== other.nodeId));
  // The leader refuses the add while it has not heard from the third voter within its window
  // (SL_PLACEMENT_QUORUM_AT_RISK, by design); on a loaded machine a heartbeat can be late, and
  // an operator would try again, as this does.
  let added: Awaited<ReturnType<typeof client.addVoter>> | undefined;
  for (let attempt = 1; added === undefined; attempt++) {
    added = await client.addVoter(other.nodeId).catch((error: { code?: string }) => {
      if (error.code !== 'SL_PLACEMENT_QUORUM_AT_RISK' || attempt >= 50) throw error;
      return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100));
    });
  }
  assert.deepEqual(added.voters, [1, 2, 3]);
  await assert.rejects(client.addVoter(9), (e: { code?: string }) => e.code === 'SL_PLACEMENT_UNKNOWN_NODE');
  await waitFor('the re-added voter to catch up', () => (other.status().appliedIndex === leader.status().appliedIndex ? true : undefined));
  await client.transferLeader(other.nodeId);
  await waitFor('the transfer', () => (other.status().role === 'leader' ? true : undefined));
  await waitFor('the old leader to hear of the new one', () => (leader.status().leader === other.nodeId ? true : undefined));
  const status = await client.status(leader.address);
  assert.equal(status.leader, other.nodeId);
  assert.equal(status.leaderAddress, other.address);
  const { result } = await client.propose({ type: 'set-setting', key: 'after-transfer', value: true });
  assert.equal(result.status, 'ok');
});

test('mutual TLS: CA-signed peers and clients work; a client with a rogue or no certificate gets nothing', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'placement-tls-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  const certs = await makeTestCertificates(directory, 'placement-client');
  // The test server certificate is for serverAuth only; peers call each other with the client one.
  const cluster = await startCluster({ tls: { ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key, clientCert: certs.client.cert, clientKey: certs.client.key } });
  cleanups.push(() => cluster.stop());
  await waitFor('a leader over TLS', () => cluster.leader());
  const addresses = [...cluster.peers.values()].map((a) => a.replace('127.0.0.1', 'localhost'));
  const client = new PlacementClient({ addresses, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
  cleanups.push(() => client.close());
  assert.equal((await client.propose({ type: 'set-setting', key: 'tls', value: 1 })).result.status, 'ok');
  for (const tls of [{ ca: certs.ca.cert, cert: certs.rogueClient.cert, key: certs.rogueClient.key }, undefined]) {
    const stranger = new PlacementClient({ addresses, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, requestTimeoutMs: 1_500, ...(tls === undefined ? {} : { tls }) });
    cleanups.push(() => stranger.close());
    await assert.rejects(stranger.read(), (e: { code?: string }) => e.code === 'SL_PLACEMENT_UNAVAILABLE');
  }
  assert.ok(!(await client.read(['settings'])).settings?.some((s) => s.key !== 'tls'));
});

test('a watcher that takes nothing is cut off with SL_PLACEMENT_WATCH_TOO_SLOW, not buffered without bound', { timeout: 180_000 }, async () => {
  // One change per message and long keys, so a paused reader fills the HTTP/2 window (64 KiB)
  // and the stream's buffer after a few hundred changes; the stall bound is short.
  const cluster = await startCluster({ server: { watchBatchChanges: 1, watchStallMs: 300 } });
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader());
  const client = new PlacementClient({ addresses: [leader.address], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(() => client.close());
  const writes = 300;
  for (let i = 1; i <= writes; i++) await client.propose({ type: 'set-setting', key: `${'k'.repeat(240)}${i}`, value: i });
  const raw = new Client(leader.address, credentials.createInsecure());
  cleanups.push(() => raw.close());
  const method = placementService().methods.watch;
  const metadata = new Metadata();
  metadata.set(TOKEN_METADATA_KEY, CLUSTER_TOKEN);
  metadata.set(CLUSTER_METADATA_KEY, CLUSTER_ID);
  const stream = raw.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { fromRevision: 1 }, metadata, {});
  let received = 0;
  const ended = new Promise<string | undefined>((resolve) => {
    stream.on('error', (error: ServiceError) => resolve(statusToShardlineError(error)?.code));
    stream.on('end', () => resolve(undefined));
  });
  stream.on('data', () => {
    received++;
    // Take the first message, then stop reading for longer than the stall bound.
    if (received === 1) {
      stream.pause();
      setTimeout(() => stream.resume(), 1_500);
    }
  });
  // A stream never blocked would not end at all (watches do not end by themselves) and this
  // wait would fail the test by its timeout.
  assert.equal(await ended, 'SL_PLACEMENT_WATCH_TOO_SLOW');
});
