// `shardline bench amqp` (`npm run bench:amqp`): flags and the report. The runs are
// cli/bench/amqp-bench.ts's, the brokers cli/bench/amqp-brokers.ts's, the load
// cli/bench/amqp-load.ts's.
import { findRabbitmq, type AmqpBrokerName } from '../bench/amqp-brokers.js';
import { runAmqpBench, type AmqpBenchReport, type AmqpWorkload } from '../bench/amqp-bench.js';
import { boundedIntegerFlag, secondsFlag, stringFlag, UsageError, type Command } from '../command.js';
import { createProgress } from '../progress.js';

const MAX_DURATION_SECONDS = 600;
/** A bench message is one body frame of the 131072-byte frame-max. */
const MAX_SIZE = 131_072 - 8;

const usage = `
Usage: shardline bench amqp [flags]

Persistent, confirmed, acknowledged AMQP 0-9-1 messages through a durable queue, against a
fresh Shardline node and, with --compare rabbitmq, a fresh RabbitMQ in the same run. Each run:
a new durable queue; --consumers connections consuming it with manual acks (one basic.ack per
delivery) and basic.qos --prefetch; --publishers connections in confirm mode sending
persistent messages (delivery-mode 2) of --size bytes to it through the default exchange,
each keeping at most --inflight unconfirmed. Every body starts with its send time.

Printed per figure: each broker's median over the rounds, every round's value, and the ratio
Shardline / RabbitMQ. Figures: confirmed msg/s (published in the measured window and
confirmed), consumed msg/s (of those, consumed by the end of the drain, over the window),
confirm latency (publish to basic.ack) and end-to-end latency (publish to delivery) at
p50/p99/p999, the broker's CPU (its process tree, % of one core) and this tool's own CPU
(one process; near 100% means the tool set the pace, not the broker).

Brokers, each a child of this process on free 127.0.0.1 ports with a scratch directory,
stopped by its pid after its run:
  shardline   \`shardline start --amqp-port P\` as this command runs (the sources under tsx
              with \`npm run bench:amqp\`, else dist/), new data directory, default
              durability (fsync), --log-level warn, plus --shardline-args
  rabbitmq    the installed rabbitmq-server script with its own mnesia, log and HOME
              directories, node name, AMQP and distribution ports, a rabbitmq.conf whose one
              listener is 127.0.0.1, no plugins, and its own epmd on 127.0.0.1; its process
              group is stopped afterwards
Rounds alternate which broker goes first.

Flags:
  --target HOST:PORT     load a broker that is already running instead (any AMQP 0-9-1
                         broker; every round loads it, nothing is started, no broker CPU)
  --compare rabbitmq     also run RabbitMQ (without it: Shardline only); when RabbitMQ is not
                         installed, a note says so and Shardline runs alone
  --rabbitmq PATH        the rabbitmq-server start script (default: the first of
                         /usr/lib/rabbitmq/bin, /usr/local/sbin, /usr/sbin)
  --rounds N             runs per broker (default 3)
  --publishers N         publishing connections (default 2)
  --consumers N          consuming connections (default 2)
  --size BYTES           message body, at least 8 (the send time) (default 1024)
  --inflight N           unconfirmed messages per publisher (default 100)
  --prefetch N           basic.qos prefetch-count per consumer (default 100)
  --count N              stop publishing after N messages in all (warm-up included); 0: no
                         limit but --duration (default 0)
  --duration S           measured seconds of publishing per run (default 10, at most ${MAX_DURATION_SECONDS})
  --warmup S             unmeasured seconds before them (default 1)
  --drain S              afterwards, how long consumers may take to get the rest (default 10)
  --timeout S            longest wait for a broker's answer during setup (default 30)
  --time-limit S         runs not started by then are left out and listed (default 1800)
  --shardline-args "..." extra \`shardline start\` flags, space-separated
  --user NAME            user for both brokers (default guest)
  --password TEXT        its password (default guest)
  --json                 print the report as JSON on stdout
  -h, --help             this text

A progress bar is drawn on stderr when it is a terminal (not with --json).
`;

export interface AmqpBenchFlags {
  rounds: number;
  brokers: AmqpBrokerName[];
  rabbitmq: string | undefined;
  shardlineArgs: string[];
  timeLimitMs: number;
  workload: AmqpWorkload;
  target: { host: string; port: number } | undefined;
}

export function parseAmqpBenchFlags(values: Record<string, unknown>): AmqpBenchFlags {
  const compare = values.compare;
  if (compare !== undefined && compare !== 'rabbitmq') throw new UsageError(`--compare takes rabbitmq, got ${JSON.stringify(compare)}`);
  let target: AmqpBenchFlags['target'];
  if (typeof values.target === 'string') {
    if (compare !== undefined) throw new UsageError('--target and --compare exclude each other: --compare starts its own brokers');
    const colon = values.target.lastIndexOf(':');
    const port = Number(values.target.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError(`--target must be HOST:PORT, got ${JSON.stringify(values.target)}`);
    target = { host: values.target.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
  }
  const shardlineArgs = typeof values['shardline-args'] === 'string' ? values['shardline-args'].split(/\s+/).filter((arg) => arg !== '') : [];
  return {
    rounds: boundedIntegerFlag(values, 'rounds', 3, 1, 100),
    brokers: target !== undefined ? ['target'] : compare === 'rabbitmq' ? ['shardline', 'rabbitmq'] : ['shardline'],
    rabbitmq: typeof values.rabbitmq === 'string' ? values.rabbitmq : undefined,
    shardlineArgs,
    target,
    timeLimitMs: secondsFlag(values, 'time-limit', 1800, 1, 24 * 3600) * 1000,
    workload: {
      user: stringFlag(values, 'user', 'guest'),
      password: typeof values.password === 'string' ? values.password : 'guest',
      publishers: boundedIntegerFlag(values, 'publishers', 2, 1, 256),
      consumers: boundedIntegerFlag(values, 'consumers', 2, 1, 256),
      size: boundedIntegerFlag(values, 'size', 1024, 8, MAX_SIZE),
      inflight: boundedIntegerFlag(values, 'inflight', 100, 1, 100_000),
      prefetch: boundedIntegerFlag(values, 'prefetch', 100, 1, 65_535),
      count: boundedIntegerFlag(values, 'count', 0, 0, 1_000_000_000),
      durationMs: secondsFlag(values, 'duration', 10, 0.1, MAX_DURATION_SECONDS) * 1000,
      warmupMs: secondsFlag(values, 'warmup', 1, 0, 60) * 1000,
      drainMs: secondsFlag(values, 'drain', 10, 0, 600) * 1000,
      requestTimeoutMs: secondsFlag(values, 'timeout', 30, 1, 600) * 1000,
    },
  };
}

function formatValue(value: number | undefined): string {
  if (value === undefined) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(value >= 10 ? 1 : 2);
}

export function formatAmqpBench(report: AmqpBenchReport): string {
  const { workload } = report;
  const lines = [
    `bench amqp ${report.startedAt}: node ${report.node}, ${report.cpus} CPUs, load average ${report.loadAverage.before.toFixed(1)} -> ${report.loadAverage.after.toFixed(1)}${report.rabbitmq === null ? '' : `, RabbitMQ ${report.rabbitmq.version} (${report.rabbitmq.path})`}`,
    `${report.rounds} round(s); ${workload.publishers} publisher(s) x ${workload.inflight} unconfirmed, ${workload.consumers} consumer(s) x prefetch ${workload.prefetch}, ${workload.size} B persistent messages, durable queue, ${workload.durationMs / 1000} s measured after ${workload.warmupMs / 1000} s${workload.count > 0 ? `, at most ${workload.count} messages` : ''}; ${report.elapsedSeconds.toFixed(0)} s in all`,
    ...report.notes.map((note) => `note: ${note}`),
    '',
  ];
  const header = ['figure', ...report.brokers.flatMap((broker) => [`${broker} (median)`, `${broker} (rounds)`]), ...(report.brokers.length > 1 ? ['ratio S/R'] : [])];
  const rows = report.rows.map((row) => [
    row.figure,
    ...report.brokers.flatMap((broker) => [formatValue(row.brokers[broker]?.median), (row.brokers[broker]?.rounds ?? []).map(formatValue).join(' / ') || '-']),
    ...(report.brokers.length > 1 ? [row.ratio === undefined ? '-' : `${row.ratio.toFixed(2)}x`] : []),
  ]);
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  lines.push(line(header), ...rows.map(line), '');
  for (const run of report.runs) {
    if (run.error !== undefined) lines.push(`round ${run.round} ${run.broker}: failed: ${run.error}`);
    else if (run.warning !== undefined) lines.push(`round ${run.round} ${run.broker}: ${run.warning}`);
  }
  lines.push('ratio S/R = Shardline / RabbitMQ: above 1 is better for msg/s, below 1 for latency and CPU.');
  return `${lines.join('\n')}\n`;
}

export const benchAmqpCommand: Command = {
  path: ['bench', 'amqp'],
  summary: 'Persistent, confirmed, acknowledged AMQP messages against Shardline (and RabbitMQ): msg/s, latency, medians',
  usage,
  options: {
    target: { type: 'string' },
    compare: { type: 'string' },
    rabbitmq: { type: 'string' },
    rounds: { type: 'string' },
    publishers: { type: 'string' },
    consumers: { type: 'string' },
    size: { type: 'string' },
    inflight: { type: 'string' },
    prefetch: { type: 'string' },
    count: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    drain: { type: 'string' },
    timeout: { type: 'string' },
    'time-limit': { type: 'string' },
    'shardline-args': { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const flags = parseAmqpBenchFlags(values);
    const json = values.json === true;
    const rabbitmqPath = flags.brokers.includes('rabbitmq') ? await findRabbitmq(flags.rabbitmq) : null;
    const perRun = Math.ceil((flags.workload.warmupMs + flags.workload.durationMs) / 1000);
    let label = 'bench amqp';
    let progress = json ? undefined : createProgress(label, perRun, 's');
    const report = await runAmqpBench(
      { rounds: flags.rounds, workload: flags.workload, brokers: flags.brokers, rabbitmqPath, shardlineArgs: flags.shardlineArgs, timeLimitMs: flags.timeLimitMs, target: flags.target },
      {
        onRun: (run) => {
          progress?.stop();
          label = `bench amqp ${run}`;
          if (!json) process.stderr.write(`${label}\n`);
          progress = json ? undefined : createProgress(label, perRun, 's');
        },
        onProgress: (elapsedMs) => progress?.update(Math.floor(elapsedMs / 1000)),
      },
    );
    progress?.stop();
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatAmqpBench(report));
    return report.runs.some((run) => run.error !== undefined) || report.runs.length === 0 ? 1 : 0;
  },
};
