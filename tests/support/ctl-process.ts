// `shardline ctl …` run as an operator runs it: the real CLI (cli-entry.ts) in a child process.
// The admin URL and token come only from `env` (never inherited from the test's environment),
// so a test says exactly which server and token the command sees.
import { spawn } from 'node:child_process';
import { REPO_ROOT } from './broker-process.js';
import { cliArgs } from './cli-entry.js';

const CLI_TIMEOUT_MS = 30_000;

export interface CtlRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shardline ctl ARGS`; resolves when it exits (killed after 30 s: a hung CLI fails the test, not the run). */
export function runCtl(args: string[], env: Record<string, string> = {}): Promise<CtlRun> {
  const base = { ...process.env };
  delete base.SHARDLINE_ADMIN_URL;
  delete base.SHARDLINE_ADMIN_TOKEN;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(['ctl', ...args]), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
