// AMQP 0-9-1 over TLS (--amqps-port) on a real node, with amqplib: the TLS listener serves the
// same broker as the plain one, verifies client certificates as tls-client-auth says, and a
// client that speaks plain AMQP to it gets no AMQP answer. The node's certificate is the one
// every TLS listener shares (tls-cert, tls-key, tls-ca).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectTcp } from 'node:net';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { cleanup, scratchDirectory, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { amqpAddress } from './support/raw-amqp.js';
import { makeTestCertificates, type KeyPair, type TestCertificates } from './support/tls-certs.js';

describe('AMQP over TLS (amqps)', () => {
  let certs: TestCertificates;
  let node: BrokerProcess;
  let plainUrl: string;
  let tlsUrl: string;
  const opened: amqp.ChannelModel[] = [];

  /** amqplib socket options: trust the test CA, present a client certificate when given one. */
  const tlsOptions = (client?: KeyPair): Record<string, unknown> => ({ ca: [certs.ca.cert], servername: 'localhost', ...(client === undefined ? {} : { cert: client.cert, key: client.key }) });

  before(async () => {
    certs = await makeTestCertificates(await scratchDirectory('amqp-tls-'));
    node = await startBroker({
      args: ['--amqp-port', '0', '--amqps-port', '0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--tls-ca', certs.ca.certFile, '--tls-client-auth', 'optional'],
    });
    const plain = amqpAddress(node);
    const secure = amqpAddress(node, 'amqps');
    assert.notEqual(secure.port, plain.port);
    plainUrl = `amqp://guest:guest@${plain.host}:${plain.port}`;
    tlsUrl = `amqps://guest:guest@${secure.host}:${secure.port}`;
  });
  after(async () => {
    for (const connection of opened) await connection.close().catch(() => undefined);
    await stopBroker(node);
    await cleanup();
  });

  it('serves the same broker as the plain listener: a message published over TLS is consumed over TCP', async () => {
    const secure = await amqp.connect(tlsUrl, tlsOptions());
    opened.push(secure);
    const plain = await amqp.connect(plainUrl);
    opened.push(plain);
    const publisher = await secure.createConfirmChannel();
    await publisher.assertQueue('tls-q', { durable: true });
    publisher.sendToQueue('tls-q', Buffer.from('over tls'), { persistent: true });
    await publisher.waitForConfirms();
    const consumer = await plain.createChannel();
    const message = await consumer.get('tls-q', { noAck: true });
    assert.ok(message !== false, 'the message published over TLS is in the queue');
    assert.equal(message.content.toString(), 'over tls');
  });

  it('admits a client certificate the CA signed and refuses one it did not (tls-client-auth optional)', async () => {
    const trusted = await amqp.connect(tlsUrl, tlsOptions(certs.client));
    opened.push(trusted);
    const channel = await trusted.createChannel();
    await channel.checkQueue('tls-q');
    await assert.rejects(amqp.connect(tlsUrl, tlsOptions(certs.rogueClient)));
  });

  it('gives a client that speaks plain AMQP to the TLS port no AMQP answer, and stays up', async () => {
    const { host, port } = amqpAddress(node, 'amqps');
    const socket = connectTcp({ host, port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    await once(socket, 'close');
    // A TLS alert at most: never AMQP's connection.start, which begins with a frame of type 1.
    const bytes = Buffer.concat(received);
    assert.ok(bytes.length === 0 || bytes[0] === 0x15, `expected nothing or a TLS alert, got ${bytes.subarray(0, 8).toString('hex')}`);
    const again = await amqp.connect(tlsUrl, tlsOptions());
    opened.push(again);
    await (await again.createChannel()).checkQueue('tls-q');
  });
});
