// `npm test`'s static checks, the type check and the lint (package.json's `typecheck` and `lint`),
// run at once instead of one after the other: each is single-threaded and neither needs the
// other's result, so on two cores the pair takes about as long as the lint alone. Each one's
// output is printed whole when it ends, so the two never interleave; it exits 1 when either failed.
import { spawn } from 'node:child_process';

const SCRIPTS = ['typecheck', 'lint'];

function run(script) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('npm', ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    child.stdout.on('data', (chunk) => output.push(chunk));
    child.stderr.on('data', (chunk) => output.push(chunk));
    child.on('error', (error) => output.push(Buffer.from(`${error.message}\n`)));
    child.on('close', (code, signal) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const text = Buffer.concat(output).toString();
      process.stdout.write(`${text}${text === '' || text.endsWith('\n') ? '' : '\n'}npm run ${script}: ${code === 0 ? 'passed' : `failed (${signal ?? `exit ${code}`})`} in ${seconds} s\n`);
      resolve(code === 0);
    });
  });
}

const passed = await Promise.all(SCRIPTS.map(run));
process.exit(passed.every(Boolean) ? 0 : 1);
