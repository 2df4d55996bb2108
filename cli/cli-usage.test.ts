// How the `shardline` command answers a user who mistypes: one line saying what was wrong, with
// a "did you mean" where a command or flag is close, one line pointing at --help, exit 2, and
// never the whole help text. Also --version. Runs the CLI in a child process (tests/support/cli-entry.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { cliArgs } from '../tests/support/cli-entry.js';
import { unknownFlag } from './command.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(args), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

describe('usage errors', () => {
  for (const [args, message, pointer] of [
    [['start', '--mqtt-prot', '1884'], 'shardline start: unknown flag --mqtt-prot (did you mean --mqtt-port?)', 'Run `shardline start --help` for the flags.'],
    [['start', '--mqtt-prot=1884'], 'shardline start: unknown flag --mqtt-prot (did you mean --mqtt-port?)', 'Run `shardline start --help` for the flags.'],
    [['shard', 'list', '--jsno'], 'shardline shard list: unknown flag --jsno (did you mean --json?)', 'Run `shardline shard list --help` for the flags.'],
    [['shard', 'dump', '--shard', 'x', '--zzzzzzzz'], 'shardline shard dump: unknown flag --zzzzzzzz', 'Run `shardline shard dump --help` for the flags.'],
    [['shard', 'lsit'], 'shardline: unknown command "shard lsit" (did you mean "shardline shard list"?)', 'Run `shardline --help` for the commands.'],
    [['shrad', 'verify'], 'shardline: unknown command "shrad verify" (did you mean "shardline shard verify"?)', 'Run `shardline --help` for the commands.'],
    [['strat'], 'shardline: unknown command "strat" (did you mean "shardline start"?)', 'Run `shardline --help` for the commands.'],
    [['bench', 'mqt'], 'shardline: unknown command "bench mqt" (did you mean "shardline bench mqtt"?)', 'Run `shardline --help` for the commands.'],
    [['ctl', 'overveiw'], 'shardline ctl: unknown command "ctl overveiw" (did you mean `shardline ctl overview`?)', 'Run `shardline ctl --help` for the commands.'],
  ] as const) {
    it(`shardline ${args.join(' ')}: two lines, exit 2`, async () => {
      const run = await cli([...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.deepEqual(lines(run.stderr), [message, pointer]);
      assert.equal(run.stdout, '');
    });
  }

  it('a bad value is one line and the pointer, not the usage text', async () => {
    const run = await cli(['start', '--roles', 'broker']);
    assert.equal(run.code, 2, run.stderr);
    const [message, pointer, ...more] = lines(run.stderr);
    assert.match(message ?? '', /^shardline start: .*--journal/);
    assert.equal(pointer, 'Run `shardline start --help` for the flags.');
    assert.deepEqual(more, []);
  });
});

describe('--version', () => {
  for (const flag of ['--version', '-V']) {
    it(`${flag} prints the package version and exits 0`, async () => {
      const run = await cli([flag]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `shardline ${VERSION}\n`);
    });
  }

  it('the overview mentions --version', async () => {
    const run = await cli(['--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /shardline --version/);
  });
});

describe('unknownFlag', () => {
  const options = { 'mqtt-port': { type: 'string' }, json: { type: 'boolean' } } as const;
  it('finds the first unknown long flag and the closest known one', () => {
    assert.deepEqual(unknownFlag(options, ['--json', '--mqtt-prot', '1']), { flag: '--mqtt-prot', guess: '--mqtt-port' });
    assert.deepEqual(unknownFlag(options, ['--mqtt_port=1']), { flag: '--mqtt_port', guess: '--mqtt-port' });
    assert.deepEqual(unknownFlag(options, ['--completely-else']), { flag: '--completely-else', guess: undefined });
  });
  it('accepts known flags, --help, and anything after --', () => {
    assert.equal(unknownFlag(options, ['--mqtt-port=1', '--json', '--help', '--', '--nope']), null);
  });
});
