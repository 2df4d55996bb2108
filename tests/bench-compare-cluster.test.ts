// `shardline bench compare --brokers shardline,cluster` end to end, with tiny durations: issue
// 13's comparison of a replicated cluster (`cluster up`: 3 voters, 3 journal nodes, 2 brokers)
// against a single node. Goal: both targets really carried the QoS 1 load (figures present, and
// every expected delivery arrived), the ratio is cluster / single node, and every process a
// run started (the single node, `cluster up` and each cluster node) is gone afterwards. No
// timing is asserted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cliArgs } from './support/cli-entry.js';
import type { CompareReport } from '../cli/testing.js';

const RUN_TIMEOUT_MS = 600_000;
/** 3 voters, 3 journal nodes, 2 brokers and `cluster up` itself. */
const CLUSTER_PROCESSES = 9;

async function compare(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, cliArgs(['bench', 'compare', ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('shardline bench compare: a replicated cluster beside a single node', { timeout: RUN_TIMEOUT_MS + 60_000 }, () => {
  it('runs QoS 1 fan-in and the 5,000 msg/s latency run on both, every message delivered, and stops every process', async () => {
    const { code, stdout, stderr } = await compare(['--brokers', 'shardline,cluster', '--scenarios', 'fanin-qos1,latency-1k-qos1', '--rounds', '1', '--duration', '1', '--workers', '1', '--json']);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as CompareReport;
    assert.deepEqual(report.settings.brokers, ['shardline', 'cluster']);
    assert.equal(report.mosquitto, null);
    assert.equal(report.runs.length, 4);
    for (const run of report.runs) {
      const label = `${run.scenario} on ${run.broker}`;
      assert.equal(run.error, undefined, `${label}: ${run.error ?? ''}`);
      // Every QoS 1 delivery arrives, on the cluster too (its fan-in lost some until the broker's
      // data follower stepped over a leader's epoch start: docs/benchmarks.md).
      assert.equal(run.lost, 0, `${label}: QoS 1 deliveries not arrived`);
      const figure = run.scenario === 'fanin-qos1' ? run.figures['recv msg/s'] : run.figures['p50 ms'];
      assert.ok(typeof figure === 'number' && figure > 0, `${label}: ${figure}`);
      if (run.broker === 'cluster') {
        assert.equal(run.clusterPids?.length, CLUSTER_PROCESSES, `${label}: the cluster's processes`);
        assert.ok(run.clusterPids?.includes(run.brokerPid ?? -1), `${label}: the load's broker is one of them`);
      }
      for (const pid of [run.brokerPid ?? -1, ...(run.clusterPids ?? [])]) {
        assert.ok(pid > 0 && !processAlive(pid), `${label}: process ${pid} still running`);
      }
    }
    for (const row of report.rows) {
      const { shardline, cluster } = row.medians;
      assert.equal(typeof shardline, 'number', `${row.scenario} ${row.figure}: single node`);
      assert.equal(typeof cluster, 'number', `${row.scenario} ${row.figure}: cluster`);
      if (row.figure !== 'lost') assert.equal(row.ratio, (cluster as number) / (shardline as number), `${row.scenario} ${row.figure}: the ratio is cluster / single node`);
    }
  });

  it('describes the cluster target in --help and refuses an unknown broker', async () => {
    const help = await compare(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--brokers shardline,cluster/);
    const bad = await compare(['--brokers', 'shardline,nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"nope" is not shardline, mosquitto, cluster or workers/);
  });
});
