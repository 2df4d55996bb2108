// `npm run sim`: runs simulation suites over many seeds and prints the command that replays
// each failing seed. Exit 0: all seeds passed; 1: some failed; 2: bad usage.
import cliProgress from 'cli-progress';
import { simSuites } from './suites.js';
import { replayCommand, type SimFailure, type SimSuite } from './suite.js';

const USAGE = `usage: npm run sim -- [--suite NAME|all] [--seeds N] [--from S | --seed S] [--variant V] [--help]

Runs seeded simulations (a random workload, power cuts, faults) and checks their properties.

  --suite NAME   the suite to run, or all (default: all)
  --seeds N      how many seeds per suite, starting at 1 (default: each suite's own)
  --from S       start the seeds at S instead of 1 (or 'random'), to explore beyond the usual ones
  --seed S       run just this seed (replays a failure exactly)
  --variant V    a suite variant (see below); default: the plain run
  --help         this text

Suites:
${simSuites.map((suite) => `  ${suite.name.padEnd(12)} ${suite.summary} (default ${suite.defaultSeeds} seeds${suite.variants === undefined ? '' : `; variants: ${suite.variants.join(', ')}`})`).join('\n')}
`;

class UsageError extends Error {}

interface Arguments {
  suites: SimSuite[];
  seeds: number | null;
  seed: number | null;
  from: number;
  variant: string | undefined;
}

function integer(flag: string, text: string | undefined, min: number): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag} needs an integer >= ${min}, got ${text ?? 'nothing'}`);
  return Number(text);
}

function parse(argv: string[]): Arguments | 'help' {
  let suiteName = 'all';
  let seeds: number | null = null;
  let seed: number | null = null;
  let from = 1;
  let variant: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i] as string;
    const [flag, inline] = argument.startsWith('--') && argument.includes('=') ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)] : [argument, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--suite':
        suiteName = value() ?? '';
        break;
      case '--seeds':
        seeds = integer('--seeds', value(), 1);
        break;
      case '--seed':
        seed = integer('--seed', value(), 0);
        break;
      case '--from': {
        const text = value();
        // A random start is printed in every replay line, so nothing is lost by not choosing it.
        from = text === 'random' ? 1 + Math.floor(Math.random() * 2 ** 31) : integer('--from', text, 0);
        break;
      }
      case '--variant':
        variant = value();
        if (variant === undefined || variant === '') throw new UsageError('--variant needs a name');
        break;
      default:
        throw new UsageError(`unknown argument ${argument}`);
    }
  }
  const suites = suiteName === 'all' ? simSuites : simSuites.filter((suite) => suite.name === suiteName);
  if (suites.length === 0) throw new UsageError(`unknown suite ${suiteName || '(empty)'}; known: ${simSuites.map((suite) => suite.name).join(', ')}, all`);
  if (seed !== null && seeds !== null) throw new UsageError('--seed and --seeds do not go together');
  if (seed !== null && from !== 1) throw new UsageError('--seed and --from do not go together');
  if (variant !== undefined) {
    for (const suite of suites) {
      if (!(suite.variants ?? []).includes(variant)) throw new UsageError(`suite ${suite.name} has no variant ${variant}; known: ${(suite.variants ?? []).join(', ') || 'none'}`);
    }
  }
  return { suites, seeds, seed, from, variant };
}

async function main(): Promise<number> {
  let args: Arguments | 'help';
  try {
    args = parse(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`sim: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const started = performance.now();
  const failures: { suite: SimSuite; failure: SimFailure }[] = [];
  let run = 0;
  for (const suite of args.suites) {
    const seeds = args.seed !== null ? [args.seed] : Array.from({ length: args.seeds ?? suite.defaultSeeds }, (_, i) => args.from + i);
    const label = `${suite.name}${args.variant === undefined ? '' : ` (${args.variant})`}`;
    const bar = process.stderr.isTTY === true && seeds.length > 1
      ? new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total} seeds | {failures} failed | eta {eta}s`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
    bar?.start(seeds.length, 0, { failures: 0 });
    let failed = 0;
    for (const seed of seeds) {
      const failure = await suite.runSeed(seed, args.variant === undefined ? {} : { variant: args.variant });
      run += 1;
      if (failure !== null) {
        failed += 1;
        failures.push({ suite, failure });
        // One seed's report is enough to read at once; the rest are replay lines.
        if (args.seed !== null || failed === 1) {
          bar?.stop();
          process.stderr.write(`\n${suite.name} seed ${seed}: ${failure.message}\n${failure.detail ?? ''}\n`);
        }
      }
      bar?.increment(1, { failures: failed });
    }
    bar?.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${run} seeds run, ${failures.length} failed, ${seconds.toFixed(1)} s (${(run / seconds).toFixed(1)} seeds/s)\n`);
  for (const { suite, failure } of failures) process.stdout.write(`FAIL ${replayCommand(suite.name, failure.seed, args.variant)}  # ${failure.message}\n`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main();
