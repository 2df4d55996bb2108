// The journal port's protection as a node sets it up: the credentials out of the settings, and
// the warning a node without any gives when its port is reachable from other machines.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordingLogger } from '../tests/support/recording-logger.js';
import { journalCredentials, logJournalProtection } from './journal-access.js';

const NONE = { clusterToken: undefined, journalTls: false, journalTlsCert: undefined, journalTlsKey: undefined, journalTlsCa: undefined, tlsCert: undefined, tlsKey: undefined, tlsCa: undefined };

test('credentials: the token when set; TLS files only with journal-tls, journal-tls-* before tls-*', async () => {
  assert.deepEqual(await journalCredentials(NONE), {});
  assert.deepEqual(await journalCredentials({ ...NONE, clusterToken: 'a-token-long-enough-0123' }), { clusterToken: 'a-token-long-enough-0123' });
  const directory = await mkdtemp(join(tmpdir(), 'sl-journal-access-'));
  const file = async (name: string): Promise<string> => {
    const path = join(directory, name);
    await writeFile(path, name);
    return path;
  };
  const shared = { tlsCert: await file('mqtt.crt'), tlsKey: await file('mqtt.key'), tlsCa: await file('devices-ca.crt') };
  assert.deepEqual(await journalCredentials({ ...NONE, ...shared }), {}, 'tls-* alone do not turn journal TLS on');
  const tls = (await journalCredentials({ ...NONE, ...shared, journalTls: true, journalTlsCa: await file('cluster-ca.crt') })).tls;
  assert.deepEqual({ cert: tls?.cert.toString(), key: tls?.key.toString(), ca: tls?.ca.toString() }, { cert: 'mqtt.crt', key: 'mqtt.key', ca: 'cluster-ca.crt' });
  await assert.rejects(journalCredentials({ ...NONE, journalTls: true, tlsCert: join(directory, 'missing.crt'), tlsKey: shared.tlsKey, tlsCa: shared.tlsCa }), (error: unknown) => (error as { code?: string }).code === 'SL_JOURNAL_TLS_SETUP' && (error as Error).message.includes('missing.crt'));
});

test('an open journal port warns only when it listens beyond loopback', () => {
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost']) {
    const log = recordingLogger();
    logJournalProtection({ host }, {}, log.logger);
    assert.deepEqual(log.atLeast('warn'), [], host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'journal-0.example']) {
    const log = recordingLogger();
    logJournalProtection({ host }, {}, log.logger);
    assert.equal(log.atLeast('warn').length, 1, host);
    assert.match(String(log.atLeast('warn')[0]?.msg), /without authentication/);
  }
  for (const credentials of [{ clusterToken: 'a-token-long-enough-0123' }, { tls: { cert: Buffer.alloc(0), key: Buffer.alloc(0), ca: Buffer.alloc(0) } }]) {
    const log = recordingLogger();
    logJournalProtection({ host: '0.0.0.0' }, credentials, log.logger);
    assert.deepEqual(log.atLeast('warn'), []);
    assert.match(log.messages().join('\n'), /journal gRPC port requires/);
  }
});
