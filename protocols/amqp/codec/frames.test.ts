// The protocol header check and the frame splitter: frames come out whole however the bytes
// are cut, and every refusal (too large, bad frame end, unknown type, bad heartbeat) names 501
// and arrives as soon as the offending header or octet does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FRAME_MIN_SIZE, type Frame, FrameSplitter, INITIAL_FRAME_MAX, FrameType, type FrameTypeCode, HEARTBEAT_FRAME, encodeFrame } from './frames.js';
import { PROTOCOL_HEADER, checkProtocolHeader } from './protocol-header.js';

test('protocol header: AMQP 0-9-1 is ok, a prefix waits, anything else is answered with our header', () => {
  assert.deepEqual(checkProtocolHeader(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')), { kind: 'ok' });
  assert.deepEqual(checkProtocolHeader(Buffer.from('AMQP\x00\x00\x09\x01\x01\x00', 'latin1')), { kind: 'ok' });
  assert.deepEqual(checkProtocolHeader(Buffer.from('AMQ', 'latin1')), { kind: 'incomplete' });
  assert.deepEqual(checkProtocolHeader(Buffer.alloc(0)), { kind: 'incomplete' });
  const http = checkProtocolHeader(Buffer.from('GET / HTTP/1.1\r\n', 'latin1'));
  assert.equal(http.kind, 'wrong');
  // Decided on the first byte: an HTTP client need not send eight.
  assert.equal(checkProtocolHeader(Buffer.from('G', 'latin1')).kind, 'wrong');
  const amqp10 = checkProtocolHeader(Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'));
  assert.ok(amqp10.kind === 'wrong' && amqp10.reason === 'other-version');
  assert.deepEqual(amqp10.version, [0, 1, 0, 0]);
  assert.deepEqual(amqp10.reply, Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  const amqp08 = checkProtocolHeader(Buffer.from('AMQP\x01\x01\x08\x00', 'latin1'));
  assert.ok(amqp08.kind === 'wrong' && amqp08.reason === 'other-version');
  assert.equal(PROTOCOL_HEADER.length, 8);
});

test('frame layout: type, channel, size, payload, 0xCE', () => {
  assert.deepEqual(encodeFrame(FrameType.method, 0x0102, Buffer.from([0xaa, 0xbb])), Buffer.from([1, 1, 2, 0, 0, 0, 2, 0xaa, 0xbb, 0xce]));
  assert.deepEqual(HEARTBEAT_FRAME, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]));
});

const frameArb = fc.oneof(
  fc.record({ type: fc.constantFrom<FrameTypeCode>(FrameType.method, FrameType.header, FrameType.body), channel: fc.integer({ min: 0, max: 65535 }), payload: fc.uint8Array({ maxLength: 300 }) }),
  fc.constant({ type: FrameType.heartbeat as FrameTypeCode, channel: 0, payload: new Uint8Array(0) }),
);

test('frames come out whole and in order however the stream is cut', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((frame) => encodeFrame(frame.type, frame.channel, frame.payload)));
      const splitter = new FrameSplitter(FRAME_MIN_SIZE);
      const out: Frame[] = [];
      let position = 0;
      for (let index = 0; position < stream.length; index += 1) {
        const size = cuts[index % cuts.length] as number;
        const result = splitter.push(stream.subarray(position, position + size));
        assert.equal(result.error, undefined);
        // Copy: payloads are views of the splitter's buffer.
        out.push(...result.frames.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) })));
        position += size;
      }
      assert.deepEqual(
        out.map((frame) => [frame.type, frame.channel, [...frame.payload]]),
        frames.map((frame) => [frame.type, frame.channel, [...frame.payload]]),
      );
      assert.equal(splitter.bufferedBytes, 0);
    }),
    { numRuns: 200 },
  );
});

function refusal(splitter: FrameSplitter, bytes: Uint8Array) {
  const result = splitter.push(bytes);
  assert.ok(result.error, 'refused');
  return result;
}

test('a frame over frame-max is refused from its 7-byte header alone, before any payload', () => {
  const splitter = new FrameSplitter(FRAME_MIN_SIZE);
  // A header announcing 4 GiB - 1: only the seven header bytes are ever given.
  const result = refusal(splitter, Buffer.from([1, 0, 1, 0xff, 0xff, 0xff, 0xff]));
  assert.equal(result.error?.replyCode, 501);
  assert.equal(result.error?.scope, 'connection');
  assert.ok(splitter.bufferedBytes < 8, 'nothing held for the announced payload');
  // frame-max counts the header and frame-end: payload frameMax - 8 fits, one more does not.
  const fits = new FrameSplitter(4096);
  assert.equal(fits.push(encodeFrame(FrameType.body, 1, Buffer.alloc(4088))).frames.length, 1);
  assert.equal(new FrameSplitter(4096).push(encodeFrame(FrameType.body, 1, Buffer.alloc(4089)).subarray(0, 7)).error?.replyCode, 501);
  // After tune-ok the negotiated size applies.
  const tuned = new FrameSplitter(FRAME_MIN_SIZE);
  tuned.setFrameMax(131072);
  assert.equal(tuned.push(encodeFrame(FrameType.body, 1, Buffer.alloc(100_000))).frames.length, 1);
});

test('the frames before a refusal are delivered, and the splitter stays refused', () => {
  const splitter = new FrameSplitter();
  const good = encodeFrame(FrameType.method, 0, Buffer.from([0, 10, 0, 51]));
  const bad = Buffer.from(encodeFrame(FrameType.method, 0, Buffer.from([1, 2])));
  bad[bad.length - 1] = 0x00;
  const result = splitter.push(Buffer.concat([good, bad]));
  assert.equal(result.frames.length, 1);
  assert.equal(result.error?.replyCode, 501);
  assert.match(result.error?.message ?? '', /frame end/);
  assert.equal(splitter.push(good).error, result.error);
});

test('an unknown frame type, a heartbeat off channel 0 or with a payload: 501', () => {
  assert.match(refusal(new FrameSplitter(), Buffer.from([4, 0, 0, 0, 0, 0, 0, 0xce])).error?.message ?? '', /unknown frame type 4/);
  assert.equal(refusal(new FrameSplitter(), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0xce])).error?.replyCode, 501);
  assert.match(refusal(new FrameSplitter(), Buffer.from([8, 0, 1, 0, 0, 0, 0, 0xce])).error?.message ?? '', /channel 1/);
  assert.equal(refusal(new FrameSplitter(), Buffer.from([8, 0, 0, 0, 0, 0, 1, 0, 0xce])).error?.replyCode, 501);
  // The old AMQP 0-8 heartbeat type 4 is not accepted either (0-9-1 moved it to 8).
});

test('random bytes never make the splitter throw', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
      const splitter = new FrameSplitter(256);
      for (const chunk of chunks) splitter.push(chunk);
    }),
    { numRuns: 300 },
  );
});

test('before tune-ok the splitter takes frames of 8192 bytes (RabbitMQ 4.1), for start-ok with a JWT', () => {
  assert.equal(INITIAL_FRAME_MAX, 8192);
  // A start-ok carrying a 6 KB token, as in rabbitmq-server#13535, which 4096 refused.
  assert.equal(new FrameSplitter().push(encodeFrame(FrameType.method, 0, Buffer.alloc(8184))).frames.length, 1);
  assert.equal(new FrameSplitter().push(encodeFrame(FrameType.method, 0, Buffer.alloc(8185)).subarray(0, 7)).error?.replyCode, 501);
});
