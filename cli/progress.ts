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
