// Run-time ACL rules: the `$acl` system shard (compacted; key = rule id, value = the rule as
// JSON with its position, tombstone = removed) and its projection. The shard is the one source
// of truth: add() and remove() append and resolve once the record has come back through the
// tail of the shard, so every broker over the same journal applies the same rules in the same
// order, and a caller sees its change in effect when the call returns. The projection
// (engine/projection) starts from its latest snapshot and follows the shard.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { JournalRecord } from '../../journal/index.js';
import { createShardIfMissing, type ShardStore } from '../../shard-model/index.js';
import { Projection, type ProjectionCodec } from '../projection/projection.js';
import { parseAclRule, type AclRule } from './acl.js';

export const ACL_SHARD = '$acl';

export interface StoredAclRule {
  id: string;
  /** Rules apply in ascending position (ties: by id). */
  position: number;
  rule: AclRule;
}

type AclRules = Map<string, StoredAclRule>;

/** Snapshot form: a JSON list of [id, position, rule]; rules are validated again when read. */
const aclCodec: ProjectionCodec<AclRules> = {
  version: 1,
  encode: (rules) => Buffer.from(JSON.stringify([...rules.values()].map((entry) => [entry.id, entry.position, entry.rule]))),
  decode: (bytes) => {
    const list = JSON.parse(bytes.toString('utf8')) as Array<[string, number, unknown]>;
    return new Map(list.map(([id, position, rule]) => [id, { id, position, rule: parseAclRule(rule, `"${id}" in a snapshot of ${ACL_SHARD}`) }]));
  },
};

/** Folds one `$acl` record into the rules. */
function applyAclRecord(rules: AclRules, record: JournalRecord, logger: Logger): AclRules {
  if (record.key === null) return rules;
  const id = record.key.toString('utf8');
  if (record.value === null) {
    rules.delete(id);
    return rules;
  }
  try {
    const stored = JSON.parse(record.value.toString('utf8')) as { position?: unknown; rule?: unknown };
    const position = typeof stored.position === 'number' && Number.isFinite(stored.position) ? stored.position : 0;
    rules.set(id, { id, position, rule: parseAclRule(stored.rule, `"${id}" in ${ACL_SHARD} at offset ${record.offset}`) });
  } catch (error) {
    // A record this version cannot read must not stop the others; it is dropped, loudly.
    rules.delete(id);
    logger.error({ err: error, id, offset: record.offset }, `an ${ACL_SHARD} record is not a valid rule; ignoring it`);
  }
  return rules;
}

export class AclStore {
  readonly #store: ShardStore;
  readonly #projection: Projection<AclRules>;
  readonly #listeners: Array<(rules: readonly AclRule[]) => void> = [];
  readonly #abort = new AbortController();
  #following: Promise<void> = Promise.resolve();
  #waiters: Array<{ offset: number; resolve: () => void }> = [];

  private constructor(store: ShardStore, projection: Projection<AclRules>) {
    this.#store = store;
    this.#projection = projection;
  }

  /** Opens the store: creates `$acl` when missing, rebuilds the rules (snapshot + tail), then follows it. */
  static async open(store: ShardStore, logger: Logger): Promise<AclStore> {
    const existing = (await store.list()).find((info) => info.name === ACL_SHARD);
    if (existing === undefined) await createShardIfMissing(store, ACL_SHARD, { compacted: true, segmentBytes: 1024 * 1024 });
    const projection = await Projection.open<AclRules>({ store, shard: ACL_SHARD, logger, initial: () => new Map(), apply: (rules, record) => applyAclRecord(rules, record, logger), codec: aclCodec });
    const acl = new AclStore(store, projection);
    // follow() retries its own failures; the catch keeps anything else from floating.
    acl.#following = projection
      .follow(acl.#abort.signal, () => acl.#changed())
      .catch((error: unknown) => logger.error({ err: error }, `following ${ACL_SHARD} stopped`));
    return acl;
  }

  get #rules(): AclRules {
    return this.#projection.state;
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

  /** Stops following the shard and writes a last snapshot of the rules (clean shutdown). */
  async close(): Promise<void> {
    this.#abort.abort();
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
    await this.#following;
    await this.#projection.close();
  }

  async #write(id: string, value: Buffer | null): Promise<void> {
    const result = await this.#store.append(ACL_SHARD, [{ key: Buffer.from(id), value }]);
    if (this.#projection.offset > result.lastOffset) return;
    await new Promise<void>((resolve) => this.#waiters.push({ offset: result.lastOffset, resolve }));
  }

  #changed(): void {
    const rules = this.rules();
    for (const listener of this.#listeners) listener(rules);
    const applied = this.#projection.offset;
    const due = this.#waiters.filter((waiter) => waiter.offset < applied);
    this.#waiters = this.#waiters.filter((waiter) => waiter.offset >= applied);
    for (const waiter of due) waiter.resolve();
  }
}
