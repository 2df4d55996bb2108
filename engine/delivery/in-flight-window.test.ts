// Unit tests of the in-flight window (in-flight-window.ts) and the byte-counted queue
// (delivery-queue.ts), the neutral parts a subscriber stream is built from.
//
// Goal: ack / nack / requeue by an opaque tag take exactly that entry; a held entry (MQTT QoS 2
// after PUBREC) stays until taken and is passed over by a multiple ack (AMQP multiple=true); a
// tag in use is refused with its code; the queue's byte count is the sum of what it holds.
// Method: examples, then a fast-check property that drives the window and the queue with random
// operations and compares them after every step with a plain model (an array of entries).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../../base/index.js';
import { DeliveryQueue } from './delivery-queue.js';
import { InFlightWindow } from './in-flight-window.js';
import { numRuns, replay } from '../../tests/support/fast-check.js';

describe('InFlightWindow', () => {
  test('take acks one tag and answers undefined for one it does not hold', () => {
    const window = new InFlightWindow<string>();
    window.add(7, 'a');
    window.add(3, 'b');
    assert.equal(window.take(7), 'a');
    assert.equal(window.take(7), undefined);
    assert.deepEqual([...window.entries()], [[3, 'b', false]]);
  });

  test('a tag in use is refused with SL_DELIVERY_TAG_IN_USE', () => {
    const window = new InFlightWindow<string>();
    window.add(1, 'a');
    assert.throws(() => window.add(1, 'b'), (error: unknown) => isShardlineError(error, 'SL_DELIVERY_TAG_IN_USE'));
    assert.equal(window.get(1), 'a');
  });

  test('hold keeps the entry and says whether it was held before; take completes it', () => {
    const window = new InFlightWindow<string>();
    window.add(1, 'a');
    assert.equal(window.hold(1), 'held');
    assert.equal(window.hold(1), 'already');
    assert.equal(window.hold(2), undefined);
    assert.ok(window.isHeld(1));
    assert.equal(window.size, 1);
    assert.equal(window.take(1), 'a');
    assert.equal(window.size, 0);
  });

  test('takeThrough takes the outstanding entries up to the tag in the order they came, not the held ones', () => {
    const window = new InFlightWindow<string>();
    for (const [tag, item] of [[1, 'a'], [2, 'b'], [3, 'c'], [4, 'd']] as const) window.add(tag, item);
    window.hold(2);
    assert.deepEqual(window.takeThrough(3), ['a', 'c']);
    assert.deepEqual([...window.entries()].map(([tag]) => tag), [2, 4]);
    assert.equal(window.takeThrough(9), undefined, 'an unknown tag takes nothing');
    assert.equal(window.size, 2);
  });
});

describe('DeliveryQueue', () => {
  test('counts bytes through push, unshift and shift; a requeued item comes out first', () => {
    const queue = new DeliveryQueue<string>((item) => item.length);
    queue.push('aa');
    queue.push('bbb');
    assert.equal(queue.shift(), 'aa');
    queue.unshift('c');
    assert.equal(queue.bytes, 4);
    assert.deepEqual([...queue], ['c', 'bbb']);
    assert.equal(queue.shift(), 'c');
    assert.equal(queue.shift(), 'bbb');
    assert.equal(queue.shift(), undefined);
    assert.equal(queue.bytes, 0);
  });

  test('stays in order across the compaction of its array (more than 1,024 items taken)', () => {
    const queue = new DeliveryQueue<number>(() => 1);
    for (let i = 0; i < 3000; i += 1) queue.push(i);
    for (let i = 0; i < 2500; i += 1) assert.equal(queue.shift(), i);
    queue.unshift(-1);
    assert.equal(queue.length, 501);
    assert.deepEqual([...queue].slice(0, 3), [-1, 2500, 2501]);
  });

  test('empty queues share no items: each starts, and starts again after clear(), with its own', () => {
    // Idle queues share one empty array until their first item (delivery-queue.ts); an item
    // that reached the shared one would show up in every other queue.
    const first = new DeliveryQueue<string>((item) => item.length);
    const second = new DeliveryQueue<string>((item) => item.length);
    first.unshift('a');
    second.push('b');
    first.clear();
    first.push('c');
    const third = new DeliveryQueue<string>((item) => item.length);
    assert.deepEqual([...first], ['c']);
    assert.deepEqual([...second], ['b']);
    assert.deepEqual([...third], []);
    assert.equal(third.length, 0);
    assert.equal(third.peek(), undefined);
  });
});

type Op =
  | { kind: 'send'; tag: number; size: number }
  | { kind: 'ack' | 'hold' | 'requeue'; tag: number }
  | { kind: 'ackThrough'; tag: number }
  | { kind: 'take' };

const tagArb = fc.integer({ min: 1, max: 6 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('send' as const), tag: tagArb, size: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constantFrom('ack' as const, 'hold' as const, 'requeue' as const, 'ackThrough' as const), tag: tagArb }),
  fc.record({ kind: fc.constant('take' as const) }),
);

test('property: the window and the queue, driven as a stream drives them, match a plain model', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      // A stream of sized items: queued, sent under a tag (window), acked, held, requeued.
      const queue = new DeliveryQueue<{ id: number; size: number }>((item) => item.size);
      const window = new InFlightWindow<{ id: number; size: number }>();
      const modelQueue: Array<{ id: number; size: number }> = [];
      const modelWindow: Array<{ tag: number; item: { id: number; size: number }; held: boolean }> = [];
      let nextId = 0;
      for (const op of ops) {
        if (op.kind === 'send') {
          // New items join the queue; the head goes out under the tag when the tag is free.
          const item = { id: nextId++, size: op.size };
          queue.push(item);
          modelQueue.push(item);
          if (!modelWindow.some((entry) => entry.tag === op.tag)) {
            const head = queue.shift();
            const modelHead = modelQueue.shift();
            assert.equal(head, modelHead);
            window.add(op.tag, head as { id: number; size: number });
            modelWindow.push({ tag: op.tag, item: modelHead as { id: number; size: number }, held: false });
          } else assert.throws(() => window.add(op.tag, item), (error: unknown) => isShardlineError(error, 'SL_DELIVERY_TAG_IN_USE'));
        } else if (op.kind === 'ack') {
          const at = modelWindow.findIndex((entry) => entry.tag === op.tag);
          assert.equal(window.take(op.tag), at < 0 ? undefined : modelWindow[at]?.item);
          if (at >= 0) modelWindow.splice(at, 1);
        } else if (op.kind === 'hold') {
          const entry = modelWindow.find((candidate) => candidate.tag === op.tag);
          assert.equal(window.hold(op.tag), entry === undefined ? undefined : entry.held ? 'already' : 'held');
          if (entry !== undefined) entry.held = true;
        } else if (op.kind === 'requeue') {
          // nack with requeue: out of the window, back in front of the queue.
          const at = modelWindow.findIndex((entry) => entry.tag === op.tag && !entry.held);
          if (at < 0 || window.isHeld(op.tag)) continue;
          const item = window.take(op.tag);
          assert.equal(item, modelWindow[at]?.item);
          modelWindow.splice(at, 1);
          queue.unshift(item as { id: number; size: number });
          modelQueue.unshift(item as { id: number; size: number });
        } else if (op.kind === 'ackThrough') {
          const at = modelWindow.findIndex((entry) => entry.tag === op.tag);
          const expected = at < 0 ? undefined : modelWindow.slice(0, at + 1).filter((entry) => !entry.held);
          assert.deepEqual(window.takeThrough(op.tag), expected?.map((entry) => entry.item));
          if (expected !== undefined) for (const entry of expected) modelWindow.splice(modelWindow.indexOf(entry), 1);
        } else {
          assert.equal(queue.shift(), modelQueue.shift());
        }
        assert.deepEqual([...window.entries()], modelWindow.map((entry) => [entry.tag, entry.item, entry.held]));
        assert.equal(window.size, modelWindow.length);
        assert.deepEqual([...queue], modelQueue);
        assert.equal(queue.bytes, modelQueue.reduce((sum, item) => sum + item.size, 0));
        assert.equal(queue.length, modelQueue.length);
      }
    }),
    { numRuns: numRuns(300), ...replay },
  );
});
