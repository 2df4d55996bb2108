// The authentication part of `shardline start`: validates the config file's `users`, `deny` and
// `jwt` sections (errors name the file and the entry, exit 2) before the node starts, so a typo
// costs no start-up work; the node builds the Authenticator from the result
// (node/authentication.ts) once the shard store is there (`$users`).
import { readFile } from 'node:fs/promises';
import { DenyList, parsePasswordHash, parseScramCredentials, rsaPublicKey, type DenyDefinition, type JwtSettings, type UserDefinition } from '../../engine/index.js';
import type { SecurityConfig } from '../../node/index.js';
import { UsageError } from '../command.js';
import type { StartSettings } from './settings.js';

/** RFC 7518 3.2: an HS256 key must be at least as long as the hash output. */
const MIN_SECRET_BYTES = 32;

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function where(settings: StartSettings): string {
  return `config file ${settings.sections.file ?? '(none)'}`;
}

function stringList(value: unknown, label: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) throw new UsageError(`${label} must be a list of non-empty strings`);
  return value as string[];
}

function parseUsers(raw: unknown, file: string): UserDefinition[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new UsageError(`${file}: users must be a list of tables ([[users]] in TOML, a YAML list) with username and password or password-hash`);
  const seen = new Set<string>();
  return raw.map((entry, index) => {
    const label = `${file}: users[${index}]`;
    if (!isTable(entry)) throw new UsageError(`${label} must be a table with username and password or password-hash`);
    for (const key of Object.keys(entry)) if (!['username', 'password', 'password-hash', 'scram'].includes(key)) throw new UsageError(`${label}: unknown key ${JSON.stringify(key)} (use username, password, password-hash, scram)`);
    const { username, password } = entry;
    const passwordHash = entry['password-hash'];
    const scram = entry.scram;
    if (typeof username !== 'string' || username === '') throw new UsageError(`${label}: username must be a non-empty string`);
    const named = `${label} (${JSON.stringify(username)})`;
    if (seen.has(username)) throw new UsageError(`${named}: the user is listed twice`);
    seen.add(username);
    if ((password === undefined) === (passwordHash === undefined)) throw new UsageError(`${named}: give exactly one of password and password-hash`);
    if (password !== undefined && (typeof password !== 'string' || password === '')) throw new UsageError(`${named}: password must be a non-empty string`);
    if (password !== undefined && scram !== undefined) throw new UsageError(`${named}: scram goes with password-hash; a clear password gets SCRAM credentials of its own`);
    try {
      if (passwordHash !== undefined) parsePasswordHash(String(passwordHash));
      if (scram !== undefined) parseScramCredentials(String(scram));
    } catch (error) {
      throw new UsageError(`${named}: ${(error as Error).message}`);
    }
    return { username, ...(password === undefined ? {} : { password: password as string }), ...(passwordHash === undefined ? {} : { passwordHash: String(passwordHash) }), ...(scram === undefined ? {} : { scram: String(scram) }) };
  });
}

function parseDeny(raw: unknown, file: string): DenyDefinition {
  if (raw === undefined) return {};
  if (!isTable(raw)) throw new UsageError(`${file}: deny must be a table with clientids, usernames and/or addresses (lists)`);
  const out: { clientIds?: string[]; usernames?: string[]; addresses?: string[] } = {};
  for (const [key, value] of Object.entries(raw)) {
    const label = `${file}: deny.${key}`;
    if (key === 'clientids') out.clientIds = stringList(value, label);
    else if (key === 'usernames') out.usernames = stringList(value, label);
    else if (key === 'addresses') {
      out.addresses = stringList(value, label);
      out.addresses.forEach((address, index) => {
        try {
          new DenyList({ addresses: [address] });
        } catch (error) {
          throw new UsageError(`${label}[${index}]: ${(error as Error).message}`);
        }
      });
    } else throw new UsageError(`${label}: unknown key (use clientids, usernames, addresses)`);
  }
  return out;
}

async function readKeyFile(path: unknown, label: string): Promise<string> {
  if (typeof path !== 'string' || path === '') throw new UsageError(`${label} must be a file path`);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${label}: cannot read ${path}: ${(error as Error).message}`);
  }
}

const JWT_KEYS = ['secret', 'secret-file', 'public-key-file', 'username-claim', 'acl-claim', 'issuer', 'audience', 'leeway-seconds'];

async function parseJwt(raw: unknown, file: string): Promise<JwtSettings | undefined> {
  if (raw === undefined) return undefined;
  if (!isTable(raw)) throw new UsageError(`${file}: jwt must be a table with secret, secret-file or public-key-file`);
  for (const key of Object.keys(raw)) if (!JWT_KEYS.includes(key)) throw new UsageError(`${file}: jwt.${key}: unknown key (use ${JWT_KEYS.join(', ')})`);
  const keys = ['secret', 'secret-file', 'public-key-file'].filter((key) => raw[key] !== undefined);
  if (keys.length !== 1) throw new UsageError(`${file}: jwt needs exactly one of secret, secret-file (HS256) and public-key-file (RS256), got ${keys.length === 0 ? 'none' : keys.join(' and ')}`);
  let key: JwtSettings['key'];
  if (raw['public-key-file'] !== undefined) {
    const pem = await readKeyFile(raw['public-key-file'], `${file}: jwt.public-key-file`);
    try {
      key = { alg: 'RS256', publicKey: rsaPublicKey(pem) };
    } catch (error) {
      throw new UsageError(`${file}: jwt.public-key-file ${String(raw['public-key-file'])}: not an RSA public key in PEM: ${(error as Error).message}`);
    }
  } else {
    const label = raw.secret !== undefined ? `${file}: jwt.secret` : `${file}: jwt.secret-file`;
    const text = raw.secret !== undefined ? raw.secret : (await readKeyFile(raw['secret-file'], label)).trim();
    if (typeof text !== 'string' || Buffer.byteLength(text) < MIN_SECRET_BYTES) throw new UsageError(`${label} must be a string of at least ${MIN_SECRET_BYTES} bytes (HS256)`);
    key = { alg: 'HS256', secret: Buffer.from(text) };
  }
  const text = (name: string, fallback?: string): string | undefined => {
    const value = raw[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value === '') throw new UsageError(`${file}: jwt.${name} must be a non-empty string`);
    return value;
  };
  const leeway = raw['leeway-seconds'] ?? 30;
  if (typeof leeway !== 'number' || !Number.isInteger(leeway) || leeway < 0 || leeway > 3600) throw new UsageError(`${file}: jwt.leeway-seconds must be an integer in [0, 3600]`);
  const issuer = text('issuer');
  const audience = text('audience');
  return {
    key,
    usernameClaim: text('username-claim', 'sub') as string,
    aclClaim: text('acl-claim', 'acl') as string,
    leewaySeconds: leeway,
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
  };
}

/** Validates the security sections and settings; throws UsageError naming the file and entry. */
export async function securityConfig(settings: StartSettings): Promise<SecurityConfig> {
  const file = where(settings);
  const sections = settings.sections.values;
  return {
    users: parseUsers(sections.users, file),
    deny: parseDeny(sections.deny, file),
    jwt: await parseJwt(sections.jwt, file),
    allowAnonymous: settings.allowAnonymous,
    certificateUsername: settings.certificateUsername,
  };
}
