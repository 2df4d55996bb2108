// The AMQP queue rates of /api/amqp/queues with hand-given times: a queue first seen counts from
// zero at the previous sample, rates cover the last ~10 s, a queue gone is forgotten.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QueueView } from '../protocols/amqp/index.js';
import { QueueRates } from './amqp-routes.js';

function queue(name: string, published: number, delivered = 0, acked = 0): QueueView {
  return { name, durable: false, exclusive: false, autoDelete: false, arguments: {}, shard: undefined, ready: 0, readyBytes: 0, unacked: 0, consumers: 0, published, delivered, acked };
}

describe('AMQP queue rates', () => {
  it('counts a new queue from zero at the previous sample', () => {
    const rates = new QueueRates();
    rates.sample([], 0);
    rates.sample([queue('q', 30, 20, 10)], 1000);
    assert.deepEqual(rates.rates(queue('q', 30, 20, 10), 1000), { publishPerSecond: 30, deliverPerSecond: 20, ackPerSecond: 10 });
    assert.deepEqual(rates.rates(queue('q', 50, 20, 10), 2000), { publishPerSecond: 25, deliverPerSecond: 10, ackPerSecond: 5 });
  });

  it('covers the last ~10 s only, and forgets a queue that went', () => {
    const rates = new QueueRates();
    rates.sample([queue('q', 0)], 0);
    for (let second = 1; second <= 20; second++) rates.sample([queue('q', second <= 10 ? second * 100 : 1000)], second * 1000);
    assert.deepEqual(rates.rates(queue('q', 1000), 20_000), { publishPerSecond: 0, deliverPerSecond: 0, ackPerSecond: 0 }, 'nothing published in the last 10 s');
    rates.sample([], 21_000);
    rates.sample([queue('q', 5)], 22_000);
    assert.deepEqual(rates.rates(queue('q', 5), 22_000), { publishPerSecond: 5, deliverPerSecond: 0, ackPerSecond: 0 }, 'a queue of the same name declared again starts over');
  });
});
