// Journal error codes, and the wrapping of file-system failures into them. The registry itself
// (ShardlineError, defineError) lives in base/; it is re-exported here so existing callers of
// journal/errors.js keep working.
import { defineError, ShardlineError, type ErrorContext } from '../base/index.js';

export { defineError, errorRegistry, isShardlineError, ShardlineError, type ErrorContext } from '../base/index.js';

export const JournalErrors = {
  invalidShardName: defineError({
    code: 'SL_JOURNAL_INVALID_SHARD_NAME',
    meaning: 'A shard name is empty, too long, `.` or `..`, or holds a character outside [A-Za-z0-9._$-] (such as a path separator).',
    fix: 'Use 1-200 characters from A-Z a-z 0-9 . _ $ -, not `.` or `..`.',
    message: (name: string, why: string) => `invalid shard name ${JSON.stringify(name)}: ${why}`,
  }),
  shardNotFound: defineError({
    code: 'SL_JOURNAL_SHARD_NOT_FOUND',
    meaning: 'The named shard does not exist in this journal.',
    fix: 'Create it first, or check the name with `shardline shard list`.',
    message: (name: string) => `shard ${JSON.stringify(name)} does not exist`,
  }),
  shardExists: defineError({
    code: 'SL_JOURNAL_SHARD_EXISTS',
    meaning: 'A shard with this name already exists.',
    fix: 'Pick another name, or open the existing shard.',
    message: (name: string) => `shard ${JSON.stringify(name)} already exists`,
  }),
  notAJournal: defineError({
    code: 'SL_JOURNAL_NOT_A_JOURNAL',
    meaning: 'The data directory is not empty and has no journal marker file (shardline-journal.json), or a shard directory has no shard.json.',
    fix: 'Point --data-dir at an empty directory or at an existing Shardline journal.',
    message: (path: string, why: string) => `${path} is not a Shardline journal: ${why}`,
  }),
  unsupportedFormat: defineError({
    code: 'SL_JOURNAL_UNSUPPORTED_FORMAT',
    meaning: 'A journal, index or batch carries a format version this build does not read.',
    fix: 'Run a Shardline version that supports this format version.',
    message: (what: string, version: number, supported: number) =>
      `${what} has format version ${version}; this build reads version ${supported}`,
  }),
  corruptBatch: defineError({
    code: 'SL_JOURNAL_CORRUPT_BATCH',
    meaning: 'A stored batch failed its checksum or structure check while being read; its records are not returned.',
    fix: 'Run `shardline shard verify` to locate the damage; restore the shard from a replica or backup.',
    message: (why: string) => `corrupt batch: ${why}`,
  }),
  offsetOutOfRange: defineError({
    code: 'SL_JOURNAL_OFFSET_OUT_OF_RANGE',
    meaning: 'A read or truncation asked for an offset outside [startOffset, nextOffset].',
    fix: 'Read from an offset inside the range reported by `info` (startOffset .. nextOffset).',
    message: (offset: number, startOffset: number, nextOffset: number) =>
      `offset ${offset} is outside the shard's range [${startOffset}, ${nextOffset}]`,
  }),
  recordTooLarge: defineError({
    code: 'SL_JOURNAL_RECORD_TOO_LARGE',
    meaning: 'An appended record (or the batch of one append) is larger than the shard allows.',
    fix: 'Send smaller records, or raise the shard setting maxRecordBytes.',
    message: (bytes: number, limit: number) =>
      `record of ${bytes} bytes exceeds maxRecordBytes=${limit}`,
  }),
  overloaded: defineError({
    code: 'SL_JOURNAL_OVERLOADED',
    meaning: 'The shard\'s queue of appends waiting for the disk is full (the disk is slower than the writers).',
    fix: 'Wait for outstanding appends before sending more, or raise the shard setting maxQueuedAppendBytes.',
    message: (queuedBytes: number, limit: number) =>
      `append queue holds ${queuedBytes} bytes, more than maxQueuedAppendBytes=${limit} allows; retry after outstanding appends finish`,
  }),
  keyRequired: defineError({
    code: 'SL_JOURNAL_KEY_REQUIRED',
    meaning: 'A record without a key was appended to a compacted shard, where the key decides what survives.',
    fix: 'Give every record of a compacted shard a key.',
    message: (index: number) => `record #${index} has no key, but the shard is compacted`,
  }),
  staleEpoch: defineError({
    code: 'SL_JOURNAL_STALE_EPOCH',
    meaning: 'An append carried a leader epoch lower than one already in the shard: the writer has been deposed.',
    fix: 'Fetch the current leader and epoch and retry there.',
    message: (epoch: number, current: number) => `append with leader epoch ${epoch} is older than the shard's epoch ${current}`,
  }),
  closed: defineError({
    code: 'SL_JOURNAL_CLOSED',
    meaning: 'The journal or shard was closed or deleted while the operation ran or before it started.',
    fix: 'Reopen the journal; a deleted shard must be created again.',
    message: (what: string) => `${what} is closed`,
  }),
  invalidConfig: defineError({
    code: 'SL_JOURNAL_INVALID_CONFIG',
    meaning: 'A shard or journal setting has a value outside its allowed range.',
    fix: 'Correct the named setting; docs/journal-format.md lists the settings and their ranges.',
    message: (setting: string, value: unknown, rule: string) =>
      `invalid ${setting}=${JSON.stringify(value)}: ${rule}`,
  }),
  invalidArgument: defineError({
    code: 'SL_JOURNAL_INVALID_ARGUMENT',
    meaning: 'An operation got an argument of the wrong type or range (a negative offset, a non-buffer value).',
    fix: 'Pass the argument as documented.',
    message: (argument: string, value: unknown, rule: string) =>
      `invalid ${argument}=${JSON.stringify(value)}: ${rule}`,
  }),
  locked: defineError({
    code: 'SL_JOURNAL_LOCKED',
    meaning: 'Another live process holds the data directory lock (journal.lock), and still did after the wait for it (lock-wait-seconds).',
    fix: 'Stop the other process, or use another --data-dir; raise --lock-wait-seconds if the previous process needs longer to exit.',
    message: (path: string, pid: number, waitedSeconds: number) => `${path} is in use by process ${pid}${waitedSeconds > 0 ? ` (waited ${waitedSeconds} s, --lock-wait-seconds)` : ''}`,
  }),
  diskFull: defineError({
    code: 'SL_JOURNAL_DISK_FULL',
    meaning: 'The file system had no room for an append (ENOSPC or EDQUOT). That append failed and the shard was cut back to its last durable record: its offsets stay dense and nothing acknowledged was touched. The shard refuses appends with this error for a second, then the next append reopens it; appends work again once space is freed.',
    fix: 'Free disk space (lower data-retention or data-retention-bytes, delete other files, grow the volume); the node resumes by itself. See docs/operations.md, "Disk space".',
    message: (operation: string, path: string, cause: string) => `${operation} ${path} failed, the file system is full: ${cause}; the append was not stored`,
  }),
  io: defineError({
    code: 'SL_JOURNAL_IO',
    meaning: 'The operating system refused a file operation (permission denied, I/O error; a full disk is `SL_JOURNAL_DISK_FULL`). When a write or fdatasync of an append failed, the shard was cut back to its last durable record and refuses appends with this error for a second; the next append after that reopens it (after a failed sync the page cache cannot be trusted, as Kafka and PostgreSQL also hold).',
    fix: 'Read the cause (errno) in the message; free space, fix permissions or replace the failing disk, then retry. Run `shardline shard verify` on the data directory after repeated EIO.',
    message: (operation: string, path: string, cause: string) => `${operation} ${path} failed: ${cause}`,
  }),
};

/** Wraps an fs failure once, at the file boundary, so callers see one coded error. */
export function ioError(operation: string, path: string, cause: unknown, context: ErrorContext = {}): ShardlineError {
  if (cause instanceof ShardlineError) return cause;
  const text = cause instanceof Error ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}` : String(cause);
  if (isNoSpace(cause)) return JournalErrors.diskFull.withCause(cause, context, operation, path, text);
  return JournalErrors.io.withCause(cause, context, operation, path, text);
}

/** ENOSPC (no blocks left) and EDQUOT (the user's quota is used up) both mean "no room to write". */
export function isNoSpace(cause: unknown): boolean {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
