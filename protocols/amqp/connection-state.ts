// One AMQP 0-9-1 connection's state machine, pure: bytes in, bytes out through the host, no
// socket, no timer of its own (the host's `timers` are injected, so tests drive time by hand).
//
// Served here: the protocol header (a wrong one gets ours back and the socket closes),
// connection.start / start-ok with PLAIN and AMQPLAIN checked by the node's authenticator (the
// MQTT users), tune / tune-ok (channel-max, frame-max of at least 8192, heartbeat), open of
// virtual host "/", heartbeats both ways, channel.open / close, the close handshakes, and each
// open channel's content reassembly. The exchange, queue, basic and confirm methods go to the
// host's broker session (broker/session.ts); every other method is answered with 540
// NOT_IMPLEMENTED naming it (docs/amqp.md).
import type { Logger } from 'pino';
import type { AuthOutcome, AuthRequest, ClientIdentity } from '../../engine/index.js';
import type { Refusal } from '../listener/index.js';
import { Reader } from './codec/bytes.js';
import { ChannelAssembler, closeMethodFor, encodeCommand, encodeMethodFrame, type BasicProperties, type Command } from './codec/content.js';
import { AmqpCodecError } from './codec/errors.js';
import { fieldTable, longstrValue, readFieldTable, type FieldTable, type FieldValue } from './codec/field-table.js';
import { FrameSplitter, FrameType, HEARTBEAT_FRAME, INITIAL_FRAME_MAX, type Frame } from './codec/frames.js';
import { decodeMethodPayload, methodIds, type AmqpMethod } from './codec/methods.js';
import { checkProtocolHeader, PROTOCOL_HEADER } from './codec/protocol-header.js';
import { ReplyCodes, type ReplyCode } from './codec/reply-codes.js';
import { METHOD_BY_NAME } from './codec/spec.js';

/** The smallest frame-max a client may negotiate (RabbitMQ 4.1's, rabbitmq-server#13541). */
export const MIN_FRAME_MAX = INITIAL_FRAME_MAX;

/** What the server proposes in connection.tune (RabbitMQ's defaults). */
export interface AmqpTuning {
  /** Highest channel number; 1-65535. */
  channelMax: number;
  /** Largest frame in bytes, header and frame-end included; at least 8192. */
  frameMax: number;
  /** Seconds; 0: the server proposes none (the client's choice stands). */
  heartbeat: number;
}

export const DEFAULT_AMQP_TUNING: Readonly<AmqpTuning> = { channelMax: 2047, frameMax: 131_072, heartbeat: 60 };

/** Timers, injected: the socket glue gives real ones, tests a manual clock. */
export interface AmqpTimers {
  /** Runs `run` once after `ms`; the returned function cancels it. */
  after(ms: number, run: () => void): () => void;
  /** Runs `run` every `ms`; the returned function cancels it. */
  every(ms: number, run: () => void): () => void;
}

/** What the connection needs from its socket and the node. */
export interface AmqpConnectionHost {
  send(bytes: Buffer): void;
  /** Flush what was sent and close the socket. */
  close(): void;
  readonly remoteAddress: string;
  readonly timers: AmqpTimers;
  readonly logger: Logger;
  /** The node's authenticator (the same users as MQTT). */
  authenticate(request: AuthRequest): Promise<AuthOutcome>;
  /**
   * A seat under max-connections (shared with MQTT): undefined when taken, else why not. Taken
   * at start-ok, released once by `release` when the connection ends. Absent: no limit.
   */
  seats?: { take(): string | undefined; release(): void };
  /** The broker, when exchanges, queues and messages are served; absent: those methods are 540. */
  openSession?(host: AmqpSessionHost): AmqpSessionPort;
  /** Whether the socket takes more deliveries now; false pauses them until `onDrain`. Absent: always. */
  writable?(): boolean;
  /**
   * Stop (true) or go on (false) reading the socket: a publishing connection is not read while
   * the node is blocked (connection.blocked, RabbitMQ's flow under a resource alarm).
   */
  pauseReading?(paused: boolean): void;
}

/** What the connection gives its broker session. */
export interface AmqpSessionHost {
  readonly connectionId: string;
  readonly cancelNotify: boolean;
  /** Who the client is to the access policy (the authenticated user, its connection name as client id). */
  readonly identity: ClientIdentity;
  sendMethod(channel: number, method: AmqpMethod): void;
  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Buffer): void;
  closeChannel(channel: number, error: AmqpCodecError): void;
  writable(): boolean;
}

/** A connection's broker session (broker/session.ts's AmqpSession). */
export interface AmqpSessionPort {
  command(channel: number, command: Command): void;
  channelClosed(channel: number): void;
  closed(): void;
  resume(): void;
}

export interface AmqpConnectionOptions {
  tuning?: AmqpTuning;
  /** How long a client has from the socket's accept to connection.open (MQTT's connect timeout). */
  handshakeTimeoutMs: number;
  /** The abuse gate's verdict at accept: refused at start-ok when set. */
  refusal?: Refusal | undefined;
  /** server-properties version. */
  version: string;
  /** The methods the session serves (SESSION_METHODS); others are 540. */
  sessionMethods?: ReadonlySet<string>;
  /** The largest message body accepted; a larger one is refused 406 on its channel. */
  maxBodySize?: number;
}

let connectionCount = 0;

type Phase =
  | 'header' // waiting for the 8-byte protocol header
  | 'start-ok' // connection.start sent
  | 'authenticating' // start-ok received, the authenticator is working
  | 'tune-ok' // connection.tune sent
  | 'open' // tune-ok received, waiting for connection.open
  | 'running' // open-ok sent
  | 'closing' // connection.close sent, waiting for close-ok
  | 'closed';

type ChannelState = 'open' | 'closing';

/** How long the server waits for connection.close-ok after its connection.close. */
export const CLOSE_OK_TIMEOUT_MS = 2000;
/** Frames a client may send while its credentials are checked before it is refused. */
const MAX_PENDING_FRAMES = 16;

/** Methods this slice answers; every other one is 540 not-implemented. */
const SERVED = new Set(['connection.start-ok', 'connection.tune-ok', 'connection.open', 'connection.close', 'connection.close-ok', 'channel.open', 'channel.close', 'channel.close-ok']);

export const SERVER_MECHANISMS = ['PLAIN', 'AMQPLAIN'] as const;

/** The server-properties table of connection.start. */
export function serverProperties(version: string): FieldTable {
  const capability = { type: 'bool', value: true } as const;
  const capabilities: FieldTable = fieldTable({
    publisher_confirms: capability,
    'basic.nack': capability,
    consumer_cancel_notify: capability,
    exchange_exchange_bindings: capability,
    'connection.blocked': capability,
    authentication_failure_close: capability,
    per_consumer_qos: capability,
  });
  return fieldTable({
    product: longstrValue('Shardline'),
    version: longstrValue(version),
    platform: longstrValue(`Node.js ${process.version}`),
    information: longstrValue('AMQP 0-9-1 preview; see docs/amqp.md'),
    capabilities: { type: 'table', value: capabilities },
  });
}

/** An AMQP connection refusal: the reply code and text to close with. */
function refusal(code: ReplyCode, text: string, method?: string): AmqpCodecError {
  const ids = method === undefined ? {} : methodIds(method as AmqpMethod['name']);
  return new AmqpCodecError(code, text, ids);
}

export class AmqpConnectionState {
  #phase: Phase = 'header';
  #header = Buffer.alloc(0);
  readonly #splitter = new FrameSplitter();
  readonly #tuning: AmqpTuning;
  #channelMax = 0;
  #heartbeat = 0;
  readonly #channels = new Map<number, ChannelState>();
  #pending: Frame[] = [];
  #cancels: Array<() => void> = [];
  #handshakeTimer: (() => void) | undefined;
  #received = false;
  #sent = false;
  #missed = 0;
  #username: string | undefined;
  #clientId = '';
  #attributes: Readonly<Record<string, unknown>> | undefined;
  #seated = false;
  readonly #assemblers = new Map<number, ChannelAssembler>();
  #session: AmqpSessionPort | undefined;
  #cancelNotify = false;
  #frameMax = INITIAL_FRAME_MAX;
  readonly #id = `amqp-${(connectionCount += 1)}`;
  /** Why the node is blocked now (a resource alarm), or undefined. */
  #blockedReason: string | undefined;
  /** Whether the client announced the connection.blocked capability. */
  #blockedNotify = false;
  /** Whether the client has published: only publishing connections stop being read when blocked. */
  #publisher = false;
  #readingPaused = false;
  /** Whether connection.blocked was sent and connection.unblocked not yet. */
  #toldBlocked = false;

  constructor(
    private readonly host: AmqpConnectionHost,
    private readonly options: AmqpConnectionOptions,
  ) {
    this.#tuning = options.tuning ?? DEFAULT_AMQP_TUNING;
    this.#handshakeTimer = host.timers.after(options.handshakeTimeoutMs, () => this.#handshakeTimedOut());
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The negotiated heartbeat in seconds (0: none), once tune-ok arrived. */
  get heartbeat(): number {
    return this.#heartbeat;
  }

  get channelMax(): number {
    return this.#channelMax;
  }

  get openChannels(): number {
    return this.#channels.size;
  }

  get username(): string | undefined {
    return this.#username;
  }

  /** The connection's id on this node (admin API, owner of its exclusive queues). */
  get id(): string {
    return this.#id;
  }

  get remoteAddress(): string {
    return this.host.remoteAddress;
  }

  /** Whether the socket is not being read because the node is blocked and this connection publishes. */
  get readingPaused(): boolean {
    return this.#readingPaused;
  }

  /**
   * The node's resource alarm rose (a reason) or cleared (undefined). As RabbitMQ does, only a
   * publishing connection is blocked: once it has published (or when it first publishes during
   * the alarm) it is told connection.blocked, if it announced the capability, and its socket is
   * not read until the alarm clears (connection.unblocked), so its publishes wait in the socket.
   * Connections that only consume go on (their acknowledgements are what frees memory).
   */
  setBlocked(reason: string | undefined): void {
    if (reason === this.#blockedReason) return;
    this.#blockedReason = reason;
    this.#updateReading();
  }

  /** An operator's close (admin API): connection.close 320 CONNECTION_FORCED with `text`. */
  forceClose(text: string): void {
    if (this.#phase === 'running') this.#fail(refusal(ReplyCodes.connectionForced, text));
    else this.#end();
  }

  #updateReading(): void {
    const paused = this.#blockedReason !== undefined && this.#publisher && this.#phase === 'running';
    if (paused && !this.#toldBlocked && this.#blockedNotify) {
      this.#toldBlocked = true;
      this.#sendMethod(0, { name: 'connection.blocked', args: { reason: this.#blockedReason as string } });
    } else if (!paused && this.#toldBlocked && this.#phase === 'running') {
      this.#toldBlocked = false;
      this.#sendMethod(0, { name: 'connection.unblocked', args: {} });
    }
    if (paused === this.#readingPaused) return;
    this.#readingPaused = paused;
    this.host.pauseReading?.(paused);
  }

  /** Bytes from the peer. */
  onData(chunk: Buffer): void {
    if (this.#phase === 'closed') return;
    this.#received = true;
    if (this.#phase === 'header') {
      this.#header = Buffer.concat([this.#header, chunk]);
      const check = checkProtocolHeader(this.#header);
      if (check.kind === 'incomplete') return;
      if (check.kind === 'wrong') {
        this.host.logger.debug({ remote: this.host.remoteAddress, reason: check.reason, version: check.version }, 'AMQP: wrong protocol header');
        this.#send(check.reply);
        this.#end();
        return;
      }
      chunk = this.#header.subarray(PROTOCOL_HEADER.length);
      this.#header = Buffer.alloc(0);
      this.#sendMethod(0, {
        name: 'connection.start',
        args: { versionMajor: 0, versionMinor: 9, serverProperties: serverProperties(this.options.version), mechanisms: new TextEncoder().encode(SERVER_MECHANISMS.join(' ')), locales: new TextEncoder().encode('en_US') },
      });
      this.#phase = 'start-ok';
      if (chunk.length === 0) return;
    }
    const { frames, error } = this.#splitter.push(chunk);
    for (const frame of frames) {
      if ((this.#phase as Phase) === 'closed') return;
      if (this.#phase === 'authenticating') {
        if (this.#pending.length >= MAX_PENDING_FRAMES) {
          this.#fail(refusal(ReplyCodes.unexpectedFrame, 'frames sent before connection.tune'));
          return;
        }
        this.#pending.push({ type: frame.type, channel: frame.channel, payload: Buffer.from(frame.payload) });
        continue;
      }
      this.#frame(frame);
    }
    if (error !== undefined && (this.#phase as Phase) !== 'closed') this.#fail(error);
  }

  /** The socket closed (either side): timers stop. */
  onClosed(): void {
    this.#phase = 'closed';
    this.#stopTimers();
  }

  /** The socket has room again: paused deliveries go on. */
  onDrain(): void {
    this.#session?.resume();
  }

  #frame(frame: Frame): void {
    try {
      this.#handleFrame(frame);
    } catch (error) {
      if (!(error instanceof AmqpCodecError)) throw error;
      this.#fail(error);
    }
  }

  #handleFrame(frame: Frame): void {
    if (frame.type === FrameType.heartbeat) return;
    if (this.#phase === 'closing') {
      // After connection.close only close and close-ok count (spec 4.2.6... "discard").
      if (frame.channel === 0 && frame.type === FrameType.method) {
        const method = decodeMethodPayload(frame.payload);
        if (method.name === 'connection.close-ok' || method.name === 'connection.close') {
          if (method.name === 'connection.close') this.#sendMethod(0, { name: 'connection.close-ok', args: {} });
          this.#end();
        }
      }
      return;
    }
    if (frame.channel === 0) {
      if (frame.type !== FrameType.method) throw refusal(ReplyCodes.unexpectedFrame, `a content ${frame.type === FrameType.header ? 'header' : 'body'} frame on channel 0`);
      this.#connectionMethod(decodeMethodPayload(frame.payload));
      return;
    }
    if (this.#phase !== 'running') throw refusal(ReplyCodes.commandInvalid, `a frame on channel ${frame.channel} before connection.open-ok`);
    if (frame.channel > this.#channelMax) throw refusal(ReplyCodes.channelError, `channel ${frame.channel} is above channel-max ${this.#channelMax}`);
    const state = this.#channels.get(frame.channel);
    const assembler = this.#assemblers.get(frame.channel);
    if (state === 'open' && assembler !== undefined) {
      let command: Command | undefined;
      try {
        command = assembler.push(frame);
      } catch (error) {
        // A body over the size limit is the channel's fault (406); framing errors are the connection's.
        if (error instanceof AmqpCodecError && error.scope === 'channel') {
          this.#closeChannel(frame.channel, error);
          return;
        }
        throw error;
      }
      if (command !== undefined) this.#channelMethod(frame.channel, command.method, command);
      return;
    }
    if (frame.type !== FrameType.method) {
      // After channel.close, the rest of a content the client had started is dropped.
      if (state === 'closing') return;
      throw refusal(ReplyCodes.unexpectedFrame, `a content ${frame.type === FrameType.header ? 'header' : 'body'} frame on channel ${frame.channel} where a method was expected`);
    }
    this.#channelMethod(frame.channel, decodeMethodPayload(frame.payload));
  }

  #connectionMethod(method: AmqpMethod): void {
    if (method.name === 'connection.close') {
      this.host.logger.debug({ remote: this.host.remoteAddress, replyCode: method.args.replyCode, replyText: method.args.replyText }, 'AMQP: client closed the connection');
      this.#sendMethod(0, { name: 'connection.close-ok', args: {} });
      this.#end();
      return;
    }
    const expected = { 'start-ok': 'connection.start-ok', 'tune-ok': 'connection.tune-ok', open: 'connection.open' } as const;
    const phase = this.#phase;
    if (phase === 'start-ok' || phase === 'tune-ok' || phase === 'open') {
      if (method.name !== expected[phase]) throw refusal(ReplyCodes.commandInvalid, `expected ${expected[phase]}, got ${method.name}`, method.name);
    } else if (SERVED.has(method.name) && method.name.startsWith('connection.')) {
      throw refusal(ReplyCodes.commandInvalid, `unexpected ${method.name} on an open connection`, method.name);
    }
    switch (method.name) {
      case 'connection.start-ok':
        this.#startOk(method.args);
        return;
      case 'connection.tune-ok':
        this.#tuneOk(method.args);
        return;
      case 'connection.open':
        this.#open(method.args.virtualHost);
        return;
      default:
        break;
    }
    const def = METHOD_BY_NAME.get(method.name);
    if (def !== undefined && def.classId !== 10) throw refusal(ReplyCodes.channelError, `${method.name} on channel 0, which carries only connection methods`, method.name);
    if (SERVED.has(method.name)) throw refusal(ReplyCodes.commandInvalid, `unexpected ${method.name}`, method.name);
    throw notImplemented(method.name);
  }

  #startOk(args: Extract<AmqpMethod, { name: 'connection.start-ok' }>['args']): void {
    const credentials = saslCredentials(args.mechanism, args.response);
    const capabilities = args.clientProperties.get('capabilities');
    const notify = capabilities?.type === 'table' ? capabilities.value.get('consumer_cancel_notify') : undefined;
    this.#cancelNotify = notify?.type === 'bool' && notify.value;
    const blocked = capabilities?.type === 'table' ? capabilities.value.get('connection.blocked') : undefined;
    this.#blockedNotify = blocked?.type === 'bool' && blocked.value;
    const connectionName = clientPropertyText(args.clientProperties, 'connection_name');
    if (this.options.refusal !== undefined) {
      this.host.logger.info({ remote: this.host.remoteAddress, refusal: this.options.refusal }, 'AMQP connection refused by the abuse limits');
      this.#fail(refusal(ReplyCodes.notAllowed, `connection refused: ${this.options.refusal.detail}`, 'connection.start-ok'));
      return;
    }
    const full = this.host.seats?.take();
    if (full !== undefined) {
      this.#fail(refusal(ReplyCodes.notAllowed, full, 'connection.start-ok'));
      return;
    }
    this.#seated = this.host.seats !== undefined;
    this.#phase = 'authenticating';
    const request: AuthRequest = {
      clientId: connectionName ?? `amqp:${this.host.remoteAddress}`,
      username: credentials.username,
      password: Buffer.from(credentials.password, 'utf8'),
      remoteAddress: this.host.remoteAddress,
      certificateName: undefined,
    };
    this.#clientId = request.clientId;
    this.host.authenticate(request).then(
      (outcome) => this.#authenticated(outcome, args.mechanism, credentials.username),
      (error: unknown) => {
        this.host.logger.error({ err: error, remote: this.host.remoteAddress }, 'AMQP: authentication failed with an error');
        this.#authenticated({ ok: false, reason: 'not-authorized', detail: 'authentication error' }, args.mechanism, credentials.username);
      },
    );
  }

  #authenticated(outcome: AuthOutcome, mechanism: string, username: string): void {
    if (this.#phase !== 'authenticating') return;
    if (outcome.ok !== true) {
      // authentication_failure_close: the client is told with 403 before the socket closes.
      this.#phase = 'start-ok';
      this.#pending = [];
      this.#fail(refusal(ReplyCodes.accessRefused, `Login was refused using authentication mechanism ${mechanism}`, 'connection.start-ok'));
      return;
    }
    this.#username = outcome.username ?? username;
    this.#attributes = outcome.attributes;
    this.#openSession();
    const { channelMax, frameMax, heartbeat } = this.#tuning;
    this.#sendMethod(0, { name: 'connection.tune', args: { channelMax, frameMax, heartbeat } });
    this.#phase = 'tune-ok';
    for (const frame of this.#pending.splice(0)) {
      if ((this.#phase as Phase) === 'closed' || (this.#phase as Phase) === 'closing') break;
      this.#frame(frame);
    }
  }

  #tuneOk(args: Extract<AmqpMethod, { name: 'connection.tune-ok' }>['args']): void {
    const tuning = this.#tuning;
    if (args.channelMax > tuning.channelMax) throw refusal(ReplyCodes.notAllowed, `negotiated channel_max = ${args.channelMax} is higher than the maximum allowed value (${tuning.channelMax})`, 'connection.tune-ok');
    if (args.frameMax !== 0 && args.frameMax < MIN_FRAME_MAX) throw refusal(ReplyCodes.notAllowed, `frame_max=${args.frameMax} < ${MIN_FRAME_MAX} min size`, 'connection.tune-ok');
    if (args.frameMax > tuning.frameMax) throw refusal(ReplyCodes.notAllowed, `frame_max=${args.frameMax} > ${tuning.frameMax} max size`, 'connection.tune-ok');
    this.#channelMax = args.channelMax === 0 ? tuning.channelMax : args.channelMax;
    this.#frameMax = args.frameMax === 0 ? tuning.frameMax : args.frameMax;
    this.#splitter.setFrameMax(this.#frameMax);
    this.#heartbeat = args.heartbeat;
    this.#phase = 'open';
    if (args.heartbeat > 0) this.#startHeartbeats(args.heartbeat * 1000);
  }

  #open(virtualHost: string): void {
    if (virtualHost !== '/') throw refusal(ReplyCodes.notAllowed, `vhost ${virtualHost} not found (this server has one virtual host, "/")`, 'connection.open');
    this.#sendMethod(0, { name: 'connection.open-ok', args: { knownHosts: '' } });
    this.#phase = 'running';
    this.#handshakeTimer?.();
    this.#handshakeTimer = undefined;
    this.host.logger.debug({ remote: this.host.remoteAddress, username: this.#username, heartbeat: this.#heartbeat, channelMax: this.#channelMax }, 'AMQP connection open');
  }

  #channelMethod(channel: number, method: AmqpMethod, command?: Command): void {
    const state = this.#channels.get(channel);
    if (state === undefined) {
      if (method.name === 'channel.open') {
        this.#channels.set(channel, 'open');
        if (this.#session !== undefined) this.#assemblers.set(channel, new ChannelAssembler(channel, this.options.maxBodySize === undefined ? {} : { maxBodySize: this.options.maxBodySize }));
        this.#sendMethod(channel, { name: 'channel.open-ok', args: { channelId: new Uint8Array(0) } });
        return;
      }
      throw refusal(ReplyCodes.channelError, `expected 'channel.open' on channel ${channel}, got ${method.name}`, method.name);
    }
    if (state === 'closing') {
      // After channel.close, the channel drops everything but close and close-ok.
      if (method.name === 'channel.close-ok') {
        this.#channels.delete(channel);
        this.#assemblers.delete(channel);
      } else if (method.name === 'channel.close') this.#sendMethod(channel, { name: 'channel.close-ok', args: {} });
      return;
    }
    switch (method.name) {
      case 'channel.open':
        throw refusal(ReplyCodes.channelError, `second 'channel.open' seen on channel ${channel}`, method.name);
      case 'channel.close':
        this.#channels.delete(channel);
        this.#assemblers.delete(channel);
        this.#session?.channelClosed(channel);
        this.#sendMethod(channel, { name: 'channel.close-ok', args: {} });
        return;
      case 'channel.close-ok':
        throw refusal(ReplyCodes.channelError, `channel.close-ok on channel ${channel}, which the server did not close`, method.name);
      default: {
        const def = METHOD_BY_NAME.get(method.name);
        if (def !== undefined && def.classId === 10) throw refusal(ReplyCodes.channelError, `${method.name} on channel ${channel}; connection methods go on channel 0`, method.name);
        if (this.#session !== undefined && this.options.sessionMethods?.has(method.name) === true) {
          if (method.name === 'basic.publish' && !this.#publisher) {
            this.#publisher = true;
            this.#updateReading();
          }
          this.#session.command(channel, command ?? { channel, method });
          return;
        }
        // Not built yet: only this channel closes, so the client's call fails with the reason
        // and its other channels stay (the spec lists 540 as a connection exception; docs/amqp.md).
        this.#closeChannel(channel, notImplemented(method.name));
      }
    }
  }

  /** A channel exception: channel.close on it, then everything but close / close-ok is dropped. */
  #closeChannel(channel: number, error: AmqpCodecError): void {
    this.host.logger.debug({ remote: this.host.remoteAddress, channel, replyCode: error.replyCode, replyText: error.replyText }, 'AMQP: closing a channel');
    const { args } = closeMethodFor(error) as Extract<AmqpMethod, { name: 'connection.close' }>;
    this.#channels.set(channel, 'closing');
    this.#assemblers.delete(channel);
    this.#session?.channelClosed(channel);
    this.#sendMethod(channel, { name: 'channel.close', args });
  }

  #startHeartbeats(intervalMs: number): void {
    // Send one when nothing else went out for half the interval; close after two intervals
    // with nothing received (the spec's and RabbitMQ's rule).
    this.#sent = false;
    this.#cancels.push(
      this.host.timers.every(Math.max(1, Math.floor(intervalMs / 2)), () => {
        if (!this.#sent) this.host.send(HEARTBEAT_FRAME);
        this.#sent = false;
      }),
    );
    this.#received = false;
    this.#missed = 0;
    this.#cancels.push(
      this.host.timers.every(intervalMs, () => {
        // A socket not read (blocked) cannot show the client's heartbeats: not a dead peer.
        if (this.#received || this.#readingPaused) {
          this.#received = false;
          this.#missed = 0;
          return;
        }
        this.#missed += 1;
        if (this.#missed >= 2) {
          this.host.logger.info({ remote: this.host.remoteAddress, heartbeat: this.#heartbeat }, 'AMQP: missed heartbeats from client, closing');
          this.#end();
        }
      }),
    );
  }

  #handshakeTimedOut(): void {
    this.#handshakeTimer = undefined;
    if (this.#phase === 'running' || this.#phase === 'closed') return;
    this.host.logger.info({ remote: this.host.remoteAddress, phase: this.#phase }, 'AMQP: handshake timed out, closing');
    this.#end();
  }

  /** A connection exception: connection.close with the code, then wait for close-ok. */
  #fail(error: AmqpCodecError): void {
    if (this.#phase === 'closed' || this.#phase === 'closing') return;
    this.host.logger.debug({ remote: this.host.remoteAddress, replyCode: error.replyCode, replyText: error.replyText }, 'AMQP: closing the connection');
    if (this.#phase === 'header') {
      this.#end();
      return;
    }
    // Every refusal here is a connection exception: 403 at start-ok (authentication_failure_close)
    // is one too, though the reply-code table lists 403 for channels.
    const close = closeMethodFor(error);
    this.#sendMethod(0, { name: 'connection.close', args: close.args as Extract<AmqpMethod, { name: 'connection.close' }>['args'] });
    this.#phase = 'closing';
    this.#stopTimers();
    this.#cancels.push(this.host.timers.after(CLOSE_OK_TIMEOUT_MS, () => this.#end()));
  }

  #sendMethod(channel: number, method: AmqpMethod): void {
    this.#send(encodeMethodFrame(channel, method));
  }

  #send(bytes: Buffer): void {
    this.#sent = true;
    this.host.send(bytes);
  }

  #end(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#stopTimers();
    this.host.close();
  }

  #openSession(): void {
    const open = this.host.openSession;
    if (open === undefined) return;
    this.#session = open.call(this.host, {
      connectionId: this.#id,
      cancelNotify: this.#cancelNotify,
      identity: { clientId: this.#clientId, username: this.#username, remoteAddress: this.host.remoteAddress, protocol: 'amqp', ...(this.#attributes === undefined ? {} : { attributes: this.#attributes }) },
      sendMethod: (channel, method) => {
        if (this.#phase === 'running' && this.#channels.get(channel) === 'open') this.#sendMethod(channel, method);
      },
      sendContent: (channel, method, properties, body) => {
        if (this.#phase !== 'running' || this.#channels.get(channel) !== 'open') return;
        this.#send(encodeCommand(channel, method, properties, body, this.#frameMax));
      },
      closeChannel: (channel, error) => {
        if (this.#phase !== 'running') return;
        // 540 closes only the channel while the preview grows (docs/amqp.md); 530 and the
        // other connection exceptions close the connection, as the spec says.
        if (error.scope === 'connection' && error.replyCode !== ReplyCodes.notImplemented) this.#fail(error);
        else if (this.#channels.get(channel) === 'open') this.#closeChannel(channel, error);
      },
      writable: () => this.host.writable?.() ?? true,
    });
  }

  #stopTimers(): void {
    const session = this.#session;
    this.#session = undefined;
    session?.closed();
    if (this.#seated) {
      this.#seated = false;
      this.host.seats?.release();
    }
    for (const cancel of this.#cancels.splice(0)) cancel();
    this.#handshakeTimer?.();
    this.#handshakeTimer = undefined;
  }
}

function notImplemented(name: string): AmqpCodecError {
  return refusal(ReplyCodes.notImplemented, `${name} is not implemented yet by this server (AMQP preview, docs/amqp.md)`, name);
}

/** PLAIN ("authzid NUL authcid NUL passwd") or AMQPLAIN (a field table without its length: LOGIN, PASSWORD). */
export function saslCredentials(mechanism: string, response: Uint8Array): { username: string; password: string } {
  if (mechanism === 'PLAIN') {
    const text = Buffer.from(response).toString('utf8');
    const parts = text.split('\0');
    if (parts.length !== 3) throw refusal(ReplyCodes.accessRefused, 'PLAIN response is not authzid NUL authcid NUL password', 'connection.start-ok');
    return { username: parts[1] as string, password: parts[2] as string };
  }
  if (mechanism === 'AMQPLAIN') {
    const framed = Buffer.alloc(4 + response.length);
    framed.writeUInt32BE(response.length, 0);
    framed.set(response, 4);
    let table: FieldTable;
    try {
      table = readFieldTable(new Reader(framed));
    } catch (error) {
      if (error instanceof AmqpCodecError) throw refusal(ReplyCodes.accessRefused, `AMQPLAIN response is not a field table: ${error.message}`, 'connection.start-ok');
      throw error;
    }
    const username = fieldText(table.get('LOGIN'));
    const password = fieldText(table.get('PASSWORD'));
    if (username === undefined || password === undefined) throw refusal(ReplyCodes.accessRefused, 'AMQPLAIN response needs LOGIN and PASSWORD', 'connection.start-ok');
    return { username, password };
  }
  throw refusal(ReplyCodes.commandInvalid, `unknown authentication mechanism '${mechanism}' (this server offers ${SERVER_MECHANISMS.join(' ')})`, 'connection.start-ok');
}

function fieldText(value: FieldValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.type === 'longstr' || value.type === 'bytes') return Buffer.from(value.value).toString('utf8');
  return undefined;
}

function clientPropertyText(table: FieldTable, key: string): string | undefined {
  return fieldText(table.get(key));
}
