// `shardline bench kafka` against a real node with --kafka-port: short runs (acks -1 with a
// rate, and acks 0) whose JSON report must add up: records acknowledged and fetched, latency
// percentiles in order, no errors, the topic really holding what was produced. Usage errors
// exit 2. Speed is not asserted: this is the bench's own test, not a benchmark.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApiKey, type KafkaStruct } from '../protocols/kafka/index.js';
import { cleanup, freePort, runCli, scratchDirectory, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { RawClient } from './support/kafka-raw-client.js';

interface Report {
  options: { acks: number; batchRecords: number };
  journalFloor?: { scenario: string; payloadMBps: number; p50Us: number; p99Us: number };
  result: { topic: string; produced: number; consumed: number; catchUp: { records: number; seconds: number; megabytesPerSecond: number }; recordsPerSecond: number; produceLatencyMs?: { p50: number; p99: number; p999: number; max: number }; endToEndMs: { p50: number; p99: number; max: number }; errors: Record<string, number>; toolCpu: number };
}

async function bench(args: string[]): Promise<{ code: number | null; report: Report | undefined; stderr: string; stdout: string }> {
  const cli = runCli(['bench', 'kafka', ...args]);
  const { code, stderr } = await cli.exited;
  const stdout = cli.lines.join('\n');
  return { code, stderr, stdout, report: code === 0 && args.includes('--json') ? (JSON.parse(stdout) as Report) : undefined };
}

describe('shardline bench kafka', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('acks -1 at a fixed rate and acks 0: every record sent in the window is acknowledged and fetched', async () => {
    const kafkaPort = await freePort();
    node = await startBroker({ args: ['--kafka-port', String(kafkaPort)] });
    const paced = await bench(['--bootstrap', `127.0.0.1:${kafkaPort}`, '--partitions', '2', '--producers', '2', '--batch', '10', '--rate', '500', '--duration', '1', '--warmup', '0.2', '--drain', '20', '--journal-dir', await scratchDirectory('bench-kafka-floor-'), '--json']);
    assert.equal(paced.code, 0, paced.stderr);
    const { result, journalFloor } = paced.report!;
    assert.ok(result.catchUp.records >= result.produced && result.catchUp.megabytesPerSecond > 0, `the read-back covers every record produced: ${JSON.stringify(result.catchUp)}`);
    assert.equal(journalFloor?.scenario, 'append-1KiB-fsync-c2-b10', 'the journal floor has the run\'s shape');
    assert.ok(journalFloor.payloadMBps > 0 && journalFloor.p50Us > 0);
    assert.ok(result.produced > 0 && result.produced % 10 === 0, `whole batches acknowledged: ${result.produced}`);
    assert.equal(result.consumed, result.produced, 'the consumer fetched every record of the window');
    assert.deepEqual(result.errors, {});
    const latency = result.produceLatencyMs!;
    assert.ok(latency.p50 > 0 && latency.p50 <= latency.p99 && latency.p99 <= latency.p999 && latency.p999 <= latency.max, JSON.stringify(latency));
    assert.ok(result.endToEndMs.p50 > 0 && result.endToEndMs.p50 <= result.endToEndMs.max);
    // The topic holds at least the window's records (warm-up ones too), in its two partitions.
    const client = await RawClient.open(kafkaPort);
    try {
      const offsets = await client.call(ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: result.topic, partitions: [0, 1].map((partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp: -1n })) }] });
      const ends = ((offsets.topics as KafkaStruct[])[0]!.partitions as KafkaStruct[]).map((entry) => Number(entry.offset as bigint));
      assert.ok(ends.every((end) => end > 0) && ends[0]! + ends[1]! >= result.produced, `partition ends ${ends.join(', ')}`);
    } finally {
      client.close();
    }

    const unanswered = await bench(['--bootstrap', `127.0.0.1:${kafkaPort}`, '--acks', '0', '--batch', '20', '--duration', '0.5', '--warmup', '0', '--drain', '20', '--json']);
    assert.equal(unanswered.code, 0, unanswered.stderr);
    assert.equal(unanswered.report!.result.produceLatencyMs, undefined, 'acks 0: no produce latency');
    assert.ok(unanswered.report!.result.produced > 0);
    assert.equal(unanswered.report!.result.consumed, unanswered.report!.result.produced);

    const text = await bench(['--bootstrap', `127.0.0.1:${kafkaPort}`, '--duration', '0.3', '--warmup', '0']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /produce latency \(request → answer\): p50 [\d.]+ ms, p99/);
    assert.match(text.stdout, /catch-up read \(everything produced, from the first offset, page cache\): [\d.]+ MB\/s/);
  });

  test('bad flags exit 2 with the flag named; an unreachable listener exits 1', async () => {
    for (const [flags, pattern] of [[['--acks', '2'], /--acks must be/], [['--size', '4'], /--size must be an integer >= 8/], [['--bootstrap', 'nowhere'], /--bootstrap must be HOST:PORT/], [['--duration', '0'], /--duration must be a number of seconds/]] as const) {
      const run = await bench([...flags]);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
    const unreachable = await bench(['--bootstrap', `127.0.0.1:${await freePort()}`, '--duration', '0.2']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /ECONNREFUSED/);
  });
});
