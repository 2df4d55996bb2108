// Settings changed while a node runs: PATCH /api/config and `shardline ctl config set` against a
// real `shardline start` process.
//
// Goal: a live setting takes effect for what happens next without a restart (max-connections
// refuses the next CONNECT with 0x97; log-level makes debug lines appear), GET /api/config shows
// the new value, and bad changes are refused with JSON errors and change nothing: a setting that
// needs a restart (409 SL_ADMIN_NOT_LIVE), a value outside its range and a server-keep-alive
// above max-keep-alive (400 SL_ADMIN_BAD_REQUEST), all-or-nothing when one of several is bad.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cleanup, runCli, startBroker, stopBroker, usingMosquitto, waitForLogField, type BrokerProcess } from './support/broker-process.js';
import { connackCode, connectPacket, hex, rawConnect, RawMqttClient } from './support/raw-mqtt.js';

const TOKEN = 'live-config-test-token';

after(cleanup);

describe('live settings (PATCH /api/config, ctl config set)', { skip: usingMosquitto() ? 'Shardline-only (admin API)' : false }, () => {
  let broker: BrokerProcess;
  let base = '';

  before(async () => {
    broker = await startBroker({ args: ['--admin-token', TOKEN] });
    base = `http://${String((await waitForLogField(broker.broker, 'admin')).admin)}`;
  });
  after(async () => {
    if (broker !== undefined) await stopBroker(broker);
  });

  async function call(method: string, body?: unknown): Promise<{ status: number; body: { settings?: Record<string, unknown>; error?: { code: string; message: string } } }> {
    const response = await fetch(`${base}/api/config`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, body: (await response.json()) as never };
  }

  async function settings(): Promise<Record<string, unknown>> {
    return (await call('GET')).body.settings ?? {};
  }

  it('max-connections lowered while running refuses the next CONNECT with 0x97; raised again admits it', async () => {
    const first = await rawConnect(broker.port, 5, { clientId: 'live-1' });
    const lowered = await call('PATCH', { 'max-connections': 1 });
    assert.equal(lowered.status, 200, JSON.stringify(lowered.body));
    assert.equal(lowered.body.settings?.['max-connections'], 1);
    const refused = await RawMqttClient.open(broker.port, { protocolVersion: 5 });
    refused.sendPacket(connectPacket(5, { clientId: 'live-2' }));
    await refused.waitClosed(5_000);
    const connack = refused.packets.find((packet) => packet.cmd === 'connack');
    assert.ok(connack !== undefined, 'the second client got a CONNACK');
    assert.equal(hex(connackCode(connack as never)), hex(0x97), 'quota exceeded under the lowered limit');
    assert.equal(first.client.closed, false, 'the connected client is not touched');

    assert.equal((await call('PATCH', { 'max-connections': '100' })).status, 200, 'a string value is parsed like a config-file value');
    const admitted = await rawConnect(broker.port, 5, { clientId: 'live-3' });
    assert.equal(connackCode(admitted.connack), 0);
    admitted.client.destroy();
    first.client.destroy();
    assert.equal((await settings())['max-connections'], 100);
  });

  it('log-level debug takes effect at once: a client connecting is then logged at debug', async () => {
    assert.equal((await call('PATCH', { 'log-level': 'debug' })).status, 200);
    const connected = rawConnect(broker.port, 4, { clientId: 'live-debug' });
    const line = await waitForLogField(broker.broker, 'sessionPresent', 10_000);
    assert.equal(line.clientId, 'live-debug');
    assert.equal(line.level, 20, 'logged at debug');
    (await connected).client.destroy();
    assert.equal((await call('PATCH', { 'log-level': 'info' })).status, 200);
  });

  it('refuses settings that need a restart (409), bad values (400), and applies nothing of a refused change', async () => {
    const before = await settings();
    const notLive = await call('PATCH', { 'mqtt-port': 1999 });
    assert.equal(notLive.status, 409);
    assert.equal(notLive.body.error?.code, 'SL_ADMIN_NOT_LIVE');
    assert.match(notLive.body.error?.message ?? '', /mqtt-port/);

    const outOfRange = await call('PATCH', { 'max-connections': 0 });
    assert.equal(outOfRange.status, 400);
    assert.equal(outOfRange.body.error?.code, 'SL_ADMIN_BAD_REQUEST');
    assert.match(outOfRange.body.error?.message ?? '', /max-connections/);

    const keepAlive = await call('PATCH', { 'server-keep-alive': 70_000 });
    assert.equal(keepAlive.status, 400);
    const aboveMax = await call('PATCH', { 'max-keep-alive': 30, 'server-keep-alive': 60 });
    assert.equal(aboveMax.status, 400);
    assert.match(aboveMax.body.error?.message ?? '', /server-keep-alive 60 is more than max-keep-alive 30/);

    const mixed = await call('PATCH', { 'max-queued-bytes': 1024, 'data-shards': 4 });
    assert.equal(mixed.status, 409, 'one setting needs a restart: nothing applies');
    assert.deepEqual(await settings(), before, 'no refused change left a trace');
  });

  it('ctl config set changes a live setting and says so; a setting that needs a restart exits 1', async () => {
    const env = { SHARDLINE_ADMIN_URL: base, SHARDLINE_ADMIN_TOKEN: TOKEN };
    const done = runCli(['ctl', 'config', 'set', 'max-queued-bytes', '2097152'], env);
    const doneExit = await done.exited;
    assert.equal(doneExit.code, 0, doneExit.stderr);
    assert.equal(done.lines.join('\n').trim(), 'max-queued-bytes = 2097152');
    assert.equal((await settings())['max-queued-bytes'], 2_097_152);

    const refused = await runCli(['ctl', 'config', 'set', 'data-shards', '4'], env).exited;
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot be changed while the node runs.*\[SL_ADMIN_NOT_LIVE\]/);
  });
});
