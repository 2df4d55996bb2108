// The placement service on loopback: three in-process PlacementServers (in-memory persistence)
// and real @grpc/grpc-js clients.
//
// Goal and method: a PlacementClient writes settings continuously while the leader is stopped;
// a new leader must take writes, every write must be applied exactly once (final state and
// revision count), and a watcher that started on the stopped leader must see every change once,
// in order, across the leader change. Then raw gRPC calls with a wrong token, another cluster
// id, an unknown node, a corrupt message and a stale term: each refused with its code (or, for
// the stale term, harmless), none moves a term, a log or a vote.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, Metadata, type ServiceError } from '@grpc/grpc-js';
import { message } from '../raft/index.js';
import type { Change } from '../metadata/index.js';
import { recordingLogger } from '../../tests/support/recording-logger.js';
import { PlacementClient, type WatchEvent } from './client.js';
import { statusToShardlineError } from './grpc-status.js';
import { CLUSTER_METADATA_KEY, TOKEN_METADATA_KEY, placementService, type StepRequest } from './placement-proto.js';
import { encodeRaftMessage } from './raft-envelope.js';
import { CLUSTER_ID, CLUSTER_TOKEN, startCluster, waitFor } from './test-cluster.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('a leader stop during continuous writes: a new leader takes them, each applied once, the watch sees every change in order', async () => {
  const cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  const first = await waitFor('a first leader', () => cluster.leader());
  const addresses = [...cluster.peers.values()];
  const writer = new PlacementClient({ addresses, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  // The watcher starts on the leader that will be stopped, so it must resubscribe elsewhere.
  const watcher = new PlacementClient({ addresses: [first.address, ...addresses.filter((a) => a !== first.address)], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(() => writer.close(), () => watcher.close());
  const seen: Change[] = [];
  const events: WatchEvent[] = [];
  const subscription = watcher.watch(1, (event) => {
    events.push(event);
    if (event.type === 'changes') seen.push(...event.changes);
  });

  const writes = 40;
  const stopAt = 15;
  const revisions: number[] = [];
  let stoppedAt = 0;
  let firstWriteAfterStopMs = -1;
  for (let i = 1; i <= writes; i++) {
    const write = writer.propose({ type: 'set-setting', key: `k${i}`, value: i });
    if (i === stopAt) {
      // Stop the leader with this write in flight: its answer may be lost after it committed,
      // and the client's retry (same sequence) must not apply it again.
      stoppedAt = Date.now();
      await first.stop(200);
    }
    const { result } = await write;
    assert.equal(result.status, 'ok', `write ${i}: ${JSON.stringify(result)}`);
    revisions.push(result.revision);
    if (i === stopAt) firstWriteAfterStopMs = Date.now() - stoppedAt;
  }
  const second = await waitFor('a new leader', () => cluster.leader());
  assert.notEqual(second.nodeId, first.nodeId);
  assert.ok(firstWriteAfterStopMs >= 0 && firstWriteAfterStopMs < 5_000, `first write after the stop took ${firstWriteAfterStopMs} ms`);

  // Exactly once: every write got its own revision, one apart, and the state holds each value
  // at the revision its write was answered with; a write applied twice would show as a gap.
  for (let i = 1; i < revisions.length; i++) assert.equal(revisions[i], revisions[i - 1]! + 1, `revisions ${revisions.join(',')}`);
  const state = await writer.read(['settings']);
  assert.equal(state.revision, revisions.at(-1));
  assert.deepEqual(state.settings?.map((s) => [s.key, s.value, s.revision]).sort((a, b) => (a[2] as number) - (b[2] as number)), revisions.map((revision, i) => [`k${i + 1}`, i + 1, revision]));

  // A retry of the last command (same client id and sequence) is answered, not applied again.
  const retry = await retryLast(second.address, writer.clientId, writes, `k${writes}`);
  assert.equal(retry.revision, revisions.at(-1));
  assert.equal((await writer.read([])).revision, revisions.at(-1), 'the retry moved the revision');

  // The watch: every change once, in revision order, ending at the last write.
  await waitFor('the watcher to catch up', () => (seen.at(-1)?.revision === revisions.at(-1) ? true : undefined));
  assert.deepEqual(seen.map((c) => [c.kind, c.key, c.op, c.revision]), revisions.map((revision, i) => ['setting', `k${i + 1}`, 'put', revision]));
  assert.ok(!events.some((e) => e.type === 'error'), JSON.stringify(events.filter((e) => e.type === 'error')));
  subscription.close();
  await subscription.done;
});

/** Sends Propose for `sequence` of `clientId` again, as a client whose answer was lost would. */
async function retryLast(address: string, clientId: string, sequence: number, key: string): Promise<{ revision: number }> {
  const client = new Client(address, (await import('@grpc/grpc-js')).credentials.createInsecure());
  try {
    const method = placementService().methods.propose;
    const command = Buffer.from(JSON.stringify({ type: 'set-setting', clientId, sequence, key, value: sequence }));
    const response = await new Promise<{ resultJson: string }>((resolve, reject) => client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, { command }, authMetadata(), { deadline: Date.now() + 5_000 }, (error, value) => (error === null && value !== undefined ? resolve(value) : reject(error))));
    return JSON.parse(response.resultJson) as { revision: number };
  } finally {
    client.close();
  }
}

function authMetadata(token = CLUSTER_TOKEN, clusterId = CLUSTER_ID): Metadata {
  const metadata = new Metadata();
  metadata.set(TOKEN_METADATA_KEY, token);
  metadata.set(CLUSTER_METADATA_KEY, clusterId);
  return metadata;
}

test('bad tokens, other clusters, unknown nodes and corrupt messages are refused; a stale term is harmless', async () => {
  const log = recordingLogger('info');
  const cluster = await startCluster({ logger: log.logger });
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader());
  const follower = cluster.servers.find((s) => s !== leader)!;
  const writer = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(() => writer.close());
  await writer.propose({ type: 'set-setting', key: 'before', value: 1 });
  await waitFor('the follower to apply', () => (follower.status().appliedIndex === leader.status().appliedIndex ? true : undefined));

  const raw = new Client(follower.address, (await import('@grpc/grpc-js')).credentials.createInsecure());
  cleanups.push(() => raw.close());
  const step = (request: StepRequest, metadata: Metadata) => new Promise<string | null>((resolve) => {
    const method = placementService().methods.step;
    raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, { deadline: Date.now() + 5_000 }, (error: ServiceError | null) => resolve(error === null ? null : (statusToShardlineError(error)?.code ?? `grpc ${error.code}`)));
  });
  const before = follower.status();
  // A vote request far ahead in term: stepped, it would depose the leader.
  const vote = encodeRaftMessage(message({ type: 'vote', from: leader.nodeId, to: follower.nodeId, term: before.term + 100, logTerm: before.term + 99, index: before.commitIndex + 100 }));
  const fromPeer = { clusterId: CLUSTER_ID, from: leader.nodeId, to: follower.nodeId, messages: [vote] };

  assert.equal(await step(fromPeer, authMetadata('wrong-token')), 'SL_PLACEMENT_UNAUTHENTICATED');
  assert.equal(await step(fromPeer, new Metadata()), 'SL_PLACEMENT_UNAUTHENTICATED');
  assert.equal(await step(fromPeer, authMetadata(CLUSTER_TOKEN, 'other-cluster')), 'SL_PLACEMENT_WRONG_CLUSTER');
  assert.equal(await step({ ...fromPeer, clusterId: 'other-cluster' }, authMetadata()), 'SL_PLACEMENT_WRONG_CLUSTER');
  const stranger = encodeRaftMessage(message({ type: 'vote', from: 9, to: follower.nodeId, term: before.term + 100, logTerm: before.term + 99, index: before.commitIndex + 100 }));
  assert.equal(await step({ ...fromPeer, from: 9, messages: [stranger] }, authMetadata()), 'SL_PLACEMENT_UNKNOWN_NODE');
  assert.equal(await step({ ...fromPeer, to: leader.nodeId }, authMetadata()), 'SL_PLACEMENT_UNKNOWN_NODE');
  assert.equal(await step({ ...fromPeer, messages: [vote.subarray(0, vote.length - 3)] }, authMetadata()), 'SL_PLACEMENT_BAD_MESSAGE');
  const flipped = Buffer.from(vote);
  flipped[20]! ^= 0x40;
  assert.equal(await step({ ...fromPeer, messages: [flipped] }, authMetadata()), 'SL_PLACEMENT_BAD_MESSAGE');
  // One bad message refuses the whole call: the good one beside it is not stepped either.
  assert.equal(await step({ ...fromPeer, messages: [vote, Buffer.from('garbage')] }, authMetadata()), 'SL_PLACEMENT_BAD_MESSAGE');
  // A client with the wrong token is refused at once, not retried until its deadline.
  const intruder = new PlacementClient({ addresses: [leader.address], clusterId: CLUSTER_ID, clusterToken: 'wrong-token', requestTimeoutMs: 60_000 });
  cleanups.push(() => intruder.close());
  const started = Date.now();
  await assert.rejects(intruder.read(), (e: { code?: string }) => e.code === 'SL_PLACEMENT_UNAUTHENTICATED');
  await assert.rejects(intruder.propose({ type: 'set-setting', key: 'intruder', value: 1 }), (e: { code?: string }) => e.code === 'SL_PLACEMENT_UNAUTHENTICATED');
  assert.ok(Date.now() - started < 5_000);

  // Nothing of the refused calls reached Raft: same term, same leader, no new entry.
  const afterRefusals = follower.status();
  assert.equal(afterRefusals.term, before.term);
  assert.equal(afterRefusals.leader, leader.nodeId);
  assert.equal(afterRefusals.commitIndex, before.commitIndex);
  assert.ok(!(await writer.read(['settings'])).settings?.some((s) => s.key === 'intruder'));

  // A stale term (a deposed leader's late append) is accepted by the transport and ignored by Raft.
  const stale = encodeRaftMessage(message({ type: 'app', from: leader.nodeId, to: follower.nodeId, term: before.term - 1 > 0 ? before.term - 1 : 1, logTerm: 1, index: before.commitIndex, commit: before.commitIndex }));
  if (before.term > 1) {
    assert.equal(await step({ ...fromPeer, messages: [stale] }, authMetadata()), null);
  }
  const { result } = await writer.propose({ type: 'set-setting', key: 'after', value: 2 });
  assert.equal(result.status, 'ok');
  assert.equal(follower.status().term, before.term);
  assert.equal(leader.status().role, 'leader');

  // Each refusal was logged at warn with its code.
  const codes = new Set(log.atLeast('warn').map((line) => line.code));
  for (const code of ['SL_PLACEMENT_UNAUTHENTICATED', 'SL_PLACEMENT_WRONG_CLUSTER', 'SL_PLACEMENT_UNKNOWN_NODE', 'SL_PLACEMENT_BAD_MESSAGE']) assert.ok(codes.has(code), `no warn line with ${code}`);
});
