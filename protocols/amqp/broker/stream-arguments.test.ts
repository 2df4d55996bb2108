// Stream queues' pure rules: x-stream-offset parsing, the declare flags and arguments, what a
// consumer must set. Each refusal is checked for its reply code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AmqpCodecError } from '../codec/errors.js';
import { longstrValue, type FieldTable, type FieldValue } from '../codec/field-table.js';
import { checkStreamConsume, checkStreamDeclare, isStreamDeclare, parseDuration, parseStreamOffset, streamPolicy } from './stream-arguments.js';

const text = (value: string): FieldValue => longstrValue(value);
const NOW = 1_700_000_000_000;

function refusedWith(code: number, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof AmqpCodecError && error.replyCode === code);
}

describe('x-stream-offset', () => {
  it('defaults to next and takes first, last and next by name', () => {
    assert.deepEqual(parseStreamOffset('s', undefined, NOW), { kind: 'next' });
    for (const kind of ['first', 'last', 'next'] as const) assert.deepEqual(parseStreamOffset('s', text(kind), NOW), { kind });
  });

  it('takes an offset of any integer width', () => {
    assert.deepEqual(parseStreamOffset('s', { type: 'int8', value: 7 }, NOW), { kind: 'offset', offset: 7 });
    assert.deepEqual(parseStreamOffset('s', { type: 'int32', value: 42 }, NOW), { kind: 'offset', offset: 42 });
    assert.deepEqual(parseStreamOffset('s', { type: 'int64', value: 123_456_789_012n }, NOW), { kind: 'offset', offset: 123_456_789_012 });
    assert.deepEqual(parseStreamOffset('s', { type: 'uint16', value: 0 }, NOW), { kind: 'offset', offset: 0 });
  });

  it('reads an AMQP timestamp as seconds, and an interval text as now minus it', () => {
    assert.deepEqual(parseStreamOffset('s', { type: 'timestamp', value: 1_700_000_000n }, NOW), { kind: 'timestamp', ms: 1_700_000_000_000 });
    assert.deepEqual(parseStreamOffset('s', text('1h'), NOW), { kind: 'timestamp', ms: NOW - 3_600_000 });
    assert.deepEqual(parseStreamOffset('s', text('2D'), NOW), { kind: 'timestamp', ms: NOW - 2 * 86_400_000 });
  });

  it('refuses 406 what is no offset: a negative number, a float, another text, a table, a huge int64', () => {
    for (const value of [
      { type: 'int32', value: -1 },
      { type: 'int64', value: -5n },
      { type: 'int64', value: 2n ** 62n },
      { type: 'double', value: 1.5 },
      { type: 'float', value: 2 },
      { type: 'bool', value: true },
      { type: 'table', value: new Map() },
      text('beginning'),
      text('0h'),
      text('10x'),
    ] as FieldValue[]) {
      refusedWith(406, () => parseStreamOffset('s', value, NOW));
    }
  });
});

describe('stream declare', () => {
  const args = (entries: Array<[string, FieldValue]>): FieldTable => new Map([['x-queue-type', text('stream')], ...entries]);

  it('recognises x-queue-type stream', () => {
    assert.equal(isStreamDeclare(args([])), true);
    assert.equal(isStreamDeclare(new Map([['x-queue-type', text('classic')]])), false);
    assert.equal(isStreamDeclare(new Map()), false);
  });

  it('must be durable, not exclusive, not auto-delete: 406 naming the property', () => {
    const flags = { durable: true, exclusive: false, autoDelete: false };
    assert.deepEqual(checkStreamDeclare('s', flags, args([])), { type: 'stream' });
    for (const [bad, property] of [
      [{ ...flags, durable: false }, 'non-durable'],
      [{ ...flags, exclusive: true }, 'exclusive-owner'],
      [{ ...flags, autoDelete: true }, 'auto-delete'],
    ] as const) {
      assert.throws(
        () => checkStreamDeclare('s', bad, args([])),
        (error: unknown) => error instanceof AmqpCodecError && error.replyCode === 406 && error.message.includes(`'${property}'`),
      );
    }
  });

  it('maps retention and segment size; refuses bad values 406, other queue arguments 406, unbuilt stream ones 540', () => {
    assert.deepEqual(streamPolicy('s', args([['x-max-age', text('7D')], ['x-max-length-bytes', { type: 'int64', value: 5_000_000n }], ['x-stream-max-segment-size-bytes', { type: 'int32', value: 65_536 }]])), {
      type: 'stream',
      maxAgeMs: 7 * 86_400_000,
      maxLengthBytes: 5_000_000,
      maxSegmentSizeBytes: 65_536,
    });
    refusedWith(406, () => streamPolicy('s', args([['x-max-age', text('forever')]])));
    refusedWith(406, () => streamPolicy('s', args([['x-max-length-bytes', { type: 'int32', value: 0 }]])));
    refusedWith(406, () => streamPolicy('s', args([['x-stream-max-segment-size-bytes', { type: 'int32', value: 10 }]])));
    refusedWith(406, () => streamPolicy('s', args([['x-message-ttl', { type: 'int32', value: 1000 }]])));
    refusedWith(406, () => streamPolicy('s', args([['x-dead-letter-exchange', text('dlx')]])));
    refusedWith(540, () => streamPolicy('s', args([['x-initial-cluster-size', { type: 'int32', value: 3 }]])));
    // Arguments not starting x- are kept and ignored, as for classic queues.
    assert.deepEqual(streamPolicy('s', args([['note', text('x')]])), { type: 'stream' });
  });

  it('parses durations in RabbitMQ units', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1M'), 30 * 86_400_000);
    assert.equal(parseDuration('1Y'), 365 * 86_400_000);
    for (const bad of ['', '1', 'h', '1.5h', '-1h', '1d', '0s']) assert.equal(parseDuration(bad), undefined, bad);
  });
});

describe('stream consume', () => {
  const request = { noAck: false, arguments: new Map() as FieldTable, consumerPrefetch: 10, channelPrefetch: 0 };

  it('needs a consumer prefetch (406), no channel-wide one (406), acknowledgements (540)', () => {
    assert.deepEqual(checkStreamConsume('s', request, NOW), { kind: 'next' });
    refusedWith(406, () => checkStreamConsume('s', { ...request, consumerPrefetch: 0 }, NOW));
    refusedWith(406, () => checkStreamConsume('s', { ...request, channelPrefetch: 5 }, NOW));
    refusedWith(540, () => checkStreamConsume('s', { ...request, noAck: true }, NOW));
  });

  it('takes x-stream-offset and refuses other x- consumer arguments 540', () => {
    assert.deepEqual(checkStreamConsume('s', { ...request, arguments: new Map([['x-stream-offset', text('first')]]) }, NOW), { kind: 'first' });
    refusedWith(540, () => checkStreamConsume('s', { ...request, arguments: new Map([['x-stream-filter', text('eu')]]) }, NOW));
  });
});
