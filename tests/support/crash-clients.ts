// mqtt.js clients for tests that kill the broker under them (tests/mqtt-crash-recovery.test.ts,
// property-tests/broker-kill.test.ts): a connection handle that tells when the socket closed,
// an incoming store that outlives connections the way a real client's disk would, and the
// broker's acceptances of QoS 1/2 PUBLISH read on the wire.
import mqtt, { Store, type IClientOptions, type MqttClient } from 'mqtt';
import type { IConnackPacket, IPublishPacket, Packet } from 'mqtt-packet';

export type Version = 4 | 5;

export const SESSION_EXPIRY_S = 3_600;

/**
 * mqtt.js emits a QoS 2 message on PUBREL, from the PUBLISH it stored at PUBREC time, and closes
 * (empties) its stores when a client ends. This store survives that, so a PUBREL the broker
 * resends after a restart, to the next connection of the same session, still finds its message.
 */
export class KeptStore extends Store {
  override close(cb: () => void): void {
    cb();
  }
}

export interface Connection {
  client: MqttClient;
  connack: IConnackPacket;
  /** Settles when the connection closes (mqtt.js 'close'). */
  closed: Promise<void>;
}

/** No automatic reconnect (a test sees every close) and no automatic resubscribe (session present must carry the subscriptions). */
export function crashClientOptions(version: Version, clientId: string, clean: boolean): IClientOptions {
  return {
    protocolVersion: version,
    clientId,
    clean,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    resubscribe: false,
    ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {}),
  };
}

export interface ConnectOptions {
  /** Called for each message mqtt.js emits (QoS 2: on PUBREL). */
  onPublish?: (packet: IPublishPacket) => void;
  /** Called before the connection opens, to attach wire-level listeners ('packetreceive', 'packetsend'). */
  setup?: (client: MqttClient) => void;
  incomingStore?: Store;
}

/**
 * Connects and resolves on CONNACK. The listeners go on before the connection opens, since a
 * resumed session's queue can arrive in the same read as the CONNACK.
 */
export async function connectForCrash(url: string, version: Version, clientId: string, clean: boolean, options: ConnectOptions = {}): Promise<Connection> {
  const client = mqtt.connect(url, { ...crashClientOptions(version, clientId, clean), ...(options.incomingStore === undefined ? {} : { incomingStore: options.incomingStore }) });
  client.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  const { onPublish } = options;
  if (onPublish !== undefined) client.on('message', (_topic, _payload, packet) => onPublish(packet));
  options.setup?.(client);
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      void closed.then(() => reject(new Error(`${clientId}: connection closed before CONNACK`)));
    });
    return { client, connack, closed };
  } catch (error) {
    client.end(true);
    throw error;
  }
}

export interface AckWatch {
  /** A QoS 1/2 PUBLISH went out on the wire. */
  sent?: (packet: IPublishPacket) => void;
  /** The broker accepted it: PUBACK (QoS 1) or PUBREC (QoS 2) with a reason code below 0x80 (0x10 "no matching subscribers" is an acceptance). */
  accepted: (packet: IPublishPacket) => void;
  /** The broker refused it (reason code >= 0x80). */
  refused?: (packet: IPublishPacket, reasonCode: number) => void;
}

/**
 * Watches a publisher's QoS 1/2 PUBLISH and the broker's answers on the wire (mqtt.js hides
 * PUBREC and 0x10), matched by packet id; an answer of the wrong kind (PUBACK to QoS 2) is
 * ignored.
 */
export function watchPublishAcks(client: MqttClient, watch: AckWatch): void {
  const inFlight = new Map<number, IPublishPacket>();
  client.on('packetsend', (packet: Packet) => {
    if (packet.cmd !== 'publish' || packet.qos === 0 || packet.messageId === undefined) return;
    inFlight.set(packet.messageId, packet);
    watch.sent?.(packet);
  });
  client.on('packetreceive', (packet: Packet) => {
    if ((packet.cmd !== 'puback' && packet.cmd !== 'pubrec') || packet.messageId === undefined) return;
    const publish = inFlight.get(packet.messageId);
    if (publish === undefined || (packet.cmd === 'puback') !== (publish.qos === 1)) return;
    inFlight.delete(packet.messageId);
    const reasonCode = (packet as { reasonCode?: number }).reasonCode ?? 0;
    if (reasonCode < 0x80) watch.accepted(publish);
    else watch.refused?.(publish, reasonCode);
  });
}
