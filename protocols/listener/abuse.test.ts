// Unit tests of the abuse-limit building blocks (abuse.ts) on a manual clock: token buckets,
// the connect gate's admit / refuse / drop decisions and its bounded address table, the
// subscription quota, and the log limiter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ManualClock } from '../../tests/support/manual-clock.js';
import { recordingLogger } from '../../tests/support/recording-logger.js';
import { AbuseControl, addressOf, ClientGuard, ConnectGate, LogLimiter, NO_ABUSE_LIMITS, subscriptionQuota, TokenBucket, type AbuseLimits } from './abuse.js';

function limits(overrides: Partial<AbuseLimits>): AbuseLimits {
  return { ...NO_ABUSE_LIMITS, ...overrides };
}

describe('TokenBucket', () => {
  it('allows a burst of its capacity, then refills at its rate, never above capacity', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 10, clock.now());
    for (let i = 0; i < 10; i += 1) assert.equal(bucket.take(1, clock.now()), true, `token ${i}`);
    assert.equal(bucket.take(1, clock.now()), false, 'empty after the burst');
    await clock.advance(100);
    assert.equal(bucket.take(1, clock.now()), true, 'one token per 100 ms at 10/s');
    assert.equal(bucket.take(1, clock.now()), false);
    await clock.advance(60_000);
    assert.equal(bucket.full(clock.now()), true);
    assert.equal(bucket.take(11, clock.now()), false, 'never more than the capacity');
  });

  it('a clock stepping back neither drains nor fills it', () => {
    const bucket = new TokenBucket(1, 1, 10_000);
    assert.equal(bucket.take(1, 10_000), true);
    assert.equal(bucket.take(1, 5_000), false);
    assert.equal(bucket.take(1, 10_500), false, 'half a token only');
    assert.equal(bucket.take(1, 11_000), true);
  });
});

describe('ConnectGate', () => {
  it('is inactive with every limit off', () => {
    assert.equal(new ConnectGate(NO_ABUSE_LIMITS, new ManualClock()).active, false);
  });

  it('per address: admits up to the limit, refuses the headroom (at least 10), drops beyond; release frees a slot', () => {
    const gate = new ConnectGate(limits({ maxConnectionsPerIp: 2 }), new ManualClock());
    const kinds = Array.from({ length: 14 }, () => gate.admit('10.0.0.1').kind);
    assert.deepEqual(kinds, ['admit', 'admit', ...new Array<string>(10).fill('refuse'), 'drop', 'drop']);
    assert.equal(gate.admit('10.0.0.2').kind, 'admit', 'another address is not affected');
    // Every admit is released once, whatever its verdict.
    for (let i = 0; i < 13; i += 1) gate.release('10.0.0.1');
    assert.equal(gate.admit('10.0.0.1').kind, 'admit');
  });

  it('connect rate per address: refusals with a reply up to the rate, then drops; refilled a second later', async () => {
    const clock = new ManualClock();
    const gate = new ConnectGate(limits({ maxConnectRatePerIp: 3 }), clock);
    const kinds = Array.from({ length: 8 }, () => gate.admit('10.0.0.1').kind);
    assert.deepEqual(kinds, ['admit', 'admit', 'admit', 'refuse', 'refuse', 'refuse', 'drop', 'drop']);
    assert.equal(gate.admit('10.0.0.9').kind, 'admit', 'per address');
    await clock.advance(1_000);
    assert.equal(gate.admit('10.0.0.1').kind, 'admit');
  });

  it('global connect rate: every address shares it, refusals say "rate"', () => {
    const gate = new ConnectGate(limits({ maxConnectRate: 2 }), new ManualClock());
    const verdicts = ['a', 'b', 'c', 'd', 'e'].map((address) => gate.admit(address));
    assert.deepEqual(
      verdicts.map((verdict) => verdict.kind),
      ['admit', 'admit', 'refuse', 'refuse', 'drop'],
    );
    const refused = verdicts[2];
    assert.ok(refused?.kind === 'refuse' && refused.refusal.kind === 'rate');
  });

  it('the address table stays bounded: addresses with nothing open and full buckets are swept', async () => {
    const clock = new ManualClock();
    const gate = new ConnectGate(limits({ maxConnectRatePerIp: 5, maxConnectionsPerIp: 5 }), clock);
    for (let round = 0; round < 5; round += 1) {
      for (let i = 0; i < 1_500; i += 1) {
        const address = `10.${round}.${i >> 8}.${i & 255}`;
        gate.admit(address);
        gate.release(address);
      }
      await clock.advance(2_000);
    }
    assert.ok(gate.trackedAddresses <= 3_000, `tracked ${gate.trackedAddresses} addresses after 7,500 distinct ones`);
  });

  it('reads the limits live: off, then on (per address), then a new global rate', () => {
    const live: Partial<AbuseLimits> = {};
    const gate = new ConnectGate(live, new ManualClock());
    assert.equal(gate.active, false);
    live.maxConnectionsPerIp = 1;
    assert.equal(gate.active, true);
    assert.deepEqual([gate.admit('a').kind, gate.admit('a').kind], ['admit', 'refuse']);
    live.maxConnectionsPerIp = 0;
    live.maxConnectRate = 1;
    assert.deepEqual([gate.admit('b').kind, gate.admit('c').kind, gate.admit('d').kind], ['admit', 'refuse', 'drop']);
    live.maxConnectRate = 2;
    assert.deepEqual([gate.admit('e').kind, gate.admit('f').kind, gate.admit('g').kind], ['admit', 'admit', 'refuse'], 'a new rate starts a new full bucket');
  });

  it('without a rate limit, an address is forgotten when its last socket closes', () => {
    const gate = new ConnectGate(limits({ maxConnectionsPerIp: 5 }), new ManualClock());
    gate.admit('x');
    gate.admit('x');
    gate.release('x');
    assert.equal(gate.trackedAddresses, 1);
    gate.release('x');
    assert.equal(gate.trackedAddresses, 0);
  });
});

describe('ClientGuard', () => {
  const log = new LogLimiter(pino({ level: 'silent' }), new ManualClock());

  it('message rate first, then byte rate; both refill', async () => {
    const clock = new ManualClock();
    const guard = new ClientGuard(undefined, limits({ maxPublishRate: 2, maxPublishBytesRate: 100 }), clock, log);
    const client = {};
    assert.equal(guard.publish(client, 60), 'ok');
    assert.equal(guard.publish(client, 60), 'byte-rate');
    assert.equal(guard.publish(client, 0), 'message-rate', 'the refused publish still counted as a message');
    assert.equal(guard.publish({}, 60), 'ok', 'another client has its own buckets');
    await clock.advance(1_000);
    assert.equal(guard.publish(client, 100), 'ok');
  });

  it('reads the limits live: turned on, changed and turned off while clients publish; a refusing guard shares the buckets', () => {
    const clock = new ManualClock();
    const live: Partial<AbuseLimits> = {};
    const guard = new ClientGuard(undefined, live, clock, log);
    const client = {};
    for (let i = 0; i < 100; i += 1) assert.equal(guard.publish(client, 10), 'ok', 'off: no limit');
    live.maxPublishRate = 2;
    assert.deepEqual([1, 2, 3].map(() => guard.publish(client, 10)), ['ok', 'ok', 'message-rate']);
    live.maxPublishRate = 3;
    assert.deepEqual([1, 2, 3, 4].map(() => guard.publish(client, 10)), ['ok', 'ok', 'ok', 'message-rate'], 'a new rate starts a new full bucket');
    const refusing = guard.withRefusal({ kind: 'quota', detail: 'x' });
    assert.equal(refusing.refusal?.kind, 'quota');
    assert.equal(guard.refusal, undefined);
    assert.equal(refusing.publish(client, 10), 'message-rate', 'same buckets');
    live.maxPublishRate = 0;
    assert.equal(guard.publish(client, 10), 'ok');
    live.maxSubscriptionsPerClient = 7;
    assert.equal(guard.maxSubscriptions, 7);
  });

  it('with no publish limits everything is ok', () => {
    const guard = new ClientGuard(undefined, limits({ maxSubscriptionsPerClient: 3 }), new ManualClock(), log);
    for (let i = 0; i < 1_000; i += 1) assert.equal(guard.publish({}, 1_000_000), 'ok');
    assert.equal(guard.maxSubscriptions, 3);
  });
});

describe('subscriptionQuota', () => {
  it('counts new distinct filters only, against what the session holds', () => {
    const check = subscriptionQuota(new Map([['a', 1]]), 3);
    assert.deepEqual(['a', 'b', 'b', 'c', 'd', 'a'].map(check), [true, true, true, true, false, true]);
  });

  it('0 is no limit', () => {
    const check = subscriptionQuota(new Map(), 0);
    assert.ok(Array.from({ length: 100 }, (_, i) => check(`f${i}`)).every(Boolean));
  });
});

describe('LogLimiter', () => {
  it('logs at most perWindow lines per kind per window, then one line with the suppressed count', async () => {
    const { logger, lines } = recordingLogger('warn');
    const clock = new ManualClock();
    const limiter = new LogLimiter(logger, clock, 3, 1_000);
    for (let i = 0; i < 50; i += 1) limiter.warn('flood', { i }, 'hit');
    limiter.warn('other', {}, 'hit');
    await clock.advance(1_000);
    limiter.warn('flood', { i: 50 }, 'hit');
    const flood = lines().filter((line) => line.limit === 'flood');
    assert.deepEqual(
      flood.map((line) => line.suppressed ?? line.i),
      [0, 1, 2, 47, 50],
      'three lines, the count of the 47 suppressed, then a new window',
    );
    assert.equal(lines().filter((line) => line.limit === 'other').length, 1, 'kinds are limited separately');
  });
});

describe('AbuseControl', () => {
  it('accept/release: uncounted while the gate is off, counted once on, dropped far over; refusals carry their guard', () => {
    const live: Partial<AbuseLimits> = {};
    const control = new AbuseControl(live, new ManualClock(), pino({ level: 'silent' }));
    const off = control.accept('a');
    assert.equal(off?.counted, undefined);
    assert.equal(off?.guard, control.guard);
    live.maxConnectionsPerIp = 1;
    const first = control.accept('a');
    assert.equal(first?.counted, 'a');
    assert.equal(first?.guard.refusal, undefined);
    const refused = Array.from({ length: 10 }, () => control.accept('a'));
    assert.ok(refused.every((entry) => entry?.guard.refusal?.kind === 'quota'));
    assert.equal(control.accept('a'), undefined, 'dropped: past 1 + 10');
    control.release(first?.counted);
    for (const entry of refused) control.release(entry?.counted);
    control.release(off?.counted);
    assert.equal(control.gate.trackedAddresses, 0, 'every counted socket released, nothing left');
  });
});

describe('addressOf', () => {
  it('strips the port from IPv4, bracketed and bare IPv6 forms', () => {
    assert.equal(addressOf('127.0.0.1:1883'), '127.0.0.1');
    assert.equal(addressOf('[::1]:1883'), '::1');
    assert.equal(addressOf('::ffff:10.0.0.1:5000'), '::ffff:10.0.0.1');
  });
});
