// Lint rules, including the layer rule: imports point down only
// (cli/console → protocols → engine → shard-model → journal, placement beside journal).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layersAbove = {
  journal: ['placement', 'shard-model', 'engine', 'protocols', 'cli', 'console'],
  placement: ['journal', 'shard-model', 'engine', 'protocols', 'cli', 'console'],
  'shard-model': ['engine', 'protocols', 'cli', 'console'],
  engine: ['protocols', 'cli', 'console'],
  protocols: ['cli', 'console'],
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
    // The dashboard runs in the browser (plain ES modules, no build step).
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', Node: 'readonly', URLSearchParams: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' },
    },
  },
);
