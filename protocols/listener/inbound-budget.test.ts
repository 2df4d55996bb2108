// Unit tests of the node-wide inbound budget (inbound-budget.ts).
//
// Goal: granted bytes never exceed the limit (except one oversized packet alone); grants follow
// the order of the requests; and however the requests interleave, every connection that keeps
// sending eventually gets its packet through: a simulated node where every connection wants a
// packet at once, the budget is exhausted, and holders finish only after being granted, always
// drains (no deadlock, no starvation).
// Method: hand-written cases, then fast-check over random packet sizes, limits and orders of
// completion (FC_SEED / FC_PATH replay a failure).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InboundBudget, type InboundReservation } from './inbound-budget.js';
import { replay } from '../../tests/support/fast-check.js';

describe('InboundBudget', () => {
  it('grants at once while it fits, then queues; a release grants the waiting in order', () => {
    const budget = new InboundBudget(100);
    const granted: string[] = [];
    const a = budget.reserve(60, () => granted.push('a'));
    const b = budget.reserve(50, () => granted.push('b'));
    const c = budget.reserve(10, () => granted.push('c'));
    assert.equal(a.state, 'granted');
    assert.equal(b.state, 'waiting', '60 + 50 is over 100');
    assert.equal(c.state, 'waiting', 'c would fit, but b asked first: no overtaking');
    assert.deepEqual(budget.stats, { limitBytes: 100, reservedBytes: 60, reservedPeakBytes: 60, waiting: 2, waitedTotal: 2, grantedTotal: 1 });
    budget.release(a);
    assert.deepEqual(granted, ['b', 'c']);
    assert.equal(budget.stats.reservedBytes, 60);
    assert.equal(budget.stats.waiting, 0);
    budget.release(b);
    budget.release(c);
    budget.release(c);
    assert.equal(budget.stats.reservedBytes, 0, 'a second release changes nothing');
    assert.equal(budget.stats.reservedPeakBytes, 60);
  });

  it('a waiting reservation released (its connection closed) leaves the queue and unblocks the next', () => {
    const budget = new InboundBudget(100);
    const granted: string[] = [];
    const a = budget.reserve(90, () => granted.push('a'));
    const big = budget.reserve(50, () => granted.push('big'));
    budget.reserve(5, () => granted.push('small'));
    budget.release(big);
    assert.deepEqual(granted, ['small'], '90 + 5 fits once the head has gone');
    assert.equal(budget.stats.waiting, 0);
    budget.release(a);
  });

  it('a packet larger than the whole budget is granted when nothing else is reserved, and then alone', () => {
    const budget = new InboundBudget(100);
    const granted: string[] = [];
    const small = budget.reserve(10, () => granted.push('small'));
    const huge = budget.reserve(500, () => granted.push('huge'));
    const after = budget.reserve(10, () => granted.push('after'));
    assert.equal(huge.state, 'waiting');
    budget.release(small);
    assert.deepEqual(granted, ['huge'], 'alone, so it can finish');
    assert.equal(after.state, 'waiting', 'nothing joins an over-limit reservation');
    budget.release(huge);
    assert.deepEqual(granted, ['huge', 'after']);
    budget.release(after);
  });

  it('a lower limit applies to the next grants, a higher one grants the waiting at once', () => {
    const budget = new InboundBudget(100);
    const a = budget.reserve(80, () => undefined);
    let waitingGranted = false;
    const b = budget.reserve(40, () => (waitingGranted = true));
    budget.setLimit(200);
    assert.equal(waitingGranted, true);
    budget.setLimit(50);
    const c = budget.reserve(1, () => undefined);
    assert.equal(c.state, 'waiting', '120 reserved is over the new limit of 50');
    budget.release(a);
    budget.release(b);
    assert.equal(c.state, 'granted');
    budget.release(c);
    assert.throws(() => budget.setLimit(0), RangeError);
    assert.throws(() => budget.reserve(0, () => undefined), RangeError);
  });

  it('every connection wanting a packet at once, the budget exhausted: all packets get through, in request order, never over the limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 1200 }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        (limit, sizes, picks) => {
          const budget = new InboundBudget(limit);
          const order: number[] = [];
          // Each connection asks for its packet; the granted ones are "receiving".
          const receiving = new Map<number, InboundReservation>();
          const reservations = sizes.map((bytes, connection) => {
            const reservation = budget.reserve(bytes, () => {
              order.push(connection);
              receiving.set(connection, reservation);
            });
            if (reservation.state === 'granted') {
              order.push(connection);
              receiving.set(connection, reservation);
            }
            return reservation;
          });
          let step = 0;
          // A holder finishes its packet (in an order fast-check picks) and releases. Bounded:
          // each round finishes one packet, so there are at most sizes.length rounds.
          for (let round = 0; round <= sizes.length && receiving.size > 0; round += 1) {
            const stats = budget.stats;
            const held = [...receiving.values()];
            assert.ok(stats.reservedBytes <= limit || held.length === 1, `over the limit with ${held.length} holders: ${stats.reservedBytes} > ${limit}`);
            const holders = [...receiving.keys()];
            const finishing = holders[(picks[step % picks.length] as number) % holders.length] as number;
            step += 1;
            budget.release(receiving.get(finishing) as InboundReservation);
            receiving.delete(finishing);
          }
          assert.equal(receiving.size, 0, 'nobody left holding budget');
          assert.ok(
            reservations.every((reservation) => reservation.state === 'released'),
            'every packet was granted and finished (a waiting one was never released by the loop)',
          );
          assert.deepEqual(order, sizes.map((_, connection) => connection), 'granted in the order asked');
          assert.deepEqual({ reserved: budget.stats.reservedBytes, waiting: budget.stats.waiting }, { reserved: 0, waiting: 0 });
          assert.ok(budget.stats.reservedPeakBytes <= Math.max(limit, ...sizes));
        },
      ),
      { numRuns: 300, ...replay },
    );
  });
});
