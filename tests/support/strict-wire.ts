// Shared by the strictness tests (mqtt-malformed, mqtt-properties-strict, mqtt-utf8): byte
// builders for 5.0 property blocks and CONNECT packets, and the two verdicts a refused packet
// gets. The close is the barrier of every negative check: once the broker closed the
// connection, whatever it was going to answer has arrived.
import assert from 'node:assert/strict';
import type { IConnackPacket } from 'mqtt-packet';
import { connackCode, hex, mqttString, rawConnect, rawPacket, RawMqttClient, varint, type MqttVersion } from './raw-mqtt.js';

export const CLOSE_WAIT_MS = 5_000;

export function label(version: MqttVersion): string {
  return version === 5 ? 'MQTT 5.0' : version === 4 ? 'MQTT 3.1.1' : 'MQTT 3.1';
}

/** A 5.0 property block: its length, then the property bytes as given. */
export function props(bytes: number[]): number[] {
  return [...varint(bytes.length), ...bytes];
}

/** The properties of a body in 5.0 (an empty block when none); nothing in 3.x. */
export function propsFor(version: MqttVersion, bytes: number[] = []): number[] {
  return version === 5 ? props(bytes) : [];
}

export interface ConnectFields {
  flags?: number;
  properties?: number[];
  clientId?: Buffer | number[] | string;
  willProperties?: number[];
  willTopic?: Buffer | number[] | string;
  username?: Buffer | number[] | string;
  password?: number[];
  /** Bytes after the last field. */
  tail?: number[];
}

/**
 * A CONNECT byte by byte. The will (flag 0x04) and user name (0x80) / password (0x40) fields
 * are written when their flag is set; the default flags are clean start only.
 */
export function connectBytes(version: MqttVersion, fields: ConnectFields = {}): Buffer {
  const flags = fields.flags ?? 0x02;
  const body = [...mqttString(version === 3 ? 'MQIsdp' : 'MQTT'), version, flags, 0, 60];
  if (version === 5) body.push(...props(fields.properties ?? []));
  body.push(...mqttString(fields.clientId ?? `s-${Math.random().toString(16).slice(2, 14)}`));
  if ((flags & 0x04) !== 0) {
    if (version === 5) body.push(...props(fields.willProperties ?? []));
    body.push(...mqttString(fields.willTopic ?? 'strict/will'), ...mqttString('bye'));
  }
  if ((flags & 0x80) !== 0) body.push(...mqttString(fields.username ?? 'user'));
  if ((flags & 0x40) !== 0) body.push(...mqttString(fields.password ?? [0x70]));
  body.push(...(fields.tail ?? []));
  return rawPacket(0x10, body);
}

/**
 * After CONNACK, `bytes` end the connection: 5.0 with exactly one DISCONNECT `code5` and
 * nothing else (no PUBACK, SUBACK, ... as if the packet were valid), 3.x with a bare close.
 */
export async function expectRefusedAfterConnect(port: number, version: MqttVersion, bytes: Buffer, code5: number): Promise<RawMqttClient> {
  const { client } = await rawConnect(port, version);
  client.send(bytes);
  await client.waitClosed(CLOSE_WAIT_MS);
  const after = client.packets.slice(1);
  if (version === 5) {
    assert.deepEqual(
      after.map((packet) => `${packet.cmd}:${hex((packet as { reasonCode?: number }).reasonCode ?? 0)}`),
      [`disconnect:${hex(code5)}`],
      `the only answer is DISCONNECT ${hex(code5)}; parse errors ${client.parseErrors.join('; ')}, raw ${client.raw.toString('hex')}`,
    );
  } else {
    assert.deepEqual(
      after.map((packet) => packet.cmd),
      [],
      '3.x: closed without any answer',
    );
  }
  return client;
}

/** The CONNECT `bytes` is refused: 5.0 with one CONNACK `code5` and nothing else, 3.x closed without a CONNACK. */
export async function expectConnectRefused(port: number, version: MqttVersion, bytes: Buffer, code5: number): Promise<void> {
  const client = await RawMqttClient.open(port, { protocolVersion: version });
  client.send(bytes);
  await client.waitClosed(CLOSE_WAIT_MS);
  if (version === 5) {
    assert.equal(client.packets.length, 1, `one CONNACK ${hex(code5)}; got ${client.describe()}, raw ${client.raw.toString('hex')}`);
    const connack = client.packets[0] as IConnackPacket;
    assert.equal(connack.cmd, 'connack');
    assert.equal(hex(connackCode(connack)), hex(code5), 'CONNACK reason code');
  } else {
    assert.equal(client.bytesReceived, 0, `3.x: closed without a CONNACK, got ${client.raw.toString('hex')}`);
  }
}

/** The CONNECT `bytes` is accepted (CONNACK 0x00); the connection is returned open. */
export async function expectConnectAccepted(port: number, version: MqttVersion, bytes: Buffer): Promise<RawMqttClient> {
  const client = await RawMqttClient.open(port, { protocolVersion: version });
  client.send(bytes);
  const connack = await client.nextOf('connack');
  assert.equal(hex(connackCode(connack)), hex(0), 'CONNACK code');
  return client;
}

/** PINGREQ → PINGRESP: everything the broker answered to packets sent before it has arrived, and it is still open. */
export async function pingBarrier(client: RawMqttClient): Promise<void> {
  client.send([0xc0, 0x00]);
  await client.nextOf('pingresp');
  assert.equal(client.closed, false, 'the connection is still open');
}
