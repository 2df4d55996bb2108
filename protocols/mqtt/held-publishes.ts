// 3.x has no failure ack for a publish refused while writes are blocked: a QoS 1/2 one is kept
// unacknowledged until the write gate opens, then stored (its ack keeps its place in the ack
// queue). Held ones count toward the inbound in-flight bound, so a client that keeps publishing
// is paused, not buffered without limit. If the gate stays closed past
// writes-blocked-disconnect-seconds, the connection closes and the client resends everything
// unacknowledged after reconnecting.
import type { Logger } from 'pino';
import type { Broker, Clock } from '../../engine/index.js';
import { ReasonCode } from './reason-codes.js';

/** What holding needs of its connection. */
export interface HeldPublishesContext<T> {
  readonly broker: Broker;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly clientId: string;
  readonly writesBlockedDisconnectSeconds: number;
  /** Stores a held publish once writes resume. */
  store(pending: T): void;
  fail(code: ReasonCode, detail: string): void;
}

export class HeldPublishes<T extends { sequence: number }> {
  #held: T[] | undefined;
  #timer: unknown;
  #unsubscribe: (() => void) | undefined;

  constructor(private readonly context: HeldPublishesContext<T>) {}

  hold(pending: T): void {
    const context = this.context;
    (this.#held ??= []).push(pending);
    if (this.#unsubscribe === undefined) {
      const seconds = context.writesBlockedDisconnectSeconds;
      context.logger.debug({ clientId: context.clientId, disconnectAfterSeconds: seconds }, 'holding publishes until writes resume');
      this.#unsubscribe = context.broker.writeGate.onChange((open) => open && this.#release());
      this.#timer = context.clock.setTimeout(() => context.fail(ReasonCode.UnspecifiedError, `writes blocked for more than ${seconds} s; resend after reconnecting`), seconds * 1000);
    }
    // The gate may have opened between the refusal and now.
    if (context.broker.writeGate.open) this.#release();
  }

  /** The connection ended: stops holding and returns what was held, to be given up (the client resends it on its next connection). */
  drop(): T[] {
    const held = this.#held ?? [];
    this.#stop();
    return held;
  }

  #release(): void {
    // Stored in arrival order, whatever order the refusals came back in.
    const held = (this.#held ?? []).sort((a, b) => a.sequence - b.sequence);
    this.#stop();
    for (const pending of held) this.context.store(pending);
  }

  #stop(): void {
    this.#held = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#timer !== undefined) this.context.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
