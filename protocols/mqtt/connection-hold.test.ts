// ConnectionHold with a real MQTT listener: all or nothing at start-up.
//
// Goal: a client that connects while the node is still binding its other listeners gets its
// CONNACK only once the hold opens, and, when start-up fails instead, is closed without ever
// receiving a byte (a node that gives up starting never served it).
// Method: an MqttServer on port 0 over an in-memory broker, a raw socket that sends CONNECT;
// the positive case waits for the CONNACK after openAll(), the negative one for the close after
// discard() and then checks that nothing arrived before it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import pino from 'pino';
import { Broker } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ConnectionHold } from '../listener/index.js';
import { MqttServer } from './server.js';
import { testMqttLimits } from '../../tests/support/mqtt-limits.js';

const logger = pino({ level: 'silent' });
const LIMITS = testMqttLimits();
const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'held', clean: true, keepalive: 0 });

describe('MQTT connections held until every listener is bound', () => {
  const servers: MqttServer[] = [];
  const brokers: Broker[] = [];
  after(async () => {
    for (const server of servers) await server.stop();
    for (const broker of brokers) await broker.close();
  });

  async function listen(hold: ConnectionHold): Promise<MqttServer> {
    const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 1, maxQueuedBytes: 1 << 20 });
    brokers.push(broker);
    const server = await MqttServer.start({ broker, limits: LIMITS, host: '127.0.0.1', port: 0, logger, hold });
    servers.push(server);
    return server;
  }

  async function client(port: number): Promise<{ received: Buffer[]; closed: Promise<unknown>; socket: ReturnType<typeof connect> }> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(CONNECT);
    return { received, closed, socket };
  }

  test('served once the hold opens', async () => {
    const hold = new ConnectionHold();
    const server = await listen(hold);
    const { received, socket } = await client(server.port);
    hold.openAll();
    while (received.length === 0) await once(socket, 'data');
    assert.equal(received[0]?.[0], 0x20, 'CONNACK');
    socket.destroy();
  });

  test('closed unanswered when start-up fails', async () => {
    const hold = new ConnectionHold();
    const server = await listen(hold);
    const { received, closed } = await client(server.port);
    // Wait until the listener has the socket (accepted, held), then give up as a failed start would.
    while (!(await new Promise<boolean>((resolve) => setImmediate(() => resolve(hold.heldCount > 0))))) continue;
    hold.discard();
    await closed;
    assert.deepEqual(received, []);
  });
});
