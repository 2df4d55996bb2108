// docs/operations.md's configuration reference is the schema's: every setting, its default,
// unit, values and whether it can change while the node runs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { settingsReferenceTable, withReferenceTable } from './settings-reference.js';
import { LIVE_SETTINGS, START_SETTINGS } from './settings.js';

test('docs/operations.md holds the configuration reference made from the schema (npm run docs:settings)', async () => {
  const page = await readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  assert.equal(page, withReferenceTable(page), 'the table in docs/operations.md is stale: run npm run docs:settings');
});

test('the reference lists every setting once and marks exactly the live ones', () => {
  const rows = settingsReferenceTable().split('\n').slice(2);
  assert.equal(rows.length, START_SETTINGS.length);
  const live = rows.filter((row) => row.endsWith('| yes |')).map((row) => /^\| `([a-z-]+)`/.exec(row)?.[1]);
  assert.deepEqual(live.sort(), [...LIVE_SETTINGS].sort());
  assert.match(settingsReferenceTable(), /^\| `max-packet-size` \| 33554432 \| bytes \| 16–268435460 \| restart \|$/m);
});
