// The MQTT broker across a power cut: one in-process node (journal, broker, MQTT listener) over a
// SimulatedDisk, real mqtt.js clients over loopback, power cut at a random point (often in the
// middle of publishing), node torn down abruptly and started again on the surviving disk.
//
// The claim checked, per seed (docs/mqtt.md, "Power cuts"):
// - every publish acknowledged to its publisher (PUBACK for QoS 1, PUBCOMP for QoS 2) reaches
//   every persistent session subscribed to its topic after the restart; publishes that were not
//   acknowledged may or may not arrive (one that reached the disk before the cut may);
// - the sessions were offline across the cut, so none had completed a delivery: a QoS 2
//   delivery arrives exactly once after the restart (no copy of a message twice), QoS 1 at
//   least once;
// - each persistent session still exists: CONNACK session present = 1, and a publish made
//   after the restart reaches it (its subscription survived);
// - per retained topic (each written by one publisher, in order), a new subscriber gets the
//   last acknowledged retained value, or a later one that was sent but not acknowledged (it
//   may have reached the disk before the cut).
//
// Variants break durability on purpose, for the self-tests: 'ack-before-durable' (the broker
// acknowledges before the append is durable) and 'skip-data-sync' (the journal never
// fdatasyncs data). The property must fail for some seed under each.
import { setTimeout as delay } from 'node:timers/promises';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import pino from 'pino';
import { WriteGate } from '../engine/index.js';
import { Broker } from '../engine/index.js';
import { Journal } from '../journal/index.js';
import { mulberry32, type Random } from '../journal/testing.js';
import { SimulatedDisk } from '../journal/testing.js';
import { MqttServer, mqttLimitDefaults, type MqttLimits } from '../protocols/mqtt/index.js';
import { LocalShardStore } from '../shard-model/index.js';
import type { SimFailure, SimSuite } from './suite.js';

const DIRECTORY = '/data';
const VARIANTS = ['ack-before-durable', 'skip-data-sync'] as const;
type Variant = (typeof VARIANTS)[number];

/** Every wait of a seed is bounded by one of these, so no seed hangs. */
const STEP_MS = 3_000;
const PUBLISH_PHASE_MS = 3_000;
/** How long to wait for deliveries that are not there yet once they could all have come. */
const SETTLE_MS = 150;
/** After the cut is seen, acks already on the wire still count (they were sent before it). */
const ACK_GRACE_MS = 15;
/** The scheduled cut lands within this many disk operations of the start of publishing. */
const CUT_WINDOW_OPS = 120;

const LIMITS: MqttLimits = {
  ...mqttLimitDefaults(),
  maxPacketSize: 1024 * 1024,
  maxTopicLength: 4096,
  maxTopicLevels: 128,
  maxInflight: 64,
  connectTimeoutMs: 5_000,
  maxSessionExpiry: 3_600,
  topicAliasMaximum: 0,
  maxKeepAlive: 65_535,
  serverKeepAlive: 0,
  maxConnections: 100,
};

const SHARED_TOPICS = ['t/0', 't/1', 't/2'];
const FILTERS = ['t/#', 't/0', 't/1', 't/2', '+/1', 'r/#', 'r/+/0', 'r/+/1'];

interface Sent {
  id: string;
  topic: string;
  qos: 1 | 2;
  retain: boolean;
  publisher: number;
  /** Send order within its publisher. */
  index: number;
  acked: boolean;
}

interface SessionPlan {
  clientId: string;
  version: 4 | 5;
  filter: string;
  qos: 1 | 2;
}

interface Node {
  journal: Journal;
  broker: Broker;
  server: MqttServer;
}

const logger = pino({ level: 'silent' });

export const brokerPowerCutSuite: SimSuite = {
  name: 'broker',
  summary: 'MQTT node over a simulated disk, power cut mid-publish: acknowledged publishes, persistent sessions and retained messages survive',
  defaultSeeds: 50,
  variants: [...VARIANTS],
  async runSeed(seed, options) {
    const variant = options.variant;
    if (variant !== undefined && !(VARIANTS as readonly string[]).includes(variant)) throw new Error(`unknown variant ${variant} (known: ${VARIANTS.join(', ')})`);
    return runSeed(seed, variant as Variant | undefined);
  },
};

async function runSeed(seed: number, variant: Variant | undefined): Promise<SimFailure | null> {
  const random = mulberry32(seed);
  const disk = new SimulatedDisk({ seed });
  const clients = new Set<MqttClient>();
  let node: Node | undefined;
  let afterCut = '';
  const fail = (message: string): SimFailure => ({ seed, message, detail: `disk right after the cut:\n${afterCut}\n\ndisk now:\n${disk.describe()}` });
  try {
    node = await startNode(disk, variant);
    const plans = planSessions(random, seed);
    for (const plan of plans) {
      const { client } = await connect(clients, node.server.port, plan.clientId, plan.version, false);
      await withDeadline(client.subscribeAsync(plan.filter, { qos: plan.qos }), STEP_MS, `subscribe ${plan.clientId}`);
      await closeClient(clients, client, false);
    }

    const sent = await publishUntilCut(random, disk, clients, node.server.port);
    afterCut = disk.describe();
    await teardown(clients, node);
    node = undefined;

    node = await startNode(disk, variant);
    const port = node.server.port;

    // Retained first: the probes below are not retained, but keep the check independent of them.
    const retainedFailure = await checkRetained(clients, port, sent, seed);
    if (retainedFailure !== null) return fail(retainedFailure);

    const received = new Map<string, IPublishPacket[]>();
    for (const plan of plans) {
      const packets: IPublishPacket[] = [];
      received.set(plan.clientId, packets);
      const { connack } = await connect(clients, port, plan.clientId, plan.version, false, (packet) => packets.push(packet));
      if (!connack.sessionPresent) return fail(`session ${plan.clientId} (MQTT ${plan.version === 5 ? '5.0' : '3.1.1'}) is gone after the power cut: CONNACK session present = 0`);
    }
    const probes = await publishProbes(clients, port, plans);
    const deadline = Date.now() + STEP_MS;
    const missing = (plan: SessionPlan): string[] => {
      const ids = new Set((received.get(plan.clientId) ?? []).map((packet) => packet.payload.toString()));
      const expected = sent.filter((message) => message.acked && topicMatches(plan.filter, message.topic)).map((message) => message.id);
      return [...expected, probes.get(plan.clientId) as string].filter((id) => !ids.has(id));
    };
    // Per session the backlog comes before a later publish on the same shard; once every probe is
    // in, whatever is still missing gets a short grace (other shards), not the whole deadline.
    let probesInAt: number | undefined;
    while (Date.now() < deadline && plans.some((plan) => missing(plan).length > 0)) {
      if (probesInAt === undefined && plans.every((plan) => !missing(plan).includes(probes.get(plan.clientId) as string))) probesInAt = Date.now();
      if (probesInAt !== undefined && Date.now() - probesInAt > SETTLE_MS) break;
      await delay(2);
    }
    for (const plan of plans) {
      const lost = missing(plan);
      const probe = probes.get(plan.clientId) as string;
      if (lost.includes(probe)) return fail(`session ${plan.clientId} lost its subscription ${plan.filter} across the power cut: a publish after the restart did not reach it`);
      if (lost.length > 0) {
        const details = lost.map((id) => describeSent(sent.find((message) => message.id === id)));
        return fail(`acknowledged publish(es) lost across the power cut for session ${plan.clientId} (filter ${plan.filter}, QoS ${plan.qos}): ${details.join('; ')}`);
      }
      const seen = new Map<string, number>();
      for (const packet of received.get(plan.clientId) ?? []) {
        if (packet.qos !== 2) continue;
        const id = packet.payload.toString();
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      const twice = [...seen].filter(([, count]) => count > 1).map(([id, count]) => `${id} x${count}`);
      if (twice.length > 0) return fail(`QoS 2 delivered more than once to session ${plan.clientId} after the power cut: ${twice.join(', ')}`);
    }
    return null;
  } finally {
    if (node !== undefined) await teardown(clients, node);
    else for (const client of [...clients]) await closeClient(clients, client, true);
  }
}

function planSessions(random: Random, seed: number): SessionPlan[] {
  const count = 2 + random.int(3);
  return Array.from({ length: count }, (_, i) => ({
    clientId: `s${seed.toString(36)}-${i}`,
    version: random.next() < 0.5 ? 4 : 5,
    filter: FILTERS[random.int(FILTERS.length)] as string,
    qos: random.next() < 0.5 ? 1 : 2,
  }));
}

/**
 * Several publishers at once, QoS 1 and 2, some retained. The power goes off either after a
 * random number of disk operations from the start (so in the middle of an append, between a
 * write and its fdatasync, or between two batches) or, when that number is not reached, once
 * every publish is settled.
 */
async function publishUntilCut(random: Random, disk: SimulatedDisk, clients: Set<MqttClient>, port: number): Promise<Sent[]> {
  const publishers = 2 + random.int(2);
  const connected = await Promise.all(Array.from({ length: publishers }, (_, p) => connect(clients, port, `p-${p}`, random.next() < 0.5 ? 4 : 5, true)));
  const sent: Sent[] = [];
  let counting = true;
  let settled = 0;
  if (random.next() < 0.8) disk.powerCutAfterOperations(1 + random.int(CUT_WINDOW_OPS));
  const bursts = connected.map(async ({ client }, p) => {
    const count = 3 + random.int(14);
    for (let index = 0; index < count; index += 1) {
      if (!disk.powerIsOn) break;
      const retain = random.next() < 0.3;
      const topic = retain ? `r/${p}/${random.int(2)}` : (SHARED_TOPICS[random.int(SHARED_TOPICS.length)] as string);
      const message: Sent = { id: `m${p}-${index}`, topic, qos: random.next() < 0.5 ? 1 : 2, retain, publisher: p, index, acked: false };
      sent.push(message);
      client.publish(topic, message.id, { qos: message.qos, retain }, (error) => {
        settled += 1;
        if (!error && counting) message.acked = true;
      });
      if (random.next() < 0.4) await delay(random.int(2));
    }
  });
  await withDeadline(Promise.all(bursts), PUBLISH_PHASE_MS, 'publishing');
  const deadline = Date.now() + PUBLISH_PHASE_MS;
  let cutSeenAt: number | undefined;
  while (Date.now() < deadline) {
    if (settled >= sent.length) break;
    if (!disk.powerIsOn) {
      cutSeenAt ??= Date.now();
      if (Date.now() - cutSeenAt >= ACK_GRACE_MS) break;
    }
    await delay(1);
  }
  counting = false;
  disk.powerCut();
  return sent;
}

async function checkRetained(clients: Set<MqttClient>, port: number, sent: readonly Sent[], seed: number): Promise<string | null> {
  const latest = new Map<string, string>();
  const { client } = await connect(clients, port, `ret-${seed.toString(36)}`, 5, true, (packet) => {
    if (packet.retain) latest.set(packet.topic, packet.payload.toString());
  });
  await withDeadline(client.subscribeAsync('r/#', { qos: 1 }), STEP_MS, 'subscribe r/#');
  // Allowed per topic: the last acknowledged retained publish and anything its publisher sent after it.
  const allowed = new Map<string, Set<string>>();
  for (const topic of new Set(sent.filter((message) => message.retain).map((message) => message.topic))) {
    const onTopic = sent.filter((message) => message.topic === topic).sort((a, b) => a.index - b.index);
    const lastAcked = onTopic.map((message) => message.acked).lastIndexOf(true);
    if (lastAcked >= 0) allowed.set(topic, new Set(onTopic.slice(lastAcked).map((message) => message.id)));
  }
  // Retained messages go out with the SUBACK, from memory: no need for the whole step deadline.
  const deadline = Date.now() + SETTLE_MS * 2;
  while (Date.now() < deadline && [...allowed.keys()].some((topic) => !latest.has(topic))) await delay(2);
  await closeClient(clients, client, false);
  for (const [topic, ids] of allowed) {
    const got = latest.get(topic);
    if (got === undefined) return `the acknowledged retained message on ${topic} is gone after the power cut (expected one of ${[...ids].join(', ')})`;
    if (!ids.has(got)) return `retained message on ${topic} after the power cut is ${got}, older than the last acknowledged one (expected one of ${[...ids].join(', ')})`;
  }
  return null;
}

/** One acknowledged non-retained publish per session, on a topic its filter matches. */
async function publishProbes(clients: Set<MqttClient>, port: number, plans: readonly SessionPlan[]): Promise<Map<string, string>> {
  const { client } = await connect(clients, port, 'probe', 5, true);
  const probes = new Map<string, string>();
  await Promise.all(
    plans.map((plan) => {
      const id = `probe-${plan.clientId}`;
      probes.set(plan.clientId, id);
      const topic = plan.filter.replace('#', 'probe').replace(/\+/g, 'probe');
      return withDeadline(client.publishAsync(topic, id, { qos: 1 }), STEP_MS, `probe ${id}`);
    }),
  );
  return probes;
}

async function startNode(disk: SimulatedDisk, variant: Variant | undefined): Promise<Node> {
  const journal = await Journal.open(DIRECTORY, { fileSystem: disk.mount(), logger, retentionCheckMs: 0, ...(variant === 'skip-data-sync' ? { unsafe: { skipDataSync: true } } : {}) });
  const broker = await Broker.open({
    store: LocalShardStore.over(journal),
    writeGate: new WriteGate(),
    logger,
    dataShards: 2,
    maxQueuedBytes: 1024 * 1024,
    ...(variant === 'ack-before-durable' ? { unsafe: { ackBeforeDurable: true } } : {}),
  });
  const server = await MqttServer.start({ broker, limits: LIMITS, host: '127.0.0.1', port: 0, logger });
  return { journal, broker, server };
}

/**
 * Abrupt: client sockets are destroyed first (nothing more reaches the old broker), then the
 * listener and broker are stopped so none of their sockets or timers outlive the seed. Their
 * writes fail on the dead mount and are swallowed; the journal is abandoned, not closed, as a
 * process that lost power would leave it.
 */
async function teardown(clients: Set<MqttClient>, node: Node): Promise<void> {
  for (const client of [...clients]) await closeClient(clients, client, true);
  await withDeadline(node.server.stop(), STEP_MS, 'stopping the MQTT listener').catch(() => undefined);
  await withDeadline(node.broker.close(), STEP_MS, 'closing the broker').catch(() => undefined);
}

async function connect(
  clients: Set<MqttClient>,
  port: number,
  clientId: string,
  version: 4 | 5,
  clean: boolean,
  onMessage?: (packet: IPublishPacket) => void,
): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const options: IClientOptions = {
    clientId,
    protocolVersion: version,
    clean,
    reconnectPeriod: 0,
    connectTimeout: STEP_MS,
    keepalive: 0,
    ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: 600 } } : {}),
  };
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, options);
  clients.add(client);
  if (onMessage !== undefined) client.on('message', (_topic, _payload, packet) => onMessage(packet));
  client.on('error', () => undefined);
  const connack = await withDeadline(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('close', () => reject(new Error(`${clientId}: connection closed before CONNACK`)));
    }),
    STEP_MS,
    `connect ${clientId}`,
  );
  return { client, connack };
}

async function closeClient(clients: Set<MqttClient>, client: MqttClient, force: boolean): Promise<void> {
  clients.delete(client);
  await withDeadline(
    new Promise<void>((resolve) => {
      client.end(force, {}, () => resolve());
    }),
    STEP_MS,
    'closing a client',
  ).catch(() => undefined);
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function describeSent(message: Sent | undefined): string {
  if (message === undefined) return '?';
  return `${message.id} (topic ${message.topic}, QoS ${message.qos}${message.retain ? ', retained' : ''}, publisher p-${message.publisher} #${message.index})`;
}
