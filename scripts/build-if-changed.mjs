// `npm start` runs this instead of the whole build: it runs `npm run build` only when an input
// of the build changed since the last successful one. The inputs are every file under the
// folders tsconfig.build.json includes (sources and the assets copied beside them), the
// tsconfig files, package.json, package-lock.json (a new TypeScript) and the build scripts.
// tsc also compiles whatever those sources import from other folders (node/ and placement/ are
// reached from cli/ that way, not listed in include), so every folder the last build wrote into
// dist/ counts as an input folder too.
// Each is fingerprinted by path, size and mtime (a `git pull` or checkout rewrites a changed
// file, giving it a new mtime; a deleted or added file changes the list); the list is kept in
// dist/.build-inputs.json after a build that succeeded. No dist/ (a fresh clone) or no
// fingerprint file: build. Deleting dist/ forces a build.
//
// Usage: node scripts/build-if-changed.mjs [ROOT]   (ROOT defaults to the repository)
// SHARDLINE_BUILD_COMMAND replaces `npm run build` (the tests use a stand-in build).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(root, 'dist', '.build-inputs.json');
const EXTRA_INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json', 'scripts/copy-assets.mjs'];

function walk(directory, found) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory()) walk(path, found);
    // Test files are excluded from the build (tsconfig.build.json), so they are no input of it.
    else if (entry.isFile() && !entry.name.endsWith('.test.ts')) found.push(path);
  }
}

/** The folders tsconfig.build.json includes and those the last build wrote into dist/. */
function inputFolders() {
  const config = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
  const folders = new Set(config.include ?? []);
  const dist = join(root, 'dist');
  if (existsSync(dist)) {
    for (const entry of readdirSync(dist, { withFileTypes: true })) {
      if (entry.isDirectory() && !entry.name.startsWith('.') && existsSync(join(root, entry.name))) folders.add(entry.name);
    }
  }
  return [...folders].sort();
}

/** "path size mtimeMs" per input file, sorted: equal lists mean nothing the build reads changed. */
function fingerprint(folders = inputFolders(), extras = EXTRA_INPUTS) {
  const files = [];
  for (const folder of folders) if (existsSync(join(root, folder))) walk(join(root, folder), files);
  for (const extra of extras) if (existsSync(join(root, extra))) files.push(join(root, extra));
  return files
    .map((path) => {
      const info = statSync(path);
      return `${relative(root, path)} ${info.size} ${info.mtimeMs}`;
    })
    .sort();
}

function symmetricDifference(a, b) {
  let count = 0;
  for (const line of a) if (!b.has(line)) count += 1;
  for (const line of b) if (!a.has(line)) count += 1;
  return count;
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return null;
  }
}

const foldersBefore = inputFolders();
const before = fingerprint(foldersBefore);
const stamp = readStamp();
const changed = stamp === null ? null : symmetricDifference(new Set(before), new Set(stamp));
if (changed === 0) {
  console.log('build: dist/ is up to date with the sources (delete dist/ or run `npm run build` to force)');
  process.exit(0);
}
console.log(stamp === null ? 'build: no previous build recorded; building' : `build: ${changed} input change(s) since the last build; building`);
const command = process.env.SHARDLINE_BUILD_COMMAND ?? 'npm run build';
const result = spawnSync(command, { cwd: root, stdio: 'inherit', shell: true });
if (result.status !== 0) process.exit(result.status ?? 1);
mkdirSync(dirname(STAMP), { recursive: true });
// The fingerprint taken before the build: a file edited during the build is rebuilt next time.
// Folders this build reached for the first time (all but the included ones on a fresh clone) are
// fingerprinted now, or the next start would find them new and build again for nothing.
const reached = inputFolders().filter((folder) => !foldersBefore.includes(folder));
writeFileSync(STAMP, `${JSON.stringify([...before, ...fingerprint(reached, [])].sort())}\n`);
