// The `auto-subscribe` and `rewrite` sections as `shardline start` reads them: the example in
// docs/configuration.md resolves and parses, and a bad entry is a UsageError naming the file
// and the entry (so the node exits 2 before opening anything).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UsageError } from '../command.js';
import { extrasRules } from './extras-rules.js';
import { resolveStartSettings } from './settings.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function configFile(text: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-extras-rules-'));
  directories.push(directory);
  const file = join(directory, 'shardline.toml');
  await writeFile(file, text);
  return file;
}

test('the rule example in docs/configuration.md resolves and parses', async () => {
  const page = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const block = /^```toml rules\n([\s\S]*?)^```$/m.exec(page);
  assert.ok(block !== null, 'the example block is there');
  const settings = await resolveStartSettings({ config: await configFile(block[1] ?? '') }, {});
  const rules = extrasRules(settings);
  assert.deepEqual(rules.autoSubscribe.map((rule) => rule.filter), ['devices/${clientid}/commands']);
  assert.deepEqual(rules.rewrite.map((rule) => [rule.action, rule.dest]), [
    ['publish', 'v2/$1'],
    ['subscribe', 'devices/${clientid}/$1'],
  ]);
});

test('no config file: no rules', async () => {
  assert.deepEqual(extrasRules(await resolveStartSettings({}, {})), { autoSubscribe: [], rewrite: [] });
});

test('a bad entry is a UsageError naming the file and the entry', async () => {
  const file = await configFile('[[auto-subscribe]]\nfilter = "a/${clientid}"\n\n[[auto-subscribe]]\nfilter = "b/#"\nqos = 7\n');
  const settings = await resolveStartSettings({ config: file }, {});
  assert.throws(
    () => extrasRules(settings),
    (error: unknown) => error instanceof UsageError && error.message === `config file ${file}: auto-subscribe[1].qos: must be an integer from 0 to 2, got 7`,
  );
});
