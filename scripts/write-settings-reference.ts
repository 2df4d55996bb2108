// npm run docs:settings — rewrites the configuration reference table of docs/operations.md from
// the settings schema (cli/config/settings.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { withReferenceTable } from '../cli/testing.js';

const path = new URL('../docs/operations.md', import.meta.url);
writeFileSync(path, withReferenceTable(readFileSync(path, 'utf8')));
console.log('docs/operations.md: configuration reference written');
