// The MQTT front end's limits, each named once with its unit, default, bounds and what a client
// over it gets (base/limits.ts). The settings of `shardline start` (flags, environment, config
// file, --help, the reference table in docs/operations.md) are made from this table, and so is
// `MqttLimits`, the object every connection of every listener reads; PATCH /api/config changes
// that object in place.
import { defineLimits, limitDefaults, TIMER_DELAY_MS_MAX, type LimitValues } from '../../base/index.js';
import type { AbuseLimits, AdmissionLimits } from '../listener/index.js';

// MQTT's largest packet: 1 fixed-header byte, 4 remaining-length bytes, 268435455 bytes of body.
const MQTT_MAX_PACKET = 268_435_460;

export const MQTT_LIMITS = defineLimits([
  { name: 'max-packet-size', unit: 'bytes', default: 33_554_432, min: 16, max: MQTT_MAX_PACKET, live: false, doc: 'largest inbound packet (5.0 CONNACK Maximum Packet Size); bigger: 5.0 DISCONNECT 0x95, 3.1.1 close; the broker\'s shards store records up to 64 MiB, so above about 63 MiB a larger publish is refused when stored' },
  { name: 'max-inbound-bytes', unit: 'bytes', default: 268_435_456, min: 65_536, live: true, doc: 'bytes all connections together may hold in inbound packets over 64 KiB, from their fixed header until handled (a PUBLISH: until stored); a packet that would not fit waits, its socket unread, and packets are granted in the order they began' },
  { name: 'max-topic-length', unit: 'bytes', default: 65_535, min: 1, max: 65_535, live: false, doc: 'longest topic name or filter (the protocol allows 65535); longer: 5.0 DISCONNECT 0x90 / SUBACK 0x8F' },
  { name: 'max-topic-levels', unit: 'count', default: 128, min: 1, max: 65_535, live: false, doc: 'most /-separated levels in a topic name or filter' },
  { name: 'max-inflight', unit: 'count', default: 256, min: 1, max: 65_535, live: false, doc: 'QoS 1/2 messages in flight per client, each way (5.0 CONNACK Receive Maximum)' },
  { name: 'max-queued-bytes', unit: 'bytes', default: 16_777_216, min: 1, live: true, doc: 'per-client outbound buffer; past it QoS 0 is dropped (counted), QoS 1/2 read back from the journal later' },
  { name: 'max-connections', unit: 'count', default: 100_000, min: 1, live: true, doc: 'open client connections; past it: 5.0 CONNACK 0x97, 3.1.1 CONNACK 0x03' },
  { name: 'connect-timeout-ms', unit: 'ms', default: 10_000, min: 1, max: TIMER_DELAY_MS_MAX, live: true, doc: 'time a new connection has to send CONNECT before it is closed' },
  { name: 'max-session-expiry', unit: 'seconds', default: 604_800, min: 0, max: 4_294_967_295, live: true, doc: 'longest session expiry granted; a 5.0 client asking more gets this in CONNACK' },
  { name: 'topic-alias-maximum', unit: 'count', default: 64, min: 0, max: 65_535, live: false, doc: 'topic aliases a client may use, 0 for none (5.0 CONNACK Topic Alias Maximum)' },
  { name: 'max-keep-alive', unit: 'seconds', default: 65_535, min: 1, max: 65_535, live: true, doc: 'longest keep-alive granted; a 5.0 client asking more gets Server Keep Alive = this' },
  { name: 'server-keep-alive', unit: 'seconds', default: 0, min: 0, max: 65_535, live: true, doc: "keep-alive imposed on 5.0 clients via CONNACK Server Keep Alive; 0 = use the client's" },
  { name: 'max-connections-per-ip', unit: 'count', default: 0, min: 0, live: true, doc: 'open connections from one IP address, 0 for no limit; past it: 5.0 CONNACK 0x97, 3.1.1 CONNACK 0x03; far past it: closed at accept' },
  { name: 'max-connect-rate', unit: 'count', default: 0, min: 0, live: true, doc: 'new connections per second, all addresses together, 0 for no limit; past it: 5.0 CONNACK 0x9F, 3.1.1 CONNACK 0x03; far past it: closed at accept' },
  { name: 'max-connect-rate-per-ip', unit: 'count', default: 0, min: 0, live: true, doc: 'new connections per second from one IP address, 0 for no limit; past it as max-connect-rate' },
  { name: 'max-publish-rate', unit: 'count', default: 0, min: 0, live: true, doc: 'PUBLISH packets per second per client (bursts of one second allowed), 0 for no limit; past it: 5.0 DISCONNECT 0x96, 3.1.1 close' },
  { name: 'max-publish-bytes-rate', unit: 'bytes', default: 0, min: 0, live: true, doc: 'PUBLISH payload bytes per second per client (bursts of one second allowed), 0 for no limit; past it: 5.0 PUBACK/PUBREC 0x97 (QoS 0 dropped), 3.1.1 close' },
  { name: 'max-subscriptions-per-client', unit: 'count', default: 0, min: 0, live: true, doc: 'subscriptions one session may hold, 0 for no limit; past it: SUBACK 0x97 (5.0) / 0x80 (3.1.1) for that filter' },
  { name: 'writes-blocked-disconnect-seconds', unit: 'seconds', default: 30, min: 1, max: 2_147_483, live: true, doc: 'while writes are blocked (journal unreachable, disk low) an MQTT 3.x QoS 1/2 publish is held unacknowledged; held longer than this, the connection is closed so the client resends after reconnecting (5.0 gets PUBACK/PUBREC 0x80 or 0x97 at once)' },
]);

/** The limits a node's MQTT listeners and connections read, by camelCase name (maxPacketSize). */
export type MqttLimits = LimitValues<typeof MQTT_LIMITS>;

/** Every MQTT limit at its default. */
export function mqttLimitDefaults(): MqttLimits {
  return limitDefaults(MQTT_LIMITS);
}

// The listeners read admission and abuse limits from the same object: fails to compile when the
// table loses one of them.
type Covers<Limits, Needed> = Limits extends Needed ? true : false;
const _coversListenerLimits: Covers<MqttLimits, AbuseLimits & AdmissionLimits> = true;
