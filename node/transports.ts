// The broker's listeners besides plain MQTT over TCP: MQTTS (--mqtts-port), WebSocket
// (--ws-port) and WebSocket over TLS (--wss-port), and the certificate every TLS listener of the
// node shares. Each is off unless its port is set; all share
// the TCP listener's options (broker, limits, authentication, connection count).
import type { Logger } from 'pino';
import type { TlsListener } from '../protocols/listener/index.js';
import { loadMqttTls, MqttServer, MqttWebSocketServer, type MqttServerOptions } from '../protocols/mqtt/index.js';
import type { NodeSettings } from './settings.js';

export interface TransportListener {
  /** 'mqtts', 'ws' or 'wss': the listening line's name for it. */
  readonly name: 'mqtts' | 'ws' | 'wss';
  readonly address: string;
  readonly port: number;
  stopAccepting(): void;
  stop(): Promise<void>;
}

/**
 * Starts the configured transport listeners, appending each to `started` as soon as it listens
 * (so a failure part way leaves the earlier ones to the caller's shutdown).
 */
export async function startTransports(settings: NodeSettings, shared: MqttServerOptions, tls: TlsListener | undefined, started: TransportListener[]): Promise<void> {
  const { mqttsPort, wsPort, wssPort } = settings;
  const child = (name: string): Logger => shared.logger.child({ transport: name });
  if (mqttsPort !== undefined) {
    const server = await MqttServer.start({ ...shared, port: mqttsPort, tls, portSetting: '--mqtts-port', logger: child('mqtts') });
    started.push(listener('mqtts', server));
  }
  if (wsPort !== undefined) {
    const server = await MqttWebSocketServer.start({ ...shared, port: wsPort, tls: undefined, path: settings.wsPath, portSetting: '--ws-port', logger: child('ws') });
    started.push(listener('ws', server));
  }
  if (wssPort !== undefined) {
    const server = await MqttWebSocketServer.start({ ...shared, port: wssPort, tls, path: settings.wsPath, portSetting: '--wss-port', logger: child('wss') });
    started.push(listener('wss', server));
  }
}

/**
 * Reads the node's certificate once for every TLS listener (MQTTS, WSS, AMQPS, Kafka over TLS),
 * or undefined when none is set. A bad file stops the start with SL_MQTT_TLS_SETUP.
 */
export async function loadNodeTls(settings: NodeSettings, logger: Logger): Promise<TlsListener | undefined> {
  const ports = [settings.mqttsPort, settings.wssPort, settings.amqpsPort, settings.kafkasPort];
  if (ports.every((port) => port === undefined)) return undefined;
  // checkTransports made sure tls-cert and tls-key are set whenever a TLS port is.
  const tls = await loadMqttTls({ cert: settings.tlsCert as string, key: settings.tlsKey as string, ca: settings.tlsCa, clientAuth: settings.tlsClientAuth });
  if (tls.clientAuth !== 'none') logger.info({ tlsClientAuth: tls.clientAuth }, `TLS listeners ask for client certificates (${tls.clientAuth})`);
  return tls;
}

function listener(name: TransportListener['name'], server: MqttServer | MqttWebSocketServer): TransportListener {
  return {
    name,
    address: server.address,
    port: server.port,
    stopAccepting: () => server.stopAccepting(),
    stop: () => server.stop(),
  };
}
