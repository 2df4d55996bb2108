// Cross-checks of the transport settings (TLS and WebSocket listeners), made by `shardline start`
// before anything starts, so a listener that cannot work is a usage error (exit 2) rather than a
// failure once the node runs. Not part of resolveStartSettings: each setting alone stays valid
// there (a TLS port without its certificate is a combination, and only start needs both).
import { effectiveRoles } from '../../node/index.js';
import { UsageError } from '../command.js';
import { envName, type SettingKey, type StartSettings } from './settings.js';

function suppliedBy(settings: StartSettings, key: SettingKey): string {
  switch (settings.sources[key]) {
    case 'flag':
      return `--${key}`;
    case 'env':
      return envName(key);
    case 'file':
      return `config file ${settings.config ?? ''}`;
    default:
      return 'the default';
  }
}

/** Throws UsageError for a transport listener that cannot work; adds warnings for unused TLS settings. */
export function checkTransports(settings: StartSettings): void {
  const tlsPorts = { 'mqtts-port': settings.mqttsPort, 'wss-port': settings.wssPort, 'amqps-port': settings.amqpsPort, 'kafkas-port': settings.kafkasPort } as const;
  const tlsListeners = (Object.keys(tlsPorts) as Array<keyof typeof tlsPorts>).filter((key) => tlsPorts[key] !== undefined);
  if (tlsListeners.length > 0) {
    const listeners = tlsListeners.map((key) => `${key} (from ${suppliedBy(settings, key)})`).join(' and ');
    const missing = [settings.tlsCert === undefined ? 'tls-cert' : undefined, settings.tlsKey === undefined ? 'tls-key' : undefined].filter((key) => key !== undefined);
    if (missing.length > 0) throw new UsageError(`${listeners} serve${tlsListeners.length > 1 ? '' : 's'} TLS and need${tlsListeners.length > 1 ? '' : 's'} ${missing.join(' and ')} (PEM files of the server certificate and its key)`);
  } else if (!settings.journalTls) {
    const set: Array<[string, boolean]> = [
      ['tls-cert', settings.tlsCert !== undefined],
      ['tls-key', settings.tlsKey !== undefined],
      ['tls-ca', settings.tlsCa !== undefined],
      ['tls-client-auth', settings.tlsClientAuth !== 'none'],
    ];
    const unused = set.filter(([, isSet]) => isSet).map(([key]) => key);
    if (unused.length > 0) settings.warnings.push(`${unused.join(', ')} set but no TLS listener is (mqtts-port, wss-port, amqps-port, kafkas-port, journal-tls): unused`);
  }
  const journalFiles: Array<[string, boolean]> = [
    ['journal-tls-cert or tls-cert', (settings.journalTlsCert ?? settings.tlsCert) !== undefined],
    ['journal-tls-key or tls-key', (settings.journalTlsKey ?? settings.tlsKey) !== undefined],
    ['journal-tls-ca or tls-ca', (settings.journalTlsCa ?? settings.tlsCa) !== undefined],
  ];
  if (settings.journalTls) {
    const missing = journalFiles.filter(([, isSet]) => !isSet).map(([key]) => key);
    if (missing.length > 0) throw new UsageError(`journal-tls (from ${suppliedBy(settings, 'journal-tls')}) needs ${missing.join(', ')}: the node's certificate and key (presented to journal clients and, as a client, to journal servers) and the CA both ends check the other against`);
    const roles = effectiveRoles(settings);
    if (!roles.includes('journal') && settings.journal === undefined) settings.warnings.push(`journal-tls (from ${suppliedBy(settings, 'journal-tls')}) set but this node neither serves a journal nor uses a remote one: unused`);
  } else {
    const unused = (['journal-tls-cert', 'journal-tls-key', 'journal-tls-ca'] as const).filter((key) => settings.sources[key] !== 'default');
    if (unused.length > 0) settings.warnings.push(`${unused.join(', ')} set but journal-tls is not: unused`);
  }
  if (settings.tlsClientAuth !== 'none' && settings.tlsCa === undefined) {
    throw new UsageError(`tls-client-auth ${settings.tlsClientAuth} (from ${suppliedBy(settings, 'tls-client-auth')}) needs tls-ca, the CA certificate(s) that client certificates must chain to`);
  }
  // A path a request line can carry and the endpoint can compare to exactly: no query, no fragment, no spaces.
  if (!/^\/[^\s?#]*$/.test(settings.wsPath)) {
    throw new UsageError(`ws-path (from ${suppliedBy(settings, 'ws-path')}) must be a URL path starting with / without spaces, ? or #, got ${JSON.stringify(settings.wsPath)}`);
  }
}
