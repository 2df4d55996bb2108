// A node's copy of the placement records it routes by (nodes, shards, settings): read whole,
// then read again whenever the watch stream reports a node or shard change, and every few
// seconds in case a watch event was missed or the group was away. Used by brokers to find each
// shard's leader (PlacedShardStore) and by journal nodes to find each other (replication peers).
// While placement cannot be read the last copy stays.
import type { Logger } from 'pino';
import type { NodeRecord, ShardRecord } from '../../placement/metadata/index.js';
import type { PlacementClient, WatchSubscription } from '../../placement/service/index.js';

export const PLACEMENT_VIEW_POLL_MS = 2_000;

export interface PlacementViewOptions {
  readonly client: PlacementClient;
  readonly logger: Logger;
  readonly pollMs?: number;
  /** Called after each successful read (the journal's peer map is rebuilt here). */
  readonly onUpdate?: (view: PlacementView) => void;
}

export class PlacementView {
  nodes: ReadonlyMap<string, NodeRecord> = new Map();
  shards: ReadonlyMap<string, ShardRecord> = new Map();
  settings: ReadonlyMap<string, unknown> = new Map();
  /** Successful reads so far; 0 until the first. */
  reads = 0;
  #stopped = false;
  #failing = false;
  #reading: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #watch: WatchSubscription | undefined;
  readonly #waiters = new Set<() => void>();

  private constructor(private readonly options: PlacementViewOptions) {}

  static start(options: PlacementViewOptions): PlacementView {
    const view = new PlacementView(options);
    view.#watch = options.client.watch(1, (event) => {
      if (event.type === 'error') return;
      // Not on 'lease' (renewals): the poll keeps leases fresh enough, and a node whose lease
      // runs out is deleted, which is a 'node' change.
      if (event.type === 'changes' && !event.changes.some((change) => change.kind === 'node' || change.kind === 'shard' || change.kind === 'setting')) return;
      view.refresh().catch(() => undefined);
    });
    view.#poll();
    return view;
  }

  /** Reads placement again (coalesced: calls during a read make one more read after it). */
  refresh(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#reading !== null) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = this.#read().finally(() => {
      this.#reading = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.refresh().catch(() => undefined);
      }
    });
    return this.#reading;
  }

  /** Resolves at the next successful read, or after `ms`, whichever comes first. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#watch?.close();
    for (const waiter of [...this.#waiters]) waiter();
  }

  async #read(): Promise<void> {
    const { client, logger } = this.options;
    try {
      const result = await client.read(['nodes', 'shards', 'settings']);
      this.nodes = new Map((result.nodes ?? []).map((node) => [node.id, node]));
      this.shards = new Map((result.shards ?? []).map((shard) => [shard.name, shard]));
      this.settings = new Map((result.settings ?? []).map((setting) => [setting.key, setting.value]));
      this.reads++;
      if (this.#failing) logger.info('placement readable again');
      this.#failing = false;
      this.options.onUpdate?.(this);
      for (const waiter of [...this.#waiters]) waiter();
    } catch (error) {
      if (!this.#failing && !this.#stopped) logger.warn({ err: error }, 'cannot read placement: keeping the last shard leaders and node addresses');
      this.#failing = true;
    }
  }

  #poll(): void {
    if (this.#stopped) return;
    this.refresh()
      .catch(() => undefined)
      .finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(() => this.#poll(), this.options.pollMs ?? PLACEMENT_VIEW_POLL_MS);
        this.#timer.unref();
      });
  }
}
