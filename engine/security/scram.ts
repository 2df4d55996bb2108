// SCRAM-SHA-256 (RFC 5802, RFC 7677) for MQTT 5.0 enhanced authentication. Pure: no I/O, the
// nonce source is injectable (the RFC's test vector fixes it). The MQTT exchange that carries
// these messages (CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK) lives in protocols/mqtt.
//
// What the server keeps per user is the RFC's StoredKey and ServerKey (not the password, and not
// something a thief could log in with), in a self-describing text form:
//   $scram-sha-256$i=4096$<salt, base64>$<StoredKey, base64>$<ServerKey, base64>
// Channel binding is not offered (gs2 flag 'n' or 'y'), and authorization identities other than
// the user itself are refused.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_PREFIX = '$scram-sha-256$';
export const DEFAULT_SCRAM_ITERATIONS = 4096;
const MAX_ITERATIONS = 1_000_000;
/** Longest SCRAM message accepted: user names and nonces are short, so anything longer is abuse. */
const MAX_MESSAGE_BYTES = 2048;

export interface ScramCredentials {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, text: string | Buffer): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

// RFC 4013 SASLprep is approximated by NFKC (its mapping step); passwords are compared as the
// same normalized bytes on both sides, which is what matters between this server and its users.
function normalize(password: string): string {
  return password.normalize('NFKC');
}

/** The server-side credentials for a password (PBKDF2-HMAC-SHA-256). */
export function scramCredentials(password: string, salt: Buffer = randomBytes(16), iterations = DEFAULT_SCRAM_ITERATIONS): ScramCredentials {
  const salted = pbkdf2Sync(normalize(password), salt, iterations, 32, 'sha256');
  return { iterations, salt, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

export function formatScramCredentials(credentials: ScramCredentials): string {
  return `${SCRAM_PREFIX}i=${credentials.iterations}$${credentials.salt.toString('base64')}$${credentials.storedKey.toString('base64')}$${credentials.serverKey.toString('base64')}`;
}

/** Parses the stored form; throws an Error saying what is wrong with it. */
export function parseScramCredentials(encoded: string): ScramCredentials {
  const fail = (why: string): never => {
    throw new Error(`not SCRAM-SHA-256 credentials (${why}); expected ${SCRAM_PREFIX}i=4096$SALT$STOREDKEY$SERVERKEY`);
  };
  if (!encoded.startsWith(SCRAM_PREFIX)) fail(`it does not start with ${SCRAM_PREFIX}`);
  const parts = encoded.slice(SCRAM_PREFIX.length).split('$');
  if (parts.length !== 4) fail('it needs i=ITERATIONS, salt, StoredKey and ServerKey separated by $');
  const [iterationText = '', saltText = '', storedText = '', serverText = ''] = parts;
  const match = /^i=(\d{1,7})$/.exec(iterationText);
  const iterations = match === null ? 0 : Number(match[1]);
  if (iterations < 4096 || iterations > MAX_ITERATIONS) fail(`iterations must be i=4096 to i=${MAX_ITERATIONS}`);
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (![saltText, storedText, serverText].every((text) => b64.test(text))) fail('salt and keys must be base64');
  const storedKey = Buffer.from(storedText, 'base64');
  const serverKey = Buffer.from(serverText, 'base64');
  if (storedKey.length !== 32 || serverKey.length !== 32) fail('StoredKey and ServerKey are 32 bytes each');
  return { iterations, salt: Buffer.from(saltText, 'base64'), storedKey, serverKey };
}

/** RFC 5802 saslname: ',' and '=' are escaped as =2C and =3D. */
function decodeName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

function encodeName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/** Printable ASCII except ',' (RFC 5802 nonce syntax). */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

function attributes(message: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (const part of message.split(',')) {
    const match = /^([A-Za-z])=(.*)$/s.exec(part);
    if (match === null) return undefined;
    out.push([match[1] as string, match[2] as string]);
  }
  return out;
}

export type ScramFailure = 'malformed' | 'bad-credentials' | 'unsupported';

export type ScramStep =
  | { ok: true; message: string; username: string }
  | { ok: false; reason: ScramFailure; detail: string };

export interface ScramServerOptions {
  /** The stored credentials of a user; undefined for an unknown user. */
  lookup(username: string): ScramCredentials | undefined;
  /** Server nonce part; random by default (a test vector fixes it). */
  nonce?: () => string;
  /**
   * Keys the made-up salt of unknown users, so that the answer for a name that does not exist is
   * stable and looks like one that does: the exchange does not reveal which user names exist.
   */
  decoySecret?: Buffer;
}

const defaultDecoySecret = randomBytes(32);

/**
 * One server side of one SCRAM-SHA-256 exchange: first(client-first) gives server-first, then
 * final(client-final) gives server-final once the client proved it knows the password.
 */
export class ScramServer {
  #state: 'start' | 'sent-first' | 'done' = 'start';
  #username = '';
  #gs2Header = '';
  #nonce = '';
  #authPrefix = '';
  #credentials: ScramCredentials | undefined;
  #decoy = false;

  constructor(private readonly options: ScramServerOptions) {}

  first(clientFirst: string): ScramStep {
    if (this.#state !== 'start') return this.#fail('malformed', 'client-first-message sent twice');
    this.#state = 'done';
    if (Buffer.byteLength(clientFirst) > MAX_MESSAGE_BYTES) return this.#fail('malformed', 'client-first-message too long');
    const match = /^([nyp])(=[^,]*)?,(a=[^,]*)?,(.*)$/s.exec(clientFirst);
    if (match === null) return this.#fail('malformed', 'client-first-message has no gs2 header (n,,)');
    if (match[1] === 'p') return this.#fail('unsupported', 'channel binding is not supported');
    if (match[2] !== undefined) return this.#fail('malformed', 'a channel binding name without the p flag');
    const bare = match[4] as string;
    const parsed = attributes(bare);
    if (parsed === undefined || parsed.length < 2) return this.#fail('malformed', 'client-first-message-bare is not n=USER,r=NONCE');
    const [[nKey, nValue], [rKey, rValue]] = parsed as [[string, string], [string, string]];
    if (nKey !== 'n' || rKey !== 'r') return this.#fail(nKey === 'm' ? 'unsupported' : 'malformed', 'client-first-message-bare must start with n=USER,r=NONCE');
    const username = decodeName(nValue);
    if (username === undefined || username === '') return this.#fail('malformed', 'bad user name encoding');
    if (match[3] !== undefined && match[3] !== 'a=' && decodeName(match[3].slice(2)) !== username) return this.#fail('unsupported', 'an authorization identity other than the user');
    if (!NONCE.test(rValue)) return this.#fail('malformed', 'bad client nonce');
    let credentials = this.options.lookup(username);
    if (credentials === undefined) {
      this.#decoy = true;
      const decoy = hmac(this.options.decoySecret ?? defaultDecoySecret, username);
      credentials = { iterations: DEFAULT_SCRAM_ITERATIONS, salt: decoy.subarray(0, 16), storedKey: randomBytes(32), serverKey: randomBytes(32) };
    }
    this.#credentials = credentials;
    this.#username = username;
    this.#gs2Header = clientFirst.slice(0, clientFirst.length - bare.length);
    this.#nonce = rValue + (this.options.nonce ?? (() => randomBytes(18).toString('base64')))();
    const serverFirst = `r=${this.#nonce},s=${credentials.salt.toString('base64')},i=${credentials.iterations}`;
    this.#authPrefix = `${bare},${serverFirst}`;
    this.#state = 'sent-first';
    return { ok: true, message: serverFirst, username };
  }

  final(clientFinal: string): ScramStep {
    if (this.#state !== 'sent-first') return this.#fail('malformed', 'client-final-message out of order');
    this.#state = 'done';
    if (Buffer.byteLength(clientFinal) > MAX_MESSAGE_BYTES) return this.#fail('malformed', 'client-final-message too long');
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) return this.#fail('malformed', 'client-final-message has no proof');
    const withoutProof = clientFinal.slice(0, proofAt);
    const parsed = attributes(withoutProof);
    if (parsed === undefined || parsed.length < 2) return this.#fail('malformed', 'client-final-message is not c=...,r=...,p=...');
    const [[cKey, cValue], [rKey, rValue]] = parsed as [[string, string], [string, string]];
    if (cKey !== 'c' || rKey !== 'r') return this.#fail('malformed', 'client-final-message must start with c=...,r=...');
    if (Buffer.from(cValue, 'base64').toString('latin1') !== this.#gs2Header) return this.#fail('malformed', 'channel binding data does not match the gs2 header');
    if (rValue !== this.#nonce) return this.#fail('malformed', 'nonce does not match');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const credentials = this.#credentials as ScramCredentials;
    if (proof.length !== 32) return this.#fail('bad-credentials', 'wrong proof');
    const authMessage = `${this.#authPrefix},${withoutProof}`;
    const signature = hmac(credentials.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i += 1) clientKey[i] = (proof[i] as number) ^ (signature[i] as number);
    if (!timingSafeEqual(sha256(clientKey), credentials.storedKey) || this.#decoy) return this.#fail('bad-credentials', 'wrong proof');
    return { ok: true, message: `v=${hmac(credentials.serverKey, authMessage).toString('base64')}`, username: this.#username };
  }

  #fail(reason: ScramFailure, detail: string): ScramStep {
    this.#state = 'done';
    return { ok: false, reason, detail };
  }
}

/**
 * The client side (tests, tools): first() → client-first, final(server-first) → client-final,
 * verify(server-final) → whether the server knew the credentials too.
 */
export class ScramClient {
  #bare = '';
  #expectedServerSignature: Buffer | undefined;

  constructor(
    private readonly username: string,
    private readonly password: string,
    private readonly nonce: string = randomBytes(18).toString('base64'),
  ) {}

  first(): string {
    this.#bare = `n=${encodeName(this.username)},r=${this.nonce}`;
    return `n,,${this.#bare}`;
  }

  final(serverFirst: string): string {
    const parsed = new Map(attributes(serverFirst) ?? []);
    const nonce = parsed.get('r') ?? '';
    const salt = Buffer.from(parsed.get('s') ?? '', 'base64');
    const iterations = Number(parsed.get('i'));
    if (!nonce.startsWith(this.nonce) || !Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`bad server-first-message ${JSON.stringify(serverFirst)}`);
    const salted = pbkdf2Sync(normalize(this.password), salt, iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    const authMessage = `${this.#bare},${serverFirst},${withoutProof}`;
    const signature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i += 1) proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
    this.#expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verify(serverFinal: string): boolean {
    const expected = this.#expectedServerSignature;
    if (expected === undefined || !serverFinal.startsWith('v=')) return false;
    const got = Buffer.from(serverFinal.slice(2), 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  }
}
