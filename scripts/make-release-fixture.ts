// Writes a release fixture: a data directory made by a real `shardline start` of this checkout,
// plus a manifest (OUTDIR/../release-fixture.json) of what it holds. tests/release-fixture.test.ts
// opens a copy with the current code and checks it against the manifest, so record format
// changes keep reading what a released node wrote (docs/journal-format.md, "Release fixtures").
//
//   node --import tsx scripts/make-release-fixture.ts tests/fixtures/release-X.Y.Z/data
//
// Run it once per release, on that release's commit; committed fixtures are never regenerated
// (a fixture made by newer code would prove nothing about old files).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { IPublishPacket, QoS } from 'mqtt-packet';
import { REPO_ROOT, runCli, waitForLogField, type CliProcess } from '../tests/support/broker-process.js';
import { closeAllClients, connectClient, RawClient, sleep, type TestClient } from '../tests/support/mqtt-client.js';

const ADMIN_TOKEN = 'release-fixture-admin-token';
const NEVER = 0xffff_ffff;
/** Message expiry of the retained message with 5.0 properties: about 126 years, never reached by a test. */
const FAR_EXPIRY_S = 4_000_000_000;
/** Will delay: long enough that the will is still pending when the generating node stops, short enough that it is due when a test opens the fixture. */
const WILL_DELAY_S = 60;

interface Subscription {
  filter: string;
  qos: QoS;
  subscriptionIdentifier?: number;
}

interface QueuedMessage {
  topic: string;
  payload: string;
  qos: QoS;
  subscriptionIdentifier?: number;
  dup?: boolean;
  messageId?: number;
}

interface SessionEntry {
  clientId: string;
  protocolVersion: 4 | 5;
  clean: false;
  sessionExpiryInterval?: number;
  subscriptions: Subscription[];
  /** What the session receives on resume, in order per topic. */
  queued: QueuedMessage[];
  will?: { topic: string; payload: string; qos: QoS; retain: boolean; willDelayInterval: number };
  note: string;
}

interface StoredPublish {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
  clientId: string;
}

const SESSION_V311 = 'fx-v311-sensors';
const SESSION_V5 = 'fx-v5-orders';
const SESSION_INFLIGHT = 'fx-v311-inflight';
const SESSION_WILL = 'fx-v5-will';
const PUBLISHER = 'fx-publisher';
const PUBLISHER_V5 = 'fx-publisher-v5';

const SUBSCRIPTIONS: Record<string, Subscription[]> = {
  [SESSION_V311]: [
    { filter: 'fx/sensors/+/temp', qos: 1 },
    { filter: 'fx/alerts/#', qos: 2 },
  ],
  [SESSION_V5]: [
    { filter: 'fx/orders/#', qos: 2 },
    { filter: 'fx/sensors/+/humidity', qos: 1, subscriptionIdentifier: 7 },
  ],
  [SESSION_INFLIGHT]: [{ filter: 'fx/inflight/#', qos: 1 }],
};

/** Published while the sessions are offline (data shards, and queued for the matching sessions). */
const OFFLINE: Array<{ topic: string; payload: string; qos: QoS }> = [
  { topic: 'fx/sensors/room1/temp', payload: 'temp room1 21.5', qos: 1 },
  { topic: 'fx/sensors/room2/temp', payload: 'temp room2 19.0', qos: 2 },
  { topic: 'fx/sensors/room1/humidity', payload: 'humidity room1 40', qos: 1 },
  { topic: 'fx/alerts/fire', payload: 'alert fire drill', qos: 2 },
  { topic: 'fx/alerts/fire/floor2', payload: 'alert smoke floor2', qos: 1 },
  { topic: 'fx/orders/1001', payload: 'order 1001 created', qos: 2 },
  { topic: 'fx/orders/1001', payload: 'order 1001 paid', qos: 2 },
  { topic: 'fx/orders/1002', payload: 'order 1002 created', qos: 1 },
  { topic: 'fx/sensors/room1/temp', payload: 'temp room1 21.7', qos: 1 },
  { topic: 'fx/inflight/a', payload: 'queued after the in-flight ones', qos: 1 },
];

/** Topics no session subscribes to: plain stored messages spread over the data shards. */
const DATA: Array<{ topic: string; payload: string; qos: QoS }> = [];
for (const line of ['line1', 'line2', 'line3', 'line4', 'line5']) {
  for (let n = 1; n <= 3; n += 1) DATA.push({ topic: `fx/data/${line}`, payload: `${line} reading ${n}`, qos: n === 2 ? 0 : 1 });
}

const RETAINED_V5_PROPERTIES = {
  contentType: 'application/json',
  payloadFormatIndicator: true,
  responseTopic: 'fx/replies/config',
  correlationData: 'corr-0001',
  userProperties: { origin: 'release-fixture', schema: 'v1' },
  messageExpiryInterval: FAR_EXPIRY_S,
};

/** MQTT topic filter match (the subset of rules the fixture's filters need: +, # and no $ topics). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function expectedQueue(clientId: string): QueuedMessage[] {
  const queued: QueuedMessage[] = [];
  for (const message of OFFLINE) {
    // One delivery per message even when several filters of the session match (the highest QoS).
    const hits = SUBSCRIPTIONS[clientId]!.filter((s) => matches(s.filter, message.topic));
    if (hits.length === 0) continue;
    const best = hits.reduce((a, b) => (b.qos > a.qos ? b : a));
    queued.push({ topic: message.topic, payload: message.payload, qos: Math.min(best.qos, message.qos) as QoS, ...(best.subscriptionIdentifier === undefined ? {} : { subscriptionIdentifier: best.subscriptionIdentifier }) });
  }
  return queued;
}

/** `promise`, or undefined once `ms` passed; the timer is cleared so it never holds the process open. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((done) => (timer = setTimeout(done, ms, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function admin(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

/** Waits (bounded) until the node has recorded the session as offline, so later publishes are queued, not sent. */
async function waitOffline(base: string, clientId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const page = (await admin(base, 'GET', `/api/mqtt/sessions?prefix=${encodeURIComponent(clientId)}`)) as { items: Array<{ clientId: string; online: boolean }> };
    const session = page.items.find((s) => s.clientId === clientId);
    assert.ok(session !== undefined, `session ${clientId} is durable`);
    if (!session.online) return;
    await sleep(50);
  }
  assert.fail(`session ${clientId} still online after 10 s`);
}

async function filesUnder(directory: string): Promise<Array<{ path: string; bytes: number }>> {
  const out: Array<{ path: string; bytes: number }> = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else out.push({ path, bytes: (await stat(path)).size });
  }
  return out;
}

async function main(): Promise<void> {
  const target = process.argv[2];
  if (target === undefined) {
    console.error('usage: node --import tsx scripts/make-release-fixture.ts OUTDIR');
    process.exit(2);
  }
  const dataDir = resolve(target);
  const existing = await readdir(dataDir).catch(() => []);
  if (existing.length > 0) {
    console.error(`${dataDir} is not empty: release fixtures are written once and never regenerated`);
    process.exit(2);
  }
  await mkdir(dataDir, { recursive: true });

  const startFlags = [
    '--data-shards', '4',
    // Small segments: the fixture then holds rolled (sealed) segments, not only active ones.
    '--data-segment-bytes', '1024',
    '--data-retention', '0',
    // 3.1.1 persistent sessions get max-session-expiry; "never" keeps them alive whenever a test runs.
    '--max-session-expiry', String(NEVER),
    '--sys-interval', '0',
    '--admin-token', ADMIN_TOKEN,
  ];
  const node: CliProcess = runCli(['start', '--data-dir', dataDir, '--host', '127.0.0.1', '--mqtt-port', '0', '--grpc-port', '0', '--admin-port', '0', ...startFlags]);
  try {
    const listening = await waitForLogField(node, 'mqtt');
    const url = `mqtt://${String(listening.mqtt)}`;
    const adminBase = `http://${String(listening.admin)}`;
    const port = Number(String(listening.mqtt).split(':').pop());

    await admin(adminBase, 'POST', '/api/users', { username: 'fx-user', password: 'fx-password' });
    await admin(adminBase, 'POST', '/api/acl', { id: 'fx-deny-locked', permission: 'deny', action: 'all', topic: 'fx/locked/#' });

    const v311 = await connectClient(url, { clientId: SESSION_V311, clean: false, version: 4 });
    for (const s of SUBSCRIPTIONS[SESSION_V311]!) await v311.subscribe(s.filter, { qos: s.qos });
    await v311.end();

    const v5 = await connectClient(url, { clientId: SESSION_V5, clean: false, version: 5, properties: { sessionExpiryInterval: NEVER } });
    for (const s of SUBSCRIPTIONS[SESSION_V5]!) await v5.subscribe(s.filter, { qos: s.qos, ...(s.subscriptionIdentifier === undefined ? {} : { properties: { subscriptionIdentifier: s.subscriptionIdentifier } }) });
    await v5.end();

    // A raw client, because mqtt.js acknowledges every delivery: this one leaves two unacknowledged.
    const inflightSub = SUBSCRIPTIONS[SESSION_INFLIGHT]![0]!;
    const { raw: inflight } = await RawClient.connect(port, 4, { clientId: SESSION_INFLIGHT, clean: false });
    await inflight.subscribe([{ topic: inflightSub.filter, qos: inflightSub.qos }]);
    const publisher: TestClient = await connectClient(url, { clientId: PUBLISHER, clean: true, version: 4 });
    const inflightMessages = ['unacked 1', 'unacked 2'];
    for (const payload of inflightMessages) await publisher.publish('fx/inflight/a', payload, { qos: 1 });
    const sent = (await inflight.waitForPublishes(2)) as IPublishPacket[];
    inflight.destroy();
    await waitOffline(adminBase, SESSION_INFLIGHT);

    // Will with a delay, connection dropped without DISCONNECT: the will stays pending in the
    // session's record until the delay passes, which it has by the time a test opens the copy.
    const will = { topic: 'fx/status/fx-v5-will', payload: 'fx-v5-will went offline', qos: 1 as QoS, retain: true, willDelayInterval: WILL_DELAY_S };
    const { raw: willClient } = await RawClient.connect(port, 5, {
      clientId: SESSION_WILL,
      clean: false,
      properties: { sessionExpiryInterval: NEVER },
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain, properties: { willDelayInterval: WILL_DELAY_S } },
    });
    willClient.destroy();
    await waitOffline(adminBase, SESSION_WILL);

    const stored: StoredPublish[] = inflightMessages.map((payload) => ({ topic: 'fx/inflight/a', payload, qos: 1, retain: false, clientId: PUBLISHER }));
    for (const m of OFFLINE) {
      await publisher.publish(m.topic, m.payload, { qos: m.qos });
      stored.push({ ...m, retain: false, clientId: PUBLISHER });
    }
    for (const m of DATA) {
      await publisher.publish(m.topic, m.payload, { qos: m.qos });
      stored.push({ ...m, retain: false, clientId: PUBLISHER });
    }

    const retainedPlain = [
      { topic: 'fx/retained/config', payload: 'config v=1', qos: 1 as QoS },
      { topic: 'fx/retained/firmware', payload: 'firmware 2.3.4', qos: 0 as QoS },
      { topic: 'fx/retained/cleared', payload: 'soon cleared', qos: 1 as QoS },
    ];
    for (const m of retainedPlain) {
      await publisher.publish(m.topic, m.payload, { qos: m.qos, retain: true });
      stored.push({ ...m, retain: true, clientId: PUBLISHER });
    }
    await publisher.publish('fx/retained/cleared', '', { qos: 1, retain: true });
    stored.push({ topic: 'fx/retained/cleared', payload: '', qos: 1, retain: true, clientId: PUBLISHER });

    const publisherV5 = await connectClient(url, { clientId: PUBLISHER_V5, clean: true, version: 5 });
    const v5Retained = { topic: 'fx/retained/v5props', payload: '{"mode":"auto","level":3}', qos: 1 as QoS };
    await publisherV5.publish(v5Retained.topic, v5Retained.payload, { qos: 1, retain: true, properties: { ...RETAINED_V5_PROPERTIES, correlationData: Buffer.from(RETAINED_V5_PROPERTIES.correlationData) } });
    stored.push({ ...v5Retained, retain: true, clientId: PUBLISHER_V5 });
    await publisher.end();
    await publisherV5.end();
    const writtenUntil = Date.now();

    node.child.kill('SIGTERM');
    const exit = await within(node.exited, 30_000);
    assert.ok(exit !== undefined, 'the node did not stop within 30 s of SIGTERM');
    assert.equal(exit.code, 0, `the node's exit: ${JSON.stringify(exit)}`);

    const inflightQueue: QueuedMessage[] = [
      ...sent.map((p) => ({ topic: p.topic, payload: p.payload.toString(), qos: p.qos, dup: true, messageId: p.messageId! })),
      ...expectedQueue(SESSION_INFLIGHT),
    ];
    const sessions: SessionEntry[] = [
      { clientId: SESSION_V311, protocolVersion: 4, clean: false, subscriptions: SUBSCRIPTIONS[SESSION_V311]!, queued: expectedQueue(SESSION_V311), note: '3.1.1 clean session 0, disconnected with DISCONNECT' },
      { clientId: SESSION_V5, protocolVersion: 5, clean: false, sessionExpiryInterval: NEVER, subscriptions: SUBSCRIPTIONS[SESSION_V5]!, queued: expectedQueue(SESSION_V5), note: '5.0 session expiry never, one subscription with a subscription identifier' },
      { clientId: SESSION_INFLIGHT, protocolVersion: 4, clean: false, subscriptions: SUBSCRIPTIONS[SESSION_INFLIGHT]!, queued: inflightQueue, note: '3.1.1 clean session 0, left two QoS 1 deliveries unacknowledged (resent with DUP and the same packet ids), then one more was queued' },
      { clientId: SESSION_WILL, protocolVersion: 5, clean: false, sessionExpiryInterval: NEVER, subscriptions: [], queued: [], will, note: '5.0, connection dropped with a will pending (will delay); the will is due when the fixture is opened' },
    ];

    const files = await filesUnder(dataDir);
    const unexpected = files.filter((f) => /\.(lock|pid)$|admin-token/.test(f.path));
    assert.deepEqual(unexpected, [], 'no lock, pid or token file in a fixture');
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
    const manifest = {
      description: 'Data directory written by a real single node of this release; see docs/journal-format.md (Release fixtures). Never regenerate.',
      producedBy: { packageVersion: pkg.version, commit, dirtyWorktree: dirty, node: process.version, writtenAt: new Date(writtenUntil).toISOString() },
      dataDir: relative(dirname(dataDir), dataDir),
      startFlags,
      writtenUntil,
      adminToken: ADMIN_TOKEN,
      dataShards: 4,
      shards: (await readdir(join(dataDir, 'shards'))).sort(),
      users: [{ username: 'fx-user', password: 'fx-password', source: 'runtime' }],
      acl: [{ id: 'fx-deny-locked', permission: 'deny', action: 'all', topic: 'fx/locked/#' }],
      sessions,
      retained: {
        present: [
          ...retainedPlain.filter((m) => m.topic !== 'fx/retained/cleared'),
          { ...v5Retained, properties: RETAINED_V5_PROPERTIES },
        ],
        cleared: ['fx/retained/cleared'],
        /** Set when the pending will is published, at the first start after WILL_DELAY_S. */
        fromWill: { topic: will.topic, payload: will.payload, qos: will.qos },
      },
      /** Every message stored in the data shards, in publish order (one publisher connection at a time). */
      stored,
      bytes: files.reduce((sum, f) => sum + f.bytes, 0),
      files: files.map((f) => ({ path: relative(dataDir, f.path), bytes: f.bytes })).sort((a, b) => a.path.localeCompare(b.path)),
    };
    await writeFile(join(dirname(dataDir), 'release-fixture.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    console.log(`wrote ${files.length} files, ${manifest.bytes} bytes, to ${dataDir}`);
  } finally {
    closeAllClients();
    if (node.child.exitCode === null && node.child.signalCode === null) {
      node.child.kill('SIGKILL');
      await node.exited;
    }
  }
}

await main();
