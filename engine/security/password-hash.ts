// Salted password hashes for MQTT users: scrypt (node:crypto) in a self-describing text form,
//   $scrypt$ln=14,r=8,p=1$<salt, base64>$<hash, base64>
// so the cost can be raised later without breaking hashes already stored (each hash carries its
// own parameters). The hash is what the config file and the `$users` shard keep; the password
// itself is never stored.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export const PASSWORD_HASH_PREFIX = '$scrypt$';

export interface ScryptParameters {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
}

/** 16 MiB and ~50 ms per hash on a current core: costly to guess, cheap enough per CONNECT. */
export const DEFAULT_SCRYPT: ScryptParameters = { ln: 14, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
// Bounds for parameters read from a stored hash: a hostile or mistyped one must not make a
// CONNECT allocate gigabytes or spin for minutes.
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;

interface ParsedHash {
  parameters: ScryptParameters;
  salt: Buffer;
  hash: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses a stored hash; throws an Error saying what is wrong with it. */
export function parsePasswordHash(encoded: string): ParsedHash {
  const fail = (why: string): never => {
    throw new Error(`not a password hash (${why}); expected ${PASSWORD_HASH_PREFIX}ln=14,r=8,p=1$SALT$HASH (shardline ctl user hash prints one)`);
  };
  if (!encoded.startsWith(PASSWORD_HASH_PREFIX)) fail(`it does not start with ${PASSWORD_HASH_PREFIX}`);
  const parts = encoded.slice(PASSWORD_HASH_PREFIX.length).split('$');
  if (parts.length !== 3) fail('it needs parameters, salt and hash separated by $');
  const [parameterText = '', saltText = '', hashText = ''] = parts;
  const values = new Map<string, number>();
  for (const item of parameterText.split(',')) {
    const match = /^(ln|r|p)=(\d{1,3})$/.exec(item);
    if (match === null || values.has(match[1] as string)) fail(`bad parameter ${JSON.stringify(item)}`);
    values.set((match as RegExpExecArray)[1] as string, Number((match as RegExpExecArray)[2]));
  }
  const ln = values.get('ln');
  const r = values.get('r');
  const p = values.get('p');
  if (ln === undefined || r === undefined || p === undefined) return fail('ln, r and p are all required');
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) fail(`parameters outside ln 1-${MAX_LN}, r 1-${MAX_R}, p 1-${MAX_P}`);
  if (!BASE64.test(saltText) || !BASE64.test(hashText)) fail('salt and hash must be base64');
  const salt = Buffer.from(saltText, 'base64');
  const hash = Buffer.from(hashText, 'base64');
  if (salt.length < 8 || hash.length < 16) fail('salt or hash too short');
  return { parameters: { ln, r, p }, salt, hash };
}

function derive(password: string, salt: Buffer, parameters: ScryptParameters, length: number): Promise<Buffer> {
  const N = 2 ** parameters.ln;
  // scrypt needs about 128 * N * r bytes; node's default cap (32 MiB) is too low past ln=14.
  const maxmem = 256 * N * parameters.r + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, { N, r: parameters.r, p: parameters.p, maxmem }, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
}

/** A new salted hash of the password. */
export async function hashPassword(password: string, parameters: ScryptParameters = DEFAULT_SCRYPT, salt: Buffer = randomBytes(SALT_BYTES)): Promise<string> {
  const hash = await derive(password, salt, parameters, HASH_BYTES);
  return `${PASSWORD_HASH_PREFIX}ln=${parameters.ln},r=${parameters.r},p=${parameters.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether the password matches the stored hash (constant-time comparison). */
export async function verifyPassword(password: string, encoded: string | ParsedHash): Promise<boolean> {
  const parsed = typeof encoded === 'string' ? parsePasswordHash(encoded) : encoded;
  const candidate = await derive(password, parsed.salt, parsed.parameters, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}
