// The MQTT answer to publishes made while the broker's write gate is closed, in-process.
//
// Goal: 5.0 QoS 1/2 get PUBACK/PUBREC at once with 0x80 (journal unavailable) or 0x97 (disk
// low); 3.x QoS 1/2 get no ack while the gate is closed and are stored and acknowledged, in
// order, once it opens; 3.x publishes held longer than writes-blocked-disconnect-seconds close
// the connection; QoS 0 is dropped and counted. The same path serves every gate condition.
// Method: a real Broker over a MemoryShardStore, a fake transport that parses what the
// connection writes, and a manual clock for the disconnect bound; the gate is closed and
// opened by hand as the node runtime's journal watch or disk watermark would.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Broker } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { MqttConnection, type Transport } from './connection.js';
import { testMqttLimits } from '../../tests/support/mqtt-limits.js';

const logger = pino({ level: 'silent' });
const LIMITS = testMqttLimits({ writesBlockedDisconnectSeconds: 30 });

class FakeTransport implements Transport {
  readonly received: Packet[] = [];
  ended = false;
  readonly remoteAddress = '127.0.0.1:40000';
  readonly #parser: ReturnType<typeof mqttPacket.parser>;

  constructor(readonly version: 4 | 5) {
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

  acks(): string[] {
    return this.received.filter((packet) => packet.cmd === 'puback' || packet.cmd === 'pubrec').map((packet) => `${packet.cmd}:${(packet as { messageId?: number }).messageId}:0x${((packet as { reasonCode?: number }).reasonCode ?? 0).toString(16)}`);
  }
}

async function setup(version: 4 | 5): Promise<{ broker: Broker; clock: ManualClock; transport: FakeTransport; send: (packet: Packet) => Promise<void> }> {
  const clock = new ManualClock();
  const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock });
  const transport = new FakeTransport(version);
  const connection = new MqttConnection(transport, broker, LIMITS, clock, logger, { connected: 0 });
  const send = async (packet: Packet): Promise<void> => {
    connection.onData(mqttPacket.generate(packet, { protocolVersion: version }));
    await settle();
  };
  await send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `c${version}`, clean: true, keepalive: 0 } as Packet);
  assert.equal(transport.received[0]?.cmd, 'connack');
  return { broker, clock, transport, send };
}

function publish(messageId: number, qos: 0 | 1 | 2, payload = `m${messageId}`): Packet {
  return { cmd: 'publish', topic: 'plant/line1', payload: Buffer.from(payload), qos, retain: false, dup: false, ...(qos > 0 ? { messageId } : {}) } as Packet;
}

describe('MQTT publishes while writes are blocked', () => {
  test('5.0: PUBACK 0x80 for journal-unavailable, PUBREC 0x97 for disk-low, QoS 0 dropped and counted', async () => {
    const { broker, transport, send } = await setup(5);
    broker.writeGate.block('journal-unavailable', 'the journal does not answer', 0);
    await send(publish(1, 1));
    broker.writeGate.unblock('journal-unavailable');
    broker.writeGate.block('disk-low', 'free disk below the watermark', 0);
    await send(publish(2, 2));
    await send(publish(0, 0));
    assert.deepEqual(transport.acks(), ['puback:1:0x80', 'pubrec:2:0x97']);
    const reason = (transport.received.find((packet) => packet.cmd === 'puback') as { properties?: { reasonString?: string } }).properties?.reasonString;
    assert.match(reason ?? '', /journal-unavailable/);
    assert.equal(broker.stats.refused, 3);
    broker.writeGate.unblock('disk-low');
    await send(publish(3, 1));
    assert.deepEqual(transport.acks().at(-1), 'puback:3:0x10');
    assert.equal(transport.ended, false);
    await broker.close();
  });

  test('3.1.1: held without an ack while blocked, stored and acknowledged in order when writes resume', async () => {
    const { broker, transport, send } = await setup(4);
    broker.writeGate.block('journal-unavailable', 'the journal does not answer', 0);
    await send(publish(1, 1));
    await send(publish(2, 2));
    await send(publish(3, 1));
    // A PINGRESP answers after everything sent before it was handled: the barrier that shows no ack came.
    await send({ cmd: 'pingreq' } as Packet);
    assert.deepEqual(transport.received.map((packet) => packet.cmd), ['connack', 'pingresp']);
    broker.writeGate.unblock('journal-unavailable');
    await settle();
    assert.deepEqual(transport.acks(), ['puback:1:0x0', 'pubrec:2:0x0', 'puback:3:0x0']);
    assert.equal(transport.ended, false);
    await broker.close();
  });

  test('3.1.1: held past writes-blocked-disconnect-seconds, the connection closes (the client resends after reconnecting)', async () => {
    const { broker, clock, transport, send } = await setup(4);
    broker.writeGate.block('disk-low', 'free disk below the watermark', 0);
    await send(publish(1, 1));
    await clock.advance(29_000);
    assert.equal(transport.ended, false);
    await clock.advance(1_000);
    assert.equal(transport.ended, true);
    assert.deepEqual(transport.acks(), []);
    // Opening the gate later stores nothing of the closed connection.
    broker.writeGate.unblock('disk-low');
    await settle();
    assert.deepEqual(transport.acks(), []);
    await broker.close();
  });

  test('3.1.1: a gate that opens before the bound cancels the disconnect', async () => {
    const { broker, clock, transport, send } = await setup(4);
    broker.writeGate.block('journal-unavailable', 'the journal does not answer', 0);
    await send(publish(1, 1));
    await clock.advance(10_000);
    broker.writeGate.unblock('journal-unavailable');
    await settle();
    await clock.advance(60_000);
    assert.equal(transport.ended, false);
    assert.deepEqual(transport.acks(), ['puback:1:0x0']);
    await broker.close();
  });
});
