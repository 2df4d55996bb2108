// Goal: `shardline bench mqtt` counts what it claims — at QoS 1/2 every measured publish
// reaches every subscriber once, whether the clients share one worker or are spread over two —
// its hand-made packets are what mqtt-packet decodes, and bad flags are refused by name.
// Method: pure checks of the wire helpers, then short rate-limited runs against an in-memory
// Aedes broker started in this process on a free loopback port, then the CLI itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { UsageError } from '../command.js';
import { parseMqttBenchFlags } from '../commands/bench-mqtt.js';
import { brokerAccounting, parseBrokerCounters } from './broker-accounting.js';
import { assignClients, runMqttBench, type MqttBenchOptions } from './mqtt-bench.js';
import { defaultSubTopic, encodePublishes, FrameReader, publishTemplate, topicMatches } from './mqtt-bench-wire.js';
import { cliArgs } from '../../tests/support/cli-entry.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function decodeAll(bytes: Buffer, protocolVersion: 4 | 5): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (error: Error) => assert.fail(error));
  parser.parse(bytes);
  return packets;
}

test('pre-encoded publishes decode as the same packets, with ids, send time, publisher and sequence', () => {
  for (const protocolVersion of [4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      const template = publishTemplate('bench/7', qos, 40, protocolVersion);
      const bytes = encodePublishes(template, 3, 7, 10, 65_535, 1234.5);
      const packets = decodeAll(bytes, protocolVersion) as IPublishPacket[];
      assert.equal(packets.length, 3);
      packets.forEach((packet, index) => {
        assert.equal(packet.topic, 'bench/7');
        assert.equal(packet.qos, qos);
        if (qos > 0) assert.equal(packet.messageId, [65_535, 1, 2][index], 'packet ids wrap past 65535 to 1');
        const payload = packet.payload as Buffer;
        assert.equal(payload.length, 40);
        assert.equal(payload.readDoubleBE(0), 1234.5);
        assert.equal(payload.readUInt32BE(8), 7);
        assert.equal(payload.readUInt32BE(12), 10 + index);
      });
    }
  }
});

test('FrameReader finds every packet whatever the chunking', () => {
  const template = publishTemplate('t', 1, 200, 4);
  const stream = Buffer.concat([encodePublishes(template, 5, 0, 0, 1, 1), Buffer.from([0xd0, 0x00]), encodePublishes(template, 2, 0, 5, 6, 1)]);
  for (const step of [1, 2, 3, 7, 100, stream.length]) {
    const frames: { type: number; length: number }[] = [];
    const reader = new FrameReader((firstByte, _buffer, frameStart, bodyStart, bodyEnd) => frames.push({ type: firstByte >> 4, length: bodyEnd - frameStart }));
    for (let offset = 0; offset < stream.length; offset += step) reader.push(stream.subarray(offset, offset + step));
    assert.deepEqual(frames.map((frame) => frame.type), [3, 3, 3, 3, 3, 13, 3, 3], `step ${step}`);
    assert.equal(frames.reduce((sum, frame) => sum + frame.length, 0), stream.length);
  }
});

test('topics: default filter, matching, and client spread', () => {
  assert.equal(defaultSubTopic('bench/{i}'), 'bench/#');
  assert.equal(defaultSubTopic('a/x{i}/b'), 'a/#');
  assert.equal(defaultSubTopic('fixed/topic'), 'fixed/topic');
  assert.ok(topicMatches('bench/#', 'bench/3'));
  assert.ok(topicMatches('bench/+', 'bench/3'));
  assert.ok(!topicMatches('bench/+', 'bench/3/x'));
  assert.ok(!topicMatches('#', '$SYS/x'));
  assert.ok(topicMatches('a/b', 'a/b'));
  // Fan-in: the subscriber's worker takes no publishers; fan-out: subscribers split evenly.
  const fanIn = assignClients(2, 8, 1, 5);
  assert.deepEqual(fanIn.map((a) => [a.subscribers.length, a.publishers.length, a.idle.length]), [[1, 0, 3], [0, 8, 2]]);
  const fanOut = assignClients(2, 1, 64, 0);
  assert.deepEqual(fanOut.map((a) => a.subscribers.length), [32, 32]);
});

test('bad flags are refused with a message that names the flag', () => {
  const refuse = (values: Record<string, string>, pattern: RegExp): void => {
    assert.throws(() => parseMqttBenchFlags(values), (error: unknown) => error instanceof UsageError && pattern.test(error.message));
  };
  refuse({ qos: '3' }, /--qos must be one of 0, 1, 2/);
  refuse({ size: '0' }, /--size must be an integer >= 16/);
  refuse({ 'protocol-version': '3' }, /--protocol-version/);
  refuse({ url: 'http://127.0.0.1:1883' }, /--url/);
  refuse({ rate: '-1' }, /--rate/);
  refuse({ pubs: '0', subs: '0' }, /nothing to run/);
  refuse({ topic: 'bench/#' }, /--topic/);
  refuse({ admin: 'localhost:8080', 'admin-token': 't' }, /--admin must look like http/);
  refuse({ 'admin-token': 't' }, /--admin-token needs --admin/);
  const options = parseMqttBenchFlags({ url: 'mqtt://127.0.0.1:1999', pubs: '8', qos: '1' });
  assert.equal(options.port, 1999);
  assert.equal(options.subTopic, 'bench/#');
  assert.equal(options.qos, 1);
  assert.equal(options.admin, null);
  assert.deepEqual(parseMqttBenchFlags({ admin: 'http://127.0.0.1:8080', 'admin-token': 'secret' }).admin, { url: 'http://127.0.0.1:8080', token: 'secret' });
});

test('broker counters: parsed from /metrics text; the accounting adds up to the expected deliveries', () => {
  const text = (inCount: number, outCount: number, queueFull: number): string =>
    [
      '# HELP shardline_messages_in_total Messages clients published',
      '# TYPE shardline_messages_in_total counter',
      `shardline_messages_in_total{protocol="mqtt",node="n"} ${inCount}`,
      `shardline_messages_out_total{protocol="mqtt",node="n"} ${outCount}`,
      `shardline_dropped_messages_total{reason="queue-full",node="n"} ${queueFull}`,
      'shardline_dropped_messages_total{reason="expired",node="n"} 0',
      'shardline_sys_messages_total{direction="in",node="n"} 999',
    ].join('\n');
  const before = parseBrokerCounters(text(10, 20, 1)) ?? assert.fail('no counters');
  assert.deepEqual(before, { messagesIn: 10, messagesOut: 20, dropped: { 'queue-full': 1, expired: 0 } });
  assert.equal(parseBrokerCounters('process_cpu_seconds_total 3\n'), null);
  const after = parseBrokerCounters(text(10 + 95, 20 + 170, 1 + 30)) ?? assert.fail('no counters');
  // 100 publishes written, 2 subscribers: 5 never reached the broker; of its 95 x 2 = 190
  // expected deliveries it made 170 (20 still waiting), dropped 30, and the subscribers got 130.
  const accounting = brokerAccounting(before, after, { sent: 100, sentMatching: 100, subscribers: 2, received: 130 });
  assert.deepEqual(accounting, {
    toolSent: 100,
    brokerReceived: 95,
    notReceivedByBroker: 5,
    brokerDelivered: 170,
    brokerDropped: { 'queue-full': 30, expired: 0 },
    expectedDeliveries: 200,
    toolReceived: 130,
    inFlightAtEnd: 10,
    notDeliveredByBroker: 20,
  });
  const parts = accounting.toolReceived + 30 + accounting.inFlightAtEnd + accounting.notDeliveredByBroker + accounting.notReceivedByBroker * 2;
  assert.equal(parts, accounting.expectedDeliveries);
});

test('the CLI prints its help and refuses qos 3 with exit code 2', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, cliArgs(['bench', 'mqtt', ...args]), { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000 });
  const help = cli(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--broker-pid PID/);
  assert.match(help.stdout, /--admin URL/);
  assert.match(help.stdout, /--protocol-version 4\|5/);
  const bad = cli(['--qos', '3']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--qos must be one of 0, 1, 2, got "3"/);
});

let broker: Aedes;
let server: Server;
let port: number;

before(async () => {
  broker = await Aedes.createBroker();
  server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => broker.close(() => resolve()));
  server.close();
});

function options(overrides: Partial<MqttBenchOptions>): MqttBenchOptions {
  return {
    host: '127.0.0.1',
    port,
    publishers: 2,
    subscribers: 1,
    qos: 1,
    size: 64,
    rate: 500,
    durationMs: 1000,
    warmupMs: 200,
    drainTimeoutMs: 3000,
    idleConnections: 0,
    topic: 'bench/{i}',
    subTopic: 'bench/#',
    workers: 1,
    brokerPid: null,
    protocolVersion: 4,
    inflight: 64,
    keepaliveSeconds: 60,
    ...overrides,
  };
}

function assertComplete(report: Awaited<ReturnType<typeof runMqttBench>>, subscribers: number, rate: number): void {
  assert.deepEqual(report.errors, []);
  assert.equal(report.errorCount, 0);
  // Rate-limited: the window holds about rate x 1 s publishes.
  assert.ok(Math.abs(report.sent.messages - rate) <= rate * 0.1, `sent ${report.sent.messages}, target ${rate}`);
  assert.equal(report.received.expected, report.sent.messages * subscribers);
  assert.equal(report.received.delivered, report.received.expected);
  assert.equal(report.received.lost, 0);
  assert.equal(report.received.duplicates, 0);
  assert.equal(report.latencyMs.samples, report.received.delivered);
  for (const key of ['p50', 'p99', 'p999', 'max'] as const) assert.ok(Number.isFinite(report.latencyMs[key]) && report.latencyMs[key] > 0, `${key} ${report.latencyMs[key]}`);
  assert.ok(report.latencyMs.p50 <= report.latencyMs.p99 && report.latencyMs.p99 <= report.latencyMs.max);
  assert.ok(report.tool.cpuPercentOfCore > 0);
}

test('QoS 1 fan-in: every measured publish arrives once, in one worker or spread over two', async () => {
  const one = await runMqttBench(options({ workers: 1 }));
  assertComplete(one, 1, 500);
  assert.equal(one.settings.workers, 1);
  const two = await runMqttBench(options({ workers: 2 }));
  assertComplete(two, 1, 500);
  assert.equal(two.settings.workers, 2);
  assert.equal(two.publishes.refused, 0);
});

// Aedes speaks MQTT 3.1.1 only; the MQTT 5 encoding is covered by the decode test above.
test('QoS 2 fan-out with idle connections and broker figures', async () => {
  const report = await runMqttBench(options({ qos: 2, publishers: 1, subscribers: 3, rate: 300, workers: 2, idleConnections: 20, brokerPid: process.pid }));
  assertComplete(report, 3, 300);
  assert.ok(report.broker !== null);
  assert.equal(typeof report.broker.perIdleConnectionBytes, 'number');
  assert.ok((report.broker.rssPeakBytes ?? 0) > 0);
  assert.ok((report.broker.cpuSecondsTotal ?? 0) > 0, 'this process (the broker here) used CPU during the run');
});
