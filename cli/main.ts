#!/usr/bin/env node
// `shardline`: finds the subcommand from the leading words and runs it. A usage error prints
// one line saying what was wrong (with a "did you mean" for a misspelt command or flag) and one
// line pointing at --help, never the whole help text.
import { isShardlineError } from '../base/index.js';
import { parseCommandArgs, UsageError } from './command.js';
import { commands, type CommandEntry } from './commands/index.js';
import { closest } from './closest.js';
import { packageInfo, satisfiesNodeRange } from './package-info.js';

function overview(): string {
  const width = Math.max(...commands.map((command) => command.path.join(' ').length));
  const lines = commands.map((command) => `  shardline ${command.path.join(' ').padEnd(width)}  ${command.summary}`);
  return [
    'Shardline: a multi-protocol message queue built on a shard journal.',
    '',
    'Usage:',
    ...lines,
    '',
    'Run `shardline COMMAND --help` for a command\'s flags; `shardline --version` prints the version.',
  ].join('\n');
}

function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } | null {
  let best: CommandEntry | null = null;
  for (const command of commands) {
    const matches = command.path.every((word, index) => argv[index] === word);
    if (matches && (best === null || command.path.length > best.path.length)) best = command;
  }
  return best === null ? null : { entry: best, rest: argv.slice(best.path.length) };
}

/** The message for words that name no command: the closest command path, if one is close. */
function unknownCommandMessage(argv: string[]): string {
  const words = argv.filter((word) => !word.startsWith('-'));
  const paths = commands.map((command) => command.path.join(' '));
  // Longest reading first: `shard lsit` → `shard list`, `shrad list` → `shard list`, `strat` → `start`.
  let guess: string | undefined;
  for (let length = Math.min(words.length, 4); length >= 1 && guess === undefined; length -= 1) {
    guess = closest(words.slice(0, length).join(' '), paths.filter((path) => path.split(' ').length === length));
  }
  return `shardline: unknown command "${words.join(' ')}"${guess === undefined ? '' : ` (did you mean "shardline ${guess}"?)`}\nRun \`shardline --help\` for the commands.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { version, nodeRange } = packageInfo();
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    process.stdout.write(`shardline ${version}\n`);
    return 0;
  }
  if (!satisfiesNodeRange(process.versions.node, nodeRange)) {
    process.stderr.write(`shardline: Node.js ${process.versions.node} is not supported; this version needs Node.js ${nodeRange} (package.json engines)\n`);
    return 1;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${overview()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (found === null) {
    const group = commands.filter((command) => command.path[0] === argv[0]);
    if (argv.length === 1 && group.length > 0) {
      // `shardline shard`: the group's commands are the useful answer (a few lines).
      process.stderr.write(`shardline ${argv[0]}: which one?\n${group.map((c) => `  shardline ${c.path.join(' ')}  ${c.summary}`).join('\n')}\n`);
      return 2;
    }
    process.stderr.write(unknownCommandMessage(argv));
    return 2;
  }
  const { entry, rest } = found;
  const name = `shardline ${entry.path.join(' ')}`;
  const command = await entry.load();
  try {
    const { values, positionals, help } = parseCommandArgs(command, rest);
    if (help) {
      process.stdout.write(`${command.usage.trim()}\n`);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${name}: ${error.message}\nRun \`${name} --help\` for the flags.\n`);
      return 2;
    }
    if (isShardlineError(error)) {
      process.stderr.write(`${name}: ${error.message} [${error.code}]\n`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
