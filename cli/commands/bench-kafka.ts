// `shardline bench kafka`: flags and the report. The workload is cli/bench/kafka-bench.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Journal } from '../../journal/index.js';
import { appendScenario, runScenario } from '../bench/journal-bench.js';
import { UsageError, type Command, secondsFlag, boundedIntegerFlag } from '../command.js';
import { runKafkaBench, type KafkaBenchOptions, type KafkaBenchResult } from '../bench/kafka-bench.js';
import type { Percentiles } from '../bench/latency-histogram.js';
import { createProgress } from '../progress.js';

const MAX_DURATION_SECONDS = 600;
const MAX_RECORDS_PER_BATCH = 100_000;
const MAX_VALUE_BYTES = 8 * 1024 * 1024;

const usage = `
Usage: shardline bench kafka [flags]

Loads a Kafka listener (a Shardline node started with --kafka-port, or any Kafka broker) over
the Kafka protocol and reports what it sustained: producers send record batches to a fresh
topic (shardline-bench-<time>, or --topic), one consumer long-polls every partition, and every
record carries its send time. Printed: records/s and MB/s acknowledged in the measured window,
produce latency (request to answer; with --acks -1 that includes the durable append) and
end-to-end latency (send to fetched) as p50/p99/p999/max, records fetched of those sent, and
the tool's own CPU (near 100% of a core: the tool, not the broker, set the pace). Run it on
the broker's machine; the machine may be noisy: run it several times and quote medians.

Flags:
  --bootstrap HOST:PORT   the Kafka listener (default 127.0.0.1:9092)
  --topic NAME            use this topic (created if missing) instead of a fresh one
  --partitions N          partitions of the fresh topic (default 1)
  --producers N           producer connections (default 1), each taking the partitions in turn
  --batch N               records per produce request, one batch of one partition (default 100)
  --size BYTES            value bytes per record, at least 8 (the send time) (default 1024)
  --acks -1|1|0           produce acks (default -1: answered once durable); 0 sends without
                          answers, so only end-to-end latency is measured
  --rate R                records/s over all producers; 0 = as fast as --inflight allows (default 0)
  --inflight N            unanswered produce requests per producer (default 5, as Kafka clients)
  --duration S            measured seconds (default 10, at most ${MAX_DURATION_SECONDS})
  --warmup S              unmeasured seconds before them (default 1)
  --drain S               afterwards, how long the consumer may take to fetch the rest (default 5)
  --timeout S             longest wait for one request's answer (default 30)
  --journal-dir DIR       afterwards, run \`shardline bench journal\`'s append scenario of the same
                          shape (fsync, --producers appenders, --batch records of --size) in a
                          scratch journal under DIR (put it on the broker's disk) and print the
                          produce rate as a share of that floor
  --json                  print the report as JSON on stdout
  -h, --help              this text

A progress bar is drawn on stderr when it is a terminal (not with --json).
`;



export function parseKafkaBenchFlags(values: Record<string, unknown>): Omit<KafkaBenchOptions, 'onProgress'> {
  const bootstrap = typeof values.bootstrap === 'string' ? values.bootstrap : '127.0.0.1:9092';
  const colon = bootstrap.lastIndexOf(':');
  const port = Number(bootstrap.slice(colon + 1));
  const host = bootstrap.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError(`--bootstrap must be HOST:PORT, got ${JSON.stringify(bootstrap)}`);
  const acksText = typeof values.acks === 'string' ? values.acks : '-1';
  if (!['-1', '0', '1', 'all'].includes(acksText)) throw new UsageError(`--acks must be -1 (or all), 1 or 0, got ${JSON.stringify(acksText)}`);
  return {
    host,
    port,
    topic: typeof values.topic === 'string' ? values.topic : undefined,
    partitions: boundedIntegerFlag(values, 'partitions', 1, 1, 1000),
    producers: boundedIntegerFlag(values, 'producers', 1, 1, 256),
    batchRecords: boundedIntegerFlag(values, 'batch', 100, 1, MAX_RECORDS_PER_BATCH),
    valueBytes: boundedIntegerFlag(values, 'size', 1024, 8, MAX_VALUE_BYTES),
    acks: acksText === 'all' ? -1 : (Number(acksText) as -1 | 0 | 1),
    rate: boundedIntegerFlag(values, 'rate', 0, 0, 10_000_000),
    inflight: boundedIntegerFlag(values, 'inflight', 5, 1, 1000),
    durationMs: secondsFlag(values, 'duration', 10, 0.1, MAX_DURATION_SECONDS) * 1000,
    warmupMs: secondsFlag(values, 'warmup', 1, 0, 60) * 1000,
    drainMs: secondsFlag(values, 'drain', 5, 0, 600) * 1000,
    requestTimeoutMs: secondsFlag(values, 'timeout', 30, 1, 600) * 1000,
  };
}

function latencyLine(label: string, value: Percentiles | undefined): string {
  if (value === undefined) return `${label}: not measured (acks 0: no answers)`;
  const ms = (x: number): string => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
  return `${label}: p50 ${ms(value.p50)}, p99 ${ms(value.p99)}, p999 ${ms(value.p999)}, max ${ms(value.max)}`;
}

export interface JournalFloor {
  scenario: string;
  payloadMBps: number;
  p50Us: number;
  p99Us: number;
}

export function formatKafkaBench(options: Omit<KafkaBenchOptions, 'onProgress'>, result: KafkaBenchResult, floor?: JournalFloor): string {
  const errors = Object.entries(result.errors).map(([name, count]) => `${name} ${count}`);
  return [
    `bench kafka: topic ${result.topic}, ${options.partitions} partition(s), ${options.producers} producer(s), batches of ${options.batchRecords} x ${options.valueBytes} B, acks ${options.acks}, ${options.rate === 0 ? 'as fast as possible' : `${options.rate} records/s`}, ${result.seconds} s measured`,
    `produced: ${Math.round(result.recordsPerSecond)} records/s, ${result.megabytesPerSecond.toFixed(1)} MB/s (${result.produced} records)`,
    latencyLine('produce latency (request → answer)', result.produceLatencyMs),
    latencyLine('end to end (send → fetched)', result.consumed === 0 ? undefined : result.endToEndMs),
    `fetched: ${result.consumed} of ${result.produced} records sent in the window${result.consumed < result.produced ? ` (${result.produced - result.consumed} not fetched by the end of the drain)` : ''}`,
    `catch-up read (everything produced, from the first offset, page cache): ${result.catchUp.megabytesPerSecond.toFixed(1)} MB/s (${result.catchUp.records} records in ${result.catchUp.seconds.toFixed(2)} s)`,
    ...(floor === undefined ? [] : [`journal floor (${floor.scenario}, same disk): ${floor.payloadMBps.toFixed(1)} MB/s, append p50 ${(floor.p50Us / 1000).toFixed(2)} ms, p99 ${(floor.p99Us / 1000).toFixed(2)} ms; Kafka produce = ${((100 * result.megabytesPerSecond) / floor.payloadMBps).toFixed(0)} % of it`]),
    `errors: ${errors.length === 0 ? 'none' : errors.join(', ')}`,
    `load tool: ${(result.toolCpu * 100).toFixed(0)}% of one core`,
  ].join('\n');
}

export const benchKafkaCommand: Command = {
  path: ['bench', 'kafka'],
  summary: 'Load a Kafka listener (producers, a consumer) and report throughput and latency',
  usage,
  options: {
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    partitions: { type: 'string' },
    producers: { type: 'string' },
    batch: { type: 'string' },
    size: { type: 'string' },
    acks: { type: 'string' },
    rate: { type: 'string' },
    inflight: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    drain: { type: 'string' },
    timeout: { type: 'string' },
    'journal-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const options = parseKafkaBenchFlags(values);
    const json = values.json === true;
    const total = Math.ceil((options.warmupMs + options.durationMs) / 1000);
    const progress = json ? undefined : createProgress('bench kafka', total, 's');
    let result: KafkaBenchResult;
    try {
      result = await runKafkaBench({ ...options, onProgress: (elapsedMs) => progress?.update(Math.floor(elapsedMs / 1000)) });
    } catch (error) {
      progress?.stop();
      process.stderr.write(`shardline bench kafka: ${(error as Error).message}\n`);
      return 1;
    }
    progress?.stop();
    const floor = typeof values['journal-dir'] === 'string' ? await journalFloor(values['journal-dir'], options) : undefined;
    process.stdout.write(json ? `${JSON.stringify({ options, result, journalFloor: floor }, null, 2)}\n` : `${formatKafkaBench(options, result, floor)}\n`);
    return result.errors === undefined || Object.keys(result.errors).length === 0 ? 0 : 1;
  },
};

/** The journal's own append rate for the bench's shape, on a scratch journal in `base` (removed afterwards). */
async function journalFloor(base: string, options: Omit<KafkaBenchOptions, 'onProgress'>): Promise<JournalFloor> {
  const directory = await mkdtemp(join(resolve(base), 'shardline-bench-kafka-floor-'));
  const journal = await Journal.open(join(directory, 'journal'), { retentionCheckMs: 0 });
  try {
    const scenario = appendScenario(options.valueBytes, 'fsync', options.producers, options.batchRecords);
    const metrics = await runScenario(scenario, {
      journal,
      limits: { durationMs: options.durationMs, warmupMs: options.warmupMs, maxBytes: 2 * 2 ** 30 },
      now: () => performance.now(),
      signal: new AbortController().signal,
      shardName: 'bench-kafka-floor',
      probeDirectory: directory,
    });
    return { scenario: scenario.name, payloadMBps: metrics.payloadMBps ?? 0, p50Us: metrics.p50Us ?? 0, p99Us: metrics.p99Us ?? 0 };
  } finally {
    await journal.close();
    await rm(directory, { recursive: true, force: true });
  }
}
