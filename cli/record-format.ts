// How `shardline shard dump` prints a record. Pure: a record in, one line out.
//
// ndjson: {"offset","timestamp","epoch","key","keyEncoding","value","valueEncoding","headers"}
// where bytes that are valid UTF-8 are printed as text (encoding "utf8") and others as base64
// (encoding "base64"); a null key or value is null with encoding null. Header keys are text
// already; header values follow the same rule as values.
import { isUtf8 } from 'node:buffer';
import type { JournalRecord } from '../journal/index.js';

type BytesEncoding = 'utf8' | 'base64';

interface PrintedBytes {
  text: string | null;
  encoding: BytesEncoding | null;
}

function printBytes(bytes: Buffer | null): PrintedBytes {
  if (bytes === null) return { text: null, encoding: null };
  return isUtf8(bytes) ? { text: bytes.toString('utf8'), encoding: 'utf8' } : { text: bytes.toString('base64'), encoding: 'base64' };
}

export function ndjsonLine(record: JournalRecord): string {
  const key = printBytes(record.key);
  const value = printBytes(record.value);
  return `${JSON.stringify({
    offset: record.offset,
    timestamp: record.timestamp,
    epoch: record.epoch,
    key: key.text,
    keyEncoding: key.encoding,
    value: value.text,
    valueEncoding: value.encoding,
    headers: record.headers.map((header) => {
      const printed = printBytes(header.value);
      return { key: header.key, value: printed.text, valueEncoding: printed.encoding };
    }),
  })}\n`;
}

// The table streams, so its columns have fixed widths instead of fitting the widest cell.
const KEY_WIDTH = 24;
const VALUE_WIDTH = 64;

export const TABLE_HEADER = `${tableCells(['offset', 'timestamp', 'epoch', 'key', 'value', 'headers'])}\n`;

export function tableLine(record: JournalRecord): string {
  return `${tableCells([
    String(record.offset),
    isoTime(record.timestamp),
    String(record.epoch),
    cut(shown(record.key), KEY_WIDTH),
    cut(shown(record.value), VALUE_WIDTH),
    String(record.headers.length),
  ])}\n`;
}

function tableCells([offset, timestamp, epoch, key, value, headers]: string[]): string {
  return [
    (offset ?? '').padStart(12),
    (timestamp ?? '').padEnd(24),
    (epoch ?? '').padStart(5),
    (key ?? '').padEnd(KEY_WIDTH),
    (value ?? '').padEnd(VALUE_WIDTH),
    headers ?? '',
  ].join('  ');
}

/** Text in JSON quotes (so control characters and spaces are visible), base64 marked, null bare. */
function shown(bytes: Buffer | null): string {
  const printed = printBytes(bytes);
  if (printed.text === null) return 'null';
  return printed.encoding === 'utf8' ? JSON.stringify(printed.text) : `base64:${printed.text}`;
}

/** ISO-8601, or the bare number for timestamps past what Date can show (year 275760). */
function isoTime(timestamp: number): string {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? String(timestamp) : date.toISOString();
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
