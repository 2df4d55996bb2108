// The shard audit commands as an operator runs them: the real CLI in a child process against a
// journal written with the Journal API, healthy and then damaged. Asserts exit codes, error
// codes and the machine-readable output (--json, ndjson), not the wording of human text.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Journal } from '../journal/index.js';
import { cliArgs } from './support/cli-entry.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BASE_TIME = Date.parse('2024-05-01T12:00:00Z');
const RECORDS = 30;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (tests/support/cli-entry.ts); `cwd` other than the repository tests defaults such as ./data. */
function cli(args: string[], cwd = REPO): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(args), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

/** Shard `orders`: one record per append, offset i at BASE_TIME + i s; every third value is not UTF-8. */
async function writeJournal(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-shard-cli-'));
  directories.push(directory);
  const journal = await Journal.open(directory, { retentionCheckMs: 0, clock: () => BASE_TIME + RECORDS * 1000, shardDefaults: { segmentBytes: 1024, durability: 'none' } });
  await journal.createShard('orders');
  await journal.createShard('kv', { compacted: true });
  for (let offset = 0; offset < RECORDS; offset += 1) {
    const value = offset % 3 === 0 ? Buffer.from([0xff, 0xfe, offset]) : Buffer.from(`order ${offset}`);
    await journal.append('orders', [{ key: Buffer.from(`k${offset}`), value, timestamp: BASE_TIME + offset * 1000, headers: [{ key: 'h', value: Buffer.from('v') }] }]);
  }
  await journal.append('kv', [{ key: Buffer.from('gone'), value: null }]);
  await journal.close();
  return directory;
}

async function logFiles(directory: string): Promise<string[]> {
  return (await readdir(join(directory, 'shards', 'orders'))).filter((name) => name.endsWith('.log')).sort();
}

function ndjson(stdout: string): { offset: number; timestamp: number; key: string | null; keyEncoding: string | null; value: string | null; valueEncoding: string | null; headers: unknown[]; epoch: number }[] {
  return stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as ReturnType<typeof ndjson>[number]);
}

describe('shardline shard list / verify / dump', () => {
  let healthy = '';
  before(async () => {
    healthy = await writeJournal();
  });

  it('prints usage for --help on each command and exits 0', async () => {
    const commands = ['list', 'verify', 'dump'];
    const runs = await Promise.all(commands.map((command) => cli(['shard', command, '--help'])));
    for (const [index, run] of runs.entries()) {
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.stdout.includes(`shardline shard ${commands[index]}`));
    }
  });

  it('lists shards as JSON and as a table', async () => {
    const json = await cli(['shard', 'list', '--data-dir', healthy, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const shards = JSON.parse(json.stdout) as { name: string; startOffset: number; nextOffset: number; recordCount: number | null; segmentCount: number }[];
    assert.deepEqual(shards.map((shard) => [shard.name, shard.startOffset, shard.nextOffset, shard.recordCount]), [['kv', 0, 1, null], ['orders', 0, RECORDS, RECORDS]]);
    assert.equal(shards[1]?.segmentCount, (await logFiles(healthy)).length);
    const table = await cli(['shard', 'list', '--data-dir', healthy]);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout.trim().split('\n').length, 3, 'a header and one line per shard');
  });

  it('verifies a healthy journal with exit code 0', async () => {
    const text = await cli(['shard', 'verify', '--data-dir', healthy]);
    assert.equal(text.code, 0, text.stderr);
    const json = await cli(['shard', 'verify', '--data-dir', healthy, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as { shards: number; records: number; errors: number; problems: unknown[] };
    assert.deepEqual([report.shards, report.records, report.errors, report.problems], [2, RECORDS + 1, 0, []]);
  });

  it('dumps an offset range as NDJSON, with base64 for bytes that are not UTF-8', async () => {
    const run = await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-offset', '2', '--to-offset', '7']);
    assert.equal(run.code, 0, run.stderr);
    const records = ndjson(run.stdout);
    assert.deepEqual(records.map((record) => record.offset), [2, 3, 4, 5, 6]);
    const [two, three] = records;
    assert.deepEqual([two?.key, two?.keyEncoding, two?.value, two?.valueEncoding, two?.timestamp], ['k2', 'utf8', 'order 2', 'utf8', BASE_TIME + 2000]);
    assert.deepEqual([three?.value, three?.valueEncoding], [Buffer.from([0xff, 0xfe, 3]).toString('base64'), 'base64']);
    assert.deepEqual(two?.headers, [{ key: 'h', value: 'v', valueEncoding: 'utf8' }]);
    const tombstone = ndjson((await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'kv'])).stdout);
    assert.deepEqual(tombstone.map((record) => [record.value, record.valueEncoding]), [[null, null]]);
  });

  it('dumps a time range given as ISO-8601 or epoch ms, and as a table', async () => {
    const run = await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-time', '2024-05-01T12:00:10Z', '--to-time', String(BASE_TIME + 14_000)]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(ndjson(run.stdout).map((record) => record.offset), [10, 11, 12, 13]);
    const offset = await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-time', '2024-05-01T14:00:20.000+02:00']);
    assert.deepEqual(ndjson(offset.stdout).map((record) => record.offset), Array.from({ length: RECORDS - 20 }, (_, i) => 20 + i));
    const table = await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--format', 'table', '--to-offset', '5']);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout.trim().split('\n').length, 6, 'a header and five records');
  });

  it('answers bad input with exit code 2 (usage) or 1 (with the journal error code)', async () => {
    const usage = [
      ['shard', 'verify', '--data-dir'],
      ['shard', 'dump', '--data-dir', healthy],
      ['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-time', 'yesterday'],
      ['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-time', '2024-05-01T12:00:00'],
      ['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--from-offset', '-3'],
      ['shard', 'dump', '--data-dir', healthy, '--shard', 'orders', '--format', 'csv'],
      ['shard', 'list', '--data-dir', healthy, '--bogus'],
    ];
    const runs = await Promise.all(usage.map((args) => cli(args)));
    assert.deepEqual(runs.map((run) => run.code), usage.map(() => 2));
    const unknownShard = await cli(['shard', 'dump', '--data-dir', healthy, '--shard', 'nope']);
    assert.equal(unknownShard.code, 1);
    assert.match(unknownShard.stderr, /SL_JOURNAL_SHARD_NOT_FOUND/);
    const verifyUnknown = await cli(['shard', 'verify', '--data-dir', healthy, '--shard', 'nope']);
    assert.equal(verifyUnknown.code, 1);
    assert.match(verifyUnknown.stderr, /SL_JOURNAL_SHARD_NOT_FOUND/);
    const notJournal = await cli(['shard', 'list', '--data-dir', join(healthy, 'shards')]);
    assert.equal(notJournal.code, 1);
    assert.match(notJournal.stderr, /SL_JOURNAL_NOT_A_JOURNAL/);
  });

  it('list, verify and dump default --data-dir to ./data, as start does', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'shardline-shard-cli-cwd-'));
    directories.push(parent);
    await rename(await writeJournal(), join(parent, 'data'));
    const list = await cli(['shard', 'list', '--json'], parent);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { name: string }[]).map((shard) => shard.name).sort(), ['kv', 'orders']);
    const verify = await cli(['shard', 'verify', '--json'], parent);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal((JSON.parse(verify.stdout) as { shards: number }).shards, 2);
    const dump = await cli(['shard', 'dump', '--shard', 'orders', '--to-offset', '2'], parent);
    assert.equal(dump.code, 0, dump.stderr);
    assert.deepEqual(ndjson(dump.stdout).map((record) => record.offset), [0, 1]);
    // Where ./data is not a journal, the error names the resolved default path.
    const empty = await mkdtemp(join(tmpdir(), 'shardline-shard-cli-cwd-'));
    directories.push(empty);
    const none = await cli(['shard', 'list'], empty);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /SL_JOURNAL_NOT_A_JOURNAL/);
    assert.ok(none.stderr.includes(join(empty, 'data')), none.stderr);
  });

  it('beside a live journal, verify says once that the active segments\' indexes are stale, not a warning per shard', async () => {
    const directory = await writeJournal();
    // This process opens the journal and appends to both shards, leaving their active segments'
    // indexes behind the logs, as a running node does; it holds journal.lock with our (live) pid.
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      await journal.append('orders', [{ value: Buffer.from('live 1') }]);
      await journal.append('kv', [{ key: Buffer.from('k'), value: Buffer.from('live') }]);
      const json = await cli(['shard', 'verify', '--data-dir', directory, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const report = JSON.parse(json.stdout) as { lockHolder: number | null; warnings: number; problems: { code: string; shard: string }[] };
      assert.equal(report.lockHolder, process.pid);
      const staleShards = [...new Set(report.problems.filter((found) => /SL_AUDIT_INDEX_(STALE|MISSING)/.test(found.code)).map((found) => found.shard))].sort();
      assert.deepEqual(staleShards, ['kv', 'orders'], 'the JSON still lists every stale index');

      const text = await cli(['shard', 'verify', '--data-dir', directory]);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trim().split('\n');
      assert.equal(lines.filter((line) => line.startsWith('note')).length, 1, text.stdout);
      assert.match(lines[0] ?? '', new RegExp(`^note .*pid ${process.pid}.* 2 shards`), text.stdout);
      assert.doesNotMatch(text.stdout, /SL_AUDIT_INDEX_(STALE|MISSING)/, 'no warning per shard');
      assert.match(lines.at(-1) ?? '', /: no problems$/, text.stdout);
    } finally {
      await journal.close();
    }
    // Once closed (indexes written, lock released) there is nothing to note.
    const after = await cli(['shard', 'verify', '--data-dir', directory]);
    assert.equal(after.code, 0, after.stderr);
    assert.doesNotMatch(after.stdout, /^note/m, after.stdout);
  });

  it('without a live lock holder (a crashed node), a stale active index is still reported per shard', async () => {
    const directory = await writeJournal();
    const crashed = await mkdtemp(join(tmpdir(), 'shardline-shard-cli-crashed-'));
    directories.push(crashed);
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      await journal.append('orders', [{ value: Buffer.from('late') }]);
      // The files as a kill -9 leaves them: copied while open, the lock naming a pid that is gone.
      await cp(directory, crashed, { recursive: true });
    } finally {
      await journal.close();
    }
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(join(crashed, 'journal.lock'), String(gone));
    const text = await cli(['shard', 'verify', '--data-dir', crashed]);
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /^note/m, text.stdout);
    assert.match(text.stdout, /SL_AUDIT_INDEX_(STALE|MISSING)/, text.stdout);
  });

  it('reports damage with exit code 1 and its place, and the dump stops there', async () => {
    const directory = await writeJournal();
    const sealed = (await logFiles(directory))[2] ?? assert.fail('need a third segment');
    const path = join(directory, 'shards', 'orders', sealed);
    const bytes = await readFile(path);
    bytes.writeUInt8((bytes[60] ?? 0) ^ 0x40, 60);
    await writeFile(path, bytes);

    const text = await cli(['shard', 'verify', '--data-dir', directory]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /SL_AUDIT_BATCH_CORRUPT/);
    const json = await cli(['shard', 'verify', '--data-dir', directory, '--shard', 'orders', '--json']);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as { errors: number; problems: { code: string; severity: string; shard: string; segment: string; position: number }[] };
    assert.deepEqual(report.problems.map((found) => [found.severity, found.code, found.shard, found.segment, found.position]), [['error', 'SL_AUDIT_BATCH_CORRUPT', 'orders', sealed, 0]]);

    const dump = await cli(['shard', 'dump', '--data-dir', directory, '--shard', 'orders']);
    assert.equal(dump.code, 1);
    assert.match(dump.stderr, /SL_JOURNAL_CORRUPT_BATCH/);
    const baseOffset = Number(sealed.slice(0, 20));
    assert.deepEqual(ndjson(dump.stdout).map((record) => record.offset), Array.from({ length: baseOffset }, (_, i) => i));
  });

  it('allows warnings: a torn tail on the active segment exits 0', async () => {
    const directory = await writeJournal();
    const active = (await logFiles(directory)).at(-1) ?? assert.fail('no segment');
    const path = join(directory, 'shards', 'orders', active);
    await truncate(path, (await readFile(path)).length - 3);
    const json = await cli(['shard', 'verify', '--data-dir', directory, '--json']);
    assert.equal(json.code, 0, json.stdout);
    const report = JSON.parse(json.stdout) as { errors: number; warnings: number; problems: { code: string }[] };
    assert.equal(report.errors, 0);
    assert.ok(report.problems.some((found) => found.code === 'SL_AUDIT_TORN_TAIL'));
  });

  it('stops quietly when the reader of a dump goes away (EPIPE)', async () => {
    // Enough output (about 1 MiB) to fill the pipe, so the CLI is still writing when it closes.
    const directory = await mkdtemp(join(tmpdir(), 'shardline-shard-cli-'));
    directories.push(directory);
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('orders', { durability: 'none' });
    for (let append = 0; append < 50; append += 1) await journal.append('orders', Array.from({ length: 100 }, () => ({ value: Buffer.alloc(200, 97) })));
    await journal.close();
    const child = spawn(process.execPath, cliArgs(['shard', 'dump', '--data-dir', directory, '--shard', 'orders']), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    assert.equal(await closed, 0, stderr);
    assert.equal(stderr, '');
  });
});
