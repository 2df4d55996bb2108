import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { packageInfo, satisfiesNodeRange } from './package-info.js';

describe('packageInfo', () => {
  it('reads the version and the Node range from the package.json at the repository root', () => {
    const root = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string; engines: { node: string } };
    assert.deepEqual(packageInfo(), { name: 'shardline', version: root.version, nodeRange: root.engines.node });
  });
});

describe('satisfiesNodeRange', () => {
  const range = '^20.19.0 || ^22.13.0 || >=24';
  for (const [version, expected] of [
    ['20.19.0', true],
    ['v20.20.2', true],
    ['20.18.3', false],
    ['21.7.0', false],
    ['22.12.0', false],
    ['22.13.0', true],
    ['23.1.0', false],
    ['24.0.0', true],
    ['26.1.0', true],
    ['18.20.0', false],
  ] as const) {
    it(`${version} ${expected ? 'satisfies' : 'does not satisfy'} ${range}`, () => {
      assert.equal(satisfiesNodeRange(version, range), expected);
    });
  }
  it('>=20 and * forms', () => {
    assert.equal(satisfiesNodeRange('20.0.0', '>=20'), true);
    assert.equal(satisfiesNodeRange('19.9.9', '>=20'), false);
    assert.equal(satisfiesNodeRange('1.0.0', '*'), true);
  });
});
