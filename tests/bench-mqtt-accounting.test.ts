// `shardline bench mqtt --admin`: the bench's accounting agrees with the broker's own counters.
//
// Goal: against a real `shardline start`, a run that is not overloaded adds up exactly on both
// sides: every publish the tool wrote was counted in by the broker, every delivery the broker
// made reached a subscriber, nothing dropped, nothing in flight at the end. The broker's $SYS
// statistics (every second here) must not disturb this: they are counted apart.
// Method: runMqttBench in this process with the broker's admin URL and token; the accounting
// comes from GET /metrics before and after the run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runMqttBench, type MqttBenchOptions } from '../cli/testing.js';
import { brokerForSuite, usingMosquitto, waitForLogField } from './support/broker-process.js';

const TOKEN = 'bench-accounting-token';

describe('bench mqtt accounting against the broker counters', { skip: usingMosquitto() ? 'Shardline-only (admin API)' : false }, () => {
  const broker = brokerForSuite({ args: ['--admin-token', TOKEN, '--sys-interval', '1'] });

  async function options(overrides: Partial<MqttBenchOptions>): Promise<MqttBenchOptions> {
    const admin = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
    return {
      host: broker.host,
      port: broker.port,
      publishers: 2,
      subscribers: 2,
      qos: 1,
      size: 64,
      rate: 300,
      durationMs: 1000,
      warmupMs: 200,
      drainTimeoutMs: 5000,
      idleConnections: 0,
      topic: 'acct/{i}',
      subTopic: 'acct/#',
      workers: 1,
      brokerPid: null,
      protocolVersion: 4,
      inflight: 64,
      keepaliveSeconds: 60,
      admin: { url: admin, token: TOKEN },
      ...overrides,
    };
  }

  for (const qos of [0, 1] as const) {
    it(`QoS ${qos}, rate-limited: tool and broker counts agree exactly`, async () => {
      const report = await runMqttBench(await options({ qos }));
      assert.deepEqual(report.errors, []);
      assert.equal(report.received.lost, 0);
      const accounting = report.accounting ?? assert.fail('no accounting with --admin');
      assert.ok(accounting.toolSent > 0);
      assert.equal(accounting.brokerReceived, accounting.toolSent, 'every publish written was counted in by the broker');
      assert.equal(accounting.notReceivedByBroker, 0);
      assert.equal(accounting.brokerDelivered, accounting.toolSent * 2, 'two subscribers');
      assert.deepEqual(accounting.brokerDropped, { 'queue-full': 0, expired: 0, 'too-large': 0 });
      assert.equal(accounting.toolReceived, accounting.brokerDelivered);
      assert.equal(accounting.inFlightAtEnd, 0);
      assert.equal(accounting.expectedDeliveries, accounting.toolSent * 2);
      assert.equal(accounting.notDeliveredByBroker, 0);
    });
  }
});
