// docs/errors.md must list exactly the error codes the code defines: a new code without a row,
// or a row for a code that is gone, fails here.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { errorRegistry } from '../base/index.js';
import { AUDIT_PROBLEMS } from '../journal/index.js';
import '../shard-model/index.js';
import '../protocols/mqtt/index.js';
import '../protocols/kafka/index.js';
import '../protocols/amqp/index.js';
import '../admin/index.js';
import '../placement/service/index.js';
import '../node/placement-storage/index.js';
import '../node/index.js';

test('docs/errors.md lists every error code and no other', async () => {
  const page = await readFile(new URL('./errors.md', import.meta.url), 'utf8');
  const documented = new Set([...page.matchAll(/^\| `(SL_[A-Z_]+)` \|/gm)].map((match) => match[1]));
  const defined = new Set([...errorRegistry.keys(), ...Object.values(AUDIT_PROBLEMS).map((problem) => problem.code)]);
  assert.ok(defined.size > 10, 'the registries loaded');
  assert.deepEqual([...defined].filter((code) => !documented.has(code)), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((code) => code !== undefined && !defined.has(code)), [], 'codes in docs/errors.md that no code defines');
});
