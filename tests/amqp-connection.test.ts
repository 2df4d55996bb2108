// The AMQP 0-9-1 front end's first slice end to end: real `shardline start` processes with
// --amqp-port, the real amqplib and amqp-connection-manager clients, and raw sockets for what
// a well-behaved client never sends.
//
// Covered: amqplib connects (PLAIN; AMQPLAIN), opens and closes channels and closes the
// connection; the server properties; the heartbeat the client asks for is the one used, the
// server sends heartbeats often enough for amqplib and closes a client that sends none; amqp-
// connection-manager connects; with users and allow-anonymous false a right password connects
// and a wrong one is refused with 403 ACCESS_REFUSED; a wrong protocol header gets ours back and
// the close; an oversize frame is 501, a channel above channel-max and a method on an unopened
// channel 504, a frame-max under 8192 and another virtual host 530, a method not built yet
// (channel.flow, a queue argument) 540 naming it, on its channel (a connection method on the connection); the connections and clients that behaved are unharmed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import amqpManager from 'amqp-connection-manager';
import { encodeFrame, FrameType, PROTOCOL_HEADER, type AmqpMethod } from '../protocols/amqp/index.js';
import { amqpAddress, RawAmqp } from './support/raw-amqp.js';

const encoder = new TextEncoder();
import { cleanup, runCli, scratchDirectory, startBroker, stopBroker, writeConfigFile, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueClientId } from './support/mqtt-client.js';


describe('AMQP connections on a node without users (the quick start)', () => {
  let broker: BrokerProcess;
  let address: { host: string; port: number };
  let bystander: amqp.ChannelModel;
  const raws: RawAmqp[] = [];

  before(async () => {
    broker = await startBroker({ args: ['--amqp-port', '0'] });
    address = amqpAddress(broker);
    bystander = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`);
  });
  after(async () => {
    for (const raw of raws) raw.socket.destroy();
    await closeAllClients();
    await stopBroker(broker);
    await cleanup();
  });

  const raw = async (): Promise<RawAmqp> => {
    const client = await RawAmqp.open(address);
    raws.push(client);
    return client;
  };

  it('amqplib connects with PLAIN, opens and closes channels and closes the connection', async () => {
    const connection = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`);
    const properties = connection.connection.serverProperties as unknown as Record<string, unknown>;
    assert.equal(properties.product, 'Shardline');
    const capabilities = properties.capabilities as Record<string, boolean>;
    for (const name of ['publisher_confirms', 'basic.nack', 'consumer_cancel_notify', 'exchange_exchange_bindings', 'connection.blocked', 'authentication_failure_close', 'per_consumer_qos']) assert.equal(capabilities[name], true, name);
    const first = await connection.createChannel();
    const second = await connection.createChannel();
    await first.close();
    await second.close();
    const third = await connection.createChannel();
    await third.close();
    await connection.close();
  });

  it('amqplib connects with AMQPLAIN', async () => {
    const connection = await amqp.connect(`amqp://${address.host}:${address.port}`, { credentials: amqp.credentials.amqplain('guest', 'guest') });
    const channel = await connection.createChannel();
    await channel.close();
    await connection.close();
  });

  it('uses the heartbeat the client asks for, sends heartbeats and keeps an idle amqplib connection', async () => {
    const connection = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}?heartbeat=1`);
    assert.equal((connection.connection as unknown as { heartbeat: number }).heartbeat, 1);
    let failure: unknown;
    connection.on('error', (error: unknown) => (failure = error));
    connection.on('close', () => (failure ??= new Error('closed')));
    // amqplib drops a connection that hears nothing for two intervals.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    assert.equal(failure, undefined);
    const channel = await connection.createChannel();
    await channel.close();
    await connection.close();
  });

  it('closes a client that sends no heartbeats for two intervals, after sending its own', async () => {
    const client = await raw();
    assert.equal((await client.handshake({ heartbeat: 1 })).name, 'connection.open-ok');
    const started = Date.now();
    await client.closed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1500 && elapsed < 6000, `closed after ${elapsed} ms`);
    assert.ok(client.frames.some((frame) => frame.type === FrameType.heartbeat), 'the server sent heartbeats');
  });

  it('amqp-connection-manager connects and reports connect', async () => {
    const manager = amqpManager.connect([`amqp://guest:guest@${address.host}:${address.port}`]);
    try {
      await new Promise<void>((resolve, reject) => {
        manager.once('connect', () => resolve());
        manager.once('connectFailed', ({ err }: { err: Error }) => reject(err));
      });
      assert.equal(manager.isConnected(), true);
    } finally {
      await manager.close();
    }
  });

  it('answers a wrong protocol header with its own and closes', async () => {
    const client = await raw();
    client.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await client.closed;
    assert.deepEqual(client.raw, Buffer.from('AMQP\0\0\x09\x01', 'latin1'));
    const other = await raw();
    other.send(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]));
    await other.closed;
    assert.deepEqual(other.raw, PROTOCOL_HEADER);
  });

  it('closes with 501 FRAME_ERROR on a frame over the negotiated frame-max', async () => {
    const client = await raw();
    assert.equal((await client.handshake({ frameMax: 8192 })).name, 'connection.open-ok');
    client.send(encodeFrame(FrameType.method, 1, Buffer.alloc(9000)));
    const close = await client.expectConnectionClose(501);
    assert.match(close.replyText, /^FRAME_ERROR/);
  });

  it('closes with 504 CHANNEL_ERROR for a channel above channel-max and for a method on an unopened channel', async () => {
    const client = await raw();
    assert.equal((await client.handshake({ channelMax: 10 })).name, 'connection.open-ok');
    client.sendMethod(11, { name: 'channel.open', args: { outOfBand: '' } });
    assert.match((await client.expectConnectionClose(504)).replyText, /channel 11 is above channel-max 10/);

    const other = await raw();
    await other.handshake();
    other.sendMethod(3, { name: 'basic.qos', args: { prefetchSize: 0, prefetchCount: 1, global: false } });
    assert.match((await other.expectConnectionClose(504)).replyText, /channel\.open/);
  });

  it('closes with 530 NOT_ALLOWED for a frame-max under 8192 and a virtual host other than "/"', async () => {
    const client = await raw();
    client.sendHeader();
    await client.method();
    client.sendMethod(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0guest\0guest'), locale: 'en_US' } });
    await client.method();
    client.sendMethod(0, { name: 'connection.tune-ok', args: { channelMax: 0, frameMax: 4096, heartbeat: 0 } });
    assert.match((await client.expectConnectionClose(530)).replyText, /frame_max=4096 < 8192/);

    const other = await raw();
    other.sendHeader();
    await other.method();
    other.sendMethod(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0guest\0guest'), locale: 'en_US' } });
    await other.method();
    other.sendMethod(0, { name: 'connection.tune-ok', args: { channelMax: 0, frameMax: 131072, heartbeat: 0 } });
    other.sendMethod(0, { name: 'connection.open', args: { virtualHost: 'production', capabilities: '', insist: false } });
    assert.match((await other.expectConnectionClose(530)).replyText, /vhost production not found/);
  });

  it('closes with 540 NOT_IMPLEMENTED naming a method not built yet', async () => {
    const client = await raw();
    await client.handshake();
    client.sendMethod(1, { name: 'channel.open', args: { outOfBand: '' } });
    assert.equal((await client.method()).method.name, 'channel.open-ok');
    client.sendMethod(1, { name: 'channel.flow', args: { active: false } });
    const { channel, method } = await client.method();
    assert.equal(channel, 1);
    assert.equal(method.name, 'channel.close');
    const close = (method as Extract<AmqpMethod, { name: 'channel.close' }>).args;
    assert.equal(close.replyCode, 540);
    assert.match(close.replyText, /^NOT_IMPLEMENTED - channel\.flow is not implemented/);
    assert.deepEqual([close.classId, close.methodId], [20, 20]);
    // Until close-ok the channel drops what comes; then it can be opened again.
    client.sendMethod(1, { name: 'basic.qos', args: { prefetchSize: 0, prefetchCount: 1, global: false } });
    client.sendMethod(1, { name: 'channel.close-ok', args: {} });
    client.sendMethod(1, { name: 'channel.open', args: { outOfBand: '' } });
    assert.deepEqual(await client.method(), { channel: 1, method: { name: 'channel.open-ok', args: { channelId: new Uint8Array(0) } } });
    // A connection method not built yet closes the connection.
    client.sendMethod(0, { name: 'connection.update-secret', args: { newSecret: new Uint8Array(0), reason: 'rotate' } });
    assert.match((await client.expectConnectionClose(540)).replyText, /connection\.update-secret is not implemented/);
  });

  it('amqplib gets the 540 naming what is not built on its call, and its connection stays', async () => {
    const connection = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`);
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await assert.rejects(channel.assertQueue('jobs', { maxPriority: 5 }), /540.*NOT_IMPLEMENTED - queue argument 'x-max-priority'/);
    const next = await connection.createChannel();
    await next.close();
    await connection.close();
  });

  it('left the well-behaved clients unharmed', async () => {
    const channel = await bystander.createChannel();
    await channel.close();
    const mqtt = await connectClient(broker.url, { clientId: uniqueClientId('amqp-bystander') });
    await mqtt.end();
    await bystander.close();
  });
});

describe('AMQP authentication against the MQTT users (allow-anonymous false)', () => {
  let broker: BrokerProcess;
  let address: { host: string; port: number };

  before(async () => {
    const config = await writeConfigFile(`allow-anonymous = false

[[users]]
username = "alice"
password = "wonderland"
`);
    // The port from the environment this time (SHARDLINE_AMQP_PORT).
    broker = await startBroker({ args: ['--config', config], env: { SHARDLINE_AMQP_PORT: '0' } });
    address = amqpAddress(broker);
  });
  after(async () => {
    await stopBroker(broker);
    await cleanup();
  });

  it('accepts the right password (PLAIN and AMQPLAIN)', async () => {
    const connection = await amqp.connect(`amqp://alice:wonderland@${address.host}:${address.port}`);
    const channel = await connection.createChannel();
    await channel.close();
    await connection.close();
    const amqplain = await amqp.connect(`amqp://${address.host}:${address.port}`, { credentials: amqp.credentials.amqplain('alice', 'wonderland') });
    await amqplain.close();
  });

  it('refuses a wrong password, an unknown user and guest with 403 ACCESS_REFUSED', async () => {
    for (const credentials of ['alice:not-it', 'mallory:wonderland', 'guest:guest']) {
      await assert.rejects(amqp.connect(`amqp://${credentials}@${address.host}:${address.port}`), /ACCESS_REFUSED|403/, credentials);
    }
    const raw = await RawAmqp.open(address);
    raw.sendHeader();
    await raw.method();
    raw.sendMethod(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0alice\0nope'), locale: 'en_US' } });
    const close = await raw.expectConnectionClose(403);
    assert.match(close.replyText, /^ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
  });
});

describe('AMQP listener settings and limits', () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await startBroker({ args: ['--amqp-port', '0', '--max-connections', '1'] });
  });
  after(async () => {
    await stopBroker(broker);
    await cleanup();
  });

  it('counts AMQP clients against max-connections (530 past it)', async () => {
    const address = amqpAddress(broker);
    const first = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`);
    await assert.rejects(amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`), /530|NOT_ALLOWED|connection limit/);
    await first.close();
    // The seat is free again once the first one closed.
    let again: amqp.ChannelModel | undefined;
    for (let attempt = 0; again === undefined; attempt += 1) {
      again = await amqp.connect(`amqp://guest:guest@${address.host}:${address.port}`).catch((error: unknown) => {
        if (attempt > 20) throw error;
        return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100));
      });
    }
    await again.close();
  });

  it('is off with --amqp-port none', async () => {
    const plain = await startBroker({ args: ['--amqp-port', 'none'] });
    try {
      assert.throws(() => amqpAddress(plain), /no amqp=/);
    } finally {
      await stopBroker(plain);
    }
  });

  it('ends start with SL_AMQP_LISTEN_FAILED when the port is taken', async () => {
    const { port } = amqpAddress(broker);
    const cli = runCli(['start', '--data-dir', await scratchDirectory(), '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', '0', '--amqp-port', String(port)]);
    const { code } = await cli.exited;
    assert.equal(code, 1);
    assert.ok(cli.lines.some((line) => line.includes('SL_AMQP_LISTEN_FAILED') && line.includes('--amqp-port')), cli.lines.join('\n'));
  });
});
