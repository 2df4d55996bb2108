// The transport cross-checks `shardline start` makes before it starts anything: which
// combinations of TLS and WebSocket settings are usage errors, and which only warn.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../command.js';
import { resolveStartSettings } from './settings.js';
import { checkTransports } from './transport-settings.js';

async function check(flags: Record<string, string>, env: Record<string, string> = {}): Promise<string[]> {
  const settings = await resolveStartSettings(flags, env);
  checkTransports(settings);
  return settings.warnings;
}

async function refused(flags: Record<string, string>, text: string, env: Record<string, string> = {}): Promise<void> {
  await assert.rejects(check(flags, env), (error: unknown) => error instanceof UsageError && error.message.includes(text), `${JSON.stringify(flags)} → ${text}`);
}

describe('transport settings', () => {
  test('defaults: every transport listener off, path /mqtt, no client certificates', async () => {
    const settings = await resolveStartSettings({}, {});
    assert.equal(settings.mqttsPort, undefined);
    assert.equal(settings.wsPort, undefined);
    assert.equal(settings.wssPort, undefined);
    assert.equal(settings.wsPath, '/mqtt');
    assert.equal(settings.tlsClientAuth, 'none');
    assert.deepEqual(await check({}), []);
  });

  test('a TLS listener needs tls-cert and tls-key; the error names where the port came from', async () => {
    await refused({ 'mqtts-port': '8883' }, 'mqtts-port (from --mqtts-port) serves TLS and needs tls-cert and tls-key');
    await refused({ 'tls-cert': 'c.pem' }, 'wss-port (from SHARDLINE_WSS_PORT) serves TLS and needs tls-key', { SHARDLINE_WSS_PORT: '8884' });
    await refused({ 'mqtts-port': '0', 'wss-port': '0', 'tls-key': 'k.pem' }, 'mqtts-port (from --mqtts-port) and wss-port (from --wss-port) serve TLS and need tls-cert');
    await refused({ 'amqps-port': '5671', 'kafkas-port': '0' }, 'amqps-port (from --amqps-port) and kafkas-port (from --kafkas-port) serve TLS and need tls-cert and tls-key');
    assert.deepEqual(await check({ 'mqtts-port': '0', 'tls-cert': 'c.pem', 'tls-key': 'k.pem' }), []);
  });

  test('client authentication needs a CA', async () => {
    for (const mode of ['optional', 'required']) {
      await refused({ 'mqtts-port': '0', 'tls-cert': 'c.pem', 'tls-key': 'k.pem', 'tls-client-auth': mode }, `tls-client-auth ${mode} (from --tls-client-auth) needs tls-ca`);
    }
    assert.deepEqual(await check({ 'wss-port': '0', 'tls-cert': 'c.pem', 'tls-key': 'k.pem', 'tls-ca': 'ca.pem', 'tls-client-auth': 'required' }), []);
    await refused({ 'tls-client-auth': 'sometimes' }, 'must be one of none, optional, required');
  });

  test('TLS settings without a TLS listener only warn', async () => {
    const warnings = await check({ 'ws-port': '0', 'tls-cert': 'c.pem', 'tls-ca': 'ca.pem' });
    assert.deepEqual(warnings, ['tls-cert, tls-ca set but no TLS listener is (mqtts-port, wss-port, amqps-port, kafkas-port, journal-tls): unused']);
  });

  test('journal-tls needs the certificate, its key and the CA; unused on a node without a journal', async () => {
    await refused({ 'journal-tls': 'true' }, 'journal-tls (from --journal-tls) needs journal-tls-cert or tls-cert, journal-tls-key or tls-key, journal-tls-ca or tls-ca');
    await refused({ 'tls-cert': 'c.pem', 'tls-key': 'k.pem' }, 'journal-tls (from SHARDLINE_JOURNAL_TLS) needs journal-tls-ca or tls-ca', { SHARDLINE_JOURNAL_TLS: 'true' });
    assert.deepEqual(await check({ 'journal-tls': 'true', 'tls-cert': 'c.pem', 'tls-key': 'k.pem', 'tls-ca': 'ca.pem' }), []);
    assert.deepEqual(await check({ 'journal-tls': 'true', 'journal-tls-cert': 'j.pem', 'journal-tls-key': 'jk.pem', 'journal-tls-ca': 'jca.pem' }), []);
    assert.deepEqual(await check({ 'journal-tls-ca': 'jca.pem' }), ['journal-tls-ca set but journal-tls is not: unused']);
    assert.deepEqual(await check({ roles: 'broker', journal: '127.0.0.1:1771', 'journal-tls': 'true', 'tls-cert': 'c.pem', 'tls-key': 'k.pem', 'tls-ca': 'ca.pem' }), []);
    const placementOnly = await check({ roles: 'placement', 'node-id': '1', 'journal-tls': 'true', 'tls-cert': 'c.pem', 'tls-key': 'k.pem', 'tls-ca': 'ca.pem' }, { SHARDLINE_CLUSTER_TOKEN: 'a-token-long-enough-0123' });
    assert.deepEqual(placementOnly, ['journal-tls (from --journal-tls) set but this node neither serves a journal nor uses a remote one: unused']);
  });

  test('ws-path must be a plain URL path', async () => {
    for (const path of ['/mqtt', '/', '/a/b-c_d.e']) assert.deepEqual(await check({ 'ws-port': '0', 'ws-path': path }), [], path);
    for (const path of ['mqtt', '/mq tt', '/mqtt?x=1', '/mqtt#x']) await refused({ 'ws-port': '0', 'ws-path': path }, 'ws-path (from --ws-path) must be a URL path');
  });
});
