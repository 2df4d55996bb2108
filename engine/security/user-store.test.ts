import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryShardStore } from '../../shard-model/index.js';
import { hashPassword } from './password-hash.js';
import { USERS_SHARD, UserStore } from './user-store.js';

function code(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

describe('UserStore', () => {
  it('config users verify; a clear password also gives SCRAM credentials, a hash does not', async () => {
    const hash = await hashPassword('h4sh', { ln: 4, r: 8, p: 1 });
    const users = await UserStore.open(undefined, [
      { username: 'alice', password: 'wonderland' },
      { username: 'bob', passwordHash: hash },
    ]);
    assert.equal(await users.verify('alice', 'wonderland'), true);
    assert.equal(await users.verify('alice', 'Wonderland'), false);
    assert.equal(await users.verify('bob', 'h4sh'), true);
    assert.equal(await users.verify('nobody', 'wonderland'), false);
    assert.deepEqual(users.list(), [
      { username: 'alice', source: 'config', scram: true },
      { username: 'bob', source: 'config', scram: false },
    ]);
    assert.equal(users.hasScramUsers, true);
    assert.ok(users.scramCredentials('alice'));
    assert.equal(users.scramCredentials('bob'), undefined);
  });

  it('run-time users go to $users, survive a reopen, and removal is a tombstone', async () => {
    const store = new MemoryShardStore();
    const first = await UserStore.open(store);
    assert.equal(first.size, 0);
    assert.equal(first.hasScramUsers, false);
    await first.add({ username: 'carol', password: 'one' });
    await first.add({ username: 'dave', password: 'two' });
    await first.add({ username: 'carol', password: 'three' });
    assert.equal(await first.remove('dave'), true);
    assert.equal(await first.remove('dave'), false);
    const info = await store.info(USERS_SHARD);
    assert.equal(info.config.compacted, true);
    assert.equal(info.nextOffset, 4, 'three adds and one tombstone');

    const second = await UserStore.open(store);
    assert.deepEqual(second.list(), [{ username: 'carol', source: 'runtime', scram: true }]);
    assert.equal(await second.verify('carol', 'three'), true);
    assert.equal(await second.verify('carol', 'one'), false, 'the latest password wins');
    assert.equal(await second.verify('dave', 'two'), false, 'removed');
    const values = (await store.read(USERS_SHARD, 0)).map((record) => record.value?.toString() ?? '');
    assert.ok(values.every((value) => !value.includes('three') && !value.includes('one')), 'no clear password in the shard');
  });

  it('config users cannot be replaced or removed at run time; a stale $users record does not shadow them', async () => {
    const store = new MemoryShardStore();
    const plain = await UserStore.open(store);
    await plain.add({ username: 'erin', password: 'from-the-shard' });
    const users = await UserStore.open(store, [{ username: 'erin', password: 'from-the-config' }]);
    assert.equal(await users.verify('erin', 'from-the-config'), true);
    assert.equal(await users.verify('erin', 'from-the-shard'), false);
    await assert.rejects(users.add({ username: 'erin', password: 'x' }), (error) => code(error) === 'SL_AUTH_USER_FROM_CONFIG');
    await assert.rejects(users.remove('erin'), (error) => code(error) === 'SL_AUTH_USER_FROM_CONFIG');
  });

  for (const [label, definition] of [
    ['an empty name', { username: '', password: 'x' }],
    ['a name with a control character', { username: 'a\nb', password: 'x' }],
    ['a 129-character name', { username: 'u'.repeat(129), password: 'x' }],
    ['an empty password', { username: 'u', password: '' }],
    ['neither password nor hash', { username: 'u' }],
    ['both password and hash', { username: 'u', password: 'x', passwordHash: '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==' }],
    ['a bad hash', { username: 'u', passwordHash: 'md5:abc' }],
    ['bad SCRAM credentials', { username: 'u', passwordHash: '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==', scram: 'x' }],
  ] as const) {
    it(`refuses a user with ${label} (SL_AUTH_INVALID_USER)`, async () => {
      const users = await UserStore.open(undefined);
      await assert.rejects(users.add(definition), (error) => code(error) === 'SL_AUTH_INVALID_USER');
    });
  }
});
