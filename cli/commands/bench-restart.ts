// `shardline bench restart`: flags, the scratch data directory and the output. The fill and the
// timed starts live in cli/bench/restart-bench.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fillDataDir, median, timeOneStart, type RestartFill, type RestartRun } from '../bench/restart-bench.js';
import { type Command, boundedIntegerFlag } from '../command.js';
import { createProgress } from '../progress.js';

const DEFAULT_SESSIONS = 100_000;
const DEFAULT_RETAINED = 100_000;
const DEFAULT_ACL_RULES = 10_000;
const DEFAULT_DATA_SHARDS = 8;
const DEFAULT_RUNS = 5;
const MAX_RUNS = 50;
const MAX_COUNT = 10_000_000;

const usage = `
Usage: shardline bench restart [flags]

Measures how long a node with a large broker state takes to start: fills a scratch data
directory with durable sessions (meta, one subscription, cursors each), retained messages and
run-time ACL rules, written straight through the journal, then runs \`shardline start\` on it
--runs times, each from process spawn until an MQTT CONNECT gets its CONNACK, and stops it
with SIGTERM (a clean shutdown) before the next.

The first start finds only the journal (as after a crash before any snapshot); the later ones
follow a clean shutdown. Both are reported, the later ones as their median, in wall time and
in CPU time of the node process until it served (steadier on a busy machine).

Flags:
  --sessions N       durable sessions (default ${DEFAULT_SESSIONS})
  --retained N       retained messages (default ${DEFAULT_RETAINED})
  --acl-rules N      run-time ACL rules in $acl (default ${DEFAULT_ACL_RULES})
  --updates N        times each session's cursors are written again and each retained topic
                     published again after the first records, as a running node leaves them
                     before compaction (default 0: no superseded records)
  --data-shards N    data shards of the node (default ${DEFAULT_DATA_SHARDS})
  --runs N           starts after the first (default ${DEFAULT_RUNS}, at most ${MAX_RUNS})
  --data-dir DIR     where the scratch data directory goes: a fresh sub-directory of DIR,
                     removed afterwards (default: the OS temp dir, ${tmpdir()})
  --keep             keep the scratch data directory and print its path
  --json             print the results as JSON on stdout
  -h, --help         this text

A progress bar is drawn on stderr when it is a terminal.
`;


interface RestartReport {
  startedAt: string;
  node: string;
  cpus: number;
  fill: RestartFill;
  fillSeconds: number;
  first: RestartRun;
  later: RestartRun[];
  laterMedianMs: number | undefined;
  laterMedianCpuMs: number | undefined;
}

function cpu(run: RestartRun): string {
  return run.cpuMs === undefined ? '' : ` (cpu ${run.cpuMs.toFixed(0)} ms)`;
}

function formatReport(report: RestartReport): string {
  const { fill } = report;
  const lines = [
    `bench restart: ${fill.sessions} durable sessions, ${fill.retained} retained messages, ${fill.aclRules} ACL rules, ${fill.updates} updates each, ${fill.dataShards} data shards (node ${report.node}, ${report.cpus} CPUs)`,
    `fill: ${report.fillSeconds.toFixed(1)} s`,
    `first start (journal only):        ${report.first.serveMs.toFixed(0)} ms${cpu(report.first)}   rebuilt ${JSON.stringify(report.first.rebuilt)}`,
  ];
  for (const [index, run] of report.later.entries()) lines.push(`start ${index + 2} (after a clean shutdown): ${run.serveMs.toFixed(0)} ms${cpu(run)}   rebuilt ${JSON.stringify(run.rebuilt)}`);
  if (report.laterMedianMs !== undefined) lines.push(`median of the starts after a clean shutdown: ${report.laterMedianMs.toFixed(0)} ms${report.laterMedianCpuMs === undefined ? '' : ` (cpu ${report.laterMedianCpuMs.toFixed(0)} ms)`}`);
  return `${lines.join('\n')}\n`;
}

async function run(values: Record<string, unknown>): Promise<number> {
  const fill: RestartFill = {
    sessions: boundedIntegerFlag(values, 'sessions', DEFAULT_SESSIONS, 0, MAX_COUNT),
    retained: boundedIntegerFlag(values, 'retained', DEFAULT_RETAINED, 0, MAX_COUNT),
    aclRules: boundedIntegerFlag(values, 'acl-rules', DEFAULT_ACL_RULES, 0, MAX_COUNT),
    updates: boundedIntegerFlag(values, 'updates', 0, 0, 100),
    dataShards: boundedIntegerFlag(values, 'data-shards', DEFAULT_DATA_SHARDS, 1, 1024),
  };
  const runs = boundedIntegerFlag(values, 'runs', DEFAULT_RUNS, 0, MAX_RUNS);
  const base = resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : tmpdir());
  const scratch = await mkdtemp(join(base, 'shardline-bench-restart-'));
  const directory = join(scratch, 'data');
  const startedAt = new Date();
  try {
    const fillStarted = performance.now();
    const filling = createProgress('fill', fill.sessions * (3 + fill.updates) + fill.retained * (1 + fill.updates) + fill.aclRules, 'records');
    let filled = 0;
    await fillDataDir(directory, fill, (records) => {
      filled += records;
      filling.update(filled);
    });
    filling.stop();
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    const starting = createProgress('starts', runs + 1, 'starts');
    const first = await timeOneStart(directory);
    starting.increment();
    const later: RestartRun[] = [];
    for (let i = 0; i < runs; i += 1) {
      later.push(await timeOneStart(directory));
      starting.increment();
    }
    starting.stop();
    const report: RestartReport = {
      startedAt: startedAt.toISOString(),
      node: process.version,
      cpus: cpus().length,
      fill,
      fillSeconds,
      first,
      later,
      laterMedianMs: later.length === 0 ? undefined : median(later.map((entry) => entry.serveMs)),
      laterMedianCpuMs: later.length === 0 || later.some((entry) => entry.cpuMs === undefined) ? undefined : median(later.map((entry) => entry.cpuMs as number)),
    };
    process.stdout.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  } finally {
    if (values.keep === true) process.stderr.write(`data directory kept: ${directory}\n`);
    else await rm(scratch, { recursive: true, force: true });
  }
  return 0;
}

export const benchRestartCommand: Command = {
  path: ['bench', 'restart'],
  summary: 'Measure how long a node with many sessions, retained messages and ACL rules takes to start',
  usage,
  options: {
    sessions: { type: 'string' },
    retained: { type: 'string' },
    'acl-rules': { type: 'string' },
    updates: { type: 'string' },
    'data-shards': { type: 'string' },
    runs: { type: 'string' },
    'data-dir': { type: 'string' },
    keep: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  run: (values) => run(values),
};
