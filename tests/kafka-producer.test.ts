// The Kafka produce side end to end against a real `shardline start --kafka-port` process:
// record batches compressed with snappy, lz4 and zstd by kafkajs (its codec hook, with the same
// npm libraries registered client-side, zstd from the reference library compiled to wasm) and
// hand-built ones over a raw socket read back uncompressed, and a compression bomb is answered
// CORRUPT_MESSAGE while a bystander connection keeps working. The idempotent producer: kafkajs's
// `idempotent: true` producer, then hand-built batches with a producer id over a raw socket: a
// retried batch is answered with its original offset and stored once, a gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch INVALID_PRODUCER_EPOCH, and after a SIGKILL and a
// restart a retry of a batch acknowledged before the crash is still recognised.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import { ApiKey, crc32c, encodeRecordBatch, KafkaErrorCode, type KafkaStruct, type RecordBatch } from '../protocols/kafka/index.js';
import { cleanup, freePort, restartBroker, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { fetchAll, RawClient } from './support/kafka-raw-client.js';

const { CompressionTypes, CompressionCodecs, Kafka, logLevel } = kafkajs;
const require = createRequire(import.meta.url);
const snappyjs = require('snappyjs') as { compress(data: Uint8Array): Uint8Array; uncompress(data: Uint8Array): Uint8Array };
const lz4js = require('lz4js') as { compress(data: Uint8Array): Uint8Array; decompress(data: Uint8Array): Uint8Array };
const zstd = require('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(data: Uint8Array, level?: number): Uint8Array; decompress(data: Uint8Array): Uint8Array };

/** A kafkajs codec over a library's sync compress/decompress (kafkajs hands compress its Encoder). */
function kafkajsCodec(compress: (data: Buffer) => Uint8Array, decompress: (data: Buffer) => Uint8Array) {
  return () => ({
    compress: async (encoder: { buffer: Buffer }) => Buffer.from(compress(encoder.buffer)),
    decompress: async (buffer: Buffer) => Buffer.from(decompress(buffer)),
  });
}

function produceBody(topic: string, partition: number, records: Buffer, acks = -1): KafkaStruct {
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] };
}

function partitionResponse(body: KafkaStruct): KafkaStruct {
  return ((body.responses as KafkaStruct[])[0]!.partitionResponses as KafkaStruct[])[0]!;
}

/** A record batch with `payload` as its (already compressed) records section and a valid CRC. */
function batchWithPayload(codec: number, payload: Buffer, count: number): Buffer {
  const head = encodeRecordBatch({ ...plainBatch([]), attributes: codec }, new Map([[codec, { name: 'raw', compress: () => Buffer.alloc(0), decompress: () => Buffer.alloc(0) }]])).subarray(0, 61);
  const batch = Buffer.concat([head, payload]);
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt32BE(count, 57);
  batch.writeUInt32BE(crc32c(batch, 21), 17);
  return batch;
}

function plainBatch(values: string[], producer: { producerId: bigint; producerEpoch: number; baseSequence: number } = { producerId: -1n, producerEpoch: -1, baseSequence: -1 }): RecordBatch {
  return {
    baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: Math.max(0, values.length - 1), baseTimestamp: BigInt(Date.now()), maxTimestamp: BigInt(Date.now()),
    ...producer,
    records: values.map((value, offsetDelta) => ({ attributes: 0, timestampDelta: 0n, offsetDelta, key: null, value: Buffer.from(value), headers: [] })),
  };
}

describe('Kafka produce: snappy, lz4 and zstd from kafkajs and by hand', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let port = 0;
  before(async () => {
    await zstd.init();
    CompressionCodecs[CompressionTypes.Snappy] = kafkajsCodec((data) => snappyjs.compress(data), (data) => snappyjs.uncompress(data));
    CompressionCodecs[CompressionTypes.LZ4] = kafkajsCodec((data) => lz4js.compress(data), (data) => lz4js.decompress(data));
    CompressionCodecs[CompressionTypes.ZSTD] = kafkajsCodec((data) => zstd.compress(data, 3), (data) => zstd.decompress(data));
    port = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(port)] });
  });
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('kafkajs sends with each codec; every record reads back in order, uncompressed', async () => {
    const kafka = new Kafka({ clientId: 'compression-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 2 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'packed', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const expected: string[] = [];
    for (const [name, compression] of [['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4], ['zstd', CompressionTypes.ZSTD]] as const) {
      const messages = Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 3}`, value: `${name} record ${i} `.repeat(10) }));
      const [result] = await producer.send({ topic: 'packed', acks: -1, compression, messages });
      assert.equal(result!.errorCode, 0, name);
      expected.push(...messages.map((m) => m.value));
    }
    await producer.disconnect();
    const client = await RawClient.open(port);
    try {
      const { records, errorCode } = await fetchAll(client, 'packed', 0, 0n, 10 * 1024 * 1024);
      assert.equal(errorCode, 0);
      assert.deepEqual(records.map((r) => r.value), expected);
      assert.deepEqual(records.map((r) => r.offset), expected.map((_, i) => BigInt(i)));
    } finally {
      client.close();
    }
  });

  test('hand-built snappy (raw block), lz4 and zstd batches are appended; a 100 MiB zstd bomb is CORRUPT_MESSAGE and a bystander is unharmed', async () => {
    const client = await RawClient.open(port);
    const bystander = await RawClient.open(port);
    try {
      await client.call(ApiKey.CreateTopics, 5, { topics: [{ name: 'hand', numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
      const plain = encodeRecordBatch(plainBatch(['a1', 'a2', 'a3'])).subarray(61);
      const payloads: Array<[number, Buffer]> = [[2, Buffer.from(snappyjs.compress(plain))], [3, Buffer.from(lz4js.compress(plain))], [4, Buffer.from(zstd.compress(plain, 5))]];
      let offset = 0n;
      for (const [codec, payload] of payloads) {
        const response = partitionResponse(await client.call(ApiKey.Produce, 7, produceBody('hand', 0, batchWithPayload(codec, payload, 3))));
        assert.equal(response.errorCode, 0, `codec ${codec}`);
        assert.equal(response.baseOffset, offset);
        offset += 3n;
      }
      // 100 MiB of zeros, under 1 MiB compressed: past the broker's 64 MiB inflation cap.
      const bomb = Buffer.from(zstd.compress(Buffer.alloc(100 * 1024 * 1024), 1));
      assert.ok(bomb.length < 1024 * 1024);
      const refused = partitionResponse(await client.call(ApiKey.Produce, 7, produceBody('hand', 0, batchWithPayload(4, bomb, 1))));
      assert.equal(refused.errorCode, KafkaErrorCode.CORRUPT_MESSAGE);
      const { records } = await fetchAll(bystander, 'hand', 0);
      assert.deepEqual(records.map((r) => r.value), ['a1', 'a2', 'a3', 'a1', 'a2', 'a3', 'a1', 'a2', 'a3']);
    } finally {
      client.close();
      bystander.close();
    }
  });
});

describe('Kafka idempotent producer: kafkajs, raw duplicates and gaps, a retry after a crash', { timeout: 180_000 }, () => {
  let node: BrokerProcess | undefined;
  let port = 0;
  const args = (): string[] => ['--kafka-port', String(port)];
  before(async () => {
    port = await freePort();
    node = await startBroker({ args: args() });
  });
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('kafkajs producer({ idempotent: true }) sends to two partitions; every record is stored once, in order', async () => {
    const kafka = new Kafka({ clientId: 'idempotent-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'once', numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    const sent = new Map<number, string[]>([[0, []], [1, []]]);
    for (let round = 0; round < 5; round += 1) {
      const messages = Array.from({ length: 6 }, (_, i) => ({ partition: i % 2, value: `round ${round} record ${i}` }));
      for (const m of messages) sent.get(m.partition)!.push(m.value);
      const results = await producer.send({ topic: 'once', acks: -1, messages });
      for (const result of results) assert.equal(result.errorCode, 0);
    }
    await producer.disconnect();
    const client = await RawClient.open(port);
    try {
      for (const [partition, values] of sent) {
        const { records } = await fetchAll(client, 'once', partition);
        assert.deepEqual(records.map((r) => r.value), values, `partition ${partition}`);
      }
    } finally {
      client.close();
    }
  });

  test('raw: a retried batch gets its original offset and is stored once; gaps, old epochs and transactional ids are refused; the same after SIGKILL and restart', async () => {
    let client = await RawClient.open(port);
    await client.call(ApiKey.CreateTopics, 5, { topics: [{ name: 'seq', numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    const init = await client.call(ApiKey.InitProducerId, 1, { transactionalId: null, transactionTimeoutMs: 60000 });
    assert.equal(init.errorCode, 0);
    // Ids are handed out from 0 on a new node: kafkajs's idempotent producer above took 0.
    assert.equal(init.producerId, 1n);
    const producerId = init.producerId as bigint;
    const send = async (baseSequence: number, values: string[], producerEpoch = init.producerEpoch as number) =>
      partitionResponse(await client.call(ApiKey.Produce, 7, produceBody('seq', 0, encodeRecordBatch(plainBatch(values, { producerId, producerEpoch, baseSequence })))));
    assert.deepEqual(pick(await send(0, ['a', 'b', 'c'])), [0, 0n]);
    assert.deepEqual(pick(await send(3, ['d', 'e'])), [0, 3n]);
    assert.deepEqual(pick(await send(3, ['d', 'e'])), [0, 3n], 'the retry of the last batch: its original offset');
    assert.deepEqual(pick(await send(0, ['a', 'b', 'c'])), [0, 0n], 'an older batch still remembered');
    assert.equal((await send(9, ['gap'])).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const transactional = await client.call(ApiKey.InitProducerId, 1, { transactionalId: 'tx-1', transactionTimeoutMs: 60000 });
    assert.equal(transactional.errorCode, KafkaErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert.deepEqual((await fetchAll(client, 'seq', 0)).records.map((r) => r.value), ['a', 'b', 'c', 'd', 'e']);
    client.close();

    // SIGKILL: the state must come back from the shard itself.
    node = await restartBroker(node!, args());
    client = await RawClient.open(port);
    try {
      assert.deepEqual(pick(await send(3, ['d', 'e'])), [0, 3n], 'a retry after the crash is still answered with its original offset');
      assert.equal((await send(7, ['gap'])).errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'and a gap still refused');
      assert.deepEqual(pick(await send(5, ['f'])), [0, 5n]);
      // A new producer id is not one handed out before the crash; an epoch bump makes the old epoch stale.
      const again = await client.call(ApiKey.InitProducerId, 1, { transactionalId: null, transactionTimeoutMs: 60000 });
      assert.ok((again.producerId as bigint) > producerId);
      const bumped = await client.call(ApiKey.InitProducerId, 3, { transactionalId: null, transactionTimeoutMs: 60000, producerId, producerEpoch: init.producerEpoch as number });
      assert.equal(bumped.producerEpoch, (init.producerEpoch as number) + 1);
      assert.deepEqual(pick(await send(0, ['g'], bumped.producerEpoch as number)), [0, 6n]);
      assert.equal((await send(6, ['h'])).errorCode, KafkaErrorCode.INVALID_PRODUCER_EPOCH);
      assert.deepEqual((await fetchAll(client, 'seq', 0)).records.map((r) => r.value), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    } finally {
      client.close();
    }
  });
});

function pick(response: KafkaStruct): [number, bigint] {
  return [response.errorCode as number, response.baseOffset as bigint];
}
