// The node-wide AMQP bounds and the counters behind the admin API and metrics, over an
// in-memory shard store with a host that records what would go to the socket: each bound
// refuses the first one over it with its reply code and leaves what exists usable; publishes,
// deliveries, acks, confirms and the bytes held are counted where they happen.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MemoryShardStore } from '../../../shard-model/index.js';
import type { BasicProperties } from '../codec/content.js';
import type { AmqpCodecError } from '../codec/errors.js';
import { amqpMethod, type AmqpMethod } from '../codec/methods.js';
import { AmqpBroker } from './broker.js';
import type { AmqpResourceLimits } from './limits.js';
import { AmqpSession, type SessionHost } from './session.js';

class Host implements SessionHost {
  readonly connectionId = 'amqp-test';
  readonly cancelNotify = true;
  readonly sent: AmqpMethod[] = [];
  readonly closes: AmqpCodecError[] = [];
  readonly session: AmqpSession;

  constructor(broker: AmqpBroker) {
    this.session = new AmqpSession(broker, this);
  }

  sendMethod(_channel: number, method: AmqpMethod): void {
    this.sent.push(method);
  }

  sendContent(_channel: number, method: AmqpMethod, _properties: BasicProperties, _body: Buffer): void {
    this.sent.push(method);
  }

  closeChannel(channel: number, error: AmqpCodecError): void {
    this.closes.push(error);
    this.session.channelClosed(channel);
  }

  writable(): boolean {
    return true;
  }

  call(channel: number, method: AmqpMethod): void {
    this.session.command(channel, { channel, method });
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
const noArgs = new Map();

async function open(limits: AmqpResourceLimits): Promise<{ broker: AmqpBroker; host: Host }> {
  const broker = await AmqpBroker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), limits });
  return { broker, host: new Host(broker) };
}

const declareQueue = (queue: string) => amqpMethod('queue.declare', { ticket: 0, queue, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: noArgs });
const declareExchange = (exchange: string) => amqpMethod('exchange.declare', { ticket: 0, exchange, type: 'direct', passive: false, durable: false, autoDelete: false, internal: false, noWait: false, arguments: noArgs });

describe('AMQP resource limits and counters', () => {
  it('refuses the first queue, exchange and binding over their bounds with 406; exchange bindings count', async () => {
    const { broker, host } = await open({ maxQueues: 1, maxExchanges: 1, maxBindings: 1, maxConsumersPerChannel: 0 });
    try {
      host.call(1, declareQueue('q1'));
      host.call(1, declareQueue('q1'));
      host.call(1, declareExchange('x1'));
      host.call(1, amqpMethod('exchange.bind', { ticket: 0, destination: 'x1', source: 'amq.fanout', routingKey: '', noWait: false, arguments: noArgs }));
      await settle();
      assert.deepEqual(host.sent.map((method) => method.name), ['queue.declare-ok', 'queue.declare-ok', 'exchange.declare-ok', 'exchange.bind-ok']);
      assert.equal(host.closes.length, 0);
      host.call(2, declareQueue('q2'));
      host.call(3, declareExchange('x2'));
      host.call(4, amqpMethod('queue.bind', { ticket: 0, queue: 'q1', exchange: 'x1', routingKey: 'k', noWait: false, arguments: noArgs }));
      await settle();
      assert.deepEqual(host.closes.map((error) => [error.replyCode, error.replyText]), [
        [406, "PRECONDITION_FAILED - cannot declare queue 'q2' in vhost '/': queue limit (1) is reached (setting amqp-max-queues)"],
        [406, "PRECONDITION_FAILED - cannot declare exchange 'x2' in vhost '/': exchange limit (1) is reached (setting amqp-max-exchanges)"],
        [406, "PRECONDITION_FAILED - cannot add a binding in vhost '/': binding limit (1) is reached (setting amqp-max-bindings)"],
      ]);
      assert.equal(broker.queues().length, 1);
      assert.equal(broker.topology.bindingCount, 1);
    } finally {
      broker.close();
    }
  });

  it('refuses a consumer over the per-channel bound with 530 (a connection exception); 0 means no bound', async () => {
    const { broker, host } = await open({ maxQueues: 0, maxExchanges: 0, maxBindings: 0, maxConsumersPerChannel: 2 });
    try {
      host.call(1, declareQueue('q'));
      for (const tag of ['a', 'b', 'c']) host.call(1, amqpMethod('basic.consume', { ticket: 0, queue: 'q', consumerTag: tag, noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: noArgs }));
      await settle();
      assert.deepEqual(host.sent.map((method) => method.name), ['queue.declare-ok', 'basic.consume-ok', 'basic.consume-ok']);
      assert.deepEqual(host.closes.map((error) => [error.replyCode, error.scope, error.replyText]), [[530, 'connection', 'NOT_ALLOWED - reached maximum (2) of consumers per channel (setting amqp-max-consumers-per-channel)']]);
      for (let i = 0; i < 20; i++) host.call(2, declareQueue(`many-${i}`));
      await settle();
      assert.equal(broker.queues().length, 21, 'amqp-max-queues 0: no bound');
    } finally {
      broker.close();
    }
  });

  it('counts publishes, confirms, deliveries, acks and the bytes held', async () => {
    const { broker, host } = await open({ maxQueues: 0, maxExchanges: 0, maxBindings: 0, maxConsumersPerChannel: 0 });
    try {
      host.call(1, declareQueue('q'));
      host.call(1, amqpMethod('confirm.select', { noWait: false }));
      for (const body of ['12345', '678']) {
        host.session.command(1, { channel: 1, method: amqpMethod('basic.publish', { ticket: 0, exchange: '', routingKey: 'q', mandatory: false, immediate: false }), content: { header: { classId: 60, weight: 0, bodySize: BigInt(body.length), properties: {} }, body: Buffer.from(body) } });
      }
      await settle();
      const runtime = broker.queue('q');
      assert.ok(runtime !== undefined);
      assert.equal(broker.heldBytes(), 8);
      host.call(1, amqpMethod('basic.get', { ticket: 0, queue: 'q', noAck: false }));
      assert.deepEqual({ ...runtime.counters }, { published: 2, delivered: 1, acked: 0, unacked: 1, unackedBytes: 5 });
      assert.equal(broker.heldBytes(), 8, 'an unacknowledged delivery is still held');
      host.call(1, amqpMethod('basic.ack', { deliveryTag: 1n, multiple: false }));
      await settle();
      assert.deepEqual({ ...runtime.counters }, { published: 2, delivered: 1, acked: 1, unacked: 0, unackedBytes: 0 });
      assert.equal(broker.heldBytes(), 3);
      assert.deepEqual({ ...broker.stats }, { publishes: 2, deliveries: 1, acks: 1, confirmsAcked: 2, confirmsNacked: 0 });
    } finally {
      broker.close();
    }
  });
});
