// Human renderings of admin API answers for `shardline ctl`. Pure: values in, text out.
import { formatTable, type Column } from '../table.js';
import type { Page } from './admin-client.js';

/** Two aligned columns, name and value, for one object (overview, shard info, config). */
export function formatFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`.trimEnd()).join('\n');
}

/** Epoch ms as a UTC time to the second; "-" when absent. */
export function formatTime(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

export function formatDuration(totalSeconds: number): string {
  if (!Number.isFinite(totalSeconds) || totalSeconds < 0) return '-';
  let rest = Math.floor(totalSeconds);
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3_600);
  rest -= hours * 3_600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  const parts = [days > 0 ? `${days}d` : '', hours > 0 ? `${hours}h` : '', minutes > 0 ? `${minutes}m` : '', `${seconds}s`].filter((part) => part !== '');
  return parts.join(' ');
}

/** Bytes in binary units to one decimal (`512 B`, `16.0 KiB`, `2.0 GiB`). */
export function formatBytes(bytes: number | null | undefined): string {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A value from JSON as one table cell: strings bare, null/absent as "-", the rest as JSON. */
export function cell(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Shortens to `max` characters and makes control characters visible, so one item stays one line. */
export function oneLine(text: string, max = 48): string {
  const visible = JSON.stringify(text).slice(1, -1);
  return visible.length <= max ? visible : `${visible.slice(0, max - 1)}…`;
}

/**
 * A table of one page of a list, with a line saying which part of the list it shows when the
 * list is longer than the page; `empty` when there is nothing at all.
 */
export function formatPage<T>(page: Page<T>, columns: readonly Column[], row: (item: T) => string[], empty: string): string {
  if (page.items.length === 0) {
    const offset = page.offset ?? 0;
    return page.total > 0 ? `${empty} at offset ${offset} (${page.total} in all)` : empty;
  }
  const table = formatTable(columns, page.items.map(row));
  const offset = page.offset ?? 0;
  const shownEnd = offset + page.items.length;
  if (offset === 0 && shownEnd >= page.total) return table;
  return `${table}\n\nshowing ${offset + 1}-${shownEnd} of ${page.total} (--offset / --limit for the rest)`;
}
