// Why this node refuses writes right now. Several conditions can each stop publishes that need
// the journal (the journal unreachable from a broker-only node, free disk below the watermark);
// they are kept apart so that one clearing does not reopen the gate while another still holds.
// The broker refuses publishes with `SL_BROKER_WRITES_BLOCKED` while any is set, /readyz reports
// not-ready with the reasons, and front ends map the refusal to their protocol's answer (MQTT 5.0
// QoS 1/2: PUBACK/PUBREC 0x97 or 0x80; 3.x: no ack, disconnect only past a bound).
import { defineError } from '../../base/index.js';

export type WriteBlockReason = 'journal-unavailable' | 'disk-low';

export interface WriteBlock {
  reason: WriteBlockReason;
  /** What a user reads in logs and /readyz: what is wrong and what clears it. */
  detail: string;
  /** Clock time (ms) the condition started. */
  since: number;
}

export const WriteGateErrors = {
  writesBlocked: defineError({
    code: 'SL_BROKER_WRITES_BLOCKED',
    meaning: 'The node refuses publishes for now: its journal is unreachable, or free disk space is below the watermark. Deliveries and acknowledgements go on; the node reports not-ready on /readyz.',
    fix: 'Retry later; the refusal clears by itself when the journal answers again or disk space is freed (see /readyz for the reason).',
    message: (reasons: string) => `the node is not accepting publishes: ${reasons}`,
  }),
};

export class WriteGate {
  readonly #blocks = new Map<WriteBlockReason, WriteBlock>();
  readonly #listeners = new Set<(open: boolean) => void>();

  get open(): boolean {
    return this.#blocks.size === 0;
  }

  get blocks(): WriteBlock[] {
    return [...this.#blocks.values()];
  }

  /** Sets a condition (again: keeps its first `since`, updates the detail). */
  block(reason: WriteBlockReason, detail: string, now: number): void {
    const wasOpen = this.open;
    const existing = this.#blocks.get(reason);
    this.#blocks.set(reason, { reason, detail, since: existing?.since ?? now });
    if (wasOpen) this.#notify();
  }

  unblock(reason: WriteBlockReason): void {
    if (!this.#blocks.delete(reason)) return;
    if (this.open) this.#notify();
  }

  /** Called with the new state each time the gate opens or closes; returns an unsubscribe. */
  onChange(listener: (open: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The coded refusal for a write attempted while the gate is closed (`cause`: the failure that found it closed). */
  refusal(cause?: unknown): Error {
    const context = { reasons: this.blocks.map((block) => block.reason) };
    const text = this.blocks.map((block) => `${block.reason} (${block.detail})`).join('; ');
    return cause === undefined ? WriteGateErrors.writesBlocked.create(context, text) : WriteGateErrors.writesBlocked.withCause(cause, context, text);
  }

  #notify(): void {
    const open = this.open;
    for (const listener of this.#listeners) listener(open);
  }
}
