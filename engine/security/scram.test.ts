import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatScramCredentials, parseScramCredentials, ScramClient, scramCredentials, ScramServer, type ScramCredentials } from './scram.js';

// RFC 7677 section 3: user "user", password "pencil".
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const rfcCredentials = scramCredentials('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);

function server(users: Record<string, ScramCredentials> = { user: rfcCredentials }, nonce?: string): ScramServer {
  return new ScramServer({ lookup: (name) => users[name], ...(nonce === undefined ? {} : { nonce: () => nonce }) });
}

describe('SCRAM-SHA-256', () => {
  it('server: RFC 7677 test vector, message by message', () => {
    const scram = server(undefined, RFC.serverNonce);
    assert.deepEqual(scram.first(RFC.clientFirst), { ok: true, message: RFC.serverFirst, username: 'user' });
    assert.deepEqual(scram.final(RFC.clientFinal), { ok: true, message: RFC.serverFinal, username: 'user' });
  });

  it('client: RFC 7677 test vector, message by message', () => {
    const client = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    assert.equal(client.first(), RFC.clientFirst);
    assert.equal(client.final(RFC.serverFirst), RFC.clientFinal);
    assert.equal(client.verify(RFC.serverFinal), true);
    assert.equal(client.verify('v=AAAA'), false);
  });

  it('client and server agree with random nonces and salts', () => {
    const users = { 'a,b=c': scramCredentials('p\u00e4ss') };
    const client = new ScramClient('a,b=c', 'p\u00e4ss');
    const scram = server(users);
    const first = scram.first(client.first());
    assert.ok(first.ok);
    assert.equal(first.username, 'a,b=c', 'saslname escapes (=2C, =3D) decoded');
    const final = scram.final(client.final(first.message));
    assert.ok(final.ok, JSON.stringify(final));
    assert.equal(client.verify(final.message), true);
  });

  it('a wrong password fails at the final step with bad-credentials', () => {
    const client = new ScramClient('user', 'pencils');
    const scram = server();
    const first = scram.first(client.first());
    assert.ok(first.ok);
    assert.deepEqual(scram.final(client.final(first.message)), { ok: false, reason: 'bad-credentials', detail: 'wrong proof' });
  });

  it('an unknown user gets a plausible, stable challenge and fails only at the final step', () => {
    const a = server();
    const b = server();
    const firstA = a.first('n,,n=nobody,r=abc');
    const firstB = b.first('n,,n=nobody,r=abc');
    assert.ok(firstA.ok && firstB.ok);
    const salt = (message: string): string | undefined => /,s=([^,]+),/.exec(message)?.[1];
    assert.equal(salt(firstA.message), salt(firstB.message), 'same salt for the same unknown name');
    assert.match(firstA.message, /^r=abc[^,]+,s=[A-Za-z0-9+/=]+,i=4096$/);
    const client = new ScramClient('nobody', 'guess', 'abc');
    client.first();
    const final = a.final(client.final(firstA.message));
    assert.equal(final.ok, false);
    assert.equal(!final.ok && final.reason, 'bad-credentials');
  });

  it('a replayed client-final of another exchange fails (fresh server nonce)', () => {
    const scram = server();
    const first = scram.first(RFC.clientFirst);
    assert.ok(first.ok);
    const final = scram.final(RFC.clientFinal);
    assert.equal(final.ok, false);
  });

  for (const [label, clientFirst, reason] of [
    ['no gs2 header', 'n=user,r=abc', 'malformed'],
    ['channel binding required (p=)', 'p=tls-unique,,n=user,r=abc', 'unsupported'],
    ['a mandatory extension (m=)', 'n,,m=ext,n=user,r=abc', 'unsupported'],
    ['another authorization identity', 'n,a=admin,n=user,r=abc', 'unsupported'],
    ['a bad saslname escape', 'n,,n=us=er,r=abc', 'malformed'],
    ['an empty user name', 'n,,n=,r=abc', 'malformed'],
    ['a nonce with a non-printable byte', 'n,,n=user,r=ab\u0001c', 'malformed'],
    ['a huge message', `n,,n=user,r=${'a'.repeat(5000)}`, 'malformed'],
  ] as const) {
    it(`client-first with ${label}: ${reason}`, () => {
      const step = server().first(clientFirst);
      assert.equal(step.ok, false);
      assert.equal(!step.ok && step.reason, reason);
    });
  }

  for (const [label, mutate] of [
    ['another nonce', (text: string) => text.replace('r=rOpr', 'r=xOpr')],
    ['another gs2 header in c=', (text: string) => text.replace('c=biws', 'c=eSws')],
    ['no proof', (text: string) => text.slice(0, text.indexOf(',p='))],
    ['a short proof', (text: string) => text.replace(/p=.*$/, 'p=AAAA')],
  ] as const) {
    it(`client-final with ${label} fails`, () => {
      const scram = server(undefined, RFC.serverNonce);
      assert.ok(scram.first(RFC.clientFirst).ok);
      assert.equal(scram.final(mutate(RFC.clientFinal)).ok, false);
    });
  }

  it('steps out of order fail', () => {
    assert.equal(server().final(RFC.clientFinal).ok, false, 'final before first');
    const scram = server(undefined, RFC.serverNonce);
    assert.ok(scram.first(RFC.clientFirst).ok);
    assert.equal(scram.first(RFC.clientFirst).ok, false, 'first twice');
    assert.equal(scram.final(RFC.clientFinal).ok, false, 'the exchange is over after a failure');
  });

  it('stored credentials round-trip through their text form; bad forms are refused', () => {
    const text = formatScramCredentials(rfcCredentials);
    assert.match(text, /^\$scram-sha-256\$i=4096\$/);
    assert.deepEqual(parseScramCredentials(text), rfcCredentials);
    assert.throws(() => parseScramCredentials(text.replace('i=4096', 'i=10')), /iterations/);
    assert.throws(() => parseScramCredentials('$scram-sha-1$i=4096$a$b$c'), /not SCRAM-SHA-256/);
    assert.throws(() => parseScramCredentials(`${text}$extra`), /not SCRAM-SHA-256/);
  });

  it('property: any user name and password round-trip; any other password fails', () => {
    // Few iterations: the property is about message handling, not key stretching.
    const name = fc.string({ minLength: 1, maxLength: 20 }).filter((text) => !text.includes('\u0000'));
    fc.assert(
      fc.property(name, fc.string({ minLength: 1, maxLength: 20 }), fc.string({ minLength: 1, maxLength: 20 }), (username, password, other) => {
        const credentials = scramCredentials(password, undefined, 4096);
        const agree = (attempt: string): boolean => {
          const client = new ScramClient(username, attempt);
          const scram = server({ [username]: credentials });
          const first = scram.first(client.first());
          assert.ok(first.ok, JSON.stringify(first));
          assert.equal(first.username, username);
          const final = scram.final(client.final(first.message));
          return final.ok && client.verify(final.message);
        };
        assert.equal(agree(password), true);
        fc.pre(other.normalize('NFKC') !== password.normalize('NFKC'));
        assert.equal(agree(other), false);
      }),
      { numRuns: 40 },
    );
  });
});
