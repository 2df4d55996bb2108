// The contract every simulation suite keeps, so `npm run sim` and the property tests can run
// any of them by name and replay a failure from its seed alone.

export interface SimFailure {
  seed: number;
  message: string;
  detail?: string;
}

export interface SimSuite {
  name: string;
  summary: string;
  /** seeds `npm run sim` runs by default */
  defaultSeeds: number;
  variants?: string[];
  runSeed(seed: number, options: { variant?: string }): Promise<SimFailure | null>;
}

/** The command that replays one seed; printed by the runner and put in test assertion messages. */
export function replayCommand(suite: string, seed: number, variant?: string): string {
  return `npm run sim -- --suite ${suite} --seed ${seed}${variant === undefined ? '' : ` --variant ${variant}`}`;
}
