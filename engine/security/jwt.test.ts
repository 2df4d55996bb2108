import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { claimAt, looksLikeJwt, rsaPublicKey, verifyJwt, type JwtOptions } from './jwt.js';

const NOW = Date.UTC(2026, 0, 1);
const nowSeconds = NOW / 1000;
const secret = Buffer.from('a shared secret of reasonable length');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function hs256(payload: unknown, header: unknown = { alg: 'HS256', typ: 'JWT' }, key: Buffer | string = secret): string {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

function rs256(payload: unknown, header: unknown = { alg: 'RS256', typ: 'JWT' }): string {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
}

const HS: JwtOptions = { key: { alg: 'HS256', secret }, leewaySeconds: 0 };
const RS: JwtOptions = { key: { alg: 'RS256', publicKey: rsaPublicKey(publicPem) }, leewaySeconds: 0 };

function reason(result: ReturnType<typeof verifyJwt>): string {
  return result.ok ? 'ok' : result.reason;
}

describe('JWT verification', () => {
  it('HS256: a valid token gives its claims', () => {
    const result = verifyJwt(hs256({ sub: 'alice', exp: nowSeconds + 60 }), HS, NOW);
    assert.deepEqual(result, { ok: true, claims: { sub: 'alice', exp: nowSeconds + 60 } });
  });

  it('RS256: a valid token gives its claims', () => {
    const result = verifyJwt(rs256({ sub: 'bob', nbf: nowSeconds - 1 }), RS, NOW);
    assert.equal(reason(result), 'ok');
  });

  it('expired: exp at or before now is refused; leeway tolerates skew', () => {
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', exp: nowSeconds }), HS, NOW)), 'expired');
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', exp: nowSeconds - 10 }), { ...HS, leewaySeconds: 30 }, NOW)), 'ok');
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', exp: 'tomorrow' }), HS, NOW)), 'expired', 'a non-numeric exp is not "no expiry"');
  });

  it('not valid yet: nbf in the future is refused', () => {
    assert.equal(reason(verifyJwt(rs256({ sub: 'a', nbf: nowSeconds + 100 }), RS, NOW)), 'not valid yet (nbf)');
  });

  it('a bad signature is refused (tampered payload, other key, cut signature)', () => {
    const token = hs256({ sub: 'alice' });
    const [header, , signature] = token.split('.');
    assert.equal(reason(verifyJwt(`${header}.${b64({ sub: 'admin' })}.${signature}`, HS, NOW)), 'bad signature');
    assert.equal(reason(verifyJwt(hs256({ sub: 'alice' }, undefined, 'another secret'), HS, NOW)), 'bad signature');
    assert.equal(reason(verifyJwt(token.slice(0, -4), HS, NOW)), 'bad signature');
    const rsa = rs256({ sub: 'alice' }).split('.');
    assert.equal(reason(verifyJwt(`${rsa[0]}.${b64({ sub: 'admin' })}.${rsa[2]}`, RS, NOW)), 'bad signature');
  });

  it("alg 'none' is refused, with or without a signature", () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'admin' })}.`;
    assert.match(reason(verifyJwt(unsigned, HS, NOW)), /algorithm "none"/);
    assert.match(reason(verifyJwt(unsigned, RS, NOW)), /algorithm "none"/);
    assert.match(reason(verifyJwt(hs256({ sub: 'admin' }, { alg: 'none' }), HS, NOW)), /algorithm "none"/);
  });

  it('algorithm confusion: an HS256 token keyed with the RSA public key is refused by an RS256 verifier', () => {
    const forged = hs256({ sub: 'admin' }, { alg: 'HS256', typ: 'JWT' }, publicPem);
    assert.match(reason(verifyJwt(forged, RS, NOW)), /algorithm "HS256" is not the configured RS256/);
    assert.match(reason(verifyJwt(rs256({ sub: 'a' }), HS, NOW)), /algorithm "RS256" is not the configured HS256/);
  });

  it('issuer and audience, when configured, must match', () => {
    const options = { ...HS, issuer: 'https://idp', audience: 'shardline' };
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', iss: 'https://idp', aud: 'shardline' }), options, NOW)), 'ok');
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', iss: 'https://idp', aud: ['x', 'shardline'] }), options, NOW)), 'ok');
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', iss: 'https://evil', aud: 'shardline' }), options, NOW)), 'wrong issuer');
    assert.equal(reason(verifyJwt(hs256({ sub: 'a', iss: 'https://idp', aud: 'other' }), options, NOW)), 'wrong audience');
  });

  it('malformed tokens and critical extensions are refused', () => {
    assert.match(reason(verifyJwt('abc', HS, NOW)), /compact JWS/);
    assert.match(reason(verifyJwt('a.b.c.d', HS, NOW)), /compact JWS/);
    assert.match(reason(verifyJwt('a+b.c.d', HS, NOW)), /compact JWS/);
    assert.match(reason(verifyJwt(`${b64('not json')}.${b64({})}.x`, HS, NOW)), /header/);
    assert.match(reason(verifyJwt(hs256('[1,2]'), HS, NOW)), /payload/);
    assert.match(reason(verifyJwt(hs256({ sub: 'a' }, { alg: 'HS256', crit: ['exp'] }), HS, NOW)), /critical/);
    assert.match(reason(verifyJwt(`${'a'.repeat(20_000)}.b.c`, HS, NOW)), /too long/);
  });

  it('rsaPublicKey refuses keys that are not RSA public keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => rsaPublicKey(ec), /RSA/);
    assert.throws(() => rsaPublicKey('not a key'));
  });

  it('claimAt reads a claim by name or by a dotted path', () => {
    const claims = { sub: 'a', 'x.y': 1, mqtt: { acl: [{ permission: 'allow' }] } };
    assert.equal(claimAt(claims, 'sub'), 'a');
    assert.equal(claimAt(claims, 'x.y'), 1);
    assert.deepEqual(claimAt(claims, 'mqtt.acl'), [{ permission: 'allow' }]);
    assert.equal(claimAt(claims, 'mqtt.none'), undefined);
    assert.equal(claimAt(claims, 'constructor'), undefined);
  });

  it('looksLikeJwt tells a token from an ordinary password', () => {
    assert.equal(looksLikeJwt(hs256({ sub: 'a' })), true);
    assert.equal(looksLikeJwt('hunter2'), false);
    assert.equal(looksLikeJwt('a.b.c'), false);
  });
});
