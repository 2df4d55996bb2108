// The connection's side of the node-wide inbound budget, in-process: a large packet reserves
// its whole size when its fixed header arrives, a connection whose packet does not fit stops
// being read (transport paused) and is resumed when budget frees, a PUBLISH keeps its bytes
// counted until it is stored, and a connection that closes gives back what it held or leaves
// the queue. A fake transport records pause/resume; the broker runs over a memory store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Broker } from '../../engine/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { MqttConnection, type Transport } from './connection.js';
import { InboundBudget } from '../listener/index.js';
import { testMqttLimits } from '../../tests/support/mqtt-limits.js';

const logger = pino({ level: 'silent' });
const KiB = 1024;
const LIMITS = testMqttLimits();

class FakeTransport implements Transport {
  readonly received: Packet[] = [];
  readonly remoteAddress = '127.0.0.1:40000';
  paused = false;
  readonly #parser = mqttPacket.parser({ protocolVersion: 4 });

  constructor() {
    this.#parser.on('packet', (packet: Packet) => this.received.push(packet));
  }

  write(data: Buffer): boolean {
    this.#parser.parse(data);
    return true;
  }
  end(): void {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

async function until(what: string, ready: () => boolean): Promise<void> {
  for (let tries = 0; tries < 500; tries += 1) {
    if (ready()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`not reached: ${what}`);
}

/** A 3.1.1 QoS 1 PUBLISH with a payload of `bytes`, cut after its first KiB. */
function largePublish(topic: string, bytes: number): { head: Buffer; rest: Buffer; total: number } {
  const packet = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(bytes, 7), qos: 1, messageId: 1, retain: false, dup: false }, { protocolVersion: 4 });
  return { head: packet.subarray(0, KiB), rest: packet.subarray(KiB), total: packet.length };
}

describe('MQTT connection: the inbound budget', () => {
  let broker: Broker;
  const clock = new ManualClock();

  before(async () => {
    broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1024 * KiB, clock });
  });
  after(async () => {
    await broker.close();
  });

  async function connected(registry: { connected: number; inboundBudget: InboundBudget }, clientId: string): Promise<{ connection: MqttConnection; transport: FakeTransport }> {
    const transport = new FakeTransport();
    const connection = new MqttConnection(transport, broker, LIMITS, clock, logger, registry);
    connection.onData(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }, { protocolVersion: 4 }));
    await until(`${clientId}: CONNACK`, () => transport.received.some((packet) => packet.cmd === 'connack') && !transport.paused);
    return { connection, transport };
  }

  it('reserves a large packet whole at its header, pauses the ones that do not fit, holds a PUBLISH until stored, grants in order', async () => {
    const budget = new InboundBudget(300 * KiB);
    const registry = { connected: 0, inboundBudget: budget };
    const a = await connected(registry, 'budget-a');
    const b = await connected(registry, 'budget-b');
    const c = await connected(registry, 'budget-c');
    const packets = [a, b, c].map((_, index) => largePublish(`budget/${index}`, 200 * KiB));
    a.connection.onData(packets[0]!.head);
    b.connection.onData(packets[1]!.head);
    c.connection.onData(packets[2]!.head);
    assert.deepEqual([a.transport.paused, b.transport.paused, c.transport.paused], [false, true, true], 'a holds its packet; b and c do not fit and are not read');
    assert.equal(budget.stats.reservedBytes, packets[0]!.total);
    assert.equal(budget.stats.waiting, 2);

    a.connection.onData(packets[0]!.rest);
    // Complete, handed to the broker, not yet stored: still counted, b still waits.
    assert.equal(budget.stats.reservedBytes, packets[0]!.total, 'held until stored');
    assert.equal(b.transport.paused, true);
    await until('a: PUBACK', () => a.transport.received.some((packet) => packet.cmd === 'puback'));
    assert.deepEqual([b.transport.paused, c.transport.paused], [false, true], 'stored: b is granted and read; c (asked later) still waits');
    assert.equal(budget.stats.reservedBytes, packets[1]!.total);

    b.connection.onData(packets[1]!.rest);
    await until('b: PUBACK', () => b.transport.received.some((packet) => packet.cmd === 'puback'));
    assert.equal(c.transport.paused, false, 'c is granted once b is stored');
    c.connection.onData(packets[2]!.rest);
    await until('c: PUBACK', () => c.transport.received.some((packet) => packet.cmd === 'puback'));
    assert.deepEqual({ reserved: budget.stats.reservedBytes, waiting: budget.stats.waiting, waited: budget.stats.waitedTotal }, { reserved: 0, waiting: 0, waited: 2 });
    for (const { connection } of [a, b, c]) connection.onClose();
  });

  it('packets up to 64 KiB reserve nothing; a connection that closes gives its reservation back and leaves the queue', async () => {
    const budget = new InboundBudget(300 * KiB);
    const registry = { connected: 0, inboundBudget: budget };
    const small = await connected(registry, 'budget-small');
    const smallPacket = largePublish('budget/small', 60 * KiB);
    small.connection.onData(smallPacket.head);
    assert.equal(budget.stats.reservedBytes, 0, 'a 60 KiB packet is not counted');
    small.connection.onData(smallPacket.rest);
    await until('small: PUBACK', () => small.transport.received.some((packet) => packet.cmd === 'puback'));

    const holder = await connected(registry, 'budget-holder');
    const waiter = await connected(registry, 'budget-waiter');
    holder.connection.onData(largePublish('budget/holder', 250 * KiB).head);
    waiter.connection.onData(largePublish('budget/waiter', 250 * KiB).head);
    assert.deepEqual({ reserved: budget.stats.reservedBytes > 250 * KiB, waiting: budget.stats.waiting }, { reserved: true, waiting: 1 });
    waiter.connection.onClose();
    assert.equal(budget.stats.waiting, 0, 'a closed connection leaves the queue');
    holder.connection.onClose();
    assert.equal(budget.stats.reservedBytes, 0, 'a closed connection gives back its unfinished packet');
    small.connection.onClose();
  });
});
