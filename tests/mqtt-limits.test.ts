// Broker limits under load and at their edges.
//
// Goal: each configured limit holds exactly where it is set (one past it is refused with the
// spec's code, the limit itself is accepted) and refusing one client never disturbs the others;
// a subscriber that stops reading cannot make the broker buffer without bound or stall anyone
// else, and with QoS 1 it still gets every message once it reads again.
// Method: one broker per describe, started with small limits. Slow consumers are raw sockets
// that stop reading (the kernel buffers fill, then the broker's own); the broker's memory is
// its VmRSS from /proc, sampled while the load runs. Every load loop is bounded in messages and
// in time.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { cleanup, requireShardline, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { connackCode, connectPacket, hex, mqttString, rawConnect, rawPacket, rawPublish, RawMqttClient, waitUntil, type MqttVersion } from './support/raw-mqtt.js';

const MB = 1024 * 1024;

after(cleanup);

/** The resident set size of a process, from /proc/PID/status. */
function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match !== null, `VmRSS of pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every intervalMs until stopped; returns the peak. */
function sampleRss(pid: number, intervalMs = 50): { stop: () => number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // The process is gone; the test notices that on its own.
    }
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

function pidOf(broker: BrokerProcess): number {
  const pid = broker.broker.child.pid;
  assert.ok(pid !== undefined, 'the broker process has a pid');
  return pid;
}

function mqttVersionName(version: MqttVersion): string {
  return version === 5 ? '5.0' : '3.1.1';
}

describe('--max-connections 5', () => {
  const MAX_CONNECTIONS = 5;
  let broker: BrokerProcess;

  before(async () => {
    broker = await startBroker({ args: ['--max-connections', String(MAX_CONNECTIONS)] });
  });
  after(async () => {
    if (broker !== undefined) await stopBroker(broker);
  });

  for (const version of [5, 4] as MqttVersion[]) {
    it(`MQTT ${mqttVersionName(version)}: the 6th connection gets CONNACK ${version === 5 ? '0x97 quota exceeded' : '0x03 server unavailable'}; the 5 others are unaffected; a freed slot is reusable`, async () => {
      const admitted: RawMqttClient[] = [];
      try {
        for (let index = 0; index < MAX_CONNECTIONS; index += 1) admitted.push((await rawConnect(broker.port, version, { clientId: `limit-${version}-${index}` })).client);

        const refused = await RawMqttClient.open(broker.port, { protocolVersion: version });
        refused.sendPacket(connectPacket(version, { clientId: `limit-${version}-extra` }));
        await refused.waitClosed(5_000);
        const connacks = refused.packets.filter((packet) => packet.cmd === 'connack');
        assert.equal(connacks.length, 1, `the refused client got one CONNACK; got ${refused.describe()}, raw ${refused.raw.toString('hex')}`);
        assert.equal(hex(connackCode(connacks[0]!)), hex(version === 5 ? 0x97 : 0x03), 'CONNACK code of the connection over the limit');

        for (const [index, client] of admitted.entries()) {
          assert.equal(client.closed, false, `admitted client ${index} is still connected`);
          client.sendPacket({ cmd: 'pingreq' });
          await client.nextOf('pingresp');
        }
        admitted[0]!.sendPacket({ cmd: 'publish', topic: 'limit/ok', payload: Buffer.from('x'), qos: 1, messageId: 11, dup: false, retain: false });
        assert.equal((await admitted[0]!.nextOf('puback')).messageId, 11);

        // The broker learns of the close asynchronously: retry the new connection for a while.
        admitted.shift()!.destroy();
        let replacement: RawMqttClient | undefined;
        const deadline = Date.now() + 5_000;
        while (replacement === undefined && Date.now() < deadline) {
          const candidate = await RawMqttClient.open(broker.port, { protocolVersion: version });
          candidate.sendPacket(connectPacket(version, { clientId: `limit-${version}-replacement` }));
          const connack = await candidate.nextOf('connack').catch(() => undefined);
          if (connack !== undefined && connackCode(connack) === 0) replacement = candidate;
          else {
            candidate.destroy();
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
        assert.ok(replacement !== undefined, 'a connection is admitted again once one of the five closed');
        admitted.push(replacement);
      } finally {
        for (const client of admitted) client.destroy();
      }
      // Let the broker see these closes before the next version's case counts connections.
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
  }
});

describe('--max-topic-length 100 --max-topic-levels 5', () => {
  const MAX_LENGTH = 100;
  const MAX_LEVELS = 5;
  let broker: BrokerProcess;

  before(async () => {
    broker = await startBroker({ args: ['--max-topic-length', String(MAX_LENGTH), '--max-topic-levels', String(MAX_LEVELS)] });
  });
  after(async () => {
    if (broker !== undefined) await stopBroker(broker);
  });

  const atLength = `len/${'a'.repeat(MAX_LENGTH - 4)}`;
  const overLength = `${atLength}b`;
  const atLevels = Array.from({ length: MAX_LEVELS }, (_, index) => `l${index}`).join('/');
  const overLevels = `${atLevels}/l${MAX_LEVELS}`;

  for (const version of [5, 4] as MqttVersion[]) {
    const name = mqttVersionName(version);
    const properties = version === 5 ? [0] : [];

    it(`MQTT ${name}: SUBSCRIBE at the limits is granted; one byte or one level over gets ${version === 5 ? '0x8F' : '0x80'}, connection stays open`, async (t) => {
      if (!requireShardline(t)) return;
      const { client } = await rawConnect(broker.port, version);
      try {
        const filters = [atLength, overLength, atLevels, overLevels, `${atLevels.split('/').slice(0, -1).join('/')}/#`, `${atLevels}/#`];
        const body = [0, 21, ...properties];
        for (const filter of filters) body.push(...mqttString(filter), 1);
        client.send(rawPacket(0x82, body));
        const suback = await client.nextOf('suback');
        assert.equal(suback.messageId, 21);
        const refused = version === 5 ? 0x8f : 0x80;
        // "a/b/c/d/#" has 5 levels; "l0/l1/l2/l3/l4/#" has 6.
        assert.deepEqual(suback.granted.map((code) => hex(code as number)), [1, refused, 1, refused, 1, refused].map(hex), `SUBACK codes for ${JSON.stringify(filters)}`);
        client.sendPacket({ cmd: 'pingreq' });
        await client.nextOf('pingresp');
      } finally {
        client.destroy();
      }
    });

    for (const [what, topic] of [
      ['one byte longer', overLength],
      ['one level deeper', overLevels],
    ] as const) {
      it(`MQTT ${name}: PUBLISH to a topic ${what} than allowed: ${version === 5 ? 'DISCONNECT 0x90' : 'closed'}; at the limit it is accepted`, async (t) => {
        if (!requireShardline(t)) return;
        const { client: good } = await rawConnect(broker.port, version);
        good.send(rawPublish(version, topic === overLength ? atLength : atLevels, { qos: 1, messageId: 5 }));
        assert.equal((await good.nextOf('puback')).messageId, 5, 'PUBLISH at the limit is acknowledged');
        good.destroy();

        const { client } = await rawConnect(broker.port, version);
        client.send(rawPublish(version, topic, { qos: 1, messageId: 6 }));
        await client.waitClosed(5_000);
        const disconnects = client.packets.filter((packet) => packet.cmd === 'disconnect');
        if (version === 5) {
          assert.equal(disconnects.length, 1, `one DISCONNECT, got ${client.describe()}`);
          assert.equal(hex((disconnects[0] as { reasonCode?: number }).reasonCode ?? 0), hex(0x90), 'DISCONNECT reason code');
        } else {
          assert.deepEqual(disconnects, [], '3.1.1: closed without DISCONNECT');
        }
        assert.ok(!client.packets.some((packet) => packet.cmd === 'puback'), 'the PUBLISH over the limit was not acknowledged');
      });
    }
  }
});

// What the broker holds for a subscriber that stopped reading shows as RSS growth while it
// does not read. A broker under any heavy load first grows to a working set of its own (JIT,
// heap, allocator arenas, journal buffers; measured here at +150 MB or more, with or without a
// slow reader), so each test first sends the same traffic with nobody slow, then measures the
// growth from there. The measured volumes exceed the growth limit, so a broker that kept the
// slow subscriber's messages in memory would fail; kernel socket buffers absorb only a few MB.
describe('slow subscribers (--max-queued-bytes 1 MiB)', () => {
  // Sixteen 64 KiB messages per subscriber: a reader that keeps up is not starved by the bound,
  // and still a small fraction of the 200 MB that passes the one that does not read.
  const MAX_QUEUED_BYTES = 1024 * 1024;
  const RSS_GROWTH_LIMIT = 100 * MB;
  const PAYLOAD = 64 * 1024;
  let broker: BrokerProcess;
  const clients: MqttClient[] = [];
  const raws: RawMqttClient[] = [];

  before(async () => {
    broker = await startBroker({ args: ['--max-queued-bytes', String(MAX_QUEUED_BYTES)] });
  });
  after(async () => {
    for (const raw of raws) raw.destroy();
    for (const client of clients) await client.endAsync(true).catch(() => undefined);
    if (broker !== undefined) await stopBroker(broker);
  });

  async function client(clientId: string): Promise<MqttClient> {
    const connected = await connectAsync(broker.url, { protocolVersion: 5, clientId, reconnectPeriod: 0, connectTimeout: 10_000 });
    clients.push(connected);
    return connected;
  }

  function numbered(sequence: number, fill: number): Buffer {
    const message = Buffer.alloc(PAYLOAD, fill);
    message.writeUInt32BE(sequence, 0);
    return message;
  }

  it('QoS 0: 200 MB past a subscriber that never reads: the publisher is not held up, broker RSS grows < 100 MB, a normal subscriber keeps receiving', async (t) => {
    const WARM_UP_MESSAGES = 1_600;
    const MESSAGES = 3_200;
    const SYNC_EVERY = 16;
    const FLOOD_LIMIT_MS = 40_000;

    const normal = await client('normal-q0');
    const normalSeen = new Set<number>();
    let normalEnds = 0;
    normal.on('message', (topic, payload) => {
      if (topic === 'flood/data') normalSeen.add(payload.readUInt32BE(0));
      if (topic === 'flood/end') normalEnds += 1;
    });
    // The data at QoS 0 (the broker may drop some if even this reader falls behind), the end marker at QoS 1.
    await normal.subscribeAsync({ 'flood/data': { qos: 0 }, 'flood/end': { qos: 1 } });
    const publisher = await client('publisher-q0');

    const flood = async (count: number): Promise<number> => {
      const started = Date.now();
      for (let sequence = 0; sequence < count; sequence += 1) {
        assert.ok(Date.now() - started < FLOOD_LIMIT_MS, `published ${sequence} of ${count} messages in ${FLOOD_LIMIT_MS} ms: the publisher is held up`);
        publisher.publish('flood/data', numbered(sequence, 0x61), { qos: 0 });
        // A QoS 1 round trip every 1 MB keeps the test's own outbound buffer small.
        if ((sequence + 1) % SYNC_EVERY === 0) await publisher.publishAsync('flood/sync', '', { qos: 1 });
      }
      const ends = normalEnds;
      await publisher.publishAsync('flood/end', 'end', { qos: 1 });
      await waitUntil(() => normalEnds > ends, 10_000, 'the normal subscriber receives the QoS 1 end marker');
      return Date.now() - started;
    };

    const coldRss = rssBytes(pidOf(broker));
    await flood(WARM_UP_MESSAGES);
    normalSeen.clear();

    const { client: slow } = await rawConnect(broker.port, 5, { clientId: 'slow-q0' }, { keepPayloadBytes: 4 });
    raws.push(slow);
    slow.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] });
    await slow.nextOf('suback');
    slow.pauseReading();

    const baseline = rssBytes(pidOf(broker));
    const sampler = sampleRss(pidOf(broker));
    const floodMs = await flood(MESSAGES);
    const peak = sampler.stop();
    const growth = peak - baseline;
    t.diagnostic(
      `broker RSS cold ${Math.round(coldRss / MB)} MB, after a ${(WARM_UP_MESSAGES * PAYLOAD) / MB} MB warm-up ${Math.round(baseline / MB)} MB, ` +
        `peak during ${(MESSAGES * PAYLOAD) / MB} MB past the slow subscriber ${Math.round(peak / MB)} MB (${floodMs} ms); ` +
        `normal subscriber got ${normalSeen.size}/${MESSAGES}; slow subscriber had read ${slow.bytesReceived} bytes`,
    );
    assert.ok(growth < RSS_GROWTH_LIMIT, `broker RSS grew by ${Math.round(growth / MB)} MB while the subscriber did not read (limit ${RSS_GROWTH_LIMIT / MB} MB)`);
    assert.ok(normalSeen.size >= MESSAGES * 0.5, `the normal subscriber received ${normalSeen.size} of ${MESSAGES} (want at least half; it reads as fast as it can)`);

    // The slow subscriber was not disconnected: once it reads again, new messages reach it.
    slow.resumeReading();
    const marker = Buffer.from('after-the-flood');
    // Its backlog drains first (what the kernel and the broker held); the marker comes after,
    // when the broker's queue for it is empty again and QoS 0 is no longer dropped.
    let lastBytes = -1;
    for (let polls = 0; polls < 100 && slow.bytesReceived !== lastBytes; polls += 1) {
      lastBytes = slow.bytesReceived;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await publisher.publishAsync('flood/after', marker, { qos: 0 });
    await slow.until(
      () => slow.packets.some((packet) => packet.cmd === 'publish' && packet.topic === 'flood/after'),
      10_000,
      'the slow subscriber, reading again, receives a message published after the flood',
    );
    assert.equal(slow.closed, false, 'the slow subscriber is still connected');
    const child = broker.broker.child;
    assert.ok(child.exitCode === null && child.signalCode === null, 'the broker is alive');
  });

  it('QoS 1: 160 MB to a subscriber that stopped reading: broker RSS grows < 100 MB meanwhile, and every message arrives, in order, once it reads again', async (t) => {
    // Mosquitto drops QoS 1 past max_queued_bytes; Shardline reads them back from the journal.
    if (!requireShardline(t)) return;
    const WARM_UP_MESSAGES = 1_600;
    const MESSAGES = 2_560;
    const WINDOW = 32;
    const PUBLISH_LIMIT_MS = 40_000;
    const publisher = await client('publisher-q1');

    // At most WINDOW unacknowledged PUBLISH at a time: below any Receive Maximum the broker sends.
    // mqtt.js writes in call order, so sequence order is wire order, which the broker must keep
    // (one publisher, one topic, one QoS).
    const publishAll = async (topic: string, count: number): Promise<number> => {
      const started = Date.now();
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          assert.ok(Date.now() - started < PUBLISH_LIMIT_MS, `published ${next} of ${count} QoS 1 messages in ${PUBLISH_LIMIT_MS} ms`);
          const sequence = next;
          next += 1;
          await publisher.publishAsync(topic, numbered(sequence, 0x62), { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
      return Date.now() - started;
    };

    const coldRss = rssBytes(pidOf(broker));
    await publishAll('durable-warm-up/data', WARM_UP_MESSAGES);

    const { client: slow } = await rawConnect(broker.port, 5, { clientId: 'slow-q1' }, { autoAck: false, keepPayloadBytes: 4 });
    raws.push(slow);
    slow.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'durable/#', qos: 1 }] });
    await slow.nextOf('suback');
    slow.pauseReading();

    const baseline = rssBytes(pidOf(broker));
    const sampler = sampleRss(pidOf(broker));
    const publishMs = await publishAll('durable/data', MESSAGES);
    const peakWhileStopped = sampler.stop();

    const catchUp = sampleRss(pidOf(broker));
    slow.autoAck = true;
    slow.resumeReading();
    const deliveryStarted = Date.now();
    await slow.until(() => slow.publishesReceived >= MESSAGES || slow.closed, 60_000, `the slow subscriber receives all ${MESSAGES} messages`);
    const deliveryMs = Date.now() - deliveryStarted;
    const peakCatchUp = catchUp.stop();
    const sequences = publishedSequences(slow);
    const distinct = new Set(sequences);
    t.diagnostic(
      `broker RSS cold ${Math.round(coldRss / MB)} MB, after a ${(WARM_UP_MESSAGES * PAYLOAD) / MB} MB warm-up ${Math.round(baseline / MB)} MB, ` +
        `peak while ${(MESSAGES * PAYLOAD) / MB} MB were published past the stopped subscriber ${Math.round(peakWhileStopped / MB)} MB (${publishMs} ms), ` +
        `peak during its catch-up ${Math.round(peakCatchUp / MB)} MB (${deliveryMs} ms); ${sequences.length - distinct.size} duplicates`,
    );
    assert.ok(peakWhileStopped - baseline < RSS_GROWTH_LIMIT, `broker RSS grew by ${Math.round((peakWhileStopped - baseline) / MB)} MB while the subscriber did not read (limit ${RSS_GROWTH_LIMIT / MB} MB)`);
    assert.equal(slow.closed, false, 'the slow subscriber stayed connected');
    assert.equal(distinct.size, MESSAGES, 'every message arrived');
    assert.equal(sequences.length, MESSAGES, 'no duplicates without a reconnect');
    const outOfOrder = sequences.findIndex((sequence, index) => index > 0 && sequence <= sequences[index - 1]!);
    assert.equal(outOfOrder, -1, `delivered in publish order (first break at delivery ${outOfOrder}: ${sequences[outOfOrder - 1]} then ${sequences[outOfOrder]})`);
  });
});

/** Sequence numbers (first 4 payload bytes) of the data PUBLISH packets a raw client decoded. */
function publishedSequences(client: RawMqttClient): number[] {
  const out: number[] = [];
  for (const packet of client.packets) {
    if (packet.cmd === 'publish' && packet.topic === 'durable/data') out.push((packet.payload as Buffer).readUInt32BE(0));
  }
  return out;
}
