// base/limits.ts: a limit table is checked where it is defined, and the values made from it
// (defaults, a pick out of a larger settings object) hold every limit of the table and no other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineLimits, limitDefaults, limitField, pickLimits, withinLimit, type LimitSpec } from './limits.js';

const spec = (overrides: Partial<LimitSpec>): LimitSpec => ({ name: 'max-things', unit: 'count', default: 10, min: 0, max: 100, live: false, doc: 'things', ...overrides });

describe('limit tables', () => {
  it('refuses a table with a default outside its bounds, bounds out of order, a repeated or non-kebab-case name', () => {
    assert.throws(() => defineLimits([spec({ default: 101 })]), /default 101 is outside/);
    assert.throws(() => defineLimits([spec({ default: -1 })]), /outside/);
    assert.throws(() => defineLimits([spec({ min: 5, max: 4, default: 5 })]), /out of order/);
    assert.throws(() => defineLimits([spec({}), spec({})]), /defined twice/);
    assert.throws(() => defineLimits([spec({ name: 'maxThings' })]), /kebab-case/);
    assert.doesNotThrow(() => defineLimits([spec({ max: undefined, default: Number.MAX_SAFE_INTEGER })]));
  });

  it('defaults and picks by camelCase name, every limit of the table and nothing else', () => {
    const table = defineLimits([
      { name: 'max-packet-bytes', unit: 'bytes', default: 1024, min: 16, live: false, doc: 'packets' },
      { name: 'connect-timeout-ms', unit: 'ms', default: 5000, min: 1, max: 60_000, live: true, doc: 'hello' },
    ]);
    assert.equal(limitField('connect-timeout-ms'), 'connectTimeoutMs');
    assert.deepEqual(limitDefaults(table), { maxPacketBytes: 1024, connectTimeoutMs: 5000 });
    const settings = { maxPacketBytes: 2048, connectTimeoutMs: 10, logLevel: 'info' };
    assert.deepEqual(pickLimits(table, settings), { maxPacketBytes: 2048, connectTimeoutMs: 10 });
  });

  it('withinLimit: integers within the bounds only', () => {
    const limit = spec({});
    assert.equal(withinLimit(limit, 0), true);
    assert.equal(withinLimit(limit, 100), true);
    assert.equal(withinLimit(limit, 101), false);
    assert.equal(withinLimit(limit, 1.5), false);
  });
});
