// A broker-only node whose journal goes away under MQTT load, and comes back.
//
// Goal: with `--roles broker --journal HOST:PORT`, stopping the journal server (SIGKILL, and
// SIGTERM) does not stop the broker process; while the journal is away /readyz answers 503
// naming journal-unavailable, MQTT 5.0 QoS 1 publishes are refused with PUBACK 0x80 and 3.1.1
// QoS 1 publishes are held unacknowledged, a new persistent session gets CONNACK 0x88 / 0x03; once the journal is back on the same address /readyz
// answers 200, the held 3.1.1 publishes are acknowledged, and every message any publisher saw
// acknowledged reaches both durable subscribers (5.0 and 3.1.1) that stayed connected.
// The 5.0 publisher's messages are retained and `--sys-interval 1` keeps $SYS publishing
// retained messages: a retained write failing as the journal goes is the path that used to end
// the process with an unhandled rejection.
// Method: real processes (tests/support/broker-process.ts: a journal server, a broker over it),
// mqtt.js publishers that keep a window of QoS 1 publishes open the whole time and record each
// ack, readiness polled over HTTP; the journal restarts on its data directory and port.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanup, runCli, scratchDirectory, startBroker, startJournalServer, stopBroker, waitForLogField, type BrokerProcess, type CliProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId, uniqueTopic, type TestClient } from './support/mqtt-client.js';

const OUTAGE_WAIT_MS = 20_000;

/** Keeps `window` QoS 1 publishes in flight until stopped; records what was acknowledged and what was refused. */
class PublishLoop {
  readonly acked = new Set<string>();
  readonly refusedCodes: number[] = [];
  #stopped = false;
  #sequence = 0;
  readonly done: Promise<void>;

  constructor(
    readonly client: TestClient,
    readonly topic: string,
    readonly label: string,
    /** Retained publishes write two shards: the data shard and $retained. */
    readonly retain = false,
    window = 8,
  ) {
    this.done = Promise.all(Array.from({ length: window }, () => this.#run())).then(() => undefined);
  }

  async #run(): Promise<void> {
    while (!this.#stopped && !this.client.isClosed) {
      this.#sequence += 1;
      const payload = `${this.label}-${this.#sequence}`;
      const result = await this.client.publish(this.topic, payload, { qos: 1, retain: this.retain }).catch(() => undefined);
      const code = (result?.ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
      if (result?.ack !== undefined && code < 0x80) this.acked.add(payload);
      else if (result?.ack !== undefined) {
        this.refusedCodes.push(code);
        // Refused at once while the journal is away: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }
}

async function readyz(adminPort: number): Promise<{ status: number; body: { blocks?: Array<{ reason: string }> } }> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  return { status: response.status, body: (await response.json()) as { blocks?: Array<{ reason: string }> } };
}

async function waitForReadiness(adminPort: number, status: number): Promise<{ status: number; body: { blocks?: Array<{ reason: string }> } }> {
  const started = Date.now();
  for (;;) {
    const answer = await readyz(adminPort);
    if (answer.status === status) return answer;
    assert.ok(Date.now() - started < OUTAGE_WAIT_MS, `/readyz still ${answer.status} after ${OUTAGE_WAIT_MS} ms: ${JSON.stringify(answer.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until every payload in `expected` was received by `client` (duplicates allowed: at least once). */
async function waitForAll(client: TestClient, topic: string, expected: Set<string>): Promise<void> {
  const started = Date.now();
  for (;;) {
    const seen = new Set(client.messages.filter((message) => message.topic === topic).map((message) => message.payload.toString()));
    const missing = [...expected].filter((payload) => !seen.has(payload));
    if (missing.length === 0) return;
    assert.ok(Date.now() - started < OUTAGE_WAIT_MS, `${client.clientId} is missing ${missing.length} acknowledged message(s), e.g. ${missing.slice(0, 5).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls `condition` until it holds; fails after OUTAGE_WAIT_MS naming `what`. */
async function until(condition: () => boolean, what: () => string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    assert.ok(Date.now() - started < OUTAGE_WAIT_MS, `gave up waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function alive(cli: CliProcess): boolean {
  return cli.child.exitCode === null && cli.child.signalCode === null;
}

describe('a broker-only node while its journal stops and restarts under MQTT load', () => {
  after(async () => {
    closeAllClients();
    await cleanup();
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    test(`journal stopped with ${signal}: refusals, /readyz 503 then 200, nothing acknowledged lost`, async () => {
      const dataDir = await scratchDirectory();
      const journal = await startJournalServer(dataDir);
      const journalPort = journal.address.slice(journal.address.lastIndexOf(':') + 1);
      const node: BrokerProcess = await startBroker({ topology: 'split', dataDir, journal, args: ['--sys-interval', '1'] });
      const adminPort = Number((await waitForLogField(node.broker, 'adminPort')).adminPort);
      const topic = uniqueTopic('outage');
      const subscribers = [
        await connectClient(node.url, { version: 5, clientId: uniqueClientId('sub5'), clean: false, properties: { sessionExpiryInterval: 3600 } }),
        await connectClient(node.url, { version: 4, clientId: uniqueClientId('sub4'), clean: false }),
      ];
      for (const subscriber of subscribers) await subscriber.subscribe(topic, { qos: 1 });
      // Retained, so appends to $retained are in flight when the journal goes (a failed one used to float unhandled).
      const v5 = new PublishLoop(await connectClient(node.url, { version: 5 }), topic, 'v5', true);
      const v4 = new PublishLoop(await connectClient(node.url, { version: 4 }), topic, 'v4');
      await until(() => v5.acked.size >= 30 && v4.acked.size >= 30, () => `30 acks each before the outage (v5 ${v5.acked.size}, v4 ${v4.acked.size})`);

      journal.process.child.kill(signal);
      await journal.process.exited;
      const notReady = await waitForReadiness(adminPort, 503);
      assert.deepEqual(notReady.body.blocks?.map((block) => block.reason), ['journal-unavailable']);
      // 5.0 publishes are refused with PUBACK 0x80 while the journal is away.
      await until(() => v5.refusedCodes.includes(0x80), () => `a PUBACK 0x80 (refused: ${v5.refusedCodes.join(',')})`);
      assert.deepEqual([...new Set(v5.refusedCodes)], [0x80]);
      // A persistent session needs a session write: CONNACK "server unavailable" until the journal is back.
      await assert.rejects(connectClient(node.url, { version: 5, clean: false, properties: { sessionExpiryInterval: 60 } }), (error: { code?: number }) => error.code === 0x88);
      await assert.rejects(connectClient(node.url, { version: 4, clean: false }), (error: { code?: number }) => error.code === 3);
      // Past a few $SYS rounds (every second) and store retries: the process is still there.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.ok(alive(node.broker), `the broker exited during the outage:\n${node.broker.lines.slice(-5).join('\n')}`);
      const v4AckedBeforeReturn = v4.acked.size;

      const restarted = runCli(['start', '--roles', 'journal', '--data-dir', dataDir, '--grpc-port', journalPort, '--admin-port', '0']);
      await waitForLogField(restarted, 'journalGrpc');
      node.journal = restarted;
      await waitForReadiness(adminPort, 200);
      // The 3.1.1 publishes held during the outage are acknowledged now, and new ones go through.
      await until(() => v4.acked.size >= v4AckedBeforeReturn + 20 && v5.acked.size >= 60, () => `acks after the journal returned (v5 ${v5.acked.size}, v4 ${v4.acked.size} from ${v4AckedBeforeReturn}; v4 closed: ${v4.client.isClosed})`);
      // An outage shorter than writes-blocked-disconnect-seconds (30) closes nobody.
      assert.ok(!v5.client.isClosed && !v4.client.isClosed && subscribers.every((subscriber) => !subscriber.isClosed), 'every client stayed connected');
      await Promise.all([v5.stop(), v4.stop()]);
      assert.equal(v4.refusedCodes.length, 0, '3.1.1 has no failure ack: its publishes are held, never refused');

      const acknowledged = new Set([...v5.acked, ...v4.acked]);
      for (const subscriber of subscribers) await waitForAll(subscriber, topic, acknowledged);
      assert.ok(alive(node.broker));
      for (const client of [v5.client, v4.client, ...subscribers]) await client.end();
      await stopBroker(node);
    });
  }
});
