// MQTT over TLS (mqtts), WebSocket (ws), WebSocket over TLS (wss) and mutual TLS.
//
// Goal: every transport carries the full protocol to the same broker core (a message published
// on one reaches subscribers on all, max-connections counts them together, shutdown sends
// DISCONNECT 0x8B on each); the WebSocket endpoint takes only its path and the MQTT subprotocols
// and only binary messages; WebSocket backpressure loses nothing when a reader stalls; under
// required client authentication a client without a certificate, or with one from another CA,
// is refused, and under optional one the verified subject CN reaches the authentication hook.
// Method: real `shardline start` processes (tests/support/broker-process.ts) with certificates
// made by openssl for this run in a scratch directory; mqtt.js as the client, plus a raw `ws`
// client for what mqtt.js will not do (other subprotocols, text frames, not reading). The
// certificate name has no effect a process shows yet (authentication owns that), so it is
// checked in-process through the Authenticate hook.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import WebSocket from 'ws';
import { Broker } from '../engine/index.js';
import { loadMqttTls, MqttServer, MqttWebSocketServer, type ConnectRequestInfo } from '../protocols/mqtt/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { cleanup, runCli, scratchDirectory, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, sleep, subscriber, uniqueClientId, uniqueTopic, type ConnectOptions, type ProtocolVersion, type TestClient } from './support/mqtt-client.js';
import { makeClientCertificate, makeTestCertificates, type KeyPair, type TestCertificates } from './support/tls-certs.js';
import { testMqttLimits } from './support/mqtt-limits.js';

type TransportName = 'mqtt' | 'mqtts' | 'ws' | 'wss';
const TRANSPORTS: TransportName[] = ['mqtt', 'mqtts', 'ws', 'wss'];
const WAIT_MS = 10_000;
/** --connect-timeout-ms of the first suite's broker (a stalled TLS handshake is held to it). */
const CONNECT_TIMEOUT_MS = 2_000;

let certs: TestCertificates;

before(async () => {
  certs = await makeTestCertificates(await scratchDirectory('shardline-tls-'));
});
after(async () => {
  closeAllClients();
  await cleanup();
});

/** The listening line (the only one with mqttPort). */
async function listeningLine(broker: BrokerProcess): Promise<Record<string, unknown>> {
  return waitForLogField(broker.broker, 'mqttPort');
}

function urlOf(line: Record<string, unknown>, transport: TransportName, path = '/mqtt'): string {
  const address = String(line[transport]);
  return transport === 'ws' || transport === 'wss' ? `${transport}://${address}${path}` : `${transport}://${address}`;
}

/** mqtt.js options for a transport: TLS ones trust the test CA and may present a client certificate. */
function tlsOptions(transport: TransportName, client?: KeyPair): ConnectOptions {
  if (transport !== 'mqtts' && transport !== 'wss') return {};
  return { ca: certs.ca.cert, ...(client === undefined ? {} : { cert: client.cert, key: client.key }) };
}

function tlsArgs(extra: string[] = []): string[] {
  return ['--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, ...extra];
}

/** Resolves when mqtt.js fails to connect; fails the test if it gets a CONNACK. */
async function expectRefused(url: string, options: ConnectOptions): Promise<Error> {
  try {
    const client = await connectClient(url, { connectTimeout: 5_000, ...options });
    client.destroy();
  } catch (error) {
    return error as Error;
  }
  assert.fail(`${url}: the connection was accepted`);
}

// ---- a raw WebSocket client ------------------------------------------------------------------

interface RawWs {
  socket: WebSocket;
  packets: Packet[];
  opened: Promise<void>;
  closed: Promise<{ code: number }>;
}

function rawWebSocket(url: string, protocols: string[], options: WebSocket.ClientOptions = {}): RawWs {
  const socket = new WebSocket(url, protocols, options);
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  socket.on('message', (data: Buffer) => parser.parse(data));
  socket.on('error', () => undefined);
  const opened = once(socket, 'open').then(() => undefined);
  const closed = once(socket, 'close').then(([code]) => ({ code: code as number }));
  return { socket, packets, opened, closed };
}

function rawSend(raw: RawWs, packet: Packet): void {
  raw.socket.send(mqttPacket.generate(packet, { protocolVersion: 5 }));
}

/** The HTTP status a WebSocket upgrade is answered with (101 when it is accepted). */
async function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  const socket = new WebSocket(url, protocols, { handshakeTimeout: WAIT_MS });
  try {
    return await new Promise<number>((resolve, reject) => {
      socket.once('open', () => resolve(101));
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('error', reject);
    });
  } finally {
    socket.terminate();
  }
}

/** `promise`, or a failure after WAIT_MS (a broker that never answers must fail the test, not hang it). */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = WAIT_MS): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// ---- one node with every transport --------------------------------------------------------------

describe('shardline start with mqtts, ws and wss (no client certificates)', () => {
  let broker: BrokerProcess;
  let line: Record<string, unknown>;

  before(async () => {
    broker = await startBroker({ args: ['--connect-timeout-ms', String(CONNECT_TIMEOUT_MS), '--mqtts-port', '0', '--ws-port', '0', '--wss-port', '0', ...tlsArgs()] });
    line = await listeningLine(broker);
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
  });

  it('the listening line names every listener with the port it bound', () => {
    for (const transport of ['mqtts', 'ws', 'wss'] as const) {
      assert.match(String(line[transport]), /^127\.0\.0\.1:\d+$/, `${transport} field`);
      assert.equal(line[`${transport}Port`], Number(String(line[transport]).split(':')[1]));
      assert.ok(String(line.msg).includes(`${transport}=${String(line[transport])}`), `msg has ${transport}=: ${String(line.msg)}`);
    }
    assert.equal(new Set(TRANSPORTS.map((transport) => line[transport])).size, 4, 'four different listeners');
  });

  const matrix: Array<[TransportName, ProtocolVersion]> = [];
  for (const transport of ['mqtts', 'ws', 'wss'] as const) for (const version of [3, 4, 5] as const) matrix.push([transport, version]);
  for (const [transport, version] of matrix) {
    it(`${transport}, MQTT ${version === 3 ? '3.1' : version === 4 ? '3.1.1' : '5.0'}: subscribe, publish QoS 0/1/2 and receive`, async () => {
      const url = urlOf(line, transport);
      const topic = uniqueTopic(transport);
      const client = await subscriber(url, topic, { version, ...tlsOptions(transport) });
      for (const qos of [0, 1, 2] as const) await client.publish(topic, `${transport}-${qos}`, { qos });
      const received = await client.waitForMessages(3, { timeoutMs: WAIT_MS });
      assert.deepEqual(received.map((message) => message.payload.toString()), [`${transport}-0`, `${transport}-1`, `${transport}-2`]);
      await client.end();
    });
  }

  it('one broker core: what is published on each transport reaches subscribers on every transport', async () => {
    const topic = uniqueTopic('all');
    const subscribers = new Map<TransportName, TestClient>();
    for (const transport of TRANSPORTS) subscribers.set(transport, await subscriber(urlOf(line, transport), topic, { version: 5, qos: 1, ...tlsOptions(transport) }));
    for (const transport of TRANSPORTS) {
      const publisher = await connectClient(urlOf(line, transport), { version: 5, ...tlsOptions(transport) });
      await publisher.publish(topic, `from-${transport}`, { qos: 1 });
      await publisher.end();
    }
    for (const [transport, client] of subscribers) {
      const received = await client.waitForMessages(4, { timeoutMs: WAIT_MS });
      assert.deepEqual(received.map((message) => message.payload.toString()).sort(), TRANSPORTS.map((name) => `from-${name}`).sort(), `subscriber on ${transport}`);
      await client.end();
    }
  });

  it('ws and wss: payloads near max-packet-size go both ways intact', async () => {
    const payload = Buffer.alloc(900 * 1024);
    for (let index = 0; index < payload.length; index += 1) payload[index] = (index * 31 + 7) & 0xff;
    for (const transport of ['ws', 'wss'] as const) {
      const topic = uniqueTopic(`big-${transport}`);
      const overWs = await subscriber(urlOf(line, transport), topic, { version: 5, qos: 1, ...tlsOptions(transport) });
      const overTcp = await subscriber(urlOf(line, 'mqtt'), topic, { version: 5, qos: 1 });
      await overTcp.publish(topic, payload, { qos: 1 });
      await overWs.publish(topic, payload, { qos: 1 });
      for (const client of [overWs, overTcp]) {
        const received = await client.waitForMessages(2, { timeoutMs: WAIT_MS });
        for (const message of received) assert.ok(message.payload.equals(payload), `${transport}: payload intact`);
        await client.end();
      }
    }
  });

  it('ws: a subscriber that stops reading gets every message, in order, once it reads again (backpressure, then drain)', async () => {
    const topic = uniqueTopic('slow');
    const raw = rawWebSocket(urlOf(line, 'ws'), ['mqtt']);
    await within(raw.opened, 'the WebSocket to open');
    rawSend(raw, { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: uniqueClientId('slow'), clean: true, keepalive: 0 });
    rawSend(raw, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await waitFor('SUBACK', () => raw.packets.find((packet) => packet.cmd === 'suback'));
    // Far more than the socket buffers between the two ends hold, so the broker's writes must
    // report full and wait for 'drain'; still under max-queued-bytes (16 MiB), so nothing drops.
    const count = 400;
    const size = 24 * 1024;
    raw.socket.pause();
    const publisher = await connectClient(urlOf(line, 'mqtt'), { version: 5 });
    await publisher.publishMany(
      topic,
      Array.from({ length: count }, (_, index) => Buffer.alloc(size, index % 251)),
      { qos: 1 },
    );
    await sleep(200);
    raw.socket.resume();
    const publishes = await waitFor('every message', () => {
      const found = raw.packets.filter((packet) => packet.cmd === 'publish');
      return found.length >= count ? found : undefined;
    }, 30_000);
    assert.deepEqual(
      publishes.map((packet) => (packet as { payload: Buffer }).payload[0]),
      Array.from({ length: count }, (_, index) => index % 251),
      'every message, in publish order',
    );
    raw.socket.terminate();
    await publisher.end();
  });

  it('ws: an upgrade to another path is 404; without an MQTT subprotocol 400; a plain HTTP request 426', async () => {
    const base = urlOf(line, 'ws', '');
    assert.equal(await upgradeStatus(`${base}/mqtt`, ['mqtt']), 101, 'the MQTT path and subprotocol');
    assert.equal(await upgradeStatus(`${base}/mqtt?client=1`, ['mqtt']), 101, 'a query string does not change the path');
    assert.equal(await upgradeStatus(`${base}/mqtt`, ['mqttv3.1']), 101, 'the MQTT 3.1 subprotocol');
    assert.equal(await upgradeStatus(`${base}/other`, ['mqtt']), 404, 'another path');
    assert.equal(await upgradeStatus(`${base}/mqtt`, ['chat']), 400, 'a subprotocol that is not MQTT');
    assert.equal(await upgradeStatus(`${base}/mqtt`, []), 400, 'no subprotocol');
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`http://${String(line.ws)}/mqtt`, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.setTimeout(WAIT_MS, () => request.destroy(new Error('no answer to a plain HTTP request')));
      request.end();
    });
    assert.equal(status, 426, 'plain HTTP: Upgrade Required');
  });

  it('ws: the subprotocol chosen is mqtt', async () => {
    const raw = rawWebSocket(urlOf(line, 'ws'), ['chat', 'mqtt']);
    await within(raw.opened, 'the WebSocket to open');
    assert.equal(raw.socket.protocol, 'mqtt');
    raw.socket.terminate();
  });

  it('ws: MQTT in a text message closes the connection (1003), before any CONNACK', async () => {
    const raw = rawWebSocket(urlOf(line, 'ws'), ['mqtt']);
    await within(raw.opened, 'the WebSocket to open');
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: uniqueClientId('text'), clean: true, keepalive: 0 });
    raw.socket.send(connect.toString('latin1'));
    const { code } = await within(raw.closed, 'the broker to close the WebSocket');
    assert.equal(code, 1003);
    assert.deepEqual(raw.packets, [], 'no CONNACK');
  });
  it('mqtts, wss and ws: a socket that never starts its TLS handshake or its upgrade request is closed at --connect-timeout-ms', async () => {
    // Connected clients, idle meanwhile, are not subject to that timeout.
    const idle = await Promise.all((['mqtts', 'wss', 'ws'] as const).map((transport) => connectClient(urlOf(line, transport), { version: 5, keepalive: 0, ...tlsOptions(transport) })));
    const opened = Date.now();
    const sockets = (['mqtts', 'wss', 'ws'] as const).map((transport) => netConnect(Number(line[`${transport}Port`]), '127.0.0.1').on('error', () => undefined));
    const deadline = sleep(CONNECT_TIMEOUT_MS + 5_000).then(() => Number.POSITIVE_INFINITY);
    const closedAfter = await Promise.all(sockets.map((socket) => Promise.race([once(socket, 'close').then(() => Date.now() - opened), deadline])));
    for (const socket of sockets) socket.destroy();
    for (const elapsed of closedAfter) {
      assert.ok(elapsed >= CONNECT_TIMEOUT_MS - 200 && elapsed < CONNECT_TIMEOUT_MS + 3_000, `closed after ${elapsed} ms`);
    }
    for (const client of idle) {
      assert.equal(client.isClosed, false, 'an idle connected client stays');
      await client.publish(uniqueTopic('idle'), 'still here', { qos: 1 });
      await client.end();
    }
  });

  it('ws: a WebSocket message over max-packet-size plus 64 KiB closes the connection (1009)', async () => {
    const raw = rawWebSocket(urlOf(line, 'ws'), ['mqtt']);
    await within(raw.opened, 'the WebSocket to open');
    // This suite runs with the default --max-packet-size, 32 MiB.
    raw.socket.send(Buffer.alloc(33_554_432 + 64 * 1024 + 1));
    const { code } = await within(raw.closed, 'the broker to close the WebSocket');
    assert.equal(code, 1009);
  });
});

describe('max-connections counts every transport together', () => {
  let broker: BrokerProcess;
  let line: Record<string, unknown>;

  before(async () => {
    broker = await startBroker({ args: ['--max-connections', '2', '--mqtts-port', '0', '--ws-port', '0', '--wss-port', '0', ...tlsArgs()] });
    line = await listeningLine(broker);
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
  });

  it('with a TCP and a WebSocket client connected, wss (5.0) gets CONNACK 0x97 and mqtts (3.1.1) return code 3', async () => {
    const first = await connectClient(urlOf(line, 'mqtt'), { version: 5 });
    const second = await connectClient(urlOf(line, 'ws'), { version: 5 });
    const overWss = await expectRefused(urlOf(line, 'wss'), { version: 5, ...tlsOptions('wss') });
    assert.equal((overWss as Error & { code?: number }).code, 0x97, `wss refusal: ${overWss.message}`);
    const overMqtts = await expectRefused(urlOf(line, 'mqtts'), { version: 4, ...tlsOptions('mqtts') });
    assert.equal((overMqtts as Error & { code?: number }).code, 3, `mqtts refusal: ${overMqtts.message}`);
    await second.end();
    const third = await connectClient(urlOf(line, 'wss'), { version: 5, ...tlsOptions('wss') });
    await third.end();
    await first.end();
  });
});

describe('the per-address connection limit counts every transport together', () => {
  let broker: BrokerProcess;
  let line: Record<string, unknown>;

  before(async () => {
    broker = await startBroker({ args: ['--max-connections-per-ip', '2', '--mqtts-port', '0', '--ws-port', '0', '--wss-port', '0', ...tlsArgs()] });
    line = await listeningLine(broker);
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
  });

  it('with a ws and a wss client connected, TCP and mqtts (5.0) get CONNACK 0x97; once the ws client leaves, TCP connects', async () => {
    const overWs = await connectClient(urlOf(line, 'ws'), { version: 5 });
    const overWss = await connectClient(urlOf(line, 'wss'), { version: 5, ...tlsOptions('wss') });
    for (const transport of ['mqtt', 'mqtts'] as const) {
      const refused = await expectRefused(urlOf(line, transport), { version: 5, ...tlsOptions(transport) });
      assert.equal((refused as Error & { code?: number }).code, 0x97, `${transport}: ${refused.message}`);
    }
    await overWs.end();
    // The address is released when the WebSocket's socket closes, which may trail the client's end().
    let admitted: TestClient | undefined;
    for (let attempt = 0; attempt < 50 && admitted === undefined; attempt += 1) {
      admitted = await connectClient(urlOf(line, 'mqtt'), { version: 5 }).catch(() => undefined);
      if (admitted === undefined) await sleep(100);
    }
    assert.ok(admitted !== undefined, 'TCP admitted after the ws client left');
    await admitted.end();
    await overWss.end();
  });
});

describe('mutual TLS required (--tls-client-auth required)', () => {
  let broker: BrokerProcess;
  let line: Record<string, unknown>;

  before(async () => {
    broker = await startBroker({ args: ['--mqtts-port', '0', '--wss-port', '0', ...tlsArgs(['--tls-ca', certs.ca.certFile, '--tls-client-auth', 'required'])] });
    line = await listeningLine(broker);
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
  });

  for (const transport of ['mqtts', 'wss'] as const) {
    it(`${transport}: a client certificate signed by the CA connects and works`, async () => {
      const topic = uniqueTopic('mtls');
      const client = await subscriber(urlOf(line, transport), topic, { version: 5, qos: 1, ...tlsOptions(transport, certs.client) });
      await client.publish(topic, 'hello', { qos: 1 });
      const [message] = await client.waitForMessages(1, { timeoutMs: WAIT_MS });
      assert.equal(message?.payload.toString(), 'hello');
      await client.end();
    });

    it(`${transport}: a client without a certificate is refused`, async () => {
      await expectRefused(urlOf(line, transport), { version: 5, ...tlsOptions(transport) });
    });

    it(`${transport}: a client certificate from another CA (same CN) is refused`, async () => {
      await expectRefused(urlOf(line, transport), { version: 5, ...tlsOptions(transport, certs.rogueClient) });
    });
  }

  it('the plain TCP listener is not affected', async () => {
    const client = await connectClient(broker.url, { version: 5 });
    await client.end();
  });
});

describe('the certificate CN as the user name (certificate-username true, allow-anonymous false)', () => {
  let broker: BrokerProcess;
  let line: Record<string, unknown>;
  let revoked: KeyPair;

  before(async () => {
    revoked = await makeClientCertificate(certs, 'revoked-device');
    const config = join(certs.directory, 'deny.toml');
    await writeFile(config, '[deny]\nusernames = ["revoked-device"]\n');
    const auth = ['--config', config, '--allow-anonymous', 'false', '--certificate-username', 'true'];
    broker = await startBroker({ args: ['--mqtts-port', '0', '--wss-port', '0', ...tlsArgs(['--tls-ca', certs.ca.certFile, '--tls-client-auth', 'optional']), ...auth] });
    line = await listeningLine(broker);
  });
  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
  });

  for (const transport of ['mqtts', 'wss'] as const) {
    it(`${transport}: a verified certificate logs in without a password; no certificate is anonymous and refused (0x87); a denied CN is refused (0x87)`, async () => {
      const client = await connectClient(urlOf(line, transport), { version: 5, ...tlsOptions(transport, certs.client) });
      assert.equal(client.connack.reasonCode ?? 0, 0);
      await client.end();
      const anonymous = await expectRefused(urlOf(line, transport), { version: 5, ...tlsOptions(transport) });
      assert.equal((anonymous as Error & { code?: number }).code, 0x87, anonymous.message);
      const denied = await expectRefused(urlOf(line, transport), { version: 5, ...tlsOptions(transport, revoked) });
      assert.equal((denied as Error & { code?: number }).code, 0x87, denied.message);
    });
  }
});

describe('shutdown with clients on every transport', () => {
  it('SIGTERM: each 5.0 client gets DISCONNECT 0x8B, stalled TLS handshakes do not delay it, and the node exits 0', async () => {
    const broker = await startBroker({ args: ['--mqtts-port', '0', '--ws-port', '0', '--wss-port', '0', ...tlsArgs()] });
    const line = await listeningLine(broker);
    const clients = new Map<TransportName, TestClient>();
    for (const transport of TRANSPORTS) clients.set(transport, await connectClient(urlOf(line, transport), { version: 5, ...tlsOptions(transport) }));
    // Sockets that never start their TLS handshake must not hold the shutdown for the 10 s
    // handshake timeout.
    const stalled = (['mqtts', 'wss'] as const).map((transport) => netConnect(Number(line[`${transport}Port`]), '127.0.0.1').on('error', () => undefined));
    await within(Promise.all(stalled.map((socket) => once(socket, 'connect'))), 'TCP connects');
    const stopping = Date.now();
    await stopBroker(broker);
    assert.ok(Date.now() - stopping < 5_000, `shutdown took ${Date.now() - stopping} ms`);
    for (const socket of stalled) socket.destroy();
    for (const [transport, client] of clients) {
      await client.waitForClose(WAIT_MS);
      assert.equal(client.serverDisconnect?.reasonCode, 0x8b, `${transport}: DISCONNECT 0x8B`);
    }
  });
});

// Each case is a process that exits at once; they run side by side.
describe('transport settings refused at start', { concurrency: true }, () => {
  async function expectExit(args: string[], code: number, text: string): Promise<void> {
    const cli = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', '0', ...args]);
    const exit = await cli.exited;
    const output = `${cli.lines.join('\n')}\n${exit.stderr}`;
    assert.equal(exit.code, code, `exit status; output:\n${output}`);
    assert.ok(output.includes(text), `output names ${text}:\n${output}`);
  }

  it('a TLS port without tls-cert and tls-key: exit 2', async () => {
    await expectExit(['--mqtts-port', '0'], 2, 'tls-cert and tls-key');
  });

  it('tls-client-auth required without tls-ca: exit 2', async () => {
    await expectExit(['--wss-port', '0', ...tlsArgs(['--tls-client-auth', 'required'])], 2, 'needs tls-ca');
  });

  it('a ws-path that is not a path: exit 2', async () => {
    await expectExit(['--ws-port', '0', '--ws-path', 'mqtt'], 2, 'ws-path');
  });

  it('a certificate file that does not exist: exit 1 with SL_MQTT_TLS_SETUP', async () => {
    await expectExit(['--mqtts-port', '0', '--tls-cert', `${certs.directory}/missing.crt`, '--tls-key', certs.server.keyFile], 1, 'SL_MQTT_TLS_SETUP');
  });

  it('a key that does not belong to the certificate: exit 1 with SL_MQTT_TLS_SETUP', async () => {
    await expectExit(['--wss-port', '0', '--tls-cert', certs.server.certFile, '--tls-key', certs.client.keyFile], 1, 'SL_MQTT_TLS_SETUP');
  });
});

// ---- the certificate name, in-process ----------------------------------------------------------

describe('optional client certificates: the verified CN reaches the authentication hook', () => {
  const LIMITS = testMqttLimits({ maxInflight: 64, topicAliasMaximum: 64 });
  const seen: ConnectRequestInfo[] = [];
  let engine: Broker;
  let mqtts: MqttServer;
  let wss: MqttWebSocketServer;

  before(async () => {
    const logger = pino({ level: 'silent' });
    const tls = await loadMqttTls({ cert: certs.server.certFile, key: certs.server.keyFile, ca: certs.ca.certFile, clientAuth: 'optional' });
    engine = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1024 * 1024 });
    const authenticate = (request: ConnectRequestInfo): Promise<{ ok: true }> => {
      seen.push(request);
      return Promise.resolve({ ok: true });
    };
    mqtts = await MqttServer.start({ broker: engine, limits: LIMITS, host: '127.0.0.1', port: 0, logger, authenticate, tls });
    wss = await MqttWebSocketServer.start({ broker: engine, limits: LIMITS, host: '127.0.0.1', port: 0, logger, authenticate, tls, registry: mqtts.sharedOptions.registry });
  });
  after(async () => {
    closeAllClients();
    mqtts?.stopAccepting();
    wss?.stopAccepting();
    await engine?.close();
    await mqtts?.stop();
    await wss?.stop();
  });

  for (const transport of ['mqtts', 'wss'] as const) {
    const url = (): string => (transport === 'mqtts' ? `mqtts://127.0.0.1:${mqtts.port}` : `wss://127.0.0.1:${wss.port}/mqtt`);

    it(`${transport}: a verified certificate gives its CN; no certificate gives none`, async () => {
      const withCertificate = uniqueClientId('cn');
      const client = await connectClient(url(), { version: 5, clientId: withCertificate, ...tlsOptions(transport, certs.client) });
      await client.end();
      assert.equal(seen.find((request) => request.clientId === withCertificate)?.certificateName, certs.clientName);
      const without = uniqueClientId('nocn');
      const anonymous = await connectClient(url(), { version: 5, clientId: without, ...tlsOptions(transport) });
      await anonymous.end();
      const request = seen.find((entry) => entry.clientId === without);
      assert.ok(request !== undefined, 'connected without a certificate');
      assert.equal(request.certificateName, undefined);
    });

    it(`${transport}: a presented certificate that does not verify is refused, never passed on`, async () => {
      const clientId = uniqueClientId('rogue');
      await expectRefused(url(), { version: 5, clientId, ...tlsOptions(transport, certs.rogueClient) });
      assert.equal(
        seen.find((request) => request.clientId === clientId),
        undefined,
        'the hook never saw it',
      );
    });
  }
});
