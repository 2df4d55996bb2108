// A progress bar for work that learns its total only once it starts reporting (verify and
// dump know the byte total after listing the segment files). Drawn on stderr when it is a
// terminal (createProgress decides).
import { createProgress, type Progress } from './progress.js';

export interface LazyProgress {
  onProgress(done: number, total: number): void;
  stop(): void;
}

/** With `enabled` false, nothing is drawn (the caller's own output would be mixed with it). */
export function lazyProgress(label: string, enabled = true): LazyProgress {
  let bar: Progress | null = null;
  return {
    onProgress: (done, total) => {
      if (!enabled) return;
      bar ??= createProgress(label, total);
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
}
