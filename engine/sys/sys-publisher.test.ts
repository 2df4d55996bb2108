// Unit tests of the $SYS topics (engine/sys/): every sys-interval the broker publishes its
// statistics under $SYS/brokers/{node}/ as retained messages through the normal publish path,
// so the access policy's mayRead decides who receives them; 0 turns them off; the node name is
// made one topic level.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import { allowEverything, type ClientIdentity } from '../security/access.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';
import { SysPublisher, sysNodeLevel } from './sys-publisher.js';

const logger = pino({ level: 'silent' });

class Sink extends RecordingSink {
  values(): Map<string, string> {
    return new Map(this.deliveries.map((delivery) => [delivery.message.topic, delivery.message.payload.toString()]));
  }
}

async function watcher(broker: Broker, clientId: string, filter: string): Promise<Sink> {
  const sink = new Sink();
  const { session } = await broker.connect({ clientId, cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  await broker.subscribe(session, [{ filter, options: { qos: 0, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  return sink;
}

describe('$SYS topics', () => {
  test('published every interval with the broker statistics, retained', async () => {
    const clock = new ManualClock();
    const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
    const sink = await watcher(broker, 'ops', '$SYS/#');
    await broker.publish({ topic: 'a', payload: Buffer.from('12345'), qos: 0, retain: false, publisherId: 'p', timestamp: clock.now(), properties: undefined });
    const sys = SysPublisher.start({ broker, clock, logger, intervalSeconds: 10, node: 'node/1', version: '9.9.9' });
    await clock.advance(9_999);
    assert.equal(sink.deliveries.length, 0);
    await clock.advance(1);
    const values = sink.values();
    const prefix = '$SYS/brokers/node_1/';
    assert.equal(values.get(`${prefix}version`), '9.9.9');
    assert.equal(values.get(`${prefix}clients/connected`), '1');
    assert.equal(values.get(`${prefix}subscriptions/count`), '1');
    assert.equal(values.get(`${prefix}messages/received`), '1', 'counted before the round: the one publish');
    assert.equal(values.get(`${prefix}bytes/received`), '5');
    assert.equal(values.get(`${prefix}uptime`), '10', 'seconds since Broker.open on the broker clock');
    for (const suffix of ['sessions/count', 'messages/sent', 'messages/dropped', 'messages/retained', 'bytes/sent']) assert.ok(values.has(prefix + suffix), suffix);
    assert.ok(broker.retained.get(`${prefix}version`) !== undefined, 'retained for late subscribers');
    const firstRound = sink.deliveries.length;
    assert.equal(firstRound, 11, 'eleven $SYS topics');
    // $SYS traffic is counted apart from the client's: totals, per-topic counts, retained.
    assert.deepEqual(broker.stats.sys, { messagesIn: 11, messagesOut: 11, bytesIn: broker.stats.sys.bytesIn, bytesOut: broker.stats.sys.bytesIn });
    assert.ok(broker.stats.sys.bytesIn > 0);
    assert.equal(broker.stats.messagesIn, 1, 'only the client publish');
    assert.equal(broker.stats.messagesOut, 0, 'no client message was delivered');
    assert.deepEqual(broker.topicCounts(), [{ topic: 'a', messages: 1 }]);
    assert.deepEqual(broker.retainedCounts(), { client: 0, sys: 11 });
    await clock.advance(10_000);
    assert.equal(sink.deliveries.length, firstRound * 2, 'a second round');
    const second = sink.values();
    assert.equal(second.get(`${prefix}uptime`), '20');
    assert.equal(second.get(`${prefix}messages/received`), '1', 'the first round\'s $SYS publishes are not client messages');
    assert.equal(second.get(`${prefix}messages/sent`), '0');
    assert.equal(second.get(`${prefix}messages/retained`), '0');
    await sys.stop();
    await clock.advance(30_000);
    assert.equal(sink.deliveries.length, firstRound * 2, 'nothing after stop');
    await broker.close();
  });

  test('only clients the access policy lets read $SYS receive them; a leading wildcard never matches them', async () => {
    const clock = new ManualClock();
    const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 2, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
    broker.access = { ...allowEverything, mayRead: (identity: ClientIdentity, topic: string) => identity.clientId === 'ops' || !topic.startsWith('$SYS/') };
    const ops = await watcher(broker, 'ops', '$SYS/#');
    const nosy = await watcher(broker, 'nosy', '$SYS/#');
    const everything = await watcher(broker, 'everything', '#');
    const sys = SysPublisher.start({ broker, clock, logger, intervalSeconds: 1, node: 'n', version: '1' });
    await clock.advance(1000);
    assert.ok(ops.deliveries.length > 0);
    assert.equal(nosy.deliveries.length, 0);
    assert.equal(everything.deliveries.length, 0);
    await sys.stop();
    await broker.close();
  });

  test('interval 0 publishes nothing; node names become one level', async () => {
    const clock = new ManualClock();
    const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 1, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
    const sink = await watcher(broker, 'ops', '$SYS/#');
    const sys = SysPublisher.start({ broker, clock, logger, intervalSeconds: 0, node: 'n', version: '1' });
    await clock.advance(600_000);
    assert.equal(sink.deliveries.length, 0);
    await sys.stop();
    await broker.close();
    assert.equal(sysNodeLevel('a/b+c#d'), 'a_b_c_d');
    assert.equal(sysNodeLevel(''), '_');
  });
});
