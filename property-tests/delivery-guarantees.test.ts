// Delivery guarantees of the broker (engine/broker.ts, engine/sessions/session.ts) under random
// multi-client scripts.
//
// Goal: whatever the interleaving of publishes, disconnects, reconnects, late acknowledgements,
// backed-up transports and slow-consumer read-backs, each subscriber
//  1. sees each publisher's messages on a topic in publish order (a QoS 1 message seen again,
//     DUP or not, is at-least-once at work and is not an ordering fault);
//  2. receives at least once, at its effective QoS, every message owed at QoS 1 or 2: published
//     while a matching subscription of its session existed, the session still existing at the
//     end (online, or offline but persistent and reconnected for the drain);
//  3. receives every effective-QoS-2 message exactly once (after the client's own packet-id
//     deduplication of DUP resends, as an MQTT client does between PUBLISH and PUBREL), and no
//     message more than once at QoS 0 or 2;
//  4. receives nothing published before a matching subscription of its session existed (no
//     retained messages are published here, so there is no exception);
//  5. never has more QoS 1/2 deliveries unacknowledged than its receive maximum.
// Method: publishers are plain publish() calls whose payload names publisher, topic and a
// per-(publisher, topic) sequence number. Subscribers are recording sinks that model the client
// side: they acknowledge at once or only when the script says, sometimes report a full
// transport (SentFull) and resume later, and for QoS 2 do PUBREC then PUBCOMP as two steps so a
// disconnect can fall between them (the broker then re-sends PUBREL). Scripts are bursts of
// publishes not awaited one by one, with acknowledgements, disconnects, reconnects and session
// takeovers mixed in, and subscribe steps between bursts. A reconnect may subscribe, or lose its
// connection, at once (in the same turn as its CONNACK, while the session is still reading back
// what it missed); such a subscription may or may not cover the messages of its own burst, so
// those are neither owed nor forbidden. A small maxQueuedBytes in some runs sends subscribers
// down the slow-consumer read-back path, and in some runs shard reads take a few event-loop
// turns, as a journal on disk or across the network does, so connections come and go while a
// read-back is on its way. At the end every persistent subscriber reconnects and everyone
// acknowledges until nothing moves. A failure prints the seed and the shrunk script; set
// FC_SEED (and FC_PATH) to replay it, FC_NUM_RUNS to run more scripts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { Broker, SendResult, SESSION_NEVER_EXPIRES, type Clock, type Delivery, type DeliverySink, type QoS, type Session } from '../engine/index.js';
import { OutboundPacketIds } from '../protocols/mqtt/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const logger = pino({ level: 'silent' });

async function settle(): Promise<void> {
  for (let i = 0; i < 2; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Time stands still: nothing here depends on it, and no timer should fire mid-script. */
const frozenClock: Clock = {
  now: () => 1_700_000_000_000,
  setTimeout: () => 0,
  clearTimeout: () => undefined,
};

const PUBLISHERS = ['p0', 'p1'];
const TOPICS = ['t/a', 't/b', 'u'];
const FILTERS = ['t/a', 't/b', 't/+', 'u', '#'];

/** MQTT 4.7 for the plain filters above (no '$' topics here). */
function matches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let i = 0; i < filterLevels.length; i += 1) {
    if (filterLevels[i] === '#') return true;
    if (i >= topicLevels.length || (filterLevels[i] !== '+' && filterLevels[i] !== topicLevels[i])) return false;
  }
  return filterLevels.length === topicLevels.length;
}

// ---- scripts -------------------------------------------------------------------------------

interface SubscriberSpec {
  persistent: boolean;
  receiveMaximum: number;
  ackAtOnce: boolean;
  /** Every n-th send reports a full transport; 0 = never. */
  fullEvery: number;
  filters: Array<{ filter: string; qos: QoS }>;
}

/**
 * toggle: a connected subscriber disconnects, or a new connection takes its session over; one
 * that is not connected connects. A new connection then (as clients do right after CONNACK)
 * subscribes at once, or is lost at once, or just stays.
 */
type BurstItem =
  | { kind: 'publish'; publisher: number; topic: string; qos: QoS }
  | { kind: 'ack'; subscriber: number }
  | { kind: 'toggle'; subscriber: number; takeover: boolean; cleanStart: boolean; then: 'stay' | 'subscribe' | 'drop'; filter: number };

type Step =
  | { kind: 'burst'; items: BurstItem[] }
  | { kind: 'subscribe'; subscriber: number; filter: number }
  | { kind: 'ack'; subscriber: number }
  | { kind: 'settle' };

interface Script {
  dataShards: number;
  maxQueuedBytes: number;
  /** Event-loop turns a data-shard read takes (a journal on disk or across the network is slow). */
  readTurns: number;
  subscribers: SubscriberSpec[];
  steps: Step[];
}

const qosArb = fc.constantFrom<QoS>(0, 1, 2);

const subscriberArb: fc.Arbitrary<SubscriberSpec> = fc.record({
  persistent: fc.boolean(),
  receiveMaximum: fc.constantFrom(1, 2, 65_535),
  ackAtOnce: fc.boolean(),
  fullEvery: fc.constantFrom(0, 0, 2, 5),
  filters: fc.uniqueArray(fc.record({ filter: fc.constantFrom(...FILTERS), qos: qosArb }), { minLength: 1, maxLength: 3, selector: (entry) => entry.filter }),
});

function scriptArb(): fc.Arbitrary<Script> {
  return fc.array(subscriberArb, { minLength: 1, maxLength: 3 }).chain((subscribers) => {
    const subscriberIndex = fc.nat(subscribers.length - 1);
    const burstItem: fc.Arbitrary<BurstItem> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('publish' as const), publisher: fc.nat(PUBLISHERS.length - 1), topic: fc.constantFrom(...TOPICS), qos: qosArb }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('ack' as const), subscriber: subscriberIndex }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('toggle' as const), subscriber: subscriberIndex, takeover: fc.boolean(), cleanStart: fc.boolean(), then: fc.constantFrom('stay' as const, 'subscribe' as const, 'drop' as const), filter: fc.nat(2) }) },
    );
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('burst' as const), items: fc.array(burstItem, { minLength: 1, maxLength: 8 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), subscriber: subscriberIndex, filter: fc.nat(2) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('ack' as const), subscriber: subscriberIndex }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
    );
    return fc.record({
      dataShards: fc.integer({ min: 1, max: 3 }),
      // ~3 queued messages, or no limit in practice
      maxQueuedBytes: fc.constantFrom(250, 1024 * 1024),
      readTurns: fc.constantFrom(0, 2, 6),
      subscribers: fc.constant(subscribers),
      steps: fc.array(step, { maxLength: 25, size: 'max' }),
    });
  });
}

// ---- the client side -----------------------------------------------------------------------

interface Published {
  key: string;
  publisher: string;
  topic: string;
  seq: number;
  qos: QoS;
  /** The burst it was published in (bursts are numbered from 1). */
  epoch: number;
}

/** One session of a subscriber, from the connect that created it to its end. */
interface Incarnation {
  id: number;
  alive: boolean;
  /**
   * Filter -> granted QoS and when it was made (re-subscribing keeps the first): it covers the
   * bursts after `after`; made during burst `after` (midBurst), it may or may not cover that
   * burst's messages, depending on which were dispatched first.
   */
  subscriptions: Map<string, { qos: QoS; after: number; midBurst: boolean }>;
  /** What the application was handed, in order: message key and delivery QoS. */
  received: Array<{ key: string; qos: QoS }>;
  /** QoS 2 packet ids the client has seen and not yet had PUBREL for. */
  qos2Unreleased: Set<number>;
}

class SubscriberSink implements DeliverySink {
  closed = false;
  /** A newer connection of the same client is taking the session: close() is expected. */
  takenOver = false;
  sends = 0;
  /** Client-side outstanding QoS 1/2 packet ids (sent to it, PUBACK/PUBCOMP not yet sent). */
  readonly outstanding = new Set<number>();
  /** Acknowledgements the client will send when told to (or at once). */
  readonly pendingAcks: Array<() => void> = [];
  session!: Session;
  attached = false;
  ackAtOnce: boolean;
  fullEvery: number;

  readonly #packetIds: OutboundPacketIds;

  constructor(
    private readonly client: Subscriber,
    readonly inFlightMaximum: number,
    shardCount: number,
  ) {
    this.ackAtOnce = client.spec.ackAtOnce;
    this.fullEvery = client.spec.fullEvery;
    this.#packetIds = new OutboundPacketIds(shardCount);
  }

  assignTag(delivery: Delivery, inUse: (tag: number) => boolean): number {
    return this.#packetIds.assign(delivery, inUse);
  }

  send(delivery: Delivery): SendResult {
    assert.ok(!this.closed, `${this.client.name}: a delivery reached a closed connection`);
    assert.ok(this.attached, `${this.client.name}: a delivery was sent before attach() (before CONNACK)`);
    const incarnation = this.client.incarnation;
    this.sends += 1;
    const message = delivery.message;
    assert.ok(delivery.qos <= message.qos, `${this.client.name}: delivered at QoS ${delivery.qos} above the publish QoS ${message.qos}`);
    if (delivery.qos === 2 && incarnation.qos2Unreleased.has(delivery.tag)) {
      // A resend of a QoS 2 PUBLISH the client already has: not handed to the application again.
      assert.ok(delivery.redelivered, `${this.client.name}: QoS 2 packet id ${delivery.tag} reused before PUBREL without DUP`);
    } else {
      if (delivery.qos === 2) incarnation.qos2Unreleased.add(delivery.tag);
      incarnation.received.push({ key: message.payload.toString(), qos: delivery.qos });
    }
    if (delivery.qos > 0) {
      this.outstanding.add(delivery.tag);
      assert.ok(this.outstanding.size <= this.inFlightMaximum, `${this.client.name}: ${this.outstanding.size} unacknowledged deliveries, receive maximum ${this.inFlightMaximum}`);
      const packetId = delivery.tag;
      if (delivery.qos === 1) this.#acknowledgeLater(() => this.#complete(packetId));
      else
        this.#acknowledgeLater(() => {
          // PUBREC; the broker answers PUBREL at once (the front end does), which ends the
          // client's QoS 2 state; PUBCOMP is a separate, possibly later, step.
          if (this.closed) return;
          if (this.session.hold(packetId)) this.#release(packetId);
        });
    }
    const full = this.fullEvery > 0 && this.sends % this.fullEvery === 0;
    if (full) this.#acknowledgeLater(() => this.closed || this.session.resume());
    return full ? SendResult.SentFull : SendResult.Sent;
  }

  resumeHeld(packetId: number): void {
    assert.ok(!this.closed, `${this.client.name}: PUBREL on a closed connection`);
    assert.ok(this.attached, `${this.client.name}: PUBREL sent before attach() (before CONNACK)`);
    this.outstanding.add(packetId);
    this.#release(packetId);
  }

  close(reason: 'session-taken-over' | 'server-shutting-down'): void {
    if (reason === 'session-taken-over' && this.takenOver) this.closed = true;
    // The harness marks connections closed before shutting the broker down.
    else if (!this.closed) assert.fail(`${this.client.name}: the broker closed a connection (${reason}) unasked`);
  }

  #release(packetId: number): void {
    this.client.incarnation.qos2Unreleased.delete(packetId);
    this.#acknowledgeLater(() => this.#complete(packetId));
  }

  #complete(packetId: number): void {
    if (this.closed) return;
    this.outstanding.delete(packetId);
    this.session.ack(packetId);
  }

  #acknowledgeLater(action: () => void): void {
    if (this.ackAtOnce) queueMicrotask(action);
    else this.pendingAcks.push(action);
  }

  /** Sends what the client held back so far (acknowledgements, resumes); not what they bring. */
  flush(): void {
    for (const action of this.pendingAcks.splice(0)) action();
  }
}

interface Subscriber {
  name: string;
  spec: SubscriberSpec;
  incarnation: Incarnation;
  connection: SubscriberSink | undefined;
  /** Connects and disconnects of one subscriber run one after another. */
  chain: Promise<void>;
}

class Harness {
  broker!: Broker;
  readonly published: Published[] = [];
  readonly incarnations: Array<{ subscriber: Subscriber; incarnation: Incarnation }> = [];
  readonly subscribers: Subscriber[];
  #epoch = 0;
  #readsInFlight = 0;
  #nextIncarnation = 0;
  readonly #seq = new Map<string, number>();

  constructor(readonly script: Script) {
    this.subscribers = script.subscribers.map((spec, index) => ({ name: `s${index}`, spec, incarnation: this.#newIncarnation(), connection: undefined, chain: Promise.resolve() }));
    this.subscribers.forEach((subscriber) => this.incarnations.push({ subscriber, incarnation: subscriber.incarnation }));
  }

  #newIncarnation(): Incarnation {
    this.#nextIncarnation += 1;
    return { id: this.#nextIncarnation, alive: false, subscriptions: new Map(), received: [], qos2Unreleased: new Set() };
  }

  async start(): Promise<void> {
    const store = new MemoryShardStore();
    const read = store.read.bind(store);
    const turns = this.script.readTurns;
    // The records are taken when the read is asked for and handed over some turns later, so
    // connects, disconnects and publishes can happen while a session's read-back is on its way.
    store.read = async (...args: Parameters<MemoryShardStore['read']>) => {
      this.#readsInFlight += 1;
      try {
        const records = await read(...args);
        for (let turn = 0; turn < turns; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
        return records;
      } finally {
        this.#readsInFlight -= 1;
      }
    };
    this.broker = await Broker.open({ store, logger, dataShards: this.script.dataShards, maxQueuedBytes: this.script.maxQueuedBytes, clock: frozenClock });
    for (const subscriber of this.subscribers) {
      await this.#connect(subscriber, true);
      // The other filters come with subscribe steps, some while the session lags behind.
      await this.#subscribe(subscriber, 0);
    }
  }

  async #connect(subscriber: Subscriber, cleanStart: boolean, then: 'stay' | 'subscribe' | 'drop' = 'stay', filter = 0): Promise<void> {
    if (cleanStart || !subscriber.incarnation.alive || !subscriber.spec.persistent) {
      // A clean start ends the old session (if any): the client forgets its QoS 2 state too. A
      // session that is not persistent ended with its connection, also when this one takes it over.
      subscriber.incarnation.alive = false;
      subscriber.incarnation = this.#newIncarnation();
      this.incarnations.push({ subscriber, incarnation: subscriber.incarnation });
    }
    const resumes = subscriber.incarnation.alive;
    subscriber.incarnation.alive = true;
    const previous = subscriber.connection;
    if (previous !== undefined) previous.takenOver = true;
    const sink = new SubscriberSink(subscriber, subscriber.spec.receiveMaximum, this.script.dataShards);
    subscriber.connection = sink;
    const expirySeconds = subscriber.spec.persistent ? SESSION_NEVER_EXPIRES : 0;
    const { session, sessionPresent } = await this.broker.connect({ clientId: subscriber.name, cleanStart, expirySeconds, will: undefined, protocolVersion: 5, sink });
    assert.equal(sessionPresent, resumes, `${subscriber.name}: sessionPresent`);
    if (previous !== undefined) assert.ok(previous.closed, `${subscriber.name}: the connection taken over was not closed`);
    sink.session = session;
    sink.attached = true;
    session.attach(sink);
    // No await between attach and these: they happen while the session starts catching up.
    if (then === 'subscribe') await this.#subscribe(subscriber, filter, true);
    else if (then === 'drop') await this.#disconnect(subscriber);
  }

  async #disconnect(subscriber: Subscriber): Promise<void> {
    const sink = subscriber.connection;
    if (sink === undefined) return;
    sink.closed = true;
    subscriber.connection = undefined;
    if (!subscriber.spec.persistent) subscriber.incarnation.alive = false;
    await this.broker.disconnect(sink.session, sink, { publishWill: false });
  }

  async #subscribe(subscriber: Subscriber, index: number, midBurst = false): Promise<void> {
    const sink = subscriber.connection;
    const entry = subscriber.spec.filters[index % subscriber.spec.filters.length] as { filter: string; qos: QoS };
    if (sink === undefined) return;
    const existing = subscriber.incarnation.subscriptions.get(entry.filter);
    subscriber.incarnation.subscriptions.set(entry.filter, existing ?? { qos: entry.qos, after: this.#epoch, midBurst });
    await this.broker.subscribe(sink.session, [{ filter: entry.filter, options: { qos: entry.qos, noLocal: false, keepRetainFlag: false, sendRetained: 'always' } }]);
  }

  #publish(item: Extract<BurstItem, { kind: 'publish' }>): Promise<unknown> {
    const publisher = PUBLISHERS[item.publisher] as string;
    const seqKey = `${publisher}|${item.topic}`;
    const seq = (this.#seq.get(seqKey) ?? 0) + 1;
    this.#seq.set(seqKey, seq);
    const key = `${publisher}|${item.topic}|${seq}`;
    this.published.push({ key, publisher, topic: item.topic, seq, qos: item.qos, epoch: this.#epoch });
    return this.broker.publish({ topic: item.topic, payload: Buffer.from(key), qos: item.qos, retain: false, publisherId: publisher, timestamp: frozenClock.now(), properties: undefined });
  }

  async run(step: Step): Promise<void> {
    switch (step.kind) {
      case 'burst': {
        this.#epoch += 1;
        const running: Array<Promise<unknown>> = [];
        for (const item of step.items) {
          if (item.kind === 'publish') {
            running.push(this.#publish(item));
            continue;
          }
          if (item.kind === 'ack') {
            this.subscribers[item.subscriber]?.connection?.flush();
            continue;
          }
          const subscriber = this.subscribers[item.subscriber] as Subscriber;
          subscriber.chain = subscriber.chain.then(() =>
            subscriber.connection !== undefined && !item.takeover ? this.#disconnect(subscriber) : this.#connect(subscriber, item.cleanStart, item.then, item.filter),
          );
          running.push(subscriber.chain);
        }
        await Promise.all(running);
        return;
      }
      case 'subscribe':
        await this.#subscribe(this.subscribers[step.subscriber] as Subscriber, step.filter);
        return;
      case 'ack':
        this.subscribers[step.subscriber]?.connection?.flush();
        return;
      case 'settle':
        await settle();
        return;
    }
  }

  /** Persistent subscribers come back; everyone acknowledges at once until nothing moves. */
  async drain(): Promise<void> {
    for (const subscriber of this.subscribers) {
      if (subscriber.connection === undefined && subscriber.spec.persistent) await this.#connect(subscriber, false);
    }
    let quiet = 0;
    for (let round = 0; quiet < 3; round += 1) {
      assert.ok(round < 2000, 'deliveries did not settle during the drain');
      const online = this.subscribers.flatMap((subscriber) => (subscriber.connection === undefined ? [] : [subscriber.connection]));
      const sendsBefore = online.map((sink) => sink.sends);
      let moved = false;
      for (const sink of online) {
        sink.ackAtOnce = true;
        sink.fullEvery = 0;
        if (sink.pendingAcks.length > 0) moved = true;
        sink.flush();
        sink.session.resume();
      }
      await settle();
      if (online.some((sink, i) => sink.sends !== sendsBefore[i] || sink.outstanding.size > 0)) moved = true;
      // A read-back on its way is movement to come.
      if (this.#readsInFlight > 0) moved = true;
      quiet = moved ? 0 : quiet + 1;
    }
  }

  check(): void {
    for (const { subscriber, incarnation } of this.incarnations) {
      const who = `${subscriber.name} (session #${incarnation.id})`;
      const byKey = new Map(this.published.map((message) => [message.key, message]));
      /** The effective QoS the session owes a message; -1 when it owes nothing. */
      const owed = (message: Published): QoS | -1 => {
        let qos = -1;
        for (const [filter, subscription] of incarnation.subscriptions) {
          if (message.epoch > subscription.after && matches(filter, message.topic) && subscription.qos > qos) qos = subscription.qos;
        }
        return qos < 0 ? -1 : (Math.min(qos, message.qos) as QoS);
      };
      const mayReceive = (message: Published): boolean =>
        [...incarnation.subscriptions].some(([filter, subscription]) => matches(filter, message.topic) && (message.epoch > subscription.after || (subscription.midBurst && message.epoch === subscription.after)));
      const counts = new Map<string, { total: number; atQos: number[] }>();
      for (const { key, qos } of incarnation.received) {
        const message = byKey.get(key);
        assert.ok(message !== undefined, `${who} received an unknown payload ${key}`);
        // 4: nothing from before a matching subscription existed.
        assert.ok(mayReceive(message), `${who} received ${key}, published before any matching subscription of its session existed`);
        const effective = owed(message);
        assert.ok(qos >= effective, `${who} received ${key} at QoS ${qos}, below the effective QoS ${effective}`);
        const count = counts.get(key) ?? { total: 0, atQos: [0, 0, 0] };
        count.total += 1;
        (count.atQos[qos] as number) += 1;
        counts.set(key, count);
      }
      // 3: at most once at QoS 0 and QoS 2.
      for (const [key, count] of counts) {
        assert.ok((count.atQos[0] as number) <= 1, `${who} received ${key} ${count.atQos[0]} times at QoS 0`);
        assert.ok((count.atQos[2] as number) <= 1, `${who} received ${key} ${count.atQos[2]} times at QoS 2 (after DUP deduplication)`);
        if ((count.atQos[2] as number) > 0) assert.equal(count.total, 1, `${who} received ${key} at QoS 2 and also at a lower QoS`);
      }
      // 1: order per publisher and topic, first sightings only.
      const last = new Map<string, number>();
      const seen = new Set<string>();
      for (const { key } of incarnation.received) {
        if (seen.has(key)) continue;
        seen.add(key);
        const message = byKey.get(key) as Published;
        const stream = `${message.publisher}|${message.topic}`;
        assert.ok((last.get(stream) ?? 0) < message.seq, `${who} received ${key} after ${stream}|${last.get(stream)}: out of publish order`);
        last.set(stream, message.seq);
      }
      // 2 and 3: what a live session was owed at QoS 1/2 it has.
      if (!incarnation.alive) continue;
      for (const message of this.published) {
        const effective = owed(message);
        if (effective < 1) continue;
        const count = counts.get(message.key);
        assert.ok(count !== undefined, `${who} never received ${message.key} (owed at QoS ${effective})`);
        if (effective === 2) assert.equal(count.atQos[2], 1, `${who} received ${message.key} ${count.atQos[2]} times at QoS 2, owed exactly once`);
      }
    }
  }

  async close(): Promise<void> {
    for (const subscriber of this.subscribers) if (subscriber.connection !== undefined) subscriber.connection.closed = true;
    await this.broker.close();
  }
}

test('per-publisher order, QoS 1 at least once, QoS 2 exactly once, nothing from before the subscription, receive maximum', async () => {
  await fc.assert(
    fc.asyncProperty(scriptArb(), async (script) => {
      const harness = new Harness(script);
      await harness.start();
      try {
        for (const step of script.steps) await harness.run(step);
        await harness.drain();
        harness.check();
      } finally {
        await harness.close();
      }
    }),
    { numRuns: numRuns(500), ...replay },
  );
});
