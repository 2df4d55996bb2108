// Properties of the ACL (engine/security/acl.ts) and of the broker under it.
//
// Goal: (1) filterCovers(rule, filter) is exactly "every topic the filter matches, the rule
// matches"; (2) for a topic name, the subscribe question and the read question always agree;
// (3) whatever the rules and the subscriptions (wildcards, '$' topics, placeholders, retained
// messages, an offline durable session read back from the journal), the broker delivers to a
// client exactly the messages its subscriptions match AND mayRead allows: never one mayRead
// refuses (the wildcard/retained escape), none it allows dropped.
// Method: levels come from a small alphabet that includes the clients' ids and user names and a
// '$' level, so placeholders, '$' rules and overlaps are frequent. (1) is checked against a brute
// force over every topic of up to max(levels)+1 levels over the alphabet plus one fresh level
// (longer topics cannot tell the two filters apart). (3) runs a real Broker over a
// MemoryShardStore with a manual clock; subscriptions go straight to the broker, without the
// subscribe check, so the delivery check alone must keep forbidden topics out.
// Replay a failure with FC_SEED (and FC_PATH); FC_NUM_RUNS sets the broker runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { AclPolicy, Broker, filterCovers, filterMatches, type AclRule, type ClientIdentity, type Delivery, type DeliverySink, type Session, SendResult } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { ManualClock, settle } from '../tests/support/manual-clock.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const CLIENTS: ClientIdentity[] = [
  { clientId: 'c1', username: 'u1', remoteAddress: '10.0.0.1', protocol: 'mqtt' },
  { clientId: 'c2', username: 'u2', remoteAddress: '192.168.1.9', protocol: 'mqtt' },
  { clientId: 'c3', username: undefined, remoteAddress: '::ffff:10.0.0.7', protocol: 'mqtt' },
];
const NAME_LEVELS = ['a', 'b', '$s', 'c1', 'u2'];
const FILTER_LEVELS = [...NAME_LEVELS, '+'];

const levelsArb = (levels: string[], max: number) => fc.array(fc.constantFrom(...levels), { minLength: 1, maxLength: max });
const nameArb = levelsArb(NAME_LEVELS, 4).map((levels) => levels.join('/'));
const filterArb = fc.tuple(fc.array(fc.constantFrom(...FILTER_LEVELS), { maxLength: 3 }), fc.boolean()).map(([levels, hash]) => (hash || levels.length === 0 ? [...levels, '#'] : levels).join('/'));
/** Rule topics may also hold placeholders as levels. */
const ruleTopicArb = fc
  .tuple(fc.array(fc.constantFrom(...FILTER_LEVELS, '${clientid}', '${username}'), { maxLength: 3 }), fc.boolean())
  .map(([levels, hash]) => (hash || levels.length === 0 ? [...levels, '#'] : levels).join('/'));
const ruleArb: fc.Arbitrary<AclRule> = fc
  .record({
    permission: fc.constantFrom('allow' as const, 'deny' as const),
    action: fc.constantFrom('publish' as const, 'subscribe' as const, 'all' as const),
    topic: ruleTopicArb,
    username: fc.option(fc.constantFrom(['u1'], ['u2'], ['u1', 'u2']), { nil: undefined }),
    ipaddr: fc.option(fc.constantFrom(['10.0.0.0/8'], ['192.168.0.0/16']), { nil: undefined }),
  })
  .map(({ username, ipaddr, ...rule }) => ({ ...rule, ...(username === undefined ? {} : { username }), ...(ipaddr === undefined ? {} : { ipaddr }) }));
const policyArb = fc.record({ rules: fc.array(ruleArb, { maxLength: 6 }), defaultPermission: fc.constantFrom('allow' as const, 'deny' as const) });

/** Every topic of 1..depth levels over the alphabet plus one level no filter names. */
function universe(depth: number): string[] {
  const alphabet = [...NAME_LEVELS, 'fresh'];
  let layer: string[][] = [[]];
  const out: string[] = [];
  for (let d = 1; d <= depth; d += 1) {
    layer = layer.flatMap((prefix) => alphabet.map((level) => [...prefix, level]));
    for (const levels of layer) out.push(levels.join('/'));
  }
  return out;
}
const UNIVERSE = universe(5);

test('filterCovers(rule, filter) is exactly: every topic the filter matches, the rule matches', () => {
  fc.assert(
    fc.property(filterArb, filterArb, (rule, filter) => {
      const depth = Math.max(rule.split('/').length, filter.split('/').length) + 1;
      const topics = UNIVERSE.filter((topic) => topic.split('/').length <= depth);
      const brute = topics.every((topic) => !filterMatches(filter, topic) || filterMatches(rule, topic));
      assert.equal(filterCovers(rule, filter), brute, `rule ${rule} filter ${filter}`);
    }),
    { numRuns: 3000, ...replay },
  );
});

test('for a topic name, maySubscribe and mayRead agree', () => {
  fc.assert(
    fc.property(policyArb, fc.constantFrom(...CLIENTS), nameArb, ({ rules, defaultPermission }, client, topic) => {
      const acl = new AclPolicy({ configRules: rules, defaultPermission });
      assert.equal(acl.maySubscribe(client, topic), acl.mayRead(client, topic));
    }),
    { numRuns: 3000, ...replay },
  );
});

class Sink implements DeliverySink {
  readonly received: Delivery[] = [];
  inFlightMaximum = 65_535;
  #nextTag = 1;
  session: Session | undefined;
  send(delivery: Delivery): SendResult {
    this.received.push(delivery);
    // Acknowledged at once, so nothing waits on the in-flight window.
    if (delivery.qos > 0) queueMicrotask(() => this.session?.ack(delivery.tag));
    return SendResult.Sent;
  }
  assignTag(_delivery: Delivery, inUse: (tag: number) => boolean): number {
    while (inUse(this.#nextTag)) this.#nextTag += 1;
    return this.#nextTag++;
  }
  resumeHeld(): void {}
  close(): void {}
}

const scenarioArb = fc.record({
  policy: policyArb,
  retained: fc.array(nameArb, { maxLength: 5 }),
  subscriptions: fc.array(fc.tuple(fc.nat(CLIENTS.length - 1), filterArb), { minLength: 1, maxLength: 8 }),
  publishes: fc.array(fc.tuple(nameArb, fc.boolean()), { minLength: 1, maxLength: 20 }),
  /** Client 0 is durable and goes offline for this slice of the publishes (read back later). */
  offline: fc.tuple(fc.nat(20), fc.nat(20)),
});

test('the broker delivers exactly the matching messages mayRead allows: live, retained and read back', async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async ({ policy, retained, subscriptions, publishes, offline }) => {
      const acl = new AclPolicy({ configRules: policy.rules, defaultPermission: policy.defaultPermission });
      const broker = await Broker.open({ store: new MemoryShardStore(), logger: pino({ level: 'silent' }), dataShards: 2, maxQueuedBytes: 1 << 20, clock: new ManualClock(), cursorFlushMs: 1000, access: acl });
      let counter = 0;
      const payload = (): Buffer => Buffer.from(`m${(counter += 1)}`);
      const expected = CLIENTS.map(() => new Set<string>());
      const filtersOf = CLIENTS.map((_, index) => subscriptions.filter(([client]) => client === index).map(([, filter]) => filter));
      const retainedNow = new Map<string, string>();
      for (const topic of retained) {
        const body = payload();
        await broker.publish({ topic, payload: body, qos: 1, retain: true, publisherId: 'p', timestamp: 1, properties: undefined });
        retainedNow.set(topic, body.toString());
      }
      const sinks = CLIENTS.map(() => new Sink());
      const connect = async (index: number, sink: Sink): Promise<Session> => {
        const identity = CLIENTS[index] as ClientIdentity;
        const { session } = await broker.connect({ clientId: identity.clientId, cleanStart: false, expirySeconds: index === 0 ? 3600 : 0, will: undefined, protocolVersion: 5, sink, identity });
        sink.session = session;
        session.attach(sink);
        return session;
      };
      const sessions: Session[] = [];
      for (const [index, sink] of sinks.entries()) sessions.push(await connect(index, sink));
      for (const [index, filters] of filtersOf.entries()) {
        if (filters.length === 0) continue;
        const session = sessions[index] as Session;
        const entries = [...new Set(filters)].map((filter) => ({ filter, options: { qos: 1 as const, noLocal: false, keepRetainFlag: false, sendRetained: 'always' as const } }));
        const isNew = await broker.subscribe(session, entries);
        for (const [i, entry] of entries.entries()) broker.deliverRetained(session, entry.filter, entry.options, isNew[i] === true);
        for (const [topic, body] of retainedNow) if (entries.some((entry) => filterMatches(entry.filter, topic)) && acl.mayRead(CLIENTS[index] as ClientIdentity, topic)) (expected[index] as Set<string>).add(body);
      }
      const [from, to] = offline[0] <= offline[1] ? offline : [offline[1], offline[0]];
      for (const [position, [topic, retain]] of publishes.entries()) {
        if (position === from) await broker.disconnect(sessions[0] as Session, sinks[0] as Sink, { publishWill: false });
        if (position === to && position !== from) sessions[0] = await connect(0, sinks[0] as Sink);
        const body = payload();
        await broker.publish({ topic, payload: body, qos: 1, retain, publisherId: 'p', timestamp: 2, properties: undefined });
        for (const [index, filters] of filtersOf.entries()) if (filters.some((filter) => filterMatches(filter, topic)) && acl.mayRead(CLIENTS[index] as ClientIdentity, topic)) (expected[index] as Set<string>).add(body.toString());
      }
      if (!(sessions[0] as Session).online) sessions[0] = await connect(0, sinks[0] as Sink);
      for (let round = 0; round < 10; round += 1) {
        for (const session of sessions) session.resume();
        await settle();
      }
      for (const [index, sink] of sinks.entries()) {
        const identity = CLIENTS[index] as ClientIdentity;
        for (const delivery of sink.received) assert.ok(acl.mayRead(identity, delivery.message.topic), `${identity.clientId} got ${delivery.message.topic}, which mayRead refuses`);
        assert.deepEqual(new Set(sink.received.map((delivery) => delivery.message.payload.toString())), expected[index], `${identity.clientId}: delivered set`);
      }
      await broker.close();
    }),
    { numRuns: numRuns(150), ...replay },
  );
});
