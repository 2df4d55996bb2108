// Shared subscriptions under random joins and leaves (engine/shared, through engine/broker.ts).
//
// Goal: for QoS 1, every message published while the group exists is acknowledged by exactly
// one member of the group, whatever the interleaving of publishes, member connects (fresh,
// resumed, takeovers), abrupt disconnects with deliveries in flight or queued, partial
// acknowledgements, small Receive Maximums, unsubscribes, re-subscribes and clean broker
// restarts. (A delivery a member received but had not acknowledged when it went may reach
// another member as well: that is QoS 1's at-least-once; what the group guarantees is one
// acknowledgement per message, and that no acknowledged message is sent again.)
// Method: members are recording sinks; a client forgets the unacknowledged deliveries of a
// connection that drops, as a real one loses them with its socket. Client 0 is a persistent
// member from the start and never unsubscribes, so the group exists throughout; clients 1-3
// are persistent or not (chosen per run). At the end every persistent client reconnects, the
// others that are members are online, and all acknowledge until nothing moves. A failure
// prints the seed and the shrunk script; FC_SEED (and FC_PATH) replay it, FC_NUM_RUNS runs more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { Broker, SendResult, type Clock, type Delivery, type DeliverySink, type Session, type SubscriptionOptions } from '../engine/index.js';
import { SHARED_STRATEGIES } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { numRuns, replay } from '../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const logger = pino({ level: 'silent' });
const FILTER = '$share/workers/jobs/+';
const OPTIONS: SubscriptionOptions = { qos: 1, noLocal: false, keepRetainFlag: false, sendRetained: 'always' };
const CLIENTS = 4;

async function settle(): Promise<void> {
  for (let i = 0; i < 2; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

const frozenClock: Clock = { now: () => 1_700_000_000_000, setTimeout: () => 0, clearTimeout: () => undefined };

type Op =
  | { kind: 'publish'; count: number; topic: number }
  | { kind: 'connect'; client: number; receiveMaximum: number }
  | { kind: 'disconnect'; client: number }
  | { kind: 'ack'; client: number; count: number }
  | { kind: 'subscribe'; client: number }
  | { kind: 'unsubscribe'; client: number }
  | { kind: 'settle' }
  | { kind: 'restart' };

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('publish' as const), count: fc.integer({ min: 1, max: 6 }), topic: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('connect' as const), client, receiveMaximum: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), client }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('ack' as const), client, count: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), client: fc.integer({ min: 1, max: CLIENTS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), client: fc.integer({ min: 1, max: CLIENTS - 1 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

interface Connection {
  session: Session;
  sink: DeliverySink;
  /** Received, not yet acknowledged (the client's side). */
  unacked: Delivery[];
}

interface ClientState {
  id: string;
  persistent: boolean;
  /** Should be a member (client 0 always). */
  member: boolean;
  connection: Connection | undefined;
}

class Run {
  broker!: Broker;
  readonly store = new MemoryShardStore();
  readonly clients: ClientState[];
  readonly acked = new Map<string, number>();
  readonly published: string[] = [];
  #next = 0;

  constructor(
    readonly strategy: (typeof SHARED_STRATEGIES)[number],
    persistent: boolean[],
    readonly seed: number,
  ) {
    this.clients = Array.from({ length: CLIENTS }, (_, i) => ({ id: `c${i}`, persistent: i === 0 || persistent[i - 1] === true, member: i === 0, connection: undefined }));
  }

  async open(): Promise<void> {
    let state = this.seed >>> 0;
    const random = (): number => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    this.broker = await Broker.open({ store: this.store, logger, dataShards: 2, maxQueuedBytes: 1024 * 1024, clock: frozenClock, sharedStrategy: this.strategy, sharedRandom: random });
  }

  async connect(index: number, receiveMaximum: number): Promise<void> {
    const state = this.clients[index] as ClientState;
    // A connection replaced by a takeover loses what it had not acknowledged.
    const connection: Connection = { session: undefined as unknown as Session, sink: undefined as unknown as DeliverySink, unacked: [] };
    let nextTag = 1;
    const sink: DeliverySink = {
      inFlightMaximum: receiveMaximum,
      assignTag: (_delivery, inUse) => {
        while (inUse(nextTag)) nextTag += 1;
        return nextTag++;
      },
      send: (delivery) => {
        connection.unacked.push({ ...delivery });
        return SendResult.Sent;
      },
      resumeHeld: () => undefined,
      close: () => {
        if (state.connection === connection) state.connection = undefined;
      },
    };
    connection.sink = sink;
    const { session } = await this.broker.connect({ clientId: state.id, cleanStart: !state.persistent, expirySeconds: state.persistent ? 3600 : 0, will: undefined, protocolVersion: 5, sink });
    connection.session = session;
    state.connection = connection;
    session.attach(sink);
    if (state.member && !session.subscriptions.has(FILTER)) await this.broker.subscribe(session, [{ filter: FILTER, options: OPTIONS }]);
  }

  async apply(step: Op): Promise<void> {
    switch (step.kind) {
      case 'publish': {
        const payloads = Array.from({ length: step.count }, () => `m${(this.#next += 1)}`);
        this.published.push(...payloads);
        await Promise.all(payloads.map((payload) => this.broker.publish({ topic: `jobs/${step.topic}`, payload: Buffer.from(payload), qos: 1, retain: false, publisherId: `p${step.topic}`, timestamp: 0, properties: undefined })));
        return;
      }
      case 'connect':
        return this.connect(step.client, step.receiveMaximum);
      case 'disconnect': {
        const state = this.clients[step.client] as ClientState;
        const connection = state.connection;
        if (connection === undefined) return;
        state.connection = undefined;
        if (!state.persistent) state.member = false;
        await this.broker.disconnect(connection.session, connection.sink, { publishWill: false });
        return;
      }
      case 'ack':
        this.#ack(step.client, step.count);
        return;
      case 'subscribe': {
        const state = this.clients[step.client] as ClientState;
        if (state.connection === undefined) return;
        state.member = true;
        await this.broker.subscribe(state.connection.session, [{ filter: FILTER, options: OPTIONS }]);
        return;
      }
      case 'unsubscribe': {
        const state = this.clients[step.client] as ClientState;
        if (state.connection === undefined) return;
        state.member = false;
        await this.broker.unsubscribe(state.connection.session, [FILTER]);
        return;
      }
      case 'settle':
        await settle();
        return;
      case 'restart':
        await this.broker.close();
        for (const state of this.clients) {
          state.connection = undefined;
          // A session that ends with its connection is not in the journal: its membership ends too.
          if (!state.persistent) state.member = false;
        }
        await this.open();
        return;
    }
  }

  #ack(index: number, count: number): void {
    const connection = (this.clients[index] as ClientState).connection;
    if (connection === undefined) return;
    for (const delivery of connection.unacked.splice(0, count)) {
      if (connection.session.ack(delivery.tag)) {
        const payload = delivery.message.payload.toString();
        this.acked.set(payload, (this.acked.get(payload) ?? 0) + 1);
      }
    }
  }

  async finish(): Promise<void> {
    for (const [index, state] of this.clients.entries()) if (state.connection === undefined && (state.persistent || state.member)) await this.connect(index, 4);
    for (let round = 0, quiet = 0; quiet < 3; round += 1) {
      assert.ok(round < 500, 'the drain does not settle');
      let moved = 0;
      for (const [index, state] of this.clients.entries()) {
        moved += state.connection?.unacked.length ?? 0;
        this.#ack(index, Number.POSITIVE_INFINITY);
      }
      await settle();
      quiet = moved === 0 ? quiet + 1 : 0;
    }
  }
}

test('shared subscriptions, QoS 1: each message acknowledged by exactly one member across random joins, leaves, acks and restarts', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...SHARED_STRATEGIES),
      fc.array(fc.boolean(), { minLength: CLIENTS - 1, maxLength: CLIENTS - 1 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.array(op, { minLength: 1, maxLength: 40 }),
      async (strategy, persistent, seed, script) => {
        const run = new Run(strategy, persistent, seed);
        await run.open();
        await run.connect(0, 2);
        for (const step of script) await run.apply(step);
        await run.finish();
        const twice = [...run.acked].filter(([, count]) => count > 1).map(([payload]) => payload);
        const missing = run.published.filter((payload) => !run.acked.has(payload));
        assert.deepEqual(twice, [], 'no message acknowledged twice');
        assert.deepEqual(missing, [], 'every message acknowledged');
        await run.broker.close();
      },
    ),
    { numRuns: numRuns(150), ...replay },
  );
});
