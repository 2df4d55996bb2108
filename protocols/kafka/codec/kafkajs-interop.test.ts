// Interoperability of the codec with a real client's encoders and decoders: kafkajs 2.2.4 (a
// devDependency on main since 9f17893, "the clients the Kafka and AMQP front ends will be tested
// with"). No broker and no socket: kafkajs's own request builders frame requests that
// parseRequest must read, and kafkajs's response decoders read responses encodeResponse wrote.
//
// Goal: what a real client sends parses field for field (ApiVersions, Metadata, Produce with
// uncompressed and gzip batches, Fetch, the group APIs, ListOffsets), kafkajs's record batch
// re-encodes to its exact bytes (CRC-32C included), and kafkajs reads our responses, including a
// gzip batch in a Fetch response.
// Method: kafkajs's protocol modules (src/protocol/...) are loaded by path: they are internal to
// kafkajs but have not changed since its last release (2.2.4, 2023), which package.json pins.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { ApiKey } from './apis.js';
import { CompressionType } from './compression.js';
import { decodeRecordBatches, encodeRecordBatch } from './record-batch.js';
import { encodeResponse, parseRequest } from './request.js';

const require = createRequire(import.meta.url);
const P = 'kafkajs/src/protocol/';
/* eslint-disable @typescript-eslint/no-explicit-any -- kafkajs's protocol modules are untyped JavaScript */
const frameRequest = require(P + 'request.js') as (args: object) => Promise<{ buffer: Buffer }>;
const Decoder = require(P + 'decoder.js') as new (buffer: Buffer) => { readInt32(): number; readAll(): Buffer };
const { Types } = require(P + 'message/compression') as { Types: { None: number; GZIP: number } };
const protocolOf = (name: string) => (require(`${P}requests/${name}`) as { protocol: (v: { version: number }) => (args: object) => { request: object; response: any } }).protocol;

async function kjs(name: string, version: number, args: object): Promise<{ body: any; response: any }> {
  const { request, response } = protocolOf(name)({ version })(args);
  const { buffer } = await frameRequest({ correlationId: 77, clientId: 'kjs-client', request });
  const parsed = parseRequest(buffer.subarray(4));
  assert.equal(parsed.kind, 'request', `${name} v${version}: ${parsed.kind === 'close' ? parsed.error.message : ''}`);
  if (parsed.kind !== 'request') throw new Error('unreachable');
  assert.equal(parsed.header.correlationId, 77);
  assert.equal(parsed.header.clientId, 'kjs-client');
  assert.equal(parsed.trailingBytes, 0, `${name} v${version}: bytes left after the body`);
  return { body: parsed.body, response };
}

async function decodeWithKafkajs(response: any, frame: Buffer): Promise<any> {
  const decoder = new Decoder(frame.subarray(4));
  assert.equal(decoder.readInt32(), 77);
  return response.decode(decoder.readAll());
}

const NO_TOPIC_ID = '00000000-0000-0000-0000-000000000000';

test('ApiVersions v2: kafkajs\'s request parses; kafkajs reads our response', async () => {
  const { body, response } = await kjs('apiVersions', 2, {});
  assert.deepEqual(body, { clientSoftwareName: '', clientSoftwareVersion: '' });
  const out = await decodeWithKafkajs(response, encodeResponse(ApiKey.ApiVersions, 2, 77, { errorCode: 0, apiKeys: [{ apiKey: 0, minVersion: 3, maxVersion: 9 }, { apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 5 }));
  assert.deepEqual(out.apiVersions, [{ apiKey: 0, minVersion: 3, maxVersion: 9 }, { apiKey: 18, minVersion: 0, maxVersion: 3 }]);
  assert.equal(out.clientSideThrottleTime, 5); // kafkajs's name for a v2+ throttle time
});

test('Metadata v6: kafkajs\'s request parses; kafkajs reads our response', async () => {
  const { body, response } = await kjs('metadata', 6, { topics: ['orders', 'b'], allowAutoTopicCreation: false });
  assert.deepEqual(body.topics, [{ topicId: NO_TOPIC_ID, name: 'orders' }, { topicId: NO_TOPIC_ID, name: 'b' }]);
  assert.equal(body.allowAutoTopicCreation, false);
  const resp = { throttleTimeMs: 0, brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }], clusterId: 'sl', controllerId: 1,
    topics: [{ errorCode: 0, name: 'orders', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 3, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] }] }] };
  const out = await decodeWithKafkajs(response, encodeResponse(ApiKey.Metadata, 6, 77, resp));
  assert.equal(out.brokers[0].host, 'localhost'); assert.equal(out.clusterId, 'sl'); assert.equal(out.topicMetadata[0].topic, 'orders'); assert.equal(out.topicMetadata[0].partitionMetadata[0].leader, 1);
});

for (const compression of [Types.None, Types.GZIP]) {
  test(`Produce v7 from kafkajs (${compression === Types.None ? 'uncompressed' : 'gzip'}) parses; kafkajs reads our response`, async () => {
    const messages = [{ key: 'k1', value: 'hello', headers: { h: 'v' }, timestamp: 1700000000000 }, { key: null, value: 'world', timestamp: 1700000000005 }];
    const { body, response } = await kjs('produce', 7, { acks: -1, timeout: 30000, compression, topicData: [{ topic: 'orders', partitions: [{ partition: 2, messages }] }] });
    const records = (body.topicData as any)[0].partitionData[0].records as Buffer;
    const { batches } = decodeRecordBatches(records);
    assert.equal(batches.length, 1);
    const b = batches[0]!;
    assert.equal(b.attributes & 7, compression);
    assert.equal(b.baseTimestamp, 1700000000000n); assert.equal(b.maxTimestamp, 1700000000005n); assert.equal(b.lastOffsetDelta, 1);
    assert.deepEqual(b.records.map((r) => [r.key?.toString() ?? null, r.value?.toString(), r.offsetDelta, r.timestampDelta, r.headers.map((h) => [h.key, h.value?.toString()])]),
      [['k1', 'hello', 0, 0n, [['h', 'v']]], [null, 'world', 1, 5n, []]]);
    // Our re-encoding of kafkajs's batch gives its exact bytes (CRC-32C included) when uncompressed.
    if (compression === Types.None) assert.equal(encodeRecordBatch(b).toString('hex'), records.toString('hex'));
    const out = await decodeWithKafkajs(response, encodeResponse(ApiKey.Produce, 7, 77, { responses: [{ name: 'orders', partitionResponses: [{ index: 2, errorCode: 0, baseOffset: 41n, logAppendTimeMs: -1n, logStartOffset: 0n }] }], throttleTimeMs: 0 }));
    assert.equal(out.topics[0].partitions[0].baseOffset, '41');
  });
}

test('Fetch v11: kafkajs\'s request parses; kafkajs reads our response and the gzip batch in it', async () => {
  const { body, response } = await kjs('fetch', 11, { maxWaitTime: 500, minBytes: 1, maxBytes: 1048576, rackId: 'r1', topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: '10', maxBytes: 1048576 }] }] });
  assert.equal(body.maxWaitMs, 500); assert.equal(body.rackId, 'r1'); assert.equal(body.isolationLevel, 1);
  assert.equal((body.topics as any)[0].partitions[0].fetchOffset, 10n);
  const batch = encodeRecordBatch({ baseOffset: 10n, partitionLeaderEpoch: 0, attributes: CompressionType.gzip, lastOffsetDelta: 1, baseTimestamp: 1700000000000n, maxTimestamp: 1700000000001n, producerId: -1n, producerEpoch: -1, baseSequence: -1,
    records: [{ attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: Buffer.from('a'), value: Buffer.from('v10'), headers: [{ key: 'x', value: Buffer.from('y') }] }, { attributes: 0, timestampDelta: 1n, offsetDelta: 1, key: null, value: Buffer.from('v11'), headers: [] }] });
  const frame = encodeResponse(ApiKey.Fetch, 11, 77, { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [{ topic: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 12n, lastStableOffset: 12n, logStartOffset: 0n, abortedTransactions: [], preferredReadReplica: -1, records: batch }] }] });
  const out = await decodeWithKafkajs(response, frame);
  const msgs = out.responses[0].partitions[0].messages;
  assert.deepEqual(msgs.map((m: any) => [m.offset, m.key?.toString() ?? null, m.value.toString(), m.timestamp]), [['10', 'a', 'v10', '1700000000000'], ['11', null, 'v11', '1700000000001']]);
  assert.equal(msgs[0].headers.x.toString(), 'y');
});

test('group and offset APIs as kafkajs sends them: JoinGroup v5, SyncGroup v3, Heartbeat v3, OffsetCommit v5, OffsetFetch v4, FindCoordinator v2 (and its response), ListOffsets v3', async () => {
  const { body } = await kjs('joinGroup', 5, { groupId: 'g', sessionTimeout: 10000, rebalanceTimeout: 60000, memberId: '', groupInstanceId: null, protocolType: 'consumer', groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from([0, 1, 2]) }] });
  assert.deepEqual([body.groupId, body.sessionTimeoutMs, body.rebalanceTimeoutMs, body.groupInstanceId, body.protocolType, (body.protocols as any)[0].name, [...(body.protocols as any)[0].metadata]], ['g', 10000, 60000, null, 'consumer', 'RoundRobinAssigner', [0, 1, 2]]);
  const s = await kjs('syncGroup', 3, { groupId: 'g', generationId: 2, memberId: 'm', groupInstanceId: null, groupAssignment: [{ memberId: 'm', memberAssignment: Buffer.from([9]) }] });
  assert.equal((s.body.assignments as any)[0].memberId, 'm');
  const h = await kjs('heartbeat', 3, { groupId: 'g', groupGenerationId: 2, memberId: 'm', groupInstanceId: null });
  assert.equal(h.body.generationId, 2);
  const oc = await kjs('offsetCommit', 5, { groupId: 'g', groupGenerationId: 2, memberId: 'm', topics: [{ topic: 't', partitions: [{ partition: 0, offset: '42' }] }] });
  assert.equal((oc.body.topics as any)[0].partitions[0].committedOffset, 42n);
  const of = await kjs('offsetFetch', 4, { groupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0 }] }] });
  assert.deepEqual((of.body.topics as any)[0].partitionIndexes, [0]);
  const fc = await kjs('findCoordinator', 2, { groupId: 'g' });
  assert.equal(fc.body.key, 'g');
  const fco = await decodeWithKafkajs(fc.response, encodeResponse(ApiKey.FindCoordinator, 2, 77, { throttleTimeMs: 0, errorCode: 0, errorMessage: null, nodeId: 1, host: 'h', port: 9092 }));
  assert.equal(fco.coordinator.host, 'h');
  const lo = await kjs('listOffsets', 3, { topics: [{ topic: 't', partitions: [{ partition: 0, timestamp: '-1' }] }] });
  assert.equal((lo.body.topics as any)[0].partitions[0].timestamp, -1n);
});
