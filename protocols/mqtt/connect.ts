// What a CONNECT asks for and what the CONNACK answers, as pure functions over the packet and the
// limits: the client id (assigned when empty), the will, the session expiry and keep-alive the
// server grants, the client's Receive Maximum and packet limits, and the CONNACK's properties.
// connection.ts runs the CONNECT itself (admission, authentication, the engine's connect).
import { randomBytes } from 'node:crypto';
import type { IConnectPacket, Packet } from 'mqtt-packet';
import { checkTopicName, type QoS, type WillMessage } from '../../engine/index.js';
import type { MqttLimits } from './limits.js';
import { isCleanString, messageProperties } from './packet-checks.js';
import type { UserProperty } from './packet-validation.js';
import { ReasonCode } from './reason-codes.js';

export type ConnectReading = { ok: true; clientId: string; assigned: string | undefined; clean: boolean; will: WillMessage | undefined } | { ok: false; code: ReasonCode; detail: string };

/** The client id and the will of a CONNECT, or why it is refused. */
export function readConnect(packet: IConnectPacket, version: number, topicLimits: { levelsMax: number; bytesMax: number }, userProperties: UserProperty[] | undefined): ConnectReading {
  const v5 = version === 5;
  let clientId = packet.clientId ?? '';
  let assigned: string | undefined;
  if (!isCleanString(clientId)) return { ok: false, code: ReasonCode.MalformedPacket, detail: 'client identifier is not valid UTF-8 or contains U+0000' };
  if (version === 3 && (clientId.length === 0 || clientId.length > 23)) {
    return { ok: false, code: ReasonCode.ClientIdentifierNotValid, detail: 'MQTT 3.1 client identifiers are 1 to 23 characters' };
  }
  const clean = packet.clean !== false;
  if (clientId.length === 0) {
    // MQTT-3.1.3-7/8: an empty id needs a clean session in 3.1.1; 5.0 assigns one always.
    if (!v5 && !clean) return { ok: false, code: ReasonCode.ClientIdentifierNotValid, detail: 'an empty client identifier needs clean session = 1' };
    clientId = `auto-${randomBytes(9).toString('base64url')}`;
    assigned = v5 ? clientId : undefined;
  }
  let will: WillMessage | undefined;
  if (packet.will !== undefined && packet.will !== null) {
    const topic = packet.will.topic;
    const check = isCleanString(topic) ? checkTopicName(topic, topicLimits) : undefined;
    if (check === undefined || !check.ok) return { ok: false, code: ReasonCode.TopicNameInvalid, detail: `will topic ${JSON.stringify(topic)} is not a valid topic name` };
    const willProperties = packet.will.properties ?? {};
    will = {
      topic,
      payload: Buffer.isBuffer(packet.will.payload) ? packet.will.payload : Buffer.from(packet.will.payload ?? ''),
      qos: (packet.will.qos ?? 0) as QoS,
      retain: packet.will.retain === true,
      properties: messageProperties(willProperties, userProperties),
      delaySeconds: willProperties.willDelayInterval ?? 0,
    };
  }
  return { ok: true, clientId, assigned, clean, will };
}

/** What the server grants a connection, from its CONNECT and the limits. */
export interface SessionTerms {
  /** Session expiry interval, seconds. */
  expiry: number;
  /** The client asked for more than max-session-expiry (5.0: the CONNACK says what it got). */
  expiryCapped: boolean;
  /** Seconds; 0: none. */
  keepAlive: number;
  /** 5.0 Server Keep Alive, when the server overrides the client's keep-alive. */
  serverKeepAlive: number | undefined;
  /** QoS 1/2 deliveries in flight to the client at once (5.0 Receive Maximum, bounded by max-inflight). */
  inFlightMaximum: number;
  /** The client's Maximum Packet Size and Topic Alias Maximum (5.0; unbounded and none before). */
  maximumPacketSize: number;
  topicAliasMaximum: number;
}

export function sessionTerms(packet: IConnectPacket, version: number, clean: boolean, limits: MqttLimits): SessionTerms {
  const v5 = version === 5;
  const properties = packet.properties ?? {};
  // Session expiry: 5.0 says it; 3.1.1 persistent sessions last the broker's maximum.
  let expiry = v5 ? (properties.sessionExpiryInterval ?? 0) : clean ? 0 : limits.maxSessionExpiry;
  const expiryCapped = v5 && expiry > limits.maxSessionExpiry;
  if (expiryCapped) expiry = limits.maxSessionExpiry;
  // Keep-alive: the server may shorten it (5.0 Server Keep Alive).
  let keepAlive = packet.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (v5 && limits.serverKeepAlive > 0) serverKeepAlive = limits.serverKeepAlive;
  else if (v5 && keepAlive > limits.maxKeepAlive) serverKeepAlive = limits.maxKeepAlive;
  if (serverKeepAlive !== undefined) keepAlive = serverKeepAlive;
  if (!v5) return { expiry, expiryCapped, keepAlive, serverKeepAlive, inFlightMaximum: limits.maxInflight, maximumPacketSize: Number.POSITIVE_INFINITY, topicAliasMaximum: 0 };
  return {
    expiry,
    expiryCapped,
    keepAlive,
    serverKeepAlive,
    inFlightMaximum: Math.min(properties.receiveMaximum ?? 65_535, limits.maxInflight),
    maximumPacketSize: properties.maximumPacketSize ?? Number.POSITIVE_INFINITY,
    topicAliasMaximum: properties.topicAliasMaximum ?? 0,
  };
}

/** The CONNACK accepting a connection. */
export function connackFor(
  version: number,
  sessionPresent: boolean,
  limits: MqttLimits,
  accepted: { assigned: string | undefined; terms: SessionTerms; authenticationMethod: string | undefined; authenticationData: Buffer | undefined; responseInformation: string | undefined },
): Packet {
  // MQTT 3.1 has no session present flag: its acknowledge flags byte is reserved (0).
  const connack: Packet = { cmd: 'connack', sessionPresent: version !== 3 && sessionPresent, returnCode: 0, reasonCode: 0 };
  if (version !== 5) return connack;
  const { assigned, terms, authenticationMethod, authenticationData, responseInformation } = accepted;
  connack.properties = {
    receiveMaximum: limits.maxInflight,
    maximumPacketSize: limits.maxPacketSize,
    topicAliasMaximum: limits.topicAliasMaximum,
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: true,
    ...(assigned === undefined ? {} : { assignedClientIdentifier: assigned }),
    ...(terms.serverKeepAlive === undefined ? {} : { serverKeepAlive: terms.serverKeepAlive }),
    ...(terms.expiryCapped ? { sessionExpiryInterval: terms.expiry } : {}),
    ...(authenticationMethod === undefined ? {} : { authenticationMethod }),
    ...(authenticationData === undefined ? {} : { authenticationData }),
    ...(responseInformation === undefined ? {} : { responseInformation }),
  };
  return connack;
}
