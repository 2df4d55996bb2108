// kill -9 of the real broker process at random points of a random multi-client script.
//
// Goal: whatever the mix of clients and wherever the kill lands, the delivery guarantees hold
// after the restart:
//  1. every QoS 1 publish the broker PUBACKed reaches every persistent subscriber whose filter
//     matches at least once (and every observer connected through the last phase);
//  2. every QoS 2 publish it PUBRECed reaches every matching QoS 2 subscriber exactly once
//     (after the client's own packet-id deduplication: mqtt.js emits a QoS 2 message on PUBREL,
//     from an incoming store that here outlives connections as a real client's disk would),
//     and no effective-QoS-2 delivery happens twice, acknowledged or not;
//  3. per publisher and topic, first arrivals follow publish order (a QoS 1 message seen again
//     after the restart is at-least-once at work, not an ordering fault);
//  4. nothing arrives that nobody published, on another topic than it was published to, at
//     another QoS than min(publish, subscription), or through a subscription made after it was
//     published (a new clean observer gets old messages only as retained messages);
//  5. persistent sessions come back after every restart with session present 1 and their
//     subscriptions (a marker published after the last restart reaches every one of them
//     without a new SUBSCRIBE);
//  6. a retained topic gives a new subscriber a value it may have: when some retained publish
//     on the topic was acknowledged, exactly one value, and not one an acknowledged publish
//     superseded (see allowedRetained; an unacknowledged one in flight at the kill may be the
//     value, since it may have reached the journal first).
// Method: fast-check generates a script: the topology ('single': the whole node is killed;
// 'split': only the broker process, the journal server keeps running), 2-4 persistent
// subscribers (3.1.1 or 5.0, QoS 1 or 2, a filter among a few topics, some with + or #; online
// through the kills or offline until the end), 0-2 clean observers (they reconnect and
// resubscribe after each restart), 1-2 mqtt.js publishers with a window of in-flight QoS 1/2
// PUBLISH each, a sequence of publishes (topic, QoS, some retained) and 1-2 kill points (a
// share of the phase's remaining publishes that must be acknowledged first). The broker is
// started as a child process (`shardline start`, tests/support/broker-process.ts), SIGKILLed by
// pid from the handler of the acknowledgement that reaches the kill point (so PUBLISH are in
// flight both ways), restarted on the same data dir (split: the same journal server) and port;
// persistent subscribers reconnect with the same client ids, a retained probe checks the state
// the restart rebuilt, and the publishers publish what they had not sent. Acknowledgements and
// arrivals are read on the wire ('packetsend' / 'packetreceive') and ordered by one counter of
// events in this process. After the last phase the offline subscribers come back, a QoS 1
// marker per topic drains every queue (bounded wait), a last probe reads the retained state,
// and check() judges the record. One broker per topology serves all runs (each run has its own
// topic prefix and client ids), since a process start costs seconds on a busy machine.
// A failure prints the seed and the shrunk script (shrinking stops after SHRINK_BUDGET_MS);
// FC_SEED (and FC_PATH) replay it, FC_NUM_RUNS runs more. The checker's own self-test (first
// test) feeds it hand-made records with one fault each and requires it to report every one.
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { cleanup, killBroker, requireShardline, restartBroker, startBroker, stopBroker, type BrokerProcess, type Topology } from '../tests/support/broker-process.js';
import { connectForCrash, KeptStore, watchPublishAcks, type Connection, type Version } from '../tests/support/crash-clients.js';
import { numRuns, replay } from '../tests/support/fast-check.js';
import { waitUntil } from '../tests/support/raw-mqtt.js';

/** Topics under each run's prefix, and the filters scripts pick from (each matches at least one topic). */
const TOPICS = ['a/x', 'a/y', 'b'] as const;
const FILTERS = ['a/x', 'a/y', 'b', 'a/+', '+/y', '#'] as const;
/** Each run costs one broker start per kill (seconds on 2 busy cores): few runs, FC_NUM_RUNS for more. */
const RUNS = 4;
/** One phase of publishing (it ends at its kill, or when everything is acknowledged). */
const PHASE_LIMIT_MS = 20_000;
/** Waits for a connection to close after the kill, and for a probe's barrier. */
const CLOSE_WAIT_MS = 10_000;
const BARRIER_WAIT_MS = 10_000;
/** After the last phase: every queue drains, or the checks say what is missing. */
const DRAIN_MS = 20_000;
/** After the drain, how long late duplicates still have to show up. */
const SETTLE_MS = 300;
/** Shrinking reruns real processes: after this long, the smallest failing script so far is reported. */
const SHRINK_BUDGET_MS = 120_000;
const TEST_TIMEOUT_MS = 15 * 60_000;

type QoS12 = 1 | 2;

interface SubscriberSpec {
  version: Version;
  qos: QoS12;
  filter: string;
  /** Connected through the kills (reconnects after each restart), or offline from its SUBSCRIBE until the end. */
  online: boolean;
}

interface ObserverSpec {
  version: Version;
  qos: QoS12;
  filter: string;
}

interface PublisherSpec {
  version: Version;
  /** QoS 1/2 PUBLISH it keeps unacknowledged at once. */
  window: number;
}

interface PublishSpec {
  /** Index into the script's publishers (modulo their count). */
  publisher: number;
  topic: string;
  qos: QoS12;
  retain: boolean;
}

interface Script {
  topology: Topology;
  subscribers: SubscriberSpec[];
  observers: ObserverSpec[];
  publishers: PublisherSpec[];
  publishes: PublishSpec[];
  /** Per kill, the percentage of the publishes not yet sent when its phase starts that must be acknowledged before it. */
  kills: number[];
}

const versionArb = fc.constantFrom<Version>(4, 5);
const qosArb = fc.constantFrom<QoS12>(1, 2);
const scriptArb: fc.Arbitrary<Script> = fc.record({
  topology: fc.constantFrom<Topology>('single', 'split'),
  subscribers: fc.array(fc.record({ version: versionArb, qos: qosArb, filter: fc.constantFrom(...FILTERS), online: fc.boolean() }), { minLength: 2, maxLength: 4 }),
  observers: fc.array(fc.record({ version: versionArb, qos: qosArb, filter: fc.constantFrom(...FILTERS) }), { maxLength: 2 }),
  publishers: fc.array(fc.record({ version: versionArb, window: fc.integer({ min: 1, max: 8 }) }), { minLength: 1, maxLength: 2 }),
  // Unbiased length: with few runs, fast-check's bias would keep every script to a few publishes.
  publishes: fc.noBias(
    fc.array(
      fc.record({
        publisher: fc.integer({ min: 0, max: 1 }),
        topic: fc.constantFrom(...TOPICS),
        qos: qosArb,
        retain: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }),
      }),
      // size 'max': the default size would keep scripts to about ten publishes.
      { minLength: 4, maxLength: 48, size: 'max' },
    ),
  ),
  // Unbiased: fast-check would otherwise favour killing after the very first acknowledgement.
  kills: fc.array(fc.noBias(fc.integer({ min: 1, max: 100 })), { minLength: 1, maxLength: 2 }),
});

// ---- the record a run leaves, and the checker ---------------------------------------------

/** A script publish and what happened to it. Ticks order events observed in this process. */
interface Published {
  index: number;
  publisher: number;
  topic: string;
  qos: QoS12;
  retain: boolean;
  /** The phase (0 = before the first kill) in which it went out on the wire. */
  phase?: number;
  sendTick?: number;
  /** Position in its publisher's wire order, over all phases. */
  sendPos?: number;
  /** When the PUBACK (QoS 1) or PUBREC (QoS 2) with a success code arrived. */
  ackTick?: number;
  refused?: number;
}

/** What one subscriber session (persistent: all its connections) or one clean connection received. */
interface ReceiverLog {
  name: string;
  persistent: boolean;
  filter: string;
  qos: QoS12;
  /** Just before its SUBSCRIBE went out, and when the SUBACK came back. */
  subscribeTick: number;
  subackTick: number;
  /** Connected through the drain at the end: owes every acknowledged matching publish made after its SUBACK, and the end markers. */
  drained: boolean;
  /** Its retained deliveries were awaited (a probe, or drained): a topic with an acknowledged retained publish must be among them. */
  retainedComplete: boolean;
  /** The first wire arrival of each live (non-retained) script delivery, in order. */
  arrivals: number[];
  /** Live script deliveries as mqtt.js emits them (QoS 2: on PUBREL; duplicates are the client's). */
  emitted: { index: number; topic: string; qos: number }[];
  /** Deliveries with RETAIN 1 (from the retained store at SUBSCRIBE). */
  retained: { topic: string; index: number }[];
  /** Markers received, as `label:topic`. */
  markers: string[];
  /** Anything else: payloads and topics nobody published. */
  other: string[];
}

interface Outcome {
  publishes: Published[];
  receivers: ReceiverLog[];
}

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

function describePublish(p: Published): string {
  return `m${p.index} (publisher ${p.publisher}, ${p.topic}, QoS ${p.qos}${p.retain ? ', retained' : ''}, ${p.ackTick !== undefined ? 'acknowledged' : p.sendTick !== undefined ? 'sent, not acknowledged' : 'never sent'}${p.phase === undefined ? '' : `, phase ${p.phase}`})`;
}

/** The acknowledged publishes a receiver must get at least once. */
function owed(outcome: Outcome, log: ReceiverLog): Published[] {
  if (!log.drained) return [];
  return outcome.publishes.filter((p) => p.ackTick !== undefined && p.sendTick !== undefined && p.sendTick > log.subackTick && matches(log.filter, p.topic));
}

/**
 * The retained values a subscriber may get for `topic`, judged by what had been sent before its
 * SUBSCRIBE: `must` when some retained publish on the topic was acknowledged by then.
 * v is superseded, and may not be the value, when an acknowledged d on the topic came after it
 * for sure: the same publisher sent d after v in the same phase (one connection: the broker
 * appends them in that order, so d durable means v written before it), or v's acknowledgement
 * arrived before d was sent (v was applied before d reached the broker). Anything else may be
 * the value: an unacknowledged publish in flight at the kill may have been written before the
 * process died, after the last acknowledged one, and then it is the value after the restart.
 */
function allowedRetained(outcome: Outcome, topic: string, before: number): { must: boolean; allowed: Set<number> } {
  const candidates = outcome.publishes.filter((p) => p.retain && p.topic === topic && p.sendTick !== undefined && p.sendTick < before);
  const acked = candidates.filter((p) => p.ackTick !== undefined);
  const supersedes = (d: Published, v: Published): boolean => (d.publisher === v.publisher && d.phase === v.phase && d.sendPos! > v.sendPos!) || (v.ackTick !== undefined && v.ackTick < d.sendTick!);
  const allowed = new Set(candidates.filter((v) => !acked.some((d) => d !== v && supersedes(d, v))).map((v) => v.index));
  return { must: acked.length > 0, allowed };
}

/** Every guarantee violated by the record, one line each (empty: all hold). */
function check(outcome: Outcome): string[] {
  const problems: string[] = [];
  const publish = (index: number): Published | undefined => {
    const p = outcome.publishes[index];
    return p === undefined || p.sendTick === undefined ? undefined : p;
  };
  for (const log of outcome.receivers) {
    const who = `${log.name} (${log.persistent ? 'persistent' : 'clean'}, ${log.filter}, QoS ${log.qos})`;
    for (const text of log.other) problems.push(`${who}: received a message nobody published: ${text}`);
    const counts = new Map<number, number>();
    for (const delivery of log.emitted) {
      const p = publish(delivery.index);
      if (p === undefined) {
        problems.push(`${who}: received m${delivery.index}, which was never published`);
        continue;
      }
      counts.set(p.index, (counts.get(p.index) ?? 0) + 1);
      if (delivery.topic !== p.topic) problems.push(`${who}: ${describePublish(p)} arrived on ${delivery.topic}`);
      if (!matches(log.filter, p.topic)) problems.push(`${who}: ${describePublish(p)} does not match the subscription`);
      const effective = Math.min(p.qos, log.qos);
      if (delivery.qos !== effective) problems.push(`${who}: ${describePublish(p)} delivered at QoS ${delivery.qos}, not ${effective}`);
      // A clean observer subscribes after a restart and before its phase publishes. A message
      // sent in an earlier phase was in the journal before the new process started (split: the
      // journal server finishes a dead broker's appends in milliseconds, a restart takes
      // seconds) or never gets there, and a new subscription starts at the end of the journal.
      if (p.sendTick! < log.subscribeTick) problems.push(`${who}: ${describePublish(p)}, published before this subscription, was delivered live`);
    }
    for (const [index, count] of counts) {
      const p = outcome.publishes[index]!;
      if (count > 1 && Math.min(p.qos, log.qos) === 2) problems.push(`${who}: ${describePublish(p)} delivered ${count} times at QoS 2`);
    }
    for (const p of owed(outcome, log)) {
      if (!counts.has(p.index)) problems.push(`${who}: ${describePublish(p)} never delivered`);
    }
    // Order: first arrivals per (publisher, topic) in the publisher's wire order.
    const last = new Map<string, Published>();
    for (const index of log.arrivals) {
      const p = publish(index);
      if (p === undefined) {
        problems.push(`${who}: m${index} arrived, which was never published`);
        continue;
      }
      const key = `${p.publisher} ${p.topic}`;
      const previous = last.get(key);
      if (previous !== undefined && previous.sendPos! > p.sendPos!) problems.push(`${who}: ${describePublish(p)} arrived after ${describePublish(previous)}, which its publisher sent later`);
      if (previous === undefined || previous.sendPos! < p.sendPos!) last.set(key, p);
    }
    if (log.drained) {
      for (const topic of TOPICS) if (matches(log.filter, topic) && !log.markers.includes(`end:${topic}`)) problems.push(`${who}: the marker published on ${topic} after the last restart never arrived (subscription lost?)`);
    }
    // Retained deliveries: allowed values, at most one per topic; when awaited, every topic that must have one.
    for (const r of log.retained) if (!matches(log.filter, r.topic)) problems.push(`${who}: retained m${r.index} on ${r.topic}, outside the subscription`);
    for (const topic of TOPICS) {
      if (!matches(log.filter, topic)) continue;
      const got = log.retained.filter((r) => r.topic === topic);
      const { must, allowed } = allowedRetained(outcome, topic, log.subscribeTick);
      if (got.length > 1) problems.push(`${who}: ${got.length} retained messages for ${topic}: ${got.map((r) => `m${r.index}`).join(' ')}`);
      for (const r of got) {
        const p = publish(r.index);
        if (p === undefined || !p.retain || p.topic !== topic) problems.push(`${who}: retained message m${r.index} on ${topic} was never published retained there`);
        else if (!allowed.has(r.index)) problems.push(`${who}: retained ${describePublish(p)} on ${topic}, superseded by an acknowledged one (allowed: ${[...allowed].map((i) => `m${i}`).join(' ')})`);
      }
      if (log.retainedComplete && must && got.length === 0) problems.push(`${who}: no retained message on ${topic}, where one was acknowledged (allowed: ${[...allowed].map((i) => `m${i}`).join(' ')})`);
    }
  }
  return problems;
}

// ---- running a script against the real broker ---------------------------------------------

const brokers = new Map<Topology, BrokerProcess>();

function alive(cli: { child: { exitCode: number | null; signalCode: NodeJS.Signals | null } } | undefined): boolean {
  return cli !== undefined && cli.child.exitCode === null && cli.child.signalCode === null;
}

/** The topology's broker, started on first use or restarted if an earlier run left it dead. */
async function brokerFor(topology: Topology): Promise<BrokerProcess> {
  const known = brokers.get(topology);
  if (known !== undefined && alive(known.broker)) return known;
  const broker = known !== undefined && (topology === 'single' || alive(known.journal)) ? await restartBroker(known) : await startBroker({ topology });
  brokers.set(topology, broker);
  return broker;
}

let runCount = 0;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` if `promise` has not settled within `ms`: an answer the broker owes. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `promise` settles or after `ms`, whichever comes first (closing, where the broker owes nothing). */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

class Run {
  readonly prefix: string;
  readonly outcome: Outcome;
  /** Found while running (session present, refusals, liveness); check() adds the rest. */
  readonly problems: string[] = [];
  readonly notes: string[] = [];
  readonly clients = new Set<MqttClient>();
  #tick = 0;
  readonly #arrived = new WeakMap<ReceiverLog, Set<number>>();
  readonly #sendCount: number[];

  constructor(
    readonly script: Script,
    public broker: BrokerProcess,
  ) {
    runCount += 1;
    this.prefix = `bk${runCount}`;
    const publishers = script.publishers.length;
    this.outcome = { publishes: script.publishes.map((p, index) => ({ ...p, index, publisher: p.publisher % publishers })), receivers: [] };
    this.#sendCount = script.publishers.map(() => 0);
  }

  tick(): number {
    this.#tick += 1;
    return this.#tick;
  }

  full(relative: string): string {
    return `${this.prefix}/${relative}`;
  }

  newLog(name: string, persistent: boolean, filter: string, qos: QoS12): ReceiverLog {
    const log: ReceiverLog = { name, persistent, filter, qos, subscribeTick: 0, subackTick: 0, drained: false, retainedComplete: false, arrivals: [], emitted: [], retained: [], markers: [], other: [] };
    this.outcome.receivers.push(log);
    this.#arrived.set(log, new Set());
    return log;
  }

  /** Records what `client` receives into `log` (attached before CONNECT: a resumed session's queue may come with the CONNACK). */
  listen(log: ReceiverLog, client: MqttClient): void {
    this.clients.add(client);
    const decode = (packet: IPublishPacket): { index?: number; marker?: string; topic: string; text: string } => {
      const payload = packet.payload.toString();
      const text = `${packet.topic}=${payload}`;
      if (!packet.topic.startsWith(`${this.prefix}/`)) return { topic: packet.topic, text };
      const topic = packet.topic.slice(this.prefix.length + 1);
      const script = /^m(\d+)$/.exec(payload);
      if (script !== null) return { index: Number(script[1]), topic, text };
      const marker = /^k:(.+)$/.exec(payload);
      return marker === null ? { topic, text } : { marker: marker[1], topic, text };
    };
    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd !== 'publish') return;
      const { index, topic, text } = decode(packet);
      if (packet.retain) {
        if (index === undefined) log.other.push(`${text} (retained)`);
        else log.retained.push({ topic, index });
        return;
      }
      const arrived = this.#arrived.get(log)!;
      if (index !== undefined && !arrived.has(index)) {
        arrived.add(index);
        log.arrivals.push(index);
      }
    });
    client.on('message', (_topic: string, _payload: Buffer, packet: IPublishPacket) => {
      if (packet.retain) return;
      const { index, marker, topic, text } = decode(packet);
      if (index !== undefined) log.emitted.push({ index, topic, qos: packet.qos });
      else if (marker !== undefined) log.markers.push(`${marker}:${topic}`);
      else log.other.push(text);
    });
  }

  async connect(log: ReceiverLog | undefined, version: Version, clientId: string, clean: boolean, incomingStore?: KeptStore, setup?: (client: MqttClient) => void): Promise<Connection> {
    const connection = await connectForCrash(this.broker.url, version, clientId, clean, {
      ...(incomingStore === undefined ? {} : { incomingStore }),
      setup: (client) => {
        this.clients.add(client);
        if (log !== undefined) this.listen(log, client);
        setup?.(client);
      },
    });
    return connection;
  }

  async subscribe(log: ReceiverLog, connection: Connection): Promise<void> {
    log.subscribeTick = this.tick();
    const granted = await bounded(connection.client.subscribeAsync(this.full(log.filter), { qos: log.qos }), BARRIER_WAIT_MS, `${log.name}: SUBACK`);
    log.subackTick = this.tick();
    if (granted[0]?.qos !== log.qos) this.problems.push(`${log.name}: SUBSCRIBE ${log.filter} QoS ${log.qos} granted ${granted[0]?.qos}`);
  }

  /**
   * Publishes every script publish not sent yet, each publisher with its window in flight.
   * With `killAfter`, the broker is SIGKILLed from the handler of that many-th acknowledgement
   * of this phase, and the publishers stop when their connections drop.
   */
  async publishPhase(phase: number, killAfter: number | undefined): Promise<void> {
    let acks = 0;
    let killing: Promise<void> | undefined;
    const broker = this.broker;
    const kill = (): void => {
      killing ??= killBroker(broker);
    };
    const byPayload = (packet: IPublishPacket): Published | undefined => {
      const match = /^m(\d+)$/.exec(packet.payload.toString());
      return match === null ? undefined : this.outcome.publishes[Number(match[1])];
    };
    const remaining = this.outcome.publishes.filter((p) => p.sendTick === undefined);
    // Nothing left to send: the kill lands while the restored sessions resend what they owe.
    if (killAfter === 0) kill();
    const connect = (spec: PublisherSpec, j: number): Promise<Connection> =>
      this.connect(undefined, spec.version, `${this.prefix}-p${j}`, true, undefined, (client) =>
        watchPublishAcks(client, {
          sent: (packet) => {
            const p = byPayload(packet);
            if (p === undefined) return;
            p.sendTick = this.tick();
            p.phase = phase;
            p.sendPos = this.#sendCount[j]!;
            this.#sendCount[j]! += 1;
          },
          accepted: (packet) => {
            const p = byPayload(packet);
            if (p === undefined) return;
            p.ackTick = this.tick();
            acks += 1;
            // Right here, in the handler: the kill lands with PUBLISH still in flight.
            if (killAfter !== undefined && acks >= killAfter) kill();
          },
          refused: (packet, code) => {
            const p = byPayload(packet);
            if (p !== undefined) p.refused = code;
          },
        }),
      );
    const connections = killAfter === 0 ? [] : await Promise.all(this.script.publishers.map(connect));
    let phaseTimer: NodeJS.Timeout | undefined;
    const phaseOver = new Promise<void>((resolve) => (phaseTimer = setTimeout(resolve, PHASE_LIMIT_MS)));
    let over = false;
    void phaseOver.then(() => (over = true));
    await Promise.all(
      connections.map(async (connection, j) => {
        const queue = remaining.filter((p) => p.publisher === j);
        let next = 0;
        let lost = false;
        const connectionLost = connection.closed.then(() => {
          lost = true;
        });
        const worker = async (): Promise<void> => {
          while (!lost && !over && next < queue.length) {
            const p = queue[next]!;
            next += 1;
            const done = connection.client.publishAsync(this.full(p.topic), `m${p.index}`, { qos: p.qos, retain: p.retain }).catch(() => undefined);
            // After the kill the publish never completes: stop waiting when the connection drops
            // (or, if something hangs, when the phase's time is up; the checks say what).
            await Promise.race([done, connectionLost, phaseOver]);
          }
        };
        await Promise.all(Array.from({ length: this.script.publishers[j]!.window }, worker));
      }),
    );
    clearTimeout(phaseTimer);
    const sent = remaining.filter((p) => p.sendTick !== undefined);
    const acked = sent.filter((p) => p.ackTick !== undefined);
    this.notes.push(`phase ${phase}: ${remaining.length} to send, ${sent.length} sent, ${acked.length} acknowledged${killAfter === undefined ? '' : `, killed after ${killAfter}`}`);
    for (const p of remaining) if (p.refused !== undefined) this.problems.push(`${describePublish(p)} refused with 0x${p.refused.toString(16)}`);
    if (killAfter === undefined) {
      // The last phase has no kill: everything goes out and is acknowledged.
      for (const p of remaining) if (p.ackTick === undefined && p.refused === undefined) this.problems.push(`${describePublish(p)} was not acknowledged in the last phase (within ${PHASE_LIMIT_MS} ms)`);
      for (const connection of connections) await within(connection.client.endAsync(), CLOSE_WAIT_MS);
      return;
    }
    if (killing === undefined) {
      this.problems.push(`phase ${phase}: the kill point (${killAfter} acknowledgements) was not reached within ${PHASE_LIMIT_MS} ms`);
      kill();
    }
    await killing;
    for (const connection of connections) {
      await within(connection.closed, CLOSE_WAIT_MS);
      connection.client.end(true);
    }
  }

  /**
   * A new clean subscriber to everything under the prefix reads the retained state, then a
   * barrier: a QoS 1 marker of its own on each topic. Retained messages are queued at
   * SUBSCRIBE, before the markers reach the journal, so when the markers are in, so is every
   * retained message.
   */
  async probeRetained(label: string): Promise<void> {
    const log = this.newLog(label, false, '#', 1);
    log.retainedComplete = true;
    const connection = await this.connect(log, 5, `${this.prefix}-${label}`, true);
    await this.subscribe(log, connection);
    for (const topic of TOPICS) await bounded(connection.client.publishAsync(this.full(topic), `k:${label}`, { qos: 1 }), BARRIER_WAIT_MS, `${label}: PUBACK of its marker`);
    await waitUntil(() => TOPICS.every((topic) => log.markers.includes(`${label}:${topic}`)), BARRIER_WAIT_MS, `${label}: its own markers`).catch(() => this.problems.push(`${label}: its markers did not come back within ${BARRIER_WAIT_MS} ms`));
    await within(connection.client.endAsync(), CLOSE_WAIT_MS);
  }
}

async function runScript(script: Script, t: TestContext): Promise<void> {
  const started = Date.now();
  const run = new Run(script, await brokerFor(script.topology));
  try {
    await execute(run);
  } finally {
    for (const client of run.clients) client.end(true);
    brokers.set(script.topology, run.broker);
  }
  const problems = [...run.problems, ...check(run.outcome)];
  t.diagnostic(`run ${run.prefix} (${script.topology}, ${script.subscribers.length} subscribers, ${script.observers.length} observers, ${script.publishers.length} publishers, ${script.publishes.length} publishes): ${run.notes.join('; ')}; ${problems.length} problems; ${Date.now() - started} ms`);
  assert.deepEqual(problems, [], `${run.prefix}: delivery guarantees broken`);
}

async function execute(run: Run): Promise<void> {
  const { script } = run;
  // Persistent subscribers: a fresh session each, subscribed before anything is published.
  const subscribers = script.subscribers.map((spec, i) => ({ spec, clientId: `${run.prefix}-s${i}`, store: new KeptStore(), log: run.newLog(`s${i}`, true, spec.filter, spec.qos), connection: undefined as Connection | undefined }));
  for (const sub of subscribers) {
    sub.log.drained = true;
    sub.log.retainedComplete = true;
    const connection = await run.connect(sub.log, sub.spec.version, sub.clientId, false, sub.store);
    if (connection.connack.sessionPresent) run.problems.push(`${sub.clientId}: session present on its first CONNECT`);
    await run.subscribe(sub.log, connection);
    if (sub.spec.online) sub.connection = connection;
    else await within(connection.client.endAsync(), CLOSE_WAIT_MS);
  }
  const kills = script.kills.length;
  for (let phase = 0; phase <= kills; phase += 1) {
    if (phase > 0) {
      const restarting = Date.now();
      run.broker = await restartBroker(run.broker);
      run.notes.push(`restart ${phase}: ${Date.now() - restarting} ms`);
      for (const sub of subscribers) {
        if (!sub.spec.online) continue;
        sub.connection = await run.connect(sub.log, sub.spec.version, sub.clientId, false, sub.store);
        if (!sub.connection.connack.sessionPresent) run.problems.push(`${sub.clientId}: session present 0 after restart ${phase}`);
      }
      await run.probeRetained(`rp${phase}`);
    }
    // Clean observers: a new session per phase, subscribed before the phase publishes.
    const observers: Connection[] = [];
    for (const [i, spec] of script.observers.entries()) {
      const log = run.newLog(`o${i}.${phase}`, false, spec.filter, spec.qos);
      log.drained = phase === kills;
      log.retainedComplete = phase === kills;
      const connection = await run.connect(log, spec.version, `${run.prefix}-o${i}`, true);
      await run.subscribe(log, connection);
      observers.push(connection);
    }
    const toSend = run.outcome.publishes.filter((p) => p.sendTick === undefined).length;
    const killAfter = phase === kills ? undefined : toSend === 0 ? 0 : Math.max(1, Math.ceil((script.kills[phase]! * toSend) / 100));
    await run.publishPhase(phase, killAfter);
    if (phase === kills) break;
    if (!(run.broker.broker.child.signalCode === 'SIGKILL')) run.problems.push(`phase ${phase}: the broker did not die of the kill (${run.broker.broker.child.exitCode}, ${run.broker.broker.child.signalCode})`);
    if (run.broker.topology === 'split' && !alive(run.broker.journal)) run.problems.push(`phase ${phase}: the journal server died with the broker`);
    for (const connection of [...subscribers.map((sub) => sub.connection), ...observers]) {
      if (connection === undefined) continue;
      await within(connection.closed, CLOSE_WAIT_MS);
      connection.client.end(true);
    }
  }
  // The offline subscribers come back; then a marker per topic drains every queue.
  for (const sub of subscribers) {
    if (sub.spec.online) continue;
    sub.connection = await run.connect(sub.log, sub.spec.version, sub.clientId, false, sub.store);
    if (!sub.connection.connack.sessionPresent) run.problems.push(`${sub.clientId}: session present 0 after being offline through ${kills} kill(s)`);
  }
  const end = await run.connect(undefined, 5, `${run.prefix}-end`, true);
  for (const topic of TOPICS) await bounded(end.client.publishAsync(run.full(topic), 'k:end', { qos: 1 }), BARRIER_WAIT_MS, 'PUBACK of an end marker');
  await within(end.client.endAsync(), CLOSE_WAIT_MS);
  const drained = run.outcome.receivers.filter((log) => log.drained);
  const done = (log: ReceiverLog): boolean => {
    const got = new Set(log.emitted.map((delivery) => delivery.index));
    return TOPICS.every((topic) => !matches(log.filter, topic) || log.markers.includes(`end:${topic}`)) && owed(run.outcome, log).every((p) => got.has(p.index));
  };
  // The checks below say what is missing when the wait runs out.
  await waitUntil(() => drained.every(done), DRAIN_MS, 'every queue drains', 20).catch(() => undefined);
  await sleep(SETTLE_MS);
  await run.probeRetained('rp-end');
  if (!alive(run.broker.broker)) run.problems.push(`the broker process died unasked: ${run.broker.broker.child.exitCode}, ${run.broker.broker.child.signalCode}`);
}

describe('broker kill -9 at random points of a random multi-client script', () => {
  after(async () => {
    try {
      // A clean shutdown after all that: exit code 0 (stopBroker asserts it).
      for (const broker of brokers.values()) await stopBroker(broker);
    } finally {
      await cleanup();
    }
  });

  it('self-test: check() reports each kind of broken guarantee', () => {
    const base = (): Outcome => {
      const publishes: Published[] = [
        { index: 0, publisher: 0, topic: 'a/x', qos: 1, retain: false, phase: 0, sendTick: 10, sendPos: 0, ackTick: 12 },
        { index: 1, publisher: 0, topic: 'a/x', qos: 2, retain: false, phase: 0, sendTick: 11, sendPos: 1, ackTick: 13 },
        { index: 2, publisher: 0, topic: 'b', qos: 1, retain: true, phase: 0, sendTick: 14, sendPos: 2, ackTick: 15 },
        // Sent after m2 was acknowledged: supersedes it.
        { index: 3, publisher: 1, topic: 'b', qos: 2, retain: true, phase: 0, sendTick: 16, sendPos: 0, ackTick: 17 },
        // In flight at the kill: may or may not arrive, may be the retained value.
        { index: 4, publisher: 1, topic: 'b', qos: 2, retain: true, phase: 0, sendTick: 18, sendPos: 1 },
        // Never sent.
        { index: 5, publisher: 0, topic: 'a/y', qos: 1, retain: false },
      ];
      const markers = TOPICS.map((topic) => `end:${topic}`);
      const subscriber: ReceiverLog = {
        name: 's0',
        persistent: true,
        filter: '#',
        qos: 2,
        subscribeTick: 1,
        subackTick: 2,
        drained: true,
        retainedComplete: true,
        arrivals: [0, 1, 2, 3],
        emitted: [
          { index: 0, topic: 'a/x', qos: 1 },
          { index: 0, topic: 'a/x', qos: 1 },
          { index: 1, topic: 'a/x', qos: 2 },
          { index: 2, topic: 'b', qos: 1 },
          { index: 3, topic: 'b', qos: 2 },
        ],
        retained: [],
        markers,
        other: [],
      };
      const probe: ReceiverLog = { ...subscriber, name: 'rp', persistent: false, qos: 1, subscribeTick: 30, subackTick: 31, drained: false, arrivals: [], emitted: [], retained: [{ topic: 'b', index: 3 }], markers: [] };
      return { publishes, receivers: [subscriber, probe] };
    };
    assert.deepEqual(check(base()), [], 'the unbroken record passes (a QoS 1 duplicate is allowed)');
    assert.deepEqual(check({ ...base(), receivers: [base().receivers[0]!, { ...base().receivers[1]!, retained: [{ topic: 'b', index: 4 }] }] }), [], 'the in-flight retained publish may be the value');
    const faults: Array<[string, (outcome: Outcome) => void, RegExp]> = [
      ['an acknowledged QoS 1 publish lost', (o) => (o.receivers[0]!.emitted = o.receivers[0]!.emitted.filter((d) => d.index !== 0)), /m0 .* never delivered/],
      ['an acknowledged QoS 2 publish lost', (o) => (o.receivers[0]!.emitted = o.receivers[0]!.emitted.filter((d) => d.index !== 3)), /m3 .* never delivered/],
      ['a QoS 2 publish delivered twice', (o) => o.receivers[0]!.emitted.push({ index: 1, topic: 'a/x', qos: 2 }), /m1 .* delivered 2 times at QoS 2/],
      ['an unacknowledged QoS 2 publish delivered twice', (o) => o.receivers[0]!.emitted.push({ index: 4, topic: 'b', qos: 2 }, { index: 4, topic: 'b', qos: 2 }), /m4 .* delivered 2 times at QoS 2/],
      ['first arrivals out of publish order', (o) => (o.receivers[0]!.arrivals = [1, 0, 2, 3]), /m0 .* arrived after .*m1/],
      ['a message never published', (o) => o.receivers[0]!.emitted.push({ index: 5, topic: 'a/y', qos: 1 }), /m5, which was never published/],
      ['a payload nobody sent', (o) => o.receivers[0]!.other.push('bk1/b=junk'), /nobody published/],
      ['the wrong QoS', (o) => (o.receivers[0]!.emitted[2]!.qos = 1), /m1 .* delivered at QoS 1, not 2/],
      ['a delivery on another topic', (o) => (o.receivers[0]!.emitted[3]!.topic = 'a/y'), /m2 .* arrived on a\/y/],
      ['a delivery outside the filter', (o) => (o.receivers[0]!.filter = 'a/+'), /does not match the subscription/],
      ['a live delivery of a message older than the subscription', (o) => (o.receivers[1]!.emitted = [{ index: 0, topic: 'a/x', qos: 1 }]), /published before this subscription/],
      ['a lost subscription (no end marker)', (o) => (o.receivers[0]!.markers = o.receivers[0]!.markers.filter((m) => m !== 'end:b')), /marker published on b .* never arrived/],
      ['a superseded retained value', (o) => (o.receivers[1]!.retained = [{ topic: 'b', index: 2 }]), /retained m2 .* superseded/],
      ['an acknowledged retained value gone', (o) => (o.receivers[1]!.retained = []), /no retained message on b/],
      ['two retained messages for a topic', (o) => o.receivers[1]!.retained.push({ topic: 'b', index: 4 }), /2 retained messages for b/],
      ['a retained delivery outside the filter', (o) => (o.receivers[1]!.filter = 'a/+'), /retained m3 on b, outside the subscription/],
      ['a retained delivery of a non-retained publish', (o) => (o.receivers[1]!.retained = [{ topic: 'a/x', index: 0 }, { topic: 'b', index: 3 }]), /m0 on a\/x was never published retained/],
    ];
    for (const [what, breakIt, expected] of faults) {
      const outcome = base();
      breakIt(outcome);
      const problems = check(outcome);
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `${what}: expected a problem like ${expected}, got ${JSON.stringify(problems)}`,
      );
    }
  });

  it('acknowledged QoS 1 at least once, acknowledged QoS 2 exactly once, per-publisher order, sessions, subscriptions and retained values survive', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!requireShardline(t)) return;
    let firstFailure: number | undefined;
    await fc.assert(
      fc.asyncProperty(scriptArb, async (script) => {
        // Shrinking runs real processes: once the budget is spent, every further candidate is
        // skipped, and fast-check reports the smallest failing script found so far.
        fc.pre(firstFailure === undefined || Date.now() - firstFailure < SHRINK_BUDGET_MS);
        try {
          await runScript(script, t);
        } catch (error) {
          firstFailure ??= Date.now();
          throw error;
        }
      }),
      { numRuns: numRuns(RUNS), includeErrorInReport: true, ...replay },
    );
  });
});
