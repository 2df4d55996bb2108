// The AMQP resource alarm's decision: the write gate's blocks and the memory bound each raise it,
// with a reason a client can show; nothing raises it when both are clear or the bound is off.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alarmReason } from './resource-alarm.js';

describe('AMQP resource alarm', () => {
  it('is clear below the memory bound with the write gate open, and with the bound off', () => {
    assert.equal(alarmReason({ writeBlocks: [], heldBytes: 999, memoryLimitBytes: 1000 }), undefined);
    assert.equal(alarmReason({ writeBlocks: [], heldBytes: 10 ** 12, memoryLimitBytes: 0 }), undefined);
  });

  it('rises at the memory bound, on low disk and on an unreachable journal, naming each', () => {
    assert.match(alarmReason({ writeBlocks: [], heldBytes: 1000, memoryLimitBytes: 1000 }) ?? '', /^low on memory \(AMQP queues hold 1000 bytes, amqp-memory-limit-bytes is 1000\)$/);
    assert.equal(alarmReason({ writeBlocks: [{ reason: 'disk-low' }], heldBytes: 0, memoryLimitBytes: 1000 }), 'low on disk');
    assert.equal(alarmReason({ writeBlocks: [{ reason: 'journal-unavailable' }, { reason: 'disk-low' }], heldBytes: 0, memoryLimitBytes: 0 }), 'journal unavailable; low on disk');
  });

  it('keeps the reason within a short string (255 bytes)', () => {
    const reason = alarmReason({ writeBlocks: Array.from({ length: 40 }, () => ({ reason: 'disk-low' as const })), heldBytes: 0, memoryLimitBytes: 0 }) ?? '';
    assert.ok(Buffer.byteLength(reason) <= 255 && reason.startsWith('low on disk'));
  });
});
