import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Authenticator, type AuthenticatorOptions, type AuthOutcome, type AuthRequest } from './authenticator.js';
import { DenyList } from './deny-list.js';
import { ScramClient } from './scram.js';
import { UserStore } from './user-store.js';

const logger = pino({ level: 'silent' });
const secret = Buffer.from('jwt secret');
const NOW = 1_800_000_000_000;

function token(payload: Record<string, unknown>): string {
  const signed = `${Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

function request(fields: Partial<AuthRequest> = {}): AuthRequest {
  return { clientId: 'c1', username: undefined, password: undefined, remoteAddress: '127.0.0.1:40000', certificateName: undefined, ...fields };
}

async function authenticator(options: Partial<AuthenticatorOptions> = {}, withUsers = true): Promise<Authenticator> {
  const users = await UserStore.open(undefined, withUsers ? [{ username: 'alice', password: 'wonderland' }] : []);
  return new Authenticator({ users, deny: new DenyList(), allowAnonymous: true, certificateAsUsername: false, logger, now: () => NOW, ...options });
}

function verdict(outcome: AuthOutcome): string {
  if (outcome.ok === true) return `ok:${outcome.username ?? '(anonymous)'}`;
  if (outcome.ok === 'continue') return 'continue';
  return outcome.reason;
}

describe('Authenticator', () => {
  it('quick start (no users, anonymous on): everyone connects; a user name is taken unverified', async () => {
    const auth = await authenticator({}, false);
    assert.equal(verdict(await auth.authenticate(request())), 'ok:(anonymous)');
    const claimed = await auth.authenticate(request({ username: 'someone', password: Buffer.from('secret') }));
    assert.equal(verdict(claimed), 'ok:someone');
    assert.deepEqual(claimed.ok === true && claimed.attributes, { method: 'unverified' });
    assert.equal(verdict(await auth.authenticate(request({ password: Buffer.from('secret') }))), 'ok:(anonymous)', 'a password alone names no one');
    const closed = await authenticator({ allowAnonymous: false }, false);
    assert.equal(verdict(await closed.authenticate(request({ username: 'someone', password: Buffer.from('secret') }))), 'not-authorized', 'nothing can verify it and anonymous access is off');
  });

  it('an unknown user name costs the same password check as a known one (no user enumeration by timing)', async () => {
    const users = await UserStore.open(undefined, [{ username: 'alice', password: 'wonderland' }]);
    const checked: string[] = [];
    const verify = users.verify.bind(users);
    users.verify = async (username, password) => {
      checked.push(username);
      return verify(username, password);
    };
    const auth = new Authenticator({ users, deny: new DenyList(), allowAnonymous: true, certificateAsUsername: false, logger, now: () => NOW });
    assert.equal(verdict(await auth.authenticate(request({ username: 'nobody', password: Buffer.from('guess') }))), 'bad-credentials');
    assert.equal(verdict(await auth.authenticate(request({ username: 'alice', password: Buffer.from('guess') }))), 'bad-credentials');
    assert.deepEqual(checked, ['nobody', 'alice']);
  });

  it('users: the right password authenticates, a wrong one or an unknown user is bad-credentials', async () => {
    const auth = await authenticator();
    assert.equal(verdict(await auth.authenticate(request({ username: 'alice', password: Buffer.from('wonderland') }))), 'ok:alice');
    assert.equal(verdict(await auth.authenticate(request({ username: 'alice', password: Buffer.from('nope') }))), 'bad-credentials');
    assert.equal(verdict(await auth.authenticate(request({ username: 'alice' }))), 'bad-credentials');
    assert.equal(verdict(await auth.authenticate(request({ username: 'mallory', password: Buffer.from('x') }))), 'bad-credentials');
    assert.equal(verdict(await auth.authenticate(request())), 'ok:(anonymous)', 'no credentials: anonymous while allowed');
  });

  it('anonymous off: no credentials is not-authorized', async () => {
    const auth = await authenticator({ allowAnonymous: false });
    assert.equal(verdict(await auth.authenticate(request())), 'not-authorized');
    assert.equal(verdict(await auth.authenticate(request({ username: 'alice', password: Buffer.from('wonderland') }))), 'ok:alice');
  });

  it('deny lists by client id, address (CIDR) and user name win over good credentials', async () => {
    const deny = new DenyList({ clientIds: ['banned'], usernames: ['alice'], addresses: ['10.0.0.0/8', '2001:db8::/32'] });
    const auth = await authenticator({ deny });
    const good = { username: 'alice', password: Buffer.from('wonderland') };
    assert.equal(verdict(await auth.authenticate(request({ ...good }))), 'not-authorized', 'user name');
    assert.equal(verdict(await auth.authenticate(request({ clientId: 'banned' }))), 'not-authorized', 'client id');
    assert.equal(verdict(await auth.authenticate(request({ remoteAddress: '10.1.2.3:1883' }))), 'not-authorized', 'IPv4 block');
    assert.equal(verdict(await auth.authenticate(request({ remoteAddress: '::ffff:10.1.2.3:1883' }))), 'not-authorized', 'IPv4-mapped');
    assert.equal(verdict(await auth.authenticate(request({ remoteAddress: '2001:db8::5:1883' }))), 'not-authorized', 'IPv6 block');
    assert.equal(verdict(await auth.authenticate(request({ remoteAddress: '11.0.0.1:1883' }))), 'ok:(anonymous)', 'outside the blocks');
  });

  it('JWT in the password: the claim is the user name, the ACL claim goes to attributes.acl', async () => {
    const auth = await authenticator({ jwt: { key: { alg: 'HS256', secret }, leewaySeconds: 0, usernameClaim: 'sub', aclClaim: 'acl' } });
    const acl = [{ permission: 'allow', action: 'publish', topic: 'devices/${username}/#' }];
    const outcome = await auth.authenticate(request({ username: 'ignored', password: Buffer.from(token({ sub: 'device-7', acl, exp: NOW / 1000 + 60 })) }));
    assert.ok(outcome.ok === true);
    assert.equal(outcome.username, 'device-7');
    assert.deepEqual(outcome.attributes, { method: 'jwt', acl });
    assert.equal(verdict(await auth.authenticate(request({ password: Buffer.from(token({ sub: 'x', exp: NOW / 1000 - 1 })) }))), 'bad-credentials', 'expired');
    assert.equal(verdict(await auth.authenticate(request({ password: Buffer.from(token({ name: 'x' })) }))), 'bad-credentials', 'no sub');
    assert.equal(verdict(await auth.authenticate(request({ password: Buffer.from(token({ sub: 'x', acl: 'allow all' })) }))), 'bad-credentials', 'acl not a list');
  });

  it('certificate names are user names only when the setting says so', async () => {
    const on = await authenticator({ certificateAsUsername: true, allowAnonymous: false });
    assert.equal(verdict(await on.authenticate(request({ certificateName: 'sensor-1' }))), 'ok:sensor-1');
    const off = await authenticator({ certificateAsUsername: false, allowAnonymous: false });
    assert.equal(verdict(await off.authenticate(request({ certificateName: 'sensor-1' }))), 'not-authorized');
  });

  it('SCRAM-SHA-256: challenge, then the server-final on success', async () => {
    const auth = await authenticator();
    const client = new ScramClient('alice', 'wonderland');
    const first = await auth.authenticate(request({ authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(client.first()) }));
    assert.ok(first.ok === 'continue');
    const final = await first.next(Buffer.from(client.final(first.authenticationData.toString())));
    assert.ok(final.ok === true);
    assert.equal(final.username, 'alice');
    assert.equal(client.verify(final.authenticationData?.toString() ?? ''), true);
  });

  it('SCRAM-SHA-256: a wrong password is bad-credentials; other methods, or no SCRAM users, bad-method', async () => {
    const auth = await authenticator();
    const client = new ScramClient('alice', 'guess');
    const first = await auth.authenticate(request({ authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(client.first()) }));
    assert.ok(first.ok === 'continue');
    assert.equal(verdict(await first.next(Buffer.from(client.final(first.authenticationData.toString())))), 'bad-credentials');
    assert.equal(verdict(await first.next(undefined)), 'bad-credentials', 'the exchange cannot be retried');
    assert.equal(verdict(await auth.authenticate(request({ authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('n,,n=alice,r=x') }))), 'bad-method');
    const none = await authenticator({}, false);
    assert.equal(verdict(await none.authenticate(request({ authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('n,,n=alice,r=x') }))), 'bad-method');
  });
});
