// The broker under an ACL (engine/broker.ts with engine/security/acl.ts) over a MemoryShardStore.
//
// Goal: the checks the broker itself makes: a will is checked as its client's publish when it
// is published (abrupt close, after its delay, after a restart: the will keeps who set it in
// `$sessions`), a refused will is neither delivered nor retained; mayPublish/maySubscribe answer
// for a connected client and refuse one the broker does not know; a rule change applies to
// clients already connected.
// Method: recording sinks; a "restart" opens a second Broker over the same store without
// closing the first (a crash), as engine/broker.test.ts does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MemoryShardStore } from '../../shard-model/index.js';
import { ManualClock, settle } from '../../tests/support/manual-clock.js';
import { Broker } from '../broker.js';
import type { WillMessage } from '../sessions/session-events.js';
import type { ClientIdentity } from './access.js';
import { AclPolicy, parseAclRules } from './acl.js';
import { RecordingSink } from '../../tests/support/recording-sink.js';

const logger = pino({ level: 'silent' });

/** Only user "writer" may publish, and only below wills/ok/; everyone may read everything. */
function policy(): AclPolicy {
  return new AclPolicy({
    configRules: parseAclRules(
      [
        { permission: 'allow', action: 'publish', topic: 'wills/ok/#', username: 'writer' },
        { permission: 'allow', action: 'subscribe', topic: '#' },
      ],
      'test',
    ),
    defaultPermission: 'deny',
  });
}

const identity = (clientId: string, username: string | undefined): ClientIdentity => ({ clientId, username, remoteAddress: '127.0.0.1:1', protocol: 'mqtt' });
const will = (topic: string, delaySeconds = 0): WillMessage => ({ topic, payload: Buffer.from(topic), qos: 1, retain: true, properties: undefined, delaySeconds });

async function open(store: MemoryShardStore, clock: ManualClock): Promise<Broker> {
  return Broker.open({ store, logger, dataShards: 1, maxQueuedBytes: 1 << 20, clock, cursorFlushMs: 1000, access: policy() });
}

async function watch(broker: Broker): Promise<RecordingSink> {
  const sink = new RecordingSink();
  const { session } = await broker.connect({ clientId: 'watcher', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink, identity: identity('watcher', undefined) });
  session.attach(sink);
  await broker.subscribe(session, [{ filter: 'wills/#', options: { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  return sink;
}

test('a will is checked as its client\'s publish: refused ones are neither delivered nor retained', async () => {
  const clock = new ManualClock();
  const broker = await open(new MemoryShardStore(), clock);
  const watcher = await watch(broker);
  for (const [clientId, username, topic] of [
    ['w1', 'writer', 'wills/ok/1'],
    ['w2', 'writer', 'wills/no/2'],
    ['w3', 'mallory', 'wills/ok/3'],
    ['w4', undefined, 'wills/ok/4'],
  ] as const) {
    const sink = new RecordingSink();
    const { session } = await broker.connect({ clientId, cleanStart: true, expirySeconds: 0, will: will(topic), protocolVersion: 5, sink, identity: identity(clientId, username) });
    session.attach(sink);
    await broker.disconnect(session, sink, { publishWill: true });
  }
  await settle();
  assert.deepEqual(
    watcher.deliveries.map((delivery) => delivery.message.topic),
    ['wills/ok/1'],
  );
  assert.deepEqual(
    broker.retained.matching('#').map((message) => message.topic),
    ['wills/ok/1'],
  );
});

test('a will published after a restart is checked as the client that set it (its identity is in $sessions)', async () => {
  const store = new MemoryShardStore();
  const clock = new ManualClock();
  const before = await open(store, clock);
  for (const [clientId, username, topic] of [
    ['d1', 'writer', 'wills/ok/after-restart'],
    ['d2', 'mallory', 'wills/ok/mallory'],
  ] as const) {
    const sink = new RecordingSink();
    const { session } = await before.connect({ clientId, cleanStart: true, expirySeconds: 3600, will: will(topic, 5), protocolVersion: 5, sink, identity: identity(clientId, username) });
    session.attach(sink);
  }
  // Crash: nothing closed; the next broker finds both clients connected, so their wills are due.
  const after = await open(store, clock);
  const watcher = await watch(after);
  await clock.advance(6000);
  await settle();
  assert.deepEqual(
    watcher.deliveries.map((delivery) => delivery.message.topic),
    ['wills/ok/after-restart'],
  );
});

test('mayPublish / maySubscribe answer for connected clients, refuse unknown ones, and follow rule changes at once', async () => {
  const clock = new ManualClock();
  const acl = policy();
  const broker = await Broker.open({ store: new MemoryShardStore(), logger, dataShards: 1, maxQueuedBytes: 1 << 20, clock, access: acl });
  const sink = new RecordingSink();
  const { session } = await broker.connect({ clientId: 'c', cleanStart: true, expirySeconds: 0, will: undefined, protocolVersion: 5, sink, identity: identity('c', 'writer') });
  session.attach(sink);
  assert.equal(broker.mayPublish('c', 'wills/ok/x'), true);
  assert.equal(broker.mayPublish('c', 'other'), false);
  assert.equal(broker.maySubscribe('c', 'anything/#'), true);
  assert.equal(broker.mayPublish('nobody', 'wills/ok/x'), false, 'no identity, no access');
  acl.setRuntimeRules(parseAclRules([{ permission: 'deny', action: 'all', topic: 'wills/#' }], 'runtime'));
  assert.equal(broker.mayPublish('c', 'wills/ok/x'), false);
  assert.equal(broker.mayRead('c', 'wills/ok/x'), false);
});
