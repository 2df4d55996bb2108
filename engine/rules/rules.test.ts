// Unit tests of the topic rules (engine/rules/): the `rewrite` and `auto-subscribe` config
// sections are validated entry by entry (errors name the entry), rewrite applies the first
// fitting rule with $N groups and ${clientid}/${username}, and placeholders never let a client id
// or user name widen a topic (a value with /, + or # makes the rule not apply).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowEverything, type ClientIdentity } from '../security/access.js';
import { autoSubscriptions, parseAutoSubscribeRules } from './auto-subscribe.js';
import { fillPlaceholders, RuleConfigError } from './rule-config.js';
import { parseRewriteRules, TopicRewriter } from './topic-rewrite.js';

function identity(clientId: string, username?: string): ClientIdentity {
  return { clientId, username, remoteAddress: '127.0.0.1:1', protocol: 'mqtt' };
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof RuleConfigError, String(error));
    return error.message;
  }
  assert.fail('expected a RuleConfigError');
}

describe('placeholders', () => {
  test('fills client id and user name; refuses values that would change the topic structure', () => {
    assert.equal(fillPlaceholders('d/${clientid}/${username}', identity('c1', 'u1')), 'd/c1/u1');
    assert.equal(fillPlaceholders('d/${username}', identity('c1')), undefined);
    for (const bad of ['+', '#', 'a/b', '', 'x\u0000']) assert.equal(fillPlaceholders('d/${clientid}', identity(bad)), undefined, JSON.stringify(bad));
    assert.equal(fillPlaceholders('${clientid}/#', identity('$SYS')), undefined, 'a leading $ would reach the $ topics');
  });
});

describe('rewrite rules', () => {
  test('validation names the entry and the problem', () => {
    assert.match(refusal(() => parseRewriteRules([{ source: 'a/#', re: '^a/(.*)$', dest: 'b/$1', extra: 1 }])), /^rewrite\[0\]: unknown key "extra"/);
    assert.match(refusal(() => parseRewriteRules([{ source: 'a/#', re: '(', dest: 'b' }])), /^rewrite\[0\]\.re: not a valid regular expression/);
    assert.match(refusal(() => parseRewriteRules([{ source: 'a/#', re: '^a/(.*)$', dest: 'b/$2' }])), /^rewrite\[0\]\.dest: refers to \$2, but re has 1 capture group/);
    assert.match(refusal(() => parseRewriteRules([{ source: 'a/#', re: 'a', dest: 'b/${user}' }])), /^rewrite\[0\]\.dest: unknown placeholder \$\{user\}/);
    assert.match(refusal(() => parseRewriteRules([{ source: 'a/#/b', re: 'a', dest: 'b' }])), /^rewrite\[0\]\.source: not a valid topic filter/);
    assert.match(refusal(() => parseRewriteRules([{ action: 'read', source: 'a', re: 'a', dest: 'b' }])), /^rewrite\[0\]\.action: must be one of publish, subscribe, all/);
    assert.match(refusal(() => parseRewriteRules(['x'])), /^rewrite\[0\]: must be a table/);
    assert.deepEqual(parseRewriteRules(undefined), []);
  });

  test('the first fitting rule rewrites, with groups and placeholders; actions are kept apart', () => {
    const rewriter = new TopicRewriter(
      parseRewriteRules([
        { action: 'publish', source: 'legacy/#', re: '^legacy/(\\w+)/(.*)$', dest: 'v2/$1/${clientid}/$2' },
        { action: 'all', source: 'legacy/#', re: '^legacy/(.*)$', dest: 'never/$1' },
        { action: 'subscribe', source: 'mine/#', re: '^mine/(.*)$', dest: 'users/${username}/$1' },
      ]),
    );
    const alice = identity('dev1', 'alice');
    assert.equal(rewriter.publishTopic('legacy/temp/room/1', alice), 'v2/temp/dev1/room/1');
    assert.equal(rewriter.publishTopic('legacy/x', alice), 'never/x', 'the first rule\'s re does not match, so the second applies');
    assert.equal(rewriter.publishTopic('other/x', alice), 'other/x');
    assert.equal(rewriter.publishTopic('mine/x', alice), 'mine/x', 'a subscribe rule does not touch publishes');
    assert.equal(rewriter.subscribeFilter('mine/+/status', alice), 'users/alice/+/status');
    assert.equal(rewriter.subscribeFilter('$share/g/mine/#', alice), '$share/g/users/alice/#');
    assert.equal(rewriter.subscribeFilter('$exclusive/mine/x', alice), '$exclusive/users/alice/x');
    assert.equal(rewriter.subscribeFilter('$replay/0/live/mine/x', alice), '$replay/0/live/users/alice/x');
    assert.equal(rewriter.subscribeFilter('legacy/temp/#', alice), 'never/temp/#', 'the publish-only rule is skipped for subscriptions');
    assert.equal(rewriter.subscribeFilter('mine/x', identity('anon')), 'mine/x', 'no user name: the rule does not apply');
  });
});

describe('auto-subscribe rules', () => {
  test('validation names the entry and the problem', () => {
    assert.match(refusal(() => parseAutoSubscribeRules([{ filter: 'a/${clientid}', qos: 3 }])), /^auto-subscribe\[0\]\.qos: must be an integer from 0 to 2/);
    assert.match(refusal(() => parseAutoSubscribeRules([{ filter: 'a/#/b' }])), /^auto-subscribe\[0\]\.filter: not a valid topic filter/);
    assert.match(refusal(() => parseAutoSubscribeRules([{ filter: 'a', nolocal: true }])), /^auto-subscribe\[0\]: unknown key "nolocal"/);
    assert.match(refusal(() => parseAutoSubscribeRules([{ filter: 'a' }, { qos: 1 }])), /^auto-subscribe\[1\]\.filter: must be a non-empty string/);
    assert.match(refusal(() => parseAutoSubscribeRules([{ filter: 'a', 'no-local': 'yes' }])), /^auto-subscribe\[0\]\.no-local: must be true or false/);
  });

  test('filters are filled per client; rules that cannot be filled or are not allowed are skipped', () => {
    const rules = parseAutoSubscribeRules([
      { filter: 'devices/${clientid}/cmd', qos: 1 },
      { filter: 'users/${username}/#', qos: 2, 'no-local': true },
      { filter: 'broadcast/#' },
      { filter: 'secret/#' },
    ]);
    const policy = { ...allowEverything, maySubscribe: (_identity: ClientIdentity, filter: string) => !filter.startsWith('secret/') };
    const alice = autoSubscriptions(rules, identity('dev1', 'alice'), policy);
    assert.deepEqual(
      alice.subscriptions.map((entry) => [entry.filter, entry.options.qos, entry.options.noLocal]),
      [
        ['devices/dev1/cmd', 1, false],
        ['users/alice/#', 2, true],
        ['broadcast/#', 0, false],
      ],
    );
    assert.deepEqual(alice.skipped.map((entry) => entry.filter), ['secret/#']);
    const sneaky = autoSubscriptions(rules, identity('#'), allowEverything);
    assert.deepEqual(sneaky.subscriptions.map((entry) => entry.filter), ['broadcast/#', 'secret/#'], 'a client id of # does not become a wildcard');
  });
});
