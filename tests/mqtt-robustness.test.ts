// The broker under a slowloris and garbage flood while a normal client works.
//
// Goal: with 2,000 connections that dribble their CONNECT a byte at a time (never finishing it
// before the connect timeout) and 200 connections that send random bytes, over and over, a
// normal client that publishes and receives QoS 1 is served throughout (no ack takes long,
// no stretch without acks), every message it had acknowledged reaches its subscriber, the
// dribblers are dropped at the connect timeout and never get a CONNACK, and the broker's
// memory stays bounded (its VmRSS from /proc, sampled during the load).
// Method: one broker (`shardline start`, loopback, --connect-timeout-ms 3000). Dribblers send
// one byte of a valid CONNECT every 400 ms (so a ~40-byte CONNECT would take 16 s) from one
// shared interval timer, and reconnect when dropped; random senders write 1 byte to 8 KiB of
// random data (sometimes after a valid CONNECT, sometimes with a CONNECT's first byte), wait
// for the close, and start again. All of it runs for LOAD_MS, bounded in count and time; every
// socket the test opens is destroyed at the end. Random data comes from a seeded generator
// (SEED) so a failure can be replayed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { brokerForSuite, cleanup } from './support/broker-process.js';
import { connectPacket } from './support/raw-mqtt.js';
import { seededRandom } from './support/seeded-random.js';

after(cleanup);

const DRIBBLERS = 2_000;
const RANDOM_SENDERS = 200;
const CONNECT_TIMEOUT_MS = 3_000;
const DRIBBLE_EVERY_MS = 400;
const LOAD_MS = 15_000;
/** How much earlier than CONNECT_TIMEOUT_MS the broker's timer may fire, in real time (see the check). */
const TIMER_SLACK_MS = 250;
/** How much the broker's RSS may grow over its idle size under this load. */
const RSS_GROWTH_LIMIT = 256 * 1024 * 1024;
/**
 * Longest the normal client may wait for one PUBACK, and longest stretch without any. Runs
 * alone on 2 cores stay under 1 s; beside other test files, about 2 s.
 */
const MAX_ACK_MS = 5_000;
const SEED = Number(process.env.ROBUSTNESS_SEED ?? Date.now() % 1_000_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match !== null, `VmRSS of pid ${pid}`);
  return Number(match[1]) * 1024;
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

interface Dribbler {
  socket: Socket | undefined;
  sent: number;
  openedAt: number;
  /** Closed by the broker, and when (ms after open). */
  lifetimes: number[];
  gotBytes: number;
}

describe(`robustness: ${DRIBBLERS} CONNECT dribblers + ${RANDOM_SENDERS} random-byte senders beside a normal QoS 1 client (seed ${SEED})`, () => {
  const sockets = new Set<Socket>();
  const clients: MqttClient[] = [];
  const broker = brokerForSuite({ args: ['--connect-timeout-ms', String(CONNECT_TIMEOUT_MS)] }, () => {
    for (const socket of sockets) socket.destroy();
    for (const client of clients) client.end(true);
  });

  it('the normal client is served throughout, nothing acknowledged is lost, dribblers are dropped at the connect timeout, memory stays bounded', { timeout: 90_000 }, async () => {
    const random = seededRandom(SEED);
    const pid = broker.broker.child.pid as number;
    const port = broker.port;
    const connectBytes = mqttPacket.generate(connectPacket(4, { clientId: 'dribbler-with-a-client-id-long-enough' }), { protocolVersion: 4 });
    let stopping = false;

    // ---- the normal client ----
    const topic = `robust/${process.pid}`;
    const subscriber = await connectAsync(broker.url, { clientId: `robust-sub-${process.pid}`, protocolVersion: 5, clean: true, reconnectPeriod: 0 });
    clients.push(subscriber);
    const received = new Set<number>();
    subscriber.on('message', (_topic, payload) => received.add(Number(payload.toString())));
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const publisher = await connectAsync(broker.url, { clientId: `robust-pub-${process.pid}`, protocolVersion: 5, clean: true, reconnectPeriod: 0 });
    clients.push(publisher);
    const acked: number[] = [];
    let worstAckMs = 0;
    let worstGapMs = 0;
    let lastAckAt = Date.now();
    const publishing = (async () => {
      for (let sequence = 0; !stopping && sequence < 100_000; sequence += 1) {
        const started = Date.now();
        await publisher.publishAsync(topic, String(sequence), { qos: 1 });
        const now = Date.now();
        worstAckMs = Math.max(worstAckMs, now - started);
        worstGapMs = Math.max(worstGapMs, now - lastAckAt);
        lastAckAt = now;
        acked.push(sequence);
        await sleep(5);
      }
    })();
    await sleep(500);
    const idleRss = rssBytes(pid);

    // ---- dribblers ----
    const dribblers: Dribbler[] = Array.from({ length: DRIBBLERS }, () => ({ socket: undefined, sent: 0, openedAt: 0, lifetimes: [], gotBytes: 0 }));
    let dribblerOpens = 0;
    const openDribbler = async (dribbler: Dribbler): Promise<void> => {
      if (stopping) return;
      dribblerOpens += 1;
      // Timed from before connect(): the broker's timer starts at its accept, later, so a life
      // measured this way is never shorter than the broker's (this process lags under the load).
      const openedAt = Date.now();
      const socket = await openSocket(port);
      sockets.add(socket);
      dribbler.socket = socket;
      dribbler.sent = 0;
      dribbler.openedAt = openedAt;
      socket.on('data', (chunk: Buffer) => (dribbler.gotBytes += chunk.length));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        if (dribbler.socket !== socket) return;
        dribbler.socket = undefined;
        if (stopping) return;
        dribbler.lifetimes.push(Date.now() - dribbler.openedAt);
        void openDribbler(dribbler).catch(() => undefined);
      });
    };
    for (let index = 0; index < DRIBBLERS; index += 100) await Promise.all(dribblers.slice(index, index + 100).map(openDribbler));
    let tick = 0;
    const TICK_MS = 50;
    const slices = DRIBBLE_EVERY_MS / TICK_MS;
    const dribbling = setInterval(() => {
      tick += 1;
      for (let index = tick % slices; index < DRIBBLERS; index += slices) {
        const dribbler = dribblers[index] as Dribbler;
        if (dribbler.socket === undefined || dribbler.sent >= connectBytes.length - 1) continue;
        dribbler.socket.write(connectBytes.subarray(dribbler.sent, dribbler.sent + 1));
        dribbler.sent += 1;
      }
    }, TICK_MS);

    // ---- random senders ----
    let randomRounds = 0;
    let randomClosedByBroker = 0;
    let randomGotConnack = 0;
    // Slices of one seeded pool: generating every byte anew would load the test process (which
    // shares the cores with the broker) more than the broker.
    const pool = Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(random() * 256)));
    const randomBytes = (length: number): Buffer => {
      const start = Math.floor(random() * (pool.length - length));
      return pool.subarray(start, start + length);
    };
    const randomSender = async (): Promise<void> => {
      while (!stopping && randomRounds < 50_000) {
        randomRounds += 1;
        const socket = await openSocket(port).catch(() => undefined);
        if (socket === undefined) continue;
        sockets.add(socket);
        socket.on('error', () => undefined);
        let bytesBack = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => (bytesBack = Buffer.concat([bytesBack, chunk]).subarray(0, 64)));
        const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
        const kind = random();
        const garbage = randomBytes(1 + Math.floor(random() * 8192));
        if (kind < 0.3) socket.write(Buffer.concat([connectBytes, garbage]));
        else if (kind < 0.6) socket.write(Buffer.concat([Buffer.from([0x10]), garbage]));
        else socket.write(garbage);
        const byBroker = await Promise.race([closed, sleep(CONNECT_TIMEOUT_MS + 1_000).then(() => false)]);
        if (byBroker) randomClosedByBroker += 1;
        if (bytesBack[0] === 0x20) randomGotConnack += 1;
        socket.destroy();
        sockets.delete(socket);
      }
    };
    const senders = Array.from({ length: RANDOM_SENDERS }, () => randomSender());

    // ---- run, sampling RSS ----
    let peakRss = idleRss;
    const loadStarted = Date.now();
    while (Date.now() - loadStarted < LOAD_MS) {
      await sleep(100);
      peakRss = Math.max(peakRss, rssBytes(pid));
    }
    stopping = true;
    clearInterval(dribbling);
    await Promise.all(senders);
    await publishing;
    for (const socket of sockets) socket.destroy();

    // ---- what happened ----
    const lifetimes = dribblers.flatMap((dribbler) => dribbler.lifetimes);
    const summary = {
      seed: SEED,
      idleRssMiB: Math.round(idleRss / 2 ** 20),
      peakRssMiB: Math.round(peakRss / 2 ** 20),
      dribblerOpens,
      dribblersDropped: lifetimes.length,
      shortestDribblerLifeMs: Math.min(...lifetimes),
      longestDribblerLifeMs: Math.max(...lifetimes),
      randomRounds,
      randomClosedByBroker,
      randomGotConnack,
      published: acked.length,
      worstAckMs,
      worstGapMs,
    };
    console.log(JSON.stringify(summary));

    assert.ok(peakRss - idleRss < RSS_GROWTH_LIMIT, `broker RSS grew by ${Math.round((peakRss - idleRss) / 2 ** 20)} MiB (idle ${summary.idleRssMiB} MiB, peak ${summary.peakRssMiB} MiB), more than the ${RSS_GROWTH_LIMIT / 2 ** 20} MiB allowed: ${JSON.stringify(summary)}`);
    assert.ok(worstAckMs < MAX_ACK_MS, `a PUBACK took ${worstAckMs} ms (limit ${MAX_ACK_MS}): ${JSON.stringify(summary)}`);
    assert.ok(worstGapMs < MAX_ACK_MS, `${worstGapMs} ms passed without any PUBACK (limit ${MAX_ACK_MS}): ${JSON.stringify(summary)}`);
    // Each publish waits for its PUBACK (an fsync) on two loaded cores: at least one a second.
    assert.ok(acked.length >= LOAD_MS / 1000, `the normal client kept publishing (${acked.length} acknowledged in ${LOAD_MS} ms)`);
    assert.ok(dribblers.every((dribbler) => dribbler.gotBytes === 0), 'no dribbler ever got a byte back (no CONNACK for an unfinished CONNECT)');
    assert.ok(lifetimes.length >= DRIBBLERS, `every dribbler was dropped by the broker at least once (${lifetimes.length} drops)`);
    // The broker's timer starts from its event loop's cached time, which under this load can be
    // older than the accept by one loop turn, so it may fire a little before CONNECT_TIMEOUT_MS
    // of real time (seen: 2,999 ms). A drop for any other reason (a strictness rule judging the
    // dribbled bytes, say) comes by the fourth byte (fixed header and length), 1.6 s in at most.
    assert.ok(summary.shortestDribblerLifeMs >= CONNECT_TIMEOUT_MS - TIMER_SLACK_MS, `no dribbler was dropped before the connect timeout: ${JSON.stringify(summary)}`);
    // Late side: both processes' event loops lag under this load, so "soon after" is generous.
    assert.ok(summary.longestDribblerLifeMs < CONNECT_TIMEOUT_MS * 3, `every dribbler was dropped soon after the connect timeout: ${JSON.stringify(summary)}`);
    assert.ok(randomClosedByBroker >= randomRounds * 0.9, `the broker closed the random senders itself (${randomClosedByBroker} of ${randomRounds})`);

    // Nothing acknowledged is lost.
    const deadline = Date.now() + 10_000;
    while (acked.some((sequence) => !received.has(sequence)) && Date.now() < deadline) await sleep(50);
    const missing = acked.filter((sequence) => !received.has(sequence));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged messages never reached the subscriber`);

    // Still serving afterwards.
    const late = await connectAsync(broker.url, { clientId: `robust-late-${process.pid}`, reconnectPeriod: 0, connectTimeout: 5_000 });
    clients.push(late);
    await late.publishAsync(topic, 'late', { qos: 1 });
    await late.endAsync();
    await publisher.endAsync();
    await subscriber.endAsync();
  });
});
