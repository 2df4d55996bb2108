// `shardline ctl …` run as an operator runs it: the real CLI (cli-entry.ts) in a child process.
// The admin URL and token come only from `env` (never inherited from the test's environment),
// so a test says exactly which server and token the command sees.
import { REPO_ROOT } from './broker-process.js';
import { cliArgs } from './cli-entry.js';
import { runProcess, type ProcessRun } from './run-process.js';

const CLI_TIMEOUT_MS = 30_000;

export type CtlRun = ProcessRun;

/** Runs `shardline ctl ARGS`; resolves when it exits (killed after 30 s: a hung CLI fails the test, not the run). */
export function runCtl(args: string[], env: Record<string, string> = {}): Promise<CtlRun> {
  const base = { ...process.env };
  delete base.SHARDLINE_ADMIN_URL;
  delete base.SHARDLINE_ADMIN_TOKEN;
  return runProcess(process.execPath, cliArgs(['ctl', ...args]), { cwd: REPO_ROOT, env: { ...base, ...env }, timeoutMs: CLI_TIMEOUT_MS });
}
