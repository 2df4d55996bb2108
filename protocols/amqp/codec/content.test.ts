// Content headers and bodies: known-answer header bytes, bodies cut at frame-max - 8, the
// per-channel state machine (method → header → bodies) and its refusals, and a whole-pipeline
// fuzz: mutated frame streams end in commands or AmqpCodecErrors, nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fieldTableArb, methodArb } from '../../../property-tests/amqp-arbitraries.js';
import { type BasicProperties, ChannelAssembler, type Command, closeMethodFor, decodeContentHeaderPayload, encodeCommand, encodeCommandFrames, encodeContentHeaderPayload, encodeMethodFrame } from './content.js';
import { AmqpCodecError } from './errors.js';
import { type Frame, FrameSplitter, FrameType, encodeFrame } from './frames.js';
import { amqpMethod } from './methods.js';
import { METHOD_BY_NAME } from './spec.js';

const ascii = (text: string) => [...Buffer.from(text, 'latin1')];

test('known answer: a content header with content-type text/plain and delivery-mode 2', () => {
  const expected = Buffer.from([
    0, 60, // class basic
    0, 0, // weight
    0, 0, 0, 0, 0, 0, 0, 5, // body size
    0x90, 0x00, // flags: content-type (bit 15), delivery-mode (bit 12), no continuation
    10, ...ascii('text/plain'),
    2,
  ]);
  assert.deepEqual(encodeContentHeaderPayload(60, 5n, { contentType: 'text/plain', deliveryMode: 2 }), expected);
  assert.deepStrictEqual(decodeContentHeaderPayload(expected), { classId: 60, weight: 0, bodySize: 5n, properties: { contentType: 'text/plain', deliveryMode: 2 } });
});

test('known answer: the last property (cluster-id) is bit 2; all 14 set is 0xfffc', () => {
  assert.deepEqual(encodeContentHeaderPayload(60, 0n, { clusterId: 'c' }).subarray(12), Buffer.from([0x00, 0x04, 1, 0x63]));
});

const propertiesArb: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: fc.string({ maxLength: 20 }),
    contentEncoding: fc.string({ maxLength: 10 }),
    headers: fieldTableArb,
    deliveryMode: fc.integer({ min: 0, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: fc.string({ maxLength: 20 }),
    replyTo: fc.string({ maxLength: 20 }),
    expiration: fc.string({ maxLength: 10 }),
    messageId: fc.string({ maxLength: 20 }),
    timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    type: fc.string({ maxLength: 10 }),
    userId: fc.string({ maxLength: 10 }),
    appId: fc.string({ maxLength: 10 }),
    clusterId: fc.string({ maxLength: 10 }),
  },
  { requiredKeys: [] },
).map((properties) => ({ ...properties }));

test('content headers round-trip with any subset of the 14 basic properties', () => {
  fc.assert(
    fc.property(propertiesArb, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (properties, bodySize) => {
      const payload = encodeContentHeaderPayload(60, bodySize, properties);
      assert.deepStrictEqual(decodeContentHeaderPayload(payload), { classId: 60, weight: 0, bodySize, properties });
    }),
    { numRuns: 200 },
  );
});

test('a flag continuation word is read; a flag past the last property is 502', () => {
  // Continuation bit set in the first word, an empty second word: still content-type only.
  const withContinuation = Buffer.from([0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x01, 0x00, 0x00, 1, 0x61]);
  assert.deepEqual(decodeContentHeaderPayload(withContinuation).properties, { contentType: 'a' });
  const unknownFlag = Buffer.from([0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02]);
  assert.throws(() => decodeContentHeaderPayload(unknownFlag), (error) => error instanceof AmqpCodecError && error.replyCode === 502);
});

const publish = amqpMethod('basic.publish', { ticket: 0, exchange: 'amq.topic', routingKey: 'a.b', mandatory: false, immediate: false });

function assemble(frames: Buffer[], frameMax: number): Command[] {
  const splitter = new FrameSplitter(frameMax);
  const assemblers = new Map<number, ChannelAssembler>();
  const commands: Command[] = [];
  for (const bytes of frames) {
    const { frames: split, error } = splitter.push(bytes);
    if (error) throw error;
    for (const frame of split) {
      if (frame.type === FrameType.heartbeat) continue;
      let assembler = assemblers.get(frame.channel);
      if (assembler === undefined) assemblers.set(frame.channel, (assembler = new ChannelAssembler(frame.channel)));
      const command = assembler.push(frame);
      if (command) commands.push(command);
    }
  }
  return commands;
}

test('a body is cut into frames of at most frame-max - 8 bytes and reassembled whole', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 4096, max: 9000 }), propertiesArb, (bodySize, frameMax, properties) => {
      const body = Buffer.alloc(bodySize, 7);
      if (bodySize > 0) body[bodySize - 1] = 1;
      const frames = encodeCommandFrames(3, publish, properties, body, frameMax);
      const bodyFrames = frames.slice(2);
      assert.equal(bodyFrames.length, Math.ceil(bodySize / (frameMax - 8)));
      for (const frame of frames) assert.ok(frame.length <= frameMax);
      for (const frame of bodyFrames.slice(0, -1)) assert.equal(frame.length, frameMax, 'every body frame but the last is full');
      const [command] = assemble(frames, frameMax);
      assert.ok(command);
      assert.deepStrictEqual(command.method, publish);
      assert.deepStrictEqual(command.content?.header.properties, properties);
      assert.deepEqual(command.content?.body, body);
      assert.deepEqual(encodeCommand(3, publish, properties, body, frameMax), Buffer.concat(frames), 'encodeCommand writes the same bytes in one buffer');
    }),
    { numRuns: 60 },
  );
});

test('commands interleave across channels; a non-content method completes at once', () => {
  const one = encodeCommandFrames(1, publish, {}, Buffer.from('hello'), 4096);
  const two = encodeCommandFrames(2, publish, { deliveryMode: 2 }, Buffer.from('world!'), 4096);
  const qos = encodeMethodFrame(1, amqpMethod('basic.qos', { prefetchSize: 0, prefetchCount: 10, global: false }));
  const frames = [one[0], two[0], one[1], two[1], two[2], one[2], qos] as Buffer[];
  const commands = assemble(frames, 4096);
  assert.deepEqual(
    commands.map((command) => [command.channel, command.method.name, command.content?.body.toString()]),
    [
      [2, 'basic.publish', 'world!'],
      [1, 'basic.publish', 'hello'],
      [1, 'basic.qos', undefined],
    ],
  );
  assert.equal(commands[0]?.content?.header.properties.deliveryMode, 2);
});

function codeOf(action: () => unknown): number | string {
  try {
    action();
    return 'no error';
  } catch (error) {
    return error instanceof AmqpCodecError ? error.replyCode : `untyped ${String(error)}`;
  }
}

const frameOf = (bytes: Buffer): Frame => ({ type: bytes[0] as Frame['type'], channel: bytes.readUInt16BE(1), payload: bytes.subarray(7, bytes.length - 1) });

test('out of order: a body or header without its method, a method mid-content, are 505 unexpected-frame', () => {
  const [method, header, body] = encodeCommandFrames(1, publish, {}, Buffer.from('abc'), 4096).map(frameOf) as [Frame, Frame, Frame];
  assert.equal(codeOf(() => new ChannelAssembler(1).push(body)), 505);
  assert.equal(codeOf(() => new ChannelAssembler(1).push(header)), 505);
  const waitingForHeader = new ChannelAssembler(1);
  waitingForHeader.push(method);
  assert.equal(codeOf(() => waitingForHeader.push(body)), 505);
  const waitingForBody = new ChannelAssembler(1);
  waitingForBody.push(method);
  waitingForBody.push(header);
  assert.equal(waitingForBody.idle, false);
  try {
    waitingForBody.push(method);
    assert.fail('accepted a method mid-content');
  } catch (error) {
    assert.ok(error instanceof AmqpCodecError);
    assert.equal(error.replyCode, 505);
    assert.deepEqual([error.classId, error.methodId], [60, 40]);
  }
});

test('a body past the header size is 505; a header for another class is 505; over maxBodySize is 406 before any body', () => {
  const [method, header] = encodeCommandFrames(1, publish, {}, Buffer.from('abc'), 4096).map(frameOf) as [Frame, Frame];
  const assembler = new ChannelAssembler(1);
  assembler.push(method);
  assembler.push(header);
  assert.equal(codeOf(() => assembler.push(frameOf(encodeFrame(FrameType.body, 1, Buffer.from('abcd'))))), 505);
  const wrongClass = new ChannelAssembler(1);
  wrongClass.push(method);
  assert.equal(codeOf(() => wrongClass.push(frameOf(encodeFrame(FrameType.header, 1, encodeContentHeaderPayload(10, 3n, {}))))), 505);
  const limited = new ChannelAssembler(1, { maxBodySize: 1024 });
  limited.push(method);
  const huge = frameOf(encodeFrame(FrameType.header, 1, encodeContentHeaderPayload(60, 2n ** 63n, {})));
  const refusal = codeOf(() => limited.push(huge));
  assert.equal(refusal, 406);
  assert.equal(METHOD_BY_NAME.get('basic.publish')?.content, true);
});

test('a zero-length body completes at the header, with no body frames', () => {
  const frames = encodeCommandFrames(1, publish, { contentType: 'x' }, Buffer.alloc(0), 4096);
  assert.equal(frames.length, 2);
  const [command] = assemble(frames, 4096);
  assert.equal(command?.content?.body.length, 0);
});

test('mutated frame streams end in commands or typed errors, never another exception', () => {
  const streamArb = fc.array(
    fc.oneof(
      methodArb.map((method) => [encodeMethodFrame(1, method)]),
      fc.uint8Array({ maxLength: 300 }).map((body) => encodeCommandFrames(1, publish, { contentType: 'a' }, body, 4096)),
    ),
    { minLength: 1, maxLength: 4 },
  );
  fc.assert(
    fc.property(streamArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), (commands, edits, cut) => {
      const stream = Buffer.concat(commands.flat());
      for (const [at, value] of edits) stream[at % stream.length] = value;
      const truncated = stream.subarray(0, stream.length - (cut % 4));
      try {
        assemble([truncated], 4096);
      } catch (error) {
        if (!(error instanceof AmqpCodecError)) throw error;
      }
    }),
    { numRuns: 500 },
  );
});

test('every truncation of a content header is a typed 501 or 502', () => {
  fc.assert(
    fc.property(propertiesArb, (properties) => {
      const payload = encodeContentHeaderPayload(60, 3n, properties);
      for (let cut = 0; cut < payload.length; cut += 1) {
        const code = codeOf(() => decodeContentHeaderPayload(payload.subarray(0, cut)));
        assert.ok(code === 501 || code === 502, `cut at ${cut}: ${code}`);
      }
    }),
    { numRuns: 100 },
  );
});

test('a refusal becomes the close it calls for: connection.close for 505, channel.close for 406', () => {
  const connectionLevel = new AmqpCodecError(505, 'expected a method frame, got a content body frame');
  assert.deepStrictEqual(closeMethodFor(connectionLevel), {
    name: 'connection.close',
    args: { replyCode: 505, replyText: 'UNEXPECTED_FRAME - expected a method frame, got a content body frame', classId: 0, methodId: 0 },
  });
  const channelLevel = new AmqpCodecError(406, 'too big', { classId: 60, methodId: 40 });
  const close = closeMethodFor(channelLevel);
  assert.equal(close.name, 'channel.close');
  // It encodes: the reply text fits a short string even when the detail is long.
  const long = new AmqpCodecError(501, 'é'.repeat(300));
  assert.ok(encodeMethodFrame(0, closeMethodFor(long)).length < 300);
});
