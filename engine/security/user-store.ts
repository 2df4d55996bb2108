// MQTT users: those of the config file (`users` section, fixed for the run) plus those added at
// run time, kept in the compacted `$users` system shard (key = user name, value = the user's
// hashes as JSON, tombstone = removed) and rebuilt in memory at start (engine/projection: the
// latest snapshot of `$users`, then the records after it). An admin API adds and
// removes users through this class; a change applies to the next CONNECT at once.
//
// Per user: a scrypt hash for plain CONNECT passwords and, when the password was given in clear
// (not as a hash), SCRAM-SHA-256 credentials for 5.0 enhanced authentication. Neither can be
// turned back into the password.
import type { Logger } from 'pino';
import pino from 'pino';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { createShardIfMissing, type ShardStore } from '../../shard-model/index.js';
import { Projection, type ProjectionCodec } from '../projection/projection.js';
import { AuthErrors } from './errors.js';
import { hashPassword, parsePasswordHash, verifyPassword } from './password-hash.js';
import { formatScramCredentials, parseScramCredentials, scramCredentials, type ScramCredentials } from './scram.js';

export const USERS_SHARD = '$users';
const MAX_USERNAME_LENGTH = 128;

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

/** The projection of `$users`: the run-time users' record values by name (the config's users are laid over them). */
type RuntimeUsers = Map<string, UserRecordValue>;

const usersCodec: ProjectionCodec<RuntimeUsers> = {
  version: 1,
  encode: (users) => Buffer.from(JSON.stringify([...users])),
  decode: (bytes) => {
    const users = new Map(JSON.parse(bytes.toString('utf8')) as Array<[string, UserRecordValue]>);
    for (const value of users.values()) UserStore.check(value);
    return users;
  },
};

/** Folds one `$users` record: a value this build cannot read removes the user, as a tombstone does. */
function applyUserRecord(users: RuntimeUsers, record: Pick<JournalRecord, 'key' | 'value'>): RuntimeUsers {
  if (record.key === null) return users;
  const username = record.key.toString('utf8');
  if (record.value === null || record.value.length === 0) {
    users.delete(username);
    return users;
  }
  try {
    const value = JSON.parse(record.value.toString('utf8')) as UserRecordValue;
    UserStore.check(value);
    users.set(username, value);
  } catch {
    // A record this build cannot read locks that user out rather than stopping the broker.
    users.delete(username);
  }
  return users;
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

  readonly #projection: Projection<RuntimeUsers> | undefined;
  readonly #abort = new AbortController();
  #following: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: ShardStore | undefined,
    projection: Projection<RuntimeUsers> | undefined,
  ) {
    this.#projection = projection;
  }

  /**
   * Loads the configured users, then (with a store) creates `$users` if missing and rebuilds
   * the run-time users from it. Without a store, run-time changes are kept in memory only
   * (tests, embedded brokers).
   */
  /**
   * `follow`: brokers sharing one journal (engine/peers) also apply the users other brokers'
   * admin APIs write, by following `$users` as the ACL rules are followed.
   */
  static async open(store: ShardStore | undefined, configured: readonly UserDefinition[] = [], logger: Logger = pino({ level: 'silent' }), follow = false): Promise<UserStore> {
    let projection: Projection<RuntimeUsers> | undefined;
    if (store !== undefined) {
      const existing = await store.list();
      if (!existing.some((info) => info.name === USERS_SHARD)) await createShardIfMissing(store, USERS_SHARD, { compacted: true, segmentBytes: 1024 * 1024 });
      projection = await Projection.open<RuntimeUsers>({ store, shard: USERS_SHARD, logger, initial: () => new Map(), apply: applyUserRecord, codec: usersCodec });
    }
    const users = new UserStore(store, projection);
    for (const definition of configured) await users.#define(definition, 'config');
    // A configured user wins over a `$users` record of the same name (written before the name
    // went into the config file).
    for (const [username, value] of projection?.state ?? []) if (users.#users.get(username)?.source !== 'config') users.#set(username, UserStore.#fromValue(value, 'runtime'));
    if (follow && projection !== undefined) {
      // follow() retries its own failures; the catch keeps anything else from floating.
      users.#following = projection
        .follow(users.#abort.signal, (record) => users.#followed(record.key?.toString('utf8'), projection.state, logger))
        .catch((error: unknown) => logger.error({ err: error }, `following ${USERS_SHARD} stopped`));
    }
    return users;
  }

  /** A `$users` record read from the shard (maybe another broker's): the user as the shard now has it, unless the config file names it. */
  #followed(username: string | undefined, state: RuntimeUsers, logger: Logger): void {
    if (username === undefined || this.#users.get(username)?.source === 'config') return;
    const value = state.get(username);
    try {
      this.#set(username, value === undefined ? undefined : UserStore.#fromValue(value, 'runtime'));
    } catch (error) {
      logger.error({ err: error, username }, `a ${USERS_SHARD} record cannot be used; the user is left as it was`);
    }
  }

  /** Throws when a `$users` value cannot be used (its hash or SCRAM credentials do not parse). */
  static check(value: UserRecordValue): void {
    UserStore.#fromValue(value, 'runtime');
  }

  /** Clean shutdown: a last snapshot of the run-time users. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#following;
    await this.#projection?.close();
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
    await this.#append({ key: Buffer.from(definition.username), value: Buffer.from(JSON.stringify(value)) });
    this.#set(definition.username, user);
    return { username: definition.username, source: 'runtime', scram: user.scram !== undefined };
  }

  /** Removes a run-time user; false when there is none of that name. */
  async remove(username: string): Promise<boolean> {
    const user = this.#users.get(username);
    if (user === undefined) return false;
    if (user.source === 'config') throw AuthErrors.userFromConfig.create({}, username);
    await this.#append({ key: Buffer.from(username), value: null });
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

  async #append(record: RecordInput): Promise<void> {
    if (this.store === undefined) return;
    const { baseOffset } = await this.store.append(USERS_SHARD, [record]);
    this.#projection?.appended(baseOffset, [record]);
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
