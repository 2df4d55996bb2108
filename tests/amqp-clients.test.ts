// AMQP clients other than amqplib against a real node: pika 1.2 (Debian's python3-pika; .ci/run
// installs it), the Python client RabbitMQ's tutorials use. Publisher confirms with a durable
// topic exchange and queue, headers, basic.get and ack until get-empty; a mandatory publish to
// no queue raising pika's UnroutableError (basic.return before the confirm); a consumer with
// prefetch 2 that nacks one message with requeue and gets it back redelivered.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanup, freePort, startBroker, stopBroker, type BrokerProcess } from './support/broker-process.js';
import { runProcess } from './support/run-process.js';

/** Debian's interpreter, whose dist-packages hold python3-pika (a pyenv python3 on PATH would not see it). */
const PYTHON = '/usr/bin/python3';

const CONNECT = `
import json, sys, pika
params = pika.ConnectionParameters(host='127.0.0.1', port=int(sys.argv[1]), credentials=pika.PlainCredentials('guest', 'guest'))
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
`;

const CONFIRMS_AND_GET = `${CONNECT}
ch.exchange_declare('py-ex', exchange_type='topic', durable=True)
q = ch.queue_declare('py-q', durable=True).method.queue
ch.queue_bind(q, 'py-ex', routing_key='a.*')
for i in range(5):
    ch.basic_publish('py-ex', 'a.%d' % i, b'm%d' % i, properties=pika.BasicProperties(delivery_mode=2, headers={'n': i}), mandatory=True)
got = []
for i in range(5):
    method, props, body = ch.basic_get(q)
    got.append([method.routing_key, body.decode(), props.headers])
    ch.basic_ack(method.delivery_tag)
method, _, _ = ch.basic_get(q)
print(json.dumps({'got': got, 'empty': method is None}))
conn.close()
`;

const RETURNS_AND_CONSUME = `${CONNECT}
q = ch.queue_declare('', exclusive=True).method.queue
try:
    ch.basic_publish('', 'no-such-queue', b'x', mandatory=True)
    unroutable = False
except pika.exceptions.UnroutableError:
    unroutable = True
for i in range(4):
    ch.basic_publish('', q, b'w%d' % i)
ch.basic_qos(prefetch_count=2)
seen = []
for method, props, body in ch.consume(q, inactivity_timeout=5):
    if method is None:
        break
    if body == b'w1' and not method.redelivered:
        ch.basic_nack(method.delivery_tag, requeue=True)
        continue
    seen.append([body.decode(), method.redelivered])
    ch.basic_ack(method.delivery_tag)
    if len(seen) == 4:
        break
ch.cancel()
print(json.dumps({'unroutable': unroutable, 'queue': q, 'seen': seen}))
conn.close()
`;

describe('pika against a node', { timeout: 120_000 }, () => {
  let node: BrokerProcess | undefined;
  let amqpPort = 0;
  after(async () => {
    if (node !== undefined) await stopBroker(node).catch(() => undefined);
    await cleanup();
  });

  test('confirmed persistent publishes through a topic exchange, read back with basic.get and acked until get-empty', async () => {
    amqpPort = await freePort();
    node = await startBroker({ args: ['--amqp-port', String(amqpPort)] });
    const run = await runProcess(PYTHON, ['-c', CONFIRMS_AND_GET, String(amqpPort)]);
    assert.equal(run.code, 0, run.stderr);
    const { got, empty } = JSON.parse(run.stdout) as { got: Array<[string, string, Record<string, number>]>; empty: boolean };
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => [`a.${i}`, `m${i}`, { n: i }]));
    assert.equal(empty, true, 'get-empty once all are acked');
  });

  test('a mandatory publish to no queue is returned (UnroutableError); a nacked message comes back redelivered under prefetch 2', async () => {
    assert.ok(node !== undefined);
    const run = await runProcess(PYTHON, ['-c', RETURNS_AND_CONSUME, String(amqpPort)]);
    assert.equal(run.code, 0, run.stderr);
    const { unroutable, queue, seen } = JSON.parse(run.stdout) as { unroutable: boolean; queue: string; seen: Array<[string, boolean]> };
    assert.equal(unroutable, true);
    assert.match(queue, /^amq\.gen-/, 'a server-named queue');
    assert.deepEqual([...seen].sort(), [['w0', false], ['w1', true], ['w2', false], ['w3', false]]);
  });
});
