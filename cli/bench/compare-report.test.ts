// Goal: `bench compare`'s pure part builds the right table: medians over the rounds (a failed
// run left out), ratios Shardline / Mosquitto only when both have a figure, each scenario's
// figures read from the bench report, and a mosquitto.conf that listens on loopback only with
// persistence off (and unbounded queues for the QoS 1 fan-in).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareRows, figuresOf, formatCompareTable, median, mosquittoConf, scenarioNamed, SCENARIOS, type BrokerName, type RunFigures } from './compare-report.js';
import type { MqttBenchReport } from './mqtt-bench.js';

function run(round: number, scenario: string, broker: BrokerName, figures: Record<string, number | null>, toolCpuPercent = 10): RunFigures {
  return { round, scenario, broker, figures, lost: 0, toolCpuPercent, toolBusiestPercent: toolCpuPercent, brokerCpuPercent: 50, brokerPid: 1000 + round };
}

describe('bench compare: medians, ratios, table', () => {
  it('median: odd and even counts, nulls and non-finite values left out', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([null, 5, Number.NaN, 1, 9]), 5);
    assert.equal(median([]), null);
    assert.equal(median([null]), null);
  });

  it('rows: per scenario and figure, the medians of each broker and Shardline / Mosquitto', () => {
    const runs = [
      run(1, 'fanin-qos0', 'shardline', { 'recv msg/s': 120_000 }, 8),
      run(1, 'fanin-qos0', 'mosquitto', { 'recv msg/s': 70_000 }, 60),
      run(2, 'fanin-qos0', 'mosquitto', { 'recv msg/s': 80_000 }, 70),
      run(2, 'fanin-qos0', 'shardline', { 'recv msg/s': 100_000 }, 6),
      run(3, 'fanin-qos0', 'shardline', { 'recv msg/s': null }, 7),
      run(3, 'fanin-qos0', 'mosquitto', { 'recv msg/s': 75_000 }, 65),
      run(1, 'idle', 'shardline', { 'kB/conn': 4, 'conn/s': 5000 }),
      run(1, 'idle', 'mosquitto', { 'kB/conn': 1, 'conn/s': null }),
    ];
    const rows = compareRows(runs, ['shardline', 'mosquitto']);
    // In the scenarios' order (idle before fan-in), one row per figure.
    assert.deepEqual(
      rows.map((row) => [row.scenario, row.figure]),
      [
        ['idle', 'kB/conn'],
        ['idle', 'conn/s'],
        ['fanin-qos0', 'recv msg/s'],
      ],
    );
    const fanin = rows[2];
    assert.ok(fanin !== undefined);
    assert.deepEqual(fanin.values, { shardline: [120_000, 100_000, null], mosquitto: [70_000, 80_000, 75_000] });
    assert.equal(fanin.medians.shardline, 110_000);
    assert.equal(fanin.medians.mosquitto, 75_000);
    assert.equal(fanin.ratio, 110_000 / 75_000);
    assert.equal(fanin.toolCpu.shardline, 7);
    assert.equal(fanin.toolCpu.mosquitto, 65);
    assert.equal(rows[0]?.ratio, 4);
    assert.equal(rows[0]?.better, 'lower');
    assert.equal(rows[1]?.ratio, null, 'no ratio without a Mosquitto figure');
  });

  it('rows without Mosquitto: Shardline only, no ratio', () => {
    const rows = compareRows([run(1, 'large-qos0', 'shardline', { 'MB/s': 180 })], ['shardline']);
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]?.medians, { shardline: 180 });
    assert.equal(rows[0]?.ratio, null);
  });

  it('with a cluster and a single node, the ratio is cluster / single node, even beside Mosquitto', () => {
    const runs = [
      run(1, 'fanin-qos1', 'shardline', { 'recv msg/s': 10_000, lost: 0 }),
      run(1, 'fanin-qos1', 'cluster', { 'recv msg/s': 4_000, lost: 0 }),
      run(1, 'fanin-qos1', 'mosquitto', { 'recv msg/s': 20_000, lost: 0 }),
    ];
    for (const brokers of [['shardline', 'cluster'], ['cluster', 'shardline', 'mosquitto']] as BrokerName[][]) {
      const rows = compareRows(runs, brokers);
      assert.equal(rows[0]?.ratio, 0.4, brokers.join());
      assert.match(formatCompareTable(rows, brokers).split('\n')[0] ?? '', /ratio C\/S/);
    }
    assert.equal(compareRows(runs, ['cluster', 'mosquitto'])[0]?.ratio, null, 'a cluster is set against a single node only');
  });

  it('with workers and a single node, the ratio is workers / single node', () => {
    const runs = [run(1, 'fanin-qos0', 'shardline', { 'recv msg/s': 50_000 }), run(1, 'fanin-qos0', 'workers', { 'recv msg/s': 40_000 })];
    const rows = compareRows(runs, ['shardline', 'workers']);
    assert.equal(rows[0]?.ratio, 0.8);
    assert.match(formatCompareTable(rows, ['shardline', 'workers']).split('\n')[0] ?? '', /ratio W\/S/);
  });

  it('the text table has a header and one line per row, with medians, rounds and the ratio', () => {
    const rows = compareRows([run(1, 'fanin-qos1', 'shardline', { 'recv msg/s': 68_000, lost: 0 }), run(1, 'fanin-qos1', 'mosquitto', { 'recv msg/s': 8_000, lost: 600_000 })], ['shardline', 'mosquitto']);
    const lines = formatCompareTable(rows, ['shardline', 'mosquitto']).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0] ?? '', /scenario\s+figure\s+shardline \(median\)/);
    assert.match(lines[1] ?? '', /fanin-qos1\s+recv msg\/s \(higher is better\)\s+68,000\s+68,000\s+8,000\s+8,000\s+8\.50x/);
    assert.match(lines[2] ?? '', /lost \(lower is better\)\s+0\s+0\s+600,000/);
  });
});

describe('bench compare: scenarios', () => {
  it('the issue\'s five scenarios and the fan-out run only when named, with the bench options they name', () => {
    assert.deepEqual(
      SCENARIOS.filter((scenario) => scenario.onlyWhenNamed !== true).map((scenario) => scenario.name),
      ['latency-1k-qos1', 'idle', 'large-qos0', 'fanin-qos0', 'fanin-qos1'],
    );
    assert.deepEqual(SCENARIOS.filter((scenario) => scenario.onlyWhenNamed === true).map((scenario) => scenario.name), ['fanout-qos0']);
    const settings = { durationSeconds: 7, idleConnections: 1234, workers: 2 };
    const latency = scenarioNamed('latency-1k-qos1')?.options(settings);
    assert.deepEqual([latency?.publishers, latency?.subscribers, latency?.qos, latency?.size, latency?.rate, latency?.durationMs], [1, 1, 1, 1024, 5000, 7000]);
    const idle = scenarioNamed('idle')?.options(settings);
    assert.deepEqual([idle?.publishers, idle?.subscribers, idle?.idleConnections], [0, 0, 1234]);
    const large = scenarioNamed('large-qos0')?.options(settings);
    assert.deepEqual([large?.publishers, large?.subscribers, large?.qos, large?.size, large?.rate], [4, 1, 0, 65536, 0]);
    for (const [name, qos] of [['fanin-qos0', 0], ['fanin-qos1', 1]] as const) {
      const fanin = scenarioNamed(name)?.options(settings);
      assert.deepEqual([fanin?.publishers, fanin?.subscribers, fanin?.qos, fanin?.size, fanin?.rate], [8, 1, qos, 64, 0]);
    }
    const fanout = scenarioNamed('fanout-qos0')?.options(settings);
    assert.deepEqual([fanout?.publishers, fanout?.subscribers, fanout?.qos, fanout?.size, fanout?.rate], [1, 8, 0, 64, 0]);
    assert.equal(scenarioNamed('nope'), undefined);
  });

  it('figures are read from a bench report: memory per connection in kB, connect rate, latency only with samples', () => {
    const report = {
      settings: { idleConnections: 10_000 },
      connectSeconds: { idle: 2, subscribers: 0, publishers: 0 },
      broker: { perIdleConnectionBytes: 3500 },
      latencyMs: { samples: 0, p50: 0, p99: 0 },
      received: { perSecond: 0, mbPerSecond: 0, lost: 0 },
      tool: { cpuPercentOfCore: 42, busiestProcessPercent: 30 },
    } as unknown as MqttBenchReport;
    const idle = figuresOf(scenarioNamed('idle') ?? assert.fail(), report);
    assert.deepEqual(idle.figures, { 'kB/conn': 3.5, 'conn/s': 5000 });
    assert.equal(idle.toolCpuPercent, 42);
    assert.equal(idle.toolBusiestPercent, 30);
    const latency = figuresOf(scenarioNamed('latency-1k-qos1') ?? assert.fail(), report);
    assert.deepEqual(latency.figures, { 'p50 ms': null, 'p99 ms': null, 'recv msg/s': 0 });
  });

  it('mosquitto.conf: loopback listener on the port, anonymous, no persistence; unbounded queues for QoS 1 fan-in', () => {
    const conf = mosquittoConf(18830, scenarioNamed('fanin-qos0') ?? assert.fail(), ['max_connections -1']);
    const lines = conf.trimEnd().split('\n');
    assert.equal(lines[0], 'listener 18830 127.0.0.1');
    assert.ok(lines.includes('allow_anonymous true'));
    assert.ok(lines.includes('persistence false'));
    assert.ok(lines.includes('max_connections -1'));
    assert.ok(!lines.some((line) => line.startsWith('max_queued_messages')));
    assert.ok(conf.endsWith('\n'));
    const qos1 = mosquittoConf(1, scenarioNamed('fanin-qos1') ?? assert.fail());
    assert.match(qos1, /^max_inflight_messages 0$/m);
    assert.match(qos1, /^max_queued_messages 0$/m);
  });
});
