#!/usr/bin/env node
// `shardline`: finds the subcommand from the leading words and runs it.
import { isShardlineError } from '../journal/index.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';
import { commands } from './commands/index.js';

function overview(): string {
  const width = Math.max(...commands.map((command) => command.path.join(' ').length));
  const lines = commands.map((command) => `  shardline ${command.path.join(' ').padEnd(width)}  ${command.summary}`);
  return ['Shardline: a multi-protocol message queue built on a shard journal.', '', 'Usage:', ...lines, '', 'Run `shardline COMMAND --help` for a command\'s flags.'].join('\n');
}

function findCommand(argv: string[]): { command: Command; rest: string[] } | null {
  let best: Command | null = null;
  for (const command of commands) {
    const matches = command.path.every((word, index) => argv[index] === word);
    if (matches && (best === null || command.path.length > best.path.length)) best = command;
  }
  return best === null ? null : { command: best, rest: argv.slice(best.path.length) };
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${overview()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (found === null) {
    const group = commands.filter((command) => command.path[0] === argv[0]);
    process.stderr.write(`shardline: unknown command "${argv.join(' ')}"\n\n${group.length > 0 ? group.map((c) => `  shardline ${c.path.join(' ')}  ${c.summary}`).join('\n') : overview()}\n`);
    return 2;
  }
  const { command, rest } = found;
  try {
    const { values, positionals, help } = parseCommandArgs(command, rest);
    if (help) {
      process.stdout.write(`${command.usage.trim()}\n`);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`shardline ${command.path.join(' ')}: ${error.message}\n\n${command.usage.trim()}\n`);
      return 2;
    }
    if (isShardlineError(error)) {
      process.stderr.write(`shardline ${command.path.join(' ')}: ${error.message} [${error.code}]\n`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
