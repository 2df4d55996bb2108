// The metrics the broker extras add (metrics.ts): delayed messages held and payload bytes out,
// read from the broker at scrape time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../shard-model/index.js';
import { ManualClock } from '../tests/support/manual-clock.js';
import { createMetrics } from './metrics.js';
import { RecordingSink } from '../tests/support/recording-sink.js';
import { Broker, DelayedPublisher } from '../engine/index.js';

const logger = pino({ level: 'silent' });

function value(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}{`) || entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('shardline_mqtt_delayed_messages and shardline_bytes_out_total follow the broker', async () => {
  const store = new MemoryShardStore();
  const clock = new ManualClock();
  const broker = await Broker.open({ store, logger, dataShards: 1, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000 });
  broker.extras.delayed = await DelayedPublisher.open({ store, clock, logger, host: { publish: (message) => broker.publish(message), mayPublish: () => true }, maxDelaySeconds: 60, maxMessages: 10 });
  const metrics = createMetrics({ broker, store, node: 'n' });
  const sink = new RecordingSink();
  const { session } = await broker.connect({ clientId: 'w', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink });
  session.attach(sink);
  await broker.subscribe(session, [{ filter: 'out', options: { qos: 0, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  await broker.publish({ topic: '$delayed/5/out', payload: Buffer.from('abcd'), qos: 1, retain: false, publisherId: 'p', timestamp: clock.now(), properties: undefined });
  let text = await metrics.render();
  assert.equal(value(text, 'shardline_mqtt_delayed_messages'), 1);
  assert.equal(value(text, 'shardline_bytes_out_total'), 0);
  await clock.advance(5000);
  text = await metrics.render();
  assert.equal(value(text, 'shardline_mqtt_delayed_messages'), 0);
  assert.equal(value(text, 'shardline_bytes_out_total'), 4);
  await broker.close();
});
