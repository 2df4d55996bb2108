import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SHARD_CONFIG, resolveShardConfig } from './shard-config.js';
import { validateShardName } from './shard-name.js';

function code(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('shard settings and names', () => {
  it('fills defaults and keeps given values', () => {
    assert.deepEqual(resolveShardConfig(), DEFAULT_SHARD_CONFIG);
    assert.equal(resolveShardConfig({ durability: 'none', segmentBytes: 4096 }).segmentBytes, 4096);
  });

  it('names the bad setting', () => {
    assert.equal(code(() => resolveShardConfig({ fsyncIntervalMs: 0 })), 'SL_JOURNAL_INVALID_CONFIG');
    assert.equal(code(() => resolveShardConfig({ maxRecordBytes: 100 * 1024 * 1024, maxBatchBytes: 1024 * 1024 })), 'SL_JOURNAL_INVALID_CONFIG');
    assert.equal(code(() => resolveShardConfig({ retentionBytes: -1 })), 'SL_JOURNAL_INVALID_CONFIG');
  });

  it('accepts system shard names and refuses path tricks', () => {
    for (const name of ['$sessions', 'mqtt.data-07', 'A_b']) assert.equal(validateShardName(name), name);
    for (const name of ['..', '.', '../x', 'a/b', 'a\\b', '.hidden', '', 'x'.repeat(201), 'sp ace']) {
      assert.equal(code(() => validateShardName(name)), 'SL_JOURNAL_INVALID_SHARD_NAME', name);
    }
  });
});
