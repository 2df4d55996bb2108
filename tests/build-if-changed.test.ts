// `npm start`'s prestart step (scripts/build-if-changed.mjs): builds on a fresh clone, skips
// the build when no input changed, and builds again after an edit, an added or deleted source,
// a changed mtime alone (a `git pull` rewriting a file), a changed package.json, or a deleted
// dist/. Method: a scratch project with a stand-in build command that counts its runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const SCRIPT = fileURLToPath(new URL('../scripts/build-if-changed.mjs', import.meta.url));
const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function project(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'shardline-build-stamp-'));
  directories.push(root);
  await writeFile(join(root, 'tsconfig.build.json'), JSON.stringify({ include: ['src', 'lib'] }));
  await writeFile(join(root, 'package.json'), '{"name":"x"}\n');
  await mkdir(join(root, 'src'));
  await writeFile(join(root, 'src', 'a.ts'), 'export const a = 1;\n');
  await writeFile(join(root, 'src', 'b.ts'), 'export const b = 2;\n');
  await writeFile(join(root, 'build.mjs'), "import { appendFileSync, mkdirSync } from 'node:fs';\nmkdirSync('dist', { recursive: true });\nappendFileSync('builds.log', 'built\\n');\n");
  return root;
}

/** Runs the script; returns how many builds have run so far. */
async function start(root: string, buildCommand = `"${process.execPath}" build.mjs`): Promise<number> {
  const result = spawnSync(process.execPath, [SCRIPT, root], { cwd: root, encoding: 'utf8', env: { ...process.env, SHARDLINE_BUILD_COMMAND: buildCommand } });
  assert.equal(result.status, buildCommand.includes('exit 3') ? 3 : 0, `${result.stdout}${result.stderr}`);
  const log = await readFile(join(root, 'builds.log'), 'utf8').catch(() => '');
  return log.split('\n').filter((line) => line === 'built').length;
}

describe('scripts/build-if-changed.mjs', () => {
  it('builds on a fresh clone, then only when an input changed', async () => {
    const root = await project();
    assert.equal(await start(root), 1, 'fresh clone: no dist/, build');
    assert.equal(await start(root), 1, 'nothing changed: no build');
    await appendFile(join(root, 'src', 'a.ts'), 'export const c = 3;\n');
    assert.equal(await start(root), 2, 'an edited source: build');
    assert.equal(await start(root), 2);
    // Same size, new mtime: what a `git pull` that rewrites a file leaves.
    const later = new Date((await stat(join(root, 'src', 'b.ts'))).mtimeMs + 5_000);
    await utimes(join(root, 'src', 'b.ts'), later, later);
    assert.equal(await start(root), 3, 'a rewritten source: build');
    await writeFile(join(root, 'src', 'new.ts'), 'export {};\n');
    assert.equal(await start(root), 4, 'an added source: build');
    await rm(join(root, 'src', 'new.ts'));
    assert.equal(await start(root), 5, 'a deleted source: build');
    await mkdir(join(root, 'lib'));
    await writeFile(join(root, 'lib', 'x.proto'), 'syntax = "proto3";\n');
    assert.equal(await start(root), 6, 'a file in another included folder: build');
    await writeFile(join(root, 'package.json'), '{"name":"x","version":"2"}\n');
    assert.equal(await start(root), 7, 'package.json changed: build');
    await rm(join(root, 'dist'), { recursive: true });
    assert.equal(await start(root), 8, 'dist/ deleted: build');
    assert.equal(await start(root), 8);
  });

  it('a folder the build reached through imports (compiled into dist/, not in include) is an input too', async () => {
    const root = await project();
    await mkdir(join(root, 'reached'));
    await writeFile(join(root, 'reached', 'c.ts'), 'export const c = 3;\n');
    // tsc writes dist/reached/ when an included source imports reached/c.ts.
    await writeFile(join(root, 'build.mjs'), "import { appendFileSync, mkdirSync } from 'node:fs';\nmkdirSync('dist/reached', { recursive: true });\nappendFileSync('builds.log', 'built\\n');\n");
    assert.equal(await start(root), 1, 'fresh clone: build');
    assert.equal(await start(root), 1, 'nothing changed: the reached folder was recorded by the first build');
    await appendFile(join(root, 'reached', 'c.ts'), 'export const d = 4;\n');
    assert.equal(await start(root), 2, 'an edited source in the reached folder: build');
    assert.equal(await start(root), 2);
  });

  it('a failed build records nothing, so the next start builds again', async () => {
    const root = await project();
    assert.equal(await start(root, `"${process.execPath}" build.mjs && exit 3`), 1);
    assert.equal(await start(root), 2, 'the failed build left no fingerprint');
    assert.equal(await start(root), 2);
  });
});
