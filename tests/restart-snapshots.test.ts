// A node restarted after a clean shutdown starts from the snapshots its projections wrote
// (engine/projection), and serves what it served before.
//
// Goal: after SIGTERM and a start on the same data directory, the `$sessions` and `$retained`
// projections come from their snapshots with nothing left to replay, and the sessions, their
// subscriptions, the retained messages, the run-time users and ACL rules the admin API lists
// are the ones it listed before the stop; a durable session gets what was published while it
// was offline, a delayed message is still delivered, a retained message still goes to a new
// subscriber.
// Method: a real node (`shardline start`) and mqtt.js clients; state made through MQTT and the
// admin API; the admin API's lists compared before and after; the node's "broker state rebuilt"
// log line says where the state came from.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup, requireShardline, startBroker, stopBroker, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { closeAllClients, connectClient, uniqueTopic } from './support/mqtt-client.js';

describe('restart from snapshots', () => {
  let broker: BrokerProcess;
  let api = '';
  let token = '';

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
  }

  async function start(dataDir?: string): Promise<void> {
    broker = await startBroker(dataDir === undefined ? {} : { dataDir });
    api = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
    token = (await readFile(join(broker.dataDir, 'admin-token'), 'utf8')).trim();
  }

  /** What the admin API lists of the state the projections hold. */
  async function listed(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const path of ['/api/mqtt/sessions', '/api/mqtt/subscriptions', '/api/mqtt/retained', '/api/users', '/api/acl']) {
      const { status, json } = await call('GET', path);
      assert.equal(status, 200, `${path}: ${JSON.stringify(json)}`);
      out[path] = json;
    }
    return out;
  }

  after(async () => {
    closeAllClients();
    if (broker !== undefined) await stopBroker(broker);
    await cleanup();
  });

  it('serves the same sessions, retained messages, users, ACL rules and delayed messages', async (t) => {
    if (!requireShardline(t)) return;
    await start();
    const topic = uniqueTopic('snap');
    const retainedTopic = uniqueTopic('snap-retained');
    const durable = await connectClient(broker.url, { clientId: 'snap-durable', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    await durable.client.subscribeAsync(topic, { qos: 1 });
    await durable.client.endAsync();
    const publisher = await connectClient(broker.url, { protocolVersion: 5 });
    await publisher.client.publishAsync(retainedTopic, 'kept', { qos: 1, retain: true });
    await publisher.client.publishAsync(topic, 'while-offline', { qos: 1 });
    // Due a few seconds on: after the restart, or while the node is down (then right after it).
    await publisher.client.publishAsync(`$delayed/3/${topic}`, 'delayed', { qos: 1 });
    await publisher.client.endAsync();
    assert.equal((await call('POST', '/api/users', { username: 'snap-user', password: 'snap-pass' })).status, 201);
    assert.equal((await call('POST', '/api/acl', { permission: 'allow', action: 'all', topic: `${topic}/#` })).status, 201);
    const before = await listed();

    const dataDir = broker.dataDir;
    await stopBroker(broker);
    await start(dataDir);
    const rebuilt = await waitForLogField(broker.broker, 'sessionsSnapshotOffset');
    assert.equal(typeof rebuilt.sessionsSnapshotOffset, 'number', 'the session table came from a snapshot');
    assert.equal(typeof rebuilt.retainedSnapshotOffset, 'number', 'the retained set came from a snapshot');
    assert.equal(rebuilt.sessionRecords, 0, 'nothing of $sessions was left to replay after the shutdown snapshot');
    assert.equal(rebuilt.retainedRecords, 0, 'nothing of $retained was left to replay after the shutdown snapshot');
    assert.deepEqual(await listed(), before);

    const resumed = await connectClient(broker.url, { clientId: 'snap-durable', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    assert.equal(resumed.connack.sessionPresent, true);
    const received = await resumed.waitForMessages(2, { topic, timeoutMs: 20_000 });
    assert.deepEqual(received.map((message) => message.payload.toString()).sort(), ['delayed', 'while-offline']);
    const late = await connectClient(broker.url, { protocolVersion: 5 });
    await late.client.subscribeAsync(retainedTopic, { qos: 1 });
    const [retained] = await late.waitForMessages(1, { topic: retainedTopic });
    assert.equal(retained?.payload.toString(), 'kept');
  });
});
