// JournalWatch: the write gate's journal-unavailable condition follows the remote journal.
//
// Goal: a store call that fails as unreachable closes the gate at once (a refusal is not a
// failure of reachability); only a probe that answers opens it again; probes back off from
// retryFirstMs doubling to retryMaxMs while the journal is away and run every probeIntervalMs
// while it answers; stop() ends the probing.
// Method: a MemoryShardStore whose calls fail with SL_REMOTE_UNAVAILABLE while `down` is set,
// counting list() calls (the probe); a manual clock fires the probe timers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { ShardInfo } from '../../journal/index.js';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ShardModelErrors } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { JournalWatch } from './journal-watch.js';
import { WriteGate } from './write-gate.js';

const logger = pino({ level: 'silent' });

class SwitchableStore extends MemoryShardStore {
  down = false;
  probes: number[] = [];
  constructor(private readonly manualClock: ManualClock) {
    super();
  }
  override async list(): Promise<ShardInfo[]> {
    this.probes.push(this.manualClock.now());
    if (this.down) throw ShardModelErrors.remoteUnavailable.create({}, 'test', 'stopped');
    return super.list();
  }
  override async info(name: string): Promise<ShardInfo> {
    if (this.down) throw ShardModelErrors.remoteUnavailable.create({}, 'test', 'stopped');
    return super.info(name);
  }
}

function setup(): { clock: ManualClock; inner: SwitchableStore; gate: WriteGate; watch: JournalWatch } {
  const clock = new ManualClock();
  const inner = new SwitchableStore(clock);
  const gate = new WriteGate();
  const watch = JournalWatch.start({ store: inner, gate, clock, logger, address: '10.0.0.5:1771', probeIntervalMs: 1_000, retryFirstMs: 100, retryMaxMs: 800 });
  return { clock, inner, gate, watch };
}

describe('JournalWatch', () => {
  test('an unreachable call closes the gate at once; a refused call does not', async () => {
    const { inner, gate, watch } = setup();
    await inner.create('s', {});
    await assert.rejects(watch.store.info('missing'), { code: 'SL_JOURNAL_SHARD_NOT_FOUND' });
    assert.equal(gate.open, true);
    inner.down = true;
    await assert.rejects(watch.store.info('s'), { code: 'SL_REMOTE_UNAVAILABLE' });
    assert.deepEqual(gate.blocks.map((block) => block.reason), ['journal-unavailable']);
    assert.match(gate.blocks[0]?.detail ?? '', /10\.0\.0\.5:1771/);
    watch.stop();
  });

  test('probes back off while the journal is away and open the gate when one answers', async () => {
    const { clock, inner, gate, watch } = setup();
    const start = clock.now();
    inner.down = true;
    await clock.advance(1_000);
    assert.equal(gate.open, false, 'the first probe failed');
    await clock.advance(100 + 200 + 400 + 800 + 800);
    await settle();
    assert.deepEqual(inner.probes.map((at) => at - start), [1_000, 1_100, 1_300, 1_700, 2_500, 3_300]);
    inner.down = false;
    // A successful call does not open the gate by itself: only a probe does.
    await watch.store.info('$none').catch(() => undefined);
    assert.equal(gate.open, false);
    await clock.advance(800);
    assert.equal(gate.open, true);
    const before = inner.probes.length;
    await clock.advance(3_000);
    assert.equal(inner.probes.length, before + 3, 'every probeIntervalMs while it answers');
    watch.stop();
    await clock.advance(10_000);
    assert.equal(inner.probes.length, before + 3, 'no probes after stop()');
  });
});
