// Every subcommand, in the order `shardline --help` lists them.
import type { Command } from '../command.js';

export const commands: Command[] = [];
