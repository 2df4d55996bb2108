// Shard names become directory names, so they are checked before any path is built from them.
import { JournalErrors } from '../errors.js';

export const SHARD_NAME_MAX_LENGTH = 200;
const SHARD_NAME_PATTERN = /^[A-Za-z0-9._$-]+$/;

export function validateShardName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw JournalErrors.invalidShardName.create({}, String(name), 'must be a non-empty string');
  if (name.length > SHARD_NAME_MAX_LENGTH) throw JournalErrors.invalidShardName.create({}, name, `longer than ${SHARD_NAME_MAX_LENGTH} characters`);
  if (name === '.' || name === '..') throw JournalErrors.invalidShardName.create({}, name, '`.` and `..` are not shard names');
  if (!SHARD_NAME_PATTERN.test(name)) throw JournalErrors.invalidShardName.create({}, name, 'only A-Z a-z 0-9 . _ $ - are allowed (no path separators)');
  if (name.startsWith('.')) throw JournalErrors.invalidShardName.create({}, name, 'must not start with `.` (reserved for journal housekeeping)');
  return name;
}
