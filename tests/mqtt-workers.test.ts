// MQTT over more than one core (docs/architecture.md, "More than one core"): one real
// `shardline start --workers 2` node, mqtt.js clients on 127.0.0.1.
//
// Which worker holds a client is read from the node's own log: every worker line carries
// "worker":K, and at debug level a worker logs each "client connected" with its client id. The
// primary hands connections out round-robin, so a client meant for a given worker connects
// right after a probe connection landed on the other one.
//
// - connections land on both workers: the log and the per-worker /metrics series agree;
// - QoS 0, 1 and 2 from a publisher at one worker to a subscriber at the other, both ways, in
//   publisher order, each message exactly once;
// - a retained message set through worker 1 is served to a new subscriber at worker 2;
// - a persistent session left at worker 1 and resumed at worker 2 gets what was queued meanwhile;
// - a client id connected at worker 2 while it is connected at worker 1: the first connection
//   is told the session was taken over (5.0 DISCONNECT 0x8E);
// - a worker that cannot bind the MQTT port stops the node's start: exit 1, SL_NODE_WORKER_FAILED;
// - SIGKILL of a worker under QoS 1 load: its persistent subscriber reconnects (to whichever
//   worker the node hands it) and gets every acknowledged message; the primary starts the
//   worker again and it serves.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { brokerForSuite, runCli, scratchDirectory } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, uniqueClientId, uniqueTopic, type ConnectOptions, type TestClient } from './support/mqtt-client.js';
import { waitUntil } from './support/raw-mqtt.js';

const TOKEN = 'workers-admin-token-0123456789abcdef';
// Long enough that a worker slowed by a busy machine is not taken for gone (it would adopt the other's sessions).
const TAKEOVER_WAIT_MS = 3_000;

const node = brokerForSuite({ args: ['--workers', '2', '--log-level', 'debug', '--takeover-wait-ms', String(TAKEOVER_WAIT_MS), '--admin-token', TOKEN], listenTimeoutMs: 120_000 }, closeAllClients);

type Entry = Record<string, unknown>;

function logEntries(): Entry[] {
  const entries: Entry[] = [];
  for (const line of node.broker.lines) {
    try {
      entries.push(JSON.parse(line) as Entry);
    } catch {
      // a line that is not JSON (none expected) is not a log entry
    }
  }
  return entries;
}

function connectsOf(clientId: string): Entry[] {
  return logEntries().filter((entry) => entry.msg === 'client connected' && entry.clientId === clientId);
}

/** The worker that logged the `nth` connect (0-based) of `clientId`; waits for that line. */
async function workerOfConnect(clientId: string, nth: number): Promise<number> {
  await waitUntil(() => connectsOf(clientId).length > nth, 10_000, `the log line of connect ${nth} of ${clientId}`, 20);
  const worker = connectsOf(clientId)[nth]?.worker;
  assert.ok(typeof worker === 'number', `the connect line of ${clientId} names its worker`);
  return worker;
}

/**
 * Connects so that the client lands on `target`: probes (clean, throwaway ids) until one lands on
 * the other worker, then connects the client, which round-robin hands to `target`.
 */
async function connectOn(target: number, options: ConnectOptions & { clientId?: string } = {}): Promise<TestClient> {
  const clientId = options.clientId ?? uniqueClientId(`on${target}`);
  for (let attempt = 0; attempt < 6; attempt += 1) {
    const probe = await connectClient(node.url, { version: 5 });
    const probeWorker = await workerOfConnect(probe.clientId, 0);
    await probe.end();
    if (probeWorker === target) continue;
    const before = connectsOf(clientId).length;
    const client = await connectClient(node.url, { version: 5, ...options, clientId });
    if ((await workerOfConnect(clientId, before)) === target) return client;
    // Another connection came in between: only a client with no session to disturb may try again.
    assert.notEqual(options.clean, false, `the persistent client ${clientId} landed on the other worker`);
    await client.end();
  }
  assert.fail(`could not place a client on worker ${target}`);
}

async function metrics(): Promise<string> {
  const entry = logEntries().find((line) => line.admin !== undefined && line.workers !== undefined);
  assert.ok(entry !== undefined, 'the listening line names the admin address and the workers');
  const response = await fetch(`http://${String(entry.admin)}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200);
  return response.text();
}

function series(text: string, name: string, worker: number): number | undefined {
  const line = text.split('\n').find((row) => row.startsWith(`${name}{`) && row.includes(`worker="${worker}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function payloads(label: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${label}-${index}`);
}

function persistent(clientId: string): ConnectOptions & { clientId: string } {
  return { version: 5, clientId, clean: false, properties: { sessionExpiryInterval: 600 } };
}

describe('shardline start --workers 2', () => {
  before(() => assert.ok(node.url !== undefined));

  it('hands connections to both workers, as the log and the per-worker metrics show', async () => {
    const clients: TestClient[] = [];
    for (let index = 0; index < 12; index += 1) clients.push(await connectClient(node.url, { version: 5 }));
    const workers = await Promise.all(clients.map((client) => workerOfConnect(client.clientId, 0)));
    assert.deepEqual([...new Set(workers)].sort(), [1, 2], `connections went to ${workers.join(',')}`);
    // Workers report their figures once a second: both count at least their share of these.
    const onWorker = (worker: number): number => workers.filter((one) => one === worker).length;
    let text = '';
    for (let attempt = 0; attempt < 50; attempt += 1) {
      text = await metrics();
      if ((series(text, 'shardline_worker_mqtt_connections', 1) ?? 0) >= onWorker(1) && (series(text, 'shardline_worker_mqtt_connections', 2) ?? 0) >= onWorker(2)) break;
      await sleep(200);
    }
    assert.ok((series(text, 'shardline_worker_mqtt_connections', 1) ?? 0) >= onWorker(1), `worker 1 reports ${series(text, 'shardline_worker_mqtt_connections', 1)} connections, holds ${onWorker(1)} of these`);
    assert.ok((series(text, 'shardline_worker_mqtt_connections', 2) ?? 0) >= onWorker(2), `worker 2 reports ${series(text, 'shardline_worker_mqtt_connections', 2)} connections, holds ${onWorker(2)} of these`);
    assert.equal(series(text, 'shardline_worker_up', 1), 1);
    assert.equal(series(text, 'shardline_worker_up', 2), 1);
    for (const client of clients) await client.end();
  });

  for (const qos of [0, 1, 2] as const) {
    it(`delivers QoS ${qos} from one worker to the other, both ways, in publisher order, exactly once`, async () => {
      const topic = uniqueTopic(`workers/q${qos}`);
      const at1 = await connectOn(1);
      const at2 = await connectOn(2);
      await at1.subscribe(topic, { qos });
      await at2.subscribe(topic, { qos });
      const from1 = await connectOn(1);
      const from2 = await connectOn(2);
      const sent1 = payloads(`w1q${qos}`, 40);
      const sent2 = payloads(`w2q${qos}`, 40);
      const results = await Promise.all([from1.publishMany(topic, sent1, { qos }), from2.publishMany(topic, sent2, { qos })]);
      if (qos > 0) for (const result of results.flat()) assert.ok(result.error === undefined && (result.ack?.reasonCode ?? 0) < 0x80, 'every publish acknowledged');
      for (const subscriber of [at1, at2]) {
        const received = (await subscriber.waitForMessages(sent1.length + sent2.length, { topic, timeoutMs: 20_000 })).map((message) => message.payload.toString());
        assert.deepEqual(received.filter((payload) => payload.startsWith(`w1q${qos}-`)), sent1);
        assert.deepEqual(received.filter((payload) => payload.startsWith(`w2q${qos}-`)), sent2);
      }
      // A marker from worker 1's publisher reaches worker 2's subscriber after everything, and nothing more before it.
      await at2.expectNothingBeforeMarker(from1, topic, { from: sent1.length + sent2.length, what: 'no message twice' });
      for (const client of [at1, at2, from1, from2]) await client.end();
    });
  }

  it('serves a retained message set through worker 1 to a new subscriber at worker 2', async () => {
    const topic = uniqueTopic('workers/retained');
    // A live subscriber at worker 2 first: the retained message has reached worker 2 once it arrives there.
    const live = await connectOn(2);
    await live.subscribe(topic, { qos: 1 });
    const publisher = await connectOn(1);
    await publisher.publish(topic, 'kept by worker 1', { qos: 1, retain: true });
    await live.waitForMessages(1, { topic, timeoutMs: 10_000 });
    const late = await connectOn(2);
    await late.subscribe(topic, { qos: 1 });
    const [message] = await late.waitForMessages(1, { topic, timeoutMs: 10_000 });
    assert.equal(message?.payload.toString(), 'kept by worker 1');
    assert.equal(message?.packet.retain, true, 'sent as retained');
    for (const client of [publisher, live, late]) await client.end();
  });

  it('resumes a persistent session left at worker 1 at worker 2, with what was queued meanwhile', async () => {
    const topic = uniqueTopic('workers/session');
    const clientId = uniqueClientId('roamer');
    const first = await connectOn(1, persistent(clientId));
    await first.subscribe(topic, { qos: 1 });
    await first.end();
    const publisher = await connectOn(1);
    const queued = payloads('queued', 15);
    await publisher.publishMany(topic, queued, { qos: 1 });
    const second = await connectOn(2, persistent(clientId));
    assert.equal(second.connack.sessionPresent, true, 'worker 2 resumed the session');
    const received = (await second.waitForMessages(queued.length, { topic, timeoutMs: 20_000 })).map((message) => message.payload.toString());
    assert.deepEqual(received, queued);
    await second.expectNothingBeforeMarker(publisher, topic, { from: queued.length, what: 'each queued message once' });
    for (const client of [second, publisher]) await client.end();
  });

  it('takes a client id over across workers: the connection at worker 1 is told 0x8E', async () => {
    const clientId = uniqueClientId('twice');
    const first = await connectOn(1, persistent(clientId));
    const second = await connectOn(2, persistent(clientId));
    assert.equal(second.connack.sessionPresent, true, 'the session moved');
    await first.waitForClose(10_000);
    assert.equal(first.serverDisconnect?.reasonCode, 0x8e, 'worker 1 told its client the session was taken over');
    await second.roundTrip();
    await second.end();
  });

  it('does not start when a worker cannot serve (the MQTT port is taken): exit 1, SL_NODE_WORKER_FAILED', async () => {
    const taken = runCli(['start', '--workers', '2', '--data-dir', await scratchDirectory(), '--mqtt-port', String(node.port), '--grpc-port', '0', '--admin-port', '0']);
    const { code } = await taken.exited;
    assert.equal(code, 1);
    const codes = taken.lines.map((line) => (JSON.parse(line) as { code?: string }).code);
    assert.ok(codes.includes('SL_NODE_WORKER_FAILED'), `the primary logs SL_NODE_WORKER_FAILED: ${taken.lines.slice(-5).join('\n')}`);
  });

  it('SIGKILL of a worker under QoS 1 load: its subscriber reconnects and gets every acknowledged message; the worker is started again', async () => {
    const topic = uniqueTopic('workers/kill');
    const clientId = uniqueClientId('survivor');
    const victim = 1;
    const subscriber = await connectOn(victim, persistent(clientId));
    await subscriber.subscribe(topic, { qos: 1 });
    const steady = await connectOn(2);
    const doomed = await connectOn(victim);
    const acked = new Set<string>();
    const received = new Set<string>();
    const collect = (client: TestClient): void => {
      client.client.on('message', (messageTopic, payload) => {
        if (messageTopic === topic) received.add(payload.toString());
      });
    };
    collect(subscriber);
    // Bounded load: each publisher sends at most 300 messages, 10 unacknowledged at a time; the
    // one at the victim stops when its connection goes.
    const load = (client: TestClient, label: string): Promise<void> => (async () => {
      for (let batch = 0; batch < 30 && !client.isClosed; batch += 1) {
        const sent = payloads(`${label}${batch}`, 10);
        // mqtt.js never settles a publish whose connection closed before its ack, so the close ends the wait.
        const closed = client.closed.then(() => Promise.reject(new Error('connection closed')));
        const results = await Promise.allSettled(sent.map((payload) => Promise.race([client.publish(topic, payload, { qos: 1 }), closed])));
        results.forEach((result, index) => {
          if (result.status === 'fulfilled' && result.value.ack?.cmd === 'puback' && (result.value.ack.reasonCode ?? 0) < 0x80) acked.add(sent[index]!);
        });
      }
    })();
    const loads = [load(steady, 's'), load(doomed, 'd')];
    await waitUntil(() => received.size >= 100, 20_000, '100 messages at the subscriber before the kill', 10);
    const started = logEntries().filter((entry) => entry.msg === 'MQTT worker started' && entry.worker === victim);
    const pid = started.at(-1)?.pid;
    assert.ok(typeof pid === 'number', 'the primary logged the victim worker\'s pid');
    process.kill(pid, 'SIGKILL');
    await Promise.all(loads);
    assert.ok(acked.size > 100, `${acked.size} publishes acknowledged`);

    // The subscriber's connection died with its worker; it connects again, wherever the node puts it.
    await subscriber.waitForClose(10_000);
    const again = await connectClient(node.url, persistent(clientId));
    assert.equal(again.connack.sessionPresent, true, 'the session continued');
    collect(again);
    await waitUntil(() => [...acked].every((payload) => received.has(payload)), 30_000, 'every acknowledged message at the reconnected subscriber', 20);

    // The primary started the victim again, and it serves: its restart shows in /metrics.
    await waitUntil(() => logEntries().some((entry) => entry.msg === 'MQTT worker serving' && entry.worker === victim && entry.pid !== pid), 30_000, 'the victim worker serving again', 50);
    const text = await metrics();
    assert.equal(series(text, 'shardline_worker_restarts', victim), 1);
    assert.equal(series(text, 'shardline_worker_up', victim), 1);
    await again.end();
    await steady.end();
  });
});
