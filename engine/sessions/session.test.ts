// Unit tests of a session's delivery cursors (session.ts, Session.cursors()).
//
// Goal: the `acked` cursor `$sessions` keeps for a shard is the lowest offset not yet
// acknowledged — the smallest queued or in-flight QoS 1/2 offset, else where the stream stands
// (the dispatch frontier when live, the read position when catching up) — so resuming from it
// after a crash redelivers, never skips; QoS 0 and retained deliveries never hold it back. The
// `sent` cursor is the offset below which everything was sent once, and resends below it carry
// DUP. Deliveries acknowledged above the `acked` cursor are kept with it (`ackedAbove`), so a
// session restored from them does not send those again; the set stays bounded.
// Method: a session over a fake host: per-shard arrays stand for the journal, "dispatch" appends
// and offers live like the broker does, and the sink records what it is sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Message, QoS } from '../messages/message.js';
import type { SubscriptionOptions } from './session-events.js';
import { SendResult, type Delivery } from '../delivery/delivery.js';
import { ACKED_ABOVE_MAX, deliveryFor, Session, type SessionHost } from './session.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';
import { numRuns, replay } from '../../tests/support/fast-check.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

class FakeJournal {
  readonly shards: Array<Array<{ offset: number; message: Message }>>;
  readonly frontier: number[];
  moved = 0;
  readonly dropped: string[] = [];
  /** Topics the access policy keeps from this session. */
  readonly unreadable = new Set<string>();
  readonly host: SessionHost;

  constructor(shardCount: number) {
    this.shards = Array.from({ length: shardCount }, () => []);
    this.frontier = Array.from({ length: shardCount }, () => 0);
    this.host = {
      shardCount,
      maxQueuedBytes: 1024 * 1024,
      dispatchFrontier: (shard) => this.frontier[shard] as number,
      readBack: async (shard, from) => (this.shards[shard] ?? []).filter((record) => record.offset >= from).slice(0, 100),
      now: () => 0,
      cursorsMoved: () => {
        this.moved += 1;
      },
      dropped: (reason) => {
        this.dropped.push(reason);
      },
      readFailed: (_session, _shard, error) => {
        throw error;
      },
      mayRead: (_session, topic) => !this.unreadable.has(topic),
      later: (callback, ms) => {
        setTimeout(callback, ms);
      },
    };
  }

  /** Appends a message to a shard and hands it to the session as the broker's dispatch would. */
  dispatch(session: Session | undefined, shard: number, topic: string, qos: QoS): number {
    const records = this.shards[shard] as Array<{ offset: number; message: Message }>;
    const offset = this.frontier[shard] as number;
    const message: Message = { topic, payload: Buffer.from(`${shard}:${offset}`), qos, retain: false, publisherId: 'p', timestamp: 0, properties: undefined };
    records.push({ offset, message });
    this.frontier[shard] = offset + 1;
    if (session?.online === true) {
      const delivery = deliveryFor(message, [...session.subscriptions.values()], session.clientId);
      if (delivery !== undefined) session.offerLive({ ...delivery, shard, offset });
    }
    return offset;
  }
}

const everything: SubscriptionOptions = { qos: 2, noLocal: false, keepRetainFlag: false, sendRetained: 'always' };

function online(journal: FakeJournal, startOffsets: Array<number | undefined> = [], sentBelow: number[] = [], sink = new RecordingSink()): { session: Session; sink: RecordingSink } {
  const session = new Session('c', journal.host, startOffsets, sentBelow);
  session.setSubscription('#', everything);
  session.claim(sink);
  session.attach(sink);
  return { session, sink };
}

describe('Session.cursors()', () => {
  test('a live session with nothing pending stands at the dispatch frontier of each shard', () => {
    const journal = new FakeJournal(2);
    journal.dispatch(undefined, 0, 'x', 1);
    const { session } = online(journal);
    assert.deepEqual(session.cursors().acked, [1, 0]);
    journal.dispatch(session, 1, 'x', 0);
    journal.dispatch(session, 1, 'x', 0);
    assert.deepEqual(session.cursors().acked, [1, 2], 'QoS 0 deliveries do not hold the cursor');
  });

  test('an unacknowledged QoS 1/2 delivery holds its shard at its offset until acknowledged, even when later ones are', () => {
    const journal = new FakeJournal(2);
    const { session, sink } = online(journal);
    journal.dispatch(session, 0, 'x', 0);
    const first = journal.dispatch(session, 0, 'x', 1);
    journal.dispatch(session, 0, 'x', 2);
    journal.dispatch(session, 1, 'x', 1);
    assert.deepEqual(session.cursors().acked, [first, 0]);
    const [, one, two, other] = sink.deliveries as [Delivery, Delivery, Delivery, Delivery];
    assert.ok(session.hold(two.tag));
    assert.ok(session.ack(two.tag));
    assert.deepEqual(session.cursors().acked, [first, 0], 'acknowledging a later offset does not move past an earlier one');
    assert.ok(session.ack(one.tag));
    assert.deepEqual(session.cursors().acked, [3, 0]);
    assert.ok(session.ack(other.tag));
    assert.deepEqual(session.cursors().acked, [3, 1]);
    assert.ok(journal.moved > 0, 'acknowledgements report moved cursors');
  });

  test('queued deliveries behind the receive maximum hold the cursor too', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink(1));
    for (let i = 0; i < 4; i += 1) journal.dispatch(session, 0, 'x', 1);
    assert.equal(sink.deliveries.length, 1);
    assert.equal(session.queuedCount, 3);
    assert.ok(session.ack((sink.deliveries[0] as Delivery).tag));
    assert.deepEqual(session.cursors().acked, [1]);
  });

  test('retained deliveries are not tied to a shard position and never hold the cursor', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink(1));
    journal.dispatch(undefined, 0, 'x', 1);
    journal.dispatch(undefined, 0, 'x', 1);
    session.offerRetained({ tag: 0, message: (journal.shards[0]?.[0] as { message: Message }).message, qos: 1, retain: true, redelivered: false, subscriptionIds: undefined, shard: 0, offset: 0 });
    assert.equal(sink.deliveries[0]?.shard, -1);
    assert.deepEqual(session.cursors().acked, [2]);
  });

  test('a session catching up stands at its read position, then at the frontier once caught up', async () => {
    const journal = new FakeJournal(2);
    // Restored at offset 0 (as after a restart), subscribed before the messages it then misses
    // while offline; offset 0 is on a topic it does not want.
    journal.dispatch(undefined, 0, 'y', 1);
    const session = new Session('c', journal.host, [0, undefined]);
    session.setSubscription('x', everything);
    for (const qos of [1, 1, 0, 1] as const) journal.dispatch(session, 0, 'x', qos);
    assert.deepEqual(session.cursors().acked, [0, 0], 'offline: where it will resume');
    const sink = new RecordingSink();
    session.claim(sink);
    session.attach(sink);
    await settle();
    assert.deepEqual(
      sink.deliveries.map((delivery) => delivery.offset),
      [1, 2, 4],
      'read back from offset 0; the QoS 0 message at 3 is not kept for an offline session',
    );
    assert.deepEqual(session.cursors().acked, [1, 0]);
    for (const delivery of sink.deliveries) session.ack(delivery.tag);
    assert.deepEqual(session.cursors().acked, [5, 0]);
    journal.dispatch(session, 0, 'x', 1);
    assert.equal(sink.deliveries.length, 4, 'caught up: live again');
    assert.deepEqual(session.cursors().acked, [5, 0]);
  });

  test('read-back skips messages the access policy keeps from the client, and the cursor still moves past them', async () => {
    const journal = new FakeJournal(1);
    for (const topic of ['open', 'secret', 'open']) journal.dispatch(undefined, 0, topic, 1);
    const session = new Session('c', journal.host, [0]);
    session.setSubscription('#', everything, true);
    journal.unreadable.add('secret');
    const sink = new RecordingSink();
    session.claim(sink);
    session.attach(sink);
    await settle();
    assert.deepEqual(sink.deliveries.map((delivery) => delivery.message.topic), ['open', 'open']);
    for (const delivery of sink.deliveries) session.ack(delivery.tag);
    assert.deepEqual(session.cursors().acked, [3]);
  });

  test('a resumed session does not resend an in-flight message its new client may not read; the cursor moves past it', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal);
    journal.dispatch(session, 0, 'alice/pin', 1);
    journal.dispatch(session, 0, 'open', 1);
    assert.equal(sink.deliveries.length, 2);
    session.detach();
    journal.unreadable.add('alice/pin');
    const next = new RecordingSink();
    session.claim(next);
    session.attach(next);
    assert.deepEqual(next.deliveries.map((delivery) => [delivery.message.topic, delivery.redelivered]), [['open', true]]);
    assert.equal(session.inflightCount, 1);
    for (const delivery of next.deliveries) session.ack(delivery.tag);
    assert.deepEqual(session.cursors().acked, [2]);
  });

  test('detaching does not move the cursor: in-flight and queued deliveries are delivered again later', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink(1));
    for (let i = 0; i < 3; i += 1) journal.dispatch(session, 0, 'x', 1);
    assert.ok(session.ack((sink.deliveries[0] as Delivery).tag));
    const before = session.cursors().acked;
    assert.deepEqual(before, [1]);
    session.detach();
    assert.deepEqual(session.cursors().acked, before);
    journal.dispatch(session, 0, 'x', 1);
    assert.deepEqual(session.cursors().acked, before, 'offline publishes do not move it either');
  });

  test('sent: advances as deliveries go out; a delivery below the sent cursor of a restored session carries DUP', async () => {
    const journal = new FakeJournal(1);
    journal.dispatch(undefined, 0, 'y', 1);
    // Restored after a crash: acknowledged below 0, sent below 3.
    const session = new Session('c', journal.host, [0], [3]);
    session.setSubscription('x', everything);
    for (let i = 0; i < 4; i += 1) journal.dispatch(session, 0, 'x', 1);
    const sink = new RecordingSink();
    session.claim(sink);
    session.attach(sink);
    await settle();
    assert.deepEqual(
      sink.deliveries.map((delivery) => [delivery.offset, delivery.redelivered]),
      [
        [1, true],
        [2, true],
        [3, false],
        [4, false],
      ],
    );
    assert.deepEqual(session.cursors().sent, [5]);
    assert.deepEqual(session.cursors().acked, [1]);
  });
});

describe('acknowledged above the cursor (ackedAbove)', () => {
  test('a session restored from its cursors sends again what was unacknowledged below and among them, and not what was acknowledged above the cursor', async () => {
    const journal = new FakeJournal(2);
    const { session, sink } = online(journal, [], [], new RecordingSink({ copy: true }));
    for (let i = 0; i < 5; i += 1) journal.dispatch(session, 0, 'x', i % 2 === 0 ? 1 : 2);
    journal.dispatch(session, 1, 'x', 1);
    const [d0, d1, d2, d3, d4, other] = sink.deliveries as [Delivery, Delivery, Delivery, Delivery, Delivery, Delivery];
    // Offset 0 stays unacknowledged; 1 completed (PUBREC, PUBCOMP), 2 acknowledged, 3 only PUBREC-ed, 4 unacknowledged.
    // Shard 1 acknowledged in order: its cursor moves, nothing kept above it.
    assert.ok(session.ack(other.tag));
    assert.ok(session.hold(d1.tag) && session.ack(d1.tag));
    assert.ok(session.ack(d2.tag));
    assert.ok(session.hold(d3.tag));
    const cursors = session.cursors();
    assert.deepEqual(cursors.acked, [0, 1]);
    assert.deepEqual(cursors.ackedAbove, [[1, 2], []]);
    assert.deepEqual(cursors.released, [[d3.tag, 0, 3]]);

    const restored = new Session('c', journal.host, cursors.acked, cursors.sent, cursors.released, cursors.ackedAbove);
    restored.setSubscription('#', everything, true);
    const again = new RecordingSink({ copy: true });
    restored.claim(again);
    restored.attach(again);
    await settle();
    assert.deepEqual(again.deliveries.map((delivery) => [delivery.shard, delivery.offset]), [[0, 0], [0, 4]], 'offsets 0 and 4 again; not 1 and 2 (acknowledged), nor 3 (its PUBREL is resent instead)');
    assert.deepEqual(again.resumedHeld, [d3.tag]);
    for (const delivery of [d0, d4]) assert.ok(restored.ack(delivery.tag));
    assert.ok(restored.ack(d3.tag));
    assert.deepEqual(restored.cursors(), { acked: [5, 1], sent: [5, 1] }, 'all acknowledged: the cursor is past them and nothing is kept above it');
    assert.equal(restored.ackedAboveCount, 0);
  });

  test('in-order acknowledgements keep next to nothing, also in a session whose cursors are never read; a long stall keeps at most ACKED_ABOVE_MAX; past the cursor they go', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink({ inFlightMaximum: 4 }));
    // A steady flow acknowledged in order (later deliveries always pending): nothing piles up.
    for (let i = 0; i < 3; i += 1) journal.dispatch(session, 0, 'x', 1);
    for (let i = 0; i < 1000; i += 1) {
      journal.dispatch(session, 0, 'x', 1);
      assert.ok(session.ack((sink.deliveries[i] as Delivery).tag));
    }
    assert.ok(session.ackedAboveCount <= 2 * 64, `in-order acks keep at most a prune batch (${session.ackedAboveCount})`);
    // One delivery stalls while the rest flow past it: the set grows with them, up to its limit.
    const stalled = sink.deliveries[1000] as Delivery;
    const flowing = ACKED_ABOVE_MAX + 100;
    for (let i = 0; i < flowing; i += 1) {
      journal.dispatch(session, 0, 'x', 1);
      assert.ok(session.ack((sink.deliveries[1001 + i] as Delivery).tag));
    }
    assert.equal(session.ackedAboveCount, ACKED_ABOVE_MAX);
    assert.equal(session.cursors().acked[0], stalled.offset);
    // The stalled one acknowledged: the cursor moves to the oldest still pending, past them all.
    assert.ok(session.ack(stalled.tag));
    assert.equal(session.cursors().ackedAbove, undefined);
    assert.equal(session.ackedAboveCount, 0);
  });
});

describe('deliveries a connection cannot take (over its Maximum Packet Size)', () => {
  /** Skips (too large) the payloads given, sends the rest. */
  class SmallSink extends RecordingSink {
    constructor(
      readonly tooLarge: Set<string>,
      inFlightMaximum: number,
    ) {
      super(inFlightMaximum);
    }
    override send(delivery: Delivery): SendResult {
      if (this.tooLarge.has(delivery.message.payload.toString())) return SendResult.Skipped;
      return super.send(delivery);
    }
  }

  test('live, Receive Maximum 1: discarded, counted too-large, settled; the next one is sent and the cursor moves past it', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new SmallSink(new Set(['0:1']), 1));
    for (let i = 0; i < 3; i += 1) journal.dispatch(session, 0, 'x', 1);
    assert.deepEqual(sink.deliveries.map((delivery) => delivery.offset), [0]);
    assert.ok(session.ack((sink.deliveries[0] as Delivery).tag));
    assert.deepEqual(sink.deliveries.map((delivery) => delivery.offset), [0, 2]);
    assert.deepEqual(journal.dropped, ['too-large']);
    assert.ok(session.ack((sink.deliveries[1] as Delivery).tag));
    assert.deepEqual(session.cursors().acked, [3]);
  });

  test('in flight at a reconnect whose connection cannot take it: not kept in flight; what follows is sent', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal);
    journal.dispatch(session, 0, 'x', 1);
    assert.equal(sink.deliveries.length, 1);
    session.detach();
    const small = new SmallSink(new Set(['0:0']), 1);
    session.claim(small);
    session.attach(small);
    assert.equal(session.inflightCount, 0, 'the resend that could not go out is not in flight');
    assert.deepEqual(journal.dropped, ['too-large']);
    journal.dispatch(session, 0, 'x', 1);
    assert.deepEqual(small.deliveries.map((delivery) => delivery.offset), [1]);
    assert.ok(session.ack((small.deliveries[0] as Delivery).tag));
    assert.deepEqual(session.cursors().acked, [2]);
  });
});

// Goal: the neutral acknowledgement calls a front end other than MQTT needs (AMQP basic.nack /
// basic.reject with and without requeue, basic.ack with multiple=true) keep the window, the
// queue and the cursor right. Method: the fake journal above, a window of 2, tags from the sink.
describe('ack / nack / requeue by tag', () => {
  test('nack with requeue sends the delivery again first, redelivered, under the tag the sink assigns again; the cursor waits for it', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink({ inFlightMaximum: 2, copy: true }));
    for (let i = 0; i < 3; i += 1) journal.dispatch(session, 0, 'x', 1);
    const [first, second] = sink.deliveries as [Delivery, Delivery];
    assert.equal(session.queuedCount, 1);
    assert.ok(session.nack(first.tag, true));
    assert.equal(session.nack(12_345, true), false, 'a tag the window does not hold');
    const again = sink.deliveries[2] as Delivery;
    assert.deepEqual([again.offset, again.redelivered], [first.offset, true], 'the requeued one goes out before the queued one');
    assert.ok(again.tag !== 0 && again.tag !== second.tag);
    assert.equal(session.queuedCount, 1);
    assert.deepEqual(session.cursors().acked, [0]);
    assert.ok(session.ack(again.tag));
    assert.ok(session.ack(second.tag));
    assert.deepEqual(session.cursors().acked, [2], 'the queued one is sent now and holds the cursor');
    assert.equal((sink.deliveries[3] as Delivery).offset, 2);
  });

  test('nack without requeue settles the delivery like an ack', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal);
    journal.dispatch(session, 0, 'x', 1);
    assert.ok(session.nack((sink.deliveries[0] as Delivery).tag, false));
    assert.equal(session.inflightCount, 0);
    assert.deepEqual(session.cursors().acked, [1]);
  });

  test('ackThrough acks every outstanding delivery up to the tag and leaves the later and the held ones', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal);
    for (let i = 0; i < 4; i += 1) journal.dispatch(session, 0, 'x', 2);
    const [a, b, c, d] = sink.deliveries as [Delivery, Delivery, Delivery, Delivery];
    assert.ok(session.hold(b.tag));
    assert.ok(session.ackThrough(c.tag));
    assert.equal(session.inflightCount, 2, 'the held one and the last one stay');
    assert.equal(session.ack(a.tag), false);
    assert.equal(session.nack(b.tag, true), false, 'a held delivery cannot be given back');
    assert.deepEqual(session.cursors().acked, [3]);
    assert.deepEqual(session.cursors().released, [[b.tag, 0, b.offset]]);
    assert.ok(session.ack(d.tag));
    assert.ok(session.ack(b.tag));
    assert.equal(session.ackThrough(d.tag), false, 'an unknown tag');
    assert.deepEqual(session.cursors().acked, [4]);
  });

  test('nackThrough with requeue gives back every outstanding delivery up to the tag: sent again in their first order, redelivered, before the queued ones; the held and the later ones stay', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal, [], [], new RecordingSink({ inFlightMaximum: 4, copy: true }));
    for (let i = 0; i < 5; i += 1) journal.dispatch(session, 0, 'x', 2);
    const [a, b, c, d] = sink.deliveries as [Delivery, Delivery, Delivery, Delivery];
    assert.equal(session.queuedCount, 1);
    assert.ok(session.hold(b.tag));
    assert.ok(session.nackThrough(c.tag, true));
    assert.equal(session.nackThrough(12_345, true), false, 'a tag the window does not hold');
    const again = sink.deliveries.slice(4) as Delivery[];
    assert.deepEqual(again.map((delivery) => [delivery.offset, delivery.redelivered]), [[a.offset, true], [c.offset, true]], 'the given-back ones go out first, in their first order; the queued one waits for room');
    assert.equal(session.queuedCount, 1);
    assert.equal(session.inflightCount, 4, 'the held one, the later one and the two sent again');
    assert.deepEqual(session.cursors().acked, [0]);
    assert.deepEqual(session.cursors().released, [[b.tag, 0, b.offset]]);
    for (const delivery of [...again, d]) assert.ok(session.ack(delivery.tag));
    assert.ok(session.ack(b.tag));
    assert.equal((sink.deliveries.at(-1) as Delivery).offset, 4, 'the queued one goes out once there is room');
    assert.deepEqual(session.cursors().acked, [4]);
  });

  test('nackThrough without requeue settles every outstanding delivery up to the tag, like ackThrough', () => {
    const journal = new FakeJournal(1);
    const { session, sink } = online(journal);
    for (let i = 0; i < 3; i += 1) journal.dispatch(session, 0, 'x', 1);
    const [, b, c] = sink.deliveries as [Delivery, Delivery, Delivery];
    assert.ok(session.nackThrough(b.tag, false));
    assert.equal(session.inflightCount, 1);
    assert.deepEqual(session.cursors().acked, [2]);
    assert.ok(session.ack(c.tag));
    assert.deepEqual(session.cursors().acked, [3]);
    assert.equal(sink.deliveries.length, 3, 'nothing is sent again');
  });
});

// Goal: whatever order a consumer acks, nacks (with or without requeue), holds and acks through
// tags in, the session's window and cursor agree with a plain model: the window never exceeds
// its size, the cursor is the lowest offset not yet settled (acked, nacked without requeue, or
// held), held deliveries are the saved `released` list, the settled offsets above the cursor
// (not held) are the saved `ackedAbove` list, and a requeued delivery is sent again marked
// redelivered. Method: fast-check op sequences over the fake journal above (one shard,
// window of 3); the model follows the sink's sends.
test('property: ack / nack / requeue / hold / ackThrough / nackThrough by tag keep the window and the cursor as a plain model says', () => {
  type Op = { kind: 'dispatch'; qos: 1 | 2 } | { kind: 'ack' | 'hold' | 'ackThrough' | 'nack' | 'nackThrough'; pick: number; requeue: boolean };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('dispatch' as const), qos: fc.constantFrom(1 as const, 2 as const) }),
    fc.record({ kind: fc.constantFrom('ack' as const, 'hold' as const, 'ackThrough' as const, 'nack' as const, 'nackThrough' as const), pick: fc.nat(5), requeue: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const journal = new FakeJournal(1);
      const { session, sink } = online(journal, [], [], new RecordingSink({ inFlightMaximum: 3, copy: true }));
      const inflight = new Map<number, { offset: number; qos: number; held: boolean }>();
      const unsettled = new Set<number>();
      const requeued = new Set<number>();
      let seen = 0;
      const follow = (): void => {
        for (; seen < sink.deliveries.length; seen += 1) {
          const delivery = sink.deliveries[seen] as Delivery;
          assert.ok(unsettled.has(delivery.offset), `offset ${delivery.offset} sent while settled`);
          if (requeued.delete(delivery.offset)) assert.ok(delivery.redelivered, 'a requeued delivery is marked redelivered');
          inflight.set(delivery.tag, { offset: delivery.offset, qos: delivery.qos, held: false });
        }
      };
      for (const op of ops) {
        if (op.kind === 'dispatch') {
          unsettled.add(journal.dispatch(session, 0, 'x', op.qos));
        } else {
          const tags = [...inflight.keys()];
          const tag = tags.length === 0 ? 9_999 : (tags[op.pick % tags.length] as number);
          const entry = inflight.get(tag);
          if (op.kind === 'ack') {
            assert.equal(session.ack(tag), entry !== undefined);
            if (entry !== undefined) {
              inflight.delete(tag);
              unsettled.delete(entry.offset);
            }
          } else if (op.kind === 'nack') {
            assert.equal(session.nack(tag, op.requeue), entry !== undefined && !entry.held);
            if (entry !== undefined && !entry.held) {
              inflight.delete(tag);
              if (op.requeue) requeued.add(entry.offset);
              else unsettled.delete(entry.offset);
            }
          } else if (op.kind === 'hold') {
            assert.equal(session.hold(tag), entry !== undefined && entry.qos === 2);
            if (entry !== undefined && entry.qos === 2) {
              entry.held = true;
              unsettled.delete(entry.offset);
            }
          } else if (op.kind === 'ackThrough') {
            assert.equal(session.ackThrough(tag), entry !== undefined);
            if (entry !== undefined) {
              for (const [candidate, value] of [...inflight]) {
                if (!value.held) {
                  inflight.delete(candidate);
                  unsettled.delete(value.offset);
                }
                if (candidate === tag) break;
              }
            }
          } else {
            assert.equal(session.nackThrough(tag, op.requeue), entry !== undefined);
            if (entry !== undefined) {
              for (const [candidate, value] of [...inflight]) {
                if (!value.held) {
                  inflight.delete(candidate);
                  if (op.requeue) requeued.add(value.offset);
                  else unsettled.delete(value.offset);
                }
                if (candidate === tag) break;
              }
            }
          }
        }
        follow();
        assert.equal(session.inflightCount, inflight.size);
        assert.ok(inflight.size <= 3, 'the window holds at most its size');
        const cursors = session.cursors();
        assert.equal(cursors.acked[0], Math.min(journal.frontier[0] as number, ...unsettled));
        const held = [...inflight].filter(([, value]) => value.held).map(([tag, value]) => [tag, 0, value.offset]);
        assert.deepEqual(cursors.released ?? [], held);
        const heldOffsets = new Set(held.map(([, , offset]) => offset));
        const above = Array.from({ length: journal.frontier[0] as number }, (_, offset) => offset).filter((offset) => offset > (cursors.acked[0] as number) && !unsettled.has(offset) && !heldOffsets.has(offset));
        assert.deepEqual(cursors.ackedAbove?.[0] ?? [], above, 'acknowledged above the cursor');
      }
    }),
    { numRuns: numRuns(200), ...replay },
  );
});
