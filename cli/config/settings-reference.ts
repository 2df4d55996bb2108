// The settings table of docs/operations.md ("Configuration reference"), made from the schema so
// it cannot drift: `npm run docs:settings` writes it, and a test checks the page holds it.
import { formatDefault, isLiveSetting, START_SETTINGS, type SettingSpec } from './settings.js';

export const REFERENCE_START = '<!-- settings-reference:start (npm run docs:settings writes this table) -->';
export const REFERENCE_END = '<!-- settings-reference:end -->';

function range(spec: SettingSpec): string {
  const kind = spec.kind;
  switch (kind.type) {
    case 'integer':
      return kind.max === undefined ? `>= ${kind.min}` : `${kind.min}–${kind.max}`;
    case 'enum':
    case 'list':
      return kind.values.join(', ');
    case 'boolean':
      return 'true, false';
    default:
      return spec.valueName;
  }
}

export function settingsReferenceTable(): string {
  const rows = (START_SETTINGS as readonly SettingSpec[]).map((spec) => `| \`${spec.key}\` | ${formatDefault(spec).replaceAll('|', '\\|')} | ${spec.unit ?? '—'} | ${range(spec).replaceAll('|', '\\|')} | ${isLiveSetting(spec.key) ? 'yes' : 'restart'} |`);
  return ['| Setting | Default | Unit | Values | Live |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** The page with its reference block replaced by the current table. */
export function withReferenceTable(page: string): string {
  const start = page.indexOf(REFERENCE_START);
  const end = page.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new Error(`the page has no ${REFERENCE_START} ... ${REFERENCE_END} block`);
  return `${page.slice(0, start + REFERENCE_START.length)}\n${settingsReferenceTable()}\n${page.slice(end)}`;
}
