#!/usr/bin/env node
// Runs the compiled CLI; `npm run build` (also run by `npm start`) produces dist/.
import('../dist/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('shardline: dist/ is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw error;
});
