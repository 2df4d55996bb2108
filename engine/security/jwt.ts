// JSON Web Token verification (RFC 7519, JWS compact form) for MQTT clients that present a token
// as their password. node:crypto only. One key decides the one algorithm accepted: a shared
// secret means HS256, a public key means RS256. The token's own `alg` header never picks the
// algorithm, so neither `alg: none` nor a token signed with HS256 over the RSA public key as a
// secret (algorithm confusion) can pass.
import { createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

export type JwtKey = { alg: 'HS256'; secret: Buffer } | { alg: 'RS256'; publicKey: KeyObject };

export interface JwtOptions {
  key: JwtKey;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required `aud` (the token's aud may be a list that contains it), when set. */
  audience?: string;
  /** Clock skew tolerated on exp and nbf. */
  leewaySeconds: number;
}

export type JwtResult = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: string };

/** Longest token accepted: bounds the work a CONNECT can cause. */
const MAX_TOKEN_BYTES = 16 * 1024;
const SEGMENT = /^[A-Za-z0-9_-]*$/;

/** Three base64url segments, the first starting like a JSON object: worth treating as a token. */
export function looksLikeJwt(text: string): boolean {
  return text.startsWith('eyJ') && text.length <= MAX_TOKEN_BYTES && text.split('.').length === 3;
}

/** A PEM public key (SPKI or PKCS#1) as an RS256 key; throws when it is not an RSA public key. */
export function rsaPublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`the key is ${key.asymmetricKeyType ?? 'not asymmetric'}, RS256 needs an RSA public key`);
  return key;
}

function decodeJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function verifyJwt(token: string, options: JwtOptions, nowMs: number): JwtResult {
  if (token.length > MAX_TOKEN_BYTES) return { ok: false, reason: 'token too long' };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => SEGMENT.test(part))) return { ok: false, reason: 'not a compact JWS (three base64url parts)' };
  const [headerText, payloadText, signatureText] = parts as [string, string, string];
  const header = decodeJson(headerText);
  if (!isObject(header)) return { ok: false, reason: 'header is not a JSON object' };
  if (header.alg !== options.key.alg) return { ok: false, reason: `algorithm ${JSON.stringify(header.alg)} is not the configured ${options.key.alg}` };
  // RFC 7515 4.1.11: extensions we do not understand must not be ignored.
  if (header.crit !== undefined) return { ok: false, reason: 'critical header extensions are not supported' };
  const signature = Buffer.from(signatureText, 'base64url');
  const signed = Buffer.from(`${headerText}.${payloadText}`);
  let valid: boolean;
  if (options.key.alg === 'HS256') {
    const expected = createHmac('sha256', options.key.secret).update(signed).digest();
    valid = signature.length === expected.length && timingSafeEqual(signature, expected);
  } else {
    valid = verify('sha256', signed, options.key.publicKey, signature);
  }
  if (!valid) return { ok: false, reason: 'bad signature' };
  const claims = decodeJson(payloadText);
  if (!isObject(claims)) return { ok: false, reason: 'payload is not a JSON object' };
  const now = nowMs / 1000;
  const leeway = options.leewaySeconds;
  if (claims.exp !== undefined && (typeof claims.exp !== 'number' || now >= claims.exp + leeway)) return { ok: false, reason: 'expired' };
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || now + leeway < claims.nbf)) return { ok: false, reason: 'not valid yet (nbf)' };
  if (options.issuer !== undefined && claims.iss !== options.issuer) return { ok: false, reason: 'wrong issuer' };
  if (options.audience !== undefined) {
    const audience = claims.aud;
    const matches = Array.isArray(audience) ? audience.includes(options.audience) : audience === options.audience;
    if (!matches) return { ok: false, reason: 'wrong audience' };
  }
  return { ok: true, claims };
}

/** A claim by name, or by a dotted path into nested objects (`mqtt.acl`). */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let value: unknown = claims;
  for (const step of path.split('.')) {
    if (!isObject(value) || !Object.hasOwn(value, step)) return undefined;
    value = value[step];
  }
  return value;
}
