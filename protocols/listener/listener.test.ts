// The listeners with a protocol that is not MQTT: what a Kafka or AMQP front end gets from
// protocols/listener with nothing but a socket handler.
//
// Goal: TcpListener and WebSocketListener bind, admit (abuse gate, refusals handed on with their
// guard, drops unanswered, admissions released at close), check client certificates under
// mutual TLS, refuse wrong WebSocket upgrades with the documented statuses, hold sockets until
// the node opens the hold, and report a taken port through the front end's own error.
// Method: real listeners on 127.0.0.1 port 0 with an echo handler ("the protocol"), real
// node:net, node:tls and ws clients; certificates from the test kit's openssl helper.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { makeTestCertificates, type TestCertificates } from '../../tests/support/tls-certs.js';
import { AbuseControl, certificateNameOf, ConnectionHold, loadTls, TcpListener, WebSocketListener, type ClientGuard, type ListenerOptions, type TlsListener } from './index.js';

const logger = pino({ level: 'silent' });

class ListenFailed extends Error {
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`cannot listen on ${address}: ${reason}`);
  }
}

/** The options every test listener shares; `live` is the limits object, changed in place. */
function baseOptions(live: { maxConnections: number; connectTimeoutMs: number; maxConnectionsPerIp?: number }, extra: Partial<ListenerOptions> = {}): ListenerOptions {
  return {
    protocol: 'ECHO',
    host: '127.0.0.1',
    port: 0,
    portSetting: '--echo-port',
    listenFailed: (address, reason) => new ListenFailed(address, reason),
    logger,
    limits: live,
    abuse: new AbuseControl(live, new ManualClock(), logger),
    ...extra,
  };
}

/** The echo protocol: every byte comes back; a refused client gets "refused <kind>" and is closed, as a protocol would answer its hello. */
function echo(socket: Socket, guard: ClientGuard): void {
  socket.on('error', () => undefined);
  if (guard.refusal !== undefined) {
    // Read on (and discard) until the peer closes: a socket nobody reads never sees its EOF.
    socket.resume();
    socket.end(`refused ${guard.refusal.kind}\n`);
    return;
  }
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
}

/** halfOpen: the client keeps its side open after the server's end (a refused client that lingers). */
async function connectTcp(port: number, halfOpen = false): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, allowHalfOpen: halfOpen });
  await once(socket, 'connect');
  return socket;
}

/** Sends `text` and waits for the socket's first reply, or for its close (''). */
async function exchange(socket: Socket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.once('close', () => resolve(''));
  });
  socket.write(text);
  return reply;
}

/** Waits for a condition the listener reaches on its own events (a close seen, a socket held). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('TcpListener', () => {
  const listeners: Array<{ stop(): Promise<void> }> = [];
  after(async () => {
    for (const listener of listeners) await listener.stop();
  });

  it('hands admitted sockets to the handler, counts them while open, forgets them at close', async () => {
    const listener = await TcpListener.start({ ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }), onSocket: echo });
    listeners.push(listener);
    assert.equal(listener.kind, 'tcp');
    assert.equal(listener.address, `127.0.0.1:${listener.port}`);
    const socket = await connectTcp(listener.port);
    assert.equal(await exchange(socket, 'hello'), 'hello');
    assert.equal(listener.openSockets, 1);
    socket.end();
    await once(socket, 'close');
    await until(() => listener.openSockets === 0);
  });

  it('the abuse gate: over the per-address limit a socket is handed on with its refusal, far over it dropped; a closed socket frees its place', async () => {
    const live = { maxConnections: 1000, connectTimeoutMs: 5000, maxConnectionsPerIp: 1 };
    const listener = await TcpListener.start({ ...baseOptions(live), onSocket: echo });
    listeners.push(listener);
    const first = await connectTcp(listener.port);
    assert.equal(await exchange(first, 'a'), 'a', 'the first from 127.0.0.1 is admitted');
    // A tenth more, at least 10, are refused with an answer; the one after those is dropped.
    const refused: Socket[] = [];
    for (let i = 0; i < 10; i += 1) {
      const socket = await connectTcp(listener.port, true);
      refused.push(socket);
      assert.equal(await exchange(socket, 'b'), 'refused quota\n', `refusal ${i}`);
    }
    const dropped = await connectTcp(listener.port);
    assert.equal(await exchange(dropped, 'c'), '', 'dropped at accept, unanswered');
    for (const socket of refused) socket.destroy();
    first.destroy();
    await once(first, 'close');
    // The gate counts down as the listener sees the closes; a new socket is admitted once it has.
    let again = '';
    for (let attempt = 0; attempt < 50 && again !== 'd'; attempt += 1) {
      const socket = await connectTcp(listener.port);
      again = await exchange(socket, 'd');
      socket.destroy();
      if (again !== 'd') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(again, 'd', 'admitted again once every earlier socket closed');
  });

  it('a port in use fails with the front end error, naming the port setting', async () => {
    const taken = await TcpListener.start({ ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }), onSocket: echo });
    listeners.push(taken);
    await assert.rejects(TcpListener.start({ ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }), port: taken.port, onSocket: echo }), (error: unknown) => {
      assert.ok(error instanceof ListenFailed);
      assert.equal(error.address, `127.0.0.1:${taken.port}`);
      assert.match(error.reason, /already in use.*--echo-port/);
      return true;
    });
  });

  it('a held socket is served only once the hold opens', async () => {
    const hold = new ConnectionHold();
    const listener = await TcpListener.start({ ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }, { hold }), onSocket: echo });
    listeners.push(listener);
    const socket = await connectTcp(listener.port);
    const reply = exchange(socket, 'early');
    await until(() => hold.heldCount === 1);
    assert.equal(listener.openSockets, 0, 'not admitted while held');
    hold.openAll();
    assert.equal(await reply, 'early');
    socket.destroy();
  });
});

describe('TLS listeners with client certificates', () => {
  let directory: string;
  let certs: TestCertificates;
  let required: TlsListener;
  const listeners: Array<{ stop(): Promise<void> }> = [];
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'shardline-listener-'));
    certs = await makeTestCertificates(directory);
    required = await loadTls({ cert: certs.server.certFile, key: certs.server.keyFile, ca: certs.ca.certFile, clientAuth: 'required' }, (_context, detail) => new Error(detail));
  });
  after(async () => {
    for (const listener of listeners) await listener.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('mutual TLS: a client certificate from the CA is admitted with its name, one from another CA never reaches the handler', async () => {
    const names: Array<string | undefined> = [];
    const listener = await TcpListener.start({
      ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }, { tls: required }),
      onSocket: (socket, guard) => {
        names.push(certificateNameOf(socket));
        echo(socket, guard);
      },
    });
    listeners.push(listener);
    assert.equal(listener.kind, 'tls');
    const good = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key });
    await once(good, 'secureConnect');
    assert.equal(await exchange(good, 'secure'), 'secure');
    assert.deepEqual(names, [certs.clientName]);
    good.destroy();
    const rogue: TLSSocket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: certs.ca.cert, cert: certs.rogueClient.cert, key: certs.rogueClient.key });
    rogue.on('error', () => undefined);
    // TLS 1.3 finishes the client's side before the server checks its certificate: the refusal
    // shows as the socket closing instead of an echo.
    await once(rogue, 'close');
    assert.deepEqual(names, [certs.clientName], 'the handler never saw the rogue client');
  });

  it('a bad TLS setup fails with the front end error', async () => {
    await assert.rejects(loadTls({ cert: join(directory, 'missing.crt'), key: certs.server.keyFile, clientAuth: 'none' }, (context, detail) => Object.assign(new Error(detail), { context })), /cannot read the TLS certificate/);
    await assert.rejects(loadTls({ cert: certs.server.certFile, key: certs.server.keyFile, clientAuth: 'optional' }, (_context, detail) => new Error(detail)), /needs the CA/);
  });
});

describe('WebSocketListener', () => {
  let listener: WebSocketListener;
  before(async () => {
    listener = await WebSocketListener.start({
      ...baseOptions({ maxConnections: 10, connectTimeoutMs: 5000 }),
      path: '/echo',
      subprotocols: ['echo', 'echo-old'],
      messageBytesMax: 1024,
      onWebSocket: (websocket) => {
        websocket.on('error', () => undefined);
        websocket.on('message', (data: Buffer, isBinary: boolean) => websocket.send(data, { binary: isBinary }));
      },
    });
  });
  after(async () => {
    await listener.stop();
  });

  async function upgradeStatus(path: string, subprotocol: string | undefined): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    if (subprotocol !== undefined) headers['Sec-WebSocket-Protocol'] = subprotocol;
    const request = httpRequest({ host: '127.0.0.1', port: listener.port, path, headers });
    request.end();
    const [response] = (await once(request, 'response')) as [IncomingMessage];
    let body = '';
    for await (const chunk of response) body += String(chunk);
    return { status: response.statusCode ?? 0, body };
  }

  it('an upgrade at the path with one of the subprotocols reaches the handler', async () => {
    assert.equal(listener.kind, 'ws');
    const client = new WebSocket(`ws://127.0.0.1:${listener.port}/echo`, ['other', 'echo-old']);
    await once(client, 'open');
    assert.equal(client.protocol, 'echo-old');
    client.send(Buffer.from('over ws'));
    const [data] = (await once(client, 'message')) as [Buffer];
    assert.equal(data.toString(), 'over ws');
    assert.equal(listener.openSockets, 1);
    client.close();
    await once(client, 'close');
  });

  it('refuses another path (404), no or another subprotocol (400), plain HTTP (426), naming the protocol', async () => {
    const wrongPath = await upgradeStatus('/mqtt', 'echo');
    assert.equal(wrongPath.status, 404);
    assert.match(wrongPath.body, /no ECHO endpoint at \/mqtt; ECHO is served at \/echo/);
    const none = await upgradeStatus('/echo', undefined);
    assert.equal(none.status, 400);
    assert.match(none.body, /ECHO clients offer "echo"/);
    assert.equal((await upgradeStatus('/echo', 'mqtt')).status, 400);
    const plain = httpRequest({ host: '127.0.0.1', port: listener.port, path: '/echo' });
    plain.end();
    const [response] = (await once(plain, 'response')) as [IncomingMessage];
    response.resume();
    assert.equal(response.statusCode, 426);
  });
});
