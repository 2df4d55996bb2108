// Aligned text tables for human output. Pure: rows in, lines out.

export interface Column {
  title: string;
  /** Numbers read best right-aligned. */
  align?: 'left' | 'right';
}

export function formatTable(columns: readonly Column[], rows: readonly string[][]): string {
  const widths = columns.map((column, index) => Math.max(column.title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((column, index) => {
        const cell = cells[index] ?? '';
        const width = widths[index] ?? 0;
        return column.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.title)), ...rows.map(line)].join('\n');
}
