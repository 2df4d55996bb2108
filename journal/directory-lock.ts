// The data directory lock (DIR/journal.lock): one process at a time may have a journal open.
//
// Node has no flock/fcntl, so the lock is a file naming its holder, and a holder is judged by
// what the OS says about it. A pid alone is not enough: after a crash the killed process can
// still be exiting (a SIGKILL waits for an fdatasync in progress), and after a container or host
// restart the recorded pid may belong to another live process. So the file holds
//   {"pid": N, "startTime": "ticks", "bootId": "uuid"}
// (startTime: field 22 of /proc/N/stat, the process's start in clock ticks since boot; bootId:
// /proc/sys/kernel/random/boot_id), and the holder is alive only when the boot is the same, a
// process N exists, it started at that tick and it is not a zombie (which has closed its files).
// Without /proc (not Linux) only the pid is checked, as is a lock written by an older version
// (a bare pid).
//
// Taking the lock: the record is written to a private file and hard-linked to journal.lock, so
// the lock appears with its content at once (a reader never sees it empty) and only one of
// several contenders creates it. A stale lock is first renamed away (one contender wins the
// rename) and checked to be the one judged stale. A live holder is waited for, up to a bound,
// polling; the wait is logged once with the holder's pid.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { JournalErrors, ioError } from './errors.js';
import type { JournalFileSystem } from './file-system.js';
import { nodeFileSystem } from './node-file-system.js';

export const LOCK_FILE = 'journal.lock';
/** How often a waiting open looks at the lock again. */
const LOCK_POLL_MS = 100;

export interface LockRecord {
  pid: number;
  /** Undefined in a lock written by an older version (a bare pid). */
  startTime?: string;
  bootId?: string;
}

/** What the OS says about a process, or undefined when it has no process of that pid. */
export interface ProcessState {
  startTime: string | undefined;
  zombie: boolean;
}

/** How the lock looks at the system (the real one reads /proc; tests may pass another). */
export interface ProcessProbe {
  bootId(): Promise<string | undefined>;
  /** Undefined: no such process. */
  process(pid: number): Promise<ProcessState | undefined>;
}

/** The lock file's record; undefined when it is not one (empty, garbage). */
export function parseLockRecord(text: string): LockRecord | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed) };
  try {
    const parsed = JSON.parse(trimmed) as Partial<LockRecord>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return undefined;
    return { pid: parsed.pid as number, ...(typeof parsed.startTime === 'string' ? { startTime: parsed.startTime } : {}), ...(typeof parsed.bootId === 'string' ? { bootId: parsed.bootId } : {}) };
  } catch {
    return undefined;
  }
}

/** Whether the holder a record names is still running (see the header for the rules). */
export function holderAlive(record: LockRecord, bootId: string | undefined, state: ProcessState | undefined): boolean {
  if (record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId) return false;
  if (state === undefined || state.zombie) return false;
  if (record.startTime !== undefined && state.startTime !== undefined && record.startTime !== state.startTime) return false;
  return true;
}

/** The fields of /proc/PID/stat this lock reads; the command name may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcessState | undefined {
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  // Fields after the name start with field 3 (state); starttime is field 22.
  const fields = text.slice(end + 2).split(' ');
  const startTime = fields[19];
  if (fields[0] === undefined || startTime === undefined) return undefined;
  return { startTime, zombie: fields[0] === 'Z' || fields[0] === 'X' };
}

export const procProbe: ProcessProbe = {
  async bootId() {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined))?.trim();
  },
  async process(pid) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? null : undefined));
    if (stat === null) return undefined;
    if (stat !== undefined) return parseProcStat(stat);
    // No /proc here: the pid is all there is to go by.
    try {
      process.kill(pid, 0);
      return { startTime: undefined, zombie: false };
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM' ? { startTime: undefined, zombie: false } : undefined;
    }
  },
};

export interface LockOptions {
  /** How long to wait for a live holder before SL_JOURNAL_LOCKED. */
  waitMs: number;
  logger: Logger;
  probe?: ProcessProbe;
  /** Where the data directory is; default: the real disk. */
  fileSystem?: JournalFileSystem;
}

/** Takes the lock of `directory` for this process; waits for a live holder up to `waitMs`. */
export async function acquireDirectoryLock(directory: string, options: LockOptions): Promise<void> {
  const probe = options.probe ?? procProbe;
  const fs = options.fileSystem ?? nodeFileSystem;
  const path = join(directory, LOCK_FILE);
  const bootId = await probe.bootId();
  const own = await probe.process(process.pid);
  const record: LockRecord = { pid: process.pid, ...(own?.startTime === undefined ? {} : { startTime: own.startTime }), ...(bootId === undefined ? {} : { bootId }) };
  const draft = join(directory, `${LOCK_FILE}.${process.pid}`);
  await fs.writeFile(draft, Buffer.from(`${JSON.stringify(record)}\n`)).catch((error: unknown) => {
    throw ioError('lock', draft, error);
  });
  const deadline = Date.now() + options.waitMs;
  let waitLogged = false;
  try {
    for (;;) {
      try {
        await fs.link(draft, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('lock', path, error);
      }
      const text = await readLock(fs, path);
      // Gone between the link and the read: try the link again.
      if (text === undefined) continue;
      const holder = parseLockRecord(text);
      const alive = holder !== undefined && holder.pid !== process.pid && holderAlive(holder, bootId, await probe.process(holder.pid));
      if (!alive) {
        await removeStale(fs, path, text);
        continue;
      }
      if (Date.now() >= deadline) throw JournalErrors.locked.create({}, directory, holder.pid, options.waitMs / 1000);
      if (!waitLogged) {
        options.logger.warn({ path, holderPid: holder.pid, waitSeconds: options.waitMs / 1000 }, `waiting for the data directory lock held by process ${holder.pid} (lock-wait-seconds)`);
        waitLogged = true;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(LOCK_POLL_MS, Math.max(1, deadline - Date.now()))));
    }
  } finally {
    await fs.unlink(draft).catch(() => undefined);
  }
}

/**
 * Removes a lock judged stale. Renamed away first, so of two processes that judged it stale only
 * one removes it; should the renamed file turn out to be another's fresh lock (it was replaced
 * between the read and the rename), it is put back.
 */
async function removeStale(fs: JournalFileSystem, path: string, judged: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}`;
  try {
    await fs.rename(path, aside);
  } catch (error) {
    // Another process removed it first; any other failure would make the caller loop forever.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('remove stale lock', path, error);
  }
  const moved = await fs.readFile(aside).then((bytes) => bytes.toString('utf8'), () => judged);
  if (moved !== judged) await fs.link(aside, path).catch(() => undefined);
  await fs.unlink(aside).catch(() => undefined);
}

/** The lock file's text; undefined when there is none. */
async function readLock(fs: JournalFileSystem, path: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(path)).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('read lock', path, error);
  }
}

/** Gives the lock up (only this process's own). */
export async function releaseDirectoryLock(directory: string, fs: JournalFileSystem = nodeFileSystem): Promise<void> {
  const path = join(directory, LOCK_FILE);
  const holder = parseLockRecord(await fs.readFile(path).then((bytes) => bytes.toString('utf8'), () => ''));
  if (holder?.pid === process.pid) await fs.unlink(path).catch(() => undefined);
}
