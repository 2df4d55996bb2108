// MQTT clients for the broker integration tests.
//
// TestClient wraps an mqtt.js client (the client the tests are about: a real, widely used
// implementation of the full QoS flows) and records every packet it receives, so a test can
// await "N messages" or "a packet like this" instead of sleeping, and can read ack reason
// codes that mqtt.js does not surface (it hides 0x10 and the PUBREC of a QoS 2 flow).
//
// RawClient speaks MQTT over a plain socket with mqtt-packet, for what a well-behaved client
// library will not do: stay silent past the keep-alive, withhold PUBACKs, send invalid filters
// or wildcard topic names, read CONNACK/DISCONNECT reason codes of refused connections.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IClientSubscribeOptions, type ISubscriptionMap, type MqttClient } from 'mqtt';
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IDisconnectPacket, type IPublishPacket, type ISubackPacket, type IUnsubackPacket, type Packet, type QoS } from 'mqtt-packet';

export type ProtocolVersion = 3 | 4 | 5;
export const DEFAULT_WAIT_MS = 5_000;
/** How long a test watches for something that must NOT arrive. */
export const NEGATIVE_WAIT_MS = 300;

export interface Received {
  /** The topic after topic-alias resolution (mqtt.js resolves inbound aliases). */
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

let sequence = 0;
const runTag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;

/** A client id unique to this run; at most 23 characters so that 3.1 brokers accept it. */
export function uniqueClientId(prefix = 'c'): string {
  sequence += 1;
  const id = `${prefix.slice(0, 6)}-${runTag}-${sequence.toString(36)}`;
  assert.ok(id.length <= 23, id);
  return id;
}

/** A topic unique to this run, so tests sharing a broker never see each other's messages. */
export function uniqueTopic(label = 't'): string {
  sequence += 1;
  return `sl-it/${runTag}/${sequence.toString(36)}/${label}`;
}

export function versionOptions(version: ProtocolVersion): Pick<IClientOptions, 'protocolVersion' | 'protocolId'> {
  return version === 3 ? { protocolVersion: 3, protocolId: 'MQIsdp' } : { protocolVersion: version, protocolId: 'MQTT' };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Everything a test opened, closed by closeAllClients() in after(). */
const open = new Set<{ destroy(): void }>();

export function closeAllClients(): void {
  for (const client of open) client.destroy();
  open.clear();
}

/**
 * Resolves once `check` returns a value other than undefined, re-checking on every `changed`
 * event of `emitter`; fails after `timeoutMs`, or as soon as `hopeless()` (the connection is
 * gone), with `describe()` in the message.
 */
async function waitUntil<T>(emitter: EventEmitter, check: () => T | undefined, timeoutMs: number, describe: () => string, hopeless: () => boolean = () => false): Promise<T> {
  const first = check();
  if (first !== undefined) return first;
  const giveUp = (): Error => new assert.AssertionError({ message: `gave up waiting for ${describe()}` });
  if (hopeless()) throw giveUp();
  return new Promise<T>((resolve, reject) => {
    const onChange = (): void => {
      const value = check();
      if (value === undefined) {
        if (!hopeless()) return;
        clearTimeout(timer);
        emitter.off('changed', onChange);
        reject(giveUp());
        return;
      }
      clearTimeout(timer);
      emitter.off('changed', onChange);
      resolve(value);
    };
    const timer = setTimeout(() => {
      emitter.off('changed', onChange);
      reject(new assert.AssertionError({ message: `timed out after ${timeoutMs} ms waiting for ${describe()}` }));
    }, timeoutMs);
    emitter.on('changed', onChange);
  });
}

function summarize(packet: Packet): string {
  const { cmd } = packet;
  if (cmd === 'publish') return `publish(${packet.topic},qos${packet.qos}${packet.dup ? ',dup' : ''}${packet.retain ? ',retain' : ''},${String(packet.payload).slice(0, 20)})`;
  const code = (packet as { reasonCode?: number; returnCode?: number }).reasonCode ?? (packet as { returnCode?: number }).returnCode;
  return code === undefined ? cmd : `${cmd}(0x${code.toString(16)})`;
}

export interface PublishResult {
  messageId?: number;
  /** PUBACK (QoS 1) or PUBREC (QoS 2) as received. */
  ack?: Packet & { reasonCode?: number; properties?: { reasonString?: string } };
  /** PUBCOMP (QoS 2). */
  pubcomp?: Packet & { reasonCode?: number };
  /** mqtt.js reports reason codes >= 0x80 as errors. */
  error?: Error;
}

export interface ConnectOptions extends IClientOptions {
  version?: ProtocolVersion;
}

/** An mqtt.js client with a record of what it received. Build it with connectClient(). */
export class TestClient {
  readonly messages: Received[] = [];
  readonly packets: Packet[] = [];
  /** DISCONNECT sent by the server (5.0), if any. */
  serverDisconnect?: IDisconnectPacket;
  isClosed = false;
  readonly closed: Promise<void>;
  private readonly events = new EventEmitter();

  /** Errors mqtt.js emitted after connecting (it throws on an 'error' nobody listens to). */
  readonly errors: Error[] = [];
  /** Set by connectClient() once CONNACK arrived. */
  connack!: IConnackPacket;

  // Listeners go on before the connection opens: messages queued for a persistent session
  // can arrive in the same read as the CONNACK, before an awaiting caller could attach them.
  constructor(readonly client: MqttClient) {
    client.on('error', (error) => {
      this.errors.push(error);
      this.events.emit('changed');
    });
    client.on('packetreceive', (packet) => {
      this.packets.push(packet);
      if (packet.cmd === 'disconnect') this.serverDisconnect = packet;
      this.events.emit('changed');
    });
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, packet });
      this.events.emit('changed');
    });
    this.closed = new Promise((resolve) => {
      client.once('close', () => {
        this.isClosed = true;
        this.events.emit('changed');
        resolve();
      });
    });
    open.add(this);
  }

  get clientId(): string {
    return this.client.options.clientId!;
  }

  /** Resolves with the first `count` messages (optionally only those on `topic`). */
  waitForMessages(count: number, options: { topic?: string; timeoutMs?: number } = {}): Promise<Received[]> {
    const pick = (): Received[] => (options.topic === undefined ? this.messages : this.messages.filter((m) => m.topic === options.topic));
    return waitUntil(
      this.events,
      () => {
        const found = pick();
        return found.length >= count ? found.slice(0, count) : undefined;
      },
      options.timeoutMs ?? DEFAULT_WAIT_MS,
      () => `${count} message(s)${options.topic === undefined ? '' : ` on ${options.topic}`}, got ${pick().length}: ${pick().map((m) => summarize(m.packet)).join(' ')}`,
    );
  }

  /** Resolves with the first received packet (from index `from`) that satisfies `match`. */
  waitForPacket<P extends Packet = Packet>(match: (packet: Packet) => boolean, options: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<P> {
    return waitUntil(
      this.events,
      () => this.packets.slice(options.from ?? 0).find(match) as P | undefined,
      options.timeoutMs ?? DEFAULT_WAIT_MS,
      () => `${options.what ?? 'a packet'}; received: ${this.packets.map(summarize).join(' ')}`,
    );
  }

  waitForClose(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return waitUntil(this.events, () => (this.isClosed ? true : undefined), timeoutMs, () => `${this.clientId} to be closed by the server`).then(() => undefined);
  }

  /**
   * A round trip on this connection (UNSUBSCRIBE of a filter it never had, answered by
   * UNSUBACK): resolves once the broker has handled every packet this client sent before, and
   * proves the connection is still open now. The barrier for "the connection stays up".
   */
  async roundTrip(): Promise<void> {
    await this.unsubscribe(uniqueTopic('barrier'));
    assert.equal(this.isClosed, false, `${this.clientId} is still connected`);
  }

  /**
   * "Nothing else arrives", with a barrier instead of a fixed wait: `via` publishes a marker at
   * QoS 1 on `topic` (the topic the unwanted message would come on, from the connection that
   * would have published it: same data shard, publish order kept), this client waits for the
   * marker, and no message since index `from` (other than the marker; only those `unwanted`
   * picks, when given) may have come before it.
   */
  async expectNothingBeforeMarker(via: TestClient, topic: string, options: { from: number; what: string; unwanted?: (message: Received) => boolean }): Promise<void> {
    const marker = `marker ${uniqueTopic('m')}`;
    await via.publish(topic, marker, { qos: 1 });
    await waitUntil(this.events, () => (this.messages.some((m) => m.payload.toString() === marker) ? true : undefined), DEFAULT_WAIT_MS, () => `the marker on ${topic}`);
    const between = this.messages.slice(options.from).filter((m) => m.payload.toString() !== marker && (options.unwanted?.(m) ?? true));
    assert.deepEqual(between.map((m) => summarize(m.packet)), [], `expected ${options.what}`);
  }

  /** Asserts that no further message arrives within `ms` (for "must not be delivered"). */
  async expectNoMoreMessages(ms = NEGATIVE_WAIT_MS, what = 'no message'): Promise<void> {
    const before = this.messages.length;
    await sleep(ms);
    assert.deepEqual(
      this.messages.slice(before).map((m) => summarize(m.packet)),
      [],
      `expected ${what}`,
    );
  }

  /** Resolves with the SUBACK reason codes (granted QoS, or >= 0x80 for a refusal). */
  subscribe(filter: string | string[] | ISubscriptionMap, options: Partial<IClientSubscribeOptions> = {}): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.client.subscribe(filter, { qos: 0, ...options } as IClientSubscribeOptions, (error, granted) => {
        // mqtt.js reports failure reason codes as an error but still hands over the grants.
        if (granted !== undefined && granted.length > 0) resolve(granted.map((g) => g.qos));
        else reject(error ?? new Error('no SUBACK grants'));
      });
    });
  }

  /** Resolves with the UNSUBACK (reason codes in `granted` for 5.0). */
  unsubscribe(filter: string | string[]): Promise<IUnsubackPacket & { granted?: number[] }> {
    return new Promise((resolve, reject) => {
      this.client.unsubscribe(filter, {}, (error, packet) => {
        if (error !== undefined && error !== null) reject(error);
        else resolve(packet as IUnsubackPacket & { granted?: number[] });
      });
    });
  }

  /** Publishes and resolves once the QoS flow has finished, with the acks the broker sent. */
  publish(topic: string, payload: string | Buffer, options: Partial<IClientPublishOptions> = {}): Promise<PublishResult> {
    const from = this.packets.length;
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: 0, ...options } as IClientPublishOptions, (error, packet) => {
        const qos = options.qos ?? 0;
        if (qos === 0) {
          if (error !== undefined && error !== null) reject(error);
          else resolve({});
          return;
        }
        const messageId = packet?.messageId;
        const since = this.packets.slice(from);
        const ack = since.find((p) => (p.cmd === 'puback' || p.cmd === 'pubrec') && p.messageId === messageId);
        const pubcomp = since.find((p) => p.cmd === 'pubcomp' && p.messageId === messageId);
        if (ack === undefined) {
          reject(error ?? new Error(`publish finished without an ack for message id ${messageId}`));
          return;
        }
        resolve({ messageId, ack, pubcomp, error: error ?? undefined });
      });
    });
  }

  /**
   * Publishes `payloads` in order with at most `window` QoS 1/2 messages unacknowledged, and
   * resolves with every result. mqtt.js ignores the broker's Receive Maximum, and a 5.0 broker
   * may disconnect a client that exceeds it (0x93), so floods must be windowed; 20 is
   * Mosquitto's default Receive Maximum and below Shardline's.
   */
  async publishMany(topic: string, payloads: (string | Buffer)[], options: Partial<IClientPublishOptions> = {}, window = 20): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    const inFlight = new Set<Promise<void>>();
    for (const [index, payload] of payloads.entries()) {
      while (inFlight.size >= window) await Promise.race(inFlight);
      const sent: Promise<void> = this.publish(topic, payload, options).then((result) => {
        results[index] = result;
        inFlight.delete(sent);
      });
      inFlight.add(sent);
    }
    await Promise.all(inFlight);
    return results;
  }

  /**
   * Normal disconnect: sends DISCONNECT (with a 5.0 reason code and properties if given) and
   * waits for the close.
   */
  async end(reasonCode?: number, properties?: { sessionExpiryInterval?: number; reasonString?: string }): Promise<void> {
    open.delete(this);
    if (this.isClosed) return;
    const fields = { ...(reasonCode === undefined ? {} : { reasonCode }), ...(properties === undefined ? {} : { properties }) };
    await new Promise<void>((resolve) => this.client.end(false, fields, () => resolve()));
    await this.closed;
  }

  /** Abrupt close: the socket goes away without DISCONNECT. */
  destroy(): void {
    open.delete(this);
    this.client.end(true);
  }
}

/**
 * Connects with mqtt.js (no automatic reconnect, so a test sees every close) and resolves on
 * CONNACK; rejects if the connection is refused or fails.
 */
export async function connectClient(url: string, options: ConnectOptions = {}): Promise<TestClient> {
  const { version = 4, ...rest } = options;
  const client = mqtt.connect(url, {
    ...versionOptions(version),
    clientId: uniqueClientId(),
    reconnectPeriod: 0,
    connectTimeout: DEFAULT_WAIT_MS,
    // Otherwise mqtt.js silently drops a SUBSCRIBE to a filter it already subscribed to.
    resubscribe: false,
    ...rest,
  });
  const wrapper = new TestClient(client);
  try {
    wrapper.connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    return wrapper;
  } catch (error) {
    wrapper.destroy();
    throw error;
  }
}

/** CONNECT fields for a raw client; mqtt-packet fills the protocol name from the version. */
export type RawConnect = Partial<Omit<IConnectPacket, 'cmd'>> & { clientId: string };

/** MQTT over a plain socket: every packet sent is explicit, every packet received is kept. */
export class RawClient {
  readonly packets: Packet[] = [];
  isClosed = false;
  closedAt?: number;
  readonly closed: Promise<void>;
  private readonly events = new EventEmitter();
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  parseError?: Error;

  private constructor(
    readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (packet: Packet) => {
      this.packets.push(packet);
      this.events.emit('changed');
    });
    this.parser.on('error', (error: Error) => {
      this.parseError = error;
    });
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        this.closedAt = Date.now();
        this.events.emit('changed');
        resolve();
      });
    });
    open.add(this);
  }

  static async open(port: number, version: ProtocolVersion, host = '127.0.0.1'): Promise<RawClient> {
    const socket = netConnect(port, host);
    socket.setNoDelay(true);
    await once(socket, 'connect');
    return new RawClient(socket, version);
  }

  /** Opens a socket, sends CONNECT and resolves with the client once CONNACK arrived. */
  static async connect(port: number, version: ProtocolVersion, fields: RawConnect): Promise<{ raw: RawClient; connack: IConnackPacket }> {
    const raw = await RawClient.open(port, version);
    raw.send({ cmd: 'connect', protocolVersion: version, protocolId: version === 3 ? 'MQIsdp' : 'MQTT', keepalive: 60, clean: true, ...fields });
    const connack = await raw.waitForPacket<IConnackPacket>((p) => p.cmd === 'connack', { what: 'CONNACK' });
    return { raw, connack };
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  waitForPacket<P extends Packet = Packet>(match: (packet: Packet) => boolean, options: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<P> {
    return waitUntil(
      this.events,
      () => this.packets.slice(options.from ?? 0).find(match) as P | undefined,
      options.timeoutMs ?? DEFAULT_WAIT_MS,
      () => `${options.what ?? 'a packet'}; received: ${this.packets.map(summarize).join(' ')}${this.isClosed ? ' (socket closed)' : ''}`,
      () => this.isClosed,
    );
  }

  /** Resolves with every PUBLISH received once there are at least `count`. */
  waitForPublishes(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<IPublishPacket[]> {
    const publishes = (): IPublishPacket[] => this.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
    return waitUntil(
      this.events,
      () => (publishes().length >= count ? publishes() : undefined),
      timeoutMs,
      () => `${count} PUBLISH(es); received: ${this.packets.map(summarize).join(' ')}${this.isClosed ? ' (socket closed)' : ''}`,
      () => this.isClosed,
    );
  }

  waitForClose(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return waitUntil(this.events, () => (this.isClosed ? true : undefined), timeoutMs, () => `the server to close the connection; received: ${this.packets.map(summarize).join(' ')}`).then(() => undefined);
  }

  async subscribe(subscriptions: { topic: string; qos: QoS; nl?: boolean; rap?: boolean; rh?: number }[], messageId = 1, properties?: { subscriptionIdentifier?: number }): Promise<ISubackPacket> {
    const from = this.packets.length;
    this.send({ cmd: 'subscribe', messageId, subscriptions, ...(properties === undefined ? {} : { properties }) });
    return this.waitForPacket<ISubackPacket>((p) => p.cmd === 'suback' && p.messageId === messageId, { from, what: `SUBACK ${messageId}` });
  }

  destroy(): void {
    open.delete(this);
    this.socket.destroy();
  }
}

/** Subscribes a fresh mqtt.js client to `filter` and returns it. */
export async function subscriber(url: string, filter: string | string[] | ISubscriptionMap, options: ConnectOptions & { qos?: QoS; subscribeOptions?: Partial<IClientSubscribeOptions> } = {}): Promise<TestClient> {
  const { qos = 2, subscribeOptions = {}, ...connectOptions } = options;
  const client = await connectClient(url, connectOptions);
  const granted = await client.subscribe(filter, { qos, ...subscribeOptions });
  for (const code of granted) assert.ok(code < 0x80, `subscription to ${JSON.stringify(filter)} refused: 0x${code.toString(16)}`);
  return client;
}

/**
 * Skips a test under Mosquitto where Mosquitto is known to deviate from the contract (the test
 * still runs against Shardline). SHARDLINE_TEST_DEVIATIONS=1 runs it anyway, to see that the
 * deviation is still there.
 */
export function contractOnly(t: { skip: (message: string) => void }, why: string): boolean {
  if (process.env.SHARDLINE_TEST_BROKER !== 'mosquitto' || process.env.SHARDLINE_TEST_DEVIATIONS === '1') return true;
  t.skip(`Mosquitto deviates from the contract: ${why}`);
  return false;
}
