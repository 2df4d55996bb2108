// A child process run under a line protocol on stdout and killed with SIGKILL after it said it
// was ready: the shape of every real crash test (journal, placement storage). The caller reads
// the lines; this part owns the process, the timeouts and the checks that the kill, and nothing
// else, ended the child.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

const READY_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;

export interface KillChildOptions {
  /** A TypeScript file run with tsx. */
  script: string;
  args: string[];
  /** How long the child runs after it is ready. */
  delayMs: number;
  /** Names the run in failure messages, e.g. "round 3". */
  label: string;
  /** Called for every complete stdout line, in order; answers true for the line that means ready. */
  onLine(line: string): boolean;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs the child until `delayMs` after it is ready, kills it, and returns its stderr once every stdout line was handled. */
export async function runAndKill(options: KillChildOptions): Promise<string> {
  const { label } = options;
  const child = spawn(process.execPath, ['--import', 'tsx', options.script, ...options.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  assert.ok(pid !== undefined, `${label}: the child started`);
  let stderr = '';
  let buffered = '';
  let isReady = false;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (options.onLine(line) && !isReady) {
        isReady = true;
        onReady();
      }
    }
  });
  try {
    await withTimeout(Promise.race([ready, closed]), READY_TIMEOUT_MS, `${label}: child ready`);
    assert.ok(isReady, `${label}: the child exited before it was ready: ${stderr}`);
    await sleep(options.delayMs);
  } finally {
    // The child's own pid, never a name: only this process is killed.
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
    // 'close' comes after the exit is reaped and stdout is drained: every line it wrote is in.
    await withTimeout(closed, EXIT_TIMEOUT_MS, `${label}: child exit`);
  }
  assert.equal(child.signalCode, 'SIGKILL', `${label}: the child died of the kill (exit ${child.exitCode}): ${stderr}`);
  return stderr;
}
