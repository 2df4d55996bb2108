// Copies the files the compiled code reads at run time, which tsc does not emit, into dist/
// at the same relative paths: modules find them next to themselves (import.meta.url).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const assets = ['journal/server/journal.proto', 'placement/service/placement.proto'];

for (const asset of assets) {
  const target = join(root, 'dist', asset);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, asset), target);
}
console.log(`copied ${assets.length} asset(s) into dist/`);
