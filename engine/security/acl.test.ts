// Unit tests of ACL rule evaluation (engine/security/acl.ts).
//
// Goal: each rule of the ACL holds on its own: validation names the bad rule, first match wins,
// actions, selectors (username, client id, address/CIDR incl. IPv4-mapped IPv6), placeholders
// (and that a value holding '/', '+' or '#' can neither widen an allow nor dodge a deny), the
// default, client-own rules first, run-time rules before config rules and effective at once,
// the subscribe question (a rule decides a filter only when it covers it) and the $share,
// $exclusive, $replay and $delayed prefixes. Random rule sets: property-tests/acl.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClientIdentity } from './access.js';
import { AclPolicy, aclPublishTopic, aclSubscriptionFilter, effectiveAclDefault, filterCovers, parseAclRule, parseAclRules, type AclRule } from './acl.js';

function who(clientId: string, username?: string, remoteAddress = '127.0.0.1', attributes?: Record<string, unknown>): ClientIdentity {
  return { clientId, username, remoteAddress, protocol: 'mqtt', ...(attributes === undefined ? {} : { attributes }) };
}

function policy(rules: unknown[], defaultPermission: 'allow' | 'deny' = 'deny'): AclPolicy {
  return new AclPolicy({ configRules: parseAclRules(rules, 'test'), defaultPermission });
}

describe('rule validation', () => {
  test('a valid rule keeps its fields; single strings become lists', () => {
    assert.deepEqual(parseAclRule({ permission: 'allow', action: 'publish', topic: 'a/${clientid}/#', username: 'u', ipaddr: ['10.0.0.0/8', '::1'] }, 'r'), {
      permission: 'allow',
      action: 'publish',
      topic: 'a/${clientid}/#',
      username: ['u'],
      ipaddr: ['10.0.0.0/8', '::1'],
    });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', 'allow all', /table\/object/],
    ['unknown permission', { permission: 'maybe', action: 'all', topic: '#' }, /permission/],
    ['unknown action', { permission: 'allow', action: 'read', topic: '#' }, /action/],
    ['missing topic', { permission: 'allow', action: 'all' }, /topic/],
    ['# not last', { permission: 'allow', action: 'all', topic: 'a/#/b' }, /topic/],
    ['+ inside a level', { permission: 'allow', action: 'all', topic: 'a/b+' }, /topic/],
    ['unknown field', { permission: 'allow', action: 'all', topic: '#', user: 'x' }, /unknown field "user"/],
    ['empty username list', { permission: 'allow', action: 'all', topic: '#', username: [] }, /username/],
    ['bad CIDR', { permission: 'allow', action: 'all', topic: '#', ipaddr: '10.0.0.0/33' }, /ipaddr/],
    ['not an address', { permission: 'allow', action: 'all', topic: '#', ipaddr: 'example.com' }, /ipaddr/],
  ];
  for (const [name, raw, why] of bad) {
    test(`refused with SL_ACL_INVALID_RULE: ${name}`, () => {
      assert.throws(
        () => parseAclRules([{ permission: 'allow', action: 'all', topic: 'ok' }, raw], 'acl.toml'),
        (error: Error & { code?: string }) => error.code === 'SL_ACL_INVALID_RULE' && /#2 in acl\.toml/.test(error.message) && why.test(error.message),
      );
    });
  }

  test('the section must be a list', () => {
    assert.throws(() => parseAclRules({ permission: 'allow' }, 'x.yaml'), { code: 'SL_ACL_INVALID_RULE' });
    assert.deepEqual(parseAclRules(undefined, 'x'), []);
  });
});

describe('evaluation', () => {
  test('first match wins, then the default', () => {
    const acl = policy([
      { permission: 'deny', action: 'publish', topic: 'a/secret' },
      { permission: 'allow', action: 'publish', topic: 'a/#' },
    ]);
    const alice = who('c1', 'alice');
    assert.equal(acl.mayPublish(alice, 'a/secret'), false);
    assert.equal(acl.mayPublish(alice, 'a/open'), true);
    assert.equal(acl.mayPublish(alice, 'b'), false, 'default deny');
    assert.equal(policy([{ permission: 'deny', action: 'publish', topic: 'a/secret' }], 'allow').mayPublish(alice, 'b'), true, 'default allow');
  });

  test('actions: publish rules do not grant reading, subscribe rules do not grant publishing, all grants both', () => {
    const acl = policy([
      { permission: 'allow', action: 'publish', topic: 'p' },
      { permission: 'allow', action: 'subscribe', topic: 's' },
      { permission: 'allow', action: 'all', topic: 'both' },
    ]);
    const c = who('c');
    assert.deepEqual(
      ['p', 's', 'both'].map((topic) => [acl.mayPublish(c, topic), acl.maySubscribe(c, topic), acl.mayRead(c, topic)]),
      [
        [true, false, false],
        [false, true, true],
        [true, true, true],
      ],
    );
  });

  test('selectors: username, client id and address must all match', () => {
    const acl = policy([
      { permission: 'allow', action: 'all', topic: 'u', username: ['alice', 'bob'] },
      { permission: 'allow', action: 'all', topic: 'c', clientid: 'dev-1' },
      { permission: 'allow', action: 'all', topic: 'n4', ipaddr: '10.1.0.0/16' },
      { permission: 'allow', action: 'all', topic: 'n6', ipaddr: 'fd00::/8' },
      { permission: 'allow', action: 'all', topic: 'both', username: 'alice', clientid: 'dev-1' },
    ]);
    assert.equal(acl.mayPublish(who('x', 'bob'), 'u'), true);
    assert.equal(acl.mayPublish(who('x', 'carol'), 'u'), false);
    assert.equal(acl.mayPublish(who('x'), 'u'), false, 'anonymous has no user name');
    assert.equal(acl.mayPublish(who('dev-1'), 'c'), true);
    assert.equal(acl.mayPublish(who('dev-2'), 'c'), false);
    assert.equal(acl.mayPublish(who('x', undefined, '10.1.2.3'), 'n4'), true);
    assert.equal(acl.mayPublish(who('x', undefined, '::ffff:10.1.2.3'), 'n4'), true, 'IPv4-mapped IPv6 peer');
    assert.equal(acl.mayPublish(who('x', undefined, '10.2.0.1'), 'n4'), false);
    assert.equal(acl.mayPublish(who('x', undefined, '10.1.2.3:50123'), 'n4'), true, 'an address with its port');
    assert.equal(acl.mayPublish(who('x', undefined, '::ffff:10.1.2.3:50123'), 'n4'), true);
    assert.equal(acl.mayPublish(who('x', undefined, '[fd12::1]:1883'), 'n6'), true);
    assert.equal(acl.mayPublish(who('x', undefined, 'fd12::1'), 'n6'), true);
    assert.equal(acl.mayPublish(who('x', undefined, '2001:db8::1'), 'n6'), false);
    assert.equal(acl.mayPublish(who('dev-1', 'alice'), 'both'), true);
    assert.equal(acl.mayPublish(who('dev-1', 'bob'), 'both'), false);
  });

  test('placeholders: each client gets its own topics', () => {
    const acl = policy([
      { permission: 'allow', action: 'all', topic: 'clients/${clientid}/#' },
      { permission: 'allow', action: 'all', topic: 'users/${username}/#' },
    ]);
    assert.equal(acl.mayPublish(who('c1'), 'clients/c1/x'), true);
    assert.equal(acl.mayPublish(who('c1'), 'clients/c2/x'), false);
    assert.equal(acl.mayRead(who('c1', 'alice'), 'users/alice/inbox'), true);
    assert.equal(acl.mayRead(who('c1', 'alice'), 'users/bob/inbox'), false);
    assert.equal(acl.mayRead(who('c1'), 'users/undefined/inbox'), false, 'no user name, no ${username} rule');
  });

  test('a placeholder value with /, + or # cannot widen an allow rule', () => {
    const acl = policy([{ permission: 'allow', action: 'all', topic: 'clients/${clientid}/#' }]);
    assert.equal(acl.mayPublish(who('c1/x'), 'clients/c1/x/y'), false);
    assert.equal(acl.maySubscribe(who('+'), 'clients/+/#'), false);
    assert.equal(acl.maySubscribe(who('#'), 'clients/#'), false);
    assert.equal(acl.maySubscribe(who(''), 'clients//#'), false);
  });

  test('a placeholder value starting with $ cannot move a rule into the $ topics ($SYS)', () => {
    const acl = policy([{ permission: 'allow', action: 'all', topic: '${clientid}/#' }, { permission: 'allow', action: 'all', topic: 'u/${username}/#' }]);
    assert.equal(acl.mayPublish(who('c1'), 'c1/x'), true);
    assert.equal(acl.maySubscribe(who('$SYS'), '$SYS/#'), false);
    assert.equal(acl.mayRead(who('$SYS'), '$SYS/brokers/n/version'), false);
    assert.equal(acl.mayPublish(who('$SYS'), '$SYS/brokers/n/version'), false);
    assert.equal(acl.mayRead(who('c1', '$x'), 'u/$x/inbox'), false);
  });

  test('a placeholder value with /, + or # cannot dodge a deny rule: the rule then denies everything of its action', () => {
    const acl = policy(
      [
        { permission: 'deny', action: 'publish', topic: 'control/${username}' },
        { permission: 'allow', action: 'all', topic: '#' },
      ],
      'allow',
    );
    assert.equal(acl.mayPublish(who('c', 'alice'), 'control/alice'), false);
    assert.equal(acl.mayPublish(who('c', 'alice'), 'control/bob'), true);
    assert.equal(acl.mayPublish(who('c', '+'), 'control/bob'), false);
    assert.equal(acl.mayPublish(who('c', 'a/b'), 'anything'), false);
    assert.equal(acl.mayRead(who('c', 'a/b'), 'anything'), true, 'only the rule\'s action');
  });

  test('$ topics: a leading wildcard in a rule does not reach them', () => {
    const acl = policy([{ permission: 'allow', action: 'all', topic: '#' }]);
    assert.equal(acl.mayRead(who('c'), '$SYS/brokers/x/uptime'), false);
    assert.equal(policy([{ permission: 'allow', action: 'subscribe', topic: '$SYS/#' }]).mayRead(who('c'), '$SYS/brokers/x/uptime'), true);
  });

  test('the client\'s own rules (attributes.acl) come first; invalid ones deny everything', () => {
    const acl = policy([{ permission: 'allow', action: 'all', topic: '#' }]);
    const limited = who('c', 'u', '127.0.0.1', { acl: [{ permission: 'deny', action: 'publish', topic: 'x/#' }] });
    assert.equal(acl.mayPublish(limited, 'x/1'), false);
    assert.equal(acl.mayPublish(limited, 'y/1'), true);
    const broken = who('c', 'u', '127.0.0.1', { acl: [{ permission: 'allow', action: 'steal', topic: '#' }] });
    assert.equal(acl.mayPublish(broken, 'y/1'), false);
    assert.equal(acl.explain(broken, 'read', 'y/1').by, 'invalid-client-rules');
  });

  test('run-time rules apply before config rules, at once, also to identities already checked', () => {
    const acl = policy([{ permission: 'allow', action: 'all', topic: '#' }]);
    const c = who('c');
    assert.equal(acl.mayRead(c, 't'), true);
    acl.setRuntimeRules([{ permission: 'deny', action: 'subscribe', topic: 't' } satisfies AclRule]);
    assert.equal(acl.mayRead(c, 't'), false);
    acl.setRuntimeRules([]);
    assert.equal(acl.mayRead(c, 't'), true);
  });

  test('the default: deny when the config file has rules, allow without; a configured value wins', () => {
    const one = parseAclRules([{ permission: 'allow', action: 'all', topic: '#' }], 'x');
    assert.equal(effectiveAclDefault(undefined, []), 'allow');
    assert.equal(effectiveAclDefault(undefined, one), 'deny');
    assert.equal(effectiveAclDefault('allow', one), 'allow');
    assert.equal(effectiveAclDefault('deny', []), 'deny');
  });
});

describe('subscribe: a rule decides a filter only when it covers the whole filter', () => {
  test('allow sensors/# grants sensors/+/temp, not #', () => {
    const acl = policy([{ permission: 'allow', action: 'subscribe', topic: 'sensors/#' }]);
    assert.equal(acl.maySubscribe(who('c'), 'sensors/+/temp'), true);
    assert.equal(acl.maySubscribe(who('c'), 'sensors'), true, 'sensors/# matches its parent level');
    assert.equal(acl.maySubscribe(who('c'), '#'), false);
    assert.equal(acl.maySubscribe(who('c'), '+/temp'), false);
  });

  test('a deny over part of a wildcard leaves the subscription to later rules; the denied topics are kept out by read', () => {
    const acl = policy([
      { permission: 'deny', action: 'subscribe', topic: 'secret/#' },
      { permission: 'allow', action: 'subscribe', topic: '#' },
    ]);
    const c = who('c');
    assert.equal(acl.maySubscribe(c, '#'), true);
    assert.equal(acl.mayRead(c, 'secret/plans'), false);
    assert.equal(acl.mayRead(c, 'public/news'), true);
    assert.equal(acl.maySubscribe(c, 'secret/+'), false, 'wholly inside the denied area');
  });

  test('prefixes: $share, $exclusive and $replay are checked by their filter, $delayed by its topic', () => {
    assert.equal(aclSubscriptionFilter('$share/g1/a/b'), 'a/b');
    assert.equal(aclSubscriptionFilter('$exclusive/a/#'), 'a/#');
    assert.equal(aclSubscriptionFilter('$replay/0/live/a/+'), 'a/+');
    assert.equal(aclSubscriptionFilter('$SYS/#'), '$SYS/#');
    assert.equal(aclSubscriptionFilter('$share/g1'), '$share/g1', 'no filter: left as it is');
    assert.equal(aclPublishTopic('$delayed/10/a/b'), 'a/b');
    assert.equal(aclPublishTopic('a/$delayed/10'), 'a/$delayed/10');
    const acl = policy([{ permission: 'deny', action: 'all', topic: 'secret/#' }], 'allow');
    assert.equal(acl.maySubscribe(who('c'), '$share/g/secret/#'), false);
    assert.equal(acl.mayPublish(who('c'), '$delayed/5/secret/x'), false);
  });

  test('filterCovers examples', () => {
    const cases: Array<[string, string, boolean]> = [
      ['#', 'a/b', true],
      ['#', '$SYS/x', false],
      ['+/#', '$SYS/#', false],
      ['$SYS/#', '$SYS/+/x', true],
      ['a/+', 'a/b', true],
      ['a/+', 'a/#', false],
      ['a/#', 'a', true],
      ['a/#', 'a/#', true],
      ['a/b', 'a/+', false],
      ['a/+/c', 'a/+/c', true],
      ['a', 'a/b', false],
      ['a/b', 'a', false],
      ['+', '', true],
    ];
    for (const [rule, filter, expected] of cases) assert.equal(filterCovers(rule, filter), expected, `${rule} covers ${filter}`);
  });
});
