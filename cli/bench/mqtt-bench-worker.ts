// One worker process of `shardline bench mqtt` (started by child_process.fork from
// mqtt-bench.ts): runs its share of idle connections, subscribers and publishers on raw
// sockets and reports counters and latency samples to the coordinator over IPC.
//
// Publishers write pre-encoded bursts (one buffer, one send time per burst). At QoS 0 without
// a rate they write until the socket buffers fill and wait for 'drain'; at QoS 1/2 a bounded
// window of unacknowledged publishes is refilled as acks arrive. Subscribers parse PUBLISH by
// hand, acknowledge a whole chunk's packets in one write and time each measured message from
// the send time in its payload.
import { connect, type Socket } from 'node:net';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { IConnackPacket, ISubackPacket } from 'mqtt-packet';
import {
  decodePacket,
  DISCONNECT,
  encodeAcks,
  encodeConnect,
  encodePublishes,
  encodeSubscribe,
  FrameReader,
  MAX_PACKET_ID,
  PAYLOAD_HEADER_BYTES,
  PINGREQ,
  publisherTopic,
  publishTemplate,
  readVarint,
  topicMatches,
  type CoordinatorMessage,
  type CpuTime,
  type LoadWindow,
  type PublishTemplate,
  type Role,
  type WorkerAssignment,
  type WorkerConfig,
  type WorkerMessage,
  type WorkerStats,
} from './mqtt-bench-wire.js';
import { wallNow } from './wall-clock.js';

const STATS_INTERVAL_MS = 250;
const RATE_TICK_MS = 1;
/** Bursts one QoS 0 publisher writes before yielding to the event loop (other sockets). */
const BURSTS_PER_TURN = 8;
const CLOSE_TIMEOUT_MS = 3000;
const MAX_ERRORS = 20;

// Every socket of this worker reads into this one buffer (net's onread): no Buffer and no
// stream event per read. Safe to share because each read is handled before the next starts
// and FrameReader copies any partial packet out.
const readBuffer = Buffer.allocUnsafe(256 * 1024);

let config: WorkerConfig;
let assignment: WorkerAssignment;
let loadWindow: LoadWindow | null = null;
let measureStart = Number.POSITIVE_INFINITY;
let measureEnd = Number.POSITIVE_INFINITY;

const connections: Connection[] = [];
const publishers: Publisher[] = [];
const timers: NodeJS.Timeout[] = [];
let finishing = false;

const counters = {
  delivered: 0,
  deliveredInWindow: 0,
  measuredUnique: 0,
  duplicates: 0,
  foreign: 0,
  completed: 0,
  refused: 0,
};
let latencies = new Float64Array(16_384);
let latencyCount = 0;
let cpuAtWindowStart: NodeJS.CpuUsage | null = null;
let windowCpu: CpuTime = { userUs: 0, systemUs: 0 };
let windowCpuFinal = false;
let loopAtWindowStart: EventLoopUtilization | null = null;
let windowLoopBusy = 0;
const errors: string[] = [];
let errorCount = 0;

function reportError(message: string): void {
  errorCount += 1;
  if (errorCount <= MAX_ERRORS) errors.push(message);
}

function send(message: WorkerMessage, done?: () => void): void {
  if (process.send === undefined || !process.connected) return;
  process.send(message, undefined, {}, done);
}

function recordLatency(ms: number): void {
  if (latencyCount === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[latencyCount] = ms * 1e6;
  latencyCount += 1;
}

/** A socket, its packet framing, and the acks one incoming chunk produced (sent as one write). */
class Connection {
  readonly socket: Socket;
  lastWriteAt = wallNow();
  /** Receive Maximum the broker granted (MQTT 5), bounding QoS 1/2 publishes in flight. */
  receiveMaximum = MAX_PACKET_ID;
  closedByUs = false;
  closed = false;
  /** Set per incoming chunk: the arrival time every packet of the chunk shares. */
  chunkTime = 0;
  private ackBytes: number[] = [];
  private ackIds: number[] = [];
  private waiter: { cmd: string; resolve: (frame: Buffer) => void; reject: (error: Error) => void } | null = null;
  onFrame: (firstByte: number, buffer: Buffer, bodyStart: number, bodyEnd: number) => void = () => undefined;
  afterChunk: () => void = () => undefined;
  onClosed: () => void = () => undefined;

  constructor(readonly clientId: string) {
    const reader = new FrameReader((firstByte, buffer, frameStart, bodyStart, bodyEnd) => {
      if (this.waiter !== null) {
        const waiter = this.waiter;
        this.waiter = null;
        waiter.resolve(Buffer.from(buffer.subarray(frameStart, bodyEnd)));
        return;
      }
      this.onFrame(firstByte, buffer, bodyStart, bodyEnd);
    });
    const onData = (chunk: Buffer): void => {
      this.chunkTime = wallNow();
      try {
        reader.push(chunk);
      } catch (error) {
        reportError(`${clientId}: ${(error as Error).message}`);
        this.socket.destroy();
        return;
      }
      this.flushAcks();
      this.afterChunk();
    };
    this.socket = connect({
      host: config.host,
      port: config.port,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (bytes) => (onData(readBuffer.subarray(0, bytes)), true) },
    });
    this.socket.on('error', (error) => {
      if (this.waiter !== null) {
        this.waiter.reject(error);
        this.waiter = null;
      } else if (!this.closedByUs) reportError(`${clientId}: ${error.message}`);
    });
    this.socket.on('close', () => {
      this.closed = true;
      if (this.waiter !== null) {
        this.waiter.reject(new Error('connection closed by the broker'));
        this.waiter = null;
      } else if (!this.closedByUs && !finishing) reportError(`${clientId}: connection closed by the broker during the run`);
      this.onClosed();
    });
  }

  /** Resolves with the next whole packet (used only while nothing else is expected). */
  expect(cmd: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no ${cmd} within ${config.connectTimeoutMs} ms`));
      }, config.connectTimeoutMs);
      this.waiter = {
        cmd,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  write(bytes: Buffer): boolean {
    this.lastWriteAt = wallNow();
    return this.socket.write(bytes);
  }

  queueAck(firstByte: number, packetId: number): void {
    this.ackBytes.push(firstByte);
    this.ackIds.push(packetId);
  }

  private flushAcks(): void {
    const count = this.ackIds.length;
    if (count === 0) return;
    const firstByte = this.ackBytes[0] as number;
    // One write for the chunk; the common case is a single ack type.
    if (this.ackBytes.every((byte) => byte === firstByte)) {
      if (!this.closed) this.write(encodeAcks(firstByte, this.ackIds, count));
    } else {
      const parts: Buffer[] = [];
      for (let index = 0; index < count; index += 1) parts.push(encodeAcks(this.ackBytes[index] as number, [this.ackIds[index] as number], 1));
      if (!this.closed) this.write(Buffer.concat(parts));
    }
    this.ackBytes = [];
    this.ackIds = [];
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TCP connect timed out after ${config.connectTimeoutMs} ms`)), config.connectTimeoutMs);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const reply = this.expect('CONNACK');
    this.write(encodeConnect(this.clientId, config.keepaliveSeconds, config.protocolVersion));
    const packet = decodePacket(await reply, config.protocolVersion);
    if (packet.cmd !== 'connack') throw new Error(`expected CONNACK, got ${packet.cmd}`);
    const connack = packet as IConnackPacket;
    const code = connack.reasonCode ?? connack.returnCode ?? 0;
    if (code !== 0) throw new Error(`CONNACK refused the connection with code ${code}${code === 1 || code === 0x84 ? ' (unsupported protocol version: try the other --protocol-version)' : ''}`);
    if (connack.properties?.receiveMaximum !== undefined) this.receiveMaximum = connack.properties.receiveMaximum;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closedByUs = true;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end(DISCONNECT);
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    await closed;
    clearTimeout(timer);
  }
}

function clientId(role: Role, index: number): string {
  return `${config.clientIdPrefix}-${role}${index}`;
}

/** Whether `seq` of `publisher` was seen before by one subscriber; marks it. */
class SeenSet {
  private readonly bits: Uint8Array[] = [];

  firstTime(publisher: number, seq: number): boolean {
    let bits = this.bits[publisher];
    const byte = seq >>> 3;
    if (bits === undefined || byte >= bits.length) {
      const grown = new Uint8Array(Math.max(1024, 2 ** Math.ceil(Math.log2(byte + 1))));
      if (bits !== undefined) grown.set(bits);
      this.bits[publisher] = grown;
      bits = grown;
    }
    const mask = 1 << (seq & 7);
    const value = bits[byte] as number;
    if ((value & mask) !== 0) return false;
    bits[byte] = value | mask;
    return true;
  }
}

async function openSubscriber(index: number, publisherCount: number): Promise<Connection> {
  const connection = new Connection(clientId('sub', index));
  await connection.open();
  const reply = connection.expect('SUBACK');
  connection.write(encodeSubscribe(config.subTopic, config.qos, config.protocolVersion));
  const suback = decodePacket(await reply, config.protocolVersion) as ISubackPacket;
  const granted = suback.granted[0];
  if (suback.cmd !== 'suback' || typeof granted !== 'number' || granted >= 0x80) throw new Error(`SUBACK refused ${config.subTopic}: ${JSON.stringify(suback.granted)}`);
  const seen = new SeenSet();
  const v5 = config.protocolVersion === 5;
  connection.onFrame = (firstByte, buffer, bodyStart, bodyEnd) => {
    const type = firstByte >> 4;
    if (type === 3) {
      const qos = (firstByte >> 1) & 3;
      let at = bodyStart + 2 + buffer.readUInt16BE(bodyStart);
      let packetId = 0;
      if (qos > 0) {
        packetId = buffer.readUInt16BE(at);
        at += 2;
      }
      if (v5) {
        const [propertiesLength, next] = readVarint(buffer, at);
        at = next + propertiesLength;
      }
      const now = connection.chunkTime;
      counters.delivered += 1;
      if (now >= measureStart && now < measureEnd) counters.deliveredInWindow += 1;
      if (bodyEnd - at >= PAYLOAD_HEADER_BYTES) {
        const sentAt = buffer.readDoubleBE(at);
        const publisher = buffer.readUInt32BE(at + 8);
        if (publisher >= publisherCount) counters.foreign += 1;
        else if (sentAt >= measureStart && sentAt < measureEnd) {
          if (seen.firstTime(publisher, buffer.readUInt32BE(at + 12))) {
            counters.measuredUnique += 1;
            recordLatency(now - sentAt);
          } else counters.duplicates += 1;
        }
      } else counters.foreign += 1;
      if (qos === 1) connection.queueAck(0x40, packetId);
      else if (qos === 2) connection.queueAck(0x50, packetId);
    } else if (type === 6) {
      connection.queueAck(0x70, buffer.readUInt16BE(bodyStart));
    } else if (type === 14) {
      reportError(`${connection.clientId}: DISCONNECT from the broker`);
    }
  };
  return connection;
}

class Publisher {
  private seq = 0;
  private nextPacketId = 1;
  inflight = 0;
  private blocked = false;
  private stopped = false;
  private done = false;
  sentMeasured = 0;
  sent = 0;
  private readonly window: number;
  /**
   * Free window slots that trigger a refill at full speed. Refilling on every ack would write
   * a packet or two per read (the broker acks one by one); waiting for a quarter of the window
   * keeps writes batched while the window stays at least three quarters full.
   */
  private readonly refillAt: number;
  private readonly template: PublishTemplate;
  readonly matching: boolean;

  constructor(
    readonly index: number,
    readonly connection: Connection,
  ) {
    const topic = publisherTopic(config.topic, index);
    this.template = publishTemplate(topic, config.qos, config.size, config.protocolVersion);
    this.matching = topicMatches(config.subTopic, topic);
    this.window = Math.max(1, Math.min(config.inflight, connection.receiveMaximum));
    this.refillAt = Math.max(1, Math.floor(this.window / 4));
    connection.onFrame = (firstByte, buffer, bodyStart, bodyEnd) => this.onFrame(firstByte, buffer, bodyStart, bodyEnd);
    connection.afterChunk = () => {
      if (config.ratePerPublisher === 0 && config.qos > 0 && this.window - this.inflight >= this.refillAt) this.fill();
      this.checkDone();
    };
    connection.onClosed = () => {
      this.stopped = true;
      this.inflight = 0;
      this.checkDone();
    };
  }

  get isDone(): boolean {
    return this.done;
  }

  private onFrame(firstByte: number, buffer: Buffer, bodyStart: number, bodyEnd: number): void {
    const type = firstByte >> 4;
    const failed = bodyEnd - bodyStart > 2 && (buffer[bodyStart + 2] as number) >= 0x80;
    if (type === 4 || type === 7) {
      this.inflight -= 1;
      if (failed) counters.refused += 1;
      else counters.completed += 1;
    } else if (type === 5) {
      if (failed) {
        this.inflight -= 1;
        counters.refused += 1;
      } else this.connection.queueAck(0x62, buffer.readUInt16BE(bodyStart));
    } else if (type === 14) {
      reportError(`${this.connection.clientId}: DISCONNECT from the broker`);
    }
  }

  /** Writes `count` publishes as one buffer; false when the socket wants a pause or the window closed. */
  private burst(count: number): boolean {
    const now = wallNow();
    if (now >= measureEnd) {
      this.stop();
      return false;
    }
    const bytes = encodePublishes(this.template, count, this.index, this.seq, this.nextPacketId, now);
    this.seq += count;
    this.sent += count;
    if (config.qos > 0) {
      this.inflight += count;
      this.nextPacketId = ((this.nextPacketId - 1 + count) % MAX_PACKET_ID) + 1;
    }
    if (now >= measureStart) this.sentMeasured += count;
    return this.connection.write(bytes);
  }

  start(): void {
    if (config.ratePerPublisher > 0) return; // the rate ticker drives it
    if (config.qos > 0) this.fill();
    else this.pump();
  }

  /** QoS 1/2 as fast as possible: top the window up. */
  private fill(): void {
    if (this.stopped) return;
    let room = this.window - this.inflight;
    while (room > 0 && !this.stopped) {
      const count = Math.min(room, this.template.maxBatch);
      this.burst(count);
      room -= count;
    }
  }

  /** QoS 0 as fast as possible: write until the socket pushes back, then wait for drain. */
  private readonly pump = (): void => {
    if (this.stopped || this.blocked || this.connection.closed) return;
    for (let turn = 0; turn < BURSTS_PER_TURN; turn += 1) {
      if (!this.burst(this.template.maxBatch)) {
        if (!this.stopped) this.waitForDrain(this.pump);
        return;
      }
    }
    setImmediate(this.pump);
  };

  private waitForDrain(then: () => void): void {
    this.blocked = true;
    this.connection.socket.once('drain', () => {
      this.blocked = false;
      then();
    });
  }

  /** Rate-limited: send what is due by now, within the window or the socket's buffer. */
  tick(now: number, startAt: number): void {
    if (this.stopped || this.blocked || this.connection.closed) return;
    let due = Math.floor(((now - startAt) * config.ratePerPublisher) / 1000) - this.seq;
    if (config.qos > 0) due = Math.min(due, this.window - this.inflight);
    while (due > 0 && !this.stopped) {
      const count = Math.min(due, this.template.maxBatch);
      due -= count;
      if (!this.burst(count) && config.qos === 0 && !this.stopped) {
        this.waitForDrain(() => undefined);
        return;
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.checkDone();
  }

  private checkDone(): void {
    if (!this.done && this.stopped && this.inflight <= 0) this.done = true;
  }
}

function stats(): WorkerStats {
  let sent = 0;
  let sentMeasured = 0;
  let sentMeasuredMatching = 0;
  let sentMatching = 0;
  let inflight = 0;
  for (const publisher of publishers) {
    sent += publisher.sent;
    sentMeasured += publisher.sentMeasured;
    if (publisher.matching) sentMeasuredMatching += publisher.sentMeasured;
    if (publisher.matching) sentMatching += publisher.sent;
    inflight += Math.max(0, publisher.inflight);
  }
  if (cpuAtWindowStart !== null && !windowCpuFinal) {
    const used = process.cpuUsage(cpuAtWindowStart);
    windowCpu = { userUs: used.user, systemUs: used.system };
    if (loopAtWindowStart !== null) windowLoopBusy = performance.eventLoopUtilization(loopAtWindowStart).utilization;
  }
  const samples = latencies.slice(0, latencyCount);
  latencyCount = 0;
  return {
    sent,
    sentMeasured,
    sentMeasuredMatching,
    sentMatching,
    completed: counters.completed,
    refused: counters.refused,
    inflight,
    publishersDone: loadWindow !== null && publishers.every((publisher) => publisher.isDone),
    delivered: counters.delivered,
    deliveredInWindow: counters.deliveredInWindow,
    measuredUnique: counters.measuredUnique,
    duplicates: counters.duplicates,
    foreign: counters.foreign,
    latenciesNs: samples,
    windowCpu,
    windowLoopBusy,
    errors: errors.splice(0),
    errorCount,
  };
}

async function connectRole(role: Role): Promise<number> {
  const indexes = role === 'idle' ? assignment.idle : role === 'sub' ? assignment.subscribers : assignment.publishers;
  const publisherCount = assignment.publisherTotal;
  let next = 0;
  const lanes = Array.from({ length: Math.min(config.connectConcurrency, indexes.length) }, async () => {
    while (next < indexes.length) {
      const index = indexes[next] as number;
      next += 1;
      if (role === 'sub') {
        connections.push(await openSubscriber(index, publisherCount));
      } else {
        const connection = new Connection(clientId(role, index));
        connections.push(connection);
        await connection.open();
        if (role === 'pub') publishers.push(new Publisher(index, connection));
      }
    }
  });
  await Promise.all(lanes);
  return indexes.length;
}

function startLoad(window: LoadWindow): void {
  loadWindow = window;
  measureStart = window.measureStart;
  measureEnd = window.measureEnd;
  const at = (time: number, action: () => void): void => {
    timers.push(setTimeout(action, Math.max(0, time - wallNow())));
  };
  at(window.startAt, () => {
    for (const publisher of publishers) publisher.start();
    if (config.ratePerPublisher > 0 && publishers.length > 0) {
      timers.push(
        setInterval(() => {
          const now = wallNow();
          for (const publisher of publishers) publisher.tick(now, window.startAt);
        }, RATE_TICK_MS),
      );
    }
  });
  at(window.measureStart, () => {
    cpuAtWindowStart = process.cpuUsage();
    loopAtWindowStart = performance.eventLoopUtilization();
  });
  at(window.measureEnd, () => {
    if (cpuAtWindowStart !== null) {
      const used = process.cpuUsage(cpuAtWindowStart);
      windowCpu = { userUs: used.user, systemUs: used.system };
      windowCpuFinal = true;
    }
    if (loopAtWindowStart !== null) windowLoopBusy = performance.eventLoopUtilization(loopAtWindowStart).utilization;
    for (const publisher of publishers) publisher.stop();
  });
  timers.push(setInterval(() => send({ type: 'stats', stats: stats() }), STATS_INTERVAL_MS));
}

async function finish(): Promise<void> {
  finishing = true;
  for (const timer of timers) clearTimeout(timer);
  for (const publisher of publishers) publisher.stop();
  await Promise.all(connections.map((connection) => connection.close()));
  send({ type: 'final', stats: stats() }, () => process.exit(0));
}

function keepAlive(): void {
  const intervalMs = (config.keepaliveSeconds * 1000) / 2;
  if (intervalMs <= 0) return;
  timers.push(
    setInterval(() => {
      const now = wallNow();
      for (const connection of connections) {
        if (!connection.closed && now - connection.lastWriteAt >= intervalMs) connection.write(PINGREQ);
      }
    }, Math.min(intervalMs, 5000)),
  );
}

function fatal(error: unknown): void {
  send({ type: 'fatal', message: (error as Error)?.message ?? String(error) }, () => process.exit(1));
}

process.on('message', (message: CoordinatorMessage) => {
  switch (message.type) {
    case 'setup':
      config = message.config;
      assignment = message.assignment;
      keepAlive();
      break;
    case 'connect': {
      const started = performance.now();
      connectRole(message.role).then(
        (count) => send({ type: 'connected', role: message.role, count, ms: performance.now() - started }),
        (error: unknown) => fatal(new Error(`connecting ${message.role} clients to ${config.host}:${config.port}: ${(error as Error).message}`)),
      );
      break;
    }
    case 'start':
      startLoad(message.window);
      break;
    case 'finish':
      finish().catch(fatal);
      break;
  }
});
// The coordinator going away (killed, interrupted) ends the worker too.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', fatal);
send({ type: 'ready' });
