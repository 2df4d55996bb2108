// docs/mqtt.md must not drift from the tests it cites: every test reference in its tables names
// a test file that exists and test titles that are in it, every status is one of the four the
// page defines, every supported or partial feature without a test is listed under "Gaps", and
// the limits table states the defaults docs/configuration.md states.
//
// A reference is a code span `FILE: TITLE › TITLE …`: FILE is `mqtt-publish` for
// tests/mqtt-publish.test.ts, or a path without `.test.ts` when it has a slash
// (`engine/broker`, `property-tests/broker-replay`). Each TITLE is matched against the first
// argument of a describe(/it(/test(/badCase( call in that file, as written in the source (a
// template literal keeps its `${…}` expressions; a title equal to TITLE is preferred), and the
// titles must appear in source order (describe before its it). Inside a TITLE, `…` stands for any text, so titles built from
// loop variables can be shortened: `QoS …: publisher flow` matches
// `QoS ${qos}: publisher flow, delivery at QoS ${qos}, subscriber flow`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

const ROOT = new URL('../', import.meta.url);
const PAGE = readFileSync(new URL('docs/mqtt.md', ROOT), 'utf8');
const STATUS = /^(supported|not supported yet|n\/a|partial \(.+\))$/;

interface Row {
  table: string;
  cells: string[];
  line: number;
}

/** Splits a table row on the pipes outside code spans. */
function splitRow(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let inCode = false;
  for (const char of line.trim().replace(/^\|/, '').replace(/\|$/, '')) {
    if (char === '`') inCode = !inCode;
    if (char === '|' && !inCode) {
      cells.push(cell.trim());
      cell = '';
    } else cell += char;
  }
  cells.push(cell.trim());
  return cells;
}

/** The body rows of every table whose last header cell is "Tests", with the header's first cell. */
function testTables(page: string): Row[] {
  const rows: Row[] = [];
  const lines = page.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const header = lines[i] as string;
    if (!header.startsWith('|') || !/^\|[\s:|-]+\|$/.test(lines[i + 1] ?? '')) continue;
    const names = splitRow(header);
    if (names.at(-1) !== 'Tests') continue;
    const table = names.join(' | ');
    for (i += 2; i < lines.length && (lines[i] as string).startsWith('|'); i += 1) {
      const cells = splitRow(lines[i] as string);
      assert.equal(cells.length, names.length, `docs/mqtt.md line ${i + 1}: ${cells.length} cells, the table "${table}" has ${names.length} columns`);
      rows.push({ table, cells, line: i + 1 });
    }
  }
  return rows;
}

/** First arguments of describe/it/test/badCase calls, as written (template expressions kept). */
function titlesIn(source: string): Array<{ title: string; at: number }> {
  const titles: Array<{ title: string; at: number }> = [];
  for (const match of source.matchAll(/\b(?:describe|it|test|badCase)\(\s*(['"`])/g)) {
    const quote = match[1] as string;
    let depth = 0;
    let title = '';
    for (let i = (match.index as number) + match[0].length; i < source.length; i += 1) {
      const char = source[i] as string;
      if (char === '\\') {
        title += source[i + 1] ?? '';
        i += 1;
      } else if (quote === '`' && depth === 0 && char === '$' && source[i + 1] === '{') {
        depth = 1;
        title += '${';
        i += 1;
      } else if (depth > 0) {
        // Inside ${…}: nested strings and templates end with the braces that opened them.
        if (char === '{') depth += 1;
        else if (char === '}') depth -= 1;
        title += char;
      } else if (char === quote) break;
      else title += char;
    }
    titles.push({ title, at: match.index as number });
  }
  return titles;
}

function fileOf(name: string): string {
  return name.includes('/') ? `${name}.test.ts` : `tests/${name}.test.ts`;
}

/** Whether the `…`-separated pieces of `wanted` occur in `title` in order. */
function titleMatches(title: string, wanted: string): boolean {
  let from = 0;
  for (const piece of wanted.split('…').map((part) => part.trim()).filter((part) => part.length > 0)) {
    const at = title.indexOf(piece, from);
    if (at < 0) return false;
    from = at + piece.length;
  }
  return true;
}

const sources = new Map<string, Array<{ title: string; at: number }> | undefined>();

/** Undefined when the reference resolves, else why not. */
function unresolved(reference: string): string | undefined {
  const colon = reference.indexOf(': ');
  if (colon < 0) return 'not of the form FILE: TITLE';
  const file = fileOf(reference.slice(0, colon));
  if (!sources.has(file)) {
    const url = new URL(file, ROOT);
    sources.set(file, existsSync(url) ? titlesIn(readFileSync(url, 'utf8')) : undefined);
  }
  const titles = sources.get(file);
  if (titles === undefined) return `${file} does not exist`;
  let after = -1;
  for (const part of reference.slice(colon + 2).split('›').map((text) => text.trim())) {
    // A title equal to the part wins over one that merely contains it ('CONNECT' names
    // describe('CONNECT'), not the first title mentioning CONNECT).
    const found = titles.find(({ title, at }) => at > after && title === part) ?? titles.find(({ title, at }) => at > after && titleMatches(title, part));
    if (found === undefined) return `no title in ${file} (after the previous part) matches "${part}"`;
    after = found.at;
  }
  return undefined;
}

function referencesIn(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] as string);
}

function section(page: string, heading: string): string {
  const start = page.search(new RegExp(`^## ${heading}\\s*$`, 'm'));
  assert.ok(start >= 0, `docs/mqtt.md has a "${heading}" section`);
  const body = page.indexOf('\n', start) + 1;
  const next = page.slice(body).search(/^#{1,2} /m);
  return next < 0 ? page.slice(start) : page.slice(start, body + next);
}

test('the reference checker finds real titles and refuses made-up ones', () => {
  assert.equal(unresolved('mqtt-publish: QoS …: publisher flow, delivery at QoS'), undefined);
  assert.equal(unresolved('mqtt-bad-input: protocol violations › a second CONNECT'), undefined);
  assert.equal(unresolved('engine/broker: sessions › takeover: the older connection is closed'), undefined);
  assert.match(unresolved('mqtt-publish: a title nobody wrote') ?? '', /no title/);
  assert.match(unresolved('mqtt-nothing: anything') ?? '', /does not exist/);
  // Order: the it() of a describe comes after it, not before.
  assert.match(unresolved('mqtt-connect: keep-alive › client identifiers') ?? '', /no title/);
});

test('docs/mqtt.md: every test reference names an existing test', () => {
  const rows = testTables(PAGE);
  assert.ok(rows.length >= 60, `the tables have ${rows.length} rows; the conformance table alone should have more`);
  const problems: string[] = [];
  for (const { cells, line } of rows) {
    const cell = cells.at(-1) as string;
    const references = referencesIn(cell);
    if (cell === '—') continue;
    if (references.length === 0) problems.push(`line ${line}: the Tests cell is neither "—" nor test references: ${cell}`);
    for (const reference of references) {
      const why = unresolved(reference);
      if (why !== undefined) problems.push(`line ${line}: \`${reference}\`: ${why}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('docs/mqtt.md: conformance statuses are the defined ones; untested features are listed as gaps', () => {
  // Gap bullets wrap: compare with whitespace runs collapsed.
  const gaps = section(PAGE, 'Gaps').replace(/\s+/g, ' ');
  const problems: string[] = [];
  const conformance = testTables(PAGE).filter(({ table }) => table === 'Feature | 3.1.1 | 5.0 | Tests');
  assert.ok(conformance.length >= 50, `${conformance.length} conformance rows`);
  for (const { cells, line } of conformance) {
    const [feature, v311, v5, tests] = cells as [string, string, string, string];
    for (const status of [v311, v5]) if (!STATUS.test(status)) problems.push(`line ${line}: status "${status}" is not supported / partial (…) / not supported yet / n/a`);
    const claimed = [v311, v5].some((status) => status === 'supported' || status.startsWith('partial'));
    if (claimed && tests === '—' && !gaps.includes(feature.replace(/\s+/g, ' '))) problems.push(`line ${line}: "${feature}" has no test and is not listed under Gaps`);
  }
  assert.deepEqual(problems, []);
});

test('docs/mqtt.md: the limits table states the defaults of docs/configuration.md', () => {
  const configuration = readFileSync(new URL('docs/configuration.md', ROOT), 'utf8');
  const defaults = new Map<string, string>();
  for (const match of configuration.matchAll(/^\| `([a-z-]+)` \| [^|]+ \| [^|]+ \| ([^|]+) \|/gm)) defaults.set(match[1] as string, (match[2] as string).trim());
  assert.ok(defaults.size > 10, 'read the reference table of docs/configuration.md');
  const limits = section(PAGE, 'Limits');
  const rows = [...limits.matchAll(/^\| `--([a-z-]+)` \| ([^|]+) \|/gm)];
  assert.ok(rows.length >= 8, `${rows.length} limit rows`);
  const problems: string[] = [];
  for (const [, setting, stated] of rows) {
    const expected = defaults.get(setting as string);
    if (expected === undefined) problems.push(`--${setting} is not a setting in docs/configuration.md`);
    else if ((stated as string).trim().replace(/[ ,_]/g, '').split('(')[0] !== expected) problems.push(`--${setting}: docs/mqtt.md says ${(stated as string).trim()}, docs/configuration.md ${expected}`);
  }
  assert.deepEqual(problems, []);
});
