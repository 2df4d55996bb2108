// Lint rules, including the layer rule: imports point down only
// (cli/console → node → protocols → engine → shard-model → journal, placement beside journal;
// base under all of them). node/ composes roles, so it may import every layer below it, and
// only cli/, console/ and the tests sit above it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layersAbove = {
  // Every layer may import base/; it imports none of them.
  base: ['journal', 'placement', 'shard-model', 'engine', 'protocols', 'node', 'cli', 'console', 'sim', 'tests', 'property-tests'],
  journal: ['placement', 'shard-model', 'engine', 'protocols', 'node', 'cli', 'console'],
  placement: ['journal', 'shard-model', 'engine', 'protocols', 'node', 'cli', 'console'],
  'shard-model': ['engine', 'protocols', 'node', 'cli', 'console'],
  engine: ['protocols', 'node', 'cli', 'console'],
  protocols: ['node', 'cli', 'console'],
  node: ['cli', 'console'],
};

const layerRules = Object.entries(layersAbove).map(([layer, forbidden]) => ({
  files: [`${layer}/**/*.ts`],
  ignores: [`${layer}/**/*.test.ts`],
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
    // A promise nobody handles kills the process when it rejects (Node's default): every
    // promise the running code starts is awaited, returned, or given a rejection handler, and
    // `void` does not count as one. Type-aware, so it runs on the sources only (not tests).
    files: ['base/**/*.ts', 'journal/**/*.ts', 'placement/**/*.ts', 'shard-model/**/*.ts', 'engine/**/*.ts', 'protocols/**/*.ts', 'node/**/*.ts', 'cli/**/*.ts', 'sim/**/*.ts'],
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
