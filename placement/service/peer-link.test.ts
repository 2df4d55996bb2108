// Goal: a PeerLink tells Raft its peer is unreachable when a working connection drops, even
// when no call is left to fail (a follower sends to its leader only in answer to it, so a dead
// leader leaves it nothing to send); and a failed call is reported too.
// Method: a bare gRPC server with the placement service's Step; the link sends one batch, the
// server is shut down by force, and the test waits (bounded, as liveness) for the report.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Server, ServerCredentials, credentials, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import pino from 'pino';
import { PeerLink } from './peer-link.js';
import { PLACEMENT_GRPC_CHANNEL_OPTIONS, placementService, type Empty, type StepRequest } from './placement-proto.js';

/** Liveness bound, not speed: the report comes well within this on any machine that runs the test. */
const REPORT_LIMIT_MS = 10_000;

async function stepServer(onStep: () => void): Promise<{ server: Server; port: number }> {
  const server = new Server(PLACEMENT_GRPC_CHANNEL_OPTIONS);
  const unimplemented = (_call: unknown, callback: sendUnaryData<unknown>) => callback({ code: 12, details: 'not in this test' });
  const implementation: UntypedServiceImplementation = {
    step: (_call: ServerUnaryCall<StepRequest, Empty>, callback: sendUnaryData<Empty>) => {
      onStep();
      callback(null, {});
    },
    propose: unimplemented,
    read: unimplemented,
    watch: unimplemented,
    status: unimplemented,
    addVoter: unimplemented,
    removeVoter: unimplemented,
    transferLeader: unimplemented,
  };
  server.addService(placementService().service, implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return { server, port };
}

function link(port: number, unreachable: number[]): PeerLink {
  return new PeerLink({
    from: 1,
    to: 2,
    address: `127.0.0.1:${port}`,
    clusterId: 'peer-link-test',
    clusterToken: 'peer-link-test-token',
    credentials: credentials.createInsecure(),
    logger: pino({ level: 'silent' }),
    queueMessages: 16,
    batchBytes: 1 << 20,
    backoffMinMs: 50,
    backoffMaxMs: 500,
    callTimeoutMs: 5_000,
    onUnreachable: (to) => unreachable.push(to),
    onSnapshotReport: () => undefined,
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + REPORT_LIMIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what} within ${REPORT_LIMIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a dropped connection is reported unreachable with no call in flight or queued', async () => {
  let steps = 0;
  const { server, port } = await stepServer(() => steps++);
  const unreachable: number[] = [];
  const peer = link(port, unreachable);
  try {
    peer.send(Buffer.from('one message'), false);
    await until(() => steps === 1, 'the first batch arrived');
    // Let the answer come back, so nothing is in flight when the peer goes.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unreachable, [], 'a working link reports nothing');
    server.forceShutdown();
    await until(() => unreachable.length > 0, 'the dropped connection was reported');
    assert.equal(unreachable[0], 2);
  } finally {
    peer.close();
    server.forceShutdown();
  }
});

test('a call to a peer that is not listening is reported unreachable', async () => {
  const { server, port } = await stepServer(() => undefined);
  server.forceShutdown();
  const unreachable: number[] = [];
  const peer = link(port, unreachable);
  try {
    peer.send(Buffer.from('one message'), false);
    await until(() => unreachable.length > 0, 'the failed call was reported');
  } finally {
    peer.close();
  }
});
