// MQTT users: those of the config file (`users` section, fixed for the run) plus those added at
// run time, kept in the compacted `$users` system shard (key = user name, value = the user's
// hashes as JSON, tombstone = removed) and replayed into memory at start. An admin API adds and
// removes users through this class; a change applies to the next CONNECT at once.
//
// Per user: a scrypt hash for plain CONNECT passwords and, when the password was given in clear
// (not as a hash), SCRAM-SHA-256 credentials for 5.0 enhanced authentication. Neither can be
// turned back into the password.
import type { JournalRecord } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { AuthErrors } from './errors.js';
import { hashPassword, parsePasswordHash, verifyPassword } from './password-hash.js';
import { formatScramCredentials, parseScramCredentials, scramCredentials, type ScramCredentials } from './scram.js';

export const USERS_SHARD = '$users';
const MAX_USERNAME_LENGTH = 128;
const REPLAY_BATCH = 10_000;

/** A user as configured: a clear password, or a stored hash (and optional SCRAM credentials). */
export interface UserDefinition {
  username: string;
  password?: string;
  passwordHash?: string;
  scram?: string;
}

export interface UserInfo {
  username: string;
  source: 'config' | 'runtime';
  /** Whether the user can use SCRAM-SHA-256 (5.0 enhanced authentication). */
  scram: boolean;
}

interface StoredUser {
  passwordHash: ReturnType<typeof parsePasswordHash>;
  scram: ScramCredentials | undefined;
  source: 'config' | 'runtime';
}

interface UserRecordValue {
  passwordHash: string;
  scram?: string;
}

// Verified against when the user does not exist, so an unknown name costs what a known one does.
let decoyHash: Promise<ReturnType<typeof parsePasswordHash>> | undefined;

function checkUsername(username: string): void {
  if (typeof username !== 'string' || username.length === 0 || username.length > MAX_USERNAME_LENGTH) throw AuthErrors.invalidUser.create({}, `the user name must be 1-${MAX_USERNAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(username)) throw AuthErrors.invalidUser.create({}, 'the user name contains control characters');
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length === 0) throw AuthErrors.invalidUser.create({}, 'the password is empty');
  if (password.includes('\u0000')) throw AuthErrors.invalidUser.create({}, 'the password contains U+0000');
}

export class UserStore {
  readonly #users = new Map<string, StoredUser>();
  #scramUsers = 0;

  private constructor(private readonly store: ShardStore | undefined) {}

  /**
   * Loads the configured users, then (with a store) creates `$users` if missing and replays it.
   * Without a store, run-time changes are kept in memory only (tests, embedded brokers).
   */
  static async open(store: ShardStore | undefined, configured: readonly UserDefinition[] = []): Promise<UserStore> {
    const users = new UserStore(store);
    for (const definition of configured) await users.#define(definition, 'config');
    if (store !== undefined) {
      const existing = await store.list();
      if (!existing.some((info) => info.name === USERS_SHARD)) await store.create(USERS_SHARD, { compacted: true, segmentBytes: 1024 * 1024 });
      const info = await store.info(USERS_SHARD);
      for (let offset = info.startOffset; ; ) {
        const records = await store.read(USERS_SHARD, offset, { maxRecords: REPLAY_BATCH });
        if (records.length === 0) break;
        for (const record of records) users.#apply(record);
        offset = (records[records.length - 1] as JournalRecord).offset + 1;
      }
    }
    return users;
  }

  /** Number of users (configured and run-time). */
  get size(): number {
    return this.#users.size;
  }

  /** Whether any user has SCRAM credentials (else enhanced authentication is not offered). */
  get hasScramUsers(): boolean {
    return this.#scramUsers > 0;
  }

  list(): UserInfo[] {
    return [...this.#users].map(([username, user]) => ({ username, source: user.source, scram: user.scram !== undefined })).sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  }

  has(username: string): boolean {
    return this.#users.has(username);
  }

  /** Adds or replaces a run-time user; resolves once it is in `$users`. */
  async add(definition: UserDefinition): Promise<UserInfo> {
    checkUsername(definition.username);
    if (this.#users.get(definition.username)?.source === 'config') throw AuthErrors.userFromConfig.create({}, definition.username);
    const value = await UserStore.#recordValue(definition);
    const user = UserStore.#fromValue(value, 'runtime');
    await this.store?.append(USERS_SHARD, [{ key: Buffer.from(definition.username), value: Buffer.from(JSON.stringify(value)) }]);
    this.#set(definition.username, user);
    return { username: definition.username, source: 'runtime', scram: user.scram !== undefined };
  }

  /** Removes a run-time user; false when there is none of that name. */
  async remove(username: string): Promise<boolean> {
    const user = this.#users.get(username);
    if (user === undefined) return false;
    if (user.source === 'config') throw AuthErrors.userFromConfig.create({}, username);
    await this.store?.append(USERS_SHARD, [{ key: Buffer.from(username), value: null }]);
    this.#set(username, undefined);
    return true;
  }

  /** Whether the password is the user's (false for an unknown user, after the same work). */
  async verify(username: string, password: string): Promise<boolean> {
    const user = this.#users.get(username);
    if (user === undefined) {
      decoyHash ??= hashPassword('decoy').then(parsePasswordHash);
      await verifyPassword(password, await decoyHash);
      return false;
    }
    return verifyPassword(password, user.passwordHash);
  }

  scramCredentials(username: string): ScramCredentials | undefined {
    return this.#users.get(username)?.scram;
  }

  async #define(definition: UserDefinition, source: 'config' | 'runtime'): Promise<void> {
    checkUsername(definition.username);
    this.#set(definition.username, UserStore.#fromValue(await UserStore.#recordValue(definition), source));
  }

  static async #recordValue(definition: UserDefinition): Promise<UserRecordValue> {
    if (definition.password !== undefined) {
      if (definition.passwordHash !== undefined || definition.scram !== undefined) throw AuthErrors.invalidUser.create({}, 'give either a password or a password hash, not both');
      checkPassword(definition.password);
      return { passwordHash: await hashPassword(definition.password), scram: formatScramCredentials(scramCredentials(definition.password)) };
    }
    if (definition.passwordHash === undefined) throw AuthErrors.invalidUser.create({}, 'a password or a password hash is required');
    try {
      parsePasswordHash(definition.passwordHash);
      if (definition.scram !== undefined) parseScramCredentials(definition.scram);
    } catch (error) {
      throw AuthErrors.invalidUser.create({}, (error as Error).message);
    }
    return { passwordHash: definition.passwordHash, ...(definition.scram === undefined ? {} : { scram: definition.scram }) };
  }

  static #fromValue(value: UserRecordValue, source: 'config' | 'runtime'): StoredUser {
    return { passwordHash: parsePasswordHash(value.passwordHash), scram: value.scram === undefined ? undefined : parseScramCredentials(value.scram), source };
  }

  #apply(record: JournalRecord): void {
    if (record.key === null) return;
    const username = record.key.toString('utf8');
    // A configured user wins over a `$users` record of the same name (written before the name
    // went into the config file).
    if (this.#users.get(username)?.source === 'config') return;
    if (record.value === null || record.value.length === 0) {
      this.#set(username, undefined);
      return;
    }
    try {
      this.#set(username, UserStore.#fromValue(JSON.parse(record.value.toString('utf8')) as UserRecordValue, 'runtime'));
    } catch {
      // A record this build cannot read locks that user out rather than stopping the broker.
      this.#set(username, undefined);
    }
  }

  #set(username: string, user: StoredUser | undefined): void {
    const before = this.#users.get(username);
    if (before?.scram !== undefined) this.#scramUsers -= 1;
    if (user === undefined) this.#users.delete(username);
    else {
      this.#users.set(username, user);
      if (user.scram !== undefined) this.#scramUsers += 1;
    }
  }
}
