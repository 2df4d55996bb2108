// A connection's packets take effect in the order they were sent. A SUBSCRIBE or UNSUBSCRIBE runs
// once every publish the connection sent before it has been handed to subscribers, and the
// packets after it are kept until it is answered: a message the client published before
// subscribing never comes back through that subscription, and one published after it does. No
// publish of the connection starts while it waits (the packets after it are kept), so waiting
// for none pending waits for exactly the earlier ones.
export interface PacketOrderContext {
  readonly connected: boolean;
  /** Stops (or resumes) reading from the transport while a step waits. */
  pause(on: boolean): void;
  /** Handles one kept packet. */
  handle(raw: Buffer): void;
  /** Resolves once the connection's earlier publishes are handed to subscribers; undefined when none is pending. */
  earlierPublishes(): Promise<void> | undefined;
  internalError(error: unknown): void;
}

export class PacketOrder {
  /** While a step waits for the publishes before it: the packets after it. */
  #kept: Buffer[] | undefined;

  constructor(private readonly context: PacketOrderContext) {}

  /** A step waits: packets that arrive now are kept behind it. */
  get waiting(): boolean {
    return this.#kept !== undefined;
  }

  /** Keeps packets behind the waiting step (only while `waiting`). */
  keep(...raws: Buffer[]): void {
    this.#kept?.push(...raws);
  }

  /** Runs a SUBSCRIBE's or UNSUBSCRIBE's step after the publishes before it. */
  run(step: () => Promise<void>): void {
    const context = this.context;
    this.#kept = [];
    context.pause(true);
    const earlier = context.earlierPublishes();
    void (async () => {
      if (earlier !== undefined) await earlier;
      if (context.connected) await step();
    })()
      .catch((error: unknown) => context.internalError(error))
      .finally(() => this.#release());
  }

  /** Handles the packets kept behind a step, until the next step among them. */
  #release(): void {
    const context = this.context;
    const kept = this.#kept ?? [];
    this.#kept = undefined;
    for (const [index, raw] of kept.entries()) {
      if (!context.connected) return;
      if (this.waiting) {
        // A SUBSCRIBE among them waits in turn: the rest stay behind it.
        this.keep(...kept.slice(index));
        return;
      }
      context.handle(raw);
    }
    if (!this.waiting) context.pause(false);
  }
}
