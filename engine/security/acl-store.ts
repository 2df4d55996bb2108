// Run-time ACL rules: the `$acl` system shard (compacted; key = rule id, value = the rule as
// JSON with its position, tombstone = removed) and its projection. The shard is the one source
// of truth: add() and remove() append and resolve once the record has come back through the
// tail of the shard, so every broker over the same journal applies the same rules in the same
// order, and a caller sees its change in effect when the call returns.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { JournalRecord } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { parseAclRule, type AclRule } from './acl.js';

export const ACL_SHARD = '$acl';
const REPLAY_MAX_RECORDS = 10_000;
const TAIL_RETRY_MS = 1000;

export interface StoredAclRule {
  id: string;
  /** Rules apply in ascending position (ties: by id). */
  position: number;
  rule: AclRule;
}

export class AclStore {
  readonly #store: ShardStore;
  readonly #logger: Logger;
  readonly #rules = new Map<string, StoredAclRule>();
  readonly #listeners: Array<(rules: readonly AclRule[]) => void> = [];
  readonly #abort = new AbortController();
  /** Next offset of `$acl` not applied yet. */
  #applied = 0;
  #waiters: Array<{ offset: number; resolve: () => void }> = [];

  private constructor(store: ShardStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Opens the store: creates `$acl` when missing, replays it, then follows it. */
  static async open(store: ShardStore, logger: Logger): Promise<AclStore> {
    const acl = new AclStore(store, logger);
    const existing = (await store.list()).find((info) => info.name === ACL_SHARD);
    const info = existing ?? (await store.create(ACL_SHARD, { compacted: true, segmentBytes: 1024 * 1024 }));
    acl.#applied = info.startOffset;
    for (;;) {
      const records = await store.read(ACL_SHARD, acl.#applied, { maxRecords: REPLAY_MAX_RECORDS });
      if (records.length === 0) break;
      for (const record of records) acl.#apply(record);
    }
    // #follow retries its own failures; the catch keeps anything else from floating.
    acl.#follow().catch((error: unknown) => logger.error({ err: error }, `following ${ACL_SHARD} stopped`));
    return acl;
  }

  /** Rules in effect order. */
  list(): StoredAclRule[] {
    return [...this.#rules.values()].sort((a, b) => a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  rules(): AclRule[] {
    return this.list().map((entry) => entry.rule);
  }

  /** Called with the rules in order after every change (not for the replay at open). */
  onChange(listener: (rules: readonly AclRule[]) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Adds (or, with an existing id, replaces) a rule; validated first (SL_ACL_INVALID_RULE).
   * Without a position it goes after every run-time rule there is.
   */
  async add(raw: unknown, options: { id?: string; position?: number } = {}): Promise<StoredAclRule> {
    const rule = parseAclRule(raw, options.id === undefined ? 'to add' : `"${options.id}"`);
    const id = options.id ?? randomUUID();
    const position = options.position ?? Math.max(0, ...[...this.#rules.values()].map((entry) => entry.position + 1));
    const entry: StoredAclRule = { id, position, rule };
    await this.#write(id, Buffer.from(JSON.stringify({ position, rule })));
    return entry;
  }

  /** Removes a rule; false when there is none with this id. */
  async remove(id: string): Promise<boolean> {
    if (!this.#rules.has(id)) return false;
    await this.#write(id, null);
    return true;
  }

  close(): void {
    this.#abort.abort();
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  async #write(id: string, value: Buffer | null): Promise<void> {
    const result = await this.#store.append(ACL_SHARD, [{ key: Buffer.from(id), value }]);
    if (this.#applied > result.lastOffset) return;
    await new Promise<void>((resolve) => this.#waiters.push({ offset: result.lastOffset, resolve }));
  }

  #apply(record: JournalRecord): void {
    this.#applied = record.offset + 1;
    if (record.key === null) return;
    const id = record.key.toString('utf8');
    if (record.value === null) {
      this.#rules.delete(id);
      return;
    }
    try {
      const stored = JSON.parse(record.value.toString('utf8')) as { position?: unknown; rule?: unknown };
      const position = typeof stored.position === 'number' && Number.isFinite(stored.position) ? stored.position : 0;
      this.#rules.set(id, { id, position, rule: parseAclRule(stored.rule, `"${id}" in ${ACL_SHARD} at offset ${record.offset}`) });
    } catch (error) {
      // A record this version cannot read must not stop the others; it is dropped, loudly.
      this.#rules.delete(id);
      this.#logger.error({ err: error, id, offset: record.offset }, `an ${ACL_SHARD} record is not a valid rule; ignoring it`);
    }
  }

  async #follow(): Promise<void> {
    const signal = this.#abort.signal;
    // Failures in a row: a journal outage is logged once at error, its retries at debug.
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const record of this.#store.tail(ACL_SHARD, this.#applied, { signal })) {
          if (failures > 0) this.#logger.info({ failures }, `following ${ACL_SHARD} again`);
          failures = 0;
          this.#apply(record);
          this.#changed();
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        this.#logger[failures === 1 ? 'error' : 'debug']({ err: error, failures }, `following ${ACL_SHARD} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, TAIL_RETRY_MS).unref());
      }
    }
  }

  #changed(): void {
    const rules = this.rules();
    for (const listener of this.#listeners) listener(rules);
    const due = this.#waiters.filter((waiter) => waiter.offset < this.#applied);
    this.#waiters = this.#waiters.filter((waiter) => waiter.offset >= this.#applied);
    for (const waiter of due) waiter.resolve();
  }
}
