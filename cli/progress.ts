// Progress bars for long work (verify, dump, replay, benchmarks), drawn on stderr only when
// it is a terminal, so pipes and CI logs stay clean.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  increment(by?: number): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, increment: () => undefined, stop: () => undefined };

export function createProgress(label: string, total: number, unit = 'bytes', stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true || total <= 0) return silent;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | eta {eta}s`, stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(done),
    increment: (by = 1) => bar.increment(by),
    stop: () => bar.stop(),
  };
}

export interface ProgressBar {
  /** Moves the bar to `done` of `total` (the total may grow, as a leader's log does). */
  set(done: number, total: number): void;
}

export interface ProgressGroup {
  /** A bar labelled `label` (created on first use); on a stream that is not a terminal, it draws nothing. */
  bar(label: string, unit: string): ProgressBar;
  stop(): void;
}

/** Several bars redrawn together (a catch-up per follower), on `stream` only when it is a terminal. */
export function createProgressGroup(stream: NodeJS.WriteStream = process.stderr): ProgressGroup {
  if (stream.isTTY !== true) return { bar: () => ({ set: () => undefined }), stop: () => undefined };
  const multi = new cliProgress.MultiBar({ format: '{label} [{bar}] {percentage}% | {value}/{total} {unit}', stream, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    bar: (label, unit) => {
      let bar = bars.get(label);
      if (bar === undefined) {
        bar = multi.create(1, 0, { label, unit });
        bars.set(label, bar);
      }
      const drawn = bar;
      return {
        set: (done, total) => {
          drawn.setTotal(Math.max(total, 1));
          drawn.update(Math.min(done, total));
        },
      };
    },
    stop: () => multi.stop(),
  };
}
