import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fieldTable, longstrValue, type FieldTable } from '../codec/field-table.js';
import { fieldValuesEqual, headersMatch, headersMatchMode, topicMatches } from './matching.js';

describe('topic matching', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.c', false],
    ['a.*', 'a.b.c', false],
    ['*', '', true],
    ['#', '', true],
    ['#', 'a.b.c', true],
    ['a.#', 'a', true],
    ['a.#', 'a.b.c', true],
    ['a.#', 'b.a', false],
    ['#.c', 'a.b.c', true],
    ['#.c', 'c', true],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.x.y.c', true],
    ['a.#.c', 'a.x.y.d', false],
    ['#.#', 'a', true],
    ['*.#', '', true],
    ['*.*', 'a', false],
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
    ['stock.#.nyse', 'stock.nyse', true],
  ];
  for (const [pattern, key, expected] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(key)}`, () => {
      assert.equal(topicMatches(pattern, key), expected);
    });
  }

  it('stays fast with many # against a long key that does not match', () => {
    const pattern = Array.from({ length: 60 }, () => '#').join('.') + '.z';
    const key = Array.from({ length: 120 }, () => 'a').join('.');
    assert.equal(topicMatches(pattern, key), false);
  });
});

describe('headers matching', () => {
  const int = (value: number) => ({ type: 'int32', value }) as const;
  const binding = (entries: Record<string, Parameters<typeof fieldTable>[0][string]>): FieldTable => fieldTable(entries);

  it('all (the default) needs every argument; any needs one', () => {
    const all = binding({ format: longstrValue('pdf'), type: longstrValue('report') });
    const any = binding({ 'x-match': longstrValue('any'), format: longstrValue('pdf'), type: longstrValue('report') });
    const both = fieldTable({ format: longstrValue('pdf'), type: longstrValue('report'), extra: int(1) });
    const one = fieldTable({ format: longstrValue('pdf'), type: longstrValue('log') });
    assert.equal(headersMatch(all, both), true);
    assert.equal(headersMatch(all, one), false);
    assert.equal(headersMatch(any, one), true);
    assert.equal(headersMatch(any, fieldTable({ other: int(1) })), false);
    assert.equal(headersMatch(all, undefined), false);
  });

  it('ignores x- arguments unless x-match is all-with-x / any-with-x', () => {
    const plain = binding({ 'x-match': longstrValue('all'), 'x-tenant': longstrValue('a'), format: longstrValue('pdf') });
    const withX = binding({ 'x-match': longstrValue('all-with-x'), 'x-tenant': longstrValue('a'), format: longstrValue('pdf') });
    const headers = fieldTable({ format: longstrValue('pdf') });
    assert.equal(headersMatch(plain, headers), true);
    assert.equal(headersMatch(withX, headers), false);
    assert.equal(headersMatch(withX, fieldTable({ format: longstrValue('pdf'), 'x-tenant': longstrValue('a') })), true);
  });

  it('all over no arguments matches everything, any over none nothing', () => {
    assert.equal(headersMatch(new Map(), fieldTable({ a: int(1) })), true);
    assert.equal(headersMatch(binding({ 'x-match': longstrValue('any') }), fieldTable({ a: int(1) })), false);
  });

  it('a void argument asks only for presence; values compare by value across integer widths', () => {
    assert.equal(headersMatch(binding({ flag: { type: 'void' } }), fieldTable({ flag: longstrValue('anything') })), true);
    assert.equal(headersMatch(binding({ n: int(1) }), fieldTable({ n: { type: 'int8', value: 1 } })), true);
    assert.equal(headersMatch(binding({ n: int(1) }), fieldTable({ n: { type: 'int64', value: 1n } })), true);
    assert.equal(headersMatch(binding({ n: int(1) }), fieldTable({ n: int(2) })), false);
    assert.equal(headersMatch(binding({ n: int(1) }), fieldTable({ n: longstrValue('1') })), false);
  });

  it('names an unknown x-match as invalid', () => {
    assert.equal(headersMatchMode(binding({ 'x-match': longstrValue('some') })), undefined);
    assert.equal(headersMatchMode(new Map()), 'all');
  });

  it('compares nested arrays and tables', () => {
    const a = { type: 'array', value: [int(1), longstrValue('x')] } as const;
    const b = { type: 'array', value: [{ type: 'uint8', value: 1 }, longstrValue('x')] } as const;
    assert.equal(fieldValuesEqual(a, b), true);
    assert.equal(fieldValuesEqual({ type: 'table', value: fieldTable({ k: int(1) }) }, { type: 'table', value: fieldTable({ k: int(2) }) }), false);
  });
});
