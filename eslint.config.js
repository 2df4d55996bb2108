// Lint rules, including the layer rule: imports point down only
// (cli/console → node → admin → protocols → engine → shard-model → journal, placement beside
// journal; base under all of them). node/ composes roles, so it may import every layer below it
// (the admin server included), and only cli/, console/ and the tests sit above it.
import { basename, dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The entry-point rule: an import into another layer names that layer's entry, an index.js (a
// layer's, or a sub-package's such as protocols/mqtt/index.js), so what a layer offers is what
// its index exports. Test code and tools (test files, tests/, property-tests/, sim/, scripts/) may use a
// testing.js entry (simulated disks, internals under property test); running code may not.
const LAYERS = new Set(['base', 'journal', 'placement', 'shard-model', 'engine', 'protocols', 'admin', 'node', 'cli']);
const TEST_FOLDERS = new Set(['tests', 'property-tests', 'sim', 'scripts']);
const entryPointRule = {
  meta: { type: 'problem', schema: [], messages: {
    internal: '{{target}} is inside {{layer}}/: import from its entry point (an index.js, or testing.js in test code) instead, exporting what is needed there (docs/architecture.md).',
    testKit: '{{target}} is test code ({{layer}}/): running code never imports it.',
  } },
  create(context) {
    const root = import.meta.dirname;
    const file = relative(root, context.filename);
    const fromLayer = file.split(sep)[0];
    const isTestCode = file.endsWith('.test.ts') || TEST_FOLDERS.has(fromLayer);
    const check = (node) => {
      const source = node.source?.value;
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = relative(root, resolve(dirname(context.filename), source));
      const layer = target.split(sep)[0];
      if (TEST_FOLDERS.has(layer) && !isTestCode && LAYERS.has(fromLayer)) {
        context.report({ node: node.source, messageId: 'testKit', data: { target, layer } });
        return;
      }
      if (layer === fromLayer || !LAYERS.has(layer)) return;
      const name = basename(target);
      if (name === 'index.js' || (isTestCode && name === 'testing.js')) return;
      context.report({ node: node.source, messageId: 'internal', data: { target, layer } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

const layersAbove = {
  // Every layer may import base/; it imports none of them.
  base: ['journal', 'placement', 'shard-model', 'engine', 'protocols', 'admin', 'node', 'cli', 'console'],
  journal: ['placement', 'shard-model', 'engine', 'protocols', 'admin', 'node', 'cli', 'console'],
  placement: ['journal', 'shard-model', 'engine', 'protocols', 'admin', 'node', 'cli', 'console'],
  'shard-model': ['engine', 'protocols', 'admin', 'node', 'cli', 'console'],
  engine: ['protocols', 'admin', 'node', 'cli', 'console'],
  protocols: ['admin', 'node', 'cli', 'console'],
  // The admin server (fastify) sits over the engine and the protocols: it serves what they hold.
  admin: ['node', 'cli', 'console'],
  node: ['cli', 'console'],
};

const layerRules = Object.entries(layersAbove).map(([layer, forbidden]) => ({
  files: [`${layer}/**/*.ts`],
  // Test files too: a test of a layer uses that layer and the ones below, as its code does.
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((above) => ({
          group: [`**/${above}/**`, `**/${above}`],
          message: `${layer}/ sits below ${above}/: imports point down the layers only (docs/architecture.md).`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', '.test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...layerRules,
  {
    files: ['**/*.ts'],
    plugins: { shardline: { rules: { 'entry-points': entryPointRule } } },
    rules: { 'shardline/entry-points': 'error' },
  },
  {
    // A promise nobody handles kills the process when it rejects (Node's default): every
    // promise the running code starts is awaited, returned, or given a rejection handler, and
    // `void` does not count as one. Type-aware, so it runs on the sources only (not tests).
    files: ['base/**/*.ts', 'journal/**/*.ts', 'placement/**/*.ts', 'shard-model/**/*.ts', 'engine/**/*.ts', 'protocols/**/*.ts', 'admin/**/*.ts', 'node/**/*.ts', 'cli/**/*.ts', 'sim/**/*.ts'],
    // The bench is a load tool, not part of a node (its file reads cannot reject).
    ignores: ['**/*.test.ts', 'shard-model/conformance.ts', 'cli/bench/**'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // The dashboard runs in the browser (plain ES modules, no build step).
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', Node: 'readonly', URLSearchParams: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' },
    },
  },
);
