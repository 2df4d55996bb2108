// `shardline bench compare` (`npm run bench:compare`): flags and output. The runs are
// cli/bench/compare-bench.ts's, the scenarios and the table cli/bench/compare-report.ts's.
import { defaultWorkers } from '../bench/mqtt-bench.js';
import { findMosquitto, runCompare } from '../bench/compare-bench.js';
import { formatCompareTable, SCENARIOS, scenarioNamed, type BrokerName, type ScenarioSpec } from '../bench/compare-report.js';
import { stringFlag, UsageError, type Command, secondsFlag, boundedIntegerFlag } from '../command.js';

const DEFAULT_ROUNDS = 3;
const DEFAULT_DURATION_SECONDS = 5;
const DEFAULT_CONNS = 10_000;
const DEFAULT_TIME_LIMIT_SECONDS = 1800;

const usage = `
Usage: shardline bench compare [flags]

Runs issue 16's scenarios against Shardline and Mosquitto (or, with --brokers shardline,cluster,
a replicated cluster against a single node: issue 13), interleaved, and prints a table of
medians over the rounds, each round's figure, the ratio (Shardline / Mosquitto, or cluster /
single node) and the load tool's own CPU. Every run starts a fresh broker as a child of this
process on a free 127.0.0.1 port and stops it by its pid afterwards:
  shardline   \`shardline start\` as this command runs (from the sources under tsx with
              \`npm run bench:compare\`, else the compiled dist/), on a new data directory,
              default durability (fsync), --log-level warn, plus --shardline-args
  mosquitto   the mosquitto binary with a generated mosquitto.conf: one listener on the
              port, anonymous clients, persistence false (no disk, as docs/benchmarks.md
              compares it); fanin-qos1 adds max_inflight_messages 0 and max_queued_messages 0
              (unbounded queues, the issue's target)
  cluster     \`shardline cluster up\` on a new directory: 3 placement voters, 3 journal nodes
              replicating every shard 3 ways (an append is acknowledged once a majority has
              it), 2 brokers; publishers and subscribers all connect to the first broker.
              Stopped with SIGTERM to \`cluster up\` (and SIGKILL by pid to any node left)
  workers     \`shardline start --workers N\` (--broker-workers, default 2): the single node with
              its MQTT brokers in N worker processes; otherwise as shardline. Its CPU figure
              is the primary's and its workers' together. Against one:
              --brokers shardline,workers --scenarios fanin-qos0,fanout-qos0,fanin-qos1
Rounds alternate which broker goes first. The load is \`shardline bench mqtt\` (--help there),
in this process and its workers, on the same machine: the tool's CPU is reported beside the
figures because on a small machine it competes with the broker.

Scenarios (default: all but those marked "named only", in this order):
${SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(16)}${scenario.title}${scenario.onlyWhenNamed === true ? ' (named only)' : ''}`).join('\n')}

Flags:
  --rounds N             rounds; each runs every scenario on every broker (default ${DEFAULT_ROUNDS})
  --duration S           measured seconds of load per run, after 1 s of warm-up (default ${DEFAULT_DURATION_SECONDS})
  --conns N              connections of the idle scenario (default ${DEFAULT_CONNS.toLocaleString('en-US')})
  --scenarios A,B        scenarios to run (names above)
  --brokers A,B          shardline, mosquitto, cluster and/or workers (default: shardline,mosquitto;
                         without Mosquitto installed it is left out, with a note). Issue 13's
                         run: --brokers shardline,cluster --scenarios fanin-qos1,latency-1k-qos1
  --mosquitto PATH       the mosquitto binary (default: $PATH, then /usr/sbin/mosquitto)
  --mosquitto-conf LINE  an extra mosquitto.conf line for every run (repeatable)
  --shardline-args "A B" extra \`shardline start\` flags (the single node), split on spaces
  --cluster-args="A B"   extra \`shardline cluster up\` flags, split on spaces (with =, as
                         the value starts with --), e.g. --cluster-args="--brokers 1"
  --broker-workers N     worker processes of the workers target (default 2)
  --workers W            load tool worker processes (default ${defaultWorkers()})
  --time-limit S         runs not started within S seconds of the start are left out and
                         listed (default ${DEFAULT_TIME_LIMIT_SECONDS})
  --json                 the report (every run's figures, the table rows) as JSON on stdout
  -h, --help             this text

A run that fails (a broker that does not start, a bench error) leaves its figures empty ("-")
and its error in the report; the medians are over the runs that produced the figure.
`;

function listFlag(values: Record<string, unknown>, name: string): string[] | undefined {
  if (values[name] === undefined) return undefined;
  const list = stringFlag(values, name)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (list.length === 0) throw new UsageError(`--${name} needs at least one name`);
  return list;
}



async function run(values: Record<string, unknown>): Promise<number> {
  const scenarioNames = listFlag(values, 'scenarios');
  const scenarios: ScenarioSpec[] =
    scenarioNames === undefined
      ? SCENARIOS.filter((scenario) => scenario.onlyWhenNamed !== true)
      : scenarioNames.map((name) => scenarioNamed(name) ?? (() => { throw new UsageError(`--scenarios: no scenario ${JSON.stringify(name)} (one of ${SCENARIOS.map((scenario) => scenario.name).join(', ')})`); })());
  const brokerNames = listFlag(values, 'brokers') ?? ['shardline', 'mosquitto'];
  for (const name of brokerNames) if (name !== 'shardline' && name !== 'mosquitto' && name !== 'cluster' && name !== 'workers') throw new UsageError(`--brokers: ${JSON.stringify(name)} is not shardline, mosquitto, cluster or workers`);
  const explicitMosquitto = values.mosquitto === undefined ? undefined : stringFlag(values, 'mosquitto');
  const mosquittoPath = brokerNames.includes('mosquitto') ? await findMosquitto(explicitMosquitto) : null;
  if (explicitMosquitto !== undefined && mosquittoPath === null) throw new UsageError(`--mosquitto ${explicitMosquitto}: not an executable file`);
  const confLines = values['mosquitto-conf'];
  const json = values.json === true;
  const aborter = new AbortController();
  const onInterrupt = (): void => aborter.abort();
  process.once('SIGINT', onInterrupt);
  try {
    const report = await runCompare(
      {
        rounds: boundedIntegerFlag(values, 'rounds', DEFAULT_ROUNDS, 1, 50),
        scenarios,
        settings: {
          durationSeconds: secondsFlag(values, 'duration', DEFAULT_DURATION_SECONDS, 0.1, 600),
          idleConnections: boundedIntegerFlag(values, 'conns', DEFAULT_CONNS, 1, 100_000),
          workers: boundedIntegerFlag(values, 'workers', defaultWorkers(), 1, 64),
        },
        brokers: [...new Set(brokerNames)] as BrokerName[],
        mosquittoPath,
        shardlineArgs: values['shardline-args'] === undefined ? [] : stringFlag(values, 'shardline-args').split(' ').filter((arg) => arg !== ''),
        brokerWorkers: boundedIntegerFlag(values, 'broker-workers', 2, 1, 64),
        clusterArgs: values['cluster-args'] === undefined ? [] : stringFlag(values, 'cluster-args').split(' ').filter((arg) => arg !== ''),
        mosquittoLines: Array.isArray(confLines) ? confLines.map(String) : [],
        timeLimitMs: secondsFlag(values, 'time-limit', DEFAULT_TIME_LIMIT_SECONDS, 1, 86_400) * 1000,
      },
      { signal: aborter.signal, onRun: (label) => process.stderr.write(`bench compare: ${label}\n`) },
    );
    if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const mosquitto = report.mosquitto === null ? 'no Mosquitto' : `Mosquitto ${report.mosquitto.version} (${report.mosquitto.path})`;
      const lines = [
        `bench compare ${report.startedAt}: node ${report.node}, ${report.cpus} CPUs, load average ${report.loadAverage.before.toFixed(1)} -> ${report.loadAverage.after.toFixed(1)}, ${mosquitto}`,
        `${report.settings.rounds} round(s), ${report.settings.durationSeconds} s per run, ${report.settings.idleConnections} idle connections, ${report.elapsedSeconds.toFixed(0)} s in all`,
        ...report.notes.map((note) => `note: ${note}`),
        ...report.runs.filter((entry) => entry.error !== undefined).map((entry) => `round ${entry.round} ${entry.scenario} on ${entry.broker}: ${entry.error ?? ''}`),
        '',
      ];
      process.stdout.write(lines.join('\n') + formatCompareTable(report.rows, report.settings.brokers));
    }
    return report.rows.length === 0 ? 1 : 0;
  } catch (error) {
    if (aborter.signal.aborted) {
      process.stderr.write('shardline bench compare: interrupted\n');
      return 130;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

export const benchCompareCommand: Command = {
  path: ['bench', 'compare'],
  summary: "Run issue 16's MQTT scenarios against Shardline and Mosquitto (or a replicated cluster), interleaved, and print medians and ratios",
  usage,
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    conns: { type: 'string' },
    scenarios: { type: 'string' },
    brokers: { type: 'string' },
    mosquitto: { type: 'string' },
    'mosquitto-conf': { type: 'string', multiple: true },
    'shardline-args': { type: 'string' },
    'cluster-args': { type: 'string' },
    'broker-workers': { type: 'string' },
    workers: { type: 'string' },
    'time-limit': { type: 'string' },
    json: { type: 'boolean' },
  },
  run: (values) => run(values),
};
