// Cross-checks of the transport settings (TLS and WebSocket listeners) at resolution time, so a
// listener that cannot work is a usage error (exit 2) rather than a failure once the node runs.
import { UsageError } from '../command.js';
import type { SettingKey, StartSettings } from './settings.js';

export const TLS_CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
export type TlsClientAuth = (typeof TLS_CLIENT_AUTH_MODES)[number];

export function checkTransports(settings: StartSettings, suppliedBy: (key: SettingKey) => string): void {
  const tlsListeners = (['mqtts-port', 'wss-port'] as const).filter((key) => (key === 'mqtts-port' ? settings.mqttsPort : settings.wssPort) !== undefined);
  if (tlsListeners.length > 0) {
    const listeners = tlsListeners.map((key) => `${key} (from ${suppliedBy(key)})`).join(' and ');
    const missing = [settings.tlsCert === undefined ? 'tls-cert' : undefined, settings.tlsKey === undefined ? 'tls-key' : undefined].filter((key) => key !== undefined);
    if (missing.length > 0) throw new UsageError(`${listeners} serve${tlsListeners.length > 1 ? '' : 's'} TLS and need${tlsListeners.length > 1 ? '' : 's'} ${missing.join(' and ')} (PEM files of the server certificate and its key)`);
  } else {
    const set: Array<[string, boolean]> = [
      ['tls-cert', settings.tlsCert !== undefined],
      ['tls-key', settings.tlsKey !== undefined],
      ['tls-ca', settings.tlsCa !== undefined],
      ['tls-client-auth', settings.tlsClientAuth !== 'none'],
    ];
    const unused = set.filter(([, isSet]) => isSet).map(([key]) => key);
    if (unused.length > 0) settings.warnings.push(`${unused.join(', ')} set but no TLS listener is (mqtts-port, wss-port): unused`);
  }
  if (settings.tlsClientAuth !== 'none' && settings.tlsCa === undefined) {
    throw new UsageError(`tls-client-auth ${settings.tlsClientAuth} (from ${suppliedBy('tls-client-auth')}) needs tls-ca, the CA certificate(s) that client certificates must chain to`);
  }
  // A path a request line can carry and the endpoint can compare to exactly: no query, no fragment, no spaces.
  if (!/^\/[^\s?#]*$/.test(settings.wsPath)) {
    throw new UsageError(`ws-path (from ${suppliedBy('ws-path')}) must be a URL path starting with / without spaces, ? or #, got ${JSON.stringify(settings.wsPath)}`);
  }
}
