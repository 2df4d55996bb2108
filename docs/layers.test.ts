// Goal: the lint enforces what docs/architecture.md promises about layers: imports point down
// only (test files included), an import into another layer goes through its entry point
// (index.js; testing.js from test code only), and running code never imports the test kit.
// Method: ESLint itself, with the project's config, on small sources given the paths they
// would have in the tree.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const ROOT = join(import.meta.dirname, '..');
const eslint = new ESLint({ cwd: ROOT });

async function problems(path: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: join(ROOT, path) });
  return (result?.messages ?? []).map((message) => message.ruleId ?? message.message);
}

describe('layer lint', () => {
  it('refuses an import of another layer\'s internals and takes its entry point', async () => {
    assert.deepEqual(await problems('engine/probe.test.ts', "export { Shard } from '../journal/shard/shard.js';\n"), ['shardline/entry-points']);
    assert.deepEqual(await problems('engine/probe.test.ts', "export { Shard } from '../journal/index.js';\n"), []);
    assert.deepEqual(await problems('protocols/probe.test.ts', "export { MqttServer } from './mqtt/index.js';\n"), [], 'a sub-package of its own layer');
  });

  it('lets test code use a testing.js entry, not running code', async () => {
    assert.deepEqual(await problems('tests/probe.ts', "export { SimulatedDisk } from '../journal/testing.js';\n"), []);
    assert.deepEqual(await problems('engine/probe.test.ts', "export { SimulatedDisk } from '../journal/testing.js';\n"), []);
    const running = new ESLint({ cwd: ROOT, overrideConfig: { languageOptions: { parserOptions: { projectService: false } }, rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' } } });
    const [result] = await running.lintText("export { SimulatedDisk } from '../journal/testing.js';\nexport { sleep } from '../tests/support/kill-child.js';\n", { filePath: join(ROOT, 'engine/probe.ts') });
    assert.deepEqual(result?.messages.map((message) => message.ruleId), ['shardline/entry-points', 'shardline/entry-points']);
  });

  it('refuses an import up the layers, in test files too', async () => {
    assert.deepEqual(await problems('placement/probe.test.ts', "export { Broker } from '../engine/index.js';\n"), ['no-restricted-imports']);
    assert.deepEqual(await problems('journal/probe.test.ts', "export { fnv1a } from '../base/index.js';\n"), []);
  });
});
