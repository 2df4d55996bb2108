// The connection state machine with no socket and hand-driven timers: heartbeats sent at half
// the interval when nothing else went out, the close after two silent intervals, the handshake
// timeout, frames that arrive while credentials are checked, the SASL responses, the abuse
// gate's refusal, and the refusals with their reply codes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { methodArb } from '../../property-tests/amqp-arbitraries.js';
import type { AuthOutcome, AuthRequest } from '../../engine/index.js';
import { encodeMethodFrame } from './codec/content.js';
import { encodeFrame, FrameSplitter, FrameType, HEARTBEAT_FRAME, type Frame } from './codec/frames.js';
import { decodeMethodPayload, type AmqpMethod } from './codec/methods.js';
import { PROTOCOL_HEADER } from './codec/protocol-header.js';
import { AmqpConnectionState, CLOSE_OK_TIMEOUT_MS, saslCredentials, type AmqpTimers } from './connection-state.js';
import { AmqpCodecError } from './codec/errors.js';

class ManualTimers implements AmqpTimers {
  now = 0;
  #next = 0;
  readonly #timers = new Map<number, { due: number; every: number; run: () => void }>();

  after(ms: number, run: () => void): () => void {
    return this.#add(ms, 0, run);
  }

  every(ms: number, run: () => void): () => void {
    return this.#add(ms, ms, run);
  }

  #add(ms: number, every: number, run: () => void): () => void {
    const id = this.#next++;
    this.#timers.set(id, { due: this.now + ms, every, run });
    return () => this.#timers.delete(id);
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, timer]) => timer.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (due === undefined) break;
      const [id, timer] = due;
      this.now = timer.due;
      if (timer.every > 0) timer.due += timer.every;
      else this.#timers.delete(id);
      timer.run();
    }
    this.now = end;
  }

  get pending(): number {
    return this.#timers.size;
  }
}

const encoder = new TextEncoder();

function harness(options: { authenticate?: (request: AuthRequest) => Promise<AuthOutcome>; refusal?: { kind: 'quota' | 'rate'; detail: string }; seats?: { free: number } } = {}) {
  const timers = new ManualTimers();
  const sent: Buffer[] = [];
  let closed = 0;
  const requests: AuthRequest[] = [];
  const connection = new AmqpConnectionState(
    {
      send: (bytes) => sent.push(bytes),
      close: () => (closed += 1),
      remoteAddress: '127.0.0.1:5',
      timers,
      logger: pino({ level: 'silent' }),
      authenticate: (request) => {
        requests.push(request);
        return options.authenticate?.(request) ?? Promise.resolve({ ok: true });
      },
      ...(options.seats === undefined
        ? {}
        : {
            seats: {
              take: () => (options.seats!.free > 0 ? ((options.seats!.free -= 1), undefined) : 'the broker is at its connection limit (1)'),
              release: () => (options.seats!.free += 1),
            },
          }),
    },
    { handshakeTimeoutMs: 10_000, version: '0.0.0-test', refusal: options.refusal },
  );
  const splitter = new FrameSplitter(1 << 20);
  const frames = (): Frame[] => {
    const all = splitter.push(Buffer.concat(sent.splice(0))).frames;
    return all.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) }));
  };
  const methods = (): AmqpMethod[] => frames().filter((frame) => frame.type === FrameType.method).map((frame) => decodeMethodPayload(frame.payload));
  const send = (channel: number, method: AmqpMethod): void => connection.onData(encodeMethodFrame(channel, method));
  return { timers, connection, sent, requests, frames, methods, send, closed: () => closed };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function openConnection(h: ReturnType<typeof harness>, heartbeat = 0): Promise<void> {
  h.connection.onData(PROTOCOL_HEADER);
  h.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0u\0p'), locale: 'en_US' } });
  await settle();
  h.send(0, { name: 'connection.tune-ok', args: { channelMax: 0, frameMax: 131072, heartbeat } });
  h.send(0, { name: 'connection.open', args: { virtualHost: '/', capabilities: '', insist: false } });
  assert.deepEqual(h.methods().map((method) => method.name), ['connection.start', 'connection.tune', 'connection.open-ok']);
  assert.equal(h.connection.phase, 'running');
}

describe('AMQP connection state machine', () => {
  it('sends a heartbeat at half the interval only when nothing else went out, and closes after two silent intervals', async () => {
    const h = harness();
    await openConnection(h, 10);
    assert.equal(h.connection.heartbeat, 10);
    h.timers.advance(5000);
    // Nothing went out since tune-ok? open-ok did, so the first tick stays quiet.
    assert.equal(h.frames().length, 0);
    h.timers.advance(5000);
    assert.deepEqual(h.frames().map((frame) => frame.type), [FrameType.heartbeat]);
    // Received is checked once an interval: the heartbeat at 10 s is seen at the 20 s check,
    // the checks at 30 s and 40 s find nothing, and the second silent one closes.
    h.connection.onData(HEARTBEAT_FRAME);
    h.timers.advance(20_000);
    assert.equal(h.closed(), 0, 'one silent interval is tolerated');
    h.timers.advance(9_999);
    assert.equal(h.closed(), 0);
    h.timers.advance(1);
    assert.equal(h.closed(), 1, 'two silent intervals close');
    assert.equal(h.timers.pending, 0, 'no timer left behind');
  });

  it('keeps a client that sends heartbeats', async () => {
    const h = harness();
    await openConnection(h, 2);
    for (let second = 0; second < 30; second += 1) {
      h.connection.onData(HEARTBEAT_FRAME);
      h.timers.advance(1000);
    }
    assert.equal(h.closed(), 0);
  });

  it('has no heartbeat timers when the client negotiates 0', async () => {
    const h = harness();
    await openConnection(h, 0);
    assert.equal(h.timers.pending, 0);
  });

  it('closes a client that does not finish the handshake in time', () => {
    const h = harness();
    h.connection.onData(PROTOCOL_HEADER.subarray(0, 4));
    h.timers.advance(9999);
    assert.equal(h.closed(), 0);
    h.connection.onData(PROTOCOL_HEADER.subarray(4));
    h.timers.advance(1);
    assert.equal(h.closed(), 1);
  });

  it('keeps frames that arrive while the credentials are checked and handles them after', async () => {
    let resolve!: (outcome: AuthOutcome) => void;
    const h = harness({ authenticate: () => new Promise((done) => (resolve = done)) });
    h.connection.onData(PROTOCOL_HEADER);
    const startOk = encodeMethodFrame(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0alice\0secret'), locale: 'en_US' } });
    const tuneOk = encodeMethodFrame(0, { name: 'connection.tune-ok', args: { channelMax: 0, frameMax: 131072, heartbeat: 0 } });
    h.connection.onData(Buffer.concat([startOk, tuneOk]));
    assert.equal(h.connection.phase, 'authenticating');
    assert.equal(h.requests[0]?.username, 'alice');
    assert.equal(h.requests[0]?.password?.toString(), 'secret');
    resolve({ ok: true });
    await settle();
    assert.equal(h.connection.phase, 'open');
  });

  it('refuses bad credentials with 403 and waits for close-ok', async () => {
    const h = harness({ authenticate: () => Promise.resolve({ ok: false, reason: 'bad-credentials' }) });
    h.connection.onData(PROTOCOL_HEADER);
    h.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0u\0p'), locale: 'en_US' } });
    await settle();
    const [, close] = h.methods();
    assert.equal(close?.name, 'connection.close');
    assert.equal((close as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 403);
    assert.equal(h.closed(), 0);
    h.send(0, { name: 'connection.close-ok', args: {} });
    assert.equal(h.closed(), 1);
  });

  it('closes by itself when close-ok never comes', async () => {
    const h = harness({ authenticate: () => Promise.resolve({ ok: false, reason: 'bad-credentials' }) });
    h.connection.onData(PROTOCOL_HEADER);
    h.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0u\0p'), locale: 'en_US' } });
    await settle();
    h.timers.advance(2000);
    assert.equal(h.closed(), 1);
  });

  it("refuses at start-ok a connection the abuse gate marked, with 530 and the gate's reason", () => {
    const h = harness({ refusal: { kind: 'rate', detail: 'too many connects from 127.0.0.1' } });
    h.connection.onData(PROTOCOL_HEADER);
    h.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0u\0p'), locale: 'en_US' } });
    const close = h.methods()[1] as Extract<AmqpMethod, { name: 'connection.close' }>;
    assert.equal(close.args.replyCode, 530);
    assert.match(close.args.replyText, /too many connects/);
    assert.equal(h.requests.length, 0, 'no credential work for a refused connection');
  });

  it('refuses an unknown mechanism with 503 and a start-ok out of turn with 503', async () => {
    const h = harness();
    h.connection.onData(PROTOCOL_HEADER);
    h.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'EXTERNAL', response: new Uint8Array(0), locale: 'en_US' } });
    assert.equal((h.methods()[1] as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 503);
    const other = harness();
    await openConnection(other);
    other.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: new Uint8Array(0), locale: 'en_US' } });
    assert.equal((other.methods()[0] as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 503);
  });

  it('refuses a content frame and a frame on a channel before open-ok', async () => {
    const h = harness();
    await openConnection(h);
    h.send(1, { name: 'channel.open', args: { outOfBand: '' } });
    h.send(1, { name: 'channel.open', args: { outOfBand: '' } });
    const [openOk, close] = h.methods();
    assert.equal(openOk?.name, 'channel.open-ok');
    assert.equal((close as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 504);

    const content = harness();
    await openConnection(content);
    content.send(1, { name: 'channel.open', args: { outOfBand: '' } });
    content.connection.onData(encodeFrame(FrameType.header, 1, Buffer.alloc(14)));
    assert.equal((content.methods()[1] as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 505);

    const early = harness();
    early.connection.onData(PROTOCOL_HEADER);
    early.send(1, { name: 'channel.open', args: { outOfBand: '' } });
    assert.equal((early.methods()[1] as Extract<AmqpMethod, { name: 'connection.close' }>).args.replyCode, 503);
  });

  it('reads PLAIN and AMQPLAIN responses', () => {
    assert.deepEqual(saslCredentials('PLAIN', encoder.encode('\0alice\0pw\0with-nul?'.slice(0, 9))), { username: 'alice', password: 'pw' });
    // AMQPLAIN: the table's entries without the table's length.
    const entries = Buffer.concat([Buffer.from([5]), Buffer.from('LOGIN'), Buffer.from('S'), Buffer.from([0, 0, 0, 3]), Buffer.from('bob'), Buffer.from([8]), Buffer.from('PASSWORD'), Buffer.from('S'), Buffer.from([0, 0, 0, 2]), Buffer.from('pw')]);
    assert.deepEqual(saslCredentials('AMQPLAIN', entries), { username: 'bob', password: 'pw' });
    assert.throws(() => saslCredentials('PLAIN', encoder.encode('nonul')), (error: unknown) => error instanceof AmqpCodecError && error.replyCode === 403);
    assert.throws(() => saslCredentials('AMQPLAIN', Buffer.from([9, 1, 2])), (error: unknown) => error instanceof AmqpCodecError && error.replyCode === 403);
  });

  it('takes a seat under max-connections at start-ok, refuses with 530 when none is free, and gives it back once', async () => {
    const seats = { free: 1 };
    const first = harness({ seats });
    await openConnection(first);
    assert.equal(seats.free, 0);
    const second = harness({ seats });
    second.connection.onData(PROTOCOL_HEADER);
    second.send(0, { name: 'connection.start-ok', args: { clientProperties: new Map(), mechanism: 'PLAIN', response: encoder.encode('\0u\0p'), locale: 'en_US' } });
    const close = second.methods()[1] as Extract<AmqpMethod, { name: 'connection.close' }>;
    assert.equal(close.args.replyCode, 530);
    assert.match(close.args.replyText, /connection limit/);
    first.send(0, { name: 'connection.close', args: { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 } });
    first.connection.onClosed();
    assert.equal(seats.free, 1, 'released once');
  });

  it('fuzz: any method sequence on any channels, with mutated bytes and random chunking, ends in replies or a close, never an exception', async () => {
    const frameArb = fc.record({ channel: fc.oneof({ arbitrary: fc.constant(1), weight: 3 }, { arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: 0, max: 3000 }), weight: 1 }), method: methodArb });
    const mutationArb = fc.option(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(fc.array(frameArb, { maxLength: 12 }), mutationArb, fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }), async (frames, mutation, cuts) => {
        const h = harness();
        await openConnection(h);
        h.send(1, { name: 'channel.open', args: { outOfBand: '' } });
        const bytes = Buffer.concat(frames.map(({ channel, method }) => encodeMethodFrame(channel, method)));
        if (mutation !== undefined && bytes.length > 0) bytes[mutation.at % bytes.length] = mutation.byte;
        let offset = 0;
        for (let index = 0; offset < bytes.length; index += 1) {
          const size = cuts[index % cuts.length] as number;
          h.connection.onData(bytes.subarray(offset, offset + size));
          offset += size;
        }
        // Every reply the server wrote is a well-formed frame stream.
        const splitter = new FrameSplitter(1 << 20);
        const written = splitter.push(Buffer.concat(h.sent));
        assert.equal(written.error, undefined);
        assert.equal(splitter.bufferedBytes, 0, 'no partial frame written');
        for (const frame of written.frames) if (frame.type === FrameType.method) decodeMethodPayload(frame.payload);
        h.timers.advance(CLOSE_OK_TIMEOUT_MS);
        assert.ok(h.connection.phase === 'running' || h.connection.phase === 'closed', h.connection.phase);
      }),
      { numRuns: 400 },
    );
  });
});
