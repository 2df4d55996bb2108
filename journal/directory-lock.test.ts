// The data directory lock (directory-lock.ts).
//
// Goal: a lock is respected only while the process it names is the one that wrote it and is
// still running (same boot, same pid, same start time, not a zombie), so a restart right after a
// kill -9 and a pid reused by another process (a container restart) both get the directory; a
// live holder is waited for up to the bound, with one log line naming it, then SL_JOURNAL_LOCKED.
// Method: the rules as functions over parsed /proc text; then real lock files naming real
// processes: this test's parent and a `sleep` child this test starts (and ends, by its pid).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { recordingLogger } from '../tests/support/recording-logger.js';
import { holderAlive, LOCK_FILE, parseLockRecord, parseProcStat, procProbe } from './directory-lock.js';
import { Journal } from './journal.js';

const directories: string[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function journalDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-lock-'));
  directories.push(directory);
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  await journal.close();
  return directory;
}

async function sleeper(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  return child as ChildProcess & { pid: number };
}

async function startTimeOf(pid: number): Promise<string> {
  const state = await procProbe.process(pid);
  assert.ok(state?.startTime !== undefined, `no /proc/${pid}/stat start time (these tests need Linux)`);
  return state.startTime;
}

async function writeLock(directory: string, record: object): Promise<void> {
  await writeFile(join(directory, LOCK_FILE), JSON.stringify(record));
}

describe('the lock rules', () => {
  it('reads the state and start time of /proc/PID/stat, also when the command name holds spaces and parentheses', () => {
    const stat = '4242 (node (worker) 1) Z 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 11 0 987654 1000 10 18446744073709551615';
    assert.deepEqual(parseProcStat(stat), { startTime: '987654', zombie: true });
    assert.deepEqual(parseProcStat(stat.replace(') Z ', ') S ')), { startTime: '987654', zombie: false });
    assert.equal(parseProcStat('garbage'), undefined);
  });

  it('parses a lock record, the bare pid of older versions, and nothing from garbage', () => {
    assert.deepEqual(parseLockRecord('{"pid":12,"startTime":"34","bootId":"b"}\n'), { pid: 12, startTime: '34', bootId: 'b' });
    assert.deepEqual(parseLockRecord('77\n'), { pid: 77 });
    for (const text of ['', 'x', '{"pid":0}', '{"pid":"3"}']) assert.equal(parseLockRecord(text), undefined, text);
  });

  it('a holder is alive only on the same boot, with the same start time, and not a zombie', () => {
    const record = { pid: 9, startTime: '100', bootId: 'boot-a' };
    assert.equal(holderAlive(record, 'boot-a', { startTime: '100', zombie: false }), true);
    assert.equal(holderAlive(record, 'boot-b', { startTime: '100', zombie: false }), false, 'another boot');
    assert.equal(holderAlive(record, 'boot-a', { startTime: '101', zombie: false }), false, 'the pid is another process now');
    assert.equal(holderAlive(record, 'boot-a', { startTime: '100', zombie: true }), false, 'killed, not yet reaped');
    assert.equal(holderAlive(record, 'boot-a', undefined), false, 'no such process');
    assert.equal(holderAlive({ pid: 9 }, 'boot-a', { startTime: '5', zombie: false }), true, 'a bare pid: only the pid can be checked');
  });
});

describe('the lock on real processes', () => {
  it('a lock naming a live unrelated process (this test\'s parent, a sleep child) with another start time is stale: the journal opens', async () => {
    const directory = await journalDirectory();
    const bootId = await procProbe.bootId();
    const child = await sleeper();
    for (const pid of [process.ppid, child.pid]) {
      const startTime = await startTimeOf(pid);
      await writeLock(directory, { pid, startTime: `${startTime}1`, bootId });
      const journal = await Journal.open(directory, { retentionCheckMs: 0, lockWaitMs: 5_000 });
      const record = parseLockRecord(await readFile(join(directory, LOCK_FILE), 'utf8'));
      assert.equal(record?.pid, process.pid, 'the lock is ours now');
      assert.equal(record?.startTime, await startTimeOf(process.pid));
      await journal.close();
    }
    child.kill('SIGKILL');
    assert.deepEqual((await readdir(directory)).filter((name) => name.startsWith(LOCK_FILE)), [], 'no lock and no leftovers after close');
  });

  it('a live holder is waited for up to lockWaitMs, with one log line naming its pid, then SL_JOURNAL_LOCKED', async () => {
    const directory = await journalDirectory();
    const child = await sleeper();
    await writeLock(directory, { pid: child.pid, startTime: await startTimeOf(child.pid), bootId: await procProbe.bootId() });
    const { logger, lines } = recordingLogger();
    const started = Date.now();
    await assert.rejects(Journal.open(directory, { retentionCheckMs: 0, lockWaitMs: 400, logger }), (error: { code?: string; message?: string }) => {
      assert.equal(error.code, 'SL_JOURNAL_LOCKED');
      return true;
    });
    assert.ok(Date.now() - started >= 400, `gave up after ${Date.now() - started} ms, before the bound`);
    const waits = lines().filter((line) => line.holderPid !== undefined);
    assert.equal(waits.length, 1, JSON.stringify(lines()));
    assert.equal(waits[0]?.holderPid, child.pid);
    child.kill('SIGKILL');
  });

  it('a holder that exits during the wait: the open goes on', async () => {
    const directory = await journalDirectory();
    const child = await sleeper();
    await writeLock(directory, { pid: child.pid, startTime: await startTimeOf(child.pid), bootId: await procProbe.bootId() });
    const { logger, waitFor } = recordingLogger();
    const opening = Journal.open(directory, { retentionCheckMs: 0, lockWaitMs: 30_000, logger });
    // The barrier: the open is waiting (its log line), then the holder goes.
    await waitFor((line) => line.holderPid === child.pid);
    child.kill('SIGKILL');
    const journal = await opening;
    await journal.close();
  });
});
