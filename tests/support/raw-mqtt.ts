// A raw MQTT client for tests that must send what no well-behaved client would: arbitrary bytes
// on a plain TCP socket (node:net), with the broker's replies decoded by mqtt-packet. It never
// answers anything on its own unless asked (autoAck), so a test sees exactly what the broker
// sent and when it closed the connection.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IConnectPacket, Packet, PacketCmd } from 'mqtt-packet';

export type MqttVersion = 3 | 4 | 5;

/** Raw bytes kept per connection (the start of the stream; enough for CONNACK/DISCONNECT checks). */
const RAW_KEEP_BYTES = 64 * 1024;
const DEFAULT_WAIT_MS = 5_000;

export interface RawClientOptions {
  host?: string;
  /** How the broker's replies are decoded (5 = with properties and reason codes). */
  protocolVersion?: MqttVersion;
  /** Answer QoS 1 PUBLISH with PUBACK and QoS 2 with PUBREC/PUBCOMP as they are decoded. */
  autoAck?: boolean;
  /** Keep only this many leading bytes of each PUBLISH payload (bulk tests that only need a sequence number). */
  keepPayloadBytes?: number;
}

export class RawMqttClient {
  readonly socket: Socket;
  readonly protocolVersion: MqttVersion;
  /** Every packet decoded so far, in order; `next()` consumes from `unread`. */
  readonly packets: Packet[] = [];
  readonly parseErrors: Error[] = [];
  readonly socketErrors: Error[] = [];
  /** The first RAW_KEEP_BYTES bytes the broker sent, undecoded. */
  raw: Buffer = Buffer.alloc(0);
  bytesReceived = 0;
  publishesReceived = 0;
  closed = false;
  autoAck: boolean;
  private readonly keepPayloadBytes: number | undefined;
  private unread = 0;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  private readonly waiters = new Set<() => void>();
  private readonly closedPromise: Promise<void>;

  private constructor(socket: Socket, options: RawClientOptions) {
    this.socket = socket;
    this.protocolVersion = options.protocolVersion ?? 4;
    this.autoAck = options.autoAck ?? false;
    this.keepPayloadBytes = options.keepPayloadBytes;
    this.parser = mqttPacket.parser({ protocolVersion: this.protocolVersion });
    this.parser.on('packet', (packet: Packet) => {
      this.onPacket(packet);
      this.onPubrel(packet);
    });
    this.parser.on('error', (error: Error) => {
      this.parseErrors.push(error);
      this.wake();
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      if (this.raw.length < RAW_KEEP_BYTES) this.raw = Buffer.concat([this.raw, chunk.subarray(0, RAW_KEEP_BYTES - this.raw.length)]);
      this.parser.parse(chunk);
      this.wake();
    });
    // A broker that closes on bad input may reset the connection while we still write: expected.
    socket.on('error', (error) => this.socketErrors.push(error));
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async open(port: number, options: RawClientOptions = {}): Promise<RawMqttClient> {
    const socket = connect(port, options.host ?? '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawMqttClient(socket, options);
  }

  private onPacket(packet: Packet): void {
    this.packets.push(packet);
    if (packet.cmd !== 'publish') return;
    this.publishesReceived += 1;
    // A copy, so the (possibly large) chunk the payload was sliced from can be freed.
    if (this.keepPayloadBytes !== undefined) packet.payload = Buffer.from(Buffer.from(packet.payload).subarray(0, this.keepPayloadBytes));
    if (!this.autoAck || packet.qos === 0 || this.closed) return;
    const messageId = packet.messageId;
    this.sendPacket(packet.qos === 1 ? { cmd: 'puback', messageId } : { cmd: 'pubrec', messageId });
  }

  private onPubrel(packet: Packet): void {
    if (this.autoAck && packet.cmd === 'pubrel' && !this.closed) this.sendPacket({ cmd: 'pubcomp', messageId: packet.messageId });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves when `ready()` is true, rechecked on every byte, parse error and close. */
  async until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready()) return;
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not within ${timeoutMs} ms (closed=${this.closed}, packets=${this.describe()}, raw=${this.raw.subarray(0, 32).toString('hex')})`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Short text of the decoded packets so far, for failure messages. */
  describe(): string {
    return JSON.stringify(
      this.packets.slice(-8).map((packet) => {
        const { cmd } = packet;
        const code = (packet as { reasonCode?: number; returnCode?: number }).reasonCode ?? (packet as { returnCode?: number }).returnCode;
        return code === undefined ? cmd : `${cmd}:0x${code.toString(16)}`;
      }),
    );
  }

  send(bytes: Buffer | number[]): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  sendPacket(packet: Packet): void {
    this.send(mqttPacket.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  /** The next packet not yet returned by next(); fails on timeout or if the connection closes first. */
  async next(timeoutMs = DEFAULT_WAIT_MS): Promise<Packet> {
    await this.until(() => this.unread < this.packets.length || this.closed, timeoutMs, 'next packet');
    const packet = this.packets[this.unread];
    if (packet === undefined) assert.fail(`connection closed with no further packet (packets so far: ${this.describe()})`);
    this.unread += 1;
    return packet;
  }

  /** Skips to the next packet of the given kind (PINGRESP, other PUBLISH... in between are consumed). */
  async nextOf<C extends PacketCmd>(cmd: C, timeoutMs = DEFAULT_WAIT_MS): Promise<Extract<Packet, { cmd: C }>> {
    const deadline = Date.now() + timeoutMs;
    for (let skipped = 0; skipped < 1_000_000; skipped += 1) {
      const packet = await this.next(Math.max(1, deadline - Date.now()));
      if (packet.cmd === cmd) return packet as Extract<Packet, { cmd: C }>;
    }
    assert.fail(`no ${cmd} among a million packets`);
  }

  /** Resolves once the broker closed the connection; fails if it is still open after timeoutMs. */
  async waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await this.until(() => this.closed, timeoutMs, 'broker closes the connection');
  }

  /** Resolves true when the connection closes within timeoutMs, false when it is still open then. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)))]);
    clearTimeout(timer);
    return result;
  }

  /** Stops reading: the kernel buffers fill and the broker's writes back up (a slow consumer). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A CONNECT packet for the version (3 = MQTT 3.1 "MQIsdp"), clean, keep-alive 60 s. */
export function connectPacket(version: MqttVersion, fields: Partial<IConnectPacket> = {}): IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean: true,
    keepalive: 60,
    clientId: `raw-${process.pid}-${Math.random().toString(16).slice(2, 10)}`,
    ...fields,
  };
}

/** The CONNACK's code, whichever version encoded it (3.x returnCode, 5.0 reasonCode). */
export function connackCode(packet: IConnackPacket): number {
  return packet.reasonCode ?? packet.returnCode ?? -1;
}

/** Opens a raw connection, sends CONNECT and expects CONNACK success. */
export async function rawConnect(port: number, version: MqttVersion, fields: Partial<IConnectPacket> = {}, options: Omit<RawClientOptions, 'protocolVersion'> = {}): Promise<{ client: RawMqttClient; connack: IConnackPacket }> {
  const client = await RawMqttClient.open(port, { ...options, protocolVersion: version });
  client.sendPacket(connectPacket(version, fields));
  const connack = await client.nextOf('connack');
  assert.equal(connackCode(connack), 0, `CONNACK code for a ${version} CONNECT`);
  return { client, connack };
}

/** Encodes a Variable Byte Integer (remaining length, property lengths). */
export function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out.push(byte);
  } while (rest > 0);
  return out;
}

/** A UTF-8 string field: two length bytes, then the bytes as given (may be invalid UTF-8). */
export function mqttString(bytes: Buffer | number[] | string): number[] {
  const body = typeof bytes === 'string' ? [...Buffer.from(bytes, 'utf8')] : [...bytes];
  return [body.length >> 8, body.length & 0xff, ...body];
}

/** A whole packet from its first byte and its body (the remaining length computed). */
export function rawPacket(firstByte: number, body: number[]): Buffer {
  return Buffer.from([firstByte, ...varint(body.length), ...body]);
}

/**
 * A PUBLISH with the topic name given as raw bytes, so tests can put invalid UTF-8, U+0000 or
 * wildcards in it (mqtt-packet's generate would refuse or re-encode them).
 */
export function rawPublish(version: MqttVersion, topic: Buffer | number[] | string, options: { qos?: 0 | 1 | 2; messageId?: number; properties?: number[]; payload?: Buffer | string } = {}): Buffer {
  const qos = options.qos ?? 0;
  const body = [...mqttString(topic)];
  if (qos > 0) body.push((options.messageId ?? 1) >> 8, (options.messageId ?? 1) & 0xff);
  if (version === 5) body.push(...varint(options.properties?.length ?? 0), ...(options.properties ?? []));
  body.push(...Buffer.from(options.payload ?? 'x'));
  return rawPacket(0x30 | (qos << 1), body);
}

/**
 * A CONNECT built byte by byte, for what mqtt-packet's generate refuses (an empty client id
 * without clean session, unknown protocol levels, invalid UTF-8 in the client id).
 * Properties are written when `level` is 5 or `properties` is given.
 */
export function rawConnectBytes(options: { protocolName?: string; level: number; flags?: number; keepAlive?: number; properties?: number[]; clientId: Buffer | number[] | string }): Buffer {
  const body = [...mqttString(options.protocolName ?? (options.level === 3 ? 'MQIsdp' : 'MQTT')), options.level, options.flags ?? 0x02];
  const keepAlive = options.keepAlive ?? 60;
  body.push(keepAlive >> 8, keepAlive & 0xff);
  if (options.level === 5 || options.properties !== undefined) body.push(...varint(options.properties?.length ?? 0), ...(options.properties ?? []));
  body.push(...mqttString(options.clientId));
  return rawPacket(0x10, body);
}

/** Polls `ready` until it is true; fails with `what` after timeoutMs. */
export async function waitUntil(ready: () => boolean, timeoutMs: number, what: string, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function hex(code: number | undefined): string {
  return code === undefined ? 'none' : `0x${code.toString(16).padStart(2, '0')}`;
}
