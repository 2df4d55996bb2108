// The shape of a `shardline` subcommand and the shared argument handling: every command gets
// --help, and a bad flag is answered with what was wrong (with a "did you mean" for a misspelt
// flag) and a one-line pointer to --help, exit code 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from './closest.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  /** Words after `shardline`, e.g. ['shard', 'list']. */
  path: string[];
  summary: string;
  /** Full help text printed by --help. */
  usage: string;
  options: OptionSpec;
  /** Allows positional arguments after the command words. */
  allowPositionals?: boolean;
  run(values: Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: string[]): Promise<number>;
}

export class UsageError extends Error {}

/** The data directory when --data-dir is not given: `shardline start`'s default, for the shard tools too. */
export const DEFAULT_DATA_DIR = './data';

/**
 * The first `--name` in argv that the command does not know, with the known flag it most likely
 * meant; null when every long flag is known. Stops at `--`, after which words are positionals.
 */
export function unknownFlag(options: OptionSpec, argv: readonly string[]): { flag: string; guess: string | undefined } | null {
  const known = [...Object.keys(options), 'help'];
  for (const arg of argv) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=', 1)[0] ?? '';
    if (known.includes(name)) continue;
    const guess = closest(name, known);
    return { flag: `--${name}`, guess: guess === undefined ? undefined : `--${guess}` };
  }
  return null;
}

export function parseCommandArgs(command: Command, argv: string[]): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[]; help: boolean } {
  const unknown = unknownFlag(command.options, argv);
  if (unknown !== null) throw new UsageError(`unknown flag ${unknown.flag}${unknown.guess === undefined ? '' : ` (did you mean ${unknown.guess}?)`}`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: command.allowPositionals ?? false, strict: true });
  } catch (error) {
    // node:util's messages end with advice about '--' that does not apply here; keep the first sentence.
    const message = (error as Error).message;
    throw new UsageError(message.split(/\. (?=To specify)/)[0] ?? message);
  }
  const { help, ...values } = parsed.values as Record<string, string | boolean | undefined> & { help?: boolean };
  return { values, positionals: parsed.positionals, help: help === true };
}

/** Reads an integer flag, with a message that names the flag when it is not one. */
export function integerFlag(values: Record<string, unknown>, name: string, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** An integer flag in [min, max]. */
export function boundedIntegerFlag(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = integerFlag(values, name, fallback, min);
  if (value > max) throw new UsageError(`--${name} must be at most ${max}, got ${value}`);
  return value;
}

/** A number of seconds (fractions allowed) in [min, max]. */
export function secondsFlag(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a number of seconds in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function stringFlag(values: Record<string, unknown>, name: string, fallback?: string): string {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  if (typeof raw !== 'string' || raw === '') throw new UsageError(`--${name} needs a value`);
  return raw;
}
