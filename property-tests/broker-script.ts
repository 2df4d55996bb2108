// The broker script harness shared by the broker property tests (broker-replay,
// projection-compaction): random client operations (connect, subscribe, unsubscribe, publish,
// acknowledge, inbound QoS 2 and its release, disconnect, time, restarts) run against a live
// Broker over a MemoryShardStore with a manual clock, beside a model of what MQTT says the
// sessions and the retained set are. broker-replay.test.ts describes the checks.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import {
  Broker,
  RETAINED_SHARD,
  RetainedStore,
  SendResult,
  SESSION_NEVER_EXPIRES,
  SESSIONS_SHARD,
  SessionTable,
  type Delivery,
  type DeliverySink,
  type QoS,
  type RetainedPolicy,
  type Session,
  type SubscriptionOptions,
  type WillMessage,
} from '../engine/index.js';
import { cursorsByName } from '../engine/testing.js';
import { OutboundPacketIds } from '../protocols/mqtt/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import type { ShardStore } from '../shard-model/index.js';
import { ManualClock, settle } from '../tests/support/manual-clock.js';

const logger = pino({ level: 'silent' });
const CURSOR_FLUSH_MS = 1000;
const DATA_SHARDS = 2;


/** The client side of a connection: keeps what it was sent until the script acknowledges it. */
export class RecordingSink implements DeliverySink {
  readonly unacknowledged: Delivery[] = [];
  /** Tags of held (QoS 2, PUBREC'd) deliveries resumed after a reconnect: PUBRELs resent. */
  readonly resumedHeld: number[] = [];
  closedBy: string | undefined;
  readonly #packetIds = new OutboundPacketIds(DATA_SHARDS);

  constructor(readonly inFlightMaximum: number) {}

  assignTag(delivery: Delivery, inUse: (tag: number) => boolean): number {
    return this.#packetIds.assign(delivery, inUse);
  }

  send(delivery: Delivery): SendResult {
    if (delivery.qos > 0) this.unacknowledged.push(delivery);
    return SendResult.Sent;
  }

  resumeHeld(tag: number): void {
    this.resumedHeld.push(tag);
  }

  close(reason: 'session-taken-over' | 'server-shutting-down'): void {
    this.closedBy = reason;
  }
}

// ---- scripts -------------------------------------------------------------------------------

export const CLIENTS = ['c0', 'c1', 'c2'];
const TOPICS = ['a/b', 'a/c', 'b', '$SYS/x'];
const FILTERS = ['a/b', 'a/+', '#', '+', '$SYS/x', '$SYS/#'];
const EXPIRIES = [0, 2, 30, SESSION_NEVER_EXPIRES];

interface WillSpec {
  payload: string;
  qos: QoS;
  retain: boolean;
  delaySeconds: number;
}

export type Op =
  | { kind: 'connect'; client: number; cleanStart: boolean; expiry: number; will: WillSpec | undefined; receiveMaximum: number }
  | { kind: 'subscribe'; client: number; filter: string; qos: QoS; sendRetained: RetainedPolicy }
  | { kind: 'unsubscribe'; client: number; filter: string }
  | { kind: 'publish'; client: number; topic: string; payload: string; qos: QoS; retain: boolean }
  | { kind: 'ack'; client: number }
  | { kind: 'publishIn'; client: number; packetId: number }
  | { kind: 'release'; client: number; packetId: number }
  | { kind: 'disconnect'; client: number; publishWill: boolean; expiry: number | undefined }
  | { kind: 'advance'; ms: number }
  | { kind: 'restart' };

const clientArb = fc.nat(CLIENTS.length - 1);
const qosArb = fc.constantFrom<QoS>(0, 1, 2);
// Empty payloads are frequent: a retained empty publish clears the topic.
const payloadArb = fc.constantFrom('', 'p', 'q', 'r');
const willArb: fc.Arbitrary<WillSpec> = fc.record({ payload: payloadArb, qos: qosArb, retain: fc.boolean(), delaySeconds: fc.constantFrom(0, 1, 5) });

export function opArb(withRestarts: boolean): fc.Arbitrary<Op> {
  const arbitraries: Array<fc.WeightedArbitrary<Op>> = [
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('connect' as const),
        client: clientArb,
        cleanStart: fc.boolean(),
        expiry: fc.constantFrom(...EXPIRIES),
        will: fc.option(willArb, { nil: undefined }),
        receiveMaximum: fc.constantFrom(1, 100),
      }),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), client: clientArb, filter: fc.constantFrom(...FILTERS), qos: qosArb, sendRetained: fc.constantFrom<RetainedPolicy>('always', 'if-new', 'never') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), client: clientArb, filter: fc.constantFrom(...FILTERS) }) },
    // client -1: the broker itself (no publisher id)
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('publish' as const), client: fc.integer({ min: -1, max: CLIENTS.length - 1 }), topic: fc.constantFrom(...TOPICS), payload: payloadArb, qos: qosArb, retain: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('ack' as const), client: clientArb }) },
    // Few packet ids, so resends and reuse after a release are common.
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('publishIn' as const), client: clientArb, packetId: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), client: clientArb, packetId: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), client: clientArb, publishWill: fc.boolean(), expiry: fc.option(fc.constantFrom(0, 2, 30), { nil: undefined }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(500, 1000, 3000, 40_000) }) },
  ];
  if (withRestarts) arbitraries.push({ weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) });
  return fc.oneof(...arbitraries);
}

// ---- replay --------------------------------------------------------------------------------

export async function readAll(store: ShardStore, shard: string, apply: (record: Awaited<ReturnType<ShardStore['read']>>[number]) => void): Promise<void> {
  let offset = 0;
  for (;;) {
    const records = await store.read(shard, offset, { maxRecords: 100 });
    if (records.length === 0) return;
    for (const record of records) apply(record);
    offset = (records[records.length - 1] as (typeof records)[number]).offset + 1;
  }
}

export async function replaySessions(store: ShardStore): Promise<Record<string, unknown>> {
  const table = new SessionTable();
  await readAll(store, SESSIONS_SHARD, (record) => table.apply(record));
  return table.snapshot();
}

/**
 * The table from what compaction leaves at the most: the latest record of each key, in offset
 * order, with the tombstones among them gone too (past their retention).
 */
export async function replaySessionsCompacted(store: ShardStore): Promise<Record<string, unknown>> {
  const latest = new Map<string, Awaited<ReturnType<ShardStore['read']>>[number]>();
  await readAll(store, SESSIONS_SHARD, (record) => latest.set(record.key?.toString('latin1') ?? '', record));
  const table = new SessionTable();
  for (const record of [...latest.values()].sort((a, b) => a.offset - b.offset)) if (record.value !== null) table.apply(record);
  return table.snapshot();
}

export async function replayRetained(store: ShardStore): Promise<ReturnType<RetainedStore['snapshot']>> {
  const retained = new RetainedStore();
  await readAll(store, RETAINED_SHARD, (record) => retained.apply(record));
  return retained.snapshot();
}

// ---- the harness ---------------------------------------------------------------------------

interface Connection {
  session: Session;
  sink: RecordingSink;
  /** Expiry the connection asked for (what a DISCONNECT without one keeps). */
  expiry: number;
}

/** MQTT's view of one client id: what the broker should hold for it. */
interface ModelClient {
  alive: boolean;
  online: boolean;
  expiry: number;
  disconnectedAt: number;
  subscriptions: Map<string, SubscriptionOptions>;
  /** The will of the open connection, if it has one. */
  will: WillMessage | undefined;
  /** A will waiting for its delay (or for the session to end, whichever comes first). */
  pendingWill: { will: WillMessage; due: number } | undefined;
  /** QoS 2 packet ids the client published and has not released (MQTT 4.3.3, session state). */
  inbound: Set<number>;
}

export class Harness {
  readonly clock = new ManualClock();
  readonly store: MemoryShardStore;
  broker!: Broker;
  readonly connections = new Map<string, Connection>();
  readonly model = new Map<string, ModelClient>(CLIENTS.map((id) => [id, newModelClient()]));
  readonly modelRetained = new Map<string, string>();
  /** Wills get distinct payloads so the retained check sees which one was published last. */
  #willCount = 0;

  /** `makeStore` gets the harness clock, for a store whose own time (tombstone retention) must follow it. */
  constructor(makeStore: (clock: ManualClock) => MemoryShardStore = () => new MemoryShardStore()) {
    this.store = makeStore(this.clock);
  }

  async open(): Promise<void> {
    this.broker = await Broker.open({ store: this.store, logger, dataShards: DATA_SHARDS, maxQueuedBytes: 64 * 1024, clock: this.clock, cursorFlushMs: CURSOR_FLUSH_MS });
    await settle();
  }

  async run(op: Op): Promise<void> {
    const broker = this.broker;
    switch (op.kind) {
      case 'connect': {
        const clientId = CLIENTS[op.client] as string;
        const will = op.will === undefined ? undefined : this.#will(clientId, op.will);
        const sink = new RecordingSink(op.receiveMaximum);
        const previous = this.connections.get(clientId);
        this.#modelConnect(clientId, op.cleanStart, op.expiry, will);
        const { session } = await broker.connect({ clientId, cleanStart: op.cleanStart, expirySeconds: op.expiry, will, protocolVersion: 5, sink });
        if (previous !== undefined) assert.equal(previous.sink.closedBy, 'session-taken-over', `${clientId}: the older connection is closed on takeover`);
        this.connections.set(clientId, { session, sink, expiry: op.expiry });
        session.attach(sink);
        return;
      }
      case 'subscribe': {
        const clientId = CLIENTS[op.client] as string;
        const connection = this.connections.get(clientId);
        if (connection === undefined) return;
        const options: SubscriptionOptions = { qos: op.qos, noLocal: false, keepRetainFlag: false, sendRetained: op.sendRetained };
        (this.model.get(clientId) as ModelClient).subscriptions.set(op.filter, options);
        const [isNew] = await broker.subscribe(connection.session, [{ filter: op.filter, options }]);
        broker.deliverRetained(connection.session, op.filter, options, isNew === true);
        return;
      }
      case 'unsubscribe': {
        const clientId = CLIENTS[op.client] as string;
        const connection = this.connections.get(clientId);
        if (connection === undefined) return;
        (this.model.get(clientId) as ModelClient).subscriptions.delete(op.filter);
        await broker.unsubscribe(connection.session, [op.filter]);
        return;
      }
      case 'publish': {
        const publisherId = op.client < 0 ? '' : (CLIENTS[op.client] as string);
        if (op.retain) this.#modelRetain(op.topic, op.payload);
        await broker.publish({ topic: op.topic, payload: Buffer.from(op.payload), qos: op.qos, retain: op.retain, publisherId, timestamp: this.clock.now(), properties: undefined });
        return;
      }
      case 'ack': {
        const connection = this.connections.get(CLIENTS[op.client] as string);
        if (connection === undefined) return;
        for (const delivery of connection.sink.unacknowledged.splice(0)) {
          if (delivery.qos === 2) connection.session.hold(delivery.tag);
          connection.session.ack(delivery.tag);
        }
        for (const tag of connection.sink.resumedHeld.splice(0)) connection.session.ack(tag);
        return;
      }
      case 'publishIn': {
        // What protocols/mqtt/connection.ts does with a QoS 2 PUBLISH: a packet id still
        // awaiting PUBREL is a resend and is not stored again.
        const clientId = CLIENTS[op.client] as string;
        const connection = this.connections.get(clientId);
        if (connection === undefined || connection.session.publishKeys.has(op.packetId)) return;
        (this.model.get(clientId) as ModelClient).inbound.add(op.packetId);
        connection.session.publishKeys.set(op.packetId, true);
        await broker.publishOnce(connection.session, op.packetId, { topic: 'in/q2', payload: Buffer.from(`${clientId}:${op.packetId}`), qos: 2, retain: false, publisherId: clientId, timestamp: this.clock.now(), properties: undefined });
        return;
      }
      case 'release': {
        const clientId = CLIENTS[op.client] as string;
        const connection = this.connections.get(clientId);
        if (connection === undefined || !connection.session.publishKeys.delete(op.packetId)) return;
        (this.model.get(clientId) as ModelClient).inbound.delete(op.packetId);
        await broker.releasePublishKey(connection.session, op.packetId);
        return;
      }
      case 'disconnect': {
        const clientId = CLIENTS[op.client] as string;
        const connection = this.connections.get(clientId);
        if (connection === undefined) return;
        // MQTT 5.0 refuses a DISCONNECT that sets an expiry when CONNECT had 0 (MQTT-3.14.2-2).
        const expiry = connection.expiry === 0 ? undefined : op.expiry;
        this.connections.delete(clientId);
        this.#modelDisconnect(clientId, op.publishWill, expiry ?? connection.expiry);
        await broker.disconnect(connection.session, connection.sink, { publishWill: op.publishWill, ...(expiry === undefined ? {} : { expirySeconds: expiry }) });
        return;
      }
      case 'advance':
        await this.clock.advance(op.ms, (now) => this.#modelTime(now));
        return;
      case 'restart':
        await this.restart();
        return;
    }
  }

  /** Checks (a): the live projections equal their shards replayed from offset 0. */
  async checkReplay(when: string): Promise<void> {
    await settle();
    assert.deepEqual(this.broker.sessionTable.snapshot(), await replaySessions(this.store), `(a) $sessions replayed differs from the live session table ${when}`);
    assert.deepEqual(this.broker.sessionTable.snapshot(), await replaySessionsCompacted(this.store), `(a) $sessions compacted and replayed differs from the live session table ${when}`);
    assert.deepEqual(this.broker.retained.snapshot(), await replayRetained(this.store), `(a) $retained replayed differs from the live retained set ${when}`);
  }

  /**
   * Checks (b) around a close and reopen; the broker afterwards is the reopened one. `whileClosed`
   * runs between the close and the checks (projection-compaction compacts the shards there).
   */
  async restart(whileClosed?: () => Promise<void>): Promise<void> {
    await settle();
    const now = this.clock.now();
    const before = this.broker.sessionTable.snapshot() as Record<string, { meta: Record<string, unknown>; subscriptions: unknown; cursors: unknown }>;
    const retainedBefore = this.broker.retained.snapshot();
    // What close() records for sessions connected at the time: disconnected now, no will (the
    // client did nothing wrong), cursors where the session stands.
    for (const [clientId, connection] of this.connections) {
      const entry = before[clientId];
      if (entry === undefined || connection.expiry === 0) continue;
      const { will: _will, ...meta } = entry.meta;
      entry.meta = { ...meta, connected: false, disconnectedAt: now, will: undefined };
      entry.cursors = cursorsByName(connection.session.cursors(), this.broker.dataShardNames);
    }
    await this.broker.close();
    for (const [clientId, connection] of this.connections) assert.equal(connection.sink.closedBy, 'server-shutting-down', `${clientId}: close() ends open connections`);
    this.connections.clear();
    this.#modelRestart(now);
    await whileClosed?.();
    const replayed = await replaySessions(this.store);
    assert.deepEqual(replayed, before, '(b) $sessions after close() is not the live table plus what close() records');
    assert.deepEqual(await replayRetained(this.store), retainedBefore, '(b) $retained after close() differs from the live retained set');
    await this.open();
    assert.deepEqual(this.broker.sessionTable.snapshot(), replayed, '(b) the reopened broker did not rebuild the session table from $sessions');
    assert.deepEqual(this.broker.retained.snapshot(), retainedBefore, '(b) the reopened broker did not rebuild the retained set');
  }

  /** Checks (c): the table holds the model's durable sessions, the retained set the model's. */
  checkModel(when: string): void {
    const expected: Record<string, unknown> = {};
    for (const [clientId, client] of this.model) {
      if (!client.alive || client.expiry === 0) continue;
      expected[clientId] = { connected: client.online, expirySeconds: client.expiry, subscriptions: Object.fromEntries([...client.subscriptions].sort(([a], [b]) => (a < b ? -1 : 1))), inbound: [...client.inbound].sort() };
    }
    const actual: Record<string, unknown> = {};
    for (const [clientId, entry] of Object.entries(this.broker.sessionTable.snapshot() as Record<string, { meta: { connected: boolean; expirySeconds: number }; subscriptions: unknown; publishKeys: Record<string, unknown> }>)) {
      actual[clientId] = { connected: entry.meta.connected, expirySeconds: entry.meta.expirySeconds, subscriptions: entry.subscriptions, inbound: Object.keys(entry.publishKeys).map(Number).sort() };
    }
    assert.deepEqual(actual, expected, `(c) the session table is not the set of live durable sessions ${when}`);
    const retained = Object.fromEntries(Object.entries(this.broker.retained.snapshot()).map(([topic, message]) => [topic, Buffer.from(message.payload, 'base64').toString()]));
    assert.deepEqual(retained, Object.fromEntries([...this.modelRetained].sort(([a], [b]) => (a < b ? -1 : 1))), `(c) the retained set is not what the publishes and wills left ${when}`);
  }

  async close(): Promise<void> {
    await this.broker.close();
  }

  #will(clientId: string, spec: WillSpec): WillMessage {
    this.#willCount += 1;
    const payload = spec.payload === '' ? '' : `${spec.payload}${this.#willCount}`;
    return { topic: `will/${clientId}`, payload: Buffer.from(payload), qos: spec.qos, retain: spec.retain, properties: undefined, delaySeconds: spec.delaySeconds };
  }

  // ---- the model (MQTT 5.0 3.1.2.4-5, 3.1.3.2, 3.14.2.2.2, 4.1) ----------------------------

  #modelRetain(topic: string, payload: string): void {
    if (payload === '') this.modelRetained.delete(topic);
    else this.modelRetained.set(topic, payload);
  }

  #modelPublishWill(will: WillMessage): void {
    if (will.retain) this.#modelRetain(will.topic, will.payload.toString());
  }

  #modelConnect(clientId: string, cleanStart: boolean, expiry: number, will: WillMessage | undefined): void {
    const client = this.model.get(clientId) as ModelClient;
    // A new connection before the will delay has passed cancels the will (3.1.2.5).
    client.pendingWill = undefined;
    // A takeover closes the older connection without DISCONNECT: a will without delay is
    // published; a delayed one is cancelled by the new connection (5.0 3.1.3.2.2).
    if (client.online && client.will !== undefined && client.will.delaySeconds === 0) this.#modelPublishWill(client.will);
    // A session with expiry 0 ends with its connection, also when a takeover ends it.
    if (cleanStart || !client.alive || (client.online && client.expiry === 0)) {
      client.subscriptions = new Map();
      client.inbound = new Set();
    }
    client.alive = true;
    client.online = true;
    client.expiry = expiry;
    client.will = will;
  }

  #modelDisconnect(clientId: string, publishWill: boolean, expiry: number): void {
    const client = this.model.get(clientId) as ModelClient;
    const will = publishWill ? client.will : undefined;
    client.online = false;
    client.will = undefined;
    client.expiry = expiry;
    client.disconnectedAt = this.clock.now();
    if (expiry === 0) {
      client.alive = false;
      client.subscriptions = new Map();
      client.inbound = new Set();
      if (will !== undefined) this.#modelPublishWill(will);
      return;
    }
    if (will === undefined) return;
    if (will.delaySeconds === 0) this.#modelPublishWill(will);
    else client.pendingWill = { will, due: client.disconnectedAt + will.delaySeconds * 1000 };
  }

  /** Due wills and expiries at `now`, in order (ties within one client need no order). */
  #modelTime(now: number): void {
    for (const client of this.model.values()) {
      if (client.pendingWill !== undefined && client.pendingWill.due <= now) {
        this.#modelPublishWill(client.pendingWill.will);
        client.pendingWill = undefined;
      }
      if (client.alive && !client.online && client.expiry !== SESSION_NEVER_EXPIRES && client.disconnectedAt + client.expiry * 1000 <= now) {
        // The session ends; a will still waiting is published now (MQTT-3.1.3-9).
        if (client.pendingWill !== undefined) this.#modelPublishWill(client.pendingWill.will);
        client.pendingWill = undefined;
        client.alive = false;
        client.subscriptions = new Map();
        client.inbound = new Set();
      }
    }
  }

  /** A shutdown is a disconnect without will for everyone connected. */
  #modelRestart(now: number): void {
    for (const [clientId, client] of this.model) {
      if (!client.online) continue;
      client.online = false;
      client.will = undefined;
      client.disconnectedAt = now;
      // A session with expiry 0 ends with its connection, and a shutdown ends the connection.
      if (client.expiry === 0) {
        client.alive = false;
        client.subscriptions = new Map();
        client.inbound = new Set();
      }
      assert.equal(client.pendingWill, undefined, `${clientId}: a connected client has no will pending`);
    }
  }
}

function newModelClient(): ModelClient {
  return { alive: false, online: false, expiry: 0, disconnectedAt: 0, subscriptions: new Map(), will: undefined, pendingWill: undefined, inbound: new Set() };
}

export async function runScript(ops: readonly Op[], check: (harness: Harness, step: string) => Promise<void> | void): Promise<void> {
  const harness = new Harness();
  await harness.open();
  try {
    for (const [index, op] of ops.entries()) {
      await harness.run(op);
      await settle();
      await check(harness, `after step ${index} (${op.kind})`);
    }
    await harness.restart();
    await check(harness, 'after the final restart');
  } finally {
    await harness.close();
  }
}
