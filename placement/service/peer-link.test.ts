// Goal: a PeerLink tells Raft its peer is unreachable when a working connection drops, even
// when no call is left to fail (a follower sends to its leader only in answer to it, so a dead
// leader leaves it nothing to send); and a failed call is reported too. Messages go over one
// StepStream call, in order; snapshots go by Step, whose answer is their report; a peer without
// StepStream (an older version) gets Step calls; a refused stream is a failure, and the link
// opens a new one after its backoff.
// Method: a bare gRPC server with the placement service's Step (and StepStream, where a test
// says so); the tests wait (bounded, as liveness) for what they check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metadata, Server, ServerCredentials, credentials, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import pino from 'pino';
import { PeerLink } from './peer-link.js';
import { PLACEMENT_GRPC_CHANNEL_OPTIONS, placementService, type Empty, type StepRequest } from './placement-proto.js';

/** Liveness bound, not speed: the report comes well within this on any machine that runs the test. */
const REPORT_LIMIT_MS = 10_000;

/** What a stream handler does with each request: nothing, or end the call with this status. */
type StreamHandler = (request: StepRequest, call: ServerReadableStream<StepRequest, Empty>) => { code: number; details: string } | undefined;

/** Without `onStream`, the server has no StepStream (UNIMPLEMENTED, as a peer from before it). */
async function stepServer(onStep: (request: StepRequest) => void, onStream?: StreamHandler, onStreamOpened?: () => void): Promise<{ server: Server; port: number }> {
  const server = new Server(PLACEMENT_GRPC_CHANNEL_OPTIONS);
  const unimplemented = (_call: unknown, callback: sendUnaryData<unknown>) => callback({ code: 12, details: 'not in this test' });
  const implementation: UntypedServiceImplementation = {
    step: (call: ServerUnaryCall<StepRequest, Empty>, callback: sendUnaryData<Empty>) => {
      onStep(call.request);
      callback(null, {});
    },
    stepStream: (call: ServerReadableStream<StepRequest, Empty>, callback: sendUnaryData<Empty>) => {
      if (onStream === undefined) {
        callback({ code: 12, details: 'an older peer' });
        return;
      }
      onStreamOpened?.();
      call.sendMetadata(new Metadata());
      let ended = false;
      call.on('data', (request: StepRequest) => {
        if (ended) return;
        const refusal = onStream(request, call);
        if (refusal !== undefined) {
          ended = true;
          callback(refusal);
        }
      });
      call.on('end', () => {
        if (!ended) callback(null, {});
      });
      call.on('error', () => undefined);
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

function link(port: number, unreachable: number[], snapshotReports: boolean[] = []): PeerLink {
  return new PeerLink({
    from: 1,
    to: 2,
    address: `127.0.0.1:${port}`,
    clusterId: 'peer-link-test',
    clusterToken: 'peer-link-test-token',
    credentials: credentials.createInsecure(),
    logger: pino({ level: 'silent' }),
    queueMessages: 256,
    batchBytes: 1 << 20,
    backoffMinMs: 50,
    backoffMaxMs: 500,
    callTimeoutMs: 5_000,
    onUnreachable: (to) => unreachable.push(to),
    onSnapshotReport: (_to, failed) => snapshotReports.push(failed),
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

const text = (request: StepRequest): string[] => request.messages.map((m) => m.toString());

test('messages go over one StepStream call, in order, with none by Step', async () => {
  const received: string[] = [];
  let streams = 0;
  let steps = 0;
  const { server, port } = await stepServer(() => steps++, (request) => void received.push(...text(request)), () => streams++);
  const unreachable: number[] = [];
  const peer = link(port, unreachable);
  try {
    for (let i = 0; i < 50; i++) peer.send(Buffer.from(`m${i}`), false);
    await until(() => received.length === 50, 'the first 50 messages arrived');
    // Later sends, one at a time, take the same call.
    for (let i = 50; i < 100; i++) {
      peer.send(Buffer.from(`m${i}`), false);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => received.length === 100, 'all 100 messages arrived');
    assert.deepEqual(received, Array.from({ length: 100 }, (_, i) => `m${i}`));
    assert.equal(streams, 1);
    assert.equal(steps, 0);
    assert.deepEqual(unreachable, []);
  } finally {
    peer.close();
    server.forceShutdown();
  }
});

test('a snapshot goes by Step and is reported sent; the messages around it go by the stream', async () => {
  const streamed: string[] = [];
  const stepped: string[] = [];
  const { server, port } = await stepServer((request) => void stepped.push(...text(request)), (request) => void streamed.push(...text(request)));
  const reports: boolean[] = [];
  const peer = link(port, [], reports);
  try {
    peer.send(Buffer.from('before'), false);
    peer.send(Buffer.from('snapshot'), true);
    peer.send(Buffer.from('after'), false);
    await until(() => streamed.length === 2 && reports.length === 1, 'both messages streamed and the snapshot reported');
    assert.deepEqual(streamed, ['before', 'after']);
    assert.deepEqual(stepped, ['snapshot']);
    assert.deepEqual(reports, [false]);
  } finally {
    peer.close();
    server.forceShutdown();
  }
});

test('a peer without StepStream gets Step calls, in order', async () => {
  const stepped: string[] = [];
  const { server, port } = await stepServer((request) => void stepped.push(...text(request)));
  const unreachable: number[] = [];
  const peer = link(port, unreachable);
  try {
    for (let i = 0; i < 20; i++) peer.send(Buffer.from(`m${i}`), false);
    await until(() => stepped.length === 20, 'all 20 messages arrived by Step');
    assert.deepEqual(stepped, Array.from({ length: 20 }, (_, i) => `m${i}`));
    assert.deepEqual(unreachable, [], 'UNIMPLEMENTED is no failure');
  } finally {
    peer.close();
    server.forceShutdown();
  }
});

test('a refused stream is reported unreachable, and the link opens a new call after its backoff', async () => {
  const received: string[] = [];
  let streams = 0;
  const { server, port } = await stepServer(
    () => undefined,
    (request) => {
      if (text(request).includes('refused')) return { code: 3, details: 'a bad message' };
      received.push(...text(request));
      return undefined;
    },
    () => streams++,
  );
  const unreachable: number[] = [];
  const peer = link(port, unreachable);
  try {
    peer.send(Buffer.from('refused'), false);
    await until(() => unreachable.length === 1, 'the refusal was reported');
    peer.send(Buffer.from('next'), false);
    await until(() => received.includes('next'), 'a later message arrived on a new call');
    assert.equal(streams, 2);
  } finally {
    peer.close();
    server.forceShutdown();
  }
});
