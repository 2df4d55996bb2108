// `shardline shard dump`: prints one shard's records from its files (audit module), as NDJSON
// for tools or a table for people.
import { readRecordsOnDisk, type ReadOnDiskOptions } from '../../journal/index.js';
import { DEFAULT_DATA_DIR, integerFlag, stringFlag, UsageError, type Command } from '../command.js';
import { lazyProgress } from '../lazy-progress.js';
import { Output } from '../output.js';
import { ndjsonLine, TABLE_HEADER, tableLine } from '../record-format.js';

const FORMATS = ['ndjson', 'table'] as const;
type Format = (typeof FORMATS)[number];

const usage = `
Usage: shardline shard dump [--data-dir DIR] --shard NAME [--from-offset N] [--to-offset N]
                            [--from-time T] [--to-time T] [--format ndjson|table]

Prints the records of one shard in offset order, read directly from its segment files: no
running node is needed, the journal lock is not taken and nothing is written. Every batch
passes its checksum and order checks before any of its records is printed; at a damaged
batch the dump stops with SL_JOURNAL_CORRUPT_BATCH (shard, segment file and byte position
on stderr, exit status 1) after the records before it, and prints none from that batch.
To read past the damage, start again with --from-offset after the damaged batch (shard
verify locates it). A torn tail on the active segment (a write in progress, or one cut by a
crash) ends the dump without an error.

Ranges (all optional; a record is printed when it is in every range given):
  --from-offset N   first offset to print (inclusive)
  --to-offset N     offset to stop before (exclusive)
  --from-time T     earliest record timestamp to print (inclusive)
  --to-time T       timestamp to stop before (exclusive)
  T is milliseconds since the Unix epoch (1714564800000) or ISO-8601: a date (2024-05-01,
  midnight UTC) or a date and time with a zone (2024-05-01T12:00:00Z,
  2024-05-01T14:00:00.250+02:00). Times filter rather than bound the read: writers set
  record timestamps, so they need not rise with offsets.

Flags:
  --data-dir DIR    the journal's data directory (default ./data, as for shardline start)
  --shard NAME      the shard to dump (required)
  --format ndjson   (default) one JSON object per line:
                      {"offset":7,"timestamp":1714564800000,"epoch":0,
                       "key":"user-1","keyEncoding":"utf8","value":"3q2+7w==","valueEncoding":"base64",
                       "headers":[{"key":"trace","value":"abc","valueEncoding":"utf8"}]}
                    bytes that are valid UTF-8 are printed as text (encoding "utf8"), others
                    as base64 (encoding "base64"); a null key, or the null value of a
                    tombstone, is null with encoding null
  --format table    columns for reading: offset, ISO time, epoch, key, value, header count;
                    text in quotes, other bytes as base64:..., long keys and values cut
  -h, --help        this text

A progress bar is drawn on stderr when it is a terminal and stdout is not (when the records
go to a file or a pipe). When the reader stops early (| head), the dump ends quietly.

Exit status: 0 done; 1 damage (SL_JOURNAL_CORRUPT_BATCH), an unknown shard
(SL_JOURNAL_SHARD_NOT_FOUND) or a directory that is not a readable journal; 2 bad flags,
such as a time that is neither epoch ms nor ISO-8601.
`;

// Date.parse also takes free-form dates whose meaning depends on the platform, and reads a
// date-time without a zone as local time; only these unambiguous forms are accepted.
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms or ISO-8601 (see usage); undefined when the flag is absent. */
function timeFlag(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw === 'string' && /^\d+$/.test(raw)) return integerFlag(values, name, 0);
  const parsed = typeof raw === 'string' && (ISO_DATE.test(raw) || ISO_DATE_TIME.test(raw)) ? Date.parse(raw) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new UsageError(`--${name} must be epoch milliseconds or ISO-8601 such as 2024-05-01 or 2024-05-01T12:00:00Z (a time needs a zone), got ${JSON.stringify(raw)}`);
  }
  return parsed;
}

function offsetFlag(values: Record<string, unknown>, name: string): number | undefined {
  return values[name] === undefined ? undefined : integerFlag(values, name, 0);
}

function formatFlag(values: Record<string, unknown>): Format {
  const format = stringFlag(values, 'format', 'ndjson');
  if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be ${FORMATS.join(' or ')}, got ${JSON.stringify(format)}`);
  return format as Format;
}

function rangeFlags(values: Record<string, unknown>): ReadOnDiskOptions {
  return {
    fromOffset: offsetFlag(values, 'from-offset'),
    toOffset: offsetFlag(values, 'to-offset'),
    fromTime: timeFlag(values, 'from-time'),
    toTime: timeFlag(values, 'to-time'),
  };
}

export const shardDumpCommand: Command = {
  path: ['shard', 'dump'],
  summary: 'Print a shard\'s records by offset or time range (reads files; safe beside a running node)',
  usage,
  options: {
    'data-dir': { type: 'string' },
    shard: { type: 'string' },
    'from-offset': { type: 'string' },
    'to-offset': { type: 'string' },
    'from-time': { type: 'string' },
    'to-time': { type: 'string' },
    format: { type: 'string' },
  },
  async run(values) {
    const dataDir = stringFlag(values, 'data-dir', DEFAULT_DATA_DIR);
    const shard = stringFlag(values, 'shard');
    const range = rangeFlags(values);
    const format = formatFlag(values);
    const line = format === 'table' ? tableLine : ndjsonLine;
    const output = new Output();
    // Records printed to the terminal would be mixed with a bar drawn there.
    const progress = lazyProgress('dump', process.stdout.isTTY !== true);
    try {
      if (format === 'table' && !(await output.write(TABLE_HEADER))) return 0;
      for await (const record of readRecordsOnDisk(dataDir, shard, { ...range, onProgress: progress.onProgress })) {
        if (!(await output.write(line(record)))) break;
      }
    } finally {
      progress.stop();
    }
    return 0;
  },
};
