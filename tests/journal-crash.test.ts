// Real crash test: a child process appends to a journal (fsync durability, 8 appends in
// flight, small segments) and is killed with SIGKILL at a random moment, again and again on the
// same directory.
//
// Goal: every append the child saw acknowledged survives the kill, intact and in order, and
// recovery never serves a damaged record or leaves a gap.
// Method: the child (tests/fixtures/crash-appender.ts) prints "ack BASE LAST DIGEST" after each
// append resolves. The parent waits a random 100-600 ms after "ready", kills the child by pid,
// waits for it to exit, then opens the journal itself and checks: offsets are dense from 0 to
// nextOffset; every record (acknowledged or not) is exactly what the child would have written;
// each writer's appends appear in the order it made them; every acknowledgement of every
// round so far is present with the same digest, and no acknowledged offset was ever handed out
// twice. It closes the journal before the next round. The random delays come from a printed
// seed; CRASH_SEED replays them (the kill timing itself is not deterministic).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { recordingLogger } from './support/recording-logger.js';
import { Journal } from '../journal/index.js';
import type { JournalRecord } from '../journal/index.js';
import { CRASH_SHARD, batchDigest, parseRecordValue, recordKey } from './fixtures/crash-appender.js';
import { runAndKill } from './support/kill-child.js';
import { seededRandom as random } from './support/seeded-random.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-appender.ts');
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 20);
interface Ack {
  last: number;
  digest: string;
  round: number;
}

interface ChildRun {
  acks: { base: number; last: number; digest: string }[];
  readyNextOffset: number;
  errors: string[];
}

/** Starts the child, kills it `delayMs` after it is ready, and returns what it printed. */
async function runChild(directory: string, round: number, delayMs: number): Promise<ChildRun> {
  const result: ChildRun = { acks: [], readyNextOffset: -1, errors: [] };
  await runAndKill({
    script: CHILD,
    args: [directory, String(round)],
    delayMs,
    label: `round ${round}`,
    onLine: (line) => {
      const [kind, a, b, digest] = line.split(' ');
      if (kind === 'ready') {
        result.readyNextOffset = Number(a);
        return true;
      }
      if (kind === 'ack' && digest !== undefined) result.acks.push({ base: Number(a), last: Number(b), digest });
      else result.errors.push(line);
      return false;
    },
  });
  assert.deepEqual(result.errors, [], `round ${round}: the child reported errors`);
  return result;
}

async function readAll(journal: Journal): Promise<JournalRecord[]> {
  const { startOffset, nextOffset } = journal.info(CRASH_SHARD);
  const out: JournalRecord[] = [];
  let next = startOffset;
  for (let pages = 0; next < nextOffset && pages < 100_000; pages += 1) {
    const page = await journal.read(CRASH_SHARD, next, { maxRecords: 10_000, maxBytes: 16 * 1024 * 1024 });
    const last = page[page.length - 1];
    if (last === undefined) break;
    out.push(...page);
    next = last.offset + 1;
  }
  return out;
}

/** Opens the journal as recovery after the kill, checks everything, and closes it. */
async function verify(directory: string, acks: Map<number, Ack>, round: number): Promise<{ nextOffset: number; tornTails: number }> {
  const log = recordingLogger('warn');
  const journal = await Journal.open(directory, { retentionCheckMs: 0, logger: log.logger });
  try {
    const info = journal.info(CRASH_SHARD);
    assert.equal(info.startOffset, 0, `round ${round}: startOffset`);
    const records = await readAll(journal);
    assert.equal(records.length, info.nextOffset, `round ${round}: every offset below nextOffset is readable`);
    const lastPosition = new Map<string, number>();
    records.forEach((record, index) => {
      assert.equal(record.offset, index, `round ${round}: offsets are dense from 0`);
      const identity = parseRecordValue(record.value);
      assert.ok(identity !== null, `round ${round}: offset ${record.offset} holds a value the child never wrote`);
      assert.deepEqual(record.key, recordKey(identity.writer), `round ${round}: key of offset ${record.offset}`);
      const writer = `${identity.run}/${identity.writer}`;
      // A writer's batches (seq) and the records inside each (part, fewer than 4) strictly increase.
      const position = identity.seq * 4 + identity.part;
      const previous = lastPosition.get(writer) ?? -1;
      assert.ok(position > previous, `round ${round}: writer ${writer} seq ${identity.seq} part ${identity.part} is out of order at offset ${record.offset}`);
      lastPosition.set(writer, position);
    });
    for (const [base, ack] of acks) {
      assert.ok(ack.last < info.nextOffset, `round ${round}: acknowledged offsets ${base}-${ack.last} (round ${ack.round}) are gone; nextOffset ${info.nextOffset}`);
      assert.equal(batchDigest(records.slice(base, ack.last + 1)), ack.digest, `round ${round}: acknowledged batch ${base}-${ack.last} (round ${ack.round}) differs`);
    }
    const levels = log.lines();
    assert.deepEqual(levels.filter((entry) => entry.level >= 50).map((entry) => entry.msg), [], `round ${round}: the journal logged errors`);
    return { nextOffset: info.nextOffset, tornTails: levels.filter((entry) => entry.msg === 'recovery cut a damaged tail').length };
  } finally {
    await journal.close();
  }
}

test('acknowledged appends survive SIGKILL at random moments, intact, dense and in order', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 2 ** 31);
  t.diagnostic(`CRASH_SEED=${seed}`);
  const next = random(seed);
  const directory = await mkdtemp(join(tmpdir(), 'shardline-crash-'));
  const acks = new Map<number, Ack>();
  try {
    let nextOffset = 0;
    let tornTails = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      const delayMs = 100 + Math.floor(next() * 500);
      const run = await runChild(directory, round, delayMs);
      assert.ok(run.readyNextOffset >= nextOffset, `round ${round}: the child started at ${run.readyNextOffset}, below the verified ${nextOffset}`);
      for (const ack of run.acks) {
        const reused = acks.get(ack.base);
        assert.equal(reused, undefined, `round ${round}: offset ${ack.base} acknowledged again (first in round ${reused?.round})`);
        acks.set(ack.base, { last: ack.last, digest: ack.digest, round });
      }
      const verified = await verify(directory, acks, round);
      nextOffset = verified.nextOffset;
      tornTails += verified.tornTails;
      t.diagnostic(`round ${round}: killed after ${delayMs} ms, ${run.acks.length} appends acknowledged, ${nextOffset} records recovered${verified.tornTails > 0 ? ', a torn tail cut' : ''}`);
    }
    let acknowledgedRecords = 0;
    for (const [base, ack] of acks) acknowledgedRecords += ack.last - base + 1;
    t.diagnostic(`${ROUNDS} kills, ${acks.size} acknowledged appends holding ${acknowledgedRecords} records, ${nextOffset} records in the shard, ${tornTails} torn tails cut`);
    console.log(`journal-crash: ${acknowledgedRecords} acknowledged records in ${acks.size} appends over ${ROUNDS} kills; ${nextOffset} records in the shard`);
    assert.ok(acknowledgedRecords > 0, 'the child acknowledged appends');
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
