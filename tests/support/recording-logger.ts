// A pino logger whose lines a test reads back. The destination is a plain `{ write }` object,
// which pino calls synchronously inside the log call: a line is there as soon as the code under
// test has logged it, with no stream buffering to wait out.
import pino from 'pino';

/** One parsed log line: pino's fields (level, msg, time...) plus the bindings and merge object. */
export type LogLine = Record<string, unknown> & { level: number; msg?: string };

export interface RecordingLogger {
  logger: pino.Logger;
  /** Every line so far, parsed, in order. */
  lines(): LogLine[];
  /** The `msg` of every line so far (lines without one are left out). */
  messages(): string[];
  /** Lines at or above a pino level (a name such as 'error' or a number such as 50). */
  atLeast(level: pino.Level | number): LogLine[];
  /** Resolves with the first line (already logged or still to come) the predicate accepts. */
  waitFor(predicate: (line: LogLine) => boolean, pollMs?: number): Promise<LogLine>;
  clear(): void;
}

export function recordingLogger(level: pino.LevelWithSilent = 'info'): RecordingLogger {
  const recorded: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void recorded.push(JSON.parse(line) as LogLine) });
  return {
    logger,
    lines: () => [...recorded],
    messages: () => recorded.flatMap((line) => (typeof line.msg === 'string' ? [line.msg] : [])),
    atLeast: (threshold) => {
      const value = typeof threshold === 'number' ? threshold : pino.levels.values[threshold] ?? Infinity;
      return recorded.filter((line) => line.level >= value);
    },
    waitFor: async (predicate, pollMs = 10) => {
      for (;;) {
        const found = recorded.find(predicate);
        if (found !== undefined) return found;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    },
    clear: () => {
      recorded.length = 0;
    },
  };
}
