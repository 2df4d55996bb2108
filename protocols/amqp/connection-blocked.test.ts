// connection.blocked / unblocked in the pure connection state machine, with a recording host:
// only a connection that has published is blocked (told, if it announced the capability, and
// its socket not read), a consumer-only one is neither; a first publish during the alarm blocks
// at once; the alarm clearing unblocks; a paused socket's missing heartbeats do not close it;
// an operator's close is 320 CONNECTION_FORCED.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { encodeCommandFrames, encodeMethodFrame } from './codec/content.js';
import { fieldTable, type FieldTable } from './codec/field-table.js';
import { FrameSplitter, FrameType } from './codec/frames.js';
import { decodeMethodPayload, type AmqpMethod } from './codec/methods.js';
import { PROTOCOL_HEADER } from './codec/protocol-header.js';
import { AmqpConnectionState, type AmqpTimers } from './connection-state.js';

/** Timers that run only when told: `fire(ms)` runs every repeating timer of that interval once. */
class StepTimers implements AmqpTimers {
  readonly repeating: Array<{ ms: number; run: () => void; live: boolean }> = [];
  after(): () => void {
    return () => undefined;
  }
  every(ms: number, run: () => void): () => void {
    const timer = { ms, run, live: true };
    this.repeating.push(timer);
    return () => (timer.live = false);
  }
  fire(ms: number): void {
    for (const timer of this.repeating) if (timer.live && timer.ms === ms) timer.run();
  }
}

function harness(blockedCapability: boolean, heartbeat = 0) {
  const timers = new StepTimers();
  const sent: Buffer[] = [];
  const pauses: boolean[] = [];
  const commands: string[] = [];
  let closed = 0;
  const connection = new AmqpConnectionState(
    {
      send: (bytes) => sent.push(bytes),
      close: () => (closed += 1),
      remoteAddress: '127.0.0.1:5',
      timers,
      logger: pino({ level: 'silent' }),
      authenticate: () => Promise.resolve({ ok: true }),
      openSession: () => ({ command: (_channel, command) => commands.push(command.method.name), channelClosed: () => undefined, closed: () => undefined, resume: () => undefined }),
      pauseReading: (paused) => pauses.push(paused),
    },
    { handshakeTimeoutMs: 10_000, version: '0.0.0-test', sessionMethods: new Set(['basic.publish', 'queue.declare']) },
  );
  const splitter = new FrameSplitter(1 << 20);
  const methods = (): AmqpMethod[] =>
    splitter
      .push(Buffer.concat(sent.splice(0)))
      .frames.filter((frame) => frame.type === FrameType.method)
      .map((frame) => decodeMethodPayload(Buffer.from(frame.payload)));
  const send = (channel: number, method: AmqpMethod): void => connection.onData(encodeMethodFrame(channel, method));
  const publish = (): void => connection.onData(Buffer.concat(encodeCommandFrames(1, { name: 'basic.publish', args: { ticket: 0, exchange: '', routingKey: 'q', mandatory: false, immediate: false } }, {}, Buffer.from('x'), 131072)));
  const open = async (): Promise<void> => {
    const capabilities: FieldTable = fieldTable({ 'connection.blocked': { type: 'bool', value: blockedCapability } });
    connection.onData(PROTOCOL_HEADER);
    send(0, { name: 'connection.start-ok', args: { clientProperties: fieldTable({ capabilities: { type: 'table', value: capabilities } }), mechanism: 'PLAIN', response: new TextEncoder().encode('\0u\0p'), locale: 'en_US' } });
    await new Promise((resolve) => setImmediate(resolve));
    send(0, { name: 'connection.tune-ok', args: { channelMax: 0, frameMax: 131072, heartbeat } });
    send(0, { name: 'connection.open', args: { virtualHost: '/', capabilities: '', insist: false } });
    send(1, { name: 'channel.open', args: { outOfBand: '' } });
    assert.deepEqual(methods().map((method) => method.name), ['connection.start', 'connection.tune', 'connection.open-ok', 'channel.open-ok']);
  };
  return { connection, timers, methods, send, publish, open, pauses, commands, closed: () => closed };
}

const names = (methods: AmqpMethod[]): string[] => methods.map((method) => method.name);

describe('AMQP connection.blocked', () => {
  it('blocks a publishing connection: told with the reason, not read, then unblocked when the alarm clears', async () => {
    const h = harness(true);
    await h.open();
    h.publish();
    assert.deepEqual(h.commands, ['basic.publish']);
    h.connection.setBlocked('low on memory');
    const blocked = h.methods();
    assert.deepEqual(names(blocked), ['connection.blocked']);
    assert.deepEqual((blocked[0] as Extract<AmqpMethod, { name: 'connection.blocked' }>).args, { reason: 'low on memory' });
    assert.deepEqual(h.pauses, [true]);
    assert.equal(h.connection.readingPaused, true);
    // Another reason while still blocked: no second notification.
    h.connection.setBlocked('low on memory; low on disk');
    assert.deepEqual(h.methods(), []);
    h.connection.setBlocked(undefined);
    assert.deepEqual(names(h.methods()), ['connection.unblocked']);
    assert.deepEqual(h.pauses, [true, false]);
    assert.equal(h.connection.readingPaused, false);
  });

  it('leaves a connection that never published alone, and blocks it at its first publish during the alarm', async () => {
    const h = harness(true);
    await h.open();
    h.connection.setBlocked('low on disk');
    assert.deepEqual(h.methods(), []);
    assert.deepEqual(h.pauses, []);
    h.send(1, { name: 'queue.declare', args: { ticket: 0, queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: new Map() } });
    assert.deepEqual(h.commands, ['queue.declare'], 'a consumer-only connection is still read');
    h.publish();
    assert.deepEqual(h.commands, ['queue.declare', 'basic.publish'], 'the publish that found the alarm is handled');
    assert.deepEqual(names(h.methods()), ['connection.blocked']);
    assert.deepEqual(h.pauses, [true]);
    h.connection.setBlocked(undefined);
    assert.deepEqual(names(h.methods()), ['connection.unblocked']);
  });

  it('pauses a publisher that did not announce the capability without telling it', async () => {
    const h = harness(false);
    await h.open();
    h.publish();
    h.connection.setBlocked('low on memory');
    assert.deepEqual(h.methods(), []);
    assert.deepEqual(h.pauses, [true]);
    h.connection.setBlocked(undefined);
    assert.deepEqual(h.methods(), []);
    assert.deepEqual(h.pauses, [true, false]);
  });

  it('does not count heartbeats missed while its socket is not read', async () => {
    const h = harness(true, 10);
    await h.open();
    h.publish();
    h.connection.setBlocked('low on memory');
    h.methods();
    for (let i = 0; i < 5; i++) h.timers.fire(10_000);
    assert.equal(h.closed(), 0, 'a blocked connection stays open');
    h.connection.setBlocked(undefined);
    h.timers.fire(10_000);
    h.timers.fire(10_000);
    h.timers.fire(10_000);
    assert.equal(h.closed(), 1, 'once read again, two silent intervals close it');
  });

  it('an operator close is connection.close 320 CONNECTION_FORCED', async () => {
    const h = harness(true);
    await h.open();
    h.connection.forceClose('closed by an operator (admin API)');
    const [close] = h.methods();
    assert.equal(close?.name, 'connection.close');
    const args = (close as Extract<AmqpMethod, { name: 'connection.close' }>).args;
    assert.equal(args.replyCode, 320);
    assert.equal(args.replyText, 'CONNECTION_FORCED - closed by an operator (admin API)');
  });
});
