// docs/amqp.md's method table must list exactly the methods the codec's table defines, with
// their ids: a method added to protocols/amqp/codec/spec.ts without a row (or a row whose ids
// drifted) fails here.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { METHODS } from '../protocols/amqp/index.js';

test('docs/amqp.md lists every AMQP method with its class and method ids', async () => {
  const page = await readFile(new URL('./amqp.md', import.meta.url), 'utf8');
  const rows = [...page.matchAll(/^\| `([a-z-]+\.[a-z-]+)` \| (\d+)\.(\d+) \|/gm)].map((match) => `${match[1]} ${match[2]}.${match[3]}`);
  assert.deepEqual(rows, METHODS.map((def) => `${def.name} ${def.classId}.${def.methodId}`));
});
