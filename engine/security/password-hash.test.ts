import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashPassword, parsePasswordHash, verifyPassword } from './password-hash.js';

// Cheap parameters keep the suite fast; the format and the checks are the same at any cost.
const FAST = { ln: 4, r: 8, p: 1 };

describe('scrypt password hashes', () => {
  it('are self-describing, salted, and verify only the right password', async () => {
    const hash = await hashPassword('s3cret', FAST);
    assert.match(hash, /^\$scrypt\$ln=4,r=8,p=1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(await verifyPassword('s3cret', hash), true);
    assert.equal(await verifyPassword('s3cret ', hash), false);
    assert.equal(await verifyPassword('S3cret', hash), false);
    assert.equal(await verifyPassword('', hash), false);
    assert.notEqual(await hashPassword('s3cret', FAST), hash, 'a new salt each time');
  });

  it('use the default cost when none is given, and the parameters stored in the hash to verify', async () => {
    const hash = await hashPassword('pw');
    assert.deepEqual(parsePasswordHash(hash).parameters, { ln: 14, r: 8, p: 1 });
    assert.equal(await verifyPassword('pw', hash), true);
  });

  it('a fixed salt gives a fixed hash (the stored form is all that is needed to verify)', async () => {
    const salt = Buffer.alloc(16, 7);
    assert.equal(await hashPassword('pw', FAST, salt), await hashPassword('pw', FAST, salt));
  });

  it('compare Unicode passwords in one normal form', async () => {
    const hash = await hashPassword('caf\u00e9', FAST);
    assert.equal(await verifyPassword('cafe\u0301', hash), true);
  });

  for (const [label, text] of [
    ['another prefix', '$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA'],
    ['missing parts', '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0'],
    ['a cost beyond the bound', '$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=='],
    ['a missing parameter', '$scrypt$ln=4,r=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=='],
    ['a repeated parameter', '$scrypt$ln=4,ln=5,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=='],
    ['salt not base64', '$scrypt$ln=4,r=8,p=1$not*base64$aGFzaGhhc2hoYXNoaGFzaA=='],
    ['a short hash', '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA=='],
  ] as const) {
    it(`refuse a stored hash with ${label}`, () => {
      assert.throws(() => parsePasswordHash(text), /not a password hash/);
    });
  }
});
