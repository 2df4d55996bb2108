// `shardline bench amqp`: tiny runs against the fresh Shardline node the command starts itself
// (and, where RabbitMQ is installed, against the RabbitMQ it starts itself), whose reports must
// add up: every confirmed message of the window consumed, none nacked or redelivered, latency
// percentiles in order, the broker's and the tool's CPU measured, medians of the rounds; and
// afterwards none of the brokers' processes left. Usage errors exit 2. Speed is not asserted:
// this is the bench's own test, not a benchmark.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, describe, test } from 'node:test';
import { findRabbitmq } from '../cli/testing.js';
import { cleanup, freePort, runCli, startBroker, stopBroker } from './support/broker-process.js';

interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}
interface Run {
  round: number;
  broker: string;
  error?: string;
  warning?: string;
  brokerCpu: number | null;
  result: { confirmed: number; consumed: number; nacked: number; redelivered: number; confirmedPerSecond: number; consumedPerSecond: number; seconds: number; confirmLatencyMs: Percentiles; endToEndMs: Percentiles; toolCpu: number };
}
interface Report {
  brokers: string[];
  notes: string[];
  rabbitmq: { version: string } | null;
  runs: Run[];
  rows: Array<{ figure: string; brokers: Record<string, { median: number | null; rounds: number[] }>; ratio?: number }>;
}

async function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; report: Report | undefined }> {
  const cli = runCli(['bench', 'amqp', ...args]);
  const { code, stderr } = await cli.exited;
  const stdout = cli.lines.join('\n');
  return { code, stdout, stderr, report: code === 0 && args.includes('--json') ? (JSON.parse(stdout) as Report) : undefined };
}

function checkRun(run: Run, brokerCpuMeasured = true): void {
  const what = `${run.broker} round ${run.round}`;
  assert.equal(run.error, undefined, what);
  assert.equal(run.warning, undefined, what);
  const { result } = run;
  assert.ok(result.confirmed > 0, `${what}: confirmed ${result.confirmed}`);
  assert.equal(result.consumed, result.confirmed, `${what}: every confirmed message of the window consumed`);
  assert.equal(result.nacked, 0);
  assert.equal(result.redelivered, 0, 'nothing requeued, so nothing redelivered');
  assert.ok(Math.abs(result.confirmedPerSecond - result.confirmed / result.seconds) < 1e-6 * result.confirmedPerSecond + 1e-9);
  for (const latency of [result.confirmLatencyMs, result.endToEndMs]) {
    assert.ok(latency.p50 > 0 && latency.p50 <= latency.p99 && latency.p99 <= latency.p999 && latency.p999 <= latency.max, JSON.stringify(latency));
  }
  if (brokerCpuMeasured) assert.ok(run.brokerCpu !== null && run.brokerCpu > 0, `${what}: broker CPU ${run.brokerCpu}`);
  else assert.equal(run.brokerCpu, null, 'a --target broker is not the tool\'s child: no CPU figure');
  assert.ok(result.toolCpu > 0);
}

async function commandLines(): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (command !== '') found.push(`${pid}: ${command.replaceAll('\0', ' ').slice(0, 160)}`);
  }
  return found;
}

/** Processes whose command line names a scratch directory of the bench's brokers (Shardline's data dir, RabbitMQ's HOME and mnesia). */
async function leftoverBrokerProcesses(): Promise<string[]> {
  return (await commandLines()).filter((line) => line.includes('shardline-bench-amqp-'));
}

/** epmd daemons with a loopback -port of their own, as the bench starts them. */
async function benchEpmds(): Promise<string[]> {
  return (await commandLines()).filter((line) => /epmd -address 127\.0\.0\.1 -port \d+/.test(line));
}

describe('shardline bench amqp', { timeout: 300_000 }, () => {
  after(cleanup);

  test('two rounds against Shardline: the JSON report adds up, and the text report has every figure', async () => {
    const run = await bench(['--rounds', '2', '--publishers', '2', '--consumers', '2', '--inflight', '20', '--prefetch', '10', '--size', '64', '--duration', '1', '--warmup', '0.2', '--drain', '30', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    assert.deepEqual(report.brokers, ['shardline']);
    assert.equal(report.rabbitmq, null);
    assert.deepEqual(report.runs.map((entry) => [entry.broker, entry.round]), [['shardline', 1], ['shardline', 2]]);
    for (const entry of report.runs) checkRun(entry);
    const rate = report.rows.find((row) => row.figure === 'confirmed msg/s')!;
    const rounds = report.runs.map((entry) => entry.result.confirmedPerSecond);
    assert.deepEqual(rate.brokers.shardline!.rounds, rounds);
    assert.equal(rate.brokers.shardline!.median, (rounds[0]! + rounds[1]!) / 2, 'the median of two rounds is their mean');
    assert.equal(rate.ratio, undefined, 'no RabbitMQ, no ratio');
    assert.deepEqual(report.rows.map((row) => row.figure), ['confirmed msg/s', 'consumed msg/s', 'confirm p50 ms', 'confirm p99 ms', 'confirm p999 ms', 'end-to-end p50 ms', 'end-to-end p99 ms', 'end-to-end p999 ms', 'broker CPU %', 'tool CPU %']);

    const text = await bench(['--rounds', '1', '--count', '500', '--duration', '5', '--warmup', '0', '--size', '16']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^bench amqp .*load average [\d.]+ -> [\d.]+/m);
    assert.match(text.stdout, /at most 500 messages/);
    for (const figure of ['confirmed msg/s', 'confirm p99 ms', 'end-to-end p999 ms', 'broker CPU %', 'tool CPU %']) {
      assert.match(text.stdout, new RegExp(`^${figure}\\s+[\\d,.]+\\s+[\\d,.]+$`, 'm'), `${figure} in:\n${text.stdout}`);
    }
    assert.deepEqual(await leftoverBrokerProcesses(), []);
  });

  test('--compare rabbitmq: both brokers in the same run with a ratio, or a note when RabbitMQ is not installed', async () => {
    const missing = await bench(['--compare', 'rabbitmq', '--rabbitmq', '/nonexistent/rabbitmq-server', '--rounds', '1', '--count', '200', '--duration', '5', '--warmup', '0', '--json']);
    assert.equal(missing.code, 0, missing.stderr);
    assert.deepEqual(missing.report!.brokers, ['shardline']);
    assert.match(missing.report!.notes.join('\n'), /RabbitMQ is not installed/);

    const installed = await findRabbitmq();
    const epmdsBefore = await benchEpmds();
    const both = await bench(['--compare', 'rabbitmq', '--rounds', '1', '--count', '2000', '--inflight', '50', '--duration', '10', '--warmup', '0', '--drain', '30', '--json']);
    assert.equal(both.code, 0, both.stderr);
    const report = both.report!;
    if (installed === null) {
      assert.deepEqual(report.brokers, ['shardline']);
      assert.match(report.notes.join('\n'), /RabbitMQ is not installed/);
      return;
    }
    assert.deepEqual(report.brokers, ['shardline', 'rabbitmq']);
    assert.match(report.rabbitmq!.version, /^\d+\.\d+/);
    assert.deepEqual(report.runs.map((entry) => entry.broker), ['shardline', 'rabbitmq']);
    for (const entry of report.runs) {
      checkRun(entry);
      assert.equal(entry.result.confirmed, 2000, `${entry.broker}: --count 2000, all inside the window`);
    }
    const rate = report.rows.find((row) => row.figure === 'confirmed msg/s')!;
    assert.equal(rate.ratio, rate.brokers.shardline!.median! / rate.brokers.rabbitmq!.median!);
    // RabbitMQ's script, beam.smp, its helpers and its epmd are all gone.
    assert.deepEqual(await leftoverBrokerProcesses(), []);
    assert.deepEqual(await benchEpmds(), epmdsBefore);
  });

  test('--target loads a node that is already running, every round, and starts nothing', async () => {
    const port = await freePort();
    const node = await startBroker({ args: ['--amqp-port', String(port)] });
    try {
      const run = await bench(['--target', `127.0.0.1:${port}`, '--rounds', '2', '--count', '300', '--duration', '5', '--warmup', '0', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const report = run.report!;
      assert.deepEqual(report.brokers, ['target']);
      assert.deepEqual(report.runs.map((entry) => entry.round), [1, 2]);
      for (const entry of report.runs) {
        checkRun(entry, false);
        assert.equal(entry.result.confirmed, 300);
      }
      assert.deepEqual(await leftoverBrokerProcesses(), [], 'nothing was started');
    } finally {
      await stopBroker(node);
    }
  });

  test('bad flags exit 2 with the flag named', async () => {
    for (const [flags, pattern] of [[['--target', 'nowhere'], /--target must be HOST:PORT/], [['--target', '127.0.0.1:5672', '--compare', 'rabbitmq'], /--target and --compare exclude each other/], [['--compare', 'kafka'], /--compare takes rabbitmq/], [['--size', '4'], /--size must be an integer >= 8/], [['--rounds', '0'], /--rounds must be an integer >= 1/], [['--duration', '0'], /--duration must be a number of seconds/]] as const) {
      const run = await bench([...flags]);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
  });
});
