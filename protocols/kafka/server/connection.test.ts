// The per-connection state machine without sockets: responses in request order whatever order
// the handlers finish in, nothing for acks = 0, and the refusals that close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey, decodeResponse, encodeRequest, FrameSplitter, KafkaErrorCode, type KafkaStruct } from '../codec/index.js';
import { InboundBudget } from '../../listener/index.js';
import { KafkaConnection, type KafkaHandler } from './connection.js';

function harness(handler: KafkaHandler, maxFrameBytes = 1 << 20, maxInFlight?: number) {
  const sent: Buffer[] = [];
  const events: string[] = [];
  const connection = new KafkaConnection(handler, {
    send: (frame) => sent.push(Buffer.concat(frame)),
    close: (reason) => events.push(`close: ${reason}`),
    pause: () => events.push('pause'),
    resume: () => events.push('resume'),
  }, { maxFrameBytes, ...(maxInFlight === undefined ? {} : { maxInFlight }) });
  const correlations = (): number[] => {
    const splitter = new FrameSplitter();
    const split = splitter.push(Buffer.concat(sent));
    assert.ok(split.ok);
    return split.frames.map((frame) => frame.readInt32BE(0));
  };
  return { connection, sent, events, correlations };
}

const metadata = (correlationId: number): Buffer => encodeRequest(ApiKey.Metadata, 9, correlationId, 't', { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
const produce = (correlationId: number, acks: number): Buffer => encodeRequest(ApiKey.Produce, 7, correlationId, 't', { transactionalId: null, acks, timeoutMs: 100, topicData: [] });
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('responses go out in request order even when later handlers finish first; acks = 0 gets none', async () => {
  const release: Array<() => void> = [];
  const handler: KafkaHandler = async (header) => {
    if (header.correlationId === 1) await new Promise<void>((resolve) => release.push(resolve));
    if (header.apiKey === ApiKey.Produce) return (await Promise.resolve(undefined));
    return { throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 0, topics: [] } satisfies KafkaStruct;
  };
  const { connection, correlations, sent } = harness(handler);
  // Three requests in one chunk, split at an odd place across two receives.
  const bytes = Buffer.concat([metadata(1), produce(2, 0), metadata(3)]);
  connection.receive(bytes.subarray(0, 7));
  connection.receive(bytes.subarray(7));
  await tick();
  assert.deepEqual(correlations(), [], 'nothing before the first response is ready');
  release[0]!();
  await tick();
  await tick();
  assert.deepEqual(correlations(), [1, 3]);
  assert.equal(decodeResponse(ApiKey.Metadata, 9, sent[0]!.subarray(4)).correlationId, 1);
});

test('a frame size over the maximum, an unserved API, and an ApiVersions past ours', async () => {
  const handler: KafkaHandler = async () => ({});
  const oversized = harness(handler, 100);
  const size = Buffer.alloc(4);
  size.writeInt32BE(101);
  oversized.connection.receive(size);
  assert.deepEqual(oversized.events, ['close: bad frame size']);
  assert.ok(oversized.connection.closed);

  const unserved = harness(handler);
  // Every API of the codec is served; SaslHandshake v0 (bare SASL tokens outside Kafka's framing) is not.
  unserved.connection.receive(encodeRequest(ApiKey.SaslHandshake, 0, 5, 't', { mechanism: 'PLAIN' }));
  assert.deepEqual(unserved.events, ['close: API 17 version 0 is not served']);

  const future = harness(handler);
  const header = Buffer.from([0, 18, 0, 9, 0, 0, 0, 4, 0xff, 0xff, 0]);
  const frame = Buffer.concat([Buffer.from([0, 0, 0, header.length]), header]);
  future.connection.receive(frame);
  const answer = decodeResponse(ApiKey.ApiVersions, 0, future.sent[0]!.subarray(4));
  assert.equal(answer.body.errorCode, KafkaErrorCode.UNSUPPORTED_VERSION);
  assert.equal(future.events.length, 0, 'the connection stays open');
});

test('reading pauses at the in-flight limit and resumes when answers go out', async () => {
  const release: Array<() => void> = [];
  const handler: KafkaHandler = () => new Promise((resolve) => release.push(() => resolve({ throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 0, topics: [] })));
  const { connection, events } = harness(handler, 1 << 20, 2);
  connection.receive(Buffer.concat([metadata(1), metadata(2)]));
  assert.deepEqual(events, ['pause']);
  release[0]!();
  await tick();
  assert.deepEqual(events, ['pause', 'resume']);
});

test('reading pauses once the requests held reach the byte bound, whatever their count', async () => {
  const release: Array<() => void> = [];
  const handler: KafkaHandler = () => new Promise((resolve) => release.push(() => resolve({ throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 0, topics: [] })));
  const request = metadata(1);
  // Room for two Metadata requests' bodies (the size prefix is not held), not a third.
  const events: string[] = [];
  const connection = new KafkaConnection(handler, { send: () => {}, close: (reason) => events.push(`close: ${reason}`), pause: () => events.push('pause'), resume: () => events.push('resume') }, { maxFrameBytes: 1 << 20, maxInFlightBytes: 2 * (request.length - 4) + 1 });
  connection.receive(Buffer.concat([metadata(1), metadata(2)]));
  assert.deepEqual(events, [], 'two requests stay under the bound');
  connection.receive(metadata(3));
  assert.deepEqual(events, ['pause']);
  release[0]!();
  await tick();
  assert.deepEqual(events, ['pause', 'resume'], 'the first answer frees its bytes');
});

test('a handler that throws closes the connection; after ended() nothing is sent', async () => {
  const failing = harness(async () => {
    throw new Error('boom');
  });
  failing.connection.receive(metadata(1));
  await tick();
  assert.deepEqual(failing.events, ['close: request failed']);

  let resolveLater: (value: KafkaStruct) => void = () => undefined;
  const late = harness(() => new Promise((resolve) => (resolveLater = resolve)));
  late.connection.receive(metadata(1));
  late.connection.ended();
  resolveLater({ throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 0, topics: [] });
  await tick();
  assert.equal(late.sent.length, 0);
});

test('the node-wide inbound budget: a large request reserves its size at its prefix, a second connection waits unread until the first is answered', async () => {
  const budget = new InboundBudget(300_000);
  const release: Array<() => void> = [];
  const handler: KafkaHandler = async () => {
    await new Promise<void>((resolve) => release.push(resolve));
    return { throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 0, topics: [] } satisfies KafkaStruct;
  };
  const connect = () => {
    const events: string[] = [];
    const connection = new KafkaConnection(handler, { send: () => events.push('send'), close: (reason) => events.push(`close: ${reason}`), pause: () => events.push('pause'), resume: () => events.push('resume') }, { maxFrameBytes: 1 << 20, budget });
    return { connection, events };
  };
  // A Produce carrying 200,000 bytes: over the 64 KiB unreserved size (the handler does not read it).
  const big = (correlationId: number): Buffer => encodeRequest(ApiKey.Produce, 7, correlationId, 't', { transactionalId: null, acks: 1, timeoutMs: 100, topicData: [{ name: 't', partitionData: [{ index: 0, records: Buffer.alloc(200_000) }] }] });
  const first = connect();
  const second = connect();
  const a = big(1);
  const b = big(2);
  first.connection.receive(a.subarray(0, 1000));
  assert.equal(budget.stats.reservedBytes, a.length - 4, 'reserved whole at the size prefix');
  second.connection.receive(b.subarray(0, 1000));
  assert.deepEqual(second.events, ['pause'], 'the second does not fit: its connection is not read');
  assert.equal(budget.stats.waiting, 1);
  first.connection.receive(a.subarray(1000));
  await tick();
  assert.equal(budget.stats.reservedBytes, a.length - 4, 'held while the request is handled');
  release.shift()!();
  await tick();
  await tick();
  assert.deepEqual(first.events, ['send'], 'answered');
  assert.deepEqual(second.events, ['pause', 'resume'], 'granted once the first answer went out');
  assert.equal(budget.stats.reservedBytes, b.length - 4);
  // A connection that goes away gives its reservation back.
  second.connection.ended();
  assert.equal(budget.stats.reservedBytes, 0);
  // Small requests never touch the budget.
  const small = connect();
  small.connection.receive(metadata(9));
  assert.equal(budget.stats.grantedTotal, 2);
  release.splice(0).forEach((resolve) => resolve());
});
