// Message rates for /api/overview: the broker's counters sampled each second, so a rate covers
// the last ~10 s without a cost per message.
import type { Broker } from '../engine/index.js';

const RATE_WINDOW_MS = 10_000;
const RATE_SAMPLE_MS = 1_000;

/** Counters sampled each second, so rates cover the last ~10 s without a per-message cost. */
export class RateSampler {
  readonly #samples: Array<{ at: number; messagesIn: number; messagesOut: number }> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(readonly broker: Broker) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), RATE_SAMPLE_MS);
    this.#timer.unref();
  }

  #sample(): void {
    const now = Date.now();
    this.#samples.push({ at: now, messagesIn: this.broker.stats.messagesIn, messagesOut: this.broker.stats.messagesOut });
    while (this.#samples.length > 1 && (this.#samples[0] as { at: number }).at < now - RATE_WINDOW_MS) this.#samples.shift();
  }

  rates(): { messagesInPerSecond: number; messagesOutPerSecond: number } {
    const oldest = this.#samples[0];
    if (oldest === undefined) return { messagesInPerSecond: 0, messagesOutPerSecond: 0 };
    // Under a second of history (just started) counts as one second, so a burst right after
    // start reads as its count per second rather than an inflated rate.
    const seconds = Math.max(1, (Date.now() - oldest.at) / 1000);
    const round = (value: number): number => Math.round(value * 100) / 100;
    return {
      messagesInPerSecond: round((this.broker.stats.messagesIn - oldest.messagesIn) / seconds),
      messagesOutPerSecond: round((this.broker.stats.messagesOut - oldest.messagesOut) / seconds),
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
