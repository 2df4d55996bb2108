// Keep-alive on the shared timer wheel (connection.ts, base/timer-wheel.ts).
//
// Goal: a connection is closed at 1.5 x its keep-alive without a packet (5.0: DISCONNECT 0x8D),
// never earlier and at most one wheel tick later; any packet moves the deadline; many
// connections on one clock share one wheel; a connection closed before its deadline leaves
// nothing behind that fires.
// Method: MqttConnections over fake transports and a manual clock (timers fire exactly when
// due), an in-memory broker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Broker } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { KEEP_ALIVE_TICK_MS, MqttConnection, type Transport } from './connection.js';
import { testMqttLimits } from '../../tests/support/mqtt-limits.js';

const logger = pino({ level: 'silent' });
const LIMITS = testMqttLimits();

class FakeTransport implements Transport {
  readonly received: Packet[] = [];
  ended = false;
  readonly remoteAddress = '127.0.0.1:40000';
  readonly #parser: ReturnType<typeof mqttPacket.parser>;

  constructor(version: 4 | 5) {
    this.#parser = mqttPacket.parser({ protocolVersion: version });
    this.#parser.on('packet', (packet: Packet) => this.received.push(packet));
  }

  write(data: Buffer): boolean {
    this.#parser.parse(data);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  pause(): void {}
  resume(): void {}
}

async function connectClient(broker: Broker, clock: ManualClock, version: 4 | 5, clientId: string, keepalive: number): Promise<{ transport: FakeTransport; connection: MqttConnection; send: (packet: Packet) => Promise<void> }> {
  const transport = new FakeTransport(version);
  const connection = new MqttConnection(transport, broker, LIMITS, clock, logger, { connected: 0 });
  const send = async (packet: Packet): Promise<void> => {
    connection.onData(mqttPacket.generate(packet, { protocolVersion: version }));
    await settle();
  };
  await send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId, clean: true, keepalive } as Packet);
  assert.equal(transport.received[0]?.cmd, 'connack');
  return { transport, connection, send };
}

async function openBroker(clock: ManualClock): Promise<Broker> {
  return Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock });
}

describe('keep-alive on the shared timer wheel', () => {
  it('closes a silent 5.0 client at 1.5 x keep-alive (DISCONNECT 0x8D), not before, at most one tick after', async () => {
    const clock = new ManualClock();
    const broker = await openBroker(clock);
    const { transport } = await connectClient(broker, clock, 5, 'silent', 2);
    await clock.advance(2999);
    assert.equal(transport.ended, false, 'still open just before 1.5 x 2 s');
    await clock.advance(1 + KEEP_ALIVE_TICK_MS);
    assert.equal(transport.ended, true, 'closed by the end of the tick after 3 s');
    const disconnect = transport.received.find((packet) => packet.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    assert.equal(disconnect?.reasonCode, 0x8d);
    await broker.close();
  });

  it('a packet before the deadline moves it; a 3.1.1 client is closed without a packet', async () => {
    const clock = new ManualClock();
    const broker = await openBroker(clock);
    const { transport, send } = await connectClient(broker, clock, 4, 'pinger', 1);
    for (let round = 0; round < 5; round += 1) {
      await clock.advance(1000);
      await send({ cmd: 'pingreq' } as Packet);
    }
    assert.equal(transport.ended, false, 'a client that pings every keep-alive stays');
    assert.equal(transport.received.filter((packet) => packet.cmd === 'pingresp').length, 5);
    await clock.advance(1499);
    assert.equal(transport.ended, false);
    await clock.advance(1 + KEEP_ALIVE_TICK_MS);
    assert.equal(transport.ended, true);
    assert.equal(transport.received.at(-1)?.cmd, 'pingresp', '3.1.1 has no DISCONNECT from the server');
    await broker.close();
  });

  it('keep-alive 0: not closed for silence (10 minutes)', async () => {
    const clock = new ManualClock();
    const broker = await openBroker(clock);
    const { transport } = await connectClient(broker, clock, 5, 'zero', 0);
    await clock.advance(10 * 60 * 1000);
    assert.equal(transport.ended, false);
    await broker.close();
  });

  it('many connections share the wheel: each is closed at its own deadline; one closed earlier stays closed and untouched', async () => {
    const clock = new ManualClock();
    const broker = await openBroker(clock);
    const clients: Array<Awaited<ReturnType<typeof connectClient>>> = [];
    for (let index = 0; index < 20; index += 1) clients.push(await connectClient(broker, clock, 5, `many-${index}`, 1 + (index % 4)));
    const gone = clients[3];
    assert.ok(gone !== undefined);
    await gone.send({ cmd: 'disconnect', reasonCode: 0 } as Packet);
    const receivedByGone = gone.transport.received.length;
    for (let seconds = 1; seconds <= 4; seconds += 1) {
      await clock.advance(seconds === 1 ? 1499 : 1500);
      for (const [index, client] of clients.entries()) {
        if (client === gone) continue;
        const keepAlive = 1 + (index % 4);
        // Each step ends 1 ms before the deadline of keep-alive `seconds` (1.5 x seconds): the
        // shorter keep-alives are past their deadline and its tick, that one and longer are not.
        assert.equal(client.transport.ended, keepAlive < seconds, `keep-alive ${keepAlive} s after step ${seconds}`);
      }
    }
    await clock.advance(6000 + KEEP_ALIVE_TICK_MS);
    for (const client of clients) assert.equal(client.transport.ended, true);
    assert.equal(gone.transport.received.length, receivedByGone, 'nothing sent to a connection after it closed');
    await broker.close();
  });
});
