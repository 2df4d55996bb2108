// Unit tests of the `$acl` store (engine/security/acl-store.ts) over a MemoryShardStore.
//
// Goal: run-time rules are validated, kept in position order, in effect when add()/remove()
// resolve, seen by a second store over the same shard (another broker over the same journal),
// rebuilt by a reopen, and a record that is not a rule is skipped without losing the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ACL_SHARD, AclStore } from './acl-store.js';

const logger = pino({ level: 'silent' });

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), 'condition not reached within 1 s');
}

test('add and remove: validated, in position order, in effect when they resolve, and told to listeners', async () => {
  const store = new MemoryShardStore();
  const acl = await AclStore.open(store, logger);
  const seen: number[] = [];
  acl.onChange((rules) => seen.push(rules.length));
  await assert.rejects(acl.add({ permission: 'allow', action: 'read', topic: '#' }), { code: 'SL_ACL_INVALID_RULE' });
  const second = await acl.add({ permission: 'allow', action: 'all', topic: 'b' });
  assert.deepEqual(acl.rules(), [{ permission: 'allow', action: 'all', topic: 'b' }], 'in effect when add() resolves');
  await acl.add({ permission: 'deny', action: 'publish', topic: 'a' }, { id: 'first', position: -1 });
  assert.deepEqual(
    acl.list().map((entry) => entry.id),
    ['first', second.id],
  );
  await acl.add({ permission: 'deny', action: 'publish', topic: 'a2' }, { id: 'first', position: -1 });
  assert.equal(acl.list()[0]?.rule.topic, 'a2', 'same id replaces');
  assert.equal(await acl.remove(second.id), true);
  assert.equal(await acl.remove('nothing'), false);
  assert.deepEqual(
    acl.list().map((entry) => entry.id),
    ['first'],
  );
  assert.deepEqual(seen, [1, 2, 2, 1]);
  acl.close();
});

test('a second store over the same shard follows the first; a reopen rebuilds the rules; a bad record is skipped', async () => {
  const store = new MemoryShardStore();
  const one = await AclStore.open(store, logger);
  const two = await AclStore.open(store, logger);
  await one.add({ permission: 'allow', action: 'subscribe', topic: 'x/#' }, { id: 'r1' });
  await store.append(ACL_SHARD, [{ key: Buffer.from('junk'), value: Buffer.from('{"rule":{"permission":"maybe"}}') }]);
  await one.add({ permission: 'deny', action: 'all', topic: 'y' }, { id: 'r2' });
  await until(() => two.list().length === 2);
  assert.deepEqual(
    two.list().map((entry) => entry.id),
    ['r1', 'r2'],
  );
  await one.remove('r1');
  await until(() => two.list().length === 1);
  one.close();
  two.close();
  const reopened = await AclStore.open(store, logger);
  assert.deepEqual(reopened.rules(), [{ permission: 'deny', action: 'all', topic: 'y' }]);
  reopened.close();
});
