// `shardline bench mqtt`: flags and output. The load itself runs in cli/bench/mqtt-bench.ts
// (coordinator) and cli/bench/mqtt-bench-worker.ts (the forked worker processes).
import { access } from 'node:fs/promises';
import { defaultWorkers, formatMqttReport, runMqttBench, type MqttBenchOptions } from '../bench/mqtt-bench.js';
import { defaultSubTopic, PAYLOAD_HEADER_BYTES } from '../bench/mqtt-bench-wire.js';
import { stringFlag, UsageError, type Command, boundedIntegerFlag } from '../command.js';
import { createProgress, type Progress } from '../progress.js';

const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
const DEFAULT_TOPIC = 'bench/{i}';
const DEFAULT_SIZE = 64;
const MAX_SIZE = 16 * 2 ** 20;
const DEFAULT_DURATION_SECONDS = 10;
const MAX_DURATION_SECONDS = 3600;
const DEFAULT_WARMUP_SECONDS = 1;
const DEFAULT_DRAIN_TIMEOUT_SECONDS = 5;
const DEFAULT_INFLIGHT = 64;
const DEFAULT_KEEPALIVE_SECONDS = 60;
const MAX_CLIENTS = 100_000;
const MAX_IDLE_CONNECTIONS = 1_000_000;
const MAX_WORKERS = 64;

const usage = `
Usage: shardline bench mqtt [flags]

Loads an MQTT broker the way emqtt-bench does and reports what it sustained: publishers
send to their topics, subscribers receive, and every payload carries its send time so the
subscribers measure end-to-end latency. Clients are spread over worker processes; the
figures cover the measured window that follows a warm-up. Run it on the broker's machine
(the send times and --broker-pid assume one clock and one /proc).

Typical runs:
  fan-in    --pubs 8 --subs 1 --qos 0
  fan-out   --pubs 1 --subs 64 --rate 2000
  memory    --pubs 0 --subs 0 --conns 10000 --broker-pid PID

Flags:
  --url URL                   broker address, mqtt://HOST:PORT (default ${DEFAULT_URL})
  --pubs N                    publishers (default 1)
  --subs N                    subscribers (default 1)
  --qos 0|1|2                 QoS of publishes and subscriptions (default 0)
  --size BYTES                payload size, at least ${PAYLOAD_HEADER_BYTES} (send time, publisher, sequence)
                              (default ${DEFAULT_SIZE})
  --rate R                    total target msg/s over all publishers; 0 = as fast as possible:
                              QoS 0 writes until the socket's buffer is full, QoS 1/2 keeps
                              --inflight publishes unacknowledged per publisher (default 0)
  --inflight N                unacknowledged QoS 1/2 publishes per publisher (default ${DEFAULT_INFLIGHT};
                              an MQTT 5 broker's Receive Maximum lowers it)
  --duration S                measured seconds of load (default ${DEFAULT_DURATION_SECONDS})
  --warmup S                  unmeasured seconds of load before them (default ${DEFAULT_WARMUP_SECONDS})
  --drain-timeout S           afterwards, how long to wait for messages still on their way;
                              what has not arrived by then counts as lost (default ${DEFAULT_DRAIN_TIMEOUT_SECONDS})
  --conns N                   extra idle connections, connected first and kept alive (default 0)
  --topic T                   publish topic; {i} becomes the publisher number (default ${DEFAULT_TOPIC})
  --sub-topic F               subscription filter (default: --topic from its {i} level on
                              replaced by #, so bench/{i} gives bench/#)
  --workers W                 worker processes (default min(2, CPUs) = ${defaultWorkers()})
  --broker-pid PID            report the broker's RSS (before connecting, after the idle
                              connections, peak under load) and CPU from /proc/PID
  --admin URL                 the broker's admin API (e.g. http://127.0.0.1:8080): its counters
                              (/metrics) are read before and after the run and set against the
                              tool's, splitting "not arrived" into never reached the broker,
                              dropped by the broker (by reason) and in flight when the run closed
  --admin-token TOKEN         its bearer token (default: $SHARDLINE_ADMIN_TOKEN)
  --protocol-version 4|5      MQTT 3.1.1 or 5 (default 4)
  --keepalive S               keep-alive of every connection (default ${DEFAULT_KEEPALIVE_SECONDS})
  --json                      print the report as JSON on stdout
  -h, --help                  this text

Expected deliveries = publishes sent in the window x subscribers whose filter matches them;
at QoS 1/2 every one should arrive once. At QoS 0 under overload, "not arrived" is not the
broker dropping them: with --admin the report shows how many publishes never reached the
broker (written into socket buffers the broker had not read when the run closed), how many the
broker dropped (shardline_dropped_messages_total) and how many it had delivered into queues and
sockets that the end of the run cut off. Those counters cover the whole run (warm-up
included) and every client, so they add up only on a broker nothing else uses. "load tool" is this tool's own CPU: when its busiest
process nears 100% of a core, the tool, not the broker, set the pace.
A progress bar is drawn on stderr when it is a terminal (not with --json).
`;

function numberFlag(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number, what = 'a number'): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be ${what} in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}


function choice<T extends number>(values: Record<string, unknown>, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const found = allowed.find((value) => String(value) === raw);
  if (found === undefined) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return found;
}

function parseUrl(raw: string): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url must look like mqtt://HOST:PORT, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'tcp:') throw new UsageError(`--url: only mqtt:// (plain TCP) is supported, got ${url.protocol}//`);
  if (url.hostname === '') throw new UsageError(`--url has no host: ${JSON.stringify(raw)}`);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 1883 : Number(url.port) };
}

function adminFlags(values: Record<string, unknown>): { url: string; token: string } | null {
  if (values.admin === undefined) {
    if (values['admin-token'] !== undefined) throw new UsageError('--admin-token needs --admin URL');
    return null;
  }
  const url = stringFlag(values, 'admin');
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--admin must look like http://HOST:PORT, got ${JSON.stringify(url)}`);
  const token = values['admin-token'] === undefined ? process.env.SHARDLINE_ADMIN_TOKEN : stringFlag(values, 'admin-token');
  if (token === undefined || token === '') throw new UsageError('--admin needs the admin token: --admin-token TOKEN or SHARDLINE_ADMIN_TOKEN');
  return { url, token };
}

/** Flag values → options; throws UsageError naming the flag on anything out of range. */
export function parseMqttBenchFlags(values: Record<string, unknown>): MqttBenchOptions {
  const { host, port } = parseUrl(stringFlag(values, 'url', DEFAULT_URL));
  const topic = stringFlag(values, 'topic', DEFAULT_TOPIC);
  if (topic.includes('+') || topic.includes('#')) throw new UsageError(`--topic is a topic name, it cannot hold + or #: ${JSON.stringify(topic)}`);
  const publishers = boundedIntegerFlag(values, 'pubs', 1, 0, MAX_CLIENTS);
  const subscribers = boundedIntegerFlag(values, 'subs', 1, 0, MAX_CLIENTS);
  const idleConnections = boundedIntegerFlag(values, 'conns', 0, 0, MAX_IDLE_CONNECTIONS);
  if (publishers + subscribers + idleConnections === 0) throw new UsageError('nothing to run: --pubs, --subs and --conns are all 0');
  const pidRaw = values['broker-pid'];
  return {
    host,
    port,
    publishers,
    subscribers,
    qos: choice(values, 'qos', 0, [0, 1, 2] as const),
    size: boundedIntegerFlag(values, 'size', DEFAULT_SIZE, PAYLOAD_HEADER_BYTES, MAX_SIZE),
    rate: numberFlag(values, 'rate', 0, 0, 1e9, 'msg/s'),
    durationMs: numberFlag(values, 'duration', DEFAULT_DURATION_SECONDS, 0.1, MAX_DURATION_SECONDS, 'seconds') * 1000,
    warmupMs: numberFlag(values, 'warmup', DEFAULT_WARMUP_SECONDS, 0, MAX_DURATION_SECONDS, 'seconds') * 1000,
    drainTimeoutMs: numberFlag(values, 'drain-timeout', DEFAULT_DRAIN_TIMEOUT_SECONDS, 0, 600, 'seconds') * 1000,
    idleConnections,
    topic,
    subTopic: stringFlag(values, 'sub-topic', defaultSubTopic(topic)),
    workers: boundedIntegerFlag(values, 'workers', defaultWorkers(), 1, MAX_WORKERS),
    brokerPid: pidRaw === undefined ? null : boundedIntegerFlag(values, 'broker-pid', 0, 1, 2 ** 31),
    protocolVersion: choice(values, 'protocol-version', 4, [4, 5] as const),
    inflight: boundedIntegerFlag(values, 'inflight', DEFAULT_INFLIGHT, 1, 65_535),
    keepaliveSeconds: boundedIntegerFlag(values, 'keepalive', DEFAULT_KEEPALIVE_SECONDS, 0, 65_535),
    admin: adminFlags(values),
  };
}

async function run(values: Record<string, unknown>): Promise<number> {
  const options = parseMqttBenchFlags(values);
  if (options.brokerPid !== null) {
    await access(`/proc/${options.brokerPid}/status`).catch(() => {
      throw new UsageError(`--broker-pid ${options.brokerPid}: no such process in /proc`);
    });
  }
  const json = values.json === true;
  const interactive = !json && process.stderr.isTTY === true;
  const totalSeconds = Math.ceil((options.warmupMs + options.durationMs) / 1000);
  let bar: Progress | null = null;
  const aborter = new AbortController();
  const onInterrupt = (): void => aborter.abort();
  process.once('SIGINT', onInterrupt);
  try {
    const report = await runMqttBench(options, {
      signal: aborter.signal,
      onPhase: (phase) => {
        if (!interactive) return;
        if (phase === 'load') bar = createProgress('bench mqtt', totalSeconds, 's');
        else if (phase === 'drain') bar?.update(totalSeconds);
        else if (phase === 'close') {
          bar?.stop();
          bar = null;
        } else process.stderr.write(`bench mqtt: ${phase}...\n`);
      },
      onProgress: (progress) => {
        if (interactive) bar?.update(Math.floor(progress.elapsedMs / 1000));
      },
    });
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatMqttReport(report));
    return report.errorCount > 0 ? 1 : 0;
  } catch (error) {
    if (aborter.signal.aborted) {
      process.stderr.write('shardline bench mqtt: interrupted\n');
      return 130;
    }
    process.stderr.write(`shardline bench mqtt: ${(error as Error).message}\n`);
    return 1;
  } finally {
    (bar as Progress | null)?.stop();
    process.removeListener('SIGINT', onInterrupt);
  }
}

export const benchMqttCommand: Command = {
  path: ['bench', 'mqtt'],
  summary: 'Load an MQTT broker (publishers, subscribers, idle connections) and report throughput, latency, memory',
  usage,
  options: {
    url: { type: 'string' },
    pubs: { type: 'string' },
    subs: { type: 'string' },
    qos: { type: 'string' },
    size: { type: 'string' },
    rate: { type: 'string' },
    inflight: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'drain-timeout': { type: 'string' },
    conns: { type: 'string' },
    topic: { type: 'string' },
    'sub-topic': { type: 'string' },
    workers: { type: 'string' },
    'broker-pid': { type: 'string' },
    admin: { type: 'string' },
    'admin-token': { type: 'string' },
    'protocol-version': { type: 'string' },
    keepalive: { type: 'string' },
    json: { type: 'boolean' },
  },
  run: (values) => run(values),
};
