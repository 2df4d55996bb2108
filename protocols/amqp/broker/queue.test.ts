import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessageRecord, encodeMessageRecord, MessageQueue, messageIdOf, messageRecordKey, type QueueConsumer, type QueuedMessage } from './queue.js';

const message = (id: number): QueuedMessage => ({ id, exchange: '', routingKey: 'q', properties: {}, body: Buffer.from(`m${id}`), stored: false, redelivered: false });

class Recorder implements QueueConsumer {
  readonly got: number[] = [];
  room: number;

  constructor(
    readonly tag: string,
    room = Infinity,
    readonly noAck = false,
    readonly exclusive = false,
  ) {
    this.room = room;
  }

  hasRoom(): boolean {
    return this.got.length < this.room;
  }

  deliver(delivered: QueuedMessage): void {
    this.got.push(delivered.id);
  }
}

describe('message queue', () => {
  it('gives messages round-robin to consumers with room, and keeps the rest ready', () => {
    const queue = new MessageQueue('q');
    const a = new Recorder('a', 2);
    const b = new Recorder('b', 1);
    queue.addConsumer(a);
    queue.addConsumer(b);
    for (let id = 1; id <= 6; id += 1) queue.enqueue(message(id));
    assert.deepEqual(a.got, [1, 3]);
    assert.deepEqual(b.got, [2]);
    assert.equal(queue.messageCount, 3);
    a.room = 3;
    queue.dispatch();
    assert.deepEqual(a.got, [1, 3, 4]);
    assert.equal(queue.messageCount, 2);
  });

  it('puts requeued messages back in their place, marked redelivered', () => {
    const queue = new MessageQueue('q');
    const taken = [1, 2, 3, 4].map((id) => {
      queue.enqueue(message(id));
      return id;
    });
    assert.deepEqual(taken, [1, 2, 3, 4]);
    const first = queue.take() as QueuedMessage;
    const second = queue.take() as QueuedMessage;
    queue.enqueue(message(5));
    queue.requeue([second, first]);
    const order: Array<[number, boolean]> = [];
    for (let next = queue.take(); next !== undefined; next = queue.take()) order.push([next.id, next.redelivered]);
    assert.deepEqual(order, [
      [1, true],
      [2, true],
      [3, false],
      [4, false],
      [5, false],
    ]);
  });

  it('drains on purge and counts ready bytes', () => {
    const queue = new MessageQueue('q');
    queue.enqueue(message(1));
    queue.enqueue(message(2));
    assert.equal(queue.readyBytes, 4);
    assert.deepEqual(
      queue.drain().map((m) => m.id),
      [1, 2],
    );
    assert.equal(queue.messageCount, 0);
    assert.equal(queue.readyBytes, 0);
  });

  it('a removed consumer gets nothing more', () => {
    const queue = new MessageQueue('q');
    const a = new Recorder('a');
    const b = new Recorder('b');
    queue.addConsumer(a);
    queue.addConsumer(b);
    assert.equal(queue.removeConsumer('a', (consumer) => consumer === a), a);
    queue.enqueue(message(1));
    queue.enqueue(message(2));
    assert.deepEqual(a.got, []);
    assert.deepEqual(b.got, [1, 2]);
  });

  it('stores a message as a record and reads it back', () => {
    const original: QueuedMessage = { id: 7, exchange: 'orders', routingKey: 'eu.fr', properties: { contentType: 'text/plain', deliveryMode: 2, headers: new Map([['k', { type: 'int32', value: 3 }]]) }, body: Buffer.from('hello'), stored: true, redelivered: false };
    const key = messageRecordKey(7);
    assert.equal(messageIdOf(key), 7);
    const back = decodeMessageRecord(messageIdOf(key), encodeMessageRecord(original));
    assert.deepEqual(back, original);
  });
});
