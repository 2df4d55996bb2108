// `shardline shard list`: the shards of a data directory, read from its files (audit module),
// so it needs no running node and works beside one.
import { listShardsOnDisk, type ShardOnDisk } from '../../journal/index.js';
import { DEFAULT_DATA_DIR, stringFlag, type Command } from '../command.js';
import { Output } from '../output.js';
import { formatTable, type Column } from '../table.js';

const usage = `
Usage: shardline shard list [--data-dir DIR] [--json]

Lists the shards of a journal data directory by reading its files directly: no running node
is needed, the journal lock is not taken and nothing is written, so it is safe beside a
running node and on a damaged journal.

Flags:
  --data-dir DIR   the journal's data directory (default ./data, as for shardline start)
  --json           print a JSON array, one object per shard: name, config (null when
                   shard.json cannot be read; configError then holds the error code),
                   segmentCount, sizeBytes, startOffset, nextOffset, epoch, recordCount,
                   firstTimestamp, maxTimestamp (ms since epoch; null when empty)
  -h, --help       this text

Columns:
  name         shard name
  start        first offset still stored (the first segment's base offset)
  next         offset the next append gets (after the last valid batch)
  records      next - start; "-" for compacted shards, whose offsets have gaps
  bytes        total size of the segment logs
  segments     number of segment files
  durability   fsync, interval or none, from shard.json ("?" when it cannot be read)
  compacted    yes or no ("?" when shard.json cannot be read)

Exit status: 0 listed; 1 the directory is not a readable journal (SL_JOURNAL_NOT_A_JOURNAL,
SL_JOURNAL_UNSUPPORTED_FORMAT, ...); 2 bad flags.
`;

const COLUMNS: Column[] = [
  { title: 'name' },
  { title: 'start', align: 'right' },
  { title: 'next', align: 'right' },
  { title: 'records', align: 'right' },
  { title: 'bytes', align: 'right' },
  { title: 'segments', align: 'right' },
  { title: 'durability' },
  { title: 'compacted' },
];

function row(shard: ShardOnDisk): string[] {
  const compacted = shard.config === null ? '?' : shard.config.compacted ? 'yes' : 'no';
  return [
    shard.name,
    String(shard.startOffset),
    String(shard.nextOffset),
    shard.recordCount === null ? '-' : String(shard.recordCount),
    String(shard.sizeBytes),
    String(shard.segmentCount),
    shard.config?.durability ?? '?',
    compacted,
  ];
}

export const shardListCommand: Command = {
  path: ['shard', 'list'],
  summary: 'List the shards of a data directory (reads files; safe beside a running node)',
  usage,
  options: { 'data-dir': { type: 'string' }, json: { type: 'boolean' } },
  async run(values) {
    const shards = await listShardsOnDisk(stringFlag(values, 'data-dir', DEFAULT_DATA_DIR));
    const text = values.json === true ? JSON.stringify(shards, null, 2) : shards.length === 0 ? 'no shards' : formatTable(COLUMNS, shards.map(row));
    await new Output().write(`${text}\n`);
    return 0;
  },
};
